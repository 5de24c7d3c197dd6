"""Pruning against an independent numpy computation on a small hand-made pytree."""

import jax
import numpy as np
import pytest

from eslt_cli import pruning
from eslt_cli.errors import BadInput


def tree(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "conv0": {
            "kernel": rng.normal(size=(3, 3, 1, 2)).astype(np.float32),
            "bias": rng.normal(size=2).astype(np.float32),
        },
        "dense": {"kernel": rng.normal(size=(4, 3)).astype(np.float32), "bias": rng.normal(size=3).astype(np.float32)},
    }


def ones(t: dict) -> dict:
    return jax.tree.map(lambda a: np.ones(a.shape, np.uint8), t)


def reference_keep(scores: dict, mask: dict, n_keep: int) -> np.ndarray:
    """Independent computation: rank live kernel entries by (score, flat position)."""
    flat_s = np.concatenate([scores[l]["kernel"].ravel() for l in ("conv0", "dense")])
    flat_m = np.concatenate([mask[l]["kernel"].ravel() for l in ("conv0", "dense")]).astype(bool)
    live = [i for i in range(flat_s.size) if flat_m[i]]
    ranked = sorted(live, key=lambda i: (flat_s[i], i))
    keep = np.zeros(flat_s.size, bool)
    keep[ranked[len(ranked) - n_keep :]] = True
    return keep


def flat_kernels(mask: dict) -> np.ndarray:
    return np.concatenate([mask[l]["kernel"].ravel() for l in ("conv0", "dense")]).astype(bool)


def test_magnitude_matches_reference_and_leaves_biases() -> None:
    mean, mask = tree(1), ones(tree())
    new = pruning.prune(jax.random.PRNGKey(0), "magnitude", mean, None, mask, keep=0.8)
    n_total = 18 + 12
    expected = reference_keep(jax.tree.map(np.abs, mean), mask, round(0.8 * n_total))
    np.testing.assert_array_equal(flat_kernels(new), expected)
    assert flat_kernels(new).sum() == 24
    for layer in ("conv0", "dense"):
        np.testing.assert_array_equal(new[layer]["bias"], 1)
        assert new[layer]["kernel"].dtype == np.uint8


def test_snr_matches_reference_and_differs_from_magnitude() -> None:
    mean, mask = tree(1), ones(tree())
    std = jax.tree.map(lambda a: np.abs(a) ** 2 + 0.1, tree(2))
    new = pruning.prune(jax.random.PRNGKey(0), "snr", mean, std, mask, keep=0.8)
    snr = jax.tree.map(lambda m, s: np.abs(m) / s, mean, std)
    np.testing.assert_array_equal(flat_kernels(new), reference_keep(snr, mask, 24))
    mag = pruning.prune(jax.random.PRNGKey(0), "magnitude", mean, None, mask, keep=0.8)
    assert not np.array_equal(flat_kernels(new), flat_kernels(mag))


def test_only_live_weights_are_candidates_and_ties_break_by_position() -> None:
    mean = jax.tree.map(np.ones_like, tree())  # all scores tie
    mask = ones(tree())
    mask["conv0"]["kernel"].ravel()[:5] = 0  # already pruned
    new = pruning.prune(jax.random.PRNGKey(0), "magnitude", mean, None, mask, keep=0.5)
    keep = flat_kernels(new)
    assert keep.sum() == 15
    assert not keep[:5].any()  # pruned weights stay pruned
    # Ties: lowest positions among the live ones go first.
    np.testing.assert_array_equal(keep, np.arange(30) >= 15)


def test_iterated_levels_follow_one_minus_point_eight_to_the_k() -> None:
    rng = np.random.default_rng(0)
    big = {"a": {"kernel": rng.normal(size=(37, 29)), "bias": np.zeros(29)}, "b": {"kernel": rng.normal(size=(29, 7))}}
    mask, keep = ones(big), 1.0
    n0 = 37 * 29 + 29 * 7
    for level in range(1, 11):
        keep *= 0.8
        before = int(sum(mask[l]["kernel"].sum() for l in mask))
        mask = pruning.prune(jax.random.PRNGKey(level), "random", big, None, mask, keep)
        flat_alive = int(sum(mask[l]["kernel"].sum() for l in mask))
        assert abs(flat_alive - n0 * 0.8**level) <= 1
        assert abs((before - flat_alive) - 0.2 * before) <= 1
        assert pruning.sparsity(mask)["global"] == pytest.approx(1 - flat_alive / n0)
    np.testing.assert_array_equal(mask["a"]["bias"], 1)


def test_random_is_sparsity_matched_and_seeded() -> None:
    mean, mask = tree(1), ones(tree())
    a = pruning.prune(jax.random.PRNGKey(1), "random", mean, None, mask, keep=0.8)
    b = pruning.prune(jax.random.PRNGKey(1), "random", mean, None, mask, keep=0.8)
    c = pruning.prune(jax.random.PRNGKey(2), "random", mean, None, mask, keep=0.8)
    assert flat_kernels(a).sum() == 24
    np.testing.assert_array_equal(flat_kernels(a), flat_kernels(b))
    assert not np.array_equal(flat_kernels(a), flat_kernels(c))


def test_exclude_leaves_a_layer_dense() -> None:
    mean, mask = tree(1), ones(tree())
    new = pruning.prune(jax.random.PRNGKey(0), "magnitude", mean, None, mask, keep=0.5, exclude=["dense"])
    np.testing.assert_array_equal(new["dense"]["kernel"], 1)
    assert new["conv0"]["kernel"].sum() == 9
    with pytest.raises(BadInput, match="unknown layers"):
        pruning.prune(jax.random.PRNGKey(0), "magnitude", mean, None, mask, keep=0.5, exclude=["nope"])


def test_sparsity_reports_layers() -> None:
    mask = ones(tree())
    mask["dense"]["kernel"][0] = 0
    sp = pruning.sparsity(mask)
    assert sp["layers"]["dense"] == {"remaining": 9, "total": 12, "sparsity": 0.25}
    assert sp["remaining"] == 27 and sp["total"] == 30


def test_bad_requests() -> None:
    with pytest.raises(BadInput, match="unknown pruning criterion"):
        pruning.get_pruner("nope")
    with pytest.raises(BadInput, match="search std"):
        pruning.prune(jax.random.PRNGKey(0), "snr", tree(), None, ones(tree()), keep=0.8)


def test_snr_correlation_on_live_kernels() -> None:
    mean = {"l": {"kernel": np.array([1.0, -2.0, 3.0, 4.0]), "bias": np.array([100.0])}}
    std = {"l": {"kernel": np.array([1.0, 1.0, 1.0, 9.0]), "bias": np.array([1.0])}}
    mask = {"l": {"kernel": np.array([1, 1, 1, 0], np.uint8), "bias": np.ones(1, np.uint8)}}
    stats = pruning.snr_correlation(mean, std, mask)  # live: |mean| = snr = 1, 2, 3
    assert stats["n"] == 3
    assert stats["pearson"] == pytest.approx(1.0) and stats["spearman"] == pytest.approx(1.0)


def test_movement_scores_distance_from_init() -> None:
    init, mean, mask = tree(0), tree(1), ones(tree())
    new = pruning.prune(jax.random.PRNGKey(0), "movement", mean, None, mask, keep=0.8, init=init)
    moved = jax.tree.map(lambda m, i: np.abs(m.astype(np.float64) - i), mean, init)
    np.testing.assert_array_equal(flat_kernels(new), reference_keep(moved, mask, 24))
    mag = pruning.prune(jax.random.PRNGKey(0), "magnitude", mean, None, mask, keep=0.8)
    assert not np.array_equal(flat_kernels(new), flat_kernels(mag))
    assert not pruning.get_pruner("movement").needs_std
    with pytest.raises(BadInput, match="initialisation"):
        pruning.prune(jax.random.PRNGKey(0), "movement", mean, None, mask, keep=0.8)


def test_every_criterion_shares_one_signature() -> None:
    trained = pruning.Trained(tree(1), jax.tree.map(lambda a: np.abs(a) + 0.1, tree(2)), tree(0))
    for name, criterion in pruning.PRUNERS.items():
        if criterion.needs_data:
            continue  # snip, grasp: tests/test_saliency.py, with training batches
        scores = criterion.score(jax.random.PRNGKey(0), trained)
        assert jax.tree.structure(scores) == jax.tree.structure(trained.mean), name


def test_prune_cli_movement_and_reinit(cli) -> None:
    from conftest import TINY_CONTROL

    from eslt_cli import checkpoint

    code, dense, err = cli("train", "--task", "pendulum", "--seed", "0", *TINY_CONTROL)
    assert code == 0, err
    code, out, err = cli("prune", "--movement", dense.strip())
    assert code == 0, err
    moved = checkpoint.load(out.strip())
    assert moved.meta["arm"] == "movement" and moved.meta["pruning"]["reinit"] is False
    assert moved.path.name == "L01-movement"

    code, out, err = cli("prune", "--random", "--reinit", "--seed", "3", dense.strip())
    assert code == 0, err
    ticket = checkpoint.load(out.strip())
    assert ticket.path.name == "L01-random-reinit" and ticket.meta["arm"] == "random-reinit"
    assert ticket.meta["pruning"]["reinit"] is True
    parent = checkpoint.load(dense.strip())
    assert jax.tree.structure(ticket.state["init"]) == jax.tree.structure(parent.state["init"])
    pairs = zip(jax.tree.leaves(ticket.state["init"]), jax.tree.leaves(parent.state["init"]))
    assert not any(np.array_equal(a, b) for a, b in pairs if np.any(b))  # fresh kernels (biases start at 0)
    # The same mask as --random with the same seed; re-running is skipped.
    code, plain, err = cli("prune", "--random", "--seed", "3", dense.strip())
    plain_mask = checkpoint.load(plain.strip()).state["mask"]
    for a, b in zip(jax.tree.leaves(plain_mask), jax.tree.leaves(ticket.state["mask"])):
        np.testing.assert_array_equal(a, b)
    code, again, err = cli("prune", "--random", "--reinit", "--seed", "3", dense.strip())
    assert code == 0 and again == out and "up to date" in err
    code, _, err = cli("prune", "--random", "--movement", dense.strip())
    assert code == 2


def test_snr_correlation_matches_scipy() -> None:
    from scipy import stats

    from eslt_cli.pruning import average_ranks

    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, 400).astype(np.float64)  # many ties
    np.testing.assert_array_equal(average_ranks(x), stats.rankdata(x))
    mean = {"dense": {"kernel": rng.normal(size=(20, 30)).astype(np.float32), "bias": np.zeros(30, np.float32)}}
    std = {"dense": {"kernel": rng.uniform(0.1, 1, (20, 30)).astype(np.float32), "bias": np.ones(30, np.float32)}}
    mask = {"dense": {"kernel": (rng.uniform(size=(20, 30)) > 0.3).astype(np.uint8), "bias": np.ones(30, np.uint8)}}
    got = pruning.snr_correlation(mean, std, mask)
    live = mask["dense"]["kernel"].astype(bool)
    magnitude = np.abs(mean["dense"]["kernel"][live]).astype(np.float64)
    snr = magnitude / std["dense"]["kernel"][live].astype(np.float64)
    assert got["n"] == live.sum()
    assert got["pearson"] == pytest.approx(stats.pearsonr(magnitude, snr)[0], rel=1e-12)
    assert got["spearman"] == pytest.approx(stats.spearmanr(magnitude, snr)[0], rel=1e-12)

"""The analysis core: LMC barrier, filter-normalised directions, curvature fits."""

from pathlib import Path

import jax
import numpy as np
import pytest

from eslt_cli import paths
from eslt_cli.analysis import lmc, sharpness
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput
from eslt_cli.specs import ControlSpec, MLPSpec
from eslt_cli.tasks import build_task
from eslt_cli.tasks.base import evaluate


def tree(seed: int = 0, sparse: bool = True) -> tuple[dict, dict]:
    """A CNN-like tree (HWIO conv kernel, dense kernel, biases) and a mask with a fully pruned filter."""
    rng = np.random.default_rng(seed)
    params = {
        "conv0": {"kernel": rng.normal(size=(3, 3, 2, 4)), "bias": rng.normal(size=4)},
        "dense": {"kernel": rng.normal(size=(6, 3)), "bias": rng.normal(size=3)},
    }
    mask = jax.tree.map(lambda a: (rng.random(a.shape) < (0.6 if sparse else 2.0)).astype(np.uint8), params)
    mask["conv0"]["bias"][:] = 1
    mask["dense"]["bias"][:] = 1
    mask["conv0"]["kernel"][..., 1] = 0  # a filter pruned away entirely
    params = jax.tree.map(lambda p, m: (p * m).astype(np.float32), params, mask)
    return params, mask


def test_barrier_is_frankle_and_barrier_linear_the_rise_above_the_chord() -> None:
    alpha = [0.0, 0.25, 0.5, 0.75, 1.0]
    # Peak 0.6 off-centre, endpoints 0.1 and 0.3: Frankle 0.6 − 0.2; chord at α = 0.25 is 0.15.
    peaked = [0.1, 0.6, 0.3, 0.3, 0.3]
    assert lmc.barrier(alpha, peaked) == pytest.approx(0.4)
    assert lmc.barrier_linear(alpha, peaked) == pytest.approx(0.45)
    straight = [0.1, 0.15, 0.2, 0.25, 0.3]  # on the chord: no linear barrier, Frankle's is half the gap
    assert lmc.barrier(alpha, straight) == pytest.approx(0.1)
    assert lmc.barrier_linear(alpha, straight) == pytest.approx(0.0, abs=1e-15)
    assert lmc.barrier([0.0, 0.5, 1.0], [2.0, 0.0, 2.0]) == 0.0  # a valley: the endpoints are the max
    assert lmc.barrier_linear([0.0, 0.5, 1.0], [2.0, 0.0, 2.0]) == 0.0
    flat = [0.1 + 0.2] * 5  # an inexact float: both barriers are still exactly 0
    assert lmc.barrier(alpha, flat) == 0.0 and lmc.barrier_linear(alpha, flat) == 0.0
    for bad_alpha, bad_error in (([0.0, 0.5], [1.0, 2.0, 3.0]), ([0.1, 1.0], [1.0, 2.0]), ([0.0], [1.0])):
        with pytest.raises(BadInput, match="alpha running from 0 to 1"):
            lmc.barrier(bad_alpha, bad_error)
    np.testing.assert_allclose(lmc.to_error(np.array([0.9, 0.25]), "accuracy"), [0.1, 0.75])
    np.testing.assert_allclose(lmc.to_error(np.array([-300.0, 10.0]), "return"), [300.0, -10.0])


def test_interpolate_hits_both_ends_exactly() -> None:
    a, _ = tree(0)
    b, _ = tree(1)
    # 1e8 → 1e-3: a + (b − a) misses b even in float64; the ends must still be b bit for bit.
    a["dense"]["bias"][:] = [1e8, 0.1, 3.3]
    b["dense"]["bias"][:] = [1e-3, 0.7, -2.1]
    alpha = np.linspace(0.0, 1.0, 11)
    stacked = lmc.interpolate(a, b, alpha)
    for x, y, s in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(stacked)):
        assert s.dtype == np.float32 and s.shape == (11, *x.shape)
        np.testing.assert_array_equal(s[0], x)
        np.testing.assert_array_equal(s[-1], y)
        np.testing.assert_allclose(s[5], 0.5 * (x.astype(np.float64) + y), rtol=1e-6, atol=1e-7)
    # A with itself: every α is A exactly ((1 − α)·A + α·A is not, for most α).
    for x, s in zip(jax.tree.leaves(a), jax.tree.leaves(lmc.interpolate(a, a, alpha))):
        np.testing.assert_array_equal(s, np.broadcast_to(x, s.shape))


@pytest.fixture(scope="module")
def pendulum():
    task = build_task(ControlSpec("pendulum", train_episodes=2, test_episodes=2), MLPSpec(hidden=(8,)))
    a = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    b = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(1)))
    return task, a, b


def test_lmc_on_a_real_task(pendulum) -> None:
    task, a, b = pendulum
    key = jax.random.PRNGKey(3)
    same = lmc.lmc(task, a, a, key, points=5)
    assert same.barrier == 0.0 and same.barrier_linear == 0.0 and same.error_of == "return"
    assert len(set(same.error.tolist())) == 1  # every point is A itself
    line = lmc.lmc(task, a, b, key, points=3)
    # The endpoints are each network's own test error, bit for bit as the same evaluator gives it alone ...
    for end, params in ((0, a), (-1, b)):
        alone = lmc.evaluate_points(task, jax.tree.map(lambda x: x[None], params), key)
        assert line.error[end] == lmc.to_error(alone["metric"], "return")[0]
        # ... and as `evaluate` (another compiled program) gives it.
        assert line.error[end] == pytest.approx(-evaluate(task, params, key)["metric"], rel=1e-6)
    assert line.barrier == pytest.approx(np.max(line.error) - (line.error[0] + line.error[-1]) / 2)
    assert line.barrier_linear == pytest.approx(lmc.barrier_linear(line.alpha, line.error))
    rec = line.to_json()
    assert rec["barrier_definition"] == lmc.BARRIER_DEFINITION == "frankle2020"
    assert rec["barrier"] == line.barrier and rec["barrier_linear"] == line.barrier_linear


def fake_checkpoint(name: str, task: str, params: dict, kind: str = "trained") -> Checkpoint:
    state = {"init": params, "mask": jax.tree.map(lambda a: np.ones(a.shape, np.uint8), params)}
    if kind == "trained":
        state |= {"mean": params, "best": params}
    meta = {"kind": kind, "schema": 2, "task": {"name": task, "kind": "vision"}, "model": {"kind": "cnn"},
            "trainer": {"name": "adam"}, "metric": "accuracy", "seed": 0, "level": 0, "arm": "dense",
            "sparsity": {"global": 0.0}}  # fmt: skip
    return Checkpoint(Path(name), state, meta)


def test_lmc_refuses_other_tasks_architectures_and_tickets() -> None:
    a, _ = tree(0)
    wide = jax.tree.map(lambda x: np.zeros((*x.shape[:-1], x.shape[-1] + 1), x.dtype), a)
    lmc.check_compatible(fake_checkpoint("A", "mnist", a), fake_checkpoint("B", "mnist", tree(1)[0]))
    with pytest.raises(BadInput, match="one task"):
        lmc.check_compatible(fake_checkpoint("A", "mnist", a), fake_checkpoint("B", "kmnist", a))
    with pytest.raises(BadInput, match="architectures"):
        lmc.check_compatible(fake_checkpoint("A", "mnist", a), fake_checkpoint("B", "mnist", wide))
    with pytest.raises(BadInput, match="is a ticket"):
        lmc.trained_params(fake_checkpoint("T", "mnist", a, kind="ticket"))
    with pytest.raises(BadInput, match="final or best"):
        lmc.trained_params(fake_checkpoint("A", "mnist", a), "last")


def test_directions_are_filter_and_neuron_normalised_and_masked() -> None:
    weights, mask = tree(0)
    (d,) = sharpness.directions(7, 1, weights, mask)
    for layer in ("conv0", "dense"):
        k, w, m = d[layer]["kernel"], weights[layer]["kernel"], mask[layer]["kernel"]
        axes = tuple(range(k.ndim - 1))  # every axis but the output one
        norm = lambda a, axes=axes: np.sqrt((a.astype(np.float64) ** 2).sum(axes))
        np.testing.assert_allclose(norm(k), norm(w * m), rtol=1e-5)
        assert (k[m == 0] == 0).all()  # pruned weights stay pruned
        assert (d[layer]["bias"] == 0).all()  # biases do not move
    assert (d["conv0"]["kernel"][..., 1] == 0).all()  # a fully pruned filter has no direction


def _items(tree: dict, path: tuple = ()) -> list[tuple[tuple, np.ndarray]]:
    """(path, leaf) pairs of a nested dict, keys sorted (the order jax.tree flattens dicts in)."""
    out = []
    for k in sorted(tree):
        out += _items(tree[k], (*path, k)) if isinstance(tree[k], dict) else [((*path, k), tree[k])]
    return out


def hand_directions(seed: int, n: int, weights0: dict, mask0: dict, mask: dict) -> list[dict]:
    """Appendix A.3 by hand: draw at level 0, filter-normalise there (Li et al., 2018), mask, no renormalising.

    The draw is direction i's key ``fold_in(PRNGKey(seed), i)`` split over the leaves;
    everything after it is plain numpy, filter by filter.
    """
    w0, m0, m = _items(weights0), dict(_items(mask0)), dict(_items(mask))
    out = []
    for i in range(n):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), i), len(w0))
        d: dict = {}
        for key, (path, w) in zip(keys, w0):
            raw = np.asarray(jax.random.normal(key, w.shape), np.float64)
            leaf = np.zeros(w.shape)  # biases do not move
            if path[-1] == "kernel":
                for j in range(w.shape[-1]):  # one output filter / neuron at a time
                    dj = raw[..., j] * m0[path][..., j]
                    wj = np.asarray(w, np.float64)[..., j] * m0[path][..., j]
                    if np.linalg.norm(dj) > 0:
                        leaf[..., j] = dj * np.linalg.norm(wj) / np.linalg.norm(dj)
                leaf = leaf * m[path]  # this level's mask, applied after normalising
            node = d
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = leaf
        out.append(d)
    return out


def test_directions_from_level_0_are_normalised_there_then_masked_not_renormalised() -> None:
    weights0, mask0 = tree(0, sparse=False)  # the level-0 dense network
    params, mask = tree(1)  # a sparse later level
    dirs = sharpness.masked(sharpness.directions(3, 2, weights0, mask0), mask)
    hand = hand_directions(3, 2, weights0, mask0, mask)
    for d, h in zip(dirs, hand):
        for (path, x), (_, y) in zip(_items(d), _items(h)):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=str(path))
    # Not renormalised to the masked level-0 weights (what per-level normalisation would give).
    k, w0, m = dirs[0]["dense"]["kernel"], weights0["dense"]["kernel"], mask["dense"]["kernel"]
    assert not np.allclose(np.linalg.norm(k, axis=0), np.linalg.norm(w0 * m, axis=0), rtol=1e-3)
    assert (k[m == 0] == 0).all() and (dirs[1]["conv0"]["kernel"][..., 1] == 0).all()
    # The same vectors at every level: another mask only zeroes more entries of the same draw.
    other = sharpness.masked(sharpness.directions(3, 2, weights0, mask0), mask0)
    np.testing.assert_array_equal(dirs[1]["dense"]["kernel"], other[1]["dense"]["kernel"] * m)
    first = sharpness.directions(3, 1, weights0, mask0)  # direction i does not depend on how many are drawn
    np.testing.assert_array_equal(first[0]["dense"]["kernel"], other[0]["dense"]["kernel"])

    # Evaluated: the loss along t·d at this level's weights, against the hand-built networks.
    centre = params["dense"]["kernel"].astype(np.float64) + 0.3

    def toy(stacked: dict) -> dict[str, np.ndarray]:
        loss = ((np.asarray(stacked["dense"]["kernel"], np.float64) - centre[None]) ** 2).sum((1, 2))
        loss += (np.asarray(stacked["conv0"]["kernel"], np.float64) ** 2).sum((1, 2, 3, 4))
        return {"loss": loss, "metric": -loss}

    prof = sharpness.profile_1d(toy, params, dirs, radius=0.5, points=3)
    for i, h in enumerate(hand):
        for j, t in enumerate([-0.5, 0.0, 0.5]):
            dense = params["dense"]["kernel"].astype(np.float64) + t * h["dense"]["kernel"]
            conv = params["conv0"]["kernel"].astype(np.float64) + t * h["conv0"]["kernel"]
            expected = ((dense - centre) ** 2).sum() + (conv**2).sum()
            assert prof.loss[i, j] == pytest.approx(expected, rel=1e-5)


def test_directions_from_a_sparser_checkpoint_are_refused() -> None:
    _, dense_mask = tree(0, sparse=False)
    _, sparse_mask = tree(1)
    sharpness.check_mask_within(sparse_mask, dense_mask, "L00")
    with pytest.raises(BadInput, match="prunes weights the measured checkpoint keeps"):
        sharpness.check_mask_within(dense_mask, sparse_mask, "L03")


def test_curvature_of_a_quadratic_loss_is_recovered() -> None:
    params, mask = tree(0)
    dirs = sharpness.directions(0, 3, params, mask)
    centre = params["dense"]["kernel"].astype(np.float64)

    def toy(stacked: dict) -> dict[str, np.ndarray]:
        # L(θ) = 3·|Δ|² + 0.5·ΣΔ + 2 over the dense kernel: second derivative 6·|d|² along d.
        delta = np.asarray(stacked["dense"]["kernel"], np.float64) - centre[None]
        loss = 3.0 * (delta**2).sum((1, 2)) + 0.5 * delta.sum((1, 2)) + 2.0
        return {"loss": loss, "metric": -loss}

    prof = sharpness.profile_1d(toy, params, dirs, radius=0.5, points=5)
    assert prof.loss.shape == (3, 5) and prof.t[0] == -0.5 and prof.t[-1] == 0.5
    expected = [6.0 * float((d["dense"]["kernel"].astype(np.float64) ** 2).sum()) for d in dirs]
    np.testing.assert_allclose(prof.curvature, expected, rtol=1e-4)
    assert prof.curvature_mean == pytest.approx(np.mean(expected), rel=1e-4)
    np.testing.assert_allclose(sharpness.curvature(np.array([-1.0, 0.0, 1.0]), np.array([1.0, 0.0, 1.0])), [2.0])

    surf = sharpness.surface_2d(toy, params, dirs[0], dirs[1], radius=1.0, grid=3)
    assert surf.loss.shape == (3, 3) and surf.loss[1, 1] == pytest.approx(2.0, rel=1e-5)


def test_surface_file_is_refused_when_present(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "L01-snr-trained"
    path = paths.surface(ckpt, 4)
    assert path == (tmp_path / "run" / "L01-snr-trained-surface-seed4.npz").resolve()
    surf = sharpness.Surface(np.zeros(2), np.zeros(2), np.ones((2, 2)), np.ones((2, 2)))
    sharpness.check_writable(path, force=False)
    sharpness.save_surface(path, surf)
    with np.load(path) as z:
        assert z["loss"].shape == (2, 2) and set(z.files) >= {"alpha", "beta", "loss", "metric"}
    with pytest.raises(BadInput, match="--force"):
        sharpness.check_writable(path, force=False)
    sharpness.check_writable(path, force=True)
    # beside it, only its record (the SHA-256 that lets --force replace it): no temp files left
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, f".{path.name}.eslt"])


def test_force_replaces_only_an_unchanged_surface_eslt_wrote(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    surf = sharpness.Surface(np.zeros(2), np.zeros(2), np.ones((2, 2)), np.ones((2, 2)))
    sharpness.save_surface(path, surf)
    sharpness.check_writable(path, force=True)
    np.savez(path, alpha=np.zeros(2), beta=np.zeros(2), loss=np.zeros((2, 2)), metric=np.zeros((2, 2)))
    with pytest.raises(BadInput, match="has changed since eslt wrote it: --force replaces only a surface"):
        sharpness.check_writable(path, force=True)  # a surface by its arrays, but not the one eslt wrote
    (tmp_path / ".s.npz.eslt").unlink()  # a surface from before eslt kept records
    with pytest.raises(BadInput, match="has no record of eslt writing it.*remove it by hand"):
        sharpness.check_writable(path, force=True)
    ckpt = tmp_path / "L01-snr-trained"
    ckpt.mkdir()
    with pytest.raises(BadInput, match="inside the input"):
        sharpness.check_writable(ckpt / "s.npz", force=False, inputs=[ckpt])

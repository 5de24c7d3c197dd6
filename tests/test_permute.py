"""Permuted tickets: pure functions on a tiny hand-made pytree, and the command in-process."""

from collections import Counter
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import TINY_CONTROL

from eslt_cli import checkpoint, paths
from eslt_cli.permute import permute_mask, permute_weights


def ticket(seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    init = {
        "a": {"kernel": rng.normal(size=(4, 5)).astype(np.float32), "bias": rng.normal(size=5).astype(np.float32)},
        "b": {"kernel": rng.normal(size=(5, 3)).astype(np.float32), "bias": rng.normal(size=3).astype(np.float32)},
    }
    mask = {layer: {k: (rng.random(v.shape) < 0.6).astype(np.uint8) if k == "kernel" else np.ones(v.shape, np.uint8)
                    for k, v in leaves.items()} for layer, leaves in init.items()}  # fmt: skip
    return init, mask


def survivors(init: dict, mask: dict, layer: str) -> Counter:
    return Counter(init[layer]["kernel"][mask[layer]["kernel"] == 1].tolist())


def test_permute_weights_keeps_mask_and_values() -> None:
    init, mask = ticket()
    new = permute_weights(jax.random.PRNGKey(0), init, mask)
    for layer in init:
        assert survivors(new, mask, layer) == survivors(init, mask, layer)
        assert (new[layer]["kernel"][mask[layer]["kernel"] == 0] == 0).all()
        np.testing.assert_array_equal(new[layer]["bias"], init[layer]["bias"])
    assert not np.array_equal(new["a"]["kernel"] * mask["a"]["kernel"], init["a"]["kernel"] * mask["a"]["kernel"])
    again = permute_weights(jax.random.PRNGKey(0), init, mask)
    other = permute_weights(jax.random.PRNGKey(1), init, mask)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(new["a"]["kernel"], other["a"]["kernel"])


def test_permute_mask_keeps_layer_counts_and_values() -> None:
    init, mask = ticket()
    new_init, new_mask = permute_mask(jax.random.PRNGKey(0), init, mask)
    for layer in init:
        assert new_mask[layer]["kernel"].sum() == mask[layer]["kernel"].sum()
        assert new_mask[layer]["kernel"].dtype == np.uint8
        assert survivors(new_init, new_mask, layer) == survivors(init, mask, layer)
        assert (new_init[layer]["kernel"][new_mask[layer]["kernel"] == 0] == 0).all()
        np.testing.assert_array_equal(new_init[layer]["bias"], init[layer]["bias"])
        np.testing.assert_array_equal(new_mask[layer]["bias"], mask[layer]["bias"])
    assert not np.array_equal(new_mask["a"]["kernel"], mask["a"]["kernel"])
    again = permute_mask(jax.random.PRNGKey(0), init, mask)
    for a, b in zip(jax.tree.leaves((new_init, new_mask)), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def snr_ticket(tmp_path_factory: pytest.TempPathFactory) -> str:
    from conftest import run_cli

    root = tmp_path_factory.mktemp("permute")
    code, dense, err = run_cli("train", "--task", "pendulum", "--seed", "0", "--out", str(root / "L00-trained"),
                               *TINY_CONTROL)  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli("prune", "--snr", dense.strip())
    assert code == 0, err
    return out.strip()


@pytest.mark.parametrize("variant", ["weights", "mask"])
def test_permute_cli(cli, snr_ticket: str, variant: str) -> None:
    code, out, err = cli("permute", f"--{variant}", "--seed", "2", stdin=snr_ticket + "\n")
    assert code == 0, err
    path = out.strip()
    assert path.endswith(f"L01-snr-perm-{variant}-s2")
    new, old = checkpoint.load(path), checkpoint.load(snr_ticket)
    assert new.kind == "ticket" and new.meta["level"] == old.meta["level"]
    assert new.meta["arm"] == f"snr+perm-{variant}"
    assert new.meta["permutation"] == {"variant": variant, "seed": 2}
    assert paths.follow(new.path, new.meta["parent"]) == Path(snr_ticket).absolute()
    assert paths.follow(new.path, new.meta["lineage"][-1]) == Path(snr_ticket).absolute()
    assert new.meta["sparsity"] == old.meta["sparsity"]
    for layer in old.state["init"]:
        before = survivors(old.state["init"], old.state["mask"], layer)
        assert survivors(new.state["init"], new.state["mask"], layer) == before
    code, again, err = cli("permute", f"--{variant}", "--seed", "2", snr_ticket)
    assert code == 0 and again == out and "up to date" in err
    # The permuted ticket trains.
    code, trained, err = cli("train", path)
    assert code == 0, err


def test_permute_cli_bad_usage(cli, snr_ticket: str) -> None:
    assert cli("permute", snr_ticket)[0] == 2
    assert cli("permute", "--weights", "--mask", snr_ticket)[0] == 2
    dense = str(paths.follow(Path(snr_ticket), checkpoint.read_meta(snr_ticket)["parent"]))
    code, _, err = cli("permute", "--weights", dense)
    assert code == 2 and "permute a ticket" in err

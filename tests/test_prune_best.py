"""``eslt prune --from best`` scores the best mean with the search std it was scored with (state/std_best)."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from conftest import TINY_CONTROL, run_cli

from eslt_cli import checkpoint, pruning


def test_from_best_uses_the_std_stored_with_the_best_mean(tmp_path: Path) -> None:
    out = tmp_path / "L00-trained"
    code, _, err = run_cli("-q", "train", "--task", "pendulum", *TINY_CONTROL, "--generations", "6", "--eval-every",
                           "1", "--out", str(out))  # fmt: skip
    assert code == 0, err
    trained = checkpoint.load(out)
    assert "std_best" in trained.state
    code, line, err = run_cli("-q", "prune", "--snr", "--from", "best", str(out))
    assert code == 0, err
    ticket = checkpoint.load(line.strip())
    key = jax.random.fold_in(jax.random.PRNGKey(0), 1)
    s = trained.state
    expected = pruning.prune(key, "snr", s["best"], s["std_best"], s["mask"], 0.8, (), s["init"], None)
    for a, b in zip(jax.tree.leaves(ticket.state["mask"]), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)
    # This run's best is not its last generation, so the std moved on after it, and scoring with the
    # final std would give another mask: the test tells the two apart.
    assert trained.meta["metrics"]["best"]["generation"] < trained.meta["trainer"]["generations"]
    with_final_std = pruning.prune(key, "snr", s["best"], s["std"], s["mask"], 0.8, (), s["init"], None)
    assert any((a != b).any() for a, b in zip(jax.tree.leaves(with_final_std), jax.tree.leaves(expected), strict=True))

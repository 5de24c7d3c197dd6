"""Bit-identity of checkpoint arrays: the same commands write the same numbers (issue 25).

A refactor that changes no behaviour must leave every array eslt writes unchanged. This test runs a
fixed chain of tiny commands (:data:`STEPS`, in-process through ``conftest.run_cli``, once per
module) and compares a SHA-256 of each written checkpoint's state arrays with
``tests/fixtures/identity.json``. The chain covers ES on pendulum (snes with the CPU preset;
sep_cma_es and pgpe with ``--preset paper`` and tiny overrides), ES on a subset of the real
Fashion-MNIST (CPU preset, and ``--preset paper`` with its own strategy), Adam on the same subset,
PPO on pendulum and ES on one brax task (inverted_pendulum, 5-step episodes: the observation
normaliser arrays); every pruning criterion where it applies (magnitude, snr, random, random
``--reinit``, movement, snip, grasp), ``permute --weights/--mask``, ``transfer --task
pendulum_heavy / --strategy / --trainer ppo|adam``, and the training of tickets by each trainer.

The hash covers the arrays only: every array of every state item (``init``, ``mask``, ``mean``,
``best``, ``std``, ``obs_norm``, ...), items in sorted order, each array as its tree path, dtype,
shape and bytes; the fixture also keeps one hash per item, so a failure names the items that
changed. The checkpoint's own ``meta["digest"]`` hashes the settings record (the fingerprint) too:
a refactor of the settings records that changes no number changes that digest, not this hash.

Recorded with JAX 0.10.2 on the 2-core x86-64 (AMD EPYC) CPU machine the CI runs on, with both
cores visible to XLA. Floats may differ on another CPU, BLAS or XLA build; the CI machine is of the
same kind, so an exact SHA-256 is right here, with one exception: Adam's convolution gradients
reduce in an order that depends on how many threads XLA's CPU backend uses (`taskset -c 0` gives
other last bits than two cores, measured 2026-12-05; the CI failed on it once). The steps of
:data:`THREAD_DEPENDENT` therefore compare per-item sums (of x, |x| and x squared, float64) within a
relative 1e-4 instead of the hash; every other step must match bit for bit. A deliberate change of
numbers (a new default, a bug fix, a new JAX) re-records the fixture, on two cores::

    ESLT_REGEN_IDENTITY=1 .venv/bin/python -m pytest -n 0 tests/test_identity.py

and says why in its commit. A command changed in :data:`STEPS` without re-recording fails (the
fixture records each command). Time, measured with ``--durations`` on one core of the 2-core
machine under load: 24-34 s with a warm JAX compilation cache (the brax step about 10 s of it),
93 s with an empty one. Skipped without the Fashion-MNIST package.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import FASHION, TINY_CONTROL, TINY_VISION, fashion_subset, run_cli

from eslt_cli import checkpoint

FIXTURE = Path(__file__).with_name("fixtures") / "identity.json"
REGEN = os.environ.get("ESLT_REGEN_IDENTITY") == "1"

PAPER_SEP = ["--strategy", "sep_cma_es", "--preset", "paper", *TINY_CONTROL]
TINY_ADAM = ["--epochs", "1", "--batch-size", "64", "--eval-every", "1"]
TINY_BRAX = ["--population", "2", "--generations", "1", "--eval-every", "1", "--train-episodes", "1",
             "--test-episodes", "1", "--episode-length", "5"]  # fmt: skip
TINY_PPO = ["--timesteps", "512", "--num-envs", "4", "--rollout-steps", "32", "--eval-every", "2",
            "--test-episodes", "2"]  # fmt: skip

# Each step: the name of the checkpoint it writes and the command, less `--out`. "@name" is the
# path of an earlier step's checkpoint, "@data" the Fashion-MNIST subset. Every step writes to
# `--out <tmp>/<name>`.
STEPS: list[tuple[str, list[str]]] = [
    # ES on control: snes with the CPU defaults, every criterion, permutations, transfers.
    ("pend-snes", ["train", "--task", "pendulum", "--strategy", "snes", "--seed", "0", *TINY_CONTROL]),
    ("pend-snes.magnitude", ["prune", "--magnitude", "@pend-snes"]),
    ("pend-snes.snr", ["prune", "--snr", "@pend-snes"]),
    ("pend-snes.random", ["prune", "--random", "@pend-snes"]),
    ("pend-snes.random-reinit", ["prune", "--random", "--reinit", "@pend-snes"]),
    ("pend-snes.movement", ["prune", "--movement", "--from", "best", "@pend-snes"]),
    ("pend-snes.snr.trained", ["train", "@pend-snes.snr"]),
    ("pend-snes.snr.trained.snr", ["prune", "--snr", "--rate", "0.5", "@pend-snes.snr.trained"]),
    ("pend-snes.snr.perm-weights", ["permute", "--weights", "--seed", "1", "@pend-snes.snr"]),
    ("pend-snes.snr.perm-mask", ["permute", "--mask", "--seed", "1", "@pend-snes.snr"]),
    ("pend-snes.snr.to-heavy", ["transfer", "--task", "pendulum_heavy", "@pend-snes.snr"]),
    ("pend-snes.snr.to-heavy.trained", ["train", "@pend-snes.snr.to-heavy"]),
    ("pend-snes.snr.to-sep", ["transfer", "--strategy", "sep_cma_es", "@pend-snes.snr"]),
    ("pend-snes.snr.to-sep.trained", ["train", "@pend-snes.snr.to-sep"]),
    ("pend-snes.snr.to-ppo", ["transfer", "--trainer", "ppo", "@pend-snes.snr"]),
    ("pend-snes.snr.to-ppo.trained", ["train", *TINY_PPO, "@pend-snes.snr.to-ppo"]),
    # ES on control with the paper's settings (sep_cma_es, paper constants, --snr-std code).
    ("pend-sep-paper", ["train", "--task", "pendulum", *PAPER_SEP]),
    ("pend-sep-paper.snr", ["prune", "--snr", "@pend-sep-paper"]),
    ("pend-sep-paper.snr.trained", ["train", "@pend-sep-paper.snr"]),
    ("pend-pgpe-paper", ["train", "--task", "pendulum", "--strategy", "pgpe", "--preset", "paper", *TINY_CONTROL]),
    # PPO on control.
    ("pend-ppo", ["train", "--task", "pendulum", "--trainer", "ppo", *TINY_PPO]),
    ("pend-ppo.magnitude", ["prune", "--magnitude", "@pend-ppo"]),
    # ES on vision: the pruning-at-init criteria need a vision task.
    ("fm-snes", ["train", "--task", "fashion_mnist", "--data-dir", "@data", *TINY_VISION]),
    ("fm-snes.snr", ["prune", "--snr", "@fm-snes"]),
    ("fm-snes.snip", ["prune", "--snip", "@fm-snes"]),
    ("fm-snes.grasp", ["prune", "--grasp", "@fm-snes"]),
    ("fm-snes.snr.to-adam", ["transfer", "--trainer", "adam", "@fm-snes.snr"]),
    ("fm-paper", ["train", "--task", "fashion_mnist", "--preset", "paper", "--data-dir", "@data", *TINY_VISION]),
    # Adam on vision.
    ("fm-adam", ["train", "--task", "fashion_mnist", "--trainer", "adam", "--data-dir", "@data", *TINY_ADAM]),
    ("fm-adam.magnitude", ["prune", "--magnitude", "@fm-adam"]),
    ("fm-adam.magnitude.trained", ["train", "--data-dir", "@data", "@fm-adam.magnitude"]),
    # ES on brax: one task, 5-step episodes (observation normaliser arrays in the state).
    ("brax", ["train", "--task", "inverted_pendulum", *TINY_BRAX]),
    ("brax.snr", ["prune", "--snr", "@brax"]),
]
DATA = (512, 256)  # the first training and test images of the real Fashion-MNIST
# Steps whose arrays depend on the thread count (Adam's gradients, see the docstring): compared by sums.
THREAD_DEPENDENT = {"fm-adam", "fm-adam.magnitude.trained"}


def arrays_sha256(state: dict) -> tuple[str, dict[str, str], dict[str, list[float]]]:
    """SHA-256 of all arrays (sorted keys; tree path, dtype, shape, bytes each), one per state item,
    and each item's sums of x, |x| and x squared (float64)."""
    total, items, sums = hashlib.sha256(), {}, {}
    for key in sorted(state):
        if state[key] is None:
            continue
        h, moments = hashlib.sha256(), np.zeros(3)
        for where, leaf in jax.tree_util.tree_flatten_with_path(state[key])[0]:
            a = np.ascontiguousarray(np.asarray(leaf))
            record = f"{key}{jax.tree_util.keystr(where)}:{a.dtype}{a.shape}".encode()
            for target in (h, total):
                target.update(record)
                target.update(a.tobytes())
            x = a.astype(np.float64)
            moments += [x.sum(), np.abs(x).sum(), (x * x).sum()]
        items[key], sums[key] = h.hexdigest(), moments.tolist()
    return total.hexdigest(), items, sums


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Runs :data:`STEPS` once; each checkpoint's command and hashes, by step name."""
    if not FASHION.exists():
        pytest.skip("apt-get install dataset-fashion-mnist")
    root = tmp_path_factory.mktemp("identity")
    paths = {"data": str(fashion_subset(root / "data", *DATA))}
    records: dict[str, dict] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ESLT_HOME", str(root / "runs"))
        for name, command in STEPS:
            failed = [arg[1:] for arg in command if arg.startswith("@") and arg[1:] not in paths]
            if failed:
                records[name] = {"command": " ".join(command), "error": f"needs {failed[0]}, which failed"}
                continue
            args = [paths[arg[1:]] if arg.startswith("@") else arg for arg in command]
            code, out, err = run_cli(*args, "--out", str(root / name))
            if code != 0:
                records[name] = {"command": " ".join(command), "error": f"eslt {' '.join(args)}: {err}"}
                continue
            paths[name] = out.strip()
            total, items, sums = arrays_sha256(checkpoint.load(paths[name]).state)
            records[name] = {"command": " ".join(command), "sha256": total, "arrays": items, "sums": sums}
    if REGEN:
        assert not any("error" in r for r in records.values()), "a step failed: nothing re-recorded"
        FIXTURE.parent.mkdir(exist_ok=True)
        record = {"jax": jax.__version__, "data": list(DATA), "checkpoints": records}
        FIXTURE.write_text(json.dumps(record, indent=1) + "\n")
    return records


@pytest.mark.parametrize("name", [name for name, _ in STEPS])
def test_arrays_bit_identical(written: dict[str, dict], name: str) -> None:
    expected = json.loads(FIXTURE.read_text())
    assert expected["data"] == list(DATA), "the data subset changed: re-record (see the docstring)"
    want, got = expected["checkpoints"].get(name), written[name]
    assert "error" not in got, got.get("error")
    assert want is not None, f"{name} is not in {FIXTURE.name}: re-record (see the docstring)"
    assert got["command"] == want["command"], f"{name}'s command changed: re-record (see the docstring)"
    if name in THREAD_DEPENDENT:
        assert want["sums"].keys() == got["sums"].keys(), f"{name}: state items changed"
        off = sorted(
            k for k, w in want["sums"].items() if not np.allclose(got["sums"][k], w, rtol=1e-4, atol=1e-4 * w[1])
        )
        assert not off, f"{name}: sums changed beyond 1e-4: {off} ({got['sums']} != {want['sums']})"
        return
    changed = sorted(
        k for k in want["arrays"].keys() | got["arrays"].keys() if want["arrays"].get(k) != got["arrays"].get(k)
    )
    assert got["sha256"] == want["sha256"] and not changed, (
        f"{name}: arrays changed: {changed} (recorded with JAX {expected['jax']}, running {jax.__version__})"
    )

"""Crash safety: resume after SIGKILL/SIGTERM with identical results, locks, no partial outputs.

The runs that are killed are console-script processes; the resumes run in-process."""

import random
import signal
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
from conftest import REAL_ESLT, run_cli

from eslt_cli import checkpoint, outputs

ARGS = ["train", "--task", "pendulum", "--population", "8", "--generations", "60", "--eval-every", "2",
        "--save-every", "2", "--train-episodes", "2", "--test-episodes", "2", "--seed", "1"]  # fmt: skip


def start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([str(REAL_ESLT), *ARGS, "--out", str(out)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def assert_same_arrays(a: Path, b: Path) -> None:
    sa, sb = checkpoint.load(a).state, checkpoint.load(b).state
    assert set(sa) == set(sb)
    for x, y in zip(jax.tree.leaves(sa), jax.tree.leaves(sb), strict=True):
        np.testing.assert_array_equal(x, y)
    ma, mb = checkpoint.read_meta(a), checkpoint.read_meta(b)
    assert ma["history"] == mb["history"] and ma["metrics"] == mb["metrics"]


def test_sigkill_at_random_points_then_resume_is_bit_identical(tmp_path: Path) -> None:
    # In-process: only the kills need processes.
    code, stdout, err = run_cli(*ARGS, "--out", str(tmp_path / "reference"))
    assert code == 0, err
    reference = Path(stdout.strip())
    out = tmp_path / "killed"
    rng = random.Random(0)
    resumes = tmp_path / ".killed.resume"
    snapshots_seen = 0
    for _ in range(3):
        proc = start(out)
        # Kill at a random moment after the first snapshot exists, so every kill
        # after the first lands in a resumed run.
        deadline = time.time() + 120
        while time.time() < deadline and not resumes.exists() and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        snapshots_seen += resumes.exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # A kill never leaves a partial checkpoint: either none, or a complete, valid one
        # (the kill can land after the rename, before the process exits).
        if checkpoint.is_checkpoint(out):
            checkpoint.load(out)
    assert snapshots_seen > 0
    code, stdout, err = run_cli(*ARGS, "--out", str(out))  # the resume: in-process
    assert code == 0, err
    assert Path(stdout.strip()) == out
    assert_same_arrays(reference, out)
    assert not (tmp_path / ".killed.resume").exists()  # snapshots are cleared once the result is written


def test_sigterm_saves_and_exits_143_then_resumes(tmp_path: Path) -> None:
    for attempt in range(3):  # a run that finished before the signal arrived has nothing to resume: again
        out = tmp_path / f"term{attempt}"
        proc = start(out)
        deadline = time.time() + 120
        # Wait until training has saved a snapshot, then ask it to stop.
        while time.time() < deadline and not (tmp_path / f".term{attempt}.resume").exists() and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            break
    assert proc.returncode == 143, err
    assert "re-run the same command to resume" in err and "Traceback" not in err
    assert not checkpoint.is_checkpoint(out) and (tmp_path / f".term{attempt}.resume").exists()  # saved to resume
    code, stdout, err = run_cli(*ARGS, "--out", str(out))  # the resume: in-process
    assert code == 0, err
    assert Path(stdout.strip()) == out and not (tmp_path / f".term{attempt}.resume").exists()
    assert checkpoint.read_meta(out)["metrics"]["final"]["generation"] == 60


def test_a_second_job_on_the_same_output_stops(cli, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    with outputs.lock(out):
        code, stdout, err = cli(*ARGS, "--out", str(out))
    assert code == 1 and stdout == "" and "another eslt process is writing" in err
    assert not out.exists()

"""examples/imp.sh, the IMP sweep driver: checkpoints, idempotent re-runs, the sweep lock,
parallel chains and failed steps, through real subprocesses at tiny pendulum settings."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY_CONTROL, eslt_path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "imp.sh"
ARMS = ("snr", "random")
LEVELS = 2
Sweep = tuple[Path, subprocess.CompletedProcess[str]]  # its root and its process
EXPECTED = ["L00-trained"] + [
    f"L{k:02d}-{arm}{s}" for arm in ARMS for k in range(1, LEVELS + 1) for s in ("", "-trained")
]


def sweep_cmd(root: Path, *options: str, arms: str = ",".join(ARMS), levels: int = LEVELS) -> list[str]:
    return [str(SCRIPT), "--task", "pendulum", "--strategy", "snes", "--seeds", "0", "--arms", arms,
            "--levels", str(levels), "--root", str(root), *options, "--", *TINY_CONTROL]  # fmt: skip


def env() -> dict[str, str]:
    # The real console script, whether or not the venv is activated; the shared JAX cache.
    return {**os.environ, "PATH": eslt_path()}


def sweep(root: Path, *options: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sweep_cmd(root, *options, **kwargs), check=False, capture_output=True, text=True, timeout=600, env=env()
    )


def run_folder(root: Path) -> Path:
    return root / "pendulum-snes-seed0"


def log_of(root: Path) -> str:
    return (root / "imp-pendulum-snes.log").read_text()


def mtimes(folder: Path) -> dict[str, int]:
    """Modification times of every checkpoint folder in ``folder`` and of everything inside them
    (not of ``folder`` itself, where eslt's step locks come and go)."""
    paths = [p for name in EXPECTED for p in [folder / name, *(folder / name).rglob("*")]]
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in paths}


def state(path: Path) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The settings and results of a checkpoint that do not depend on where it lies, and its arrays."""
    import jax

    from eslt_cli import checkpoint

    ckpt = checkpoint.load(path)
    keys = ("kind", "task", "model", "trainer", "seed", "level", "arm", "sparsity", "pruning", "metrics", "history")
    meta: dict[str, Any] = {k: ckpt.meta[k] for k in keys if k in ckpt.meta}
    return meta, [np.asarray(a) for a in jax.tree.leaves(ckpt.state)]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Sweep]:
    """Three sweeps in three roots, side by side: ``serial``, -j 1 over ARMS and LEVELS;
    ``parallel``, -j 2 over one level (to save time) of ARMS and a third arm whose first step
    fails (snip scores need a vision task); ``batched``, --batch over ARMS, LEVELS and snip."""
    cmds = {
        "serial": sweep_cmd(tmp_path_factory.mktemp("serial"), "-j", "1"),
        "parallel": sweep_cmd(tmp_path_factory.mktemp("parallel"), "-j", "2", arms=",".join(ARMS) + ",snip", levels=1),
        "batched": sweep_cmd(tmp_path_factory.mktemp("batched"), "--batch", arms=",".join(ARMS) + ",snip"),
    }
    procs = {k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
             for k, c in cmds.items()}  # fmt: skip
    try:
        done = {k: (*p.communicate(timeout=600), p.returncode) for k, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    return {k: (Path(cmds[k][cmds[k].index("--root") + 1]), subprocess.CompletedProcess(cmds[k], rc, out, err))
            for k, (out, err, rc) in done.items()}  # fmt: skip


@pytest.fixture(scope="module")
def serial(sweeps: dict[str, Sweep]) -> Sweep:
    return sweeps["serial"]


@pytest.fixture(scope="module")
def parallel(sweeps: dict[str, Sweep]) -> Sweep:
    return sweeps["parallel"]


def test_help_and_usage_errors(tmp_path: Path) -> None:
    proc = subprocess.run([str(SCRIPT), "--help"], check=False, capture_output=True, text=True, env=env())
    assert proc.returncode == 0 and "Exit status" in proc.stdout and "75" in proc.stdout
    for bad in (["--arms", "snr,bogus"], ["--jobs", "0"], ["--", "--seed", "3"], ["--prune-options", "--snr"]):
        proc = subprocess.run([str(SCRIPT), "--root", str(tmp_path), *bad], check=False, capture_output=True, text=True,
                              env=env())  # fmt: skip
        assert proc.returncode == 2 and proc.stderr.startswith("imp.sh: error:"), (bad, proc.stderr)
    assert not list(tmp_path.glob("*-seed*"))


def test_sweep_writes_every_level_of_every_arm(serial: Sweep) -> None:
    root, proc = serial
    assert proc.returncode == 0, proc.stderr + log_of(root)
    folder = run_folder(root)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(EXPECTED)
    # stdout: the last checkpoint of each chain
    assert sorted(proc.stdout.split()) == sorted(str(folder / f"L{LEVELS:02d}-{arm}-trained") for arm in ARMS)
    for name in EXPECTED[1:]:
        meta, _ = state(folder / name)
        assert meta["arm"] == name.split("-")[1] and meta["level"] == int(name[1:3])
        assert meta["kind"] == ("trained" if name.endswith("-trained") else "ticket")
        assert meta["trainer"]["population"] == 8  # the pass-through train options reached every level
    log = log_of(root)
    assert "sweep: start" in log and "sweep: done: 2 of 2 chains finished" in log
    assert "seed0 snr L02 train: ok " in log and "seed0 random L01 prune: pruned by random" in log


def test_rerun_is_idempotent_and_holds_the_lock(serial: Sweep) -> None:
    root, first = serial
    assert first.returncode == 0
    before = mtimes(run_folder(root))
    rerun = subprocess.Popen(sweep_cmd(root, "-j", "2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env())  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while log_of(root).count("sweep: start") < 2:  # the re-run holds the lock once it logs its start
            assert rerun.poll() is None and time.monotonic() < deadline, "the re-run did not start"
            time.sleep(0.05)
        t0 = time.monotonic()
        second = sweep(root, "-j", "2")
        assert second.returncode == 75, second.stderr
        assert "another sweep" in second.stderr and ".lock" in second.stderr
        skipped = sweep(root, "-j", "2", "--skip-if-busy")  # cron's variant: quiet, exit 0
        assert (skipped.returncode, skipped.stdout, skipped.stderr) == (0, "", "")
        assert time.monotonic() - t0 < 20 and rerun.poll() is None  # both gave up at once, while the first ran
        out, err = rerun.communicate(timeout=300)
    finally:
        if rerun.poll() is None:
            rerun.kill()
    assert rerun.returncode == 0, err
    assert sorted(out.split()) == sorted(first.stdout.split())
    assert mtimes(run_folder(root)) == before  # nothing rewritten
    log = log_of(root)
    # the refused sweeps did nothing, and the re-run only found its outputs up to date
    assert log.count("sweep: start") == 2 and log.count("skipped (--skip-if-busy)") == 1
    this_run = log.rsplit("sweep: start", 1)[1]
    assert this_run.count("is up to date") == len(EXPECTED) and " gen " not in this_run


def test_parallel_chains_match_serial(serial: Sweep, parallel: Sweep) -> None:
    (root1, _), (root2, _) = serial, parallel
    names = [name for name in EXPECTED if name[:3] in ("L00", "L01")]
    assert sorted(p.name for p in run_folder(root2).iterdir() if not p.name.startswith(".")) == sorted(names)
    for name in names:
        meta1, arrays1 = state(run_folder(root1) / name)
        meta2, arrays2 = state(run_folder(root2) / name)
        assert meta1 == meta2, name
        assert len(arrays1) == len(arrays2) and all(np.array_equal(a, b) for a, b in zip(arrays1, arrays2)), name


def test_failed_step_stops_only_its_chain(parallel: Sweep) -> None:
    root, proc = parallel
    assert proc.returncode == 1
    assert "seed0 snip L01 prune: FAILED (exit 2)" in proc.stderr  # failures reach stderr without a terminal
    log = log_of(root)
    assert "--snip needs a vision task" in log and "FAILED: 2 of 3 chains finished" in log
    assert not (run_folder(root) / "L01-snip").exists()
    assert sorted(proc.stdout.split()) == sorted(str(run_folder(root) / f"L01-{arm}-trained") for arm in ARMS)


def test_batched_sweep_matches_serial_and_isolates_failures(serial: Sweep, sweeps: dict[str, Sweep]) -> None:
    (root1, _), (root2, proc) = serial, sweeps["batched"]
    assert proc.returncode == 1, proc.stderr
    assert "snip L01 prune: FAILED (exit 2)" in proc.stderr and "FAILED: 2 of 3 chains finished" in log_of(root2)
    assert sorted(proc.stdout.split()) == sorted(
        str(run_folder(root2) / f"L{LEVELS:02d}-{arm}-trained") for arm in ARMS
    )
    assert sorted(p.name for p in run_folder(root2).iterdir() if not p.name.startswith(".")) == sorted(EXPECTED)
    for name in EXPECTED:  # batched = alone up to float rounding (see tests/test_batch.py)
        meta1, arrays1 = state(run_folder(root1) / name)
        meta2, arrays2 = state(run_folder(root2) / name)
        assert {k: meta1[k] for k in ("seed", "level", "arm", "sparsity")} == {
            k: meta2[k] for k in ("seed", "level", "arm", "sparsity")
        }
        assert len(arrays1) == len(arrays2), name
        for a, b in zip(arrays1, arrays2):
            np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-5, atol=1e-6, err_msg=name)
    rerun = sweep(root2, "--batch", arms=",".join(ARMS))  # idempotent: every output is reused
    assert rerun.returncode == 0, rerun.stderr
    assert " gen " not in log_of(root2).split("sweep: start")[-1]


def test_no_script_pipes_into_grep_q() -> None:
    """Under pipefail, `printf ... | grep -q` reads as "no match" when grep quits early and printf
    dies of SIGPIPE; imp.sh once dropped a chain that way. The scripts match lines in bash instead."""
    scripts = sorted((ROOT / "examples").rglob("*.sh"))
    assert scripts
    piped = [f"{p.name}:{n}" for p in scripts for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\|\s*grep\s+-[A-Za-z]*q", line) and "pipefail" in p.read_text()]  # fmt: skip
    assert not piped, piped


def test_has_line_matches_whole_lines_only() -> None:
    text = (ROOT / "examples" / "imp.sh").read_text()
    function = re.search(r"^has_line\(\) \{\n.*?^\}\n", text, re.M | re.S)
    assert function is not None
    for args, found in ((["/a/L01-snr-trained", "/a/L01-snr-trained", "/b"], True),
                        (["/a/L01-snr", "/a/L01-snr-trained"], False), (["x"], False)):  # fmt: skip
        rc = subprocess.run(["bash", "-c", function.group(0) + 'has_line "$@"', "_", *args]).returncode
        assert (rc == 0) == found, args

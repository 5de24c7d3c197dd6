"""Shared test set-up: tiny settings, one JAX compilation cache for the whole run.

Compile time dominates small JAX tests, so every test process (pytest itself
and the ``eslt`` subprocesses it starts) shares a persistent compilation cache. Commands run
in-process (:func:`run_cli`) unless a separate process is the point (:func:`eslt`).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

# XLA's fast-compile flags (used by test_brax and test_paper_recipes) are not set for the whole
# suite: on 2026-12-02 they saved 7 % of its wall time (1112 s vs 1190 s, cold cache) and change
# the floats that test_schema1 checks bit for bit against eslt's normal compilation.
CACHE = os.environ.setdefault("ESLT_JAX_CACHE", str(Path.home() / ".cache" / "eslt" / "jax-tests"))


def pytest_configure(config: pytest.Config) -> None:
    """The test processes themselves use the cache from their first compilation, as eslt does."""
    from eslt_cli.cli import common

    common.setup_runtime()


FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not FASHION.exists(), reason="apt-get install dataset-fashion-mnist")

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encodes ``arr`` as an IDX file: magic, big-endian dims, big-endian data."""
    code = _CODES[arr.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray) -> Path:
    raw = idx_bytes(arr)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def fashion_subset(folder: Path, n_train: int, n_test: int) -> Path:
    """The first ``n_train``/``n_test`` real Fashion-MNIST images and labels as an IDX folder."""
    from eslt_cli.tasks.data import IDX_FILES, _find_idx, read_idx

    folder.mkdir(parents=True, exist_ok=True)
    for key, base in IDX_FILES.items():
        source = _find_idx(FASHION, base)
        assert source is not None, f"{FASHION} lacks {base}"
        write_idx(folder / base, read_idx(source)[: n_train if key.endswith("train") else n_test])
    return folder


# Tiny settings for every training run in the tests.
TINY_CONTROL = ["--population", "8", "--generations", "4", "--eval-every", "2", "--train-episodes", "2",
                "--test-episodes", "2"]  # fmt: skip
# A complete ticket meta (what `eslt prune` writes, less the numbers) for tests that save checkpoints by hand;
# its network, one 3x3 conv of 2 channels and a dense layer, fits CONV0 plus a dense layer of any size.
TICKET_META = {
    "kind": "ticket", "level": 1, "seed": 0, "arm": "snr", "metric": "accuracy",
    "task": {"name": "mnist", "batch_size": 32}, "model": {"kind": "cnn", "features": [2], "kernel_size": 3},
    "trainer": {"name": "es", "strategy": "snes", "population": 4, "generations": 2, "std_init": 0.02},
    "sparsity": {"global": 0.5}, "pruning": {"criterion": "snr", "rate": 0.2, "keep": 0.8},
    "parent": None, "lineage": [],
}  # fmt: skip
CONV0 = {"kernel": np.full((3, 3, 1, 2), 0.5, np.float32), "bias": np.zeros(2, np.float32)}
TINY_VISION = ["--population", "4", "--generations", "2", "--eval-every", "1", "--batch-size", "32"]


# The slowest files first (measured with --durations), so that pytest-xdist's workers, one file each
# at a time (--dist loadfile), start the long ones at once and finish together.
SLOW_FIRST = ("test_paper_recipes.py", "test_brax.py", "test_sweep.py", "test_cli.py", "test_gradient_cli.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESLT_HOME", str(tmp_path / "runs"))


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_cli(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``eslt ARGS`` in-process through the console-script entry point.

    ``stdin=None`` simulates a terminal; a string is piped. Returns (code, stdout, stderr).
    Usable from module-scoped fixtures; tests take it as the ``cli`` fixture.
    """
    from eslt_cli import cli as cli_module
    from eslt_cli.cli import common

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["eslt", *args])
        mp.setattr(sys, "stdin", TTY() if stdin is None else io.StringIO(stdin))
        try:
            with redirect_stdout(out), redirect_stderr(err):
                cli_module.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            common.QUIET = False
            cli_module.DEBUG = False
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli() -> Callable[..., tuple[int, str, str]]:
    return run_cli


# The console script beside this interpreter: works without an activated venv.
REAL_ESLT = Path(sys.executable).parent / "eslt"


def eslt_path() -> str:
    """``PATH`` with the venv's bin first, for scripts that call ``eslt`` (the real console script)."""
    return os.pathsep.join([str(REAL_ESLT.parent), os.environ["PATH"]])


def eslt(
    *args: str, stdin: str = "", check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real console script ``eslt ARGS`` in a subprocess (``env``: extra variables).

    For the tests whose point is a separate process (pipes, signals, what threads or C libraries
    print, XLA flags read at start-up); the rest run in-process through :func:`run_cli`.
    """
    proc = subprocess.run([str(REAL_ESLT), *args], input=stdin, capture_output=True, text=True, timeout=600,
                          env=None if env is None else {**os.environ, **env})  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"eslt {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc

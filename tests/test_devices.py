"""The population sharded over two (forced) host devices agrees with one device."""

import os
import subprocess
from pathlib import Path

import jax
import numpy as np
from conftest import REAL_ESLT, run_cli

from eslt_cli import checkpoint

ARGS = ["train", "--task", "pendulum", "--population", "8", "--generations", "4", "--eval-every", "2",
        "--train-episodes", "2", "--test-episodes", "2"]  # fmt: skip


def test_two_devices_match_one(tmp_path: Path) -> None:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([str(REAL_ESLT), *ARGS, "--devices", "2", "--out", str(tmp_path / "d2")], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    two = checkpoint.load(tmp_path / "d2")
    assert two.meta["run"]["devices"] == 2
    code, _, err = run_cli(*ARGS, "--devices", "1", "--out", str(tmp_path / "d1"))  # this process: one device
    assert code == 0, err
    for a, b in zip(jax.tree.leaves(checkpoint.load(tmp_path / "d1").state), jax.tree.leaves(two.state)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    code, _, err = run_cli(*ARGS, "--population", "6", "--devices", "4", "--out", str(tmp_path / "x"))
    assert code == 2 and "--devices" in err and not (tmp_path / "x").exists()


def test_two_processes_through_jax_distributed(tmp_path: Path) -> None:
    """Two local processes (one CPU device each) train one run; process 0 writes it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "multi"
    procs = [
        subprocess.Popen(
            [
                str(REAL_ESLT),
                *ARGS,
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
                "--out",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    assert results[0][0].strip() == str(out) and results[1][0] == ""
    single = tmp_path / "single"
    assert run_cli(*ARGS, "--out", str(single))[0] == 0
    multi = checkpoint.load(out)
    assert multi.meta["run"]["devices"] == 2
    for a, b in zip(jax.tree.leaves(checkpoint.load(single).state), jax.tree.leaves(multi.state)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

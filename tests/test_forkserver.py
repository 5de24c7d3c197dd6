"""tests/forkserver.py behaves as the console script does: codes, streams, cwd, signals, fallback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import REAL_ESLT, fork_bin


def both(*args: str, cwd: Path, **kwargs: object) -> list[subprocess.CompletedProcess[str]]:
    """``eslt ARGS`` through the fork server and through the real console script."""
    return [subprocess.run([str(cmd), *args], cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]
            for cmd in (fork_bin() / "eslt", REAL_ESLT)]  # fmt: skip


def test_codes_streams_and_cwd_are_the_callers(tmp_path: Path) -> None:
    (tmp_path / "not-a-checkpoint").mkdir()
    forked, real = both("prune", "--snr", cwd=tmp_path, input="not-a-checkpoint\n")
    assert forked.returncode == real.returncode == 2
    assert (forked.stdout, forked.stderr) == (real.stdout, real.stderr)
    assert "not-a-checkpoint" in forked.stderr and len(forked.stderr.splitlines()) == 1
    forked, real = both("--version", cwd=tmp_path)
    assert forked.returncode == real.returncode == 0 and forked.stdout == real.stdout != ""
    # A JAX_* variable unlike the server's (read when jax is imported) runs the real script.
    forked, real = both("--version", cwd=tmp_path, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert forked.returncode == 0 and forked.stdout == real.stdout


def blocked_prune(tmp_path: Path) -> subprocess.Popen[str]:
    """``eslt prune --snr`` waiting for its input path on a pipe that stays open."""
    proc = subprocess.Popen([str(fork_bin() / "eslt"), "prune", "--snr"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)  # fmt: skip
    time.sleep(3)  # its child has started and reads stdin (a forked start takes well under a second)
    return proc


def test_sigterm_reaches_the_child(tmp_path: Path) -> None:
    proc = blocked_prune(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().endswith("eslt: interrupted"), err


def test_a_killed_client_takes_its_child_along(tmp_path: Path) -> None:
    proc = blocked_prune(tmp_path)
    proc.kill()
    # The child holds the same stdout and stderr: they reach end-of-file only once it is gone too.
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_the_pid_and_status_in_one_read(tmp_path: Path) -> None:
    """A client that reads late gets both of the server's lines in one read, and still exits with the status."""
    path = str(tmp_path / "socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        code = "import forkserver, sys; forkserver.client(*sys.argv[1:])"
        client = subprocess.Popen([sys.executable, "-S", "-c", code, path, "/bin/false"], cwd=Path(__file__).parent,
                                  stdin=subprocess.DEVNULL)  # fmt: skip
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1, 3)
            for fd in fds:
                os.close(fd)
            conn.makefile("rb").readline()
            conn.sendall(f"pid {2**22 + 1}\n{7 << 8}\n".encode())  # a child's exit status 7, in one write
        assert client.wait(timeout=60) == 7

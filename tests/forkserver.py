"""A fork server that starts the tests' ``eslt`` subprocesses without paying for Python imports.

A warm tiny ``eslt train`` spends about 3.5 of its 5.5 s importing jax, orbax, evosax, flax, optax
and gymnax's plotting stack (seaborn, pandas, scipy). (Not brax: tests/test_brax.py checks that
what importing it prints stays off stdout.) The server imports them once, then forks one
child per request; the child takes the caller's argv, working directory, environment and stdin,
stdout and stderr (passed as file descriptors over a Unix socket), runs ``eslt_cli.cli.main`` and
exits through the normal interpreter shutdown. The server never touches a JAX backend (forking an
initialised XLA client is unsafe); each child starts its own, as a fresh ``eslt`` would.

The client is a stdlib-only launcher that conftest writes as ``eslt`` into a folder of its own:
it forwards SIGINT, SIGTERM and SIGHUP to the child and exits with the child's status (a child
killed by a signal kills the client with it); when the client dies (SIGKILL), the server kills the
child. With no server, or an environment whose ``JAX_*`` variables differ from the server's (read
at import time), the client runs the real console script instead. Tests of the console script
itself (signals, resume) keep using the real one.

Run ``python tests/forkserver.py SOCKET`` to serve; it prints ``ready`` once it accepts requests.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import threading

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def client(sock_path: str, real: str) -> None:
    """The ``eslt`` launcher: runs ``eslt ARGV`` in a child of the server at ``sock_path``."""
    ignored = [signum for signum in FORWARDED if signal.getsignal(signum) is signal.SIG_IGN]  # e.g. a `&` job's SIGINT
    request = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ), "ignored": ignored}
    line = json.dumps(request).encode() + b"\n"
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(sock_path)
        socket.send_fds(conn, [line[:1]], [0, 1, 2])
        conn.sendall(line[1:])
        replies = conn.makefile("rb")  # buffered lines: the pid and the status may arrive in one read
        reply = replies.readline().split()
    except OSError:
        reply = []
    if reply[:1] != [b"pid"]:  # no server, or it said "exec"
        conn.close()
        os.execv(real, [real, *sys.argv[1:]])
    pid = int(reply[1])

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # the child has just exited
            os.kill(pid, signum)

    for signum in set(FORWARDED) - set(ignored):
        signal.signal(signum, forward)
    answer = replies.readline()
    if not answer:
        raise ConnectionError("the fork server closed the connection before the child exited")
    status = int(answer)
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    sys.exit(os.waitstatus_to_exitcode(status))


def _child(conn: socket.socket, fds: list[int], request: dict[str, object]) -> int:
    """In the forked child: become ``eslt ARGV`` on the caller's descriptors; returns the exit code."""
    conn.close()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum in FORWARDED:  # as a fresh interpreter would start, with the caller's ignored signals
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    for signum in request["ignored"]:  # type: ignore[attr-defined]
        signal.signal(signum, signal.SIG_IGN)
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(request["env"])  # type: ignore[arg-type]
    sys.argv = ["eslt", *request["argv"]]  # type: ignore[misc]
    from eslt_cli.cli import main

    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def _watch(conn: socket.socket, pid: int) -> None:
    """Sends the child's wait status to the client; kills the child if the client goes away."""
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd, conn], [], [])
    if pidfd not in ready:  # the client closed its end: it was killed
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    with contextlib.suppress(OSError):  # the client is gone
        conn.sendall(f"{status}\n".encode())
    conn.close()


def serve(sock_path: str) -> int:
    """Accepts requests until SIGTERM or its parent exits; returns the exit code (the child's own, in a child)."""
    import evosax  # noqa: F401  (the imports the children share; none of them starts a JAX backend)
    import flax.linen  # noqa: F401
    import jax  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import optax  # noqa: F401
    import orbax.checkpoint  # noqa: F401
    import pandas  # noqa: F401
    import rich.console  # noqa: F401
    import scipy.stats  # noqa: F401
    import seaborn  # noqa: F401
    import typer  # noqa: F401
    from jax._src import xla_bridge

    import eslt_cli.cli  # noqa: F401

    assert not xla_bridge._backends, "a pre-import started a JAX backend: forking it would be unsafe"
    env_jax = {k: v for k, v in os.environ.items() if k.startswith("JAX_")}
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener.settimeout(5)
    parent = os.getppid()
    print("ready", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the test process died without stopping this server
                return 0
            continue
        conn.setblocking(True)
        first, fds, _, _ = socket.recv_fds(conn, 1, 3)
        with conn.makefile("rb") as rest:
            request = json.loads(first + rest.readline())
        if {k: v for k, v in request["env"].items() if k.startswith("JAX_")} != env_jax or len(fds) != 3:
            conn.sendall(b"exec\n")
            conn.close()
            for fd in fds:
                os.close(fd)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            listener.close()
            return _child(conn, fds, request)
        for fd in fds:
            os.close(fd)
        conn.sendall(f"pid {pid}\n".encode())
        threading.Thread(target=_watch, args=(conn, pid), daemon=True).start()


if __name__ == "__main__":
    del sys.path[0]  # this folder: the children import eslt as the console script does
    sys.exit(serve(sys.argv[1]))

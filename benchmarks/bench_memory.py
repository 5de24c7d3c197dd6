"""Peak memory of a real ``eslt train`` run against the 4 GiB target.

Runs, as a child process with stdin closed (``subprocess.DEVNULL``),

    eslt train --task fashion_mnist --population 128 --batch-size 1024 \
        --generations 2 --eval-every 1 --out <tmpdir>/x

with ``ESLT_HOME`` (and the JAX compilation cache ``ESLT_JAX_CACHE``) pointed
at a fresh temporary folder, so the run is cold and writes nothing outside it.
Reports the child's peak resident set size, read from
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` once it has exited, in GiB
and as a ratio to the target (below 1: within target). This process imports no
JAX, so it adds nothing to what is measured.

    python benchmarks/bench_memory.py [--json] [--target-gib 4] [-- EXTRA eslt train OPTIONS]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1024**3


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def eslt_command() -> list[str]:
    """The ``eslt`` console script of this interpreter's environment, else ``python -m eslt_cli``."""
    script = Path(sys.executable).parent / "eslt"
    if script.exists():
        return [str(script)]
    found = shutil.which("eslt")
    return [found] if found else [sys.executable, "-m", "eslt_cli"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="fashion_mnist")
    p.add_argument("--population", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--target-gib", type=float, default=4.0)
    p.add_argument(
        "--user-jax-cache",
        action="store_true",
        help="use the normal JAX compilation cache instead of a cold one in the temp folder",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    p.add_argument("--json", action="store_true", help="also print the numbers as one JSON line")
    p.add_argument("extra", nargs="*", help="more `eslt train` options (after --)")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="eslt-bench-memory-"))
    env = dict(os.environ, ESLT_HOME=str(tmp / "home"))
    if not args.user_jax_cache:
        env["ESLT_JAX_CACHE"] = str(tmp / "jax-cache")
    cmd = [
        *eslt_command(),
        "train",
        "--task",
        args.task,
        "--population",
        str(args.population),
        "--batch-size",
        str(args.batch_size),
        "--generations",
        str(args.generations),
        "--eval-every",
        str(args.eval_every),
        "--out",
        str(tmp / "x"),
        *args.extra,
    ]
    log("running: " + " ".join(cmd))
    log(
        f"ESLT_HOME={env['ESLT_HOME']}"
        + (f" ESLT_JAX_CACHE={env['ESLT_JAX_CACHE']}" if "ESLT_JAX_CACHE" in env and not args.user_jax_cache else "")
    )
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env)
    finally:
        wall = time.perf_counter() - t0
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    # ru_maxrss: KiB on Linux, bytes on macOS; the largest of the waited-for children.
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak = maxrss / GIB if sys.platform == "darwin" else maxrss * 1024 / GIB
    ratio = peak / args.target_gib
    if proc.returncode != 0:
        log(f"eslt train exited with {proc.returncode}" + (" (killed: out of memory?)" if proc.returncode < 0 else ""))
    elif proc.stdout.strip():
        log(f"checkpoint: {proc.stdout.strip()}" + ("" if args.keep else " (removed)"))
    print(
        f"memory  eslt train {args.task}  pop {args.population}  batch {args.batch_size}  gens {args.generations}  "
        f"peak RSS {peak:.2f} GiB  target {args.target_gib:.2f} GiB  ratio {ratio:.2f}x  "
        f"(wall {wall:.0f} s, exit {proc.returncode})",
        flush=True,
    )
    if args.keep:
        print(f"  kept: {tmp}", flush=True)
    if args.json:
        print(
            json.dumps(
                {
                    "command": cmd,
                    "peak_rss_gib": peak,
                    "target_gib": args.target_gib,
                    "ratio": ratio,
                    "wall_s": wall,
                    "returncode": proc.returncode,
                }
            ),
            flush=True,
        )
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Start-up cost of eslt's commands: wall time of the real console script, and the heavy modules it imports.

Issue 25 asks for the wall times of ``eslt show CKPT``, ``eslt prune --snr CKPT`` and
``eslt train --task pendulum --generations 1`` before and after its refactor (warm JAX cache, same
run, median of 5). This script makes a tiny pendulum checkpoint in a temporary folder, runs every
command once to warm the JAX compilation cache, then runs the commands in turn ``--repeats`` times
(interleaved, so a change in machine load hits all of them alike) and prints each one's median.
Each command then runs once more under ``python -X importtime`` (not timed) to list which heavy
libraries it imports, what each cost (cumulative, so a package's time includes the packages it
pulled in first: seaborn's includes pandas'), and which module imported it first, with the nearest
``eslt_cli`` module above that ("run time": an import inside a function, or by the script itself).

The commands run the ``eslt`` console script beside this interpreter, in a pipe (stdout captured,
stdin empty), as in ``eslt train | eslt prune``:

- ``show``: ``eslt show CKPT``
- ``prune (up to date)``: ``eslt prune --snr CKPT`` whose output exists with the same settings
- ``prune (fresh)``: ``eslt prune --snr CKPT --out NEW``, a new ticket each time
- ``train``: ``eslt train --task pendulum --generations 1 --out NEW`` (CPU preset otherwise: pop 64,
  8 training and 16 test episodes), a new run each time
- ``floor``: ``python -c "import jax"``, what any command that uses JAX pays at least

Run from the repository root: ``python benchmarks/bench_startup.py [--repeats 5] [--json]``. It
measures the ``eslt_cli`` this interpreter imports (set ``PYTHONPATH`` to measure another
checkout) and uses ``$ESLT_JAX_CACHE`` (default ``~/.cache/eslt/jax``) like eslt itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Libraries whose import a command pays for whether or not it uses them (top-level package names).
HEAVY = ("jax", "flax", "optax", "evosax", "orbax", "scipy", "gymnax", "brax", "mujoco", "matplotlib", "seaborn",
         "pandas", "tensorflow_datasets", "tensorflow")  # fmt: skip
TINY = ["--population", "8", "--generations", "4", "--eval-every", "2", "--train-episodes", "2", "--test-episodes", "2"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# The console script beside this interpreter, run by it (``python -X importtime`` needs that).
ESLT = str(Path(sys.executable).parent / "eslt")


def commands(folder: Path, ckpt: str) -> dict[str, object]:
    """Each case: the arguments after the interpreter, or a function of the run number giving them."""
    eslt = [ESLT]
    return {
        "show": [*eslt, "show", ckpt],
        "prune (up to date)": [*eslt, "prune", "--snr", ckpt],
        "prune (fresh)": lambda i: [*eslt, "prune", "--snr", ckpt, "--out", str(folder / f"fresh-{i}")],
        "train": lambda i: [*eslt, "train", "--task", "pendulum", "--generations", "1", "--out", str(folder / f"t{i}")],
        "floor (import jax)": ["-c", "import jax"],
    }


def run(args: list[str], env: dict[str, str], importtime: bool = False) -> tuple[float, str]:
    """Wall seconds of ``python ARGS`` with stdout piped and stdin empty; its stderr."""
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), *args]
    start = time.perf_counter()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc.stderr


def heavy_imports(stderr: str) -> dict[str, dict[str, Any]]:
    """Each :data:`HEAVY` package that ``-X importtime`` reports: its cost and who imported it.

    ``ms``: the cumulative import time of the package's outermost modules (the first import of the
    package, with whatever it pulled in that was not loaded yet). ``via``: the module outside the
    package that first imported it, and the nearest ``eslt_cli`` module above that.
    """
    lines = []  # (depth, name, cumulative microseconds) in importtime's order: children before their parent
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _self, total, field = line.removeprefix("import time:").split("|")
            if total.strip().isdigit():
                lines.append(((len(field) - len(field.lstrip()) - 1) // 2, field.strip(), int(total)))
    parent: dict[int, int] = {}
    pending: list[int] = []
    for i, (depth, _, _) in enumerate(lines):
        while pending and lines[pending[-1]][0] > depth:
            parent[pending.pop()] = i
        pending.append(i)

    def ancestors(i: int) -> list[str]:
        chain = []
        while i in parent:
            i = parent[i]
            chain.append(lines[i][1])
        return chain

    def package(name: str) -> str:
        return name.split(".")[0]

    ms: dict[str, float] = {}
    via: dict[str, str] = {}
    for i, (_, name, cumulative) in enumerate(lines):
        top = package(name)
        if top not in HEAVY:
            continue
        chain = ancestors(i)
        if any(package(a) == top for a in chain):
            continue  # inside an outer import of the same package
        ms[top] = ms.get(top, 0.0) + cumulative / 1000
        if top not in via:
            own = next((a for a in chain if a.startswith("eslt_cli")), None)
            via[top] = (
                " <- ".join(dict.fromkeys(a for a in chain[:1] + [own] if a))
                or "run time (a function or the script itself)"
            )
    return {name: {"ms": round(ms[name], 1), "via": via[name]} for name in HEAVY if name in ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    opts = parser.parse_args()
    import eslt_cli

    source = Path(eslt_cli.__file__).parent.parent
    commit = subprocess.run(["git", "-C", str(source), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="eslt-startup-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "ESLT_HOME": str(folder / "runs")}
        log(f"eslt_cli from {source} ({commit or 'no git'}); making a tiny pendulum checkpoint")
        ckpt = str(folder / "L00")
        run([ESLT, "train", "--task", "pendulum", *TINY, "--out", ckpt], env)
        cases = commands(folder, ckpt)

        def argv(case: object, i: int) -> list[str]:
            return case(i) if callable(case) else case  # type: ignore[return-value]

        log("warm-up: every command once (fills the JAX cache, creates the up-to-date ticket)")
        for case in cases.values():
            run(argv(case, -1), env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(opts.repeats):
            log(f"round {i + 1}/{opts.repeats}")
            for name, case in cases.items():
                times[name].append(run(argv(case, i), env)[0])
        load.append(os.getloadavg()[0])
        imports = {name: heavy_imports(run(argv(case, 1000), env, importtime=True)[1]) for name, case in cases.items()}

    print(
        f"eslt_cli {source} ({commit}), {os.cpu_count()} CPUs, load average {load[0]:.1f} before, {load[1]:.1f} after"
    )
    results = []
    for name in cases:
        median = statistics.median(times[name])
        results.append({"command": name, "median_s": round(median, 3), "times_s": [round(t, 3) for t in times[name]],
                        "imports_ms": imports[name]})  # fmt: skip
        spread = f"min {min(times[name]):.2f}, max {max(times[name]):.2f}"
        print(f"{name:20s} median {median:5.2f} s  ({spread})")
        for package, entry in imports[name].items():
            print(f"{'':20s} imports {package:12s} {entry['ms']:6.0f} ms  via {entry['via']}")
        missing = [k for k in HEAVY if k not in imports[name]]
        print(f"{'':20s} not imported: " + (", ".join(missing) or "-"))
    if opts.json:
        print(
            json.dumps(
                {"eslt_cli": str(source), "commit": commit, "repeats": opts.repeats, "load": load, "results": results}
            )
        )


if __name__ == "__main__":
    main()

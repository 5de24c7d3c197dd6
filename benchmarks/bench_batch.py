"""Batched training and analyses (issue 26): many runs in one `eslt` process vs one process each.

Every case times, in the same run, the same work done both ways with the real console script, and
prints one ratio line (sequential seconds / batched seconds; above 1: batching is faster):

- ``pendulum``: the tickets of one IMP level (--tickets, default 20: 5 seeds x snr, magnitude,
  random, random-reinit) at the CPU defaults: one ``eslt train TICKET --out ...`` process each vs
  one ``eslt train`` over all of them. ``pendulum-paper``: the same at ``--preset paper`` with
  ``--generations 200``.
- ``lmc``: 20 ``eslt lmc A B`` processes vs one ``eslt lmc --pairs`` over the same 20 pairs of
  Fashion-MNIST networks (7 seeds, 1 generation each: the analysis cost does not depend on training).
- ``cnn``: Fashion-MNIST CNN at population 128, batch 1024 (--cnn-generations, default 3): 4
  fresh seeds batched (``--seeds 0-3``) vs 4 processes, with the achieved FLOP/s of the batched run
  (XLA's count of one member's forward pass x population x generations / seconds) against a
  float32 matmul's measured in the same run.

The level-0 networks and tickets are made first (batched, untimed). Both ways share the JAX
compilation cache ($ESLT_JAX_CACHE), as users' runs do. The check line gives the largest
difference of the final test metrics between the two ways (0 when batched = alone exactly).

    python benchmarks/bench_batch.py --case pendulum
    python benchmarks/bench_batch.py --case all --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ESLT = str(Path(sys.executable).with_name("eslt"))
ARMS = (["--snr"], ["--magnitude"], ["--random"], ["--random", "--reinit"])
FASHION = "/usr/share/datasets/fashion-mnist"


def eslt(*args: str, stdin: str | None = None) -> list[str]:
    """Run ``eslt ARGS`` quietly; its stdout lines (the paths or JSON lines it printed)."""
    proc = subprocess.run([ESLT, "-q", *args], input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"eslt {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return proc.stdout.splitlines()


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def final_metric(path: str) -> float:
    from eslt_cli import checkpoint

    return float(checkpoint.read_meta(Path(path))["metrics"]["final"]["metric"])


def sequential(runs: list[Any], sample: int | None, one: Any) -> tuple[float, list[Any], bool]:
    """Seconds for ``one(run, i)`` over every run one process each (or over the first ``sample``,
    scaled to all: an estimate), their outputs, and whether it is an estimate."""
    todo = runs[:sample] if sample else runs
    seconds, outs = timed(lambda: [one(run, i) for i, run in enumerate(todo)])
    return seconds * len(runs) / len(todo), outs, len(todo) < len(runs)


def pendulum(work: Path, tickets: int, extra: list[str], sample: int | None) -> dict[str, Any]:
    seeds = max(1, tickets // len(ARMS))
    level0 = eslt("train", "--task", "pendulum", "--seeds", f"0-{seeds - 1}", "--root", str(work / "runs"), *extra)
    made = [t for arm in ARMS for t in eslt("prune", *arm, *level0)][:tickets]
    seq, outs, estimated = sequential(made, sample, lambda t, i: eslt("train", t, "--out", str(work / f"seq{i}"))[0])
    bat, batched = timed(lambda: eslt("train", *made))
    diff = max(abs(final_metric(a) - final_metric(b)) for a, b in zip(outs, batched))
    return {"runs": len(made), "sequential_s": seq, "estimated": estimated, "batched_s": bat, "ratio": seq / bat,
            "max_metric_diff": diff}  # fmt: skip


def lmc(work: Path, pairs: int, data: str) -> dict[str, Any]:
    nets = eslt("train", "--task", "fashion_mnist", "--data-dir", data, "--seeds", "0-6", "--generations", "1",
                "--eval-every", "1", "--root", str(work / "runs"))  # fmt: skip
    todo = [(a, b) for i, a in enumerate(nets) for b in nets[i + 1 :]][:pairs]
    seq, one = timed(lambda: [eslt("lmc", a, b)[0] for a, b in todo])
    bat, many = timed(lambda: eslt("lmc", stdin="".join(f"{a}\t{b}\n" for a, b in todo)))
    diff = max(abs(json.loads(x)["barrier"] - json.loads(y)["barrier"]) for x, y in zip(one, many))
    return {"runs": len(todo), "sequential_s": seq, "batched_s": bat, "ratio": seq / bat, "max_barrier_diff": diff}


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(x).block_until_ready()
    best = min(timed(lambda: f(x).block_until_ready())[0] for _ in range(repeats))
    return 2 * n**3 / best


def cnn_forward_flops(batch: int, data: str) -> float:
    import jax

    from eslt_cli import plans

    plan = plans.plan_train(None, {"task": "fashion_mnist", "data_dir": data, "batch_size": batch})
    from eslt_cli.tasks import build_task

    task = build_task(plan.task, plan.model)
    params = task.init_params(jax.random.PRNGKey(0))
    images = task.scale(task.arrays["x_train"][:batch])
    cost = jax.jit(task.logits).lower(params, images).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def cnn(work: Path, runs: int, generations: int, data: str, sample: int | None) -> dict[str, Any]:
    args = ["--task", "fashion_mnist", "--data-dir", data, "--population", "128", "--batch-size", "1024",
            "--generations", str(generations), "--eval-every", str(generations)]  # fmt: skip

    def alone(seed: int, i: int) -> str:
        return eslt("train", *args, "--seed", str(seed), "--out", str(work / f"cnn{seed}"))[0]

    seq, outs, estimated = sequential(list(range(runs)), sample, alone)
    bat, batched = timed(lambda: eslt("train", *args, "--seeds", f"0-{runs - 1}", "--root", str(work / "cnn")))
    diff = max(abs(final_metric(a) - final_metric(b)) for a, b in zip(outs, batched))
    flops = cnn_forward_flops(1024, data) * 128 * generations * runs
    peak = matmul_flops()
    return {"runs": runs, "sequential_s": seq, "estimated": estimated, "batched_s": bat, "ratio": seq / bat,
            "max_metric_diff": diff, "achieved_gflops": flops / bat / 1e9, "matmul_gflops": peak / 1e9,
            "share_of_matmul": flops / bat / peak}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["pendulum", "pendulum-paper", "lmc", "cnn", "all"], default="pendulum")
    parser.add_argument("--tickets", type=int, default=20)
    parser.add_argument(
        "--generations", type=int, help="pendulum: fewer generations than the CPU defaults' (quick checks)"
    )
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--cnn-runs", type=int, default=4)
    parser.add_argument("--cnn-generations", type=int, default=3)
    parser.add_argument("--sequential-sample", type=int, help="time only this many runs one process each, scaled up")
    parser.add_argument("--json", action="store_true", help="one JSON line per case instead of text")
    parser.add_argument("--data-dir", default=FASHION, help="Fashion-MNIST: IDX folder or tfds data dir")
    parser.add_argument("--json-out", type=Path, help="also write {'results': [...]} there (benchmarks/gpu.sh)")
    ns = parser.parse_args()
    cases = ["pendulum", "pendulum-paper", "lmc", "cnn"] if ns.case == "all" else [ns.case]
    os.environ.setdefault("ESLT_HOME", tempfile.mkdtemp(prefix="eslt-bench-home-"))
    results = []
    for case in cases:
        with tempfile.TemporaryDirectory(prefix=f"eslt-bench-{case}-") as tmp:
            work = Path(tmp)
            if case == "pendulum":
                gens = [] if ns.generations is None else ["--generations", str(ns.generations)]
                result = pendulum(work, ns.tickets, gens, ns.sequential_sample)
            elif case == "pendulum-paper":
                result = pendulum(work, ns.tickets, ["--preset", "paper", "--generations", "200"], ns.sequential_sample)
            elif case == "lmc":
                result = lmc(work, ns.pairs, ns.data_dir)
            else:
                result = cnn(work, ns.cnn_runs, ns.cnn_generations, ns.data_dir, ns.sequential_sample)
        result = {"case": case, **result}
        results.append(result)
        if ns.json_out is not None:
            ns.json_out.write_text(json.dumps({"results": results}, indent=1) + "\n")
        if ns.json:
            print(json.dumps(result), flush=True)
            continue
        extra = "  ".join(f"{k} {v:.4g}" for k, v in result.items() if k.startswith(("max_", "achieved", "matmul",
                                                                                         "share")))  # fmt: skip
        approx = f" (estimated from {ns.sequential_sample})" if result.get("estimated") else ""
        print(
            f"{case}: {result['runs']} runs, {result['runs']} processes {result['sequential_s']:.1f} s{approx}, "
            f"one batched process {result['batched_s']:.1f} s, ratio {result['ratio']:.2f}x  {extra}",
            flush=True,
        )


if __name__ == "__main__":
    main()

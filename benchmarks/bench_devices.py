"""eslt's ES chunk with the population sharded over 2 forced host devices vs 1 device.

Uses the real trainer code: ``eslt_cli.trainers.es._programs(task, spec, view,
devices)`` gives the jitted ``chunk`` (a ``lax.scan`` of generations; with
devices > 1 the population fitness runs under ``shard_map`` over a ``pop``
mesh). For each case the script compiles and warms the 1-device and the
2-device chunk from the same ES state, then times a second call of G
generations on each (same keys), alternating, best of ``--repeats``. It reports
gen/s, the ratio 2-device / 1-device, and whether the final ES means agree
(``allclose``).

JAX must see 2 CPU devices, so the script sets
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` and re-executes itself
when that is not already set. Forced host devices share the same physical
cores: on a 2-core machine a ratio near 1 (or below) is expected; the point is
the sharding overhead and correctness, not a speed-up.

    python benchmarks/bench_devices.py [--case pendulum|cnn|all] [--repeats 2] [--json]
"""

from __future__ import annotations

import os
import sys

FLAG = "--xla_force_host_platform_device_count=2"
if FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + FLAG).strip()
    os.execv(sys.executable, [sys.executable, *sys.argv])

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bench_train import plan_case, strong  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from eslt_cli.sparse import SparseView  # noqa: E402
from eslt_cli.tasks import build_task  # noqa: E402
from eslt_cli.trainers import es as es_trainer  # noqa: E402

CASES = {  # case: (population, batch or episodes, generations)
    "pendulum": (256, 8, 5),
    "cnn": (32, 256, 2),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    population, size, generations = CASES[case]
    generations = args.generations or generations
    plan = plan_case(case, population, size, generations)
    task = build_task(plan.task, plan.model)
    init_key, key = jax.random.split(jax.random.PRNGKey(args.seed))
    init = jax.tree.map(np.asarray, task.init_params(init_key))
    view = SparseView.of(jax.tree.map(lambda a: np.ones(np.shape(a), np.uint8), init))
    spec = dataclasses.replace(plan.trainer, generations=0)
    k_init, k_warm, k_time = jax.random.split(key, 3)
    warm_keys = jax.random.split(k_warm, generations)
    time_keys = jax.random.split(k_time, generations)

    sides = {}
    for devices in (1, 2):
        es, es_params, chunk, _evaluate, mesh = es_trainer._programs(task, spec, view, devices)

        def put(tree: Any, mesh: Any = mesh) -> Any:
            if mesh is None:
                return tree
            return jax.tree.map(lambda a: jax.device_put(a, NamedSharding(mesh, P())), tree)

        idx, arrays = put(jnp.asarray(view.idx)), put(task.arrays)
        state = put(strong(es.init(k_init, view.encode(init), es_params)))
        log(f"{case}: {devices} device(s): compile + warm-up chunk of {generations} generations")
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(chunk(state, idx, put(warm_keys), arrays))
        log(f"{case}: {devices} device(s): warm-up took {time.perf_counter() - t0:.1f} s")
        sides[devices] = {
            "chunk": chunk,
            "idx": idx,
            "arrays": arrays,
            "start": state,
            "keys": put(time_keys),
            "times": [],
        }

    for r in range(args.repeats):
        for devices, s in sides.items():
            t0 = time.perf_counter()
            state, stats = jax.block_until_ready(s["chunk"](s["start"], s["idx"], s["keys"], s["arrays"]))
            s["times"].append(time.perf_counter() - t0)
            s["mean"], s["stats"] = np.asarray(state.mean), np.asarray(stats)
            log(f"{case}: {devices} device(s) repeat {r + 1}: {s['times'][-1]:.2f} s")

    gps = {d: generations / min(s["times"]) for d, s in sides.items()}
    ratio = gps[2] / gps[1]
    diff = float(np.max(np.abs(sides[1]["mean"] - sides[2]["mean"])))
    agree = bool(np.allclose(sides[1]["mean"], sides[2]["mean"], rtol=1e-4, atol=1e-5))
    shape = f"batch {size}" if case == "cnn" else f"eps {size}x{task.max_steps}"
    print(
        f"{case}  pop {population}  {shape}  gens {generations}  1 device {gps[1]:.3g} gen/s  "
        f"2 devices {gps[2]:.3g} gen/s  ratio {ratio:.2f}x  final means allclose {agree} "
        f"(max |diff| {diff:.2e})",
        flush=True,
    )
    return {
        "case": case,
        "population": population,
        ("batch" if case == "cnn" else "episodes"): size,
        "generations": generations,
        "gens_per_s_1": gps[1],
        "gens_per_s_2": gps[2],
        "ratio": ratio,
        "seconds_1": sides[1]["times"],
        "seconds_2": sides[2]["times"],
        "means_allclose": agree,
        "max_abs_diff": diff,
        "fitness_stats_1": sides[1]["stats"].tolist(),
        "fitness_stats_2": sides[2]["stats"].tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=[*CASES, "all"], default="all")
    p.add_argument("--generations", type=int, help="timed generations (default: pendulum 5, cnn 2)")
    p.add_argument("--repeats", type=int, default=2, help="timed chunks per side, alternating; the fastest counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    log(
        f"jax {jax.__version__}: {jax.device_count()} devices {[d.platform for d in jax.devices()]}, "
        f"{os.cpu_count()} CPUs"
    )
    if jax.device_count() < 2:
        raise SystemExit("need 2 devices: XLA_FLAGS did not take effect")
    cases = list(CASES) if args.case == "all" else [args.case]
    results = [run_case(c, args) for c in cases]
    if args.json:
        print(json.dumps({"jax": jax.__version__, "cpus": os.cpu_count(), "results": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

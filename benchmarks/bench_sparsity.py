"""ES state memory and ask+tell time vs IMP level (sparsity) on the Fashion-MNIST CNN.

For IMP levels 0, 5, 10, 20 the script draws a real random global mask with
``eslt_cli.pruning.prune(criterion="random", keep=0.8**level)`` (kernels only;
biases always kept; level 0 is the dense all-ones mask), builds the evosax
strategy over the compressed search vector (``SparseView``: nnz entries) as
eslt's trainer does (``eslt_cli.strategies.build``), and measures

* nnz (length of the search vector) and the dense parameter count,
* bytes of the evosax state (sum of leaf ``nbytes``),
* time of one jitted ask+tell step (warm; median of ``--repeats``), with a cheap
  synthetic fitness (sum of squares) so the step is the strategy's own cost,

and the same relative to level 0. Both should scale with nnz, not the dense size.

    python benchmarks/bench_sparsity.py [--levels 0 5 10 20] [--population 128] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import jax.numpy as jnp
import numpy as np

from eslt_cli import pruning, strategies
from eslt_cli.sparse import SparseView
from eslt_cli.specs import CNNSpec, ESSpec, VisionSpec
from eslt_cli.tasks import build_task

STRATEGIES = {"snes": ("sgd", 1.0), "sep_cma_es": (None, None)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def state_bytes(state: Any) -> int:
    return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(state)))


def measure(strategy: str, population: int, nnz: int, repeats: int, seed: int) -> dict[str, Any]:
    optimizer, lr = STRATEGIES[strategy]
    spec = ESSpec(
        strategy=strategy,
        population=population,
        generations=1,
        std_init=0.02,
        lr=lr,
        optimizer=optimizer,
        elite_ratio=None,
        mean_decay=0.0,
        eval_every=1,
    )
    es, params = strategies.build(spec, jnp.zeros(nnz, jnp.float32))
    key = jax.random.PRNGKey(seed)
    state = es.init(key, jnp.zeros(nnz, jnp.float32), params)
    state = jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.result_type(a)), state)  # as train(): strong types

    @jax.jit
    def step(state: Any, key: jax.Array) -> Any:
        k_ask, k_tell = jax.random.split(key)
        population, state = es.ask(k_ask, state, params)
        fitness = jnp.sum(population * population, axis=1)
        state, _ = es.tell(k_tell, population, fitness, state, params)
        return state

    keys = jax.random.split(jax.random.fold_in(key, 1), repeats + 2)
    for k in keys[:2]:  # compile + warm
        state = jax.block_until_ready(step(state, k))
    times = []
    for k in keys[2:]:
        t0 = time.perf_counter()
        state = jax.block_until_ready(step(state, k))
        times.append(time.perf_counter() - t0)
    return {"state_bytes": state_bytes(state), "step_s": statistics.median(times), "step_s_all": times}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", type=int, nargs="+", default=[0, 5, 10, 20])
    p.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), default=list(STRATEGIES))
    p.add_argument("--population", type=int, default=128)
    p.add_argument("--batch", type=int, default=256, help="VisionSpec batch_size (does not affect the ES state)")
    p.add_argument("--repeats", type=int, default=7, help="timed ask+tell steps per point; the median counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    log(f"jax {jax.__version__} on {jax.devices()[0].platform} ({os.cpu_count()} CPUs)")
    task = build_task(VisionSpec("fashion_mnist", batch_size=args.batch), CNNSpec())
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(args.seed)))
    dense_mask = jax.tree.map(lambda a: np.ones(np.shape(a), np.uint8), init)
    dense = sum(int(np.size(a)) for a in jax.tree.leaves(init))

    masks = {}
    for level in args.levels:
        if level == 0:
            masks[level] = dense_mask
        else:
            masks[level] = pruning.prune(
                jax.random.PRNGKey(args.seed + level), "random", init, None, dense_mask, keep=0.8**level
            )
    results = []
    for strategy in args.strategies:
        base = None
        for level in args.levels:
            view = SparseView.of(masks[level])
            sp = pruning.sparsity(masks[level])
            log(f"{strategy} level {level}: nnz {view.nnz}")
            m = measure(strategy, args.population, view.nnz, args.repeats, args.seed)
            row = {
                "strategy": strategy,
                "level": level,
                "keep": 0.8**level,
                "kernel_sparsity": sp["global"],
                "nnz": view.nnz,
                "dense": dense,
                **m,
            }
            base = base or row
            row["nnz_ratio"] = row["nnz"] / base["nnz"]
            row["bytes_ratio"] = row["state_bytes"] / base["state_bytes"]
            row["time_ratio"] = row["step_s"] / base["step_s"]
            results.append(row)
            print(
                f"{strategy:10s}  level {level:2d}  kernel sparsity {sp['global']:.3f}  nnz {view.nnz:6d} / {dense}  "
                f"state {row['state_bytes'] / 1024:8.1f} KiB  ask+tell {row['step_s'] * 1e3:7.3f} ms  "
                f"vs level 0: nnz {row['nnz_ratio']:.3f}  bytes {row['bytes_ratio']:.3f}  "
                f"time {row['time_ratio']:.3f}",
                flush=True,
            )
    if args.json:
        print(json.dumps({"jax": jax.__version__, "population": args.population, "results": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

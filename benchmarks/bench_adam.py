"""Time eslt's Adam trainer steps against a flax-MNIST-example-style training loop.

eslt side: the real trainer code. ``eslt_cli.trainers.adam._programs`` gives the
jitted block of ``adam.BLOCK`` unrolled steps and ``adam.run_epoch`` drives the
blocks from Python over a (steps, batch) array of training indices, exactly as
``adam.train`` runs an epoch (gradients and weights masked; here the mask is
dense). Settings come from ``eslt_cli.plans.plan_train`` as ``eslt train
--trainer adam`` settles them (CPU preset: batch 128, lr 3e-4).

Reference side: the flax MNIST example's loop. A plain ``nn.Conv`` CNN of the
same architecture (conv 8@5x5, relu, max-pool, conv 16@5x5, relu, max-pool,
dense), a flax ``TrainState`` with ``optax.adam``, and one jitted
``train_step(state, batch)`` called from Python per batch. Its batches are the
same images in the same order, gathered on the device before the timed region
(that favours the reference: eslt gathers its batches inside the timed steps).

Both sides start every timed run from the same initialisation and take the
same steps, so their final weights must agree up to float rounding; the
script prints the largest difference. Warm-up calls compile first; compilations
inside a timed region are counted and reported.

Prints on stdout, e.g.

    adam  fashion_mnist  batch 128  steps 100  eslt 24.5 ms/step  reference 45.5 ms/step  ratio 1.86x
      weights max |diff| 4.5e-04

where ratio = reference time / eslt time (above 1: eslt is faster), and with
``--json`` a final JSON line with all numbers. Progress goes to stderr.

    python benchmarks/bench_adam.py                    # 100 steps of batch 128, best of 3
    python benchmarks/bench_adam.py --steps 200 --repeats 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from benchlib import COMPILES, log
from flax.training import train_state

from eslt_cli import plans
from eslt_cli.tasks import build_task
from eslt_cli.trainers import adam


class ReferenceCNN(nn.Module):
    """The paper's CNN written as the flax MNIST example writes its model: plain nn.Conv layers."""

    num_classes: int
    features: tuple[int, ...] = (8, 16)
    kernel_size: int = 5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, feats in enumerate(self.features):  # eslt's layer names, so both start from one init
            x = nn.Conv(feats, (self.kernel_size, self.kernel_size), name=f"conv{i}")(x)
            x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, name="dense")(x)


def make_reference(task: Any, plan: plans.TrainPlan):
    """(initial TrainState maker, jitted train_step) in the flax example's style."""
    model = ReferenceCNN(task.data.num_classes, tuple(plan.model.features), plan.model.kernel_size)
    tx = optax.adam(plan.trainer.lr)

    def create(params: Any) -> train_state.TrainState:
        return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    @jax.jit
    def train_step(state: train_state.TrainState, batch: dict[str, jax.Array]) -> tuple[Any, jax.Array]:
        def loss_fn(params: Any) -> jax.Array:
            logits = state.apply_fn({"params": params}, batch["image"].astype(jnp.float32) / 255.0)
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    return create, train_step


def make_rolled(task: Any, optimizer: optax.GradientTransformation):
    """The Adam trainer's epoch before blocks: every step inside one rolled ``lax.scan``, forward-layout CNN."""

    def step(carry: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
        params, opt_state, mask = carry

        def loss_fn(p: Any) -> jax.Array:
            logits = task.logits(p, task.arrays["x_train"][idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, task.arrays["y_train"][idx]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        grads = jax.tree.map(jnp.multiply, grads, mask)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u, m: (p + u) * m, params, updates, mask)
        return (params, opt_state, mask), loss

    return jax.jit(lambda carry, batches: jax.lax.scan(step, carry, batches))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: eslt's Adam preset, 128)")
    ap.add_argument("--steps", type=int, default=100, help="timed steps per run (default 100)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side, alternating; the fastest counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rolled", action="store_true",
                    help="also time the former epoch: the same steps in one rolled lax.scan (slow)")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="also print one JSON line with all numbers")
    args = ap.parse_args()

    overrides = {"task": "fashion_mnist", "trainer": "adam", "batch_size": args.batch}
    # plan_train only computes settings and paths; it writes nothing.
    plan = plans.plan_train(None, overrides, "cpu", root=Path(tempfile.gettempdir()) / "eslt-bench-unused")
    task = build_task(plan.task, plan.model)
    size, lr = plan.task.batch_size, float(plan.trainer.lr)
    n_train = int(task.arrays["x_train"].shape[0])
    if args.steps * size > n_train:
        raise SystemExit(f"--steps {args.steps} x batch {size} exceeds the {n_train} training images")
    key = jax.random.PRNGKey(args.seed)
    init = task.init_params(key)
    # As adam.train: the epoch's shuffle is a jax permutation, read to the host.
    order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1), n_train))
    batches = order[: args.steps * size].reshape(args.steps, size)
    warm = np.asarray(jax.random.permutation(jax.random.fold_in(key, 2), n_train))[: 2 * adam.BLOCK * size]
    warm = warm.reshape(2 * adam.BLOCK, size)

    # eslt: the trainer's block program and epoch driver, a dense mask.
    optimizer, block = adam._programs(task, lr)
    mask = jax.tree.map(lambda a: jnp.ones(a.shape, jnp.float32), init)
    params0 = jax.tree.map(lambda a, m: jnp.asarray(a, jnp.float32) * m, init, mask)

    def eslt_run(batches: np.ndarray) -> tuple[Any, np.ndarray]:
        carry, stats = adam.run_epoch(block, (params0, optimizer.init(params0)), mask, batches, task.arrays)
        return jax.block_until_ready(carry)[0], stats

    # Reference: the same images, gathered per batch on the device before timing.
    create, train_step = make_reference(task, plan)
    x, y = task.arrays["x_train"], task.arrays["y_train"]

    def device_batches(batches: np.ndarray) -> list[dict[str, jax.Array]]:
        return jax.block_until_ready([{"image": x[jnp.asarray(b)], "label": y[jnp.asarray(b)]} for b in batches])

    ref_batches, ref_warm = device_batches(batches), device_batches(warm)

    def reference_run(batches: list[dict[str, jax.Array]]) -> tuple[Any, np.ndarray]:
        state, losses = create(params0), []
        for batch in batches:
            state, loss = train_step(state, batch)
            losses.append(loss)
        loss = np.asarray([float(v) for v in losses])
        return jax.block_until_ready(state.params), np.array([loss.mean(), loss.min()])

    sides = {"eslt": (eslt_run, batches, warm), "reference": (reference_run, ref_batches, ref_warm)}
    if args.rolled:
        rolled = make_rolled(task, optimizer)

        def rolled_run(batches: np.ndarray) -> tuple[Any, np.ndarray]:
            (params, _, _), loss = rolled((params0, optimizer.init(params0), mask), jnp.asarray(batches))
            loss = np.asarray(loss)
            return jax.block_until_ready(params), np.array([loss.mean(), loss.min()])

        # Warmed up on the timed batches' shape: a scan compiles per length.
        sides["rolled"] = (rolled_run, batches, batches)
    results: dict[str, dict[str, Any]] = {}
    final: dict[str, Any] = {}
    for name, (run, _, warm_batches) in sides.items():
        log(f"{name}: compiling + warm-up ({len(warm_batches)} steps)")
        t0 = time.perf_counter()
        run(warm_batches)
        results[name] = {"warmup_s": time.perf_counter() - t0, "runs_s": [], "compiles_in_timed": 0}
        log(f"{name}: compile + warm-up took {results[name]['warmup_s']:.1f} s")
    for r in range(args.repeats):
        for name, (run, timed_batches, _) in sides.items():
            compiles = COMPILES.count
            t0 = time.perf_counter()
            params, stats = run(timed_batches)
            seconds = time.perf_counter() - t0
            results[name]["runs_s"].append(seconds)
            results[name]["compiles_in_timed"] += COMPILES.count - compiles
            results[name]["loss_mean_min"] = [float(v) for v in stats]
            final[name] = params
            log(f"{name} run {r + 1}: {seconds:.2f} s = {1e3 * seconds / args.steps:.1f} ms/step, "
                f"loss mean {stats[0]:.4f}")  # fmt: skip
    for name in sides:
        results[name]["ms_per_step"] = 1e3 * min(results[name]["runs_s"]) / args.steps
        if results[name]["compiles_in_timed"]:
            log(f"{name}: WARNING {results[name]['compiles_in_timed']} compilation(s) inside timed runs")
    pairs = zip(jax.tree.leaves(final["eslt"]), jax.tree.leaves(final["reference"]))
    diff = max(float(jnp.abs(a - b).max()) for a, b in pairs)
    ratio = results["reference"]["ms_per_step"] / results["eslt"]["ms_per_step"]
    eslt_ms, ref_ms = results["eslt"]["ms_per_step"], results["reference"]["ms_per_step"]
    print(f"adam  fashion_mnist  batch {size}  steps {args.steps}  eslt {eslt_ms:.1f} ms/step  "
          f"reference {ref_ms:.1f} ms/step  ratio {ratio:.2f}x")  # fmt: skip
    print(f"  weights max |diff| {diff:.1e}")
    if args.rolled:
        r_ms = results["rolled"]["ms_per_step"]
        print(f"  former rolled-scan epoch {r_ms:.1f} ms/step: eslt is {r_ms / eslt_ms:.2f}x faster")
    if args.json:
        info = {"jax": jax.__version__, "platform": platform.platform(), "block": adam.BLOCK, "batch": size,
                "steps": args.steps, "lr": lr, "repeats": args.repeats, "load_avg": os.getloadavg()}  # fmt: skip
        print(json.dumps({**info, "results": results, "ratio": ratio, "weights_max_abs_diff": diff}))


if __name__ == "__main__":
    main()

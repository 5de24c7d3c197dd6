"""Time eslt's ES generation loop against a plain evosax loop on the same problem.

eslt side: the real trainer code. ``eslt_cli.trainers.es._programs`` gives the
jitted ``chunk((state, norm), idx, keys, arrays)`` that runs ``len(keys)`` generations in one
``lax.scan``; it is called once to compile (and warm up), then a second call of
G generations is timed. The task, model and trainer settings come from
``eslt_cli.plans.plan_train`` exactly as ``eslt train`` settles them (CPU
preset: SNES, SGD lr 1.0, std_init 0.02 vision / 0.1 control), with a dense
(all-ones) mask.

Reference side: a plain evosax loop as evosax's examples write it: ``SNES`` over
the flax parameter pytree, then per generation in Python ``es.ask`` (jitted by
evosax), one jitted population evaluation, ``es.tell``, and a
``block_until_ready`` as a loop that reads the fitness would do. Warm-up
generations run first (untimed). The evaluation is the same network on the
same data: the flax CNN on a random Fashion-MNIST batch drawn on the device,
or the task's own ``ControlTask.returns`` (gymnax Pendulum; brax ant), vmapped
over the population. A control task with an observation normaliser (brax)
updates it from every generation's rollouts on both sides, as eslt's chunk does.

Prints one line per case on stdout, e.g.

    pendulum  pop 256  eps 8x200  eval grouped  eslt 15.2 gen/s 6.23M env-steps/s  \
        reference 14.9 gen/s 6.1M env-steps/s  ratio 1.02x

(one line, wrapped here), where ratio = eslt gen/s / reference gen/s (above 1: eslt is faster), ``eval``
is the population evaluation eslt's chunk uses (``population_eval``: grouped on
CPU, vmap on accelerators, ``$ESLT_POPULATION_EVAL`` overrides), env-steps/s =
members x episodes x steps x gen/s (images/s = members x batch x gen/s for the
CNN), and with ``--json`` a final JSON line with all numbers (``--json-out
PATH`` writes it to a file). Progress goes to stderr.

    python benchmarks/bench_train.py --case pendulum
    python benchmarks/bench_train.py --case cnn --generations 3
    python benchmarks/bench_train.py --case brax --population 8 --episodes 1 --episode-length 50 --generations 2
    python benchmarks/bench_train.py --case all --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import jax.numpy as jnp
import numpy as np
import optax
from benchlib import COMPILES, log
from evosax.algorithms import SNES

from eslt_cli import obsnorm, plans
from eslt_cli.models import CNN
from eslt_cli.sparse import SparseView
from eslt_cli.tasks import build_task
from eslt_cli.trainers import es as es_trainer

CASES = {
    # case: (task, default population, default batch or episodes, default generations)
    "pendulum": ("pendulum", 256, 8, 20),
    "cnn": ("fashion_mnist", 128, 1024, 5),
    # The paper's brax setting: 256 members x 8 episodes x 500 steps (--brax-task, --backend,
    # --episode-length choose the environment; 500 steps by default).
    "brax": ("ant", 256, 8, 3),
}
CONTROL_CASES = ("pendulum", "brax")
# --case all: the cases that finish in minutes on a CPU host. brax at paper scale (1M env steps
# per generation) runs only when named, e.g. by benchmarks/gpu.sh.
ALL_CASES = ("pendulum", "cnn")
# Above this many member-images per generation the reference's jax.vmap over the
# population is not safe on a CPU host (population 128 x batch 1024 needs > 23 GiB);
# there "auto" switches the reference to lax.map over members. On accelerators
# "auto" always vmaps, as evosax's examples (and eslt's vmap evaluation) do.
VMAP_SAFE_MEMBER_IMAGES = 32 * 1024

REF_OPTIMIZERS = {"sgd": optax.sgd, "adam": optax.adam}


def strong(tree: Any) -> Any:
    """eslt's ``train()``: evosax leaves some state leaves weakly typed; make them strong."""
    return jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.result_type(a)), tree)


def plan_case(
    case: str, population: int, size: int, generations: int, args: argparse.Namespace | None = None
) -> plans.TrainPlan:
    """The settings ``eslt train`` would use (CPU preset) with our overrides."""
    task_name = CASES[case][0]
    overrides: dict[str, Any] = {
        "task": task_name,
        "population": population,
        "generations": generations,
        "eval_every": generations,
    }
    if case == "cnn":
        overrides["batch_size"] = size
        if args is not None and args.data_dir:
            overrides["data_dir"] = args.data_dir
    else:
        overrides["train_episodes"] = size
    if case == "brax" and args is not None:
        overrides |= {"task": args.brax_task, "episode_length": args.episode_length, "backend": args.backend}
    # plan_train only computes settings and paths; it writes nothing.
    return plans.plan_train(None, overrides, "cpu", root=Path(tempfile.gettempdir()) / "eslt-bench-unused")


# --------------------------------------------------------------------------- eslt


def prepare_eslt(task: Any, plan: plans.TrainPlan, init: Any, key: jax.Array, generations: int):
    """Compile and warm eslt's jitted scan; returns (warm-up seconds, timed run of one chunk)."""
    mask = jax.tree.map(lambda a: np.ones(np.shape(a), np.uint8), init)
    view = SparseView.of(mask)
    spec = dataclasses.replace(plan.trainer, generations=0)  # as train(): the cache key ignores generations
    es, es_params, chunk, _evaluate, _mesh = es_trainer._programs(task, spec, view)
    idx = jnp.asarray(view.idx)
    k_init, k_warm, k_time = jax.random.split(key, 3)
    # As train(): the carry is (ES state, observation normaliser or None).
    state = (strong(es.init(k_init, view.encode(init), es_params)), task.arrays.get("obs_norm"))

    log(f"eslt: compiling + warm-up chunk of {generations} generations")
    t0 = time.perf_counter()
    state, stats = chunk(state, idx, jax.random.split(k_warm, generations), task.arrays)
    jax.block_until_ready((state, stats))
    warm_s = time.perf_counter() - t0
    log(f"eslt: compile + warm-up chunk took {warm_s:.1f} s")
    carry = {"state": state, "key": k_time}

    def timed() -> dict[str, float]:
        log(f"eslt: timing chunk of {generations} generations")
        carry["key"], k = jax.random.split(carry["key"])
        keys = jax.random.split(k, generations)
        compiles = COMPILES.count
        t0 = time.perf_counter()
        state, stats = chunk(carry["state"], idx, keys, task.arrays)
        jax.block_until_ready((state, stats))
        seconds = time.perf_counter() - t0
        carry["state"] = state
        recompiled = COMPILES.count - compiles
        stats = np.asarray(stats)
        if recompiled:
            log(f"eslt: WARNING {recompiled} compilation(s) inside the timed chunk")
        if not np.isfinite(stats).all():
            log("eslt: WARNING non-finite fitness")
        log(f"eslt: {seconds:.2f} s ({generations / seconds:.3f} gen/s), last mean fitness {stats[-1, 0]:.4g}")
        return {"seconds": seconds, "compiles_in_timed": recompiled, "last_fitness": float(stats[-1, 0])}

    return warm_s, timed


# ---------------------------------------------------------------------- reference


def reference_evaluate(case: str, task: Any, plan: plans.TrainPlan, map_mode: str, map_batch: int):
    """One jitted function: (population pytree, key, norm) -> (fitness (population,), norm), lower is better.

    ``norm`` is a control task's observation normaliser (None without one): the members' rollouts
    are normalised with it and update it, as eslt's chunk does.
    """
    if case in CONTROL_CASES:
        episodes = plan.task.train_episodes

        @jax.jit
        def evaluate_control(population: Any, key: jax.Array, norm: Any) -> tuple[jax.Array, Any]:
            arrays = {} if norm is None else {"obs_norm": norm}
            # Common random numbers, as eslt: every member runs the same episode keys.
            totals, stats = jax.vmap(lambda p: task.returns(p, key, episodes, arrays))(population)
            if norm is not None:
                norm = obsnorm.update(norm, jax.tree.map(lambda s: s.sum(0), stats))
            return -totals.mean(axis=1), norm

        return evaluate_control

    model = CNN(task.data.num_classes, plan.model.features, plan.model.kernel_size)
    batch = plan.task.batch_size

    def member_loss(params: Any, images: jax.Array, labels: jax.Array) -> jax.Array:
        logits = model.apply({"params": params}, images.astype(jnp.float32) / 255.0)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def evaluate_vision(population: Any, key: jax.Array, x_train: jax.Array, y_train: jax.Array) -> jax.Array:
        idx = jax.random.randint(key, (batch,), 0, x_train.shape[0])
        images, labels = x_train[idx], y_train[idx]
        if map_mode == "vmap":
            return jax.vmap(member_loss, in_axes=(0, None, None))(population, images, labels)
        return jax.lax.map(lambda p: member_loss(p, images, labels), population, batch_size=map_batch)

    # The same uint8 training images eslt's task holds on the device, passed as arguments.
    return lambda population, key, norm: (
        evaluate_vision(population, key, task.arrays["x_train"], task.arrays["y_train"]),
        norm,
    )


def prepare_reference(
    case: str,
    task: Any,
    plan: plans.TrainPlan,
    init: Any,
    key: jax.Array,
    generations: int,
    warmup: int,
    map_mode: str,
    map_batch: int,
):
    """Compile and warm the Python ask / evaluate / tell loop; returns (warm-up seconds, timed run)."""
    spec = plan.trainer
    optimizer = REF_OPTIMIZERS[spec.optimizer](spec.lr)
    es = SNES(spec.population, solution=init, optimizer=optimizer)
    params = es.default_params.replace(std_init=spec.std_init)
    evaluate = reference_evaluate(case, task, plan, map_mode, map_batch)
    key, k_init = jax.random.split(key)
    # The ES state and, for a control task with a normaliser, the normaliser (else None).
    state = (es.init(k_init, init, params), task.arrays.get("obs_norm"))

    def generation(carry: Any, key: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        state, norm = carry
        key, k_ask, k_eval, k_tell = jax.random.split(key, 4)
        population, state = es.ask(k_ask, state, params)
        fitness, norm = evaluate(population, k_eval, norm)
        state, metrics = es.tell(k_tell, population, fitness, state, params)
        jax.block_until_ready((state, fitness, norm))  # a real loop reads the fitness here
        return (state, norm), fitness, key

    log(f"reference: compiling + {warmup} warm-up generation(s)")
    t0 = time.perf_counter()
    for _ in range(warmup):
        state, fitness, key = generation(state, key)
    warm_s = time.perf_counter() - t0
    log(f"reference: compile + warm-up took {warm_s:.1f} s")
    carry = {"state": state, "key": key}

    def timed() -> dict[str, float]:
        log(f"reference: timing {generations} generations")
        state, key = carry["state"], carry["key"]
        compiles = COMPILES.count
        t0 = time.perf_counter()
        for _ in range(generations):
            state, fitness, key = generation(state, key)
        seconds = time.perf_counter() - t0
        carry["state"], carry["key"] = state, key
        recompiled = COMPILES.count - compiles
        last = float(jnp.mean(fitness))
        if recompiled:
            log(f"reference: WARNING {recompiled} compilation(s) inside the timed loop")
        log(f"reference: {seconds:.2f} s ({generations / seconds:.3f} gen/s), last mean fitness {last:.4g}")
        return {"seconds": seconds, "compiles_in_timed": recompiled, "last_fitness": last}

    return warm_s, timed


# ------------------------------------------------------------------------- FLOP/s


def cnn_forward_flops(features: Any, kernel_size: int, num_classes: int, side: int = 28, channels: int = 1) -> int:
    """Multiply-add FLOPs (2 per MAC) of one image through the CNN: 'same' convs, each followed by a 2x2 max-pool.

    For Fashion-MNIST (8, 16), 5x5, 10 classes: 2*(28*28*25*1*8 + 14*14*25*8*16 + 784*10) = 1.58 MFLOP.
    Biases, relu and pooling are not counted.
    """
    macs, cin = 0, channels
    for feats in features:
        macs += side * side * kernel_size * kernel_size * cin * feats
        side, cin = side // 2, feats
    macs += side * side * cin * num_classes
    return 2 * macs


def matmul_peak(n: int | None = None, repeats: int = 5) -> float:
    """This host's f32 matmul FLOP/s: a jitted jnp.dot of two n x n matrices, warm, best of ``repeats``.

    n defaults to 2048 on CPU and 8192 on accelerators (2048 takes well under a millisecond there).
    JAX's default matmul precision applies (on recent NVIDIA GPUs that may use TF32).
    """
    n = n or (2048 if jax.default_backend() == "cpu" else 8192)
    a = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(2), (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, b))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(dot(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


# ---------------------------------------------------------------------------- main


def rate(x: float) -> str:
    """A per-second count, short: 950, 12.3k, 4.56M, 1.2G."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def run_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    _, pop_default, size_default, gen_default = CASES[case]
    population = args.population or pop_default
    size = (args.batch if case == "cnn" else args.episodes) or size_default
    generations = args.generations or gen_default
    plan = plan_case(case, population, size, generations, args)
    evaluation = es_trainer.population_eval()
    log(
        f"{case}: task {plan.task.name}, {plan.trainer.strategy} pop {population}, std_init {plan.trainer.std_init}, "
        f"{plan.trainer.optimizer} lr {plan.trainer.lr}, {generations} timed generations, "
        f"eslt population evaluation: {evaluation}"
    )

    t0 = time.perf_counter()
    task = build_task(plan.task, plan.model)
    log(f"{case}: task built in {time.perf_counter() - t0:.1f} s")
    init_key, train_key = jax.random.split(jax.random.PRNGKey(args.seed))
    init = jax.tree.map(np.asarray, task.init_params(init_key))
    n_params = sum(int(np.size(a)) for a in jax.tree.leaves(init))

    map_mode, note = "vmap", ""
    if case == "cnn":
        map_mode = args.reference_map
        if map_mode == "auto":
            too_big = jax.default_backend() == "cpu" and population * size > VMAP_SAFE_MEMBER_IMAGES
            map_mode = "lax" if too_big else "vmap"
            if map_mode == "lax":
                note = (
                    f"reference uses lax.map over members (batch_size {args.reference_map_batch}): "
                    f"vmap over pop {population} x batch {size} does not fit in a CPU host's memory; "
                    f"--reference-map vmap forces it"
                )
        if note:
            log(note)

    eslt_warm, eslt_timed = prepare_eslt(task, plan, init, train_key, generations)
    ref_warm, ref_timed = prepare_reference(
        case, task, plan, init, train_key, generations, args.warmup, map_mode, args.reference_map_batch
    )
    # Alternate the two sides so that load from other work on the host hits both alike;
    # each side's speed is its best (fastest) repeat.
    # The cnn case also measures the matmul peak in every repeat, under the same load.
    eslt_runs, ref_runs, peaks = [], [], []
    for r in range(args.repeats):
        if args.repeats > 1:
            log(f"{case}: repeat {r + 1}/{args.repeats}")
        eslt_runs.append(eslt_timed())
        ref_runs.append(ref_timed())
        if case == "cnn":
            peaks.append(matmul_peak())
            log(f"f32 matmul peak (jnp.dot): {peaks[-1] / 1e9:.1f} GFLOP/s")

    def summary(runs: list[dict[str, float]], warm_s: float) -> dict[str, Any]:
        best = min(run["seconds"] for run in runs)
        return {
            "gens_per_s": generations / best,
            "seconds": best,
            "seconds_all": [run["seconds"] for run in runs],
            "warmup_s": warm_s,
            "compiles_in_timed": sum(run["compiles_in_timed"] for run in runs),
            "last_fitness": runs[-1]["last_fitness"],
        }

    eslt, ref = summary(eslt_runs, eslt_warm), summary(ref_runs, ref_warm)
    ratio = eslt["gens_per_s"] / ref["gens_per_s"]
    # Work per generation: images through the CNN, or environment steps (members x episodes x
    # steps; every episode runs all max_steps, steps after a termination are masked, not skipped).
    unit = "images" if case == "cnn" else "env-steps"
    per_gen_units = population * size * (1 if case == "cnn" else task.max_steps)
    for side in (eslt, ref):
        side[f"{unit.replace('-', '_')}_per_s"] = side["gens_per_s"] * per_gen_units

    shape = f"batch {size}" if case == "cnn" else f"eps {size}x{task.max_steps}"
    label = f"brax {plan.task.name}/{plan.task.backend}" if case == "brax" else case
    ref_label = "reference" if case != "cnn" else f"reference[{'vmap' if map_mode == 'vmap' else 'lax.map'}]"
    print(
        f"{label}  pop {population}  {shape}  eval {evaluation}  "
        f"eslt {eslt['gens_per_s']:.3g} gen/s {rate(eslt['gens_per_s'] * per_gen_units)} {unit}/s  "
        f"{ref_label} {ref['gens_per_s']:.3g} gen/s {rate(ref['gens_per_s'] * per_gen_units)} {unit}/s  "
        f"ratio {ratio:.2f}x",
        flush=True,
    )
    if note:
        print(f"  note: {note}", flush=True)
    flops: dict[str, Any] = {}
    if case == "cnn":
        per_image = cnn_forward_flops(plan.model.features, plan.model.kernel_size, task.data.num_classes)
        per_gen = population * size * per_image
        peak = max(peaks)  # the best repeat of each side is compared with the best peak
        achieved = eslt["gens_per_s"] * per_gen
        ref_achieved = ref["gens_per_s"] * per_gen
        flops = {
            "flops_per_image": per_image,
            "flops_per_generation": per_gen,
            "matmul_peak_flops": peak,
            "matmul_peak_flops_all": peaks,
            "eslt_flops": achieved,
            "eslt_fraction_of_peak": achieved / peak,
            "reference_flops": ref_achieved,
            "reference_fraction_of_peak": ref_achieved / peak,
        }
        print(
            f"  eslt forward: {per_image / 1e6:.2f} MFLOP/image x pop {population} x batch {size}: "
            f"achieved {achieved / 1e9:.2f} GFLOP/s = {100 * achieved / peak:.1f}% of matmul peak "
            f"{peak / 1e9:.1f} GFLOP/s  (reference {ref_achieved / 1e9:.2f} GFLOP/s = "
            f"{100 * ref_achieved / peak:.1f}%)",
            flush=True,
        )
    return {
        "case": case,
        "task": plan.task.name,
        **({"backend": plan.task.backend} if case == "brax" else {}),
        "population": population,
        ("batch" if case == "cnn" else "episodes"): size,
        **({"steps": task.max_steps} if case != "cnn" else {}),
        f"{unit.replace('-', '_')}_per_generation": per_gen_units,
        "population_eval": evaluation,
        "params": n_params,
        "generations": generations,
        "repeats": args.repeats,
        "strategy": plan.trainer.strategy,
        "std_init": plan.trainer.std_init,
        "reference_map": map_mode,
        **({"reference_map_batch": args.reference_map_batch} if map_mode == "lax" else {}),
        "eslt": eslt,
        "reference": ref,
        "ratio": ratio,
        **flops,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--case",
        choices=[*CASES, "all"],
        default="all",
        help=f"all: {', '.join(ALL_CASES)} (brax only when named: slow on CPU)",
    )
    p.add_argument("--population", type=int, help="ES population (default: pendulum 256, cnn 128, brax 256)")
    p.add_argument("--batch", type=int, help="cnn: images per generation (default 1024)")
    p.add_argument("--episodes", type=int, help="pendulum, brax: episodes per member (default 8)")
    p.add_argument("--generations", type=int, help="timed generations (default: pendulum 20, cnn 5, brax 3)")
    p.add_argument(
        "--data-dir",
        help="cnn: a folder with Fashion-MNIST's IDX files or a tfds data dir "
        "(default: /usr/share/datasets/fashion-mnist when present, else tfds)",
    )
    p.add_argument("--brax-task", default="ant", help="brax: the environment (an eslt task name; default ant)")
    p.add_argument("--backend", default="generalized", help="brax: the physics backend (default generalized)")
    p.add_argument("--episode-length", type=int, default=500, help="brax: steps per episode (default 500, the paper's)")
    p.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="reference warm-up generations (default 2: evosax's init state is weakly typed, "
        "so ask recompiles once on the second generation)",
    )
    p.add_argument(
        "--reference-map",
        choices=["auto", "vmap", "lax"],
        default="auto",
        help="cnn reference: vmap or lax.map over the population (auto: on CPU lax.map when "
        f"population x batch > {VMAP_SAFE_MEMBER_IMAGES}, e.g. 128 x 1024; vmap on accelerators)",
    )
    p.add_argument(
        "--reference-map-batch", type=int, default=1, help="members per lax.map step in the cnn reference (default 1)"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed runs per side, alternating eslt / reference; the fastest counts (default 1)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print all numbers as one JSON line at the end")
    p.add_argument("--json-out", type=Path, help="write all numbers as JSON to this file")
    args = p.parse_args(argv)

    cases = list(ALL_CASES) if args.case == "all" else [args.case]
    device = jax.devices()[0]
    log(
        f"jax {jax.__version__} on {device.platform} ({device.device_kind}, {jax.device_count()} device(s), "
        f"{os.cpu_count()} CPUs, {platform.node()})"
    )
    results = [run_case(case, args) for case in cases]
    record = {
        "jax": jax.__version__,
        "device": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpus": os.cpu_count(),
        "results": results,
    }
    if args.json:
        print(json.dumps(record), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

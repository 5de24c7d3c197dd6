"""Gradient training of a masked CNN with Adam: the paper's GD baseline for vision.

Cross-entropy minimised with optax Adam over shuffled minibatches of the
training set (appendix C.2: 20 epochs, batch 128, learning rate 3e-4). Pruned
weights are held at exactly zero: their gradients are masked and the weights
re-masked after every update. One epoch is one jitted ``lax.scan`` over
minibatches; the last partial minibatch of an epoch is dropped. The test split
is evaluated every ``eval_every`` epochs and after the last; ``best`` holds the
best test-scoring weights. Same signature, history keys, resume and stop
semantics as :func:`eslt_cli.trainers.es.train`, with epochs in the place of
generations.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eslt_cli.errors import BadInput
from eslt_cli.specs import TrainerSpec, check_ranges
from eslt_cli.tasks.base import Params, Task, evaluate
from eslt_cli.tasks.vision import VisionTask
from eslt_cli.trainers.es import Progress, Record, SnapshotStore, TrainResult, mesh_of, split_key


def _host(tree: Params) -> Params:
    return jax.tree.map(np.asarray, tree)


@functools.lru_cache(maxsize=8)
def _programs(task: VisionTask, lr: float) -> tuple[optax.GradientTransformation, Callable[..., Any]]:
    """The optimiser and the jitted one-epoch function; cached so repeated runs compile once."""
    optimizer = optax.adam(lr)

    def loss_fn(params: Params, images: jax.Array, labels: jax.Array) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(task.logits(params, images), labels).mean()

    @jax.jit
    def epoch(
        carry: tuple[Params, Any], mask: Params, batches: jax.Array, x_train: jax.Array, y_train: jax.Array
    ) -> tuple[tuple[Params, Any], jax.Array]:
        """One pass over ``batches`` (steps, batch) of training indices: new carry and [mean, min] loss."""

        def step(carry: tuple[Params, Any], idx: jax.Array) -> tuple[tuple[Params, Any], jax.Array]:
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx], y_train[idx])
            grads = jax.tree.map(jnp.multiply, grads, mask)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = jax.tree.map(lambda p, u, m: (p + u) * m, params, updates, mask)
            return (params, opt_state), loss

        carry, losses = jax.lax.scan(step, carry, batches)
        return carry, jnp.stack([losses.mean(), losses.min()])

    return optimizer, epoch


def train(
    task: Task,
    spec: TrainerSpec,
    init: Params,
    mask: Params,
    key: jax.Array,
    on_progress: Callable[[Progress], None] | None = None,
    store: SnapshotStore | None = None,
    save_every: int = 1,
    stop: Callable[[], int] | None = None,
    devices: int = 1,
) -> TrainResult:
    """Train the masked ``init`` with Adam for ``spec.epochs`` epochs; ``key`` fixes the shuffles.

    With a ``store``, a snapshot (weights, Adam state, best-so-far, history) is
    saved after every ``save_every`` epochs and a run resumes from the newest
    one; each epoch's shuffle depends only on ``key`` and the epoch, so a
    resumed run is bit-identical. ``stop()`` returning a signal number saves
    and raises :class:`Interrupted` after the current epoch. Progress is
    reported after every epoch, with the latest test metric (NaN before the
    first evaluation). The small CNN trains on one device: ``devices`` is only
    checked against the devices JAX sees.
    """
    if not isinstance(task, VisionTask):
        raise BadInput(f"--trainer adam needs a vision task (cross-entropy on images); {task.spec.name} is not one")
    check_ranges(spec)  # --epochs, --lr, --eval-every positive where given
    if spec.epochs is None or spec.lr is None:
        raise BadInput(f"--trainer adam needs --epochs and --lr, got {spec.epochs} and {spec.lr}")
    mesh_of(devices)
    n_train, size = int(task.arrays["x_train"].shape[0]), task.spec.batch_size or 128  # the paper's batch
    steps = n_train // size
    if steps < 1:
        raise BadInput(f"--batch-size {size} exceeds the {n_train} training images")
    optimizer, epoch = _programs(task, float(spec.lr))
    _, k_train, k_eval = split_key(key)

    mask_f = jax.tree.map(lambda m: jnp.asarray(m, jnp.float32), mask)
    params = jax.tree.map(lambda a, m: jnp.asarray(a, jnp.float32) * m, init, mask_f)
    opt_state = optimizer.init(params)
    record = Record(int(spec.epochs), "epoch")
    best_params = params
    params_def = jax.tree.structure(params)
    opt_leaves, opt_def = jax.tree.flatten(opt_state)
    snapshot = store.latest() if store is not None else None
    if snapshot is not None:
        saved, info = snapshot
        # Orbax hands nested dicts back; rebuild the exact trees (and dtypes) the epoch compiled for.
        params = params_def.unflatten([jnp.asarray(a) for a in jax.tree.leaves(saved["params"])])
        best_params = params_def.unflatten([jnp.asarray(a) for a in jax.tree.leaves(saved["best"])])
        opt_state = opt_def.unflatten(
            [jnp.asarray(saved["adam"][f"{i:05d}"], leaf.dtype) for i, leaf in enumerate(opt_leaves)]
        )
        record.resume(saved["stats"], info)

    def save() -> None:
        adam = {f"{i:05d}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(opt_state))}
        arrays = {
            "params": _host(params),
            "best": _host(best_params),
            "adam": adam,
            "stats": np.concatenate(record.stats),
        }
        store.save(record.done, arrays, record.info())  # type: ignore[union-attr]

    metric = record.evals["metric"][-1] if record.evals["metric"] else float("nan")
    while record.done < spec.epochs:
        start = time.perf_counter()
        order = jax.random.permutation(jax.random.fold_in(k_train, record.done), n_train)
        batches = order[: steps * size].reshape(steps, size)
        (params, opt_state), epoch_stats = epoch(
            (params, opt_state), mask_f, batches, task.arrays["x_train"], task.arrays["y_train"]
        )
        epoch_stats = np.asarray(epoch_stats)
        tested = (record.done + 1) % spec.eval_every == 0 or record.done + 1 == spec.epochs
        metrics = evaluate(task, params, k_eval) if tested else None
        if record.add(1, epoch_stats, metrics, "lower --lr"):
            best_params = params
        metric = metrics["metric"] if metrics is not None else metric
        if on_progress is not None:
            speed = 1.0 / (time.perf_counter() - start)
            on_progress(Progress(record.done, spec.epochs, float(epoch_stats[0]), metric, speed))
        record.after_chunk(stop, store, save_every, save)

    return record.result(_host(params), _host(best_params), None)

"""Gradient training of a masked CNN with Adam: the paper's GD baseline for vision.

Cross-entropy minimised with optax Adam over shuffled minibatches of the
training set (appendix C.2: 20 epochs, batch 128, learning rate 3e-4). Pruned
weights are held at exactly zero: their gradients are masked and the weights
re-masked after every update. An epoch runs as jitted blocks of
:data:`BLOCK` steps, unrolled into straight-line code and called from Python
(XLA:CPU runs the convolution gradients several times slower inside a rolled
``lax.scan``: benchmarks/README.md); the last partial minibatch of an epoch is
dropped. Training steps use ``CNN(grad_layout=True)`` (plain ``nn.Conv`` layers
and a reshape max-pool: faster backward passes, same parameters), evaluation the
task's own model. The test split
is evaluated every ``eval_every`` epochs and after the last; ``best`` holds the
best test-scoring weights. Same signature, history keys, resume and stop
semantics as :func:`eslt_cli.trainers.es.train`, with epochs in the place of
generations.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eslt_cli import settings
from eslt_cli.errors import BadInput
from eslt_cli.specs import AdamSpec
from eslt_cli.tasks.base import Params, Task, evaluate
from eslt_cli.tasks.vision import VisionTask
from eslt_cli.trainers.es import mesh_of, split_key
from eslt_cli.trainers.record import Progress, Record, SnapshotStore, TrainResult


def _host(tree: Params) -> Params:
    return jax.tree.map(np.asarray, tree)


# Steps per jitted block. At batch 128, blocks of 4 and 8 steps ran alike, 1 and 2 steps per call
# 5-15 % slower, and the same steps inside a rolled lax.scan 3-6x slower; 4 compiles faster than 8.
BLOCK = 4


@functools.lru_cache(maxsize=8)
def _programs(task: VisionTask, lr: float) -> tuple[optax.GradientTransformation, Callable[..., Any]]:
    """The optimiser and the jitted block of :data:`BLOCK` steps; cached so repeated runs compile once."""
    optimizer = optax.adam(lr)
    # The task with its CNN laid out for backward passes (models.CNN): same parameters, inputs and logits.
    grad_task = copy.copy(task)
    grad_task.model = task.model.clone(grad_layout=True)

    def loss_fn(params: Params, images: jax.Array, labels: jax.Array) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(grad_task.logits(params, images), labels).mean()

    def step(carry: tuple[Params, Any], mask: Params, images: jax.Array, labels: jax.Array) -> tuple[Any, jax.Array]:
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
        grads = jax.tree.map(jnp.multiply, grads, mask)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u, m: (p + u) * m, params, updates, mask)
        return (params, opt_state), loss

    @jax.jit
    def block(carry: Any, mask: Params, batches: jax.Array, live: jax.Array, x: jax.Array, y: jax.Array) -> Any:
        """``BLOCK`` steps over ``batches`` (BLOCK, batch) of indices into the training images ``x`` and
        labels ``y``; a step where ``live`` is False changes nothing (an epoch's last block may be partly
        padding). The new (params, opt_state) carry and the (BLOCK,) losses."""
        losses = []
        for k in range(BLOCK):  # a Python loop: straight-line code, not a rolled loop
            new, loss = step(carry, mask, x[batches[k]], y[batches[k]])
            carry = jax.tree.map(functools.partial(jnp.where, live[k]), new, carry)
            losses.append(loss)
        return carry, jnp.stack(losses)

    return optimizer, block


def run_epoch(
    block: Callable[..., Any], carry: tuple[Params, Any], mask: Params, batches: np.ndarray, arrays: dict[str, Any]
) -> tuple[tuple[Params, Any], np.ndarray]:
    """Adam steps over ``batches`` (steps, batch) of training indices, ``BLOCK`` per call of ``block``.

    Returns the new carry and the epoch's [mean, min] loss. The blocks are only
    dispatched in the loop; the losses are read once at the end.
    """
    steps, size = batches.shape
    n_blocks = -(-steps // BLOCK)
    padded = np.zeros((n_blocks * BLOCK, size), batches.dtype)
    padded[:steps] = batches
    padded = padded.reshape(n_blocks, BLOCK, size)
    live = (np.arange(n_blocks * BLOCK) < steps).reshape(n_blocks, BLOCK)
    losses = []
    for b in range(n_blocks):
        carry, loss = block(carry, mask, padded[b], live[b], arrays["x_train"], arrays["y_train"])
        losses.append(loss)
    loss = np.concatenate([np.asarray(x) for x in losses])[:steps]
    return carry, np.array([loss.mean(), loss.min()], np.float32)


def check(task: Task | None, spec: AdamSpec) -> tuple[int, int]:
    """Refuse settings :func:`train` cannot run on ``task`` (one :class:`BadInput` line); the training
    images and the batch size (None: before the task is built, the settings alone; then (0, 0))."""
    settings.check_spec(spec)  # --epochs, --lr, --eval-every positive where given
    if spec.epochs is None or spec.lr is None:
        raise BadInput(f"--trainer adam needs --epochs and --lr, got {spec.epochs} and {spec.lr}")
    if task is None:
        return 0, 0
    if not isinstance(task, VisionTask):
        raise BadInput(f"--trainer adam needs a vision task (cross-entropy on images); {task.spec.name} is not one")
    n_train, size = int(task.arrays["x_train"].shape[0]), task.spec.batch_size or 128  # the paper's batch
    if n_train // size < 1:
        raise BadInput(f"--batch-size {size} exceeds the {n_train} training images")
    return n_train, size


def train(
    task: Task,
    spec: AdamSpec,
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
    n_train, size = check(task, spec)
    steps = n_train // size
    mesh_of(devices)
    optimizer, block = _programs(task, float(spec.lr))
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
        # Orbax hands nested dicts back; rebuild the exact trees (and dtypes) the block compiled for.
        params = jax.tree.unflatten(params_def, [jnp.asarray(a) for a in jax.tree.leaves(saved["params"])])
        best_params = jax.tree.unflatten(params_def, [jnp.asarray(a) for a in jax.tree.leaves(saved["best"])])
        opt_state = jax.tree.unflatten(
            opt_def, [jnp.asarray(saved["adam"][f"{i:05d}"], leaf.dtype) for i, leaf in enumerate(opt_leaves)]
        )
        record.resume(saved["stats"], info, on_progress)

    def save() -> None:
        if store is None:
            return
        adam = {f"{i:05d}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(opt_state))}
        arrays = {
            "params": _host(params),
            "best": _host(best_params),
            "adam": adam,
            "stats": np.concatenate(record.stats),
        }
        store.save(record.done, arrays, record.info())

    metric = record.evals["metric"][-1] if record.evals["metric"] else float("nan")
    while record.done < spec.epochs:
        start = time.perf_counter()
        order = np.asarray(jax.random.permutation(jax.random.fold_in(k_train, record.done), n_train))
        (params, opt_state), epoch_stats = run_epoch(
            block, (params, opt_state), mask_f, order[: steps * size].reshape(steps, size), task.arrays
        )
        tested = (record.done + 1) % spec.eval_every == 0 or record.done + 1 == spec.epochs
        metrics = evaluate(task, params, k_eval) if tested else None
        if record.add(1, epoch_stats, metrics, "lower --lr"):
            best_params = params
        metric = metrics["metric"] if metrics is not None else metric
        if on_progress is not None:
            speed = 1.0 / (time.perf_counter() - start)
            on_progress(record.progress(float(epoch_stats[0]), metric, speed))
        record.after_chunk(stop, store, save_every, save)

    return record.result(_host(params), _host(best_params), None)

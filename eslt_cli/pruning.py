"""Pruning criteria, the global threshold and rewinding (Section 2, Algorithm 1).

Pruning is global over all prunable weights (every ``kernel`` not excluded);
biases are never pruned. A level keeps ``round(N0 * keep)`` of the ``N0``
prunable weights, where ``keep`` is the product of ``1 - rate`` over levels, so
after k levels at rate 0.2 the sparsity is 1 - 0.8^k to within one weight, and
each level removes ``rate`` of the surviving weights to within one weight.
Scores tie-break on position (lower flat index pruned first), so masks are
deterministic. Scores are numpy on the host: pruning is cheap. The
data-driven criteria (``snip``, ``grasp``) score the level's initialisation on
a few training batches with one jitted JAX computation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from eslt_cli.errors import BadInput
from eslt_cli.tasks.base import Params, Task

if TYPE_CHECKING:
    from eslt_cli.tasks.vision import VisionTask

Loss = Callable[[Params, jax.Array, jax.Array], jax.Array]  # (params, images, labels) -> mean loss


@dataclass(frozen=True)
class Batches:
    """Training minibatches and the task's loss, for the data-driven criteria (snip, grasp)."""

    loss: Loss
    images: jax.Array  # (batches, batch, H, W, C), as the task stores them
    labels: jax.Array  # (batches, batch)


@dataclass(frozen=True)
class Trained:
    """What a criterion may score: the trained mean, its per-weight std (None for
    isotropic strategies and gradient training), the initialisation training
    started from (None if unknown), the mask it was trained under and training
    batches (None unless a criterion needs them)."""

    mean: Params
    std: Params | None = None
    init: Params | None = None
    mask: Params | None = None
    data: Batches | None = None


@dataclass(frozen=True)
class Criterion:
    """A pruning criterion; every entry takes (key, trained) and returns scores."""

    score: Callable[[jax.Array, Trained], Params]
    needs_std: bool
    needs_data: bool = False  # scores the init on training batches (see :func:`training_batches`)


def magnitude_scores(key: jax.Array, trained: Trained) -> Params:
    """|mean|: the classic IMP criterion applied to the ES mean."""
    return jax.tree.map(lambda m: np.abs(np.asarray(m, np.float64)), trained.mean)


def snr_scores(key: jax.Array, trained: Trained) -> Params:
    """|mean| / std: the paper's signal-to-noise criterion."""
    if trained.std is None:
        raise BadInput("--snr needs a per-weight search std, which this checkpoint lacks")
    # Pruned weights have std 0; they are never candidates, so their score is moot.
    return jax.tree.map(
        lambda m, s: np.abs(np.asarray(m, np.float64)) / np.maximum(np.asarray(s, np.float64), 1e-30),
        trained.mean,
        trained.std,
    )


def movement_scores(key: jax.Array, trained: Trained) -> Params:
    """|mean - init|: how far training moved each weight from its initialisation."""
    if trained.init is None:
        raise BadInput("--movement needs the initialisation the ES started from, which was not given")
    return jax.tree.map(
        lambda m, i: np.abs(np.asarray(m, np.float64) - np.asarray(i, np.float64)), trained.mean, trained.init
    )


def random_scores(key: jax.Array, trained: Trained) -> Params:
    """Uniform noise from ``key``: the sparsity-matched random baseline."""
    leaves, treedef = jax.tree.flatten(trained.mean)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef, [np.asarray(jax.random.uniform(k, np.shape(x)), np.float64) for k, x in zip(keys, leaves)]
    )


@functools.lru_cache(maxsize=8)
def _vision_loss(task: VisionTask) -> Loss:
    """The mean cross-entropy of ``task``'s CNN on a batch; one function per task, so compiled code is reused."""
    import optax

    def loss(params: Params, images: jax.Array, labels: jax.Array) -> jax.Array:
        logits = task.logits(params, images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    return loss


def training_batches(task: Task, key: jax.Array, batches: int) -> Batches:
    """``batches`` disjoint training minibatches of the task's batch size, drawn with ``key``.

    Vision tasks only: the criteria differentiate the cross-entropy of a batch.
    """
    from eslt_cli.tasks.vision import VisionTask  # deferred: flax and optax (start-up of eslt prune)

    if not isinstance(task, VisionTask):
        raise BadInput(
            f"--snip and --grasp need a vision task (a loss on training batches); {task.spec.name} is not one"
        )
    size = task.spec.batch_size or 128
    n_train = int(task.arrays["x_train"].shape[0])
    if not 1 <= batches * size <= n_train:
        raise BadInput(f"--batches must be between 1 and {n_train // size} ({size} images each), got {batches}")
    idx = jax.random.permutation(key, n_train)[: batches * size].reshape(batches, size)
    return Batches(_vision_loss(task), task.arrays["x_train"][idx], task.arrays["y_train"][idx])


@functools.lru_cache(maxsize=8)
def _saliency_program(loss: Loss) -> Callable[..., tuple[Params, Params, Params]]:
    """The jitted (w, g, Hg) computation for ``loss``; data and weights are arguments, so it compiles once per shape."""

    @jax.jit
    def compute(
        init: Params, mask: Params, kernels: Params, images: jax.Array, labels: jax.Array
    ) -> tuple[Params, Params, Params]:
        w = jax.tree.map(jnp.multiply, init, mask)

        def total(p: Params) -> jax.Array:
            masked = jax.tree.map(jnp.multiply, p, mask)
            return jax.lax.map(lambda b: loss(masked, *b), (images, labels)).mean()

        grad = jax.grad(total)
        g = grad(w)
        _, hg = jax.jvp(grad, (w,), (jax.tree.map(jnp.multiply, g, kernels),))
        return w, g, hg

    return compute


def _init_saliency(trained: Trained, criterion: str) -> tuple[Params, Params, Params]:
    """w = init * mask, g = grad L(w) and H g for the mean loss L over ``trained.data``.

    L is a function of the live weights only (evaluated at ``p * mask``), so g
    and H g vanish on pruned weights. The Hessian-vector product is
    forward-over-reverse (``jvp`` of ``grad``) along g restricted to kernels:
    GraSP's gradient flow is that of the prunable weights, biases held fixed.
    """
    if trained.init is None or trained.mask is None or trained.data is None:
        raise BadInput(f"--{criterion} needs the initialisation, the mask and training batches, which were not given")
    data = trained.data
    as_f32 = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)
    kernels = jax.tree.map(lambda m, p: jnp.full(np.shape(m), p, jnp.float32), trained.mask, prunable(trained.mask))
    out = _saliency_program(data.loss)(as_f32(trained.init), as_f32(trained.mask), kernels, data.images, data.labels)
    return jax.tree.map(lambda a: np.asarray(a, np.float64), out)


def snip_scores(key: jax.Array, trained: Trained) -> Params:
    """|g * w| at w = init * mask (SNIP, Lee et al. 2019): the loss's sensitivity to each connection."""
    w, g, _ = _init_saliency(trained, "snip")
    return jax.tree.map(lambda a, b: np.abs(a * b), w, g)


def grasp_scores(key: jax.Array, trained: Trained) -> Params:
    """w * Hg at w = init * mask (GraSP, Wang et al. 2020).

    GraSP's score is S = -w * Hg and it removes the weights with the highest S
    (those whose removal reduces the gradient flow g^T g least, or raises it);
    here higher scores are kept, hence -S. As in the reference code, S is not
    taken in absolute value. Unlike it, logits are not divided by a
    temperature (it uses 200): the loss is the task's plain cross-entropy.
    """
    w, _, hg = _init_saliency(trained, "grasp")
    return jax.tree.map(np.multiply, w, hg)


PRUNERS: dict[str, Criterion] = {
    "magnitude": Criterion(magnitude_scores, False),
    "snr": Criterion(snr_scores, True),
    "random": Criterion(random_scores, False),
    "movement": Criterion(movement_scores, False),
    "snip": Criterion(snip_scores, False, needs_data=True),
    "grasp": Criterion(grasp_scores, False, needs_data=True),
}


def get_pruner(name: str) -> Criterion:
    """The criterion called ``name``."""
    if name not in PRUNERS:
        raise BadInput(f"unknown pruning criterion {name!r}: choose one of {', '.join(PRUNERS)}")
    return PRUNERS[name]


def layer_names(params: Params) -> list[str]:
    """Top-level layer names of a flax params dict (``conv0``, ``dense``, ...)."""
    return list(params)


def prunable(params: Params, exclude: Sequence[str] = ()) -> Params:
    """True for every kernel outside ``exclude``; biases are never prunable."""
    unknown = sorted(set(exclude) - set(layer_names(params)))
    if unknown:
        raise BadInput(f"--exclude names unknown layers {unknown}: layers are {', '.join(layer_names(params))}")
    return {
        layer: {name: name == "kernel" and layer not in exclude for name in leaves} for layer, leaves in params.items()
    }


def global_mask(scores: Params, mask: Params, can_prune: Params, n_keep: int) -> Params:
    """Keep the ``n_keep`` best-scoring live prunable weights; others in ``can_prune`` go.

    Non-prunable leaves keep their mask. Ties go by position: of equal scores the
    lower flat index (in tree order) is pruned first.
    """
    flat_scores, flat_alive = [], []
    for s, m, p in zip(jax.tree.leaves(scores), jax.tree.leaves(mask), jax.tree.leaves(can_prune)):
        if p:
            flat_scores.append(np.ravel(s))
            flat_alive.append(np.ravel(m).astype(bool))
    if not flat_scores:
        raise BadInput("no prunable weights: every layer is excluded")
    score, alive = np.concatenate(flat_scores), np.concatenate(flat_alive)
    live = np.flatnonzero(alive)
    if not 0 <= n_keep <= live.size:
        raise BadInput(f"cannot keep {n_keep} of {live.size} live prunable weights")
    # lexsort sorts by the last key first: score ascending, then position ascending.
    order = live[np.lexsort((live, score[live]))]
    new_alive = np.zeros_like(alive)
    new_alive[order[live.size - n_keep :]] = True

    out, offset = [], 0
    leaves, treedef = jax.tree.flatten(mask)
    for m, p in zip(leaves, jax.tree.leaves(can_prune)):
        if p:
            size = np.size(m)
            out.append(new_alive[offset : offset + size].reshape(np.shape(m)).astype(np.uint8))
            offset += size
        else:
            out.append(np.asarray(m, np.uint8))
    return jax.tree.unflatten(treedef, out)


def sparsity(mask: Params, can_prune: Params | None = None) -> dict[str, Any]:
    """Global and per-layer sparsity of the prunable weights (all kernels by default)."""
    can_prune = prunable(mask) if can_prune is None else can_prune
    per_layer, total, alive = {}, 0, 0
    for layer in mask:
        n = sum(np.size(mask[layer][k]) for k in mask[layer] if can_prune[layer][k])
        a = sum(int(np.sum(mask[layer][k])) for k in mask[layer] if can_prune[layer][k])
        if n:
            per_layer[layer] = {"remaining": a, "total": n, "sparsity": 1.0 - a / n}
        total, alive = total + n, alive + a
    return {"global": 1.0 - alive / total if total else 0.0, "remaining": alive, "total": total, "layers": per_layer}


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank, as ``scipy.stats.rankdata``. By hand with numpy
    because importing scipy cost every ``eslt prune`` 0.6 s of its 2.7 s (benchmarks/bench_startup.py)."""
    ranks = np.empty(x.size)
    ranks[np.argsort(x, kind="stable")] = np.arange(1, x.size + 1)
    _, tie, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(tie, weights=ranks) / counts)[tie]


def snr_correlation(mean: Params, std: Params, mask: Params) -> dict[str, float]:
    """Pearson and Spearman correlation of |mean| and SNR over the live kernel weights (Figure 7)."""
    can_prune = prunable(mask)
    pick = lambda tree: np.concatenate(
        [np.ravel(t)[np.ravel(m).astype(bool)] for t, m, p in
         zip(jax.tree.leaves(tree), jax.tree.leaves(mask), jax.tree.leaves(can_prune)) if p]
    )  # fmt: skip
    magnitude = np.abs(pick(mean)).astype(np.float64)
    snr = magnitude / np.maximum(pick(std).astype(np.float64), 1e-30)
    if magnitude.size < 2 or np.ptp(magnitude) == 0 or np.ptp(snr) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "n": int(magnitude.size)}
    return {
        "pearson": float(np.corrcoef(magnitude, snr)[0, 1]),
        "spearman": float(np.corrcoef(average_ranks(magnitude), average_ranks(snr))[0, 1]),
        "n": int(magnitude.size),
    }


def prune(
    key: jax.Array,
    criterion: str,
    mean: Params,
    std: Params | None,
    mask: Params,
    keep: float,
    exclude: Sequence[str] = (),
    init: Params | None = None,
    data: Batches | None = None,
) -> Params:
    """The next level's mask: keep ``round(keep * N0)`` prunable weights by ``criterion``.

    ``keep`` is the cumulative fraction of the level-0 prunable weights that
    survive this level (``(1 - rate) ** level`` at a constant rate). ``init``
    (the ticket's initialisation) is needed by ``movement``, ``snip`` and
    ``grasp``; ``data`` (see :func:`training_batches`) by ``snip`` and ``grasp``.
    """
    can_prune = prunable(mask, exclude)
    n_total = sum(np.size(m) for m, p in zip(jax.tree.leaves(mask), jax.tree.leaves(can_prune)) if p)
    n_live = sum(int(np.sum(m)) for m, p in zip(jax.tree.leaves(mask), jax.tree.leaves(can_prune)) if p)
    # A tiny network can round to "remove nothing"; always remove at least one weight.
    n_keep = min(int(round(keep * n_total)), n_live - 1) if n_live else 0
    scores = get_pruner(criterion).score(key, Trained(mean, std, init, mask, data))
    return global_mask(scores, mask, can_prune, max(n_keep, 0))

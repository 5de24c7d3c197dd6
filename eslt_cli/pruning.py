"""Pruning criteria, the global threshold and rewinding (Section 2, Algorithm 1).

Pruning is global over all prunable weights (every ``kernel`` not excluded);
biases are never pruned. A level keeps ``round(N0 * keep)`` of the ``N0``
prunable weights, where ``keep`` is the product of ``1 - rate`` over levels, so
after k levels at rate 0.2 the sparsity is 1 - 0.8^k to within one weight, and
each level removes ``rate`` of the surviving weights to within one weight.
Scores tie-break on position (lower flat index pruned first), so masks are
deterministic. Everything here is numpy on the host: pruning is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from eslt_cli.errors import BadInput
from eslt_cli.tasks.base import Params


@dataclass(frozen=True)
class Trained:
    """What a criterion may score: the trained ES mean, its per-weight std (None for
    isotropic strategies) and the initialisation the ES mean started from (None if unknown)."""

    mean: Params
    std: Params | None = None
    init: Params | None = None


@dataclass(frozen=True)
class Criterion:
    """A pruning criterion; every entry takes (key, trained) and returns scores."""

    score: Callable[[np.ndarray, Trained], Params]
    needs_std: bool


def magnitude_scores(key: np.ndarray, trained: Trained) -> Params:
    """|mean|: the classic IMP criterion applied to the ES mean."""
    return jax.tree.map(lambda m: np.abs(np.asarray(m, np.float64)), trained.mean)


def snr_scores(key: np.ndarray, trained: Trained) -> Params:
    """|mean| / std: the paper's signal-to-noise criterion."""
    if trained.std is None:
        raise BadInput("--snr needs a per-weight search std, which this checkpoint lacks")
    # Pruned weights have std 0; they are never candidates, so their score is moot.
    return jax.tree.map(
        lambda m, s: np.abs(np.asarray(m, np.float64)) / np.maximum(np.asarray(s, np.float64), 1e-30),
        trained.mean,
        trained.std,
    )


def movement_scores(key: np.ndarray, trained: Trained) -> Params:
    """|mean - init|: how far training moved each weight from its initialisation."""
    if trained.init is None:
        raise BadInput("--movement needs the initialisation the ES started from, which was not given")
    return jax.tree.map(
        lambda m, i: np.abs(np.asarray(m, np.float64) - np.asarray(i, np.float64)), trained.mean, trained.init
    )


def random_scores(key: np.ndarray, trained: Trained) -> Params:
    """Uniform noise from ``key``: the sparsity-matched random baseline."""
    leaves, treedef = jax.tree.flatten(trained.mean)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([np.asarray(jax.random.uniform(k, np.shape(x)), np.float64) for k, x in zip(keys, leaves)])


PRUNERS: dict[str, Criterion] = {
    "magnitude": Criterion(magnitude_scores, False),
    "snr": Criterion(snr_scores, True),
    "random": Criterion(random_scores, False),
    "movement": Criterion(movement_scores, False),
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
        layer: {name: name == "kernel" and layer not in exclude for name in leaves}
        for layer, leaves in params.items()
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
    new_alive[order[live.size - n_keep:]] = True

    out, offset = [], 0
    leaves, treedef = jax.tree.flatten(mask)
    for m, p in zip(leaves, jax.tree.leaves(can_prune)):
        if p:
            size = np.size(m)
            out.append(new_alive[offset:offset + size].reshape(np.shape(m)).astype(np.uint8))
            offset += size
        else:
            out.append(np.asarray(m, np.uint8))
    return treedef.unflatten(out)


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


def snr_correlation(mean: Params, std: Params, mask: Params) -> dict[str, float]:
    """Pearson and Spearman correlation of |mean| and SNR over the live kernel weights (Figure 7)."""
    from scipy import stats

    can_prune = prunable(mask)
    pick = lambda tree: np.concatenate(  # noqa: E731
        [np.ravel(t)[np.ravel(m).astype(bool)] for t, m, p in
         zip(jax.tree.leaves(tree), jax.tree.leaves(mask), jax.tree.leaves(can_prune)) if p]
    )  # fmt: skip
    magnitude = np.abs(pick(mean)).astype(np.float64)
    snr = magnitude / np.maximum(pick(std).astype(np.float64), 1e-30)
    if magnitude.size < 2 or np.ptp(magnitude) == 0 or np.ptp(snr) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "n": int(magnitude.size)}
    return {
        "pearson": float(stats.pearsonr(magnitude, snr)[0]),
        "spearman": float(stats.spearmanr(magnitude, snr)[0]),
        "n": int(magnitude.size),
    }


def prune(
    key: np.ndarray,
    criterion: str,
    mean: Params,
    std: Params | None,
    mask: Params,
    keep: float,
    exclude: Sequence[str] = (),
    init: Params | None = None,
) -> Params:
    """The next level's mask: keep ``round(keep * N0)`` prunable weights by ``criterion``.

    ``keep`` is the cumulative fraction of the level-0 prunable weights that
    survive this level (``(1 - rate) ** level`` at a constant rate). ``init``
    (the ticket's initialisation) is needed by ``movement`` only.
    """
    can_prune = prunable(mask, exclude)
    n_total = sum(np.size(m) for m, p in zip(jax.tree.leaves(mask), jax.tree.leaves(can_prune)) if p)
    n_live = sum(int(np.sum(m)) for m, p in zip(jax.tree.leaves(mask), jax.tree.leaves(can_prune)) if p)
    # A tiny network can round to "remove nothing"; always remove at least one weight.
    n_keep = min(int(round(keep * n_total)), n_live - 1) if n_live else 0
    scores = get_pruner(criterion).score(key, Trained(mean, std, init))
    return global_mask(scores, mask, can_prune, max(n_keep, 0))

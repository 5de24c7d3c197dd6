"""Observation normalisation for control tasks (paper, appendix C.1: on for brax).

A running mean and variance of the observations seen in training rollouts.
Trainers carry the statistics in their state and merge each generation's
rollout statistics after the generation (so all members of one generation see
the same normaliser); tests and later analyses use them frozen. Checkpoints
store them as ``state/obs_norm`` so every command re-evaluates a policy with
the normaliser it was trained with.

Written by hand rather than taken from ``brax.training.acme.running_statistics``:
that one updates from a batch of observations, while here each member's
rollouts only report sums (count, sum, sum of squares) that are added over the
population, and the same code must serve gymnax tasks without importing brax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Stats = dict[str, jax.Array]  # {"count": (), "sum": (obs,), "sumsq": (obs,)}: one rollout's sums
Norm = dict[str, jax.Array]  # {"count": (), "mean": (obs,), "var": (obs,)}: the running statistics

CLIP = 5.0  # normalised observations are clipped to [-CLIP, CLIP]


def init(obs_size: int) -> Norm:
    """Statistics that have seen nothing: the identity normaliser."""
    return {
        "count": jnp.zeros((), jnp.float32),
        "mean": jnp.zeros(obs_size, jnp.float32),
        "var": jnp.ones(obs_size, jnp.float32),
    }


def empty_stats(obs_size: int) -> Stats:
    """Zero sums, to accumulate a rollout's observations into."""
    zero = jnp.zeros(obs_size, jnp.float32)
    return {"count": jnp.zeros((), jnp.float32), "sum": zero, "sumsq": zero}


def add(stats: Stats, obs: jax.Array, weight: jax.Array) -> Stats:
    """``stats`` with one observation added with ``weight`` (0 after an episode ended)."""
    obs = obs.reshape(-1).astype(jnp.float32)
    return {
        "count": stats["count"] + weight,
        "sum": stats["sum"] + weight * obs,
        "sumsq": stats["sumsq"] + weight * obs**2,
    }


def update(norm: Norm, stats: Stats) -> Norm:
    """Merge summed rollout statistics into the running ones (Chan et al.'s parallel update)."""
    n_b = stats["count"]
    mean_b = stats["sum"] / jnp.maximum(n_b, 1.0)
    var_b = jnp.maximum(stats["sumsq"] / jnp.maximum(n_b, 1.0) - mean_b**2, 0.0)
    n = norm["count"] + n_b
    delta = mean_b - norm["mean"]
    frac = n_b / jnp.maximum(n, 1.0)
    mean = norm["mean"] + delta * frac
    # With nothing seen so far, take the batch variance (not a blend with the identity's 1).
    m2 = jnp.where(norm["count"] > 0, norm["var"] * norm["count"], 0.0) + var_b * n_b + delta**2 * norm["count"] * frac
    var = jnp.where(n > 0, m2 / jnp.maximum(n, 1.0), norm["var"])
    return {"count": n, "mean": mean, "var": var}


def normalize(norm: Norm, obs: jax.Array) -> jax.Array:
    """``obs`` standardised by the running statistics, clipped to [-CLIP, CLIP]."""
    std = jnp.sqrt(jnp.maximum(norm["var"], 1e-8))
    return jnp.clip((obs.astype(jnp.float32) - norm["mean"]) / std, -CLIP, CLIP)

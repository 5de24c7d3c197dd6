"""Registry of the evolution strategies eslt trains with, all from evosax 0.3.

Every entry builds an evosax algorithm over the ticket's surviving weights (a
flat vector of nnz entries) from one :class:`~eslt_cli.specs.TrainerSpec`, and
says how to read the per-weight search std that SNR pruning needs (Section 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import ARS, PGPE, SNES, DiscoveredES, Open_ES, Sep_CMA_ES
from evosax.core.fitness_shaping import add_weight_decay
from evosax.core.optimizer import clipup

from eslt_cli.errors import BadInput
from eslt_cli.specs import TrainerSpec

OPTIMIZERS: dict[str, Callable[[float], optax.GradientTransformation]] = {
    "adam": lambda lr: optax.adam(lr),
    "sgd": lambda lr: optax.sgd(lr),
    # evosax's default for PGPE: max velocity twice the learning rate.
    "clipup": lambda lr: clipup(learning_rate=lr, max_velocity=2 * lr),
}


def _diag_std(state: Any) -> jax.Array:
    return state.std


def _sep_cma_std(state: Any) -> jax.Array:
    # Sep-CMA-ES samples x = mean + std * D * z with D = sqrt(diag C) (evosax's
    # eigen_decomposition clips and loads C the same way before taking the root).
    return state.std * jnp.sqrt(jnp.clip(state.C, 0.0, 1e8) + 1e-8)


@dataclass(frozen=True)
class Strategy:
    """One registry entry; all entries share this shape so tests can loop over them."""

    cls: type
    default_optimizer: str | None  # None: the strategy takes no optimiser
    default_lr: float | None
    std_in_schedule: bool  # isotropic ES set their std through a schedule, not params
    elite: bool  # has an elite ratio
    antithetic: bool  # population must be even
    search_std: Callable[[Any], jax.Array] | None  # per-weight effective std, None if isotropic


STRATEGIES: dict[str, Strategy] = {
    "pgpe": Strategy(PGPE, "clipup", 0.01, False, False, True, _diag_std),
    "snes": Strategy(SNES, "sgd", 1.0, False, False, False, _diag_std),
    "sep_cma_es": Strategy(Sep_CMA_ES, None, None, False, True, False, _sep_cma_std),
    "des": Strategy(DiscoveredES, "sgd", 1.0, False, False, False, _diag_std),
    "open_es": Strategy(Open_ES, "sgd", 1e-3, True, False, True, None),
    "ars": Strategy(ARS, "adam", 1e-3, True, True, True, None),
}
ALIASES = {"sep-cma-es": "sep_cma_es", "sepcmaes": "sep_cma_es", "openes": "open_es", "discovered_es": "des"}


def get_strategy(name: str) -> Strategy:
    """The registry entry for ``name`` (evosax-style spellings accepted)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in STRATEGIES:
        raise BadInput(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[key]


def canonical_strategy(name: str) -> str:
    """The registry key for ``name``."""
    get_strategy(name)
    return ALIASES.get(name.lower(), name.lower())


def check_spec(spec: TrainerSpec) -> None:
    """Raise :class:`BadInput` for settings the strategy cannot take."""
    entry = get_strategy(spec.strategy)
    if spec.population < 2:
        raise BadInput(f"--population must be at least 2, got {spec.population}")
    if entry.antithetic and spec.population % 2:
        raise BadInput(f"{spec.strategy} samples antithetic pairs: --population must be even, got {spec.population}")
    if spec.generations < 1 or spec.eval_every < 1:
        raise BadInput("--generations and --eval-every must be positive")
    if not spec.std_init > 0:
        raise BadInput(f"--std-init must be positive, got {spec.std_init}")
    if spec.optimizer is not None and spec.optimizer not in OPTIMIZERS:
        raise BadInput(f"unknown optimizer {spec.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    if entry.default_optimizer is None and (spec.optimizer is not None or spec.lr is not None):
        raise BadInput(f"{spec.strategy} has no optimiser: drop --optimizer/--lr")
    if spec.lr is not None and not spec.lr > 0:
        raise BadInput(f"--lr must be positive, got {spec.lr}")
    if spec.elite_ratio is not None and not entry.elite:
        raise BadInput(f"{spec.strategy} has no elite selection: drop --elite-ratio")
    if spec.elite_ratio is not None and not 0 < spec.elite_ratio <= 1:
        raise BadInput(f"--elite-ratio must be in (0, 1], got {spec.elite_ratio}")
    if spec.mean_decay < 0:
        raise BadInput(f"--mean-decay must be non-negative, got {spec.mean_decay}")


def build(spec: TrainerSpec, solution: jax.Array) -> tuple[Any, Any]:
    """The evosax algorithm and its params for ``spec`` over a flat ``solution``."""
    entry = get_strategy(spec.strategy)
    kwargs: dict[str, Any] = {}
    if entry.default_optimizer is not None:
        kwargs["optimizer"] = OPTIMIZERS[spec.optimizer or entry.default_optimizer](spec.lr or entry.default_lr)
    if entry.std_in_schedule:
        kwargs["std_schedule"] = optax.constant_schedule(spec.std_init)
    es = entry.cls(spec.population, solution, **kwargs)
    if spec.mean_decay > 0:
        es.fitness_shaping_fn = add_weight_decay(es.fitness_shaping_fn, spec.mean_decay)
    if spec.elite_ratio is not None:
        es.elite_ratio = spec.elite_ratio  # read by default_params (CMA weights) and num_elites
    params = es.default_params
    if hasattr(params, "std_init"):
        params = params.replace(std_init=jnp.asarray(spec.std_init, dtype=jnp.float32))
    return es, params

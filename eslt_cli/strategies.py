"""Registry of the evolution strategies eslt trains with, all from evosax 0.3.

Every entry builds an evosax algorithm over the ticket's surviving weights (a
flat vector of nnz entries) from one :class:`~eslt_cli.specs.ESSpec`, and says
how to read the per-weight search std that SNR pruning needs (Section 2).

The paper's code ran evosax 0.1.4; :func:`build` can reproduce its settings on
top of the 0.3 algorithms (only params replaced and small subclasses, never a
re-implemented update):

- ``temperature`` (snes, des): 0.1.4's temperature fitness weights;
- ``mean_decay``: after every tell ``mean <- (1 - c) * mean`` (0.1.4's
  ``mean_decay``, not an L2 penalty on the fitness);
- ``lr_decay``/``lr_floor``: ES optimiser learning rate
  ``max(lr * lr_decay**g, lr_floor)`` at generation g; ``adam_b1``: Adam's b1;
- ``std_decay``/``std_floor`` (pgpe): after every tell
  ``std <- max(std * std_decay, std_floor)``; ``std_lr`` (pgpe): the rate of
  PGPE's std adaptation;
- ``constants="paper"`` (sep_cma_es): 0.1.4's recombination weights, learning
  rates and h_sigma timing; (pgpe) 0.1.4's std step, index bug included
  (:func:`pgpe_014_std`, the one step written out by hand: 0.3 has only the
  corrected one).

Every setting at its default builds exactly what evosax 0.3 builds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms import ARS, PGPE, SNES, DiscoveredES, Open_ES, Sep_CMA_ES
from evosax.core.optimizer import clipup, scale_by_clipup

from eslt_cli.errors import BadInput
from eslt_cli.settings import check_spec as check_ranges
from eslt_cli.specs import ESSpec

Schedule = float | Callable[[Any], Any]


def _clipup(lr: Schedule) -> optax.GradientTransformation:
    # evosax's default for PGPE: max velocity twice the learning rate.
    if not callable(lr):
        return clipup(learning_rate=lr, max_velocity=2 * lr)
    # A decaying lr: evosax's clipup chain (normalise, clip the velocity at
    # max_velocity / lr = 2, scale by lr) built here, because clipup() divides
    # max_velocity by the learning rate and needs a number.
    return optax.chain(
        optax.normalize_by_update_norm(eps=1e-8),
        scale_by_clipup(max_velocity_ratio=2.0, momentum=0.9),
        optax.scale_by_learning_rate(lr),
    )


OPTIMIZERS: dict[str, Callable[[Schedule, float], optax.GradientTransformation]] = {
    "adam": lambda lr, b1: optax.adam(lr, b1=b1),
    "sgd": lambda lr, b1: optax.sgd(lr),
    "clipup": lambda lr, b1: _clipup(lr),
}
ADAM_B1 = 0.9  # optax's default; ESSpec.adam_b1's default (settings.py) must equal it


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
    temperature: bool = False  # takes --temperature (0.1.4's softmax fitness weights)
    std_decay: bool = False  # takes --std-decay/--std-floor/--std-lr (PGPE's std schedule and adaptation rate)
    paper_constants: bool = False  # takes --constants paper (evosax 0.1.4's weights and rates)
    code_snr_power: int = 1  # the paper's code's SNR divides |mean| by search_std ** this (see snr_noise)


STRATEGIES: dict[str, Strategy] = {
    "pgpe": Strategy(PGPE, "clipup", 0.01, False, False, True, _diag_std, std_decay=True, paper_constants=True),
    "snes": Strategy(SNES, "sgd", 1.0, False, False, False, _diag_std, temperature=True),
    "sep_cma_es": Strategy(
        Sep_CMA_ES, None, None, False, True, False, _sep_cma_std, paper_constants=True, code_snr_power=2
    ),
    "des": Strategy(DiscoveredES, "sgd", 1.0, False, False, False, _diag_std, temperature=True),
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


def _with(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def check_spec(spec: ESSpec) -> None:
    """Raise :class:`BadInput` for settings the strategy cannot take."""
    entry = get_strategy(spec.strategy)
    check_ranges(spec)  # each setting's own range (settings.py), then what this strategy takes
    if entry.antithetic and spec.population % 2:
        raise BadInput(f"{spec.strategy} samples antithetic pairs: --population must be even, got {spec.population}")
    if entry.default_optimizer is None and (spec.optimizer is not None or spec.lr is not None):
        raise BadInput(f"{spec.strategy} has no optimiser: drop --optimizer/--lr")
    if entry.default_optimizer is None and (spec.lr_decay != 1.0 or spec.lr_floor != 0.0):
        raise BadInput(f"{spec.strategy} has no optimiser: drop --lr-decay/--lr-floor")
    if entry.default_optimizer is not None and spec.lr_floor > (spec.lr or entry.default_lr or 0.0):
        raise BadInput(f"--lr-floor {spec.lr_floor} is above the learning rate {spec.lr or entry.default_lr}")
    if spec.adam_b1 != ADAM_B1 and (spec.optimizer or entry.default_optimizer) != "adam":
        raise BadInput(f"--adam-b1 is for the adam optimizer: {spec.strategy} here uses "
                       f"{spec.optimizer or entry.default_optimizer or 'none'}")  # fmt: skip
    if spec.elite_ratio is not None and not entry.elite:
        raise BadInput(f"{spec.strategy} has no elite selection: drop --elite-ratio")
    if spec.temperature is not None and not entry.temperature:
        takes = [k for k, e in STRATEGIES.items() if e.temperature]
        raise BadInput(f"{spec.strategy} has no fitness temperature (only {_with(takes)}): drop --temperature")
    given = [f"--{k.replace('_', '-')}" for k, v, d in (("std_decay", spec.std_decay, 1.0),
             ("std_floor", spec.std_floor, 0.0), ("std_lr", spec.std_lr, None)) if v != d]  # fmt: skip
    if given and not entry.std_decay:
        takes = [k for k, e in STRATEGIES.items() if e.std_decay]
        raise BadInput(f"{spec.strategy} has no std schedule (only {_with(takes)}): drop {'/'.join(given)}")
    if spec.snr_std != "text" and entry.search_std is None:
        raise BadInput(f"{spec.strategy} is isotropic (no per-weight std, no SNR): drop --snr-std")
    if spec.constants != "evosax" and not entry.paper_constants:
        takes = [k for k, e in STRATEGIES.items() if e.paper_constants]
        raise BadInput(f"{spec.strategy} has no evosax 0.1.4 constants (only {_with(takes)}): drop --constants")


def snr_noise(strategy: str, definition: str, std: Any) -> Any:
    """What SNR pruning divides |mean| by, per weight, given the checkpoint's search ``std`` tree.

    ``definition="text"``: the search std itself (the paper's text: |mean| / std). ``"code"``:
    what the paper's code divided by. Its pruning (src/prune/sig2noise.py) divides |mean| by the
    "sigma" that src/es/masked_es.py returns for the final mean: ``es_state.sigma`` (the per-weight
    std) for SNES, PGPE and DES, the same as the text, but ``es_state.C`` for Sep-CMA-ES, the
    per-weight variance without the global step size. eslt's Sep-CMA-ES std is
    ``sigma * sqrt(C + 1e-8)``, so it scores by ``std ** 2 = sigma**2 * (C + 1e-8)``: one positive
    factor for all weights away from ``C``, which a global threshold cannot see, so the ranking and
    the masks are the code's (the 1e-8 is evosax's eigen-decomposition floor; the code's ``--from
    best`` record, ``sigma * C``, ranks the same way).
    """
    power = get_strategy(strategy).code_snr_power if definition == "code" else 1
    if power == 1:
        return std
    return jax.tree.map(lambda s: np.asarray(s, np.float64) ** power, std)


def temperature_weights(population: int, temperature: float) -> jax.Array:
    """evosax 0.1.4's SNES weights: ``softmax(-T * (i / (N - 1) - 0.5))`` for rank i (0 = best)."""
    centred = jnp.arange(population) / (population - 1) - 0.5
    return jax.nn.softmax(-temperature * centred)


def pgpe_014_std(z: jax.Array, fitness: jax.Array, std: jax.Array, std_lr: Any, max_change: Any) -> jax.Array:
    """evosax 0.1.4's PGPE std step (strategies/pgpe.py, ``tell_strategy``), its index bug included.

    ``z``: ``x - mean`` of the first half of the population (the + members), ``fitness``: the
    shaped fitness of all of it (lower is better), in evosax 0.3's layout: the + members first,
    their mirrors second (0.1.4 interleaved them; the pairs are the same). 0.1.4 sorts the pairs by
    their better member (``elite_idx``, every pair: PGPE's elite ratio is 1) and takes their mean
    fitness in that order, but multiplies it by the noise in sampling order (``noise_1`` is not
    indexed by ``elite_idx``): a pair's fitness meets another pair's noise, so the step is a
    random walk around zero rather than a gradient step. It adds the step where a descent would
    subtract it, which a random walk does not notice. Each std then moves by at most
    ``max_change`` of itself. Written here by hand because evosax 0.3's PGPE has only the
    corrected step (``std - std_lr * grad``) and no hook for another.
    """
    half = z.shape[0]
    fit_1, fit_2 = fitness[:half], fitness[half:]
    elite_idx = jnp.argsort(jnp.minimum(fit_1, fit_2))
    baseline = jnp.mean(jnp.concatenate([fit_1[elite_idx], fit_2[elite_idx]]))
    all_avg_scores = (fit_1[elite_idx] + fit_2[elite_idx]) / 2
    delta = jnp.mean((all_avg_scores[:, None] - baseline) * (z**2 - std**2) / std, axis=0)
    allowed = jnp.abs(std) * max_change
    return jnp.clip(std + std_lr * delta, std - allowed, std + allowed)


class PGPE_014(PGPE):
    """PGPE with evosax 0.1.4's std step (:func:`pgpe_014_std`); the mean step is 0.3's, the same
    as 0.1.4's (the mean of ``(f+ - f-) * z / 2`` over the pairs) through the given optimiser."""

    def _tell(self, key: jax.Array, population: Any, fitness: Any, state: Any, params: Any) -> Any:
        z = population[: self.population_size // 2] - state.mean
        std = pgpe_014_std(z, fitness, state.std, params.std_lr, params.std_max_change)
        state = super()._tell(key, population, fitness, state, params.replace(std_lr=0.0))  # 0.3's std step: none
        return state.replace(std=std)


class Sep_CMA_ES_014(Sep_CMA_ES):
    """Sep-CMA-ES with evosax 0.1.4's h_sigma timing.

    evosax 0.3 calls ``h_std`` with ``generation_counter + 1`` and adds one more
    inside (exponent ``2 * (g + 2)``); 0.1.4 uses ``2 * (g + 1)``. Shifting the
    counter back by one gives 0.1.4's stall test, which otherwise differs in the
    first generations.
    """

    def h_std(self, norm_p_std: jax.Array, generation_counter: int, params: Any) -> jax.Array:
        return super().h_std(norm_p_std, generation_counter - 1, params)


def sep_cma_paper_params(es: Sep_CMA_ES, params: Any) -> Any:
    """``params`` with evosax 0.1.4's Sep-CMA-ES weights and learning rates (``es.elite_ratio`` elites).

    0.3's defaults are full CMA-ES's: log weights over the top half whatever the
    elite ratio, and no (n + 2) / 3 boost of the rank-mu rate, so they search
    differently. These are 0.1.4's closed forms (sep_cma_es.py), n the number of
    surviving weights, n' = min(n, 40000), mu the number of elites.
    """
    n, population, mu = es.num_dims, es.population_size, es.num_elites
    n_sq = min(n, 40000)
    w_prime = jnp.log(mu + 1) - jnp.log(jnp.arange(1, mu + 1))
    w_prime = w_prime / w_prime.sum()
    weights = jnp.zeros(population).at[:mu].set(w_prime)  # the rest of the population gets weight 0
    mu_eff = 1 / jnp.sum(w_prime**2)
    c_1 = 2 / ((n_sq + 1.3) ** 2 + mu_eff)
    rank_mu = 2 / mu_eff / (n_sq + jnp.sqrt(2.0)) ** 2
    rank_mu += (1 - 1 / mu_eff) * jnp.minimum(1, (2 * mu_eff - 1) / ((n_sq + 2) ** 2 + mu_eff))
    c_mu = (n + 2) / 3 * rank_mu  # the sep-CMA (n + 2) / 3 boost
    c_std = (mu_eff + 2) / (n + mu_eff + 3)
    d_std = 1 + 2 * jnp.maximum(0, jnp.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_std
    c_c = 4 / (n + 4)
    chi_n = jnp.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n_sq**2))
    return params.replace(
        weights=weights, mu_eff=mu_eff, c_mean=1.0, c_std=c_std, d_std=d_std, c_c=c_c, c_1=c_1, c_mu=c_mu, chi_n=chi_n
    )


PAPER_CLASSES: dict[str, type] = {"sep_cma_es": Sep_CMA_ES_014, "pgpe": PGPE_014}  # constants="paper"


@functools.cache
def _scheduled(cls: type) -> type:
    """``cls`` whose every tell ends with the paper code's per-generation decays.

    evosax 0.3 has neither 0.1.4's ``mean_decay`` nor PGPE's ``sigma_decay`` /
    ``sigma_limit``; 0.1.4 applies both once per tell, after the strategy's own
    update (std first, inside the strategy; then the mean). Overriding ``_tell``
    keeps evosax's best-solution bookkeeping and counter as they are.
    """

    class Scheduled(cls):
        mean_decay = 0.0
        std_decay = 1.0
        std_floor = 0.0

        def _tell(self, key: jax.Array, population: Any, fitness: Any, state: Any, params: Any) -> Any:
            state = super()._tell(key, population, fitness, state, params)
            if self.std_decay != 1.0 or self.std_floor > 0:
                state = state.replace(std=jnp.maximum(state.std * self.std_decay, self.std_floor))
            if self.mean_decay > 0:
                state = state.replace(mean=(1 - self.mean_decay) * state.mean)
            return state

    Scheduled.__name__ = Scheduled.__qualname__ = f"Scheduled{cls.__name__}"
    return Scheduled


def learning_rate(spec: ESSpec) -> Schedule | None:
    """The ES optimiser's learning rate: a number, or a schedule when it decays (None: no optimiser)."""
    entry = get_strategy(spec.strategy)
    if entry.default_optimizer is None:
        return None
    lr = spec.lr or entry.default_lr
    assert lr is not None
    if spec.lr_decay < 1.0:
        # max(lr * decay**g, floor) at the g-th update: optax counts updates from 0.
        return optax.exponential_decay(lr, transition_steps=1, decay_rate=spec.lr_decay, end_value=spec.lr_floor)
    return lr


def build(spec: ESSpec, solution: jax.Array) -> tuple[Any, Any]:
    """The evosax algorithm and its params for ``spec`` over a flat ``solution``."""
    entry = get_strategy(spec.strategy)
    kwargs: dict[str, Any] = {}
    lr = learning_rate(spec)
    optimizer = spec.optimizer or entry.default_optimizer
    if lr is not None and optimizer is not None:  # lr is None exactly when the strategy has no optimiser
        kwargs["optimizer"] = OPTIMIZERS[optimizer](lr, spec.adam_b1)
    if entry.std_in_schedule:
        kwargs["std_schedule"] = optax.constant_schedule(spec.std_init)
    cls = PAPER_CLASSES[canonical_strategy(spec.strategy)] if spec.constants == "paper" else entry.cls
    schedules = spec.mean_decay > 0 or spec.std_decay != 1.0 or spec.std_floor > 0
    if schedules:
        cls = _scheduled(cls)
    es = cls(spec.population, solution, **kwargs)
    if schedules:
        es.mean_decay, es.std_decay, es.std_floor = spec.mean_decay, spec.std_decay, spec.std_floor
    if spec.elite_ratio is not None:
        es.elite_ratio = spec.elite_ratio  # read by default_params (CMA weights) and num_elites
    if spec.temperature is not None and isinstance(es, DiscoveredES):
        es.temperature = spec.temperature  # DES's own attribute, read by default_params
    params = es.default_params
    if hasattr(params, "std_init"):
        params = params.replace(std_init=jnp.asarray(spec.std_init, dtype=jnp.float32))
    if spec.temperature is not None and isinstance(es, SNES):
        # 0.3's SNES weights are xNES's log-rank weights with a -1/N baseline; 0.1.4's
        # temperature weights sum to one and have none.
        params = params.replace(weights=temperature_weights(spec.population, spec.temperature))
    if spec.std_lr is not None:
        params = params.replace(std_lr=float(spec.std_lr))  # a number, as evosax's default
    if spec.constants == "paper" and isinstance(es, Sep_CMA_ES):
        params = sep_cma_paper_params(es, params)
    return es, params

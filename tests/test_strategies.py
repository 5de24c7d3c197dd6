"""Every registered strategy at tiny size: builds, steps, exposes std as documented."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from eslt_cli import strategies
from eslt_cli.errors import BadInput
from eslt_cli.specs import TrainerSpec

SPEC = TrainerSpec("es", "snes", 8, 1, 0.05, None, None, None, 0.0, 1)


@pytest.mark.parametrize("name", list(strategies.STRATEGIES))
def test_registry_entry_steps_and_reports_std(name: str) -> None:
    entry = strategies.get_strategy(name)
    spec = dataclasses.replace(SPEC, strategy=name, optimizer=entry.default_optimizer, lr=entry.default_lr)
    es, params = strategies.build(spec, jnp.zeros(5))
    state = es.init(jax.random.PRNGKey(0), jnp.arange(5.0), params)
    population, state = es.ask(jax.random.PRNGKey(1), state, params)
    assert population.shape == (8, 5)
    # Samples start around the given mean (not zero) with the requested std.
    assert jnp.allclose(population.mean(0), jnp.arange(5.0), atol=0.2)
    state, _ = es.tell(jax.random.PRNGKey(2), population, jnp.sum(population**2, 1), state, params)
    if entry.search_std is None:
        assert name in ("open_es", "ars")
    else:
        std = entry.search_std(state)
        assert std.shape == (5,) and bool(jnp.all(std > 0))


def test_sep_cma_es_std_is_sigma_times_d() -> None:
    spec = dataclasses.replace(SPEC, strategy="sep_cma_es")
    es, params = strategies.build(spec, jnp.zeros(3))
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(3), params).replace(C=jnp.array([1.0, 4.0, 9.0]))
    assert jnp.allclose(strategies.get_strategy("sep_cma_es").search_std(state), 0.05 * jnp.array([1.0, 2.0, 3.0]))


def test_knobs_reach_evosax() -> None:
    spec = dataclasses.replace(SPEC, strategy="sep_cma_es", elite_ratio=0.25, std_init=0.3, mean_decay=0.1)
    es, params = strategies.build(spec, jnp.zeros(4))
    assert es.num_elites == 2 and float(params.std_init) == pytest.approx(0.3)


def test_aliases_and_errors() -> None:
    assert strategies.canonical_strategy("Sep-CMA-ES") == "sep_cma_es"
    with pytest.raises(BadInput, match="choose one of pgpe|snes"):
        strategies.get_strategy("cma")
    bad = [
        dataclasses.replace(SPEC, strategy="pgpe", population=7),
        dataclasses.replace(SPEC, population=1),
        dataclasses.replace(SPEC, std_init=0.0),
        dataclasses.replace(SPEC, elite_ratio=0.5),
        dataclasses.replace(SPEC, strategy="sep_cma_es", optimizer="adam"),
        dataclasses.replace(SPEC, optimizer="rmsprop"),
        dataclasses.replace(SPEC, generations=0),
    ]
    for spec in bad:
        with pytest.raises(BadInput):
            strategies.check_spec(spec)

"""Every registered strategy at tiny size: builds, steps, exposes std as documented.

The paper-code settings (evosax 0.1.4 semantics on evosax 0.3) are checked
against their closed forms: temperature weights, mean decay, learning-rate and
std schedules with floors, Sep-CMA-ES's 0.1.4 constants and h_sigma timing.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from evosax.algorithms import PGPE, SNES, DiscoveredES, Sep_CMA_ES

from eslt_cli import strategies
from eslt_cli.errors import BadInput
from eslt_cli.specs import ESSpec

SPEC = ESSpec("snes", 8, 1, 0.05, None, None, None, 0.0, 1)
PGPE_SPEC = dataclasses.replace(SPEC, strategy="pgpe", lr=0.01, optimizer="clipup")
# The paper code's PGPE (its tuned_hparams, evosax 0.1.4 Adam): as ESSpec changes.
PAPER_PGPE = {"strategy": "pgpe", "optimizer": "adam", "lr": 0.01, "adam_b1": 0.99, "lr_decay": 0.999,
              "lr_floor": 0.001, "std_decay": 0.999, "std_floor": 0.01, "std_lr": 0.0}  # fmt: skip


@pytest.mark.parametrize("name", list(strategies.STRATEGIES))
def test_registry_entry_steps_and_reports_std(name: str) -> None:
    entry = strategies.get_strategy(name)
    spec = dataclasses.replace(SPEC, strategy=name, optimizer=entry.default_optimizer, lr=entry.default_lr)
    es, params = strategies.build(spec, jnp.zeros(5))
    assert type(es) is entry.cls  # defaults: evosax's own class, nothing wrapped
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
    assert es.mean_decay == 0.1 and isinstance(es, Sep_CMA_ES)


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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategy": "pgpe", "temperature": 12.0}, "pgpe has no fitness temperature .*drop --temperature"),
        ({"temperature": 0.0}, "--temperature must be positive"),
        ({"std_decay": 0.999}, "snes has no std schedule .*drop --std-decay"),
        ({"strategy": "des", "std_floor": 0.01, "std_lr": 0.0}, "drop --std-floor/--std-lr"),
        ({"strategy": "pgpe", "std_decay": 0.0}, "--std-decay must be in"),
        ({"constants": "paper"}, "snes has no evosax 0.1.4 constants .*drop --constants"),
        ({"strategy": "sep_cma_es", "constants": "0.1.4"}, "unknown --constants"),
        ({"strategy": "sep_cma_es", "lr_decay": 0.999}, "sep_cma_es has no optimiser: drop --lr-decay"),
        ({"lr_decay": 1.5}, "--lr-decay must be in"),
        ({"lr": 0.01, "lr_floor": 0.1}, "--lr-floor 0.1 is above the learning rate 0.01"),
        ({"adam_b1": 0.99}, "--adam-b1 is for the adam optimizer: snes here uses sgd"),
        ({"strategy": "pgpe", "optimizer": "adam", "adam_b1": 1.0}, "--adam-b1 must be in"),
        ({"mean_decay": 1.0}, "--mean-decay must be in"),
    ],
)
def test_paper_settings_refused_where_they_do_not_apply(change: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message) as info:
        strategies.check_spec(dataclasses.replace(SPEC, **change))
    assert "\n" not in str(info.value)


def test_paper_settings_accepted_where_they_apply() -> None:
    for change in (
        {"temperature": 12.0, "mean_decay": 1e-4, "lr_decay": 0.999, "lr_floor": 0.001},
        {"strategy": "des", "temperature": 12.5},
        PAPER_PGPE,
        {"strategy": "sep_cma_es", "constants": "paper", "elite_ratio": 0.4, "mean_decay": 1e-5},
    ):
        strategies.check_spec(dataclasses.replace(SPEC, **change))


def centred_ranks(n: int) -> np.ndarray:
    return np.arange(n) / (n - 1) - 0.5


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def test_snes_temperature_weights_are_the_softmax_over_centred_ranks() -> None:
    _, params = strategies.build(dataclasses.replace(SPEC, temperature=12.0), jnp.zeros(5))
    np.testing.assert_allclose(params.weights, softmax(-12.0 * centred_ranks(8)), rtol=1e-6)
    assert float(params.weights.sum()) == pytest.approx(1.0)  # no -1/N baseline, unlike 0.3's default
    _, default = strategies.build(SPEC, jnp.zeros(5))
    np.testing.assert_array_equal(default.weights, SNES(8, jnp.zeros(5)).default_params.weights)


def test_des_temperature_reaches_its_weights() -> None:
    spec = dataclasses.replace(SPEC, strategy="des", temperature=3.0)
    es, params = strategies.build(spec, jnp.zeros(5))
    sigmoid = 1 / (1 + np.exp(-3.0 * centred_ranks(8)))
    assert es.temperature == 3.0
    np.testing.assert_allclose(params.weights, softmax(-20 * sigmoid), rtol=1e-6)
    _, default = strategies.build(dataclasses.replace(spec, temperature=None), jnp.zeros(5))
    np.testing.assert_array_equal(default.weights, DiscoveredES(8, jnp.zeros(5)).default_params.weights)


def tell_constant(es, params, state, steps: int) -> list[np.ndarray]:
    """Means after each of ``steps`` tells with every member scoring the same."""
    means = []
    for i in range(steps):
        population, state = es.ask(jax.random.PRNGKey(i), state, params)
        state, _ = es.tell(jax.random.PRNGKey(100 + i), population, jnp.zeros(es.population_size), state, params)
        means.append(np.asarray(state.mean))
    return means


def test_mean_decay_shrinks_the_mean_by_one_minus_c_per_update() -> None:
    # All members equal: PGPE's centred ranks are all zero, so its own update leaves
    # the mean exactly where it is (checked by the c = 0 run) and only the decay acts.
    x0 = jnp.array([1.0, -2.0, 3.0, 0.5, -0.25])
    c = 0.1
    for decay, expected_factor in ((0.0, 1.0), (c, 1 - c)):
        es, params = strategies.build(dataclasses.replace(PGPE_SPEC, mean_decay=decay), jnp.zeros(5))
        means = tell_constant(es, params, es.init(jax.random.PRNGKey(0), x0, params), 3)
        expected = np.asarray(x0)
        for mean in means:
            expected = np.float32(expected_factor) * expected
            np.testing.assert_array_equal(mean, expected)


def test_mean_decay_is_not_a_fitness_penalty() -> None:
    # The paper code's mean_decay leaves the fitness alone: the ranks, hence the
    # strategy's update, are those of the undecayed run.
    es, _ = strategies.build(dataclasses.replace(SPEC, mean_decay=0.5), jnp.zeros(3))
    assert es.fitness_shaping_fn is SNES(8, jnp.zeros(3)).fitness_shaping_fn


def test_pgpe_lr_and_std_decay_to_their_floors() -> None:
    spec = dataclasses.replace(PGPE_SPEC, optimizer="sgd", lr=0.1, lr_decay=0.5, lr_floor=0.02)
    spec = dataclasses.replace(spec, std_init=0.1, std_decay=0.5, std_floor=0.02, std_lr=0.0)
    es, params = strategies.build(spec, jnp.zeros(5))
    assert params.std_lr == 0.0
    expected_lr = [max(0.1 * 0.5**g, 0.02) for g in range(6)]  # 0.1, 0.05, 0.025, 0.02, 0.02, 0.02
    np.testing.assert_allclose(strategies.learning_rate(spec)(jnp.arange(6)), expected_lr, rtol=1e-6)
    # The optimiser inside the strategy steps with those rates: sgd moves by lr_g * grad.
    opt_state = es.optimizer.init(jnp.zeros(5))
    for lr in expected_lr:
        updates, opt_state = es.optimizer.update(jnp.ones(5), opt_state)
        np.testing.assert_allclose(updates, -lr * np.ones(5), rtol=1e-6)
    # The std: with std_lr = 0 PGPE's adaptation does nothing, so only the decay and floor act.
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(5), params)
    std = np.full(5, 0.1, np.float32)
    for i in range(5):
        population, state = es.ask(jax.random.PRNGKey(i), state, params)
        fitness = jnp.sum(population**2, 1)
        state, _ = es.tell(jax.random.PRNGKey(100 + i), population, fitness, state, params)
        std = np.maximum(std * np.float32(0.5), np.float32(0.02))
        np.testing.assert_array_equal(state.std, std)
    assert float(state.std[0]) == pytest.approx(0.02)


@pytest.mark.parametrize(("optimizer", "steps"), [("adam", [2.0, 2.0, 2.0]), ("clipup", [1.0, 1.9, 2.0])])
def test_lr_schedule_with_adam_and_clipup(optimizer: str, steps: list[float]) -> None:
    # A constant gradient of norm 1 (entries 0.5): Adam's bias-corrected step is its
    # sign (twice the entries); ClipUp's velocity is 1, 1.9 gradients, then clipped
    # at norm 2 (max velocity twice the learning rate).
    spec = dataclasses.replace(PGPE_SPEC, optimizer=optimizer, lr=0.1, lr_decay=0.5, lr_floor=0.03, adam_b1=0.9)
    if optimizer == "adam":
        spec = dataclasses.replace(spec, adam_b1=0.5)
    es, _ = strategies.build(spec, jnp.zeros(4))
    opt_state = es.optimizer.init(jnp.zeros(4))
    grad = jnp.full(4, 0.5)  # norm 1
    for g, step in enumerate(steps):
        updates, opt_state = es.optimizer.update(grad, opt_state)
        np.testing.assert_allclose(updates, -max(0.1 * 0.5**g, 0.03) * step * np.asarray(grad), rtol=1e-5)


def test_adam_b1_reaches_optax() -> None:
    spec = dataclasses.replace(PGPE_SPEC, optimizer="adam", lr=0.1, adam_b1=0.0)
    es, _ = strategies.build(spec, jnp.zeros(2))
    opt_state = es.optimizer.init(jnp.zeros(2))
    # Gradients 1 then -1. b1 = 0: the first moment is the last gradient and the
    # bias-corrected second moment is 1, so the second step is lr exactly
    # (optax's default b1 = 0.9 would step 0.1 * 0.01 / 0.19 = 0.0053).
    _, opt_state = es.optimizer.update(jnp.array([1.0, 1.0]), opt_state)
    updates, _ = es.optimizer.update(jnp.array([-1.0, -1.0]), opt_state)
    np.testing.assert_allclose(updates, [0.1, 0.1], rtol=1e-5)


def sep_cma_014(n: int, population: int, mu: int) -> dict[str, float | np.ndarray]:
    """evosax 0.1.4's Sep-CMA-ES weights and rates (sep_cma_es.py), in float64."""
    n_sq = min(n, 40000)
    w = math.log(mu + 1) - np.log(np.arange(1, mu + 1))
    w = w / w.sum()
    mu_eff = 1 / np.sum(w**2)
    c_std = (mu_eff + 2) / (n + mu_eff + 3)
    rank_mu = 2 / mu_eff / (n_sq + math.sqrt(2)) ** 2
    rank_mu += (1 - 1 / mu_eff) * min(1, (2 * mu_eff - 1) / ((n_sq + 2) ** 2 + mu_eff))
    return {
        "weights": np.concatenate([w, np.zeros(population - mu)]),
        "mu_eff": mu_eff,
        "c_mean": 1.0,
        "c_1": 2 / ((n_sq + 1.3) ** 2 + mu_eff),
        "c_mu": (n + 2) / 3 * rank_mu,
        "c_std": c_std,
        "d_std": 1 + 2 * max(0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_std,
        "c_c": 4 / (n + 4),
        "chi_n": math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n_sq**2)),
    }


@pytest.mark.parametrize(("elite_ratio", "mu"), [(None, 4), (0.25, 2), (1.0, 8)])
def test_sep_cma_es_paper_constants_are_evosax_014s(elite_ratio: float | None, mu: int) -> None:
    spec = dataclasses.replace(SPEC, strategy="sep_cma_es", constants="paper", elite_ratio=elite_ratio, std_init=0.1)
    es, params = strategies.build(spec, jnp.zeros(6))
    assert es.num_elites == mu and float(params.std_init) == pytest.approx(0.1)
    for name, value in sep_cma_014(6, 8, mu).items():
        np.testing.assert_allclose(getattr(params, name), value, rtol=2e-6, err_msg=name)
    # "evosax" keeps 0.3's defaults (and its elite ratio setting).
    es3, params3 = strategies.build(dataclasses.replace(spec, constants="evosax"), jnp.zeros(6))
    reference = Sep_CMA_ES(8, jnp.zeros(6))
    reference.elite_ratio = elite_ratio or 0.5
    expected = reference.default_params.replace(std_init=jnp.float32(0.1))
    for a, b in zip(jax.tree.leaves(params3), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(a, b)
    assert type(es3) is Sep_CMA_ES


def test_sep_cma_es_paper_h_sigma_uses_evosax_014s_exponent() -> None:
    # tell() asks h_std about generation g with g + 1; 0.1.4's stall test divides by
    # sqrt(1 - (1 - c)^(2 (g + 1))), 0.3's by sqrt(1 - (1 - c)^(2 (g + 2))). A norm
    # between the two thresholds at g = 0 tells them apart.
    spec = dataclasses.replace(SPEC, strategy="sep_cma_es", constants="paper")
    es, params = strategies.build(spec, jnp.zeros(6))
    c, bound = float(params.c_std), (1.4 + 2 / 7) * float(params.chi_n)
    norm = bound * math.sqrt(math.sqrt(1 - (1 - c) ** 2) * math.sqrt(1 - (1 - c) ** 4))
    assert not bool(es.h_std(jnp.asarray(norm), 1, params))  # 0.1.4: norm / sqrt(1 - (1-c)^2) is above the bound
    assert bool(Sep_CMA_ES.h_std(es, jnp.asarray(norm), 1, params))  # 0.3 would say it is below


def test_pgpe_std_lr_default_is_evosaxs() -> None:
    _, params = strategies.build(PGPE_SPEC, jnp.zeros(3))
    assert params.std_lr == PGPE(8, jnp.zeros(3)).default_params.std_lr

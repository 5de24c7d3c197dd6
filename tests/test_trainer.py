"""The ES trainer on a tiny quadratic task and a real gymnax task."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eslt_cli.errors import RunFailed
from eslt_cli.specs import ModelSpec, TaskSpec, TrainerSpec
from eslt_cli.tasks import build_task, get_entry
from eslt_cli.tasks.base import evaluate
from eslt_cli.trainers.es import split_key, train


class Quadratic:
    """Minimise the distance to a target: a task the trainer must solve."""

    spec = TaskSpec("quadratic")
    model_spec = ModelSpec("mlp", hidden=())
    metric = "score"
    member_batch = None
    arrays = {"target": jnp.array(0.5)}

    def __init__(self, poison: bool = False):
        self.poison = poison

    def init_params(self, key):
        return {"l": {"kernel": jax.random.normal(key, (3, 2)), "bias": jnp.zeros(2)}}

    def loss(self, params, target=0.5):
        sq = jnp.sum((params["l"]["kernel"] - target) ** 2) + jnp.sum((params["l"]["bias"] + target) ** 2)
        return jnp.where(self.poison, jnp.nan, sq)

    def member_fitness(self, arrays, key):
        return lambda params: self.loss(params, arrays["target"])

    def evaluate(self, arrays, params, key):
        return {"metric": -self.loss(params, arrays["target"]), "loss": self.loss(params, arrays["target"])}


SPEC = TrainerSpec("es", "snes", 16, 60, 0.1, 0.5, "sgd", None, 0.0, 20)
MASK = {"l": {"kernel": np.array([[1, 0], [1, 1], [0, 1]], np.uint8), "bias": np.ones(2, np.uint8)}}


def test_learns_with_pruned_weights_held_at_zero() -> None:
    task = Quadratic()
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    result = train(task, SPEC, init, MASK, jax.random.PRNGKey(1))
    masked_init = jax.tree.map(lambda a, m: a * m, init, MASK)
    assert result.final["metric"] > -task.loss(masked_init) + 0.5 * task.loss(masked_init)
    for tree in (result.mean, result.best, result.std):
        assert np.all(np.asarray(tree["l"]["kernel"])[MASK["l"]["kernel"] == 0] == 0)
    assert np.all(np.asarray(result.std["l"]["kernel"])[MASK["l"]["kernel"] == 1] > 0)
    assert result.best_metrics["metric"] == max(result.history["eval"]["metric"])
    assert len(result.history["fitness_mean"]) == SPEC.generations


def test_mean_starts_at_the_masked_init() -> None:
    task = Quadratic()
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    spec = dataclasses.replace(SPEC, strategy="open_es", std_init=1e-6, lr=1e-9, generations=2, eval_every=2)
    result = train(task, spec, init, MASK, jax.random.PRNGKey(1))
    np.testing.assert_allclose(result.mean["l"]["kernel"], init["l"]["kernel"] * MASK["l"]["kernel"], atol=2e-3)
    assert result.std is None  # isotropic: no per-weight std


def test_same_key_same_result() -> None:
    task = Quadratic()
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    a = train(task, SPEC, init, MASK, jax.random.PRNGKey(3))
    b = train(task, SPEC, init, MASK, jax.random.PRNGKey(3))
    for x, y in zip(jax.tree.leaves(a.mean), jax.tree.leaves(b.mean)):
        np.testing.assert_array_equal(x, y)


def test_non_finite_fitness_fails_the_run() -> None:
    task = Quadratic(poison=True)
    init = task.init_params(jax.random.PRNGKey(0))
    with pytest.raises(RunFailed, match="non-finite"):
        train(task, dataclasses.replace(SPEC, generations=2, eval_every=2), init, MASK, jax.random.PRNGKey(1))


def test_pendulum_round_trip_through_the_registry() -> None:
    spec = TaskSpec("pendulum", train_episodes=2, test_episodes=2)
    task = build_task(spec, get_entry("pendulum").model)
    init = task.init_params(jax.random.PRNGKey(0))
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), init)
    trainer = TrainerSpec("es", "pgpe", 8, 2, 0.1, 0.01, "clipup", None, 0.0, 2)
    result = train(task, trainer, init, mask, jax.random.PRNGKey(0))
    assert -2000 < result.final["metric"] <= 0  # pendulum returns are negative
    # The same mean evaluated again with the same key gives the same test return.
    again = evaluate(task, result.mean, split_key(jax.random.PRNGKey(0))[2])
    assert again["metric"] == pytest.approx(result.final["metric"], rel=1e-5)

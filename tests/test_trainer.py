"""The ES trainer on a tiny quadratic task and a real gymnax task.

Also: the paper code's mean decay through the whole loop, the search std kept
with the best mean, and bit-identical resume from an interrupted run.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eslt_cli.errors import Interrupted, RunFailed
from eslt_cli.specs import ControlSpec, ESSpec, MLPSpec
from eslt_cli.tasks import build_task
from eslt_cli.tasks.base import evaluate
from eslt_cli.trainers.es import split_key, train


class Quadratic:
    """Minimise the distance to a target: a task the trainer must solve."""

    spec = ControlSpec("quadratic")
    model_spec = MLPSpec(hidden=())
    metric = "score"
    member_batch = None

    def __init__(self, poison: bool = False, constant: bool = False, worsening: bool = False):
        self.arrays = {"target": jnp.array(0.5)}
        self.poison = poison
        self.constant = constant  # every member scores the same
        self.worsening = worsening  # the test metric is the loss: the best mean is the first one tested

    def init_params(self, key):
        return {"l": {"kernel": jax.random.normal(key, (3, 2)), "bias": jnp.zeros(2)}}

    def loss(self, params, target=0.5):
        sq = jnp.sum((params["l"]["kernel"] - target) ** 2) + jnp.sum((params["l"]["bias"] + target) ** 2)
        return jnp.where(self.poison, jnp.nan, sq)

    def member_fitness(self, arrays, key):
        if self.constant:
            return lambda params: 0.0 * self.loss(params, arrays["target"])
        return lambda params: self.loss(params, arrays["target"])

    def evaluate(self, arrays, params, key):
        loss = self.loss(params, arrays["target"])
        return {"metric": loss if self.worsening else -loss, "loss": loss}


SPEC = ESSpec("snes", 16, 60, 0.1, 0.5, "sgd", None, 0.0, 20)
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
    spec = ControlSpec("pendulum", train_episodes=2, test_episodes=2)
    task = build_task(spec, MLPSpec())
    init = task.init_params(jax.random.PRNGKey(0))
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), init)
    trainer = ESSpec("pgpe", 8, 2, 0.1, 0.01, "clipup", None, 0.0, 2)
    result = train(task, trainer, init, mask, jax.random.PRNGKey(0))
    assert -2000 < result.final["metric"] <= 0  # pendulum returns are negative
    # The same mean evaluated again with the same key gives the same test return.
    again = evaluate(task, result.mean, split_key(jax.random.PRNGKey(0))[2])
    assert again["metric"] == pytest.approx(result.final["metric"], rel=1e-5)


def test_mean_decay_shrinks_the_surviving_weights_by_one_minus_c_per_generation() -> None:
    # Constant fitness: PGPE's own update is zero, so only the paper code's decay moves the mean.
    task = Quadratic(constant=True)
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    spec = ESSpec("pgpe", 8, 3, 0.1, 0.01, "clipup", None, 0.25, 3)
    result = train(task, spec, init, MASK, jax.random.PRNGKey(1))
    for leaf, start, mask in zip(jax.tree.leaves(result.mean), jax.tree.leaves(init), jax.tree.leaves(MASK)):
        expected = start * mask
        for _ in range(3):
            expected = np.float32(0.75) * expected
        np.testing.assert_array_equal(leaf, expected)


def worsening_run(generations: int, **kw):
    task = Quadratic(worsening=True)
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    return train(task, dataclasses.replace(SPEC, generations=generations), init, MASK, jax.random.PRNGKey(1), **kw)


def assert_trees_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_best_std_is_the_std_the_best_mean_was_scored_with() -> None:
    full = worsening_run(60)
    assert full.best_metrics["generation"] == SPEC.eval_every  # the first tested mean is the best
    # Keys depend only on the generation: a run stopped there is the full run at that point.
    short = worsening_run(SPEC.eval_every)
    assert_trees_equal(full.best, short.mean)
    assert_trees_equal(full.best_std, short.std)
    assert not np.array_equal(full.best_std["l"]["kernel"], full.std["l"]["kernel"])
    assert np.all(np.asarray(full.best_std["l"]["kernel"])[MASK["l"]["kernel"] == 0] == 0)


def test_isotropic_strategies_have_no_best_std() -> None:
    task = Quadratic()
    spec = dataclasses.replace(SPEC, strategy="open_es", lr=1e-3, generations=2, eval_every=2)
    assert train(task, spec, task.init_params(jax.random.PRNGKey(0)), MASK, jax.random.PRNGKey(1)).best_std is None


class MemoryStore:
    """Snapshots in memory (as checkpoint.ResumeStore, without the files)."""

    def __init__(self):
        self.snapshots: list[tuple[dict, dict]] = []

    def latest(self):
        return self.snapshots[-1] if self.snapshots else None

    def save(self, step, arrays, info):
        self.snapshots.append((jax.tree.map(np.array, arrays), {**info, "best": dict(info["best"])}))


def test_interrupted_run_resumes_bit_identically_with_its_best_std() -> None:
    reference = worsening_run(60)
    store, calls = MemoryStore(), []

    def stop() -> int:  # a signal after the second chunk: the best (first chunk) is only in the snapshot
        calls.append(1)
        return 15 if len(calls) == 2 else 0

    with pytest.raises(Interrupted):
        worsening_run(60, store=store, save_every=1000, stop=stop)
    assert "best_std" in store.latest()[0] and store.latest()[1]["generation"] == 40
    resumed = worsening_run(60, store=store)
    for name in ("mean", "best", "std", "best_std"):
        assert_trees_equal(getattr(reference, name), getattr(resumed, name))
    assert reference.history == resumed.history and reference.best_metrics == resumed.best_metrics

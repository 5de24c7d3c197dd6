"""The PPO trainer: learns CartPole, holds pruned weights at zero, resumes bit-identically, checks its input."""

from pathlib import Path

import jax
import numpy as np
import pytest

from eslt_cli.checkpoint import ResumeStore
from eslt_cli.errors import BadInput, Interrupted
from eslt_cli.specs import ControlSpec, MLPSpec, PPOSpec, VisionSpec
from eslt_cli.tasks import build_task
from eslt_cli.tasks.base import evaluate
from eslt_cli.trainers import ppo
from eslt_cli.trainers.es import split_key

MLP = MLPSpec(hidden=(32, 32))
# 10 updates of the defaults' rollout size (8 x 128 steps), tested every 5.
SHORT = PPOSpec(timesteps=10 * 8 * 128, eval_every=5)
# 6 updates of 4 x 16 steps, tested every 2: three chunks.
TINY = PPOSpec(timesteps=384, num_envs=4, rollout_steps=16, update_epochs=2, minibatches=2, eval_every=2)


def cartpole():
    return build_task(ControlSpec("cartpole", train_episodes=1, test_episodes=8), MLP)


def pendulum():
    return build_task(ControlSpec("pendulum", train_episodes=1, test_episodes=2, obs_norm=True), MLP)


def dense(task, seed: int = 0):
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(seed)))
    return init, jax.tree.map(lambda a: np.ones(a.shape, np.uint8), init)


def test_learns_cartpole_far_beyond_its_initialisation() -> None:
    task = cartpole()
    init, mask = dense(task)
    key = jax.random.PRNGKey(1)
    before = evaluate(task, init, split_key(key)[2])["metric"]  # the untrained policy, on the same test episodes
    result = ppo.train(task, SHORT, init, mask, key)
    assert before < 60 and result.best_metrics["metric"] > 100
    assert result.best_metrics["metric"] == max(result.history["eval"]["metric"])
    assert result.history["eval"]["generation"] == [5, 10] and len(result.history["fitness_mean"]) == 10
    assert result.std is None and result.norm is None


def test_pruned_weights_stay_exactly_zero() -> None:
    task = cartpole()
    init, _ = dense(task)
    rng = np.random.default_rng(0)

    # Half the kernel weights pruned at random; biases are never pruned.
    def half(kernel: np.ndarray) -> np.ndarray:
        return (rng.random(kernel.shape) < 0.5).astype(np.uint8)

    mask = {name: {"kernel": half(p["kernel"]), "bias": np.ones_like(p["bias"], np.uint8)} for name, p in init.items()}
    result = ppo.train(task, SHORT, init, mask, jax.random.PRNGKey(2))  # compiled by the test above
    for layer, m in mask.items():
        kept = m["kernel"] == 1
        for tree in (result.mean, result.best):
            assert np.all(np.asarray(tree[layer]["kernel"])[~kept] == 0)
        assert not np.allclose(result.mean[layer]["kernel"][kept], init[layer]["kernel"][kept])


def test_continuous_task_returns_its_observation_normaliser() -> None:
    task = pendulum()
    init, mask = dense(task)
    result = ppo.train(task, TINY, init, mask, jax.random.PRNGKey(3))
    assert result.norm["count"] == 6 * 4 * 16  # every observation the rollouts saw
    assert np.all(result.norm["var"] > 0) and np.all(np.isfinite(result.norm["mean"]))
    assert result.best_norm is not None and result.best_norm["count"] == 4 * 16 * result.best_metrics["generation"]
    assert np.isfinite(result.final["metric"])


def test_stop_then_resume_is_bit_identical(tmp_path: Path) -> None:
    task = pendulum()
    init, mask = dense(task)
    key = jax.random.PRNGKey(4)
    reference = ppo.train(task, TINY, init, mask, key)
    store = ResumeStore(tmp_path / "out", {"test": "ppo"})
    seen = []
    with pytest.raises(Interrupted, match="update 2/6"):
        ppo.train(task, TINY, init, mask, key, on_progress=seen.append, store=store, stop=lambda: 15)
    resumed = ppo.train(task, TINY, init, mask, key, on_progress=seen.append, store=store)
    # The resumed run says where it starts (after the saved chunk), then trains the rest.
    assert [(p.generation, p.resumed) for p in seen] == [(2, False), (2, True), (4, False), (6, False)]
    assert seen[1].best == seen[0].best == seen[0].metric and seen[3].best == resumed.best_metrics["metric"]
    for a, b in ((reference.mean, resumed.mean), (reference.best, resumed.best), (reference.norm, resumed.norm),
                 (reference.best_norm, resumed.best_norm)):  # fmt: skip
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(x, y)
    assert reference.history == resumed.history and reference.best_metrics == resumed.best_metrics


class NotControl:
    spec = VisionSpec("mnist")


@pytest.mark.parametrize(
    ("task", "changes", "message"),
    [
        (NotControl(), {}, "needs a control task"),
        (None, {"timesteps": 100}, "less than one rollout"),
        (None, {"minibatches": 3}, "must divide"),
        (None, {"gamma": 1.5}, "--gamma must be in"),
        (None, {"num_envs": 0}, "--num-envs must be positive"),
    ],
)
def test_bad_settings_are_refused(task, changes, message) -> None:
    task = task or cartpole()
    spec = PPOSpec(**changes)
    with pytest.raises(BadInput, match=message):
        ppo.check(task, spec)


def test_critic_widths_and_reward_scale_take_effect() -> None:
    """The brax configs' critic (its own widths) and reward scaling change the training, not the policy's shape."""
    import dataclasses

    task = cartpole()
    init, mask = dense(task)
    base = ppo.train(task, TINY, init, mask, jax.random.PRNGKey(2))
    for changes in ({"critic": (8,)}, {"reward_scale": 0.1}):
        other = ppo.train(task, dataclasses.replace(TINY, **changes), init, mask, jax.random.PRNGKey(2))
        assert jax.tree.structure(other.mean) == jax.tree.structure(base.mean)
        assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(other.mean), jax.tree.leaves(base.mean)))

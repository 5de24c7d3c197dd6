"""Control tasks from gymnax with the paper's MLP policy (Section 3, appendix C.1).

Fitness is the negative mean return over ``train_episodes`` episodes (evosax
minimises); evaluation is the mean return over ``test_episodes`` episodes drawn
from keys the trainer keeps apart from training keys.

Control tasks share an environment interface (``reset``, ``step`` in policy
action space, ``policy``) that the gradient trainer (PPO) uses as well, and an
optional observation normaliser (:mod:`eslt_cli.obsnorm`) passed in
``arrays["obs_norm"]``: with it, a member's fitness function returns
``(fitness, stats)``, the observation sums of its training rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np

from eslt_cli import obsnorm
from eslt_cli.models import MLP
from eslt_cli.specs import BraxSpec, ControlSpec, MLPSpec
from eslt_cli.tasks.base import Arrays, Params, uniform_biases


class ControlTask:
    """What gymnax and brax tasks share: the MLP policy, episodes in one ``lax.scan``, normalisation.

    Subclasses set ``obs_size``, ``num_actions``, ``discrete``, ``max_steps``,
    ``low``/``high`` (continuous action bounds) and implement ``reset`` and
    ``env_step`` (environment action space).
    """

    metric = "return"
    member_batch = None
    obs_size: int
    num_actions: int  # discrete: number of actions; continuous: action dimensions
    discrete: bool
    max_steps: int
    low: Any = None
    high: Any = None

    def _setup(self, spec: ControlSpec | BraxSpec, model_spec: MLPSpec) -> None:
        self.spec, self.model_spec = spec, model_spec
        tanh = not self.discrete and not model_spec.linear_output
        self.model = MLP(self.num_actions, model_spec.hidden, tanh_output=tanh)
        # Environments are code; the only data is the normaliser, when on.
        self.arrays: Arrays = {"obs_norm": obsnorm.init(self.obs_size)} if spec.obs_norm else {}

    def init_params(self, key: jax.Array) -> Params:
        params = self.model.init(key, jnp.zeros((1, self.obs_size)))["params"]
        return uniform_biases(params, jax.random.fold_in(key, 1), self.model_spec.bias_init)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        """(observation, environment state) of a new episode."""
        raise NotImplementedError

    def env_step(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
        """(observation, state, reward, done) after ``action`` in the environment's action space."""
        raise NotImplementedError

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
        """:meth:`env_step` with a policy-space action: an index, or a vector in [-1, 1]."""
        if not self.discrete:
            action = self.low + (jnp.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)
        return self.env_step(key, state, action)

    def policy(self, params: Params, obs: jax.Array, arrays: Arrays) -> jax.Array:
        """The network's output for one raw observation: logits, or a tanh mean in [-1, 1]."""
        obs = obs.reshape(-1).astype(jnp.float32)
        if "obs_norm" in arrays:
            obs = obsnorm.normalize(arrays["obs_norm"], obs)
        return self.model.apply({"params": params}, obs[None])[0]

    def act(self, params: Params, obs: jax.Array, arrays: Arrays) -> jax.Array:
        """The deterministic policy-space action (ES evaluation)."""
        out = self.policy(params, obs, arrays)
        return jnp.argmax(out) if self.discrete else out

    def episode(self, params: Params, key: jax.Array, arrays: Arrays) -> tuple[jax.Array, obsnorm.Stats]:
        """Return of one episode of at most ``max_steps`` steps, and the sums of its observations.

        Rewards after the first termination are masked out rather than the
        environment reset (gymnax's auto-reset would run a reset every step).
        """
        key, reset_key = jax.random.split(key)
        obs, state = self.reset(reset_key)

        def step(carry: tuple, step_key: jax.Array) -> tuple[tuple, None]:
            obs, state, total, alive, stats = carry
            if "obs_norm" in arrays:  # the sums are only needed to update a normaliser
                stats = obsnorm.add(stats, obs, alive)
            obs, state, reward, done = self.step(step_key, state, self.act(params, obs, arrays))
            return (obs, state, total + alive * reward, alive * (1.0 - done), stats), None

        carry = (obs, state, jnp.float32(0.0), jnp.float32(1.0), obsnorm.empty_stats(self.obs_size))
        (_, _, total, _, stats), _ = jax.lax.scan(step, carry, jax.random.split(key, self.max_steps))
        return total, stats

    def returns(self, params: Params, key: jax.Array, episodes: int, arrays: Arrays) -> tuple[jax.Array, obsnorm.Stats]:
        totals, stats = jax.vmap(self.episode, in_axes=(None, 0, None))(params, jax.random.split(key, episodes), arrays)
        return totals, jax.tree.map(lambda s: s.sum(0), stats)

    def member_fitness(self, arrays: Arrays, key: jax.Array) -> Callable[[Params], Any]:
        # Common random numbers: every member sees the same episodes in a generation.
        def fitness(params: Params) -> Any:
            totals, stats = self.returns(params, key, self.spec.train_episodes, arrays)
            return (-totals.mean(), stats) if "obs_norm" in arrays else -totals.mean()

        return fitness

    def evaluate(self, arrays: Arrays, params: Params, key: jax.Array) -> dict[str, jax.Array]:
        ret = self.returns(params, key, self.spec.test_episodes, arrays)[0].mean()
        return {"metric": ret, "loss": -ret}


class GymnaxTask(ControlTask):
    """An MLP policy in a gymnax environment."""

    def __init__(self, spec: ControlSpec, model_spec: MLPSpec, env_id: str, env_params: dict[str, Any] | None = None):
        self.env, self.env_params = gymnax.make(env_id)
        if env_params:
            self.env_params = self.env_params.replace(**env_params)
        action_space = self.env.action_space(self.env_params)
        self.obs_size = int(np.prod(self.env.observation_space(self.env_params).shape))
        self.discrete = hasattr(action_space, "n")
        if self.discrete:
            self.num_actions = int(action_space.n)
        else:
            self.num_actions = int(np.prod(action_space.shape))
            self.low, self.high = jnp.asarray(action_space.low), jnp.asarray(action_space.high)
        self.max_steps = int(self.env_params.max_steps_in_episode)
        self._setup(spec, model_spec)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        return self.env.reset(key, self.env_params)

    def env_step(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
        # step_env: no auto-reset (callers decide what happens after ``done``).
        obs, state, reward, done, _ = self.env.step_env(key, state, action, self.env_params)
        return obs, state, jnp.asarray(reward, jnp.float32), jnp.asarray(done, jnp.float32)

"""Control tasks from gymnax with the paper's MLP policy (Section 3, appendix C.1).

Fitness is the negative mean return over ``train_episodes`` episodes (evosax
minimises); evaluation is the mean return over ``test_episodes`` episodes drawn
from keys the trainer keeps apart from training keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np

from eslt_cli.models import MLP
from eslt_cli.specs import ModelSpec, TaskSpec
from eslt_cli.tasks.base import Arrays, Params


class GymnaxTask:
    """An MLP policy in a gymnax environment, episodes run in one ``lax.scan``."""

    metric = "return"
    member_batch = None
    arrays: Arrays = {}  # environments are code; nothing to pass

    def __init__(self, spec: TaskSpec, model_spec: ModelSpec, env_id: str, env_params: dict[str, Any] | None = None):
        self.spec, self.model_spec = spec, model_spec
        self.env, self.env_params = gymnax.make(env_id)
        if env_params:
            self.env_params = self.env_params.replace(**env_params)
        action_space = self.env.action_space(self.env_params)
        self.obs_size = int(np.prod(self.env.observation_space(self.env_params).shape))
        self.discrete = hasattr(action_space, "n")
        if self.discrete:
            n_out, self.low, self.high = int(action_space.n), None, None
        else:
            n_out = int(np.prod(action_space.shape))
            self.low, self.high = jnp.asarray(action_space.low), jnp.asarray(action_space.high)
        self.model = MLP(n_out, model_spec.hidden or (32, 32), tanh_output=not self.discrete)
        self.max_steps = int(self.env_params.max_steps_in_episode)

    def init_params(self, key: jax.Array) -> Params:
        return self.model.init(key, jnp.zeros((1, self.obs_size)))["params"]

    def act(self, params: Params, obs: jax.Array) -> jax.Array:
        out = self.model.apply({"params": params}, obs.reshape(1, -1).astype(jnp.float32))[0]
        if self.discrete:
            return jnp.argmax(out)
        return self.low + (out + 1.0) * 0.5 * (self.high - self.low)

    def episode_return(self, params: Params, key: jax.Array) -> jax.Array:
        """Return of one episode of at most ``max_steps`` steps.

        Calls ``step_env`` rather than ``step``: gymnax's auto-reset would run a
        reset every step, while here rewards after the first termination are
        simply masked out.
        """
        key, reset_key = jax.random.split(key)
        obs, state = self.env.reset(reset_key, self.env_params)

        def step(carry: tuple, step_key: jax.Array) -> tuple[tuple, None]:
            obs, state, total, alive = carry
            obs, state, reward, done, _ = self.env.step_env(step_key, state, self.act(params, obs), self.env_params)
            return (obs, state, total + alive * reward, alive * (1.0 - done)), None

        carry = (obs, state, jnp.float32(0.0), jnp.float32(1.0))
        (_, _, total, _), _ = jax.lax.scan(step, carry, jax.random.split(key, self.max_steps))
        return total

    def returns(self, params: Params, key: jax.Array, episodes: int) -> jax.Array:
        return jax.vmap(self.episode_return, in_axes=(None, 0))(params, jax.random.split(key, episodes))

    def member_fitness(self, arrays: Arrays, key: jax.Array) -> Callable[[Params], jax.Array]:
        # Common random numbers: every member sees the same episodes in a generation.
        return lambda params: -self.returns(params, key, self.spec.train_episodes or 8).mean()

    def evaluate(self, arrays: Arrays, params: Params, key: jax.Array) -> dict[str, jax.Array]:
        ret = self.returns(params, key, self.spec.test_episodes or 16).mean()
        return {"metric": ret, "loss": -ret}

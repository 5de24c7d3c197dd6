"""Returns of three fixed policies on gymnax Pendulum-v1 (200 steps, 64 episodes): what a stalled
or spinning network scores, to read the failure levels of the Pendulum results against."""

from collections.abc import Callable

import gymnax
import jax
import jax.numpy as jnp

POLICIES = {
    "zero torque": lambda obs: jnp.array([0.0]),
    "constant full torque": lambda obs: jnp.array([2.0]),
    "full torque along the angular velocity (spinning)": lambda obs: 2.0 * jnp.sign(obs[2:3]),
}


def main() -> None:
    env, params = gymnax.make("Pendulum-v1")

    def episode(key: jax.Array, policy: Callable[[jax.Array], jax.Array]) -> jax.Array:
        obs, state = env.reset(key, params)

        def step(carry, _):  # type: ignore[no-untyped-def]
            obs, state, key, total = carry
            key, k = jax.random.split(key)
            obs, state, reward, *_ = env.step(k, state, policy(obs), params)
            return (obs, state, key, total + reward), None

        (*_, total), _ = jax.lax.scan(step, (obs, state, key, 0.0), None, length=200)
        return total

    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    for name, policy in POLICIES.items():
        returns = jax.vmap(episode, in_axes=(0, None))(keys, policy)
        print(f"{name}: {returns.mean():.0f} (std {returns.std():.0f}, 64 episodes)")


if __name__ == "__main__":
    main()

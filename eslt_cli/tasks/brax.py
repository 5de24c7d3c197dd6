"""Brax locomotion tasks with the paper's MLP policy (Section 3, appendix C.1).

An environment of ``brax.envs`` on one of brax's physics backends, stepped
without brax's ``EpisodeWrapper``/``AutoResetWrapper``: :class:`ControlTask`
runs ``episode_length`` steps and masks rewards after the first termination.
Once an episode has ended the state is frozen (see :meth:`BraxTask.env_step`),
so an unstable simulation after a fall cannot leak NaNs into returns or the
observation normaliser.

Variants for transfer (``ant_heavy``) scale the mass and inertia of named
bodies (``mass_scale``); observation and action sizes stay those of the base
environment.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

from eslt_cli.specs import BraxSpec, MLPSpec
from eslt_cli.tasks.control import ControlTask

# Fields of a brax System (an mjx.Model) derived from body masses; mjx reads its own copies.
_MASS_FIELDS = ("body_mass", "body_subtreemass", "body_inertia", "body_invweight0", "dof_invweight0", "dof_M0",
                "tendon_invweight0", "stat")  # fmt: skip


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what importing brax and loading its models print (stdout is for data)."""
    import mujoco

    previous = mujoco.get_mju_user_warning()
    # mujoco.mjx prints "Failed to import warp" (an optional GPU backend) on stdout;
    # halfcheetah's XML uses a deprecated compiler attribute; brax warns on every
    # model load that its own pipelines are unmaintained.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Brax System", category=UserWarning)
        mujoco.set_mju_user_warning(lambda _: None)
        try:
            yield
        finally:
            mujoco.set_mju_user_warning(previous)


def scale_masses(sys: Any, scales: dict[str, float]) -> Any:
    """``sys`` with the mass and inertia of each named body multiplied by its factor.

    The change is made in the System's MuJoCo model, whose mass-derived constants
    (inverse weights, subtree masses) MuJoCo then recomputes; only those fields
    are copied back, so backend-specific settings of ``sys`` (time step, gears) stay.
    """
    import mujoco
    from brax.io import mjcf

    mj = copy.deepcopy(sys.mj_model)
    for body, factor in scales.items():
        i = mj.body(body).id  # KeyError for an unknown body
        mj.body_mass[i] *= factor
        mj.body_inertia[i] *= factor  # same shape, denser material
    mujoco.mj_setConst(mj, mujoco.MjData(mj))
    new = mjcf.load_model(mj)
    link = sys.link.replace(inertia=new.link.inertia, invweight=new.link.invweight)
    return sys.replace(link=link, dof=sys.dof.replace(invweight=new.dof.invweight), mj_model=mj,
                       **{k: getattr(new, k) for k in _MASS_FIELDS})  # fmt: skip


class BraxTask(ControlTask):
    """An MLP policy in a brax environment; actions in [-1, 1], ``spec.episode_length`` steps."""

    def __init__(self, spec: BraxSpec, model_spec: MLPSpec, env_name: str, env_params: dict[str, Any] | None = None):
        with _quiet():
            from brax import envs

            self.env = envs.get_environment(env_name, backend=spec.backend)
            if env_params and env_params.get("mass_scale"):
                self.env.sys = scale_masses(self.env.sys, env_params["mass_scale"])
        # Not env.observation_size: that runs a reset op by op (seconds).
        self.obs_size = int(jax.eval_shape(self.env.reset, jax.random.PRNGKey(0)).obs.shape[-1])
        self.num_actions = int(self.env.action_size)
        self.discrete = False
        self.low, self.high = -jnp.ones(self.num_actions), jnp.ones(self.num_actions)
        self.max_steps = spec.episode_length
        self._setup(spec, model_spec)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        state = self.env.reset(key)
        return state.obs, state

    def env_step(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
        # brax environments are deterministic after reset: ``key`` is unused.
        new = self.env.step(state, action)
        # After termination keep the old state: the physics of a fallen body may diverge.
        new = jax.tree.map(lambda a, b: jnp.where(state.done > 0, a, b), state, new)
        return new.obs, new, jnp.asarray(new.reward, jnp.float32), jnp.asarray(new.done, jnp.float32)

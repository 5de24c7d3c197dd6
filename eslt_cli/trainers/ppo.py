"""PPO training of a masked policy: the paper's gradient-based baseline for control tasks.

Written by hand in the style of PureJaxRL rather than taken from
``brax.training.agents.ppo``: that trainer builds and initialises its own
networks, so it can neither start from a ticket's initialisation nor hold
pruned weights at zero. Here the policy is the task's masked MLP starting at
``init``; its gradients are masked and its weights re-masked after every
update, so pruned weights stay exactly zero.

- The value network is a separate, dense MLP with ``spec.critic``'s widths (default: the
  policy's hidden sizes); rewards enter the loss times ``spec.reward_scale``.
  Continuous actions are Gaussian around the policy's tanh mean with a learned
  state-independent ``log_std``. Neither is part of the result (or the
  checkpoint): tests and analyses use the deterministic policy
  (:meth:`ControlTask.act`), which needs neither.
- Environments auto-reset here (task ``step`` does not): an ended episode is
  replaced by a fresh one. An episode that reaches ``task.max_steps`` is
  truncated, not terminated: the value of its last observation is added to its
  last reward (discounted), then it is reset like a terminated one. (gymnax
  reports its own time limit as ``done``; it coincides with this one.)
- With observation normalisation the policy and value see observations
  normalised by the running statistics of all rollouts so far; each rollout's
  observations are merged in after its update.
- ``history["fitness_mean"]``/``["fitness_best"]`` hold, per update, minus the
  mean/best return of the episodes completed in that update's rollout (ES
  convention: lower is better), repeating the previous value when none
  completed (0 before the first).

Updates run inside one jitted ``lax.scan`` of ``eval_every`` updates; between
chunks the host tests the deterministic policy, keeps the best, reports
progress and saves snapshots, as :func:`eslt_cli.trainers.es.train` does. Keys
depend only on the update index, so a resumed run gives bit-identical results.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eslt_cli import obsnorm, settings
from eslt_cli.errors import BadInput
from eslt_cli.models import MLP
from eslt_cli.specs import PPOSpec
from eslt_cli.tasks.base import Arrays, Params, Task
from eslt_cli.tasks.control import ControlTask
from eslt_cli.trainers.es import host, mesh_of, split_key
from eslt_cli.trainers.record import Progress, Record, SnapshotStore, TrainResult

LOG_STD_INIT = -0.5  # continuous actions: initial log std of the Gaussian (policy space, [-1, 1])


def check(task: Task | None, spec: PPOSpec) -> int:
    """Validate ``task`` (None: before it is built, the settings alone) and ``spec``; the number of updates."""
    if task is not None and not isinstance(task, ControlTask):
        raise BadInput(f"--trainer ppo needs a control task, got {task.spec.name}")
    settings.check_spec(spec)
    batch = spec.num_envs * spec.rollout_steps
    if spec.timesteps < batch:
        raise BadInput(
            f"--timesteps {spec.timesteps} is less than one rollout (--num-envs x --rollout-steps = {batch})"
        )
    if batch % spec.minibatches:
        raise BadInput(f"--minibatches {spec.minibatches} must divide --num-envs x --rollout-steps = {batch}")
    return spec.timesteps // batch


def learning_rate(spec: PPOSpec) -> float | optax.Schedule:
    """Adam's learning rate: ``lr``, or with ``lr_end`` a linear schedule from ``lr`` to ``lr_end`` over
    ``lr_steps`` optimiser steps (minibatch updates; all of the run's if None), then ``lr_end``.

    The paper code's gym PPO (src/gym_ppo/gym_ppo.py) goes from 3e-4 to 1e-4 over
    ``lr_warmup * num_train_steps`` = 87,500 optimiser steps, counting minibatch updates against
    environment steps: it reaches 1e-4 at 85% of its 102,912 optimiser steps and stays there.
    """
    if spec.lr_end is None:
        return spec.lr
    updates = spec.timesteps // (spec.num_envs * spec.rollout_steps)
    steps = spec.lr_steps or updates * spec.update_epochs * spec.minibatches
    return optax.linear_schedule(spec.lr, spec.lr_end, steps)


@functools.lru_cache(maxsize=16)
def _programs(task: ControlTask, spec: PPOSpec) -> tuple[Callable, Callable, Callable]:
    """State initialiser, jitted chunk and evaluation functions; cached per (task, settings)."""
    normalizes = "obs_norm" in task.arrays
    # The critic: spec.critic's widths (the brax configs' 5x256), else the policy's hidden widths.
    value_net = MLP(1, spec.critic or task.model_spec.hidden, tanh_output=False)
    optimizer = optax.chain(optax.clip_by_global_norm(spec.max_grad_norm), optax.adam(learning_rate(spec), eps=1e-5))
    envs, steps = spec.num_envs, spec.rollout_steps
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def features(obs: jax.Array, norm: Any) -> jax.Array:
        """The value network's input: flat (normalised) observations, batch-first."""
        flat = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        return obsnorm.normalize(norm, flat) if normalizes else flat

    def value(net: Params, obs: jax.Array, norm: Any) -> jax.Array:
        out: jax.Array = value_net.apply({"params": net["value"]}, features(obs, norm))  # type: ignore[assignment]
        return out[:, 0]

    def policy(net: Params, obs: jax.Array, arrays: Arrays) -> jax.Array:
        return jax.vmap(task.policy, in_axes=(None, 0, None))(net["policy"], obs, arrays)

    def log_prob(net: Params, out: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Log-probabilities of ``action`` and entropies of the action distributions ``out`` defines."""
        if task.discrete:
            logp = jax.nn.log_softmax(out)
            return jnp.take_along_axis(logp, action[:, None], 1)[:, 0], -(jnp.exp(logp) * logp).sum(-1)
        log_std = net["log_std"]
        z = (action - out) * jnp.exp(-log_std)
        lp = (-0.5 * z**2 - log_std - half_log_2pi).sum(-1)
        return lp, jnp.broadcast_to((log_std + 0.5 + half_log_2pi).sum(), lp.shape)

    def sample(key: jax.Array, net: Params, out: jax.Array) -> jax.Array:
        if task.discrete:
            return jax.random.categorical(key, out)
        return out + jnp.exp(net["log_std"]) * jax.random.normal(key, out.shape)

    def initial_state(params: Params, key: jax.Array) -> dict[str, Any]:
        """The train state before the first update."""
        k_value, k_reset = jax.random.split(key)
        net = {"policy": params, "value": value_net.init(k_value, jnp.zeros((1, task.obs_size)))["params"]}
        if not task.discrete:
            net["log_std"] = jnp.full(task.num_actions, LOG_STD_INIT, jnp.float32)
        obs, env = jax.vmap(task.reset)(jax.random.split(k_reset, envs))
        state = {
            "net": net,
            "opt": optimizer.init(net),
            "env": env,
            "obs": obs,
            "t": jnp.zeros(envs, jnp.int32),  # steps into the current episode
            "ret": jnp.zeros(envs, jnp.float32),  # return so far of the current episode
            "fitness": jnp.zeros(2, jnp.float32),  # the last [fitness_mean, fitness_best]
        }
        if normalizes:
            state["norm"] = task.arrays["obs_norm"]
        # Strong types, so that the chunk compiles once (its outputs are strongly typed).
        return jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.result_type(a)), state)

    def rollout(state: dict[str, Any], arrays: Arrays, key: jax.Array) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        """``steps`` steps in every environment with auto-reset; the transitions, time-major."""
        net, norm = state["net"], state.get("norm")

        def step(state: dict[str, Any], key: jax.Array) -> tuple[dict[str, Any], dict[str, jax.Array]]:
            k_act, k_step, k_reset = jax.random.split(key, 3)
            obs = state["obs"]
            out = policy(net, obs, arrays)
            action = sample(k_act, net, out)
            logp, _ = log_prob(net, out, action)
            next_obs, env, reward, done = jax.vmap(task.step)(jax.random.split(k_step, envs), state["env"], action)
            t = state["t"] + 1
            truncated = t >= task.max_steps
            ended = (done > 0) | truncated
            # Bootstrap truncated episodes from the value of their last observation.
            # Rewards scaled in the loss only (brax's reward_scaling); returns are reported unscaled.
            target_reward = spec.reward_scale * reward + spec.gamma * truncated * value(net, next_obs, norm)
            ret = state["ret"] + reward
            # Reset only when some environment ended (a real branch: resets can be costly, e.g. brax).
            reset_obs, reset_env = jax.lax.cond(
                ended.any(),
                lambda: jax.vmap(task.reset)(jax.random.split(k_reset, envs)),
                lambda: (next_obs, env),
            )

            def pick(fresh: jax.Array, old: jax.Array) -> jax.Array:
                return jnp.where(ended.reshape(-1, *[1] * (old.ndim - 1)), fresh, old)

            state = state | {
                "env": jax.tree.map(pick, reset_env, env),
                "obs": pick(reset_obs, next_obs),
                "t": jnp.where(ended, 0, t),
                "ret": jnp.where(ended, 0.0, ret),
            }
            transition = {"obs": obs, "action": action, "logp": logp, "reward": target_reward, "ended": ended,
                          "episode_return": ret}  # fmt: skip
            return state, transition

        return jax.lax.scan(step, state, jax.random.split(key, steps))

    def loss_fn(net: Params, batch: dict[str, jax.Array], arrays: Arrays, norm: Any) -> jax.Array:
        """The clipped PPO objective with a clipped value loss and an entropy bonus (PureJaxRL's)."""
        logp, entropy = log_prob(net, policy(net, batch["obs"], arrays), batch["action"])
        v = value(net, batch["obs"], norm)
        v_clipped = batch["value"] + jnp.clip(v - batch["value"], -spec.clip_eps, spec.clip_eps)
        v_loss = 0.5 * jnp.maximum((v - batch["target"]) ** 2, (v_clipped - batch["target"]) ** 2).mean()
        adv = (batch["adv"] - batch["adv"].mean()) / (batch["adv"].std() + 1e-8)
        ratio = jnp.exp(logp - batch["logp"])
        pg_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - spec.clip_eps, 1 + spec.clip_eps) * adv).mean()
        return pg_loss + spec.vf_coef * v_loss - spec.ent_coef * entropy.mean()

    def update(state: dict[str, Any], mask: Params, arrays: Arrays, key: jax.Array) -> tuple[dict[str, Any], jax.Array]:
        """One rollout and its PPO epochs; [fitness_mean, fitness_best] of the rollout."""
        k_roll, k_epochs = jax.random.split(key)
        norm = state.get("norm")
        arrays = arrays | ({"obs_norm": norm} if normalizes else {})
        state, tr = rollout(state, arrays, k_roll)
        net = state["net"]
        values = value(net, tr["obs"].reshape(-1, *tr["obs"].shape[2:]), norm).reshape(steps, envs)
        last_value = value(net, state["obs"], norm)

        def gae(carry: tuple[jax.Array, jax.Array], step: tuple[jax.Array, ...]) -> tuple[tuple[Any, ...], jax.Array]:
            """Generalised advantage estimation, one step back in time."""
            adv, next_value = carry
            reward, v, ended = step
            alive = 1.0 - ended
            adv = reward + spec.gamma * next_value * alive - v + spec.gamma * spec.gae_lambda * alive * adv
            return (adv, v), adv

        _, adv = jax.lax.scan(gae, (jnp.zeros(envs), last_value), (tr["reward"], values, tr["ended"]), reverse=True)
        data = {"obs": tr["obs"], "action": tr["action"], "logp": tr["logp"], "value": values, "adv": adv,
                "target": adv + values}  # fmt: skip
        data = jax.tree.map(lambda a: a.reshape(steps * envs, *a.shape[2:]), data)

        def minibatch(carry: tuple[Params, Any], batch: dict[str, jax.Array]) -> tuple[tuple[Params, Any], None]:
            net, opt = carry
            grads = jax.grad(loss_fn)(net, batch, arrays, norm)
            grads["policy"] = jax.tree.map(jnp.multiply, grads["policy"], mask)
            step, opt = optimizer.update(grads, opt, net)
            net = optax.apply_updates(net, step)
            # Re-mask: pruned weights stay exactly zero whatever the optimiser does.
            net["policy"] = jax.tree.map(jnp.multiply, net["policy"], mask)
            return (net, opt), None

        def epoch(carry: tuple[Params, Any], key: jax.Array) -> tuple[tuple[Params, Any], None]:
            order = jax.random.permutation(key, steps * envs)
            batches = jax.tree.map(lambda a: a[order].reshape(spec.minibatches, -1, *a.shape[1:]), data)
            return jax.lax.scan(minibatch, carry, batches)

        (net, opt), _ = jax.lax.scan(epoch, (net, state["opt"]), jax.random.split(k_epochs, spec.update_epochs))
        state = state | {"net": net, "opt": opt}
        if normalizes:  # the next rollout sees this one's observations
            flat = tr["obs"].reshape(steps * envs, -1)
            stats = jax.vmap(lambda o: obsnorm.add(obsnorm.empty_stats(task.obs_size), o, jnp.float32(1.0)))(flat)
            state["norm"] = obsnorm.update(state["norm"], jax.tree.map(lambda s: s.sum(0), stats))
        completed = tr["ended"].sum()
        returns = jnp.where(tr["ended"], tr["episode_return"], 0.0)
        best = jnp.where(tr["ended"], tr["episode_return"], -jnp.inf).max()
        fitness = -jnp.stack([returns.sum() / jnp.maximum(completed, 1), best])
        fitness = jnp.where(completed > 0, fitness, state["fitness"])  # no episode ended: keep the last values
        return state | {"fitness": fitness}, fitness

    @jax.jit
    def chunk(
        state: dict[str, Any], mask: Params, arrays: Arrays, key: jax.Array, first: jax.Array, end: jax.Array
    ) -> tuple[dict[str, Any], jax.Array]:
        """Updates ``first``, ``first + 1``, ... before ``end``; [fitness_mean, fitness_best] of each.

        Always ``eval_every`` long (updates from ``end`` on are skipped), so
        that a last, shorter chunk does not compile again.
        """

        def one(state: dict[str, Any], u: jax.Array) -> tuple[dict[str, Any], jax.Array]:
            def run(state: dict[str, Any]) -> tuple[dict[str, Any], jax.Array]:
                return update(state, mask, arrays, jax.random.fold_in(key, u))

            return jax.lax.cond(u < end, run, lambda state: (state, state["fitness"]), state)

        return jax.lax.scan(one, state, first + jnp.arange(spec.eval_every))

    @jax.jit
    def evaluate(params: Params, key: jax.Array, arrays: Arrays) -> dict[str, jax.Array]:
        return task.evaluate(arrays, params, key)

    return initial_state, chunk, evaluate


def train(
    task: Task,
    spec: PPOSpec,
    init: Params,
    mask: Params,
    key: jax.Array,
    on_progress: Callable[[Progress], None] | None = None,
    store: SnapshotStore | None = None,
    save_every: int = 1,
    stop: Callable[[], int] | None = None,
    devices: int = 1,
) -> TrainResult:
    """Train the masked policy ``init`` with PPO per ``spec``; ``key`` fixes everything random.

    Same contract as :func:`eslt_cli.trainers.es.train`, counted in updates
    (``timesteps // (num_envs * rollout_steps)`` of them): with a ``store`` the
    whole train state is snapshotted at the first chunk end after every
    ``save_every`` updates and a run resumes from the newest snapshot;
    ``stop()`` returning a signal number saves and raises :class:`Interrupted`.
    ``result.mean`` is the final policy, ``result.std`` None. PPO runs on one
    device: ``devices`` is checked, then ignored.
    """
    mesh_of(devices)
    total = check(task, spec)
    init_state, chunk, evaluate = _programs(task, dataclasses.replace(spec, timesteps=0))
    k_init, k_train, k_eval = split_key(key)
    mask = jax.tree.map(lambda m: jnp.asarray(m, jnp.float32), mask)
    params = jax.tree.map(lambda a, m: jnp.asarray(a, jnp.float32) * m, init, mask)
    state = init_state(params, k_init)
    normalizes = "norm" in state

    record = Record(total, "update")
    best_params = jax.tree.map(host, params)
    best_norm = jax.tree.map(host, state["norm"]) if normalizes else None
    leaves, treedef = jax.tree.flatten(state)
    snapshot = store.latest() if store is not None else None
    if snapshot is not None:
        saved, info = snapshot
        state = jax.tree.unflatten(treedef, [jnp.asarray(saved["state"][f"{i:05d}"]) for i in range(len(leaves))])
        best_params, best_norm = saved["best"], saved.get("best_norm")
        record.resume(saved["stats"], info, on_progress)

    def save() -> None:
        snapshot = {"state": {f"{i:05d}": host(leaf) for i, leaf in enumerate(jax.tree.leaves(state))},
                    "best": best_params, "stats": np.concatenate(record.stats)}  # fmt: skip
        if best_norm is not None:
            snapshot["best_norm"] = best_norm
        store.save(record.done, snapshot, record.info())  # type: ignore[union-attr]

    while record.done < total:
        n = min(spec.eval_every, total - record.done)
        start = time.perf_counter()
        state, chunk_stats = chunk(state, mask, task.arrays, k_train, jnp.int32(record.done), jnp.int32(total))
        test_arrays = task.arrays | ({"obs_norm": state["norm"]} if normalizes else {})
        metrics = {k: float(v) for k, v in evaluate(state["net"]["policy"], k_eval, test_arrays).items()}
        chunk_stats = host(chunk_stats)[:n]
        elapsed = time.perf_counter() - start
        if record.add(n, chunk_stats, metrics, "lower --lr or --max-grad-norm, or check the task"):
            best_params = jax.tree.map(host, state["net"]["policy"])
            best_norm = jax.tree.map(host, state["norm"]) if normalizes else None
        if on_progress is not None:
            on_progress(record.progress(float(chunk_stats[-1, 0]), metrics["metric"], n / elapsed))
        record.after_chunk(stop, store, save_every, save)

    norm = jax.tree.map(host, state["norm"]) if normalizes else None
    return record.result(jax.tree.map(host, state["net"]["policy"]), best_params, None, norm, best_norm)

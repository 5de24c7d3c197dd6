"""Time eslt's PPO trainer against a PureJaxRL-style PPO loop: environment steps per second.

eslt side: the real trainer code. ``eslt_cli.trainers.ppo._programs`` gives the
jitted ``chunk`` that runs ``eval_every`` updates (rollout, GAE, epochs of
minibatch Adam steps) in one ``lax.scan``; here ``eval_every`` is set to the
timed number of updates U, the chunk is called once to compile and warm up, and
a second call of U updates is timed. Settings come from
``eslt_cli.plans.plan_train`` as ``eslt train --trainer ppo`` settles them
(CPU preset: 8 environments x 128 steps, 4 epochs of 4 minibatches, Adam 3e-4,
PureJaxRL's CartPole settings), with a dense mask. A second line times the whole
``ppo.train`` (test evaluations every ``eval_every`` updates included, the preset's
cadence) for information.

Reference side: PureJaxRL's ``ppo.py`` structure: one jitted ``train(rng)``
whose ``lax.scan`` over U updates holds the rollout scan (gymnax ``env.step``
with its built-in auto-reset, LogWrapper-style return bookkeeping), GAE, and the
epoch / minibatch scans with ``clip_by_global_norm`` + Adam(eps 1e-5) through a
flax ``TrainState``. The actor and critic are the same MLPs as eslt's (the
task's policy and a separate value MLP of the same hidden sizes; discrete:
categorical, continuous: Gaussian around the tanh mean with a learned log std),
starting from the same initial policy. Compiled by a first call; a second call
with another key is timed.

Prints one line per side-by-side comparison on stdout, e.g.

    ppo  cartpole  8 envs x 128 steps  updates 100  eslt 234192 steps/s  reference 216010 steps/s  ratio 1.08x

where ratio = eslt steps/s / reference steps/s (above 1: eslt is faster), and
with ``--json`` a final JSON line with all numbers. Progress goes to stderr.

    python benchmarks/bench_ppo.py                      # cartpole, 100 updates, best of 3
    python benchmarks/bench_ppo.py --task pendulum --updates 10 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import jax.numpy as jnp
import numpy as np
import optax
from benchlib import COMPILES, log
from flax.training.train_state import TrainState

from eslt_cli import plans
from eslt_cli.models import MLP
from eslt_cli.tasks import build_task
from eslt_cli.trainers import ppo
from eslt_cli.trainers.es import split_key

# ---------------------------------------------------------------------- reference


def make_reference_train(task: Any, spec: Any, init_policy: Any, updates: int):
    """PureJaxRL's make_train, on the task's gymnax environment and eslt's networks and settings."""
    env, env_params = task.env, task.env_params
    envs, steps, minibatches = spec.num_envs, spec.rollout_steps, spec.minibatches
    actor = task.model
    critic = MLP(1, task.model_spec.hidden or (32, 32), tanh_output=False)
    discrete = task.discrete
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def to_env(action: jax.Array) -> jax.Array:
        if discrete:
            return action
        return task.low + (jnp.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (task.high - task.low)

    def apply(params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return actor.apply({"params": params["actor"]}, obs), critic.apply({"params": params["critic"]}, obs)[:, 0]

    def log_prob_entropy(params: Any, out: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        if discrete:
            logp = jax.nn.log_softmax(out)
            return jnp.take_along_axis(logp, action[:, None], 1)[:, 0], -(jnp.exp(logp) * logp).sum(-1)
        log_std = params["log_std"]
        z = (action - out) * jnp.exp(-log_std)
        lp = (-0.5 * z**2 - log_std - half_log_2pi).sum(-1)
        return lp, jnp.broadcast_to((log_std + 0.5 + half_log_2pi).sum(), lp.shape)

    def sample(key: jax.Array, params: Any, out: jax.Array) -> jax.Array:
        if discrete:
            return jax.random.categorical(key, out)
        return out + jnp.exp(params["log_std"]) * jax.random.normal(key, out.shape)

    def train(rng: jax.Array) -> dict[str, Any]:
        rng, k_critic, k_reset = jax.random.split(rng, 3)
        params = {"actor": init_policy, "critic": critic.init(k_critic, jnp.zeros((1, task.obs_size)))["params"]}
        if not discrete:
            params["log_std"] = jnp.full(task.num_actions, ppo.LOG_STD_INIT, jnp.float32)
        tx = optax.chain(optax.clip_by_global_norm(spec.max_grad_norm), optax.adam(spec.lr, eps=1e-5))
        train_state = TrainState.create(apply_fn=apply, params=params, tx=tx)
        obsv, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, envs), env_params)
        episode = (jnp.zeros(envs), jnp.zeros(envs))  # LogWrapper: running return, last finished return

        def _update_step(runner_state: Any, unused: None) -> tuple[Any, jax.Array]:
            def _env_step(runner_state: Any, unused: None) -> tuple[Any, dict[str, jax.Array]]:
                train_state, env_state, last_obs, episode, rng = runner_state
                rng, k_act, k_step = jax.random.split(rng, 3)
                out, value = apply(train_state.params, last_obs)
                action = sample(k_act, train_state.params, out)
                log_prob, _ = log_prob_entropy(train_state.params, out, action)
                # gymnax's step auto-resets; PureJaxRL treats either end of an episode as done.
                obsv, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(k_step, envs), env_state, to_env(action), env_params
                )
                done = terminated | truncated
                running = episode[0] + reward
                episode = (running * (1 - done), jnp.where(done, running, episode[1]))
                transition = {"done": done.astype(jnp.float32), "action": action, "value": value,
                              "reward": reward.astype(jnp.float32), "log_prob": log_prob, "obs": last_obs}  # fmt: skip
                return (train_state, env_state, obsv, episode, rng), transition

            runner_state, traj = jax.lax.scan(_env_step, runner_state, None, steps)
            train_state, env_state, last_obs, episode, rng = runner_state
            _, last_val = apply(train_state.params, last_obs)

            def _get_advantages(gae_and_next_value: Any, t: dict[str, jax.Array]) -> tuple[Any, jax.Array]:
                gae, next_value = gae_and_next_value
                delta = t["reward"] + spec.gamma * next_value * (1 - t["done"]) - t["value"]
                gae = delta + spec.gamma * spec.gae_lambda * (1 - t["done"]) * gae
                return (gae, t["value"]), gae

            _, advantages = jax.lax.scan(
                _get_advantages, (jnp.zeros_like(last_val), last_val), traj, reverse=True, unroll=16
            )
            targets = advantages + traj["value"]

            def _update_epoch(update_state: Any, unused: None) -> tuple[Any, jax.Array]:
                def _update_minbatch(train_state: TrainState, batch: Any) -> tuple[TrainState, jax.Array]:
                    traj, advantages, targets = batch

                    def _loss_fn(params: Any) -> jax.Array:
                        out, value = apply(params, traj["obs"])
                        log_prob, entropy = log_prob_entropy(params, out, traj["action"])
                        value_clipped = traj["value"] + (value - traj["value"]).clip(-spec.clip_eps, spec.clip_eps)
                        value_loss = (
                            0.5 * jnp.maximum(jnp.square(value - targets), jnp.square(value_clipped - targets)).mean()
                        )
                        ratio = jnp.exp(log_prob - traj["log_prob"])
                        gae = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                        loss_actor = -jnp.minimum(
                            ratio * gae, jnp.clip(ratio, 1.0 - spec.clip_eps, 1.0 + spec.clip_eps) * gae
                        ).mean()
                        return loss_actor + spec.vf_coef * value_loss - spec.ent_coef * entropy.mean()

                    total_loss, grads = jax.value_and_grad(_loss_fn)(train_state.params)
                    return train_state.apply_gradients(grads=grads), total_loss

                train_state, traj, advantages, targets, rng = update_state
                rng, k_perm = jax.random.split(rng)
                batch_size = envs * steps
                permutation = jax.random.permutation(k_perm, batch_size)
                batch = jax.tree.map(lambda x: x.reshape((batch_size, *x.shape[2:])), (traj, advantages, targets))
                shuffled = jax.tree.map(lambda x: jnp.take(x, permutation, axis=0), batch)
                mini = jax.tree.map(lambda x: x.reshape((minibatches, -1, *x.shape[1:])), shuffled)
                train_state, total_loss = jax.lax.scan(_update_minbatch, train_state, mini)
                return (train_state, traj, advantages, targets, rng), total_loss

            update_state = (train_state, traj, advantages, targets, rng)
            update_state, _ = jax.lax.scan(_update_epoch, update_state, None, spec.update_epochs)
            train_state, rng = update_state[0], update_state[-1]
            return (train_state, env_state, last_obs, episode, rng), episode[1].mean()

        runner_state = (train_state, env_state, obsv, episode, rng)
        runner_state, metric = jax.lax.scan(_update_step, runner_state, None, updates)
        return {"params": runner_state[0].params, "metric": metric}

    return jax.jit(train)


# -------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="cartpole", help="a gymnax task of the registry (default cartpole)")
    ap.add_argument("--updates", type=int, default=100, help="timed PPO updates per run (default 100)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side, alternating; the fastest counts")
    ap.add_argument("--no-train", action="store_true", help="skip the whole-ppo.train line")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print one JSON line with all numbers")
    args = ap.parse_args()

    # plan_train only computes settings and paths; it writes nothing.
    plan = plans.plan_train(None, {"task": args.task, "trainer": "ppo"}, "cpu",
                               root=Path(tempfile.gettempdir()) / "eslt-bench-unused")  # fmt: skip
    task = build_task(plan.task, plan.model)
    if not hasattr(task, "env"):
        raise SystemExit(f"{args.task}: the reference loop is written for gymnax tasks")
    spec = ppo.with_defaults(plan.trainer)
    u = args.updates
    per_update = spec.num_envs * spec.rollout_steps
    key = jax.random.PRNGKey(args.seed)
    init = task.init_params(key)
    mask = jax.tree.map(lambda a: jnp.ones(a.shape, jnp.float32), init)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), init)

    # eslt: the trainer's chunk of U updates (as train(): the cache key ignores timesteps).
    chunk_spec = dataclasses.replace(spec, timesteps=0, eval_every=u)
    init_state, chunk, _evaluate = ppo._programs(task, chunk_spec)
    k_init, k_train, _ = split_key(key)
    state0 = init_state(params, k_init)

    def eslt_run(first: int) -> float:
        state, stats = chunk(state0, mask, task.arrays, k_train, jnp.int32(first), jnp.int32(first + u))
        jax.block_until_ready(state)
        return -float(np.asarray(stats)[-1, 0])  # fitness is minus the mean return

    reference = make_reference_train(task, spec, params, u)

    def reference_run(first: int) -> float:
        out = jax.block_until_ready(reference(jax.random.fold_in(key, first)))
        return float(out["metric"][-1])

    sides = {"eslt": eslt_run, "reference": reference_run}
    results: dict[str, dict[str, Any]] = {}
    for name, run in sides.items():
        log(f"{name}: compiling + warm-up ({u} updates)")
        t0 = time.perf_counter()
        run(0)
        results[name] = {"warmup_s": time.perf_counter() - t0, "runs_s": [], "compiles_in_timed": 0}
        log(f"{name}: compile + warm-up took {results[name]['warmup_s']:.1f} s")
    for r in range(args.repeats):
        for name, run in sides.items():
            compiles = COMPILES.count
            t0 = time.perf_counter()
            last = run(u * (r + 1))
            seconds = time.perf_counter() - t0
            results[name]["runs_s"].append(seconds)
            results[name]["compiles_in_timed"] += COMPILES.count - compiles
            speed = u * per_update / seconds
            log(f"{name} run {r + 1}: {seconds:.2f} s = {speed:.0f} steps/s, last rollout's mean return {last:.4g}")
    for name in sides:
        results[name]["steps_per_s"] = u * per_update / min(results[name]["runs_s"])
        if results[name]["compiles_in_timed"]:
            log(f"{name}: WARNING {results[name]['compiles_in_timed']} compilation(s) inside timed runs")
    ratio = results["eslt"]["steps_per_s"] / results["reference"]["steps_per_s"]
    head = f"ppo  {args.task}  {spec.num_envs} envs x {spec.rollout_steps} steps  updates {u}"
    print(f"{head}  eslt {results['eslt']['steps_per_s']:.0f} steps/s  "
          f"reference {results['reference']['steps_per_s']:.0f} steps/s  ratio {ratio:.2f}x")  # fmt: skip

    if not args.no_train:
        # The whole trainer: chunks of the preset's eval_every updates with a test evaluation after each.
        timed_spec = dataclasses.replace(spec, timesteps=u * per_update)
        warm_spec = dataclasses.replace(spec, timesteps=spec.eval_every * per_update)
        log(f"eslt ppo.train: warm-up ({spec.eval_every} updates)")
        ppo.train(task, warm_spec, init, jax.tree.map(np.asarray, mask), key)
        best = math.inf
        for r in range(args.repeats):
            t0 = time.perf_counter()
            ppo.train(task, timed_spec, init, jax.tree.map(np.asarray, mask), jax.random.fold_in(key, r))
            best = min(best, time.perf_counter() - t0)
            log(f"eslt ppo.train run {r + 1}: {time.perf_counter() - t0:.2f} s")
        results["eslt_train"] = {"seconds": best, "steps_per_s": u * per_update / best, "eval_every": spec.eval_every}
        train_ratio = results["eslt_train"]["steps_per_s"] / results["reference"]["steps_per_s"]
        print(f"{head}  eslt ppo.train (test every {spec.eval_every} updates) "
              f"{results['eslt_train']['steps_per_s']:.0f} steps/s  ratio {train_ratio:.2f}x")  # fmt: skip
        results["train_ratio"] = train_ratio
    if args.json:
        info = {"jax": jax.__version__, "platform": platform.platform(), "task": args.task, "updates": u,
                "spec": dataclasses.asdict(spec), "repeats": args.repeats, "load_avg": os.getloadavg()}  # fmt: skip
        print(json.dumps({**info, "results": results, "ratio": ratio}))


if __name__ == "__main__":
    main()

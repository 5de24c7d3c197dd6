"""Every preset setting, as data: the CPU defaults and ``--preset paper``, per task family and strategy.

The one source of settings: option defaults, ``eslt train --dry-run``, ``--help``,
the README's settings table (``scripts/gen_docs.py`` renders :func:`readme_table`)
and the tests all read this module. Plain data with no heavy imports.

``--preset paper`` follows the paper's code (public repository
RobertTLange/es-lottery, camera-ready commit 1b59025), which produced the figures,
where it and appendix C disagree; :data:`APPENDIX` keeps the appendix's values for
the table. The paper's code ran evosax 0.1.4; :mod:`eslt_cli.strategies` translates
its semantics (temperature weights, mean decay, PGPE schedules, Sep-CMA-ES constants)
to evosax 0.3.
"""

from __future__ import annotations

from typing import Any

from eslt_cli import settings
from eslt_cli.task_registry import base_task

Settings = dict[str, Any]

# ---------------------------------------------------------------- CPU defaults (2 cores, a minute or two)
CPU: dict[str, dict[str, Settings]] = {
    "vision": {
        "task": {"batch_size": 256},
        "model": {},
        "es": {"strategy": "snes", "population": 32, "generations": 100, "std_init": 0.02, "eval_every": 10},
    },
    # Pendulum calibrated (results/calibration): 400 generations solve level 0 in 5 of 5 seeds and
    # pruned levels more often than 200 (23 vs 14 of 40 runs above a return of -400).
    "control": {
        "task": {"train_episodes": 8, "test_episodes": 16},
        "model": {},
        "es": {"strategy": "snes", "population": 64, "generations": 400, "std_init": 0.3, "eval_every": 20},
    },
    # Brax episodes cost far more than a gymnax step: a smaller population, fewer episodes.
    "brax": {
        "task": {"train_episodes": 2, "test_episodes": 16, "obs_norm": True},
        "model": {},
        "es": {"strategy": "snes", "population": 32, "generations": 100, "std_init": 0.3, "eval_every": 10},
    },
}
# Gradient trainers: their CPU settings are the defaults declared in settings.py (Adam: the paper's
# GD baseline, Section 3: lr 3e-4; PPO: PureJaxRL's CartPole settings, which test at 475+ after
# 30k-60k steps). Adam brings the paper's batch of 128 to the task.
ADAM_TASK: Settings = {"batch_size": 128}

# ---------------------------------------------------------------- --preset paper: task families
# configs/train/{mnist,gym,brax}.yaml; networks from src/tasks/*_policy.py.
PAPER: dict[str, dict[str, Settings]] = {
    "vision": {
        "task": {"batch_size": 1024, "standardize": True},
        "model": {"bias_init": 0.05},
        "es": {"population": 128, "generations": 4000, "eval_every": 100, "mean_decay": 1e-4},
    },
    "control": {
        "task": {"train_episodes": 8, "test_episodes": 32},
        "model": {"hidden": (64, 64), "linear_output": True, "bias_init": 0.05},
        "es": {"population": 100, "generations": 2000, "eval_every": 50, "mean_decay": 1e-4},
    },
    "brax": {
        "task": {"train_episodes": 8, "test_episodes": 64, "obs_norm": True, "episode_length": 500},
        "model": {"hidden": (32, 32), "bias_init": 0.05},
        "es": {"population": 256, "generations": 3000, "eval_every": 100, "mean_decay": 1e-5},
    },
}
FAMILY_SOURCE = {"vision": "configs/train/mnist.yaml, src/tasks/mnist_{task,policy}.py",
                 "control": "configs/train/gym.yaml, src/tasks/gym_policy.py",
                 "brax": "configs/train/brax.yaml, src/tasks/brax_policy.py"}  # fmt: skip
# Appendix C, where it states a value (for the README table).
APPENDIX: dict[str, Settings] = {
    "vision": {"population": 128, "generations": 4000, "batch_size": 1024, "optimizer": "adam"},
    "control": {"population": 256, "generations": "3000-4000", "train_episodes": 8, "test_episodes": 164,
                "obs_norm": True, "optimizer": "adam"},
    "brax": {"population": 256, "generations": "3000-4000", "train_episodes": 8, "test_episodes": 164,
             "obs_norm": True, "optimizer": "adam"},
}  # fmt: skip

# ---------------------------------------------------------------- --preset paper: strategies per task
# src/es/tuned_hparams/{snes,des,sep_cma_es,pgpe}.py: keyed by task ("vision" for the three image
# tasks, "else" for the rest, e.g. Pendulum). SNES, DES and Sep-CMA-ES have no optimiser there;
# PGPE uses Adam (b1 0.99) with lr and std decaying by 0.999 per generation to floors 0.001 and 0.01.
# Its adaptive std step in evosax 0.1.4 is a zero-mean random walk (an index bug) that still sets the
# stds apart, which SNR pruning sees: constants "paper" reproduces it (strategies.pgpe_014_std) at
# 0.1.4's default rate 0.1 (std_lr unset); --std-lr 0 keeps every std equal.
_PGPE = {"optimizer": "adam", "adam_b1": 0.99, "lr_decay": 0.999, "lr_floor": 0.001, "std_decay": 0.999,
         "std_floor": 0.01, "constants": "paper"}  # fmt: skip
TUNED: dict[str, dict[str, Settings]] = {
    "snes": {
        "ant": {"temperature": 12.0, "std_init": 0.05}, "halfcheetah": {"temperature": 16.0, "std_init": 0.05},
        "hopper": {"temperature": 48.0, "std_init": 0.075}, "humanoid": {"temperature": 32.0, "std_init": 0.075},
        "reacher": {"temperature": 16.0, "std_init": 0.05}, "walker2d": {"temperature": 16.0, "std_init": 0.075},
        "vision": {"temperature": 12.0, "std_init": 0.025}, "else": {"temperature": 16.0, "std_init": 0.1},
    },
    "des": {
        "ant": {"std_init": 0.05}, "halfcheetah": {"std_init": 0.05}, "hopper": {"std_init": 0.075},
        "humanoid": {"std_init": 0.075}, "reacher": {"std_init": 0.05}, "walker2d": {"std_init": 0.075},
        "else": {"std_init": 0.1},  # des.py has no vision entry: the image tasks fall here too
    },
    "sep_cma_es": {
        "ant": {"elite_ratio": 0.4, "std_init": 0.05}, "halfcheetah": {"elite_ratio": 0.5, "std_init": 0.05},
        "hopper": {"elite_ratio": 0.1, "std_init": 0.1}, "humanoid": {"elite_ratio": 0.2, "std_init": 0.1},
        "reacher": {"elite_ratio": 0.2, "std_init": 0.05}, "walker2d": {"elite_ratio": 0.2, "std_init": 0.1},
        "vision": {"elite_ratio": 0.5, "std_init": 0.025}, "else": {"elite_ratio": 0.5, "std_init": 0.1},
    },
    "pgpe": {
        "ant": {"lr": 0.01, "std_init": 0.025}, "halfcheetah": {"lr": 0.02, "std_init": 0.025},
        "hopper": {"lr": 0.02, "std_init": 0.05}, "humanoid": {"lr": 0.02, "std_init": 0.05},
        "reacher": {"lr": 0.02, "std_init": 0.025}, "walker2d": {"lr": 0.03, "std_init": 0.1},
        "vision": {"lr": 0.01, "std_init": 0.05},
        # Pendulum: no tuned entry, so evosax 0.1.4's constructor defaults (no decay).
        "else": {"lr": 0.15, "std_init": 0.1, "lr_decay": 1.0, "std_decay": 1.0},
    },
}  # fmt: skip
STRATEGY_DEFAULTS: dict[str, Settings] = {
    "snes": {"optimizer": "sgd", "lr": 1.0},  # evosax 0.1.4's lrate_mean 1: no optimiser
    "des": {"optimizer": "sgd", "lr": 1.0, "temperature": 12.5},
    # The code scores Sep-CMA-ES tickets by |mean| / C (the variance; strategies.snr_noise).
    "sep_cma_es": {"constants": "paper", "snr_std": "code"},
    "pgpe": _PGPE,
}
# The strategy of each task's curves in the paper's main figures (notebooks/f3_gd_es.ipynb).
FIGURE_STRATEGY = {"ant": "sep_cma_es", "pendulum": "sep_cma_es", "mnist": "sep_cma_es", "fashion_mnist": "snes",
                   "halfcheetah": "snes", "hopper": "snes", "reacher": "pgpe", "walker2d": "pgpe",
                   "kmnist": "pgpe"}  # fmt: skip
PAPER_STRATEGIES = tuple(TUNED)
# Gradient baselines: configs/train/sgd_mnist.yaml (GD-IMP: 2 epochs; the ES->GD transfer of
# mnist_es2sgd.yaml trains 20) and src/brax_ppo/brax_configs.py (all: 2048 envs, 500-step episodes,
# clip 0.3, value network 5x256, 128 test episodes).
ADAM_PAPER: Settings = {"lr": 3e-4, "epochs": 2, "eval_every": 1}
# gymnax tasks: configs/train/ppo_gym.yaml (num_train_steps, num_train_envs, n_steps, n_minibatch, epoch_ppo,
# gamma, gae_lambda, clip_eps, entropy_coeff, critic_coeff, max_grad_norm; lr_begin -> lr_end over
# lr_warmup * num_train_steps optimiser steps; num_test_rollouts), its policy 2x32 (hidden_layers,
# hidden_dims; src/gym_ppo/gym_networks.py: actor and critic alike). It tests every 1000 steps per
# environment: every 62 updates of 16 steps here.
PPO_PAPER: Settings = {"timesteps": 1_750_000, "num_envs": 32, "rollout_steps": 16, "minibatches": 8,
                       "update_epochs": 4, "gamma": 0.97, "gae_lambda": 0.95, "clip_eps": 0.25, "ent_coef": 0.005,
                       "vf_coef": 0.5, "max_grad_norm": 1.0, "lr": 3e-4, "lr_end": 1e-4,
                       "lr_steps": int(1_750_000 * 0.05), "eval_every": 62}  # fmt: skip
PPO_PAPER_TASK: Settings = {"test_episodes": 164}
PPO_PAPER_MODEL: Settings = {"hidden": (32, 32)}
_BRAX_PPO = {"num_envs": 2048, "clip_eps": 0.3, "gae_lambda": 0.95, "critic": (256,) * 5, "eval_every": 20}
PPO_BRAX: dict[str, Settings] = {
    "ant": {"timesteps": 50_000_000, "rollout_steps": 5, "minibatches": 32, "update_epochs": 4, "gamma": 0.97,
            "reward_scale": 10.0, "lr": 3e-4, "ent_coef": 1e-2},
    "halfcheetah": {"timesteps": 200_000_000, "rollout_steps": 20, "minibatches": 32, "update_epochs": 8,
                    "gamma": 0.95, "reward_scale": 1.0, "lr": 3e-4, "ent_coef": 1e-3},
    "humanoid": {"timesteps": 100_000_000, "rollout_steps": 10, "minibatches": 32, "update_epochs": 8,
                 "gamma": 0.97, "reward_scale": 0.1, "lr": 3e-4, "ent_coef": 1e-3},
    "reacher": {"timesteps": 200_000_000, "rollout_steps": 50, "minibatches": 32, "update_epochs": 8,
                "gamma": 0.95, "reward_scale": 5.0, "lr": 3e-4, "ent_coef": 1e-3},
    "hopper": {"timesteps": 200_000_000, "rollout_steps": 20, "minibatches": 32, "update_epochs": 8,
               "gamma": 0.999, "reward_scale": 5.0, "lr": 6e-4, "ent_coef": 1e-2},
    "walker2d": {"timesteps": 200_000_000, "rollout_steps": 50, "minibatches": 32, "update_epochs": 8,
                 "gamma": 0.98, "reward_scale": 10.0, "lr": 3e-4, "ent_coef": 1e-2},
}  # fmt: skip
PPO_BRAX_TASK: Settings = {"test_episodes": 128, "episode_length": 500, "obs_norm": True}


def tuned_key(strategy: str, task: str, family: str) -> str:
    """The key of ``task`` in the paper code's tuned_hparams file of ``strategy`` (variants use their base task's)."""
    key = "vision" if family == "vision" else base_task(task)
    return key if key in TUNED[strategy] else "else"


def strategy_settings(strategy: str, task: str, family: str) -> Settings:
    """``--preset paper`` ES settings of ``strategy`` on ``task``: its defaults, then the tuned entry."""
    if strategy not in TUNED:
        return {}
    return {**STRATEGY_DEFAULTS[strategy], **TUNED[strategy][tuned_key(strategy, task, family)]}


def preset_settings(task: str, family: str, preset: str, trainer: str, strategy: str | None) -> dict[str, Settings]:
    """The ``task``, ``model`` and ``trainer`` settings ``preset`` gives a fresh run of ``trainer`` on ``task``.

    ``strategy`` (es only): the one chosen, or None for the preset's default (CPU: SNES; paper: the
    strategy of the task's curves in the paper's figures).
    """
    cpu, paper = CPU[family], PAPER[family] if preset == "paper" else {"task": {}, "model": {}, "es": {}}
    out: dict[str, Settings] = {"task": {**cpu["task"], **paper["task"]}, "model": {**cpu["model"], **paper["model"]}}
    if trainer == "es":
        es = {**cpu["es"], **paper["es"]}
        if preset == "paper":
            es["strategy"] = strategy or FIGURE_STRATEGY.get(base_task(task), "sep_cma_es")
            es |= strategy_settings(es["strategy"], task, family)
        elif strategy:
            es["strategy"] = strategy
        out["trainer"] = es
    elif trainer == "adam":
        out["trainer"] = dict(ADAM_PAPER if preset == "paper" else {})
    else:
        out["trainer"] = {}
        if preset == "paper" and family == "brax" and base_task(task) in PPO_BRAX:
            out["trainer"] |= {**_BRAX_PPO, **PPO_BRAX[base_task(task)]}
        elif preset == "paper":
            out["trainer"] |= PPO_PAPER
        if preset == "paper" and family == "control":
            out["model"] |= PPO_PAPER_MODEL
    out["task"] |= trainer_task(task, family, preset, trainer)
    return out


def trainer_task(task: str, family: str, preset: str, trainer: str) -> Settings:
    """The task settings a gradient trainer brings along (Adam's batch 128; PPO's test episodes)."""
    if trainer == "adam":
        return dict(ADAM_TASK)
    if trainer == "ppo" and preset == "paper" and family == "brax" and base_task(task) in PPO_BRAX:
        return dict(PPO_BRAX_TASK)
    if trainer == "ppo" and preset == "paper" and family == "control":
        return dict(PPO_PAPER_TASK)
    return {}


# ---------------------------------------------------------------- the README table
TABLE_TASKS = {"fashion_mnist": "vision", "mnist": "vision", "kmnist": "vision", "pendulum": "control",
               "ant": "brax", "halfcheetah": "brax", "hopper": "brax", "reacher": "brax", "walker2d": "brax",
               "humanoid": "brax"}  # fmt: skip
STRATEGY_FIELDS = ("std_init", *settings.per_strategy())  # the table's columns: what is tuned per strategy


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "×".join(map(str, v))
    return "-" if v is None else str(v)


def readme_table() -> str:
    """The README's ``--preset paper`` tables: task families (appendix vs code) and strategies per task."""
    rows = ["| family | setting | appendix C | paper code = eslt `--preset paper` | eslt CPU default | source |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for family, paper in PAPER.items():
        values = {**paper["task"], **paper["model"], **paper["es"]}
        cpu = {**CPU[family]["task"], **CPU[family]["model"], **CPU[family]["es"]}
        keys = list(dict.fromkeys([*values, *APPENDIX[family]]))
        for k in keys:
            code = "per strategy (below)" if k == "optimizer" else _fmt(values.get(k))
            rows.append(f"| {family} | `{k}` | {_fmt(APPENDIX[family].get(k))} | {code} | {_fmt(cpu.get(k))} | "
                        f"{FAMILY_SOURCE[family]} |")  # fmt: skip
    rows += ["", "| task | strategy | " + " | ".join(f"`{f}`" for f in STRATEGY_FIELDS) + " | source |",
             "|---|---|" + "---|" * len(STRATEGY_FIELDS) + "---|"]  # fmt: skip
    for task, family in TABLE_TASKS.items():
        for strategy in PAPER_STRATEGIES:
            s = strategy_settings(strategy, task, family)
            mark = " (figures)" if FIGURE_STRATEGY.get(task) == strategy else ""
            cells = " | ".join(_fmt(s.get(f)) for f in STRATEGY_FIELDS)
            rows.append(f"| {task} | {strategy}{mark} | {cells} | src/es/tuned_hparams/{strategy}.py "
                        f"`{tuned_key(strategy, task, family)}` |")  # fmt: skip
    return "\n".join(rows)

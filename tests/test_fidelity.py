"""``--preset paper`` follows the paper's code (RobertTLange/es-lottery) where it and the text differ.

Sep-CMA-ES tickets are pruned by the code's |mean| / C (src/es/masked_es.py returns ``es_state.C``
as the "sigma" of the final mean; src/prune/sig2noise.py divides by it), not the text's
|mean| / (sigma * sqrt(C)). The choice is a setting recorded with the run, absent from its records at
the text's default, so checkpoints made before it existed are still reused.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_CONTROL

from eslt_cli import checkpoint, plans, pruning, strategies, tickets
from eslt_cli.specs import ESSpec, to_json

ROOT = Path(__file__).resolve().parents[1]
KEY = jax.random.PRNGKey(0)


def sep_cma_state(mean: np.ndarray, sigma: float, C: np.ndarray):
    """An evosax 0.3 Sep-CMA-ES state over ``mean`` with step size ``sigma`` and diagonal covariance ``C``."""
    es, params = strategies.build(ESSpec("sep_cma_es", 4, 1, sigma), jnp.zeros(mean.size))
    state = es.init(KEY, jnp.asarray(mean, jnp.float32), params)
    return state.replace(mean=jnp.asarray(mean, jnp.float32), std=jnp.float32(sigma), C=jnp.asarray(C, jnp.float32))


def tree(flat: np.ndarray) -> dict:
    return {"dense": {"kernel": np.asarray(flat, np.float32).reshape(2, 2), "bias": np.zeros(2, np.float32)}}


def kept(mask: dict) -> list[int]:
    return np.flatnonzero(mask["dense"]["kernel"].ravel()).tolist()


def test_sep_cma_es_code_snr_divides_by_the_variance() -> None:
    # Weight 0: |mean| 1.0, C 4; weight 1: |mean| 0.45, C 1. The text's SNR |m| / (sigma sqrt C) ranks
    # weight 0 first (0.5 vs 0.45); the code's |m| / C ranks weight 1 first (0.25 vs 0.45).
    mean, C, sigma = np.array([1.0, -0.45, 2.0, 3.0]), np.array([4.0, 1.0, 0.5, 0.25]), 0.3
    state = sep_cma_state(mean, sigma, C)
    std = tree(np.asarray(strategies.get_strategy("sep_cma_es").search_std(state)))
    np.testing.assert_allclose(std["dense"]["kernel"].ravel(), sigma * np.sqrt(C + 1e-8), rtol=1e-6)
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), tree(mean))

    def survivors(definition: str) -> list[int]:
        noise = strategies.snr_noise("sep_cma_es", definition, std)
        return kept(pruning.prune(KEY, "snr", tree(mean), noise, mask, keep=0.75))

    assert survivors("text") == [0, 2, 3]  # text: 1/(0.3*2)=1.67, 0.45/0.3=1.5, 9.4, 20: weight 1 goes
    assert survivors("code") == [1, 2, 3]  # code: 1/4=0.25, 0.45/1=0.45, 4, 12: weight 0 goes
    # The code's scores, up to the one factor sigma**2 that no global threshold sees.
    noise = strategies.snr_noise("sep_cma_es", "code", std)["dense"]["kernel"].ravel()
    np.testing.assert_allclose(np.abs(mean) / noise * sigma**2, np.abs(mean) / C, rtol=1e-5)
    # SNES, PGPE and DES: the code divides by the per-weight std, as the text does.
    for name in ("snes", "pgpe", "des"):
        assert strategies.snr_noise(name, "code", std) is std


def test_paper_preset_prunes_sep_cma_es_tickets_by_the_code() -> None:
    paper = plans.plan_train(None, {"task": "pendulum"}, "paper").trainer
    assert isinstance(paper, ESSpec) and (paper.strategy, paper.snr_std) == ("sep_cma_es", "code")
    for strategy in ("snes", "pgpe", "des"):  # the code's definition is the text's: the record keeps its default
        spec = plans.plan_train(None, {"task": "pendulum", "strategy": strategy}, "paper").trainer
        assert isinstance(spec, ESSpec) and spec.snr_std == "text"
    cpu = plans.plan_train(None, {"task": "pendulum", "strategy": "sep_cma_es"}).trainer
    assert isinstance(cpu, ESSpec) and cpu.snr_std == "text" and "snr_std" not in to_json(cpu)
    text = plans.plan_train(None, {"task": "pendulum", "snr_std": "text"}, "paper").trainer
    assert isinstance(text, ESSpec) and text.snr_std == "text"  # the text's definition, one option away
    # A strategy switch brings the new strategy's own setting, as for its other strategy settings.
    assert plans.settle_trainer("pendulum", "cpu", paper, {"strategy": "snes"}).snr_std == "text"
    with pytest.raises(Exception, match="isotropic"):
        plans.settle_trainer("pendulum", "cpu", None, {"strategy": "open_es", "snr_std": "code"})
    with pytest.raises(Exception, match="unknown --snr-std"):
        plans.settle_trainer("pendulum", "cpu", None, {"strategy": "snes", "snr_std": "variance"})


def test_prune_follows_the_recorded_choice_and_says_which(cli, tmp_path: Path) -> None:
    code, out, err = cli("-q", "train", "--task", "pendulum", "--strategy", "sep_cma_es", "--snr-std", "code",
                         *TINY_CONTROL)  # fmt: skip
    assert code == 0, err
    trained = Path(out.strip())
    assert checkpoint.read_meta(trained)["trainer"]["snr_std"] == "code"
    code, out, err = cli("-q", "prune", "--snr", str(trained))
    assert code == 0, err
    meta = checkpoint.read_meta(Path(out.strip()))
    assert meta["pruning"]["snr_std"] == "code" and meta["snr_stats"]["snr_std"] == "code"
    assert meta["fingerprint"]["snr_std"] == "code" and meta["trainer"]["snr_std"] == "code"
    # The text's definition, one option away (elsewhere: the default path holds the code's ticket).
    code, out, err = cli("-q", "prune", "--snr", "--snr-std", "text", str(trained))
    assert code == 2 and "snr_std" in err, err
    code, out, err = cli("-q", "prune", "--snr", "--snr-std", "text", str(trained), "--out", str(tmp_path / "t"))
    assert code == 0, err
    meta = checkpoint.read_meta(Path(out.strip()))
    assert meta["pruning"]["snr_std"] == "text" and "snr_std" not in meta["fingerprint"]
    code, _, err = cli("-q", "prune", "--magnitude", "--snr-std", "code", str(trained))
    assert code == 2 and "--snr only" in err


RUN = ROOT / "results" / "runs" / "pendulum" / "pendulum-snes-seed0"


@pytest.mark.skipif(not (RUN / "L01-snr-trained").exists(), reason="no committed study runs")
def test_runs_made_before_the_setting_existed_are_still_reused() -> None:
    trained, ticket = checkpoint.load(RUN / "L00-trained"), checkpoint.load(RUN / "L01-snr")
    assert "snr_std" not in trained.meta["trainer"]  # made before snr_std existed
    prune = tickets.plan_prune(trained, "snr")
    assert prune.out == ticket.path.absolute()
    assert checkpoint.identity(prune.fingerprint) == checkpoint.identity(ticket.meta["fingerprint"])
    train = plans.plan_train(ticket, {})
    recorded = json.loads(json.dumps(checkpoint.read_meta(train.out)["fingerprint"]))
    assert checkpoint.identity(train.fingerprint) == checkpoint.identity(recorded)


def pgpe_014_reference(x: np.ndarray, fitness: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """evosax 0.1.4's PGPE.tell_strategy, its sigma lines transcribed (interleaved pairs: x[2i], x[2i+1])."""
    scaled_noise = x - mean
    noise_1 = scaled_noise[::2]
    fit_1, fit_2 = fitness[::2], fitness[1::2]
    elite_idx = np.minimum(fit_1, fit_2).argsort()[: max(1, int(len(x) / 2 * 1.0))]
    fitness_elite = np.concatenate([fit_1[elite_idx], fit_2[elite_idx]])
    baseline = np.mean(fitness_elite)
    all_avg_scores = np.stack([fit_1[elite_idx], fit_2[elite_idx]]).sum(axis=0) / 2
    delta_sigma = ((all_avg_scores[:, None] - baseline) * (noise_1**2 - sigma[None] ** 2) / sigma).mean(axis=0)
    allowed_delta = np.abs(sigma) * 0.2  # sigma_max_change
    return np.clip(sigma + 0.1 * delta_sigma, sigma - allowed_delta, sigma + allowed_delta)  # sigma_lrate 0.1


def test_pgpe_paper_std_step_is_evosax_014s() -> None:
    rng = np.random.default_rng(0)
    mean, sigma = rng.normal(size=5), rng.uniform(0.05, 0.2, 5)
    z = rng.normal(size=(4, 5)) * sigma
    x = np.stack([mean + z, mean - z], 1).reshape(8, 5)  # 0.1.4's layout: each + member then its mirror
    fitness = np.array([0.5, -0.5, 1 / 7, 3 / 14, -3 / 14, 5 / 14, -5 / 14, -1 / 7])  # centred ranks
    want = pgpe_014_reference(x, fitness, mean, sigma)
    # evosax 0.3's layout: the + members, then their mirrors.
    got = strategies.pgpe_014_std(jnp.asarray(x[::2] - mean), jnp.concatenate([fitness[::2], fitness[1::2]]),
                                  jnp.asarray(sigma), 0.1, 0.2)  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_pgpe_std_step_of_014_is_a_random_walk() -> None:
    # On a quadratic with curvature rising along the axes, 0.3's (corrected) step shrinks the std
    # most where the curvature is high; 0.1.4's averages to nothing along every axis.
    from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

    std, curvature = jnp.full(4, 0.5), jnp.array([0.1, 1.0, 3.0, 10.0])

    def steps(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = jax.random.normal(key, (32, 4)) * std
        x = jnp.concatenate([z, -z])
        fitness = centered_rank_fitness_shaping_fn(x, jnp.sum(curvature * x**2, 1), None, None)
        grad = jnp.dot(fitness[:32] + fitness[32:] - 2 * fitness.mean(), (z**2 - std**2) / std) / 64
        return strategies.pgpe_014_std(z, fitness, std, 0.1, 0.2) - std, -0.1 * grad

    paper, corrected = jax.vmap(steps)(jax.random.split(KEY, 2000))
    se = paper.std(0) / np.sqrt(2000)
    assert np.all(np.abs(paper.mean(0)) < 4 * se)  # no drift: a zero-mean walk
    assert corrected.mean(0)[3] < -20 * se[3] and corrected.mean(0)[3] < corrected.mean(0)[1]
    assert np.all(np.abs(paper).mean(0) > 1e-3)  # ... whose steps still move each std


def test_pgpe_paper_preset_sets_stds_apart_so_snr_is_not_magnitude() -> None:
    spec = plans.plan_train(None, {"task": "pendulum", "strategy": "pgpe"}, "paper").trainer
    assert isinstance(spec, ESSpec) and (spec.constants, spec.std_lr) == ("paper", None)  # 0.1.4's rate 0.1
    assert isinstance(strategies.build(spec, jnp.zeros(4))[0], strategies.PGPE_014)

    def trained_std(spec: ESSpec) -> np.ndarray:
        es, params = strategies.build(dataclasses.replace(spec, population=8), jnp.zeros(4))
        state = es.init(KEY, jnp.array([0.5, -0.2, 0.1, 0.3]), params)
        for g in range(5):
            population, state = es.ask(jax.random.fold_in(KEY, g), state, params)
            state, _ = es.tell(KEY, population, jnp.sum((population - 1.0) ** 2, 1), state, params)
        return np.asarray(state.std, np.float64)

    def survivors(mean: np.ndarray, std: np.ndarray | None) -> list[int]:
        criterion = "magnitude" if std is None else "snr"
        mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), tree(mean))
        return kept(pruning.prune(KEY, criterion, tree(mean), None if std is None else tree(std), mask, keep=0.5))

    paper = trained_std(spec)
    assert len(set(paper.tolist())) == 4  # the walk sets every std apart
    # A mean whose magnitude ranks as the std: SNR |m| / std = 1 / sqrt(std) ranks the other way round.
    mean = np.sqrt(paper)
    assert set(survivors(mean, paper)).isdisjoint(survivors(mean, None))
    # --std-lr 0 (eslt's paper preset before): every std stays equal, and SNR prunes as magnitude does.
    equal = trained_std(dataclasses.replace(spec, std_lr=0.0))
    assert len(set(equal.tolist())) == 1 and survivors(mean, equal) == survivors(mean, None)


# configs/train/ppo_gym.yaml of the paper's code, every number of its train_config (ppo_config, model_config).
PPO_GYM_YAML = {
    "model_config": {"hidden_layers": 2, "hidden_dims": 32},
    "ppo_config": {"num_train_steps": 1750000, "evaluate_every_epochs": 1000, "num_test_rollouts": 164,
                   "num_train_envs": 32, "max_grad_norm": 1.0, "gamma": 0.97, "n_steps": 16, "n_minibatch": 8,
                   "lr_begin": 3e-04, "lr_end": 1e-04, "lr_warmup": 0.05, "epoch_ppo": 4, "clip_eps": 0.25,
                   "gae_lambda": 0.95, "entropy_coeff": 0.005, "critic_coeff": 0.5},
}  # fmt: skip


@pytest.mark.parametrize("task", ["pendulum", "cartpole"])
def test_paper_preset_ppo_on_gymnax_is_ppo_gym_yaml(task: str) -> None:
    plan = plans.plan_train(None, {"task": task, "trainer": "ppo"}, "paper")
    y, m = PPO_GYM_YAML["ppo_config"], PPO_GYM_YAML["model_config"]
    got = to_json(plan.trainer)
    want = {"timesteps": y["num_train_steps"], "num_envs": y["num_train_envs"], "rollout_steps": y["n_steps"],
            "minibatches": y["n_minibatch"], "update_epochs": y["epoch_ppo"], "gamma": y["gamma"],
            "gae_lambda": y["gae_lambda"], "clip_eps": y["clip_eps"], "ent_coef": y["entropy_coeff"],
            "vf_coef": y["critic_coeff"], "max_grad_norm": y["max_grad_norm"], "lr": y["lr_begin"],
            "lr_end": y["lr_end"], "lr_steps": int(y["num_train_steps"] * y["lr_warmup"]),
            # tests every 1000 steps per environment; an update here takes n_steps of them
            "eval_every": y["evaluate_every_epochs"] // y["n_steps"], "critic": []}  # fmt: skip
    assert {k: got[k] for k in want} == want
    assert plan.task.test_episodes == y["num_test_rollouts"]
    assert plan.model.hidden == (m["hidden_dims"],) * m["hidden_layers"]  # the critic: the same widths
    # The schedule: lr_begin, then linear to lr_end over lr_warmup * num_train_steps optimiser steps.
    from eslt_cli.trainers import ppo

    lr = ppo.learning_rate(plan.trainer)
    assert callable(lr)
    np.testing.assert_allclose([lr(0), lr(43_750), lr(87_500), lr(100_000)], [3e-4, 2e-4, 1e-4, 1e-4], rtol=1e-5)
    # CPU defaults, and records of PPO runs made before the schedule existed, are as they were.
    cpu = plans.plan_train(None, {"task": task, "trainer": "ppo"}).trainer
    assert "lr_end" not in to_json(cpu) and ppo.learning_rate(cpu) == cpu.lr

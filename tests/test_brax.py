"""Brax tasks: every environment trains, a real pipe, the normaliser round trip, mass variants.

Compiling a brax episode dominates: about a minute per environment and
``eslt train`` on a cold cache (two programs of 20-30 s each), 12 minutes for
all of them. So every task is traced (built and run through ``eval_shape``,
no compilation), and ``eslt train`` runs on three tasks that the other tests
need anyway (inverted_pendulum, reacher, ant); ``ESLT_TEST_ALL_BRAX=1`` trains
every task, and checks a heavy variant's returns differ from its base task's.
Trainings run once per module in an ``eslt`` subprocess whose XLA skips its
expensive optimisation passes; the pipe starts from the module's own
inverted_pendulum training, then prunes and trains again.
"""

import dataclasses
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import eslt

from eslt_cli import checkpoint, pipeline, plans
from eslt_cli.errors import BadInput
from eslt_cli.specs import MLPSpec, task_from_json
from eslt_cli.task_registry import TASKS, get_entry
from eslt_cli.tasks import build_task

BRAX = [name for name, entry in TASKS.items() if entry.library == "brax"]
ALL = os.environ.get("ESLT_TEST_ALL_BRAX") == "1"
all_brax = pytest.mark.skipif(not ALL, reason="ESLT_TEST_ALL_BRAX=1 trains every brax task (12 min on 2 cores)")
# One generation of two members, one episode each of the task's CPU episode length.
TINY_BRAX = ["--population", "2", "--generations", "1", "--eval-every", "1", "--train-episodes", "1",
             "--test-episodes", "1", "--seed", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints of the tasks trained so far, by task name (filled by :func:`train`)."""
    return {"root": tmp_path_factory.mktemp("brax")}


FAST_COMPILE = {
    "XLA_FLAGS": (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    ).strip()
}


def train(trained: dict[str, Path], name: str) -> checkpoint.Checkpoint:
    """``eslt train --task NAME`` with :data:`TINY_BRAX` in a fast-compiling subprocess, once per module."""
    if name not in trained:
        # A folder per task: the tickets pruned from it (`L01-snr`) land beside it, apart from other tasks'.
        out = eslt("train", "--task", name, *TINY_BRAX, "--out", str(trained["root"] / name / "L00"), env=FAST_COMPILE)
        assert len(out.stdout.splitlines()) == 1  # nothing brax or mujoco prints reaches stdout
        trained[name] = Path(out.stdout.strip())
    return checkpoint.load(trained[name])


def test_registry() -> None:
    assert len(BRAX) == 12 and {"ant", "humanoidstandup", "ant_heavy", "halfcheetah_heavy"} <= set(BRAX)
    spec = plans.settle_task("ant", "cpu", None, {}, "es", False)
    assert (spec.backend, spec.episode_length, spec.obs_norm) == ("generalized", 200, True)
    plan = plans.plan_train(None, {"task": "ant"}, "paper")
    assert (plan.task.episode_length, plan.task.train_episodes, plan.task.test_episodes) == (500, 8, 64)
    assert (plan.trainer.population, plan.trainer.generations, plan.trainer.eval_every) == (256, 3000, 100)
    assert get_entry("ant_heavy").env_params == {"mass_scale": {"torso": 1.5}}


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("ant_heavy", {"backend": "spring"}, "choose one of generalized, mjx"),
        ("ant", {"backend": "warp"}, "generalized, positional, spring, mjx"),
        ("ant", {"episode_length": 0}, "--episode-length must be positive"),
        ("pendulum", {"backend": "generalized"}, "--backend applies to brax tasks only"),
        ("pendulum", {"episode_length": 5}, "--episode-length applies to brax tasks only"),
        ("mnist", {"obs_norm": True}, "--obs-norm applies to control and brax tasks only"),
    ],
)
def test_bad_task_settings(task: str, options: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        plans.plan_train(None, {"task": task, **options})


@pytest.mark.parametrize("name", BRAX)
def test_every_task_traces(name: str) -> None:
    """One generation's fitness and a test evaluation trace for every task, with the normaliser."""
    spec = plans.settle_task(name, "cpu", None, {}, "es", False)
    task = build_task(dataclasses.replace(spec, episode_length=3, train_episodes=1, test_episodes=1), MLPSpec())
    params = jax.eval_shape(task.init_params, jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    fitness, stats = jax.eval_shape(lambda p: task.member_fitness(task.arrays, key)(p), params)
    assert fitness.shape == () and stats["sum"].shape == (task.obs_size,) == task.arrays["obs_norm"]["mean"].shape
    assert params["out"]["kernel"].shape == (32, task.num_actions)
    assert jax.eval_shape(task.evaluate, task.arrays, params, key)["metric"].shape == ()


@pytest.mark.parametrize(
    "name", [n if n in ("inverted_pendulum", "reacher", "ant") else pytest.param(n, marks=all_brax) for n in BRAX]
)
def test_every_task_trains(trained: dict[str, Path], name: str) -> None:
    ckpt = train(trained, name)
    task = pipeline.task_of(ckpt.record)
    assert ckpt.meta["task"]["obs_norm"] and ckpt.meta["task"]["backend"] == get_entry(name).backends[0]
    assert np.isfinite(ckpt.meta["metrics"]["final"]["metric"])
    norm = ckpt.state["obs_norm"]
    assert norm["mean"].shape == norm["var"].shape == (task.obs_size,)
    assert 0 < norm["count"] <= 2 * get_entry(name).episode_length  # two members' episodes, cut at termination
    assert np.isfinite(norm["mean"]).all() and (norm["var"] >= 0).all()


def test_pipe_through_subprocesses(trained: dict[str, Path]) -> None:
    train(trained, "inverted_pendulum")  # the pipe's first step: `eslt train --task inverted_pendulum`
    dense = f"{trained['inverted_pendulum']}\n"  # its stdout, checked to be this one line by train()
    ticket = eslt("prune", "--snr", stdin=dense).stdout
    again = eslt("train", stdin=ticket, env=FAST_COMPILE).stdout
    for text in (ticket, again):
        assert len(text.splitlines()) == 1  # nothing brax or mujoco prints reaches stdout
    t = checkpoint.load(again.strip())
    assert t.meta["level"] == 1 and t.meta["task"] == checkpoint.read_meta(dense.strip())["task"]
    assert t.state["obs_norm"]["count"] > 0 and np.isfinite(t.meta["metrics"]["final"]["metric"])


def test_normaliser_round_trip(trained: dict[str, Path]) -> None:
    from eslt_cli.analysis.lmc import evaluate_points

    ckpt = train(trained, "reacher")  # rewards are continuous: a different policy scores differently
    task = pipeline.task_of(ckpt.record)
    mean = jax.tree.map(lambda a: a[None], ckpt.state["mean"])
    key = pipeline.eval_key(ckpt.record)
    again = evaluate_points(task, mean, key, pipeline.arrays_of(ckpt, task))["metric"][0]
    assert again == pytest.approx(ckpt.meta["metrics"]["final"]["metric"], rel=1e-5)
    raw = evaluate_points(task, mean, key, task.arrays)["metric"][0]  # the normaliser that has seen nothing
    assert raw != pytest.approx(again, rel=1e-3)


def test_heavy_variant_and_transfer(cli, trained: dict[str, Path]) -> None:
    ant = train(trained, "ant")
    base_task = pipeline.task_of(ant.record)
    heavy_task = build_task(
        dataclasses.replace(task_from_json(ant.meta["task"]), name="ant_heavy"), base_task.model_spec
    )
    assert (heavy_task.obs_size, heavy_task.num_actions) == (base_task.obs_size, base_task.num_actions) == (27, 8)
    for field in ("body_mass", "body_inertia"):
        base, new = getattr(base_task.env.sys, field), getattr(heavy_task.env.sys, field)
        np.testing.assert_allclose(new[1], 1.5 * base[1], rtol=1e-6)  # body 1 is the torso (0: the world)
        np.testing.assert_array_equal(new[2:], base[2:])
    np.testing.assert_allclose(heavy_task.env.sys.link.inertia.mass[0], 1.5 * base_task.env.sys.link.inertia.mass[0])

    code, ticket, err = cli("prune", "--snr", str(trained["ant"]))
    assert code == 0, err
    code, out, err = cli("transfer", "--task", "ant_heavy", ticket.strip())
    assert code == 0, err
    moved = checkpoint.load(out.strip())
    assert moved.meta["task"]["name"] == "ant_heavy" and moved.meta["task"]["backend"] == "generalized"
    assert moved.meta["transfer"] == {
        "from_task": "ant",
        "to_task": "ant_heavy",
        "env_params": {"mass_scale": {"torso": 1.5}},
    }
    assert plans.plan_train(moved, {}).task.name == "ant_heavy"
    code, _, err = cli("transfer", "--task", "halfcheetah", ticket.strip())
    assert code == 2 and "parameter shapes" in err


@all_brax
def test_heavy_variant_changes_returns(trained: dict[str, Path]) -> None:
    # Same seed, init and settings: only the dynamics differ, and so do the returns.
    ant, heavy = train(trained, "ant"), train(trained, "ant_heavy")
    assert heavy.meta["metrics"]["final"]["metric"] != ant.meta["metrics"]["final"]["metric"]

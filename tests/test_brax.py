"""Brax tasks: every environment trains, a real pipe, the normaliser round trip, mass variants.

Compiling a brax step dominates (tens of seconds per environment on a cold
cache), so every task is trained once, with the same tiny settings, in an
``eslt`` subprocess whose XLA skips its expensive optimisation passes (about
half the compile time; the episodes are too short for run time to matter),
and the other tests reuse those checkpoints. The pipe's first ``train`` has
the same settings and flags, so it hits the persistent compilation cache.
"""

import os
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import eslt
from eslt_cli import checkpoint, pipeline
from eslt_cli.errors import BadInput
from eslt_cli.specs import TaskSpec
from eslt_cli.tasks import TASKS, build_task, check_task_spec, get_entry

BRAX = [name for name, entry in TASKS.items() if entry.library == "brax"]
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
        out = eslt("train", "--task", name, *TINY_BRAX, "--out", str(trained["root"] / name), env=FAST_COMPILE)
        trained[name] = Path(out.stdout.strip())
    return checkpoint.load(trained[name])


def test_registry() -> None:
    assert len(BRAX) == 12 and {"ant", "humanoidstandup", "ant_heavy", "halfcheetah_heavy"} <= set(BRAX)
    spec = get_entry("ant").task_spec("ant", "cpu")
    assert (spec.backend, spec.episode_length, spec.obs_norm) == ("generalized", 200, True)
    plan = pipeline.plan_train(None, {"task": "ant"}, "paper")
    assert (plan.task.episode_length, plan.task.train_episodes, plan.task.test_episodes) == (1000, 8, 164)
    assert (plan.trainer.population, plan.trainer.generations, plan.trainer.eval_every) == (256, 3000, 100)
    assert get_entry("ant_heavy").env_params == {"mass_scale": {"torso": 1.5}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (TaskSpec("ant_heavy", backend="spring", episode_length=5), "choose one of generalized, mjx"),
        (TaskSpec("ant", backend="warp", episode_length=5), "generalized, positional, spring, mjx"),
        (TaskSpec("ant", backend="generalized", episode_length=0), "--episode-length must be positive"),
        (TaskSpec("pendulum", backend="generalized"), "--backend applies to brax tasks only"),
        (TaskSpec("pendulum", episode_length=5), "--episode-length applies to brax tasks only"),
        (TaskSpec("mnist", obs_norm=True), "--obs-norm applies to control tasks only"),
    ],
)
def test_bad_task_settings(spec: TaskSpec, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        check_task_spec(spec)
    with pytest.raises(BadInput, match=message):
        build_task(spec, get_entry(spec.name).model)


@pytest.mark.parametrize("name", BRAX)
def test_every_task_trains(trained: dict[str, Path], name: str) -> None:
    ckpt = train(trained, name)
    task = pipeline.task_of(ckpt.meta)
    assert ckpt.meta["task"]["obs_norm"] and ckpt.meta["task"]["backend"] == get_entry(name).backends[0]
    assert np.isfinite(ckpt.meta["metrics"]["final"]["metric"])
    norm = ckpt.state["obs_norm"]
    assert norm["mean"].shape == norm["var"].shape == (task.obs_size,)
    assert 0 < norm["count"] <= 2 * get_entry(name).episode_length  # two members' episodes, cut at termination
    assert np.isfinite(norm["mean"]).all() and (norm["var"] >= 0).all()


def test_pipe_through_subprocesses(trained: dict[str, Path]) -> None:
    train(trained, "inverted_pendulum")  # same settings: the first step compiles nothing new
    dense = eslt("train", "--task", "inverted_pendulum", *TINY_BRAX, env=FAST_COMPILE).stdout
    ticket = eslt("prune", "--snr", stdin=dense).stdout
    again = eslt("train", stdin=ticket, env=FAST_COMPILE).stdout
    for text in (dense, ticket, again):
        assert len(text.splitlines()) == 1  # nothing brax or mujoco prints reaches stdout
    t = checkpoint.load(again.strip())
    assert t.meta["level"] == 1 and t.meta["task"] == checkpoint.read_meta(dense.strip())["task"]
    assert t.state["obs_norm"]["count"] > 0 and np.isfinite(t.meta["metrics"]["final"]["metric"])


def test_normaliser_round_trip(trained: dict[str, Path]) -> None:
    from eslt_cli.analysis.lmc import evaluate_points

    ckpt = train(trained, "reacher")  # rewards are continuous: a different policy scores differently
    task = pipeline.task_of(ckpt.meta)
    mean = jax.tree.map(lambda a: a[None], ckpt.state["mean"])
    key = pipeline.eval_key(ckpt.meta)
    again = evaluate_points(task, mean, key, pipeline.arrays_of(ckpt, task))["metric"][0]
    assert again == pytest.approx(ckpt.meta["metrics"]["final"]["metric"], rel=1e-5)
    raw = evaluate_points(task, mean, key, task.arrays)["metric"][0]  # the normaliser that has seen nothing
    assert raw != pytest.approx(again, rel=1e-3)


def test_heavy_variant_and_transfer(cli, trained: dict[str, Path]) -> None:
    ant, heavy = train(trained, "ant"), train(trained, "ant_heavy")
    base_task, heavy_task = pipeline.task_of(ant.meta), pipeline.task_of(heavy.meta)
    assert (heavy_task.obs_size, heavy_task.num_actions) == (base_task.obs_size, base_task.num_actions) == (27, 8)
    for field in ("body_mass", "body_inertia"):
        base, new = getattr(base_task.env.sys, field), getattr(heavy_task.env.sys, field)
        np.testing.assert_allclose(new[1], 1.5 * base[1], rtol=1e-6)  # body 1 is the torso (0: the world)
        np.testing.assert_array_equal(new[2:], base[2:])
    np.testing.assert_allclose(heavy_task.env.sys.link.inertia.mass[0], 1.5 * base_task.env.sys.link.inertia.mass[0])
    # Same seed, init and settings: only the dynamics differ, and so do the returns.
    assert heavy.meta["metrics"]["final"]["metric"] != ant.meta["metrics"]["final"]["metric"]

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
    assert pipeline.plan_train(moved, {}).task.name == "ant_heavy"
    code, _, err = cli("transfer", "--task", "halfcheetah", ticket.strip())
    assert code == 2 and "parameter shapes" in err

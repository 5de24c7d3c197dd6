"""The memory estimate that `eslt train` (and `--dry-run`) checks before writing anything (eslt_cli.memory)."""

from __future__ import annotations

import pytest

from eslt_cli import memory, plans, presets
from eslt_cli.errors import BadInput

GB = 1000**3


def needs(overrides: dict, preset: str = "cpu", task=None) -> list[memory.Need]:
    plan = plans.plan_train(None, overrides, preset)
    return memory.estimate(plan.task, plan.model, plan.trainer, memory.sizes_of(plan.task, plan.model, task))


def test_the_batch_that_asked_xla_for_34_5_gb_is_estimated_and_refused() -> None:
    """Issue 23: --batch-size 1000000 on Fashion-MNIST made XLA allocate 34.5 GB and die with a traceback."""
    parts = needs({"task": "fashion_mnist", "batch_size": 1_000_000})
    total = sum(p.bytes for p in parts)
    assert 28 * GB < total < 34.5 * GB  # images and the first layer's output; XLA also holds the pooled output
    with pytest.raises(
        BadInput, match=r"needs at least 28.2 GB of memory .* more than the 16 GB here: lower --batch-size"
    ):
        memory.check(parts, (16 * GB, "here"))
    memory.check(parts, (64 * GB, "here"))  # where it fits, it runs


@pytest.mark.parametrize("preset", ["cpu", "paper"])
def test_normal_runs_are_far_below_any_host(preset: str) -> None:
    """Every task of the README table with every strategy, and the gradient trainers: under 1 GB."""
    runs = [{"task": t, "strategy": s} for t in presets.TABLE_TASKS for s in presets.PAPER_STRATEGIES]
    runs += [{"task": "fashion_mnist", "trainer": "adam"}, {"task": "pendulum", "trainer": "ppo"},
             {"task": "ant", "trainer": "ppo"}]  # fmt: skip
    for overrides in runs:
        total = sum(p.bytes for p in needs(overrides, preset))
        assert total < GB, (overrides, total)
        memory.check(needs(overrides, preset), (2 * GB, "a small host"))


def test_the_bound_before_the_task_is_built_is_below_the_exact_one() -> None:
    from eslt_cli.tasks import build_task

    plan = plans.plan_train(None, {"task": "pendulum", "hidden": (64, 32)})
    exact = memory.sizes_of(plan.task, plan.model, build_task(plan.task, plan.model))
    bound = memory.sizes_of(plan.task, plan.model)
    assert exact.weights == 3 * 64 + 64 + 64 * 32 + 32 + 32 * 1 + 1  # pendulum: 3 observations, 1 action
    assert bound.weights <= exact.weights and bound.obs <= exact.obs and bound.steps <= exact.steps


def test_the_part_too_big_alone_is_named() -> None:
    """A huge network is the network's fault, not the population's that multiplies it."""
    with pytest.raises(BadInput, match="lower --hidden"):
        memory.check(needs({"task": "pendulum", "hidden": (10**6, 10**6)}), (10**12, "here"))
    with pytest.raises(BadInput, match="lower --population"):
        memory.check(needs({"task": "pendulum", "population": 10**9}), (10**12, "here"))


def test_the_memory_there_is() -> None:
    limit = memory.available()
    assert limit is not None and limit[0] > 100 * 1000**2 and limit[1]
    assert memory.human(34_506_276_608) == "34.5 GB" and memory.human(999) == "999 B"

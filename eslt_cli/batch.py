"""Many trainings in one process: runs that can share one compiled program train as a batch.

At an IMP level the tickets of all seeds and arms have the same shapes and the same number of
surviving weights, so :func:`eslt_cli.trainers.es.train_many` trains them as one program with a
leading run axis. :func:`run_train_many` checks every plan before it writes anything, reuses the
outputs that are up to date, locks the rest, groups the ES runs by what their program depends on
(task, model, trainer settings other than the seed, surviving weights, and the generation their
snapshots resume from), bounds each group by ``max_batch`` and by memory, and writes each run's
checkpoint exactly as :func:`eslt_cli.pipeline.run_train` would (its batch-mates are recorded in
``run.batch`` only: which runs shared a batch is not a setting, so it does not change reuse). A run
alone in its group, and every Adam or PPO run, trains as it would alone.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from eslt_cli import checkpoint, memory, outputs, pipeline
from eslt_cli.errors import BadInput, Busy, EsltError, RunFailed
from eslt_cli.plans import TrainPlan
from eslt_cli.specs import ESSpec, to_json
from eslt_cli.tasks import Task, build_task
from eslt_cli.trainers import es

# Makes the progress reporter of a group of runs (their plans): a context manager whose value takes
# the trainer's progress reports.
ReporterFor = Callable[[Sequence[TrainPlan]], AbstractContextManager[Callable[..., None]]]
# A batch may hold at most this share of the memory there is (the estimate is a lower bound).
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class Outcome:
    """What became of one plan: its checkpoint's path, whether it was made now, or why it failed."""

    path: Path
    made: bool
    error: EsltError | None = None


def _inputs(plan: TrainPlan) -> list[Path]:
    return [] if plan.parent is None else [plan.parent.path]


def _surviving(plan: TrainPlan, task: Task) -> int:
    if plan.parent is None:
        return sum(int(np.size(a)) for a in jax.tree.leaves(task.init_params(jax.random.key(0))))
    return sum(int(np.count_nonzero(m)) for m in jax.tree.leaves(plan.parent.state["mask"]))


def batch_limit(plan: TrainPlan, surviving: int, max_batch: int | None) -> int:
    """How many runs like ``plan`` one batch may hold: ``max_batch`` and a share of the memory there is."""
    sizes = memory.sizes_of(plan.task, plan.model)
    need = sum(n.bytes for n in memory.estimate(plan.task, plan.model, plan.trainer, sizes, surviving))
    there = memory.available()
    by_memory = max(1, int(MEMORY_SHARE * there[0]) // max(need, 1)) if there is not None else 1 << 30
    return max(1, min(by_memory, max_batch or by_memory))


def run_train_many(
    plans: Sequence[TrainPlan],
    force: bool = False,
    reporter: ReporterFor | None = None,
    save_every: int = 100,
    stop: Callable[[], int] | None = None,
    devices: int | None = None,
    max_batch: int | None = None,
) -> list[Outcome]:
    """Train every plan (in batches where they can share a program); one :class:`Outcome` per plan, in order.

    Every plan is checked before anything is written (:class:`BadInput` for the first refused). A run
    that fails (a non-finite fitness, out of memory) gets its error in its outcome; the others go on.
    A signal saves every running run's snapshot and raises :class:`eslt_cli.errors.Interrupted`.
    """
    if max_batch is not None and max_batch < 1:
        raise BadInput(f"--max-batch must be positive, got {max_batch}")
    seen: dict[Path, int] = {}
    for i, plan in enumerate(plans):
        if plan.out in seen:
            raise BadInput(f"inputs {seen[plan.out] + 1} and {i + 1} would both write {plan.out}")
        seen[plan.out] = i
    counts = {pipeline.check_train(plan, save_every, devices) for plan in plans}
    if counts != {1} or jax.process_count() > 1:  # the population is split over devices: one run at a time
        return [_alone(plan, force, reporter, save_every, stop, devices) for plan in plans]
    outcomes: dict[int, Outcome] = {}
    todo = []
    for i, plan in enumerate(plans):
        if pipeline.existing_output(plan.out, plan.fingerprint, force, _inputs(plan)):
            outcomes[i] = Outcome(plan.out, False)
        else:
            todo.append(i)
    tasks: dict[str, Task] = {}

    def task_of(plan: TrainPlan) -> Task:
        key = json.dumps([to_json(plan.task), to_json(plan.model)], sort_keys=True)
        if key not in tasks:
            tasks[key] = build_task(plan.task, plan.model)
        return tasks[key]

    for i in todo:  # the data and environments loaded, every parent checked against its network
        pipeline.check_train(plans[i], save_every, 1, task_of(plans[i]))
    with contextlib.ExitStack() as locks:
        for i in sorted(todo, key=lambda i: str(plans[i].out)):  # one order for all processes
            try:
                locks.enter_context(outputs.lock(plans[i].out))
            except Busy as exc:  # another process makes it: the others go on
                outcomes[i] = Outcome(plans[i].out, False, exc)
        stores = {}
        for i in (i for i in todo if i not in outcomes):  # made meanwhile by another process?
            plan = plans[i]
            if pipeline.existing_output(plan.out, plan.fingerprint, force, _inputs(plan)):
                outcomes[i] = Outcome(plan.out, False)
            else:
                stores[i] = checkpoint.ResumeStore(plan.out, plan.fingerprint)
        for group in _groups(plans, stores, task_of, max_batch):
            for i, outcome in zip(group, _train_group([plans[i] for i in group], [stores[i] for i in group],
                                                      task_of(plans[group[0]]), force, reporter, save_every,
                                                      stop)):  # fmt: skip
                outcomes[i] = outcome
    return [outcomes[i] for i in range(len(plans))]


def _groups(
    plans: Sequence[TrainPlan],
    stores: dict[int, checkpoint.ResumeStore],
    task_of: Callable[[TrainPlan], Task],
    max_batch: int | None,
) -> list[list[int]]:
    """The plans to train (``stores``' keys) grouped by what their compiled program depends on, in input order."""
    keyed: dict[str, list[int]] = {}
    for i in stores:
        plan = plans[i]
        if not isinstance(plan.trainer, ESSpec):
            keyed[f"alone {i}"] = [i]
            continue
        key = [to_json(plan.task), to_json(plan.model), to_json(plan.trainer), _surviving(plan, task_of(plan)),
               es.snapshot_generation(stores[i])]  # fmt: skip
        keyed.setdefault(json.dumps(key, sort_keys=True), []).append(i)
    groups = []
    for members in keyed.values():
        size = batch_limit(plans[members[0]], _surviving(plans[members[0]], task_of(plans[members[0]])), max_batch)
        groups += [members[k : k + size] for k in range(0, len(members), size)]
    return sorted(groups, key=lambda g: g[0])


def _train_group(
    plans: list[TrainPlan],
    stores: list[checkpoint.ResumeStore],
    task: Task,
    force: bool,
    reporter: ReporterFor | None,
    save_every: int,
    stop: Callable[[], int] | None,
) -> list[Outcome]:
    """Train one group (one run: as alone) and write each run's checkpoint; failures in the outcomes."""
    with reporter(plans) if reporter is not None else contextlib.nullcontext(None) as report:
        if len(plans) == 1:
            plan, store = plans[0], stores[0]
            try:
                state, meta = pipeline.train_plan(plan, task, report, store, save_every, stop, 1)
                return [Outcome(pipeline.write_trained(plan, state, meta, store, force), True)]
            except RunFailed as exc:
                return [Outcome(plan.out, False, exc)]
        starts = [pipeline.starting_point(plan, task) for plan in plans]
        members = [es.Member(init, mask, pipeline.run_keys(plan.seed, plan.level)[1], store)
                   for plan, (init, mask), store in zip(plans, starts, stores)]  # fmt: skip
        assert isinstance(plans[0].trainer, ESSpec)
        start = time.perf_counter()
        try:
            with pipeline.out_of_memory_as_failure():
                results = es.train_many(task, plans[0].trainer, members, report, save_every, stop)
        except RunFailed as exc:
            return [Outcome(plan.out, False, exc) for plan in plans]
        seconds = time.perf_counter() - start
    outcomes = []
    for plan, (init, mask), store, result in zip(plans, starts, stores, results):
        if isinstance(result, RunFailed):
            outcomes.append(Outcome(plan.out, False, result))
            continue
        run = {"seconds": seconds, "devices": 1, "batch": len(plans)}
        state, meta = pipeline.trained_record(plan, task, init, mask, result, run)
        outcomes.append(Outcome(pipeline.write_trained(plan, state, meta, store, force), True))
    return outcomes


def _alone(
    plan: TrainPlan,
    force: bool,
    reporter: ReporterFor | None,
    save_every: int,
    stop: Callable[[], int] | None,
    devices: int | None,
) -> Outcome:
    """``plan`` trained on its own, as :func:`eslt_cli.pipeline.run_train` does; a failure in its outcome."""
    with reporter([plan]) if reporter is not None else contextlib.nullcontext(None) as report:
        try:
            return Outcome(*pipeline.run_train(plan, force, report, save_every, stop, devices))
        except RunFailed as exc:
            return Outcome(plan.out, False, exc)

"""The steps of Algorithm 1 over checkpoints: train a plan, reuse or refuse existing outputs, write.

Pure orchestration with no terminal I/O: the command modules parse options, settle a plan
(:mod:`eslt_cli.plans`), call these functions and print the returned paths. A step whose output
already exists with the same settings is skipped, so a re-run pipe resumes where it stopped.
Tickets: :mod:`eslt_cli.tickets`; many runs in one process: :mod:`eslt_cli.batch`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import checkpoint, memory, outputs, paths, pruning, schema, trainers
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.meta import Meta
from eslt_cli.plans import TrainPlan
from eslt_cli.specs import ESSpec, VisionSpec, to_json
from eslt_cli.tasks import Task, build_task
from eslt_cli.tasks.base import same_structure
from eslt_cli.tasks.data import check_data_dir
from eslt_cli.trainers.es import split_key


def run_keys(seed: int, level: int) -> tuple[jax.Array, jax.Array]:
    """The level-0 init key and the training key of ``level`` for a run seeded ``seed``."""
    init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, jax.random.fold_in(train_key, level)


def eval_key(meta: Meta) -> jax.Array:
    """The key a checkpoint's test metrics were computed with: re-evaluations reproduce them."""
    return split_key(run_keys(meta.seed, meta.level)[1])[2]


def task_of(meta: Meta) -> Task:
    """The task (data or environment, model) a checkpoint was made for."""
    return build_task(meta.task, meta.model)


def check_fits(ckpt: Checkpoint, task: Task) -> Task:
    """``task`` if ``ckpt``'s arrays have the parameter shapes of its network, else one :class:`BadInput` line."""
    want = jax.eval_shape(task.init_params, jax.random.PRNGKey(0))
    have = ckpt.state["init"]
    if not same_structure(want, have) or any(
        tuple(w.shape) != np.shape(h) for w, h in zip(jax.tree.leaves(want), jax.tree.leaves(have))
    ):
        raise BadInput(f"{ckpt.path}: its arrays do not fit the {task.spec.name} network its meta describes; "
                       "damaged checkpoint")  # fmt: skip
    return task


def arrays_of(ckpt: Checkpoint, task: Task, which: str = "final") -> dict[str, Any]:
    """The data to evaluate ``ckpt``'s ``final`` or ``best`` weights with: the task's
    arrays and, for tasks with observation normalisation, the normaliser those
    weights were tested with during training."""
    norm = ckpt.state.get("obs_norm_best" if which == "best" else "obs_norm")
    return task.arrays if norm is None else {**task.arrays, "obs_norm": norm}


# The trainers, the task families each trains, and the options that belong to a task family.
def existing_output(out: Path, fingerprint: dict[str, Any], force: bool, inputs: Sequence[Path] = ()) -> bool:
    """True when ``out`` already holds this exact result (skip the work).

    An output equal to, inside or above one of ``inputs`` is refused; so is an
    existing ``out`` that is not an eslt checkpoint, even with ``force``. One
    made with other settings, or from a parent with other content, is refused
    unless ``force``, naming what differs.
    """
    paths.check_out(out, inputs)
    if not out.exists() and not out.is_symlink():
        return False
    checkpoint.replaceable(out)
    _not_an_ancestor(out, inputs)
    try:
        meta = checkpoint.read_record(out)
        if not force and checkpoint.identity(meta.fingerprint) == checkpoint.identity(fingerprint):
            checkpoint.load(out)  # reuse only content that matches its digest
            return True
    except BadInput as exc:
        if force:
            return False  # a damaged eslt checkpoint: --force re-makes it
        raise BadInput(f"{exc} (--force replaces it)") from None
    if force:
        return False
    raise BadInput(
        f"{out} exists, made {_difference(meta.fingerprint, fingerprint)}: "
        "pass --force to replace that eslt checkpoint, or --out elsewhere"
    )


def _not_an_ancestor(out: Path, inputs: Sequence[Path]) -> None:
    """Refuse an output that an input derives from (its level-0 network, say): replacing it would
    orphan the input, whatever ``--force`` says."""
    target = out.absolute().resolve()
    for given in inputs:
        try:
            meta = checkpoint.read_record(given)
        except BadInput:
            continue
        if any(a.resolve() == target for a in checkpoint.ancestors(given, meta)):
            raise BadInput(f"--out {out} is an ancestor of the input {given}: choose a path outside its lineage")


def _difference(old: Any, new: dict[str, Any]) -> str:
    """What sets an existing output's fingerprint apart from this run's, for the refusal message."""
    if not isinstance(old, dict):
        return "without a settings record"
    old, new = checkpoint.identity(old), checkpoint.identity(new)
    if "parent_digest" not in old and "parent_digest" in new:
        return "by an older eslt whose record lacks the parent's content digest, so it cannot be trusted as current"
    if old.get("parent_digest") != new.get("parent_digest"):
        return "from a parent whose content has changed since (it was re-made)"

    def flat(d: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(d, dict):
            return {prefix: d}
        return {k2: v2 for k, v in d.items() for k2, v2 in flat(v, f"{prefix}{k}.").items()}

    a, b = flat(old), flat(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = ", ".join(f"{k.rstrip('.')} {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:3])
    return f"with other settings ({shown}{', ...' if len(keys) > 3 else ''})"


def links(parent: Checkpoint | None, out: Path) -> dict[str, Any]:
    """The ``parent`` and ``lineage`` meta of a checkpoint at ``out`` derived from ``parent``: paths
    relative to ``out``'s folder (see :func:`paths.link`), level 0 first."""
    if parent is None:
        return {"parent": None, "lineage": []}
    ancestry = [paths.follow(parent.path, item) for item in parent.record.lineage]
    return {
        "parent": paths.link(parent.path, out),
        "lineage": [paths.link(p, out) for p in [*ancestry, parent.path]],
    }


def check_train(plan: TrainPlan, save_every: int = 100, devices: int | None = None, task: Task | None = None) -> int:
    """Refuse what a run of ``plan`` would refuse, before anything is written; the devices it splits over.

    ``eslt train --dry-run`` runs exactly these checks (nothing is loaded); :func:`run_train` runs them
    too, and again with the ``task`` built (data and environment loaded, the parent's arrays checked
    against its network) before it takes the output's lock, so a refused run leaves nothing behind.
    Memory: :mod:`eslt_cli.memory` (a lower bound, exact sizes once the task is built).
    """
    if save_every < 1:
        raise BadInput(f"--save-every must be positive, got {save_every}")
    seen = jax.device_count()
    count = seen if devices is None else devices
    if not 1 <= count <= seen:  # before the population, which must split over them
        raise BadInput(f"--devices must be between 1 and {seen} (the devices JAX sees), got {devices}")
    if isinstance(plan.trainer, ESSpec) and plan.trainer.population % count:
        raise BadInput(f"--population {plan.trainer.population} must be a multiple of --devices {count}"
                       f"{'' if devices is not None else ' (every device JAX sees, by default)'}")  # fmt: skip
    if plan.parent is not None:
        check_parent_path(plan.parent.path)
    if isinstance(plan.task, VisionSpec) and plan.task.data_dir:
        check_data_dir(Path(plan.task.data_dir))
    if task is not None and plan.parent is not None:
        check_fits(plan.parent, task)
    trainers.check(plan.trainer.name)(task, plan.trainer)
    surviving = None
    if plan.parent is not None:
        surviving = sum(int(np.count_nonzero(m)) for m in jax.tree.leaves(plan.parent.state["mask"]))
    sizes = memory.sizes_of(plan.task, plan.model, task)
    memory.check(memory.estimate(plan.task, plan.model, plan.trainer, sizes, surviving))
    return count


def check_parent_path(path: Path) -> None:
    """Refuse an input whose path a derived checkpoint cannot record as its parent (one line of text)."""
    text = str(Path(path).absolute().resolve())
    if any(ord(c) < 32 for c in text) or len(text) > schema.MAX_TEXT:
        raise BadInput(f"input {str(path)[:80]!r}: its path holds a line break or another control character (or is "
                       f"over {schema.MAX_TEXT} characters), which a checkpoint derived from it cannot record as "
                       "its parent: rename it")  # fmt: skip


def check_record(out: Path, meta: dict[str, Any]) -> None:
    """Refuse to write at ``out`` a checkpoint whose ``meta`` would not read back (see
    :func:`eslt_cli.schema.validate`): nothing unreadable is ever left behind."""
    try:
        schema.validate({"schema": checkpoint.SCHEMA, **meta}, out, checkpoint.SCHEMA)
    except BadInput as exc:
        raise RunFailed(f"{out} was not written: its meta would not read back ({exc}); "
                        "a bug in eslt: please report it") from None  # fmt: skip


def run_train(
    plan: TrainPlan,
    force: bool = False,
    on_progress: Callable[..., None] | None = None,
    save_every: int = 100,
    stop: Callable[[], int] | None = None,
    devices: int | None = None,
) -> tuple[Path, bool]:
    """Train per ``plan`` and write the checkpoint; returns its path and whether it was made now.

    Under the output's lock: an output already made with these settings is
    returned as is (see :func:`existing_output`); otherwise progress is
    snapshotted beside the output every ``save_every`` generations, and a run
    resumes from a snapshot of the same settings (:class:`checkpoint.ResumeStore`).
    The population is split over ``devices`` (default: all); results agree with
    one device up to float rounding, so the device count is not a setting.
    """
    devices = check_train(plan, save_every, devices)  # what --dry-run checks
    inputs = [] if plan.parent is None else [plan.parent.path]
    # Refuse early, before making a lock file; a run still to do checks its data and environment first.
    task = None
    if not existing_output(plan.out, plan.fingerprint, force, inputs):
        task = build_task(plan.task, plan.model)
        check_train(plan, save_every, devices, task)
    if not checkpoint.is_writer():  # other processes of a multi-host run compute, process 0 writes
        store = checkpoint.ResumeStore(plan.out, plan.fingerprint, read_only=True)
        train_plan(plan, task or build_task(plan.task, plan.model), on_progress, store, save_every, stop, devices)
        return plan.out, True
    with outputs.lock(plan.out):
        if existing_output(plan.out, plan.fingerprint, force, inputs):
            return plan.out, False
        store = checkpoint.ResumeStore(plan.out, plan.fingerprint)
        task = task or build_task(plan.task, plan.model)
        state, meta = train_plan(plan, task, on_progress, store, save_every, stop, devices)
        path = write_trained(plan, state, meta, store, force)
    return path, True


def train_plan(
    plan: TrainPlan,
    task: Task,
    on_progress: Callable[..., None] | None,
    store: checkpoint.ResumeStore,
    save_every: int,
    stop: Callable[[], int] | None,
    devices: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the training of ``plan`` on its built ``task``: the checkpoint's state and meta."""
    init, mask = starting_point(plan, task)
    start = time.perf_counter()
    train = trainers.get(plan.trainer.name)
    with out_of_memory_as_failure():
        result = train(task, plan.trainer, init, mask, run_keys(plan.seed, plan.level)[1], on_progress, store,
                       save_every, stop, devices)  # fmt: skip
    return trained_record(plan, task, init, mask, result, {"seconds": time.perf_counter() - start, "devices": devices})


def starting_point(plan: TrainPlan, task: Task) -> tuple[Any, Any]:
    """The init and mask a run of ``plan`` starts from: drawn from its seed (level 0) or its ticket's."""
    if plan.parent is None:
        init = jax.tree.map(np.asarray, task.init_params(run_keys(plan.seed, plan.level)[0]))
        return init, jax.tree.map(lambda a: np.ones(np.shape(a), np.uint8), init)
    check_fits(plan.parent, task)
    return plan.parent.state["init"], plan.parent.state["mask"]


@contextlib.contextmanager
def out_of_memory_as_failure() -> Iterator[None]:
    """XLA out of memory (what :func:`check_train`'s lower bound let through) as one line."""
    try:
        yield
    except jax.errors.JaxRuntimeError as exc:
        text = str(exc)
        if "RESOURCE_EXHAUSTED" not in text and "Out of memory" not in text:
            raise
        raise RunFailed(f"out of memory ({text.splitlines()[0][:160]}): lower --batch-size or --population, "
                        "or train on a host with more memory") from None  # fmt: skip


def trained_record(
    plan: TrainPlan, task: Task, init: Any, mask: Any, result: Any, run: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state and meta of ``plan``'s checkpoint from its trainer's ``result``; ``run`` says how it ran."""
    meta = {
        "kind": "trained",
        "task": to_json(plan.task),
        "model": to_json(plan.model),
        "trainer": to_json(plan.trainer),
        "metric": task.metric,
        "seed": plan.seed,
        "level": plan.level,
        "arm": plan.arm,
        "sparsity": pruning.sparsity(mask),
        "metrics": {"final": result.final, "best": result.best_metrics},
        "history": result.history,
        "pruning": None if plan.parent is None else plan.parent.record.raw.get("pruning"),
        **links(plan.parent, plan.out),
        "fingerprint": plan.fingerprint,
        "run": {"seconds": round(run["seconds"], 3), "device": str(jax.devices()[0].platform)}
        | {k: v for k, v in run.items() if k != "seconds"},
    }
    state = {"init": init, "mask": mask, "mean": result.mean, "best": result.best, "std": result.std,
             "std_best": result.best_std, "obs_norm": result.norm, "obs_norm_best": result.best_norm}  # fmt: skip
    return state, meta


def write_trained(
    plan: TrainPlan, state: dict[str, Any], meta: dict[str, Any], store: checkpoint.ResumeStore, force: bool
) -> Path:
    """Save a trained checkpoint at ``plan.out`` (under its lock) and drop its resume snapshots."""
    check_record(plan.out, meta)
    path = checkpoint.save(plan.out, state, meta, force=force)
    store.clear()
    return path

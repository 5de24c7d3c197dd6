"""The steps of Algorithm 1 over checkpoints: settle settings, train, prune, write.

Pure orchestration with no terminal I/O: the command modules parse options,
call these functions and print the returned paths. Output paths are derived
deterministically (run folder ``<root>/<task>-<strategy>-seed<seed>`` with one
entry per level and arm), and a step whose output already exists with the same
settings is skipped, so a re-run pipe resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import checkpoint, outputs, paths, presets, pruning, schema, settings, strategies
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.specs import (
    TASK_KINDS,
    TRAINER_KINDS,
    AdamSpec,
    CNNSpec,
    ESSpec,
    MLPSpec,
    ModelSpec,
    PPOSpec,
    TaskSpec,
    TrainerSpec,
    VisionSpec,
    field_names,
    from_json,
    model_from_json,
    task_from_json,
    to_json,
    trainer_from_json,
)
from eslt_cli.tasks import Task, build_task, canonical_task, check_task_spec, get_entry
from eslt_cli.tasks.base import same_structure

PRESETS = ("cpu", "paper")


@dataclass(frozen=True)
class TrainPlan:
    """Everything that determines a training run and where its result goes."""

    task: TaskSpec
    model: ModelSpec
    trainer: TrainerSpec
    seed: int
    level: int
    arm: str
    parent: Checkpoint | None
    out: Path

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What must match for an existing output to count as this run's result."""
        return {
            "op": "train",
            "task": to_json(self.task),
            "model": to_json(self.model),
            "trainer": to_json(self.trainer),
            "seed": self.seed,
            **checkpoint.parent_record(self.parent),
        }


def run_keys(seed: int, level: int) -> tuple[jax.Array, jax.Array]:
    """The level-0 init key and the training key of ``level`` for a run seeded ``seed``."""
    init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, jax.random.fold_in(train_key, level)


def eval_key(meta: dict[str, Any]) -> jax.Array:
    """The key a checkpoint's test metrics were computed with: re-evaluations reproduce them."""
    from eslt_cli.trainers.es import split_key

    return split_key(run_keys(int(meta["seed"]), int(meta["level"]))[1])[2]


def task_of(meta: dict[str, Any]) -> Task:
    """The task (data or environment, model) a checkpoint was made for."""
    return build_task(task_from_json(meta["task"]), model_from_json(meta["model"]))


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
TRAINERS: dict[str, tuple[str, ...]] = {"es": ("vision", "control", "brax"), "adam": ("vision",),
                                        "ppo": ("control", "brax")}  # fmt: skip


def schedule(spec: TrainerSpec) -> tuple[int, str]:
    """How many steps a run of ``spec`` has and what one is: generations, epochs or PPO updates."""
    if isinstance(spec, AdamSpec):
        return spec.epochs, "epoch"
    if isinstance(spec, PPOSpec):
        return spec.timesteps // max(spec.num_envs * spec.rollout_steps, 1), "update"
    return spec.generations, "gen"


def trainer_name(base: TrainerSpec | None, overrides: dict[str, Any]) -> str:
    """The trainer of a run: ``--trainer``, else the ticket's, else ``es``."""
    name = overrides.get("trainer") or (base.name if base is not None else "es")
    if name not in TRAINERS:
        raise BadInput(f"unknown trainer {name!r}: choose one of {', '.join(TRAINERS)}")
    return str(name)


def check_trainer_fits(name: str, task_name: str) -> None:
    """Refuse a gradient trainer on a task family it does not train (adam: vision; ppo: control)."""
    family = get_entry(task_name).family
    if family not in TRAINERS[name]:
        wanted = "vision" if name == "adam" else "control"
        raise BadInput(f"--trainer {name} needs a {wanted} task; {task_name} is a {get_entry(task_name).kind} task")


def _option(k: str) -> str:
    return f"--{k.replace('_', '-')}"


def _given(overrides: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: overrides[k] for k in keys if overrides.get(k) is not None}


def settle_task(
    task_name: str, preset: str, base: TaskSpec | None, overrides: dict[str, Any], trainer: str, new_trainer: bool
) -> TaskSpec:
    """The task settings of a run: the ticket's (or the preset's for a fresh run), the preset's for
    ``--preset paper`` or a trainer new to the ticket, then the options given."""
    entry = get_entry(task_name)
    cls = TASK_KINDS[entry.family]
    defaults = presets.preset_settings(task_name, entry.family, preset, trainer, overrides.get("strategy"))["task"]
    if base is None:
        values: dict[str, Any] = dict(defaults)
        if entry.family == "brax":
            values = {"backend": entry.backends[0], "episode_length": entry.episode_length} | values
    else:
        values = to_json(base)
        if preset == "paper":
            values |= defaults
        elif new_trainer:
            values |= presets.trainer_task(task_name, entry.family, preset, trainer)
    all_task_fields = {f for c in TASK_KINDS.values() for f in field_names(c)} - {"name"}
    given = _given(overrides, sorted(all_task_fields))
    wrong = sorted(set(given) - set(field_names(cls)))
    if wrong:
        kinds = [k for k, c in TASK_KINDS.items() if wrong[0] in field_names(c)]
        raise BadInput(f"{_option(wrong[0])} applies to {' and '.join(kinds)} tasks only, not {task_name}")
    values |= given
    if values.get("data_dir"):
        values["data_dir"] = str(Path(values["data_dir"]).absolute())
    task = settings.check_spec(from_json(cls, {**values, "name": task_name}))
    check_task_spec(task)
    return task


def settle_model(task_name: str, preset: str, overrides: dict[str, Any]) -> ModelSpec:
    """The network of a fresh run: the preset's (for its ``--trainer``), with ``--hidden``."""
    entry = get_entry(task_name)
    values = presets.preset_settings(task_name, entry.family, preset, overrides.get("trainer") or "es", None)["model"]
    if overrides.get("hidden") is not None:
        if entry.kind != "control":
            raise BadInput("--hidden applies to control tasks (MLP policies) only")
        values = {**values, "hidden": tuple(overrides["hidden"])}
    cls: type[ModelSpec] = CNNSpec if entry.kind == "vision" else MLPSpec
    return settings.check_spec(from_json(cls, values))


# ES settings that belong to one strategy: a new strategy brings its own unless given.
STRATEGY_FIELDS = ("optimizer", "lr", "elite_ratio", "temperature", "lr_decay", "lr_floor", "std_decay", "std_floor",
                   "std_lr", "adam_b1", "constants", "snr_std")  # fmt: skip


def settle_trainer(task_name: str, preset: str, base: TrainerSpec | None, overrides: dict[str, Any]) -> TrainerSpec:
    """The trainer settings of a run: the ticket's (or the preset's), ``--preset paper``, then the options given."""
    name = trainer_name(base, overrides)
    check_trainer_fits(name, task_name)
    cls = TRAINER_KINDS[name]
    all_fields = {f for c in TRAINER_KINDS.values() for f in field_names(c)}
    given = _given(overrides, sorted(all_fields))
    wrong = sorted(set(given) - set(field_names(cls)))
    if wrong:
        options = ", ".join(_option(k) for k in wrong)
        raise BadInput(f"{options} {'does' if len(wrong) == 1 else 'do'} not apply to --trainer {name}")
    if base is not None and base.name != name:
        base = None  # a new trainer starts from its own defaults
    family = get_entry(task_name).family
    strategy = None
    if name == "es":
        strategy = given.get("strategy") or (base.strategy if isinstance(base, ESSpec) else None)
        strategy = None if strategy is None else strategies.canonical_strategy(strategy)
    defaults = presets.preset_settings(task_name, family, preset, name, strategy)["trainer"]
    values: dict[str, Any] = to_json(base) if base is not None else dict(defaults)
    if base is not None and preset == "paper":
        values |= defaults
    if name != "es":
        return settings.check_spec(from_json(cls, values | given))
    values |= given
    values["strategy"] = strategies.canonical_strategy(values["strategy"])
    entry = strategies.get_strategy(values["strategy"])
    if isinstance(base, ESSpec) and values["strategy"] != base.strategy and preset != "paper":
        for k in STRATEGY_FIELDS:  # a new strategy brings its own settings unless they were given
            values.pop(k, None)
            if k in given:
                values[k] = given[k]
    if entry.default_optimizer is None:
        # Presets set an optimiser only where the strategy takes one; only explicit options reach check_spec.
        values["optimizer"], values["lr"] = given.get("optimizer"), given.get("lr")
    else:
        values["optimizer"] = values.get("optimizer") or entry.default_optimizer
        values["lr"] = entry.default_lr if values.get("lr") is None else values["lr"]
    spec = from_json(ESSpec, values)
    strategies.check_spec(spec)  # each setting's range, then what the strategy takes
    return spec


def plan_train(
    parent: Checkpoint | None,
    overrides: dict[str, Any],
    preset: str | None = None,
    out: Path | None = None,
    root: Path = Path("eslt-runs"),
) -> TrainPlan:
    """Settle the settings of a training run.

    Fresh runs start from the task's CPU defaults; a ticket is trained with the
    settings recorded in it. ``--preset paper`` then applies the paper's code's
    settings (:mod:`eslt_cli.presets`), and explicit ``overrides`` (None means
    "not given") win over both.
    """
    preset = preset or "cpu"
    if preset not in PRESETS:
        raise BadInput(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    if parent is not None:
        meta = parent.meta
        if parent.kind != "ticket":
            raise BadInput(f"{parent.path}: is already trained; prune it first (`eslt prune --snr {parent.path}`)")
        task_name = meta["task"]["name"]
        given = overrides.get("task")
        if given is not None and canonical_task(given) != task_name:
            raise BadInput(
                f"{parent.path}: is a {task_name} ticket; retargeting it to {given} is `eslt transfer`'s job"
            )
        base_task: TaskSpec | None = task_from_json(meta["task"])
        model = model_from_json(meta["model"])
        if overrides.get("hidden") is not None:
            if not isinstance(model, MLPSpec):
                raise BadInput("--hidden applies to control tasks (MLP policies) only")
            if tuple(overrides["hidden"]) != model.hidden:
                raise BadInput("--hidden cannot change a ticket's architecture; start a fresh run instead")
        base_trainer: TrainerSpec | None = trainer_from_json(meta["trainer"])
        seed, level, arm = int(meta["seed"]), int(meta["level"]), str(meta["arm"])
    else:
        task_name = canonical_task(overrides.get("task") or "fashion_mnist")
        base_task, base_trainer, seed, level, arm = None, None, 0, 0, "dense"
        model = settle_model(task_name, preset, overrides)
    if overrides.get("seed") is not None:
        seed = schema.check_seed(overrides["seed"])
    name = trainer_name(base_trainer, overrides)
    check_trainer_fits(name, task_name)
    new_trainer = name != "es" and (base_trainer is None or base_trainer.name != name)
    task = settle_task(task_name, preset, base_task, overrides, name, new_trainer)
    trainer = settle_trainer(task_name, preset, base_trainer, overrides)
    if out is None:
        if parent is None:
            optimiser = trainer.strategy if isinstance(trainer, ESSpec) else trainer.name
            out = paths.level0(root, task_name, optimiser, seed)
        else:
            out = paths.trained(parent.path)
    return TrainPlan(task, model, trainer, seed, level, arm, parent, Path(out).absolute())


def settings_record(plan: TrainPlan, preset: str | None) -> dict[str, Any]:
    """What ``eslt train --dry-run`` prints: every settled setting of ``plan`` and where its result would go."""
    return {
        "preset": preset or "cpu",
        "task": to_json(plan.task),
        "model": to_json(plan.model),
        "trainer": to_json(plan.trainer),
        "seed": plan.seed,
        "level": plan.level,
        "arm": plan.arm,
        "parent": None if plan.parent is None else str(plan.parent.path),
        "out": str(plan.out),
        "exists": plan.out.exists(),
    }


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
        meta = checkpoint.read_meta(out)
        if not force and checkpoint.identity(meta.get("fingerprint")) == checkpoint.identity(fingerprint):
            checkpoint.load(out)  # reuse only content that matches its digest
            return True
    except BadInput as exc:
        if force:
            return False  # a damaged eslt checkpoint: --force re-makes it
        raise BadInput(f"{exc} (--force replaces it)") from None
    if force:
        return False
    raise BadInput(
        f"{out} exists, made {_difference(meta.get('fingerprint'), fingerprint)}: "
        "pass --force to replace that eslt checkpoint, or --out elsewhere"
    )


def _not_an_ancestor(out: Path, inputs: Sequence[Path]) -> None:
    """Refuse an output that an input derives from (its level-0 network, say): replacing it would
    orphan the input, whatever ``--force`` says."""
    target = out.absolute().resolve()
    for given in inputs:
        try:
            meta = checkpoint.read_meta(given)
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
    ancestry = [paths.follow(parent.path, item) for item in parent.meta.get("lineage", [])]
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
        from eslt_cli.tasks.data import check_data_dir

        check_data_dir(Path(plan.task.data_dir))
    from eslt_cli import memory, trainers

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
    from eslt_cli import trainers

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
        "pruning": None if plan.parent is None else plan.parent.meta.get("pruning"),
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


def _arm(parent_arm: str, criterion: str) -> str:
    """The arm name of a pruned ticket: the criterion, prefixed by a different parent arm."""
    if parent_arm in ("dense", criterion):
        return criterion
    return f"{parent_arm}+{criterion}"


@dataclass(frozen=True)
class PrunePlan:
    """Everything that determines a pruning step and where its ticket goes."""

    parent: Checkpoint
    criterion: str
    rate: float
    source: str  # "final" | "best"
    exclude: tuple[str, ...]
    seed: int
    out: Path
    reinit: bool = False
    batches: int | None = None  # snip/grasp: training batches scored on
    snr_std: str = "text"  # what SNR divides by (strategies.snr_noise): the parent's choice or --snr-std

    @property
    def label(self) -> str:
        """The criterion as it appears in arm names (``random-reinit`` with ``--reinit``)."""
        return f"{self.criterion}-reinit" if self.reinit else self.criterion

    @property
    def fingerprint(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"reinit": True} if self.reinit else {}  # absent when off: older outputs still match
        if self.batches is not None:
            extra["batches"] = self.batches
        if self.criterion == "snr" and self.snr_std != "text":
            extra["snr_std"] = self.snr_std  # absent at the text's definition: older outputs still match
        return extra | {
            "op": "prune",
            **checkpoint.parent_record(self.parent),
            "criterion": self.criterion,
            "rate": self.rate,
            "from": self.source,
            "exclude": list(self.exclude),
            "seed": self.seed,
        }


def plan_prune(
    parent: Checkpoint,
    criterion: str,
    rate: float = 0.2,
    source: str = "final",
    exclude: Sequence[str] = (),
    seed: int | None = None,
    out: Path | None = None,
    reinit: bool = False,
    batches: int | None = None,
    snr_std: str | None = None,
) -> PrunePlan:
    """Check a pruning request against its parent and settle the output path.

    ``reinit``: keep the new mask but give the ticket a fresh initialisation
    drawn from ``seed`` and the level (the paper code's ``random-reinit`` arm
    with the random criterion) instead of rewinding to the level-0 init.
    ``batches``: training batches that ``snip`` and ``grasp`` score on (default 1).
    ``snr_std``: SNR's definition (``text`` or ``code``, see :func:`strategies.snr_noise`) instead
    of the one the parent was trained to be pruned by (its trainer record's ``snr_std``).
    """
    pruner = pruning.get_pruner(criterion)
    if parent.kind != "trained":
        raise BadInput(f"{parent.path}: is a ticket; prune a trained checkpoint (`eslt train {parent.path}`)")
    if not 0.0 < rate < 1.0:
        raise BadInput(f"--rate must be in (0, 1), got {rate}")
    if source not in ("final", "best"):
        raise BadInput(f"--from must be final or best, got {source!r}")
    if pruner.needs_std and "std" not in parent.state:
        trainer = parent.meta.get("trainer", {})
        name = trainer.get("name", "es")
        why = (f"{trainer.get('strategy', '?')} is isotropic, so SNR would equal magnitude" if name == "es"
               else f"it was trained by {name}, not by an ES with a per-weight search std")  # fmt: skip
        raise BadInput(f"{parent.path}: has no per-weight search std ({why}): use --magnitude")
    if pruner.needs_data:
        if get_entry(parent.meta["task"]["name"]).kind != "vision":
            raise BadInput(f"--{criterion} needs a vision task (a loss on training batches); "
                           f"{parent.meta['task']['name']} is not one")  # fmt: skip
        batches = 1 if batches is None else batches
        if batches < 1:
            raise BadInput(f"--batches must be positive, got {batches}")
    elif batches is not None:
        raise BadInput("--batches applies to --snip and --grasp only")
    if snr_std is not None and criterion != "snr":
        raise BadInput("--snr-std applies to --snr only")
    settings.check("snr_std", snr_std, "--snr-std")
    snr_std = snr_std or str(parent.meta["trainer"].get("snr_std") or "text")
    pruning.prunable(parent.state["mask"], exclude)  # validates layer names
    level = int(parent.meta["level"]) + 1
    arm = _arm(str(parent.meta.get("arm", "dense")), f"{criterion}-reinit" if reinit else criterion)
    out = Path(out) if out is not None else paths.ticket(parent.path, level, arm)
    seed = int(parent.meta["seed"]) if seed is None else schema.check_seed(seed)
    return PrunePlan(parent, criterion, rate, source, tuple(exclude), seed, out.absolute(), reinit, batches, snr_std)


def reinit_params(meta: dict[str, Any], seed: int, level: int) -> Any:
    """A fresh initialisation of the checkpoint's network from ``seed`` folded with ``level``.

    Differs from the run's level-0 init (drawn from the first half of
    ``split(PRNGKey(seed))``) and from level to level.
    """
    key = jax.random.fold_in(jax.random.PRNGKey(seed), level)
    return jax.tree.map(np.asarray, task_of(meta).init_params(key))


def run_prune(plan: PrunePlan, force: bool = False) -> tuple[Path, bool]:
    """Prune per ``plan``: a ticket one level up, rewound to the level-0 init.

    Returns the ticket's path and whether it was made now (False: it existed
    with the same settings).
    """
    parent = plan.parent
    level = int(parent.meta["level"]) + 1
    keep = float((parent.meta.get("pruning") or {}).get("keep", 1.0)) * (1.0 - plan.rate)
    key = jax.random.fold_in(jax.random.PRNGKey(plan.seed), level)
    mean = parent.state["mean" if plan.source == "final" else "best"]
    # --from best scores the best mean with the std it was scored with (stored since schema 2; older
    # checkpoints have only the final std).
    std = parent.state.get("std_best" if plan.source == "best" and "std_best" in parent.state else "std")
    if std is not None:  # SNR's denominator by the chosen definition (the text's: the std itself)
        std = strategies.snr_noise(str(parent.meta["trainer"].get("strategy")), plan.snr_std, std)
    data = None
    if plan.batches is not None:
        data = pruning.training_batches(check_fits(parent, task_of(parent.meta)), key, plan.batches)
    mask = pruning.prune(
        key, plan.criterion, mean, std, parent.state["mask"], keep, plan.exclude, parent.state["init"], data
    )
    can_prune = pruning.prunable(mask)
    init = reinit_params(parent.meta, plan.seed, level) if plan.reinit else parent.state["init"]
    meta = {
        "kind": "ticket",
        **{k: parent.meta[k] for k in ("task", "model", "trainer", "metric")},
        "seed": plan.seed,
        "level": level,
        "arm": _arm(str(parent.meta.get("arm", "dense")), plan.label),
        "sparsity": pruning.sparsity(mask, can_prune),
        "pruning": {
            "criterion": plan.criterion,
            "rate": plan.rate,
            "from": plan.source,
            "exclude": list(plan.exclude),
            "keep": keep,
            "seed": plan.seed,
            "reinit": plan.reinit,
            **({} if plan.batches is None else {"batches": plan.batches}),
            **({"snr_std": plan.snr_std} if plan.criterion == "snr" else {}),
        },
        # |mean| vs SNR of the scored weights before pruning (Figure 7); None without a std.
        "snr_stats": None if std is None else snr_stats(mean, std, parent.state["mask"], plan.snr_std),
    }
    return write_ticket(parent, plan.out, plan.fingerprint, {"init": init, "mask": mask}, meta, force)


def snr_stats(mean: Any, noise: Any, mask: Any, definition: str) -> dict[str, Any]:
    """|mean| vs SNR (by ``definition``) of the weights scored, before pruning (Figure 7)."""
    return pruning.snr_correlation(mean, noise, mask) | {"snr_std": definition}


def write_ticket(
    parent: Checkpoint,
    out: Path,
    fingerprint: dict[str, Any],
    state: dict[str, Any],
    meta: dict[str, Any],
    force: bool = False,
) -> tuple[Path, bool]:
    """Write a ticket derived from ``parent`` under its lock; returns its path and whether it was made now.

    ``meta`` gains ``parent``, ``lineage`` and ``fingerprint``. An output already
    made with the same ``fingerprint`` is kept as is; one made otherwise is
    refused unless ``force`` (see :func:`existing_output`).
    """
    check_parent_path(parent.path)
    meta = {**meta, **links(parent, out), "fingerprint": fingerprint}
    check_record(out, meta)  # what would not read back is never written
    existing_output(out, fingerprint, force, [parent.path])  # refuse early, before making a lock file
    with outputs.lock(out):
        if existing_output(out, fingerprint, force, [parent.path]):
            return out, False
        return checkpoint.save(out, state, meta, force=force), True

"""The settings of a training run, settled once: CPU defaults, ``--preset paper``, the ticket's
record, explicit options (in that order), and where its result goes (:class:`TrainPlan`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eslt_cli import checkpoint, paths, presets, schema, settings, strategies
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput
from eslt_cli.specs import (
    TASK_KINDS,
    TRAINER_KINDS,
    CNNSpec,
    ESSpec,
    MLPSpec,
    ModelSpec,
    TaskSpec,
    TrainerSpec,
    field_names,
    from_json,
    to_json,
)
from eslt_cli.task_registry import canonical_task, get_entry
from eslt_cli.tasks import check_task_spec

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


def trainer_name(base: TrainerSpec | None, overrides: dict[str, Any]) -> str:
    """The trainer of a run: ``--trainer``, else the ticket's, else ``es``."""
    name = overrides.get("trainer") or (base.name if base is not None else "es")
    if name not in TRAINER_KINDS:
        raise BadInput(f"unknown trainer {name!r}: choose one of {', '.join(TRAINER_KINDS)}")
    return str(name)


def check_trainer_fits(name: str, task_name: str) -> None:
    """Refuse a gradient trainer on a task family it does not train (adam: vision; ppo: control)."""
    family = get_entry(task_name).family
    if family not in TRAINER_KINDS[name].families:
        wanted = TRAINER_KINDS[name].families[0]
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
        for k in settings.per_strategy():  # a new strategy brings its own settings unless they were given
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
        meta = parent.record
        if parent.kind != "ticket":
            raise BadInput(f"{parent.path}: is already trained; prune it first (`eslt prune --snr {parent.path}`)")
        task_name = meta.task.name
        given = overrides.get("task")
        if given is not None and canonical_task(given) != task_name:
            raise BadInput(
                f"{parent.path}: is a {task_name} ticket; retargeting it to {given} is `eslt transfer`'s job"
            )
        base_task: TaskSpec | None = meta.task
        model = meta.model
        if overrides.get("hidden") is not None:
            if not isinstance(model, MLPSpec):
                raise BadInput("--hidden applies to control tasks (MLP policies) only")
            if tuple(overrides["hidden"]) != model.hidden:
                raise BadInput("--hidden cannot change a ticket's architecture; start a fresh run instead")
        base_trainer: TrainerSpec | None = meta.trainer
        seed, level, arm = meta.seed, meta.level, meta.arm
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

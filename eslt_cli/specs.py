"""Frozen settings, one dataclass per concern and kind, stored in a checkpoint's ``meta``.

Tasks: :class:`VisionSpec`, :class:`ControlSpec` (gymnax), :class:`BraxSpec`.
Models: :class:`CNNSpec`, :class:`MLPSpec`. Trainers: :class:`ESSpec`,
:class:`AdamSpec`, :class:`PPOSpec`. Each holds only the fields that apply to it
and serialises to ``meta`` with its tag (``kind`` for tasks and models,
``name`` for trainers); :func:`task_from_json`, :func:`model_from_json` and
:func:`trainer_from_json` read them back, converting schema-1 records (one flat
record per concern, fields of other kinds set to null) on the way. ``prune``
and ``train`` read them to know how a parent was made; change one with
:func:`dataclasses.replace`, never in place. Each field's default, range and help are
declared once in :mod:`eslt_cli.settings`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from eslt_cli.settings import spec_field
from eslt_cli.task_registry import get_entry

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # a spec: a dataclass


@dataclass(frozen=True)
class VisionSpec:
    """An image classification task: training images per fitness evaluation (or Adam step)."""

    name: str
    batch_size: int = spec_field("vision", "batch_size")
    data_dir: str | None = spec_field("vision", "data_dir")
    standardize: bool = spec_field("vision", "standardize")
    kind: ClassVar[str] = "vision"


@dataclass(frozen=True)
class ControlSpec:
    """A gymnax control task: episodes per fitness and per test evaluation."""

    name: str
    train_episodes: int = spec_field("control", "train_episodes")
    test_episodes: int = spec_field("control", "test_episodes")
    obs_norm: bool = spec_field("control", "obs_norm")
    kind: ClassVar[str] = "control"


@dataclass(frozen=True)
class BraxSpec:
    """A brax control task: as :class:`ControlSpec`, plus the physics backend and episode length."""

    name: str
    train_episodes: int = spec_field("brax", "train_episodes")
    test_episodes: int = spec_field("brax", "test_episodes")
    obs_norm: bool = spec_field("brax", "obs_norm")
    backend: str = spec_field("brax", "backend")
    episode_length: int = spec_field("brax", "episode_length")
    kind: ClassVar[str] = "brax"


@dataclass(frozen=True)
class CNNSpec:
    """The paper's CNN: conv channels and filter size."""

    features: tuple[int, ...] = spec_field("cnn", "features")
    kernel_size: int = spec_field("cnn", "kernel_size")
    bias_init: float = spec_field("cnn", "bias_init")
    kind: ClassVar[str] = "cnn"


@dataclass(frozen=True)
class MLPSpec:
    """The paper's MLP policy: hidden widths."""

    hidden: tuple[int, ...] = spec_field("mlp", "hidden")
    bias_init: float = spec_field("mlp", "bias_init")
    linear_output: bool = spec_field("mlp", "linear_output")
    kind: ClassVar[str] = "mlp"


@dataclass(frozen=True)
class ESSpec:
    """An evosax strategy and its settings (see :mod:`eslt_cli.strategies` for how each is applied)."""

    strategy: str
    population: int
    generations: int
    std_init: float
    lr: float | None = spec_field("es", "lr")
    optimizer: str | None = spec_field("es", "optimizer")
    elite_ratio: float | None = spec_field("es", "elite_ratio")
    mean_decay: float = spec_field("es", "mean_decay")
    eval_every: int = spec_field("es", "eval_every")
    temperature: float | None = spec_field("es", "temperature")
    lr_decay: float = spec_field("es", "lr_decay")
    lr_floor: float = spec_field("es", "lr_floor")
    std_decay: float = spec_field("es", "std_decay")
    std_floor: float = spec_field("es", "std_floor")
    std_lr: float | None = spec_field("es", "std_lr")
    adam_b1: float = spec_field("es", "adam_b1")
    constants: str = spec_field("es", "constants")
    snr_std: str = spec_field("es", "snr_std")
    name: ClassVar[str] = "es"
    families: ClassVar[tuple[str, ...]] = ("vision", "control", "brax")  # the task families it trains
    unit: ClassVar[str] = "gen"  # one step of its schedule
    module: ClassVar[str] = "eslt_cli.trainers.es"  # its train and check (imported on demand: start-up)

    def steps(self) -> int:
        """How many steps (units) a run has."""
        return self.generations


@dataclass(frozen=True)
class AdamSpec:
    """Gradient descent with Adam on a vision task (the paper's GD baseline)."""

    lr: float = spec_field("adam", "lr")
    epochs: int = spec_field("adam", "epochs")
    eval_every: int = spec_field("adam", "eval_every")
    name: ClassVar[str] = "adam"
    families: ClassVar[tuple[str, ...]] = ("vision",)
    unit: ClassVar[str] = "epoch"
    module: ClassVar[str] = "eslt_cli.trainers.adam"

    def steps(self) -> int:
        return self.epochs


@dataclass(frozen=True)
class PPOSpec:
    """Masked PPO on a control task (the paper's GD baseline for control)."""

    lr: float = spec_field("ppo", "lr")
    timesteps: int = spec_field("ppo", "timesteps")
    num_envs: int = spec_field("ppo", "num_envs")
    rollout_steps: int = spec_field("ppo", "rollout_steps")
    update_epochs: int = spec_field("ppo", "update_epochs")
    minibatches: int = spec_field("ppo", "minibatches")
    gamma: float = spec_field("ppo", "gamma")
    gae_lambda: float = spec_field("ppo", "gae_lambda")
    clip_eps: float = spec_field("ppo", "clip_eps")
    ent_coef: float = spec_field("ppo", "ent_coef")
    vf_coef: float = spec_field("ppo", "vf_coef")
    max_grad_norm: float = spec_field("ppo", "max_grad_norm")
    reward_scale: float = spec_field("ppo", "reward_scale")
    critic: tuple[int, ...] = spec_field("ppo", "critic")
    eval_every: int = spec_field("ppo", "eval_every")
    lr_end: float | None = spec_field("ppo", "lr_end")
    lr_steps: int | None = spec_field("ppo", "lr_steps")
    name: ClassVar[str] = "ppo"
    families: ClassVar[tuple[str, ...]] = ("control", "brax")
    unit: ClassVar[str] = "update"
    module: ClassVar[str] = "eslt_cli.trainers.ppo"

    def steps(self) -> int:
        return self.timesteps // max(self.num_envs * self.rollout_steps, 1)


TaskSpec = VisionSpec | ControlSpec | BraxSpec
ModelSpec = CNNSpec | MLPSpec
TrainerSpec = ESSpec | AdamSpec | PPOSpec
TASK_KINDS: dict[str, type[TaskSpec]] = {c.kind: c for c in (VisionSpec, ControlSpec, BraxSpec)}
MODEL_KINDS: dict[str, type[ModelSpec]] = {c.kind: c for c in (CNNSpec, MLPSpec)}
# The trainers' registry: one entry per trainer, its settings type, the families it trains, its
# unit and its module.
TRAINER_KINDS: dict[str, type[TrainerSpec]] = {c.name: c for c in (ESSpec, AdamSpec, PPOSpec)}


def field_names(cls: type) -> tuple[str, ...]:
    """The settings a spec class holds (its tag excluded)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def to_json(spec: Any) -> dict[str, Any]:
    """A spec as a JSON-ready dict with its tag (tuples become lists); a setting declared
    ``omit_default`` (:mod:`eslt_cli.settings`) is left out at its default."""
    tag = {"name": spec.name} if isinstance(spec, ESSpec | AdamSpec | PPOSpec) else {"kind": spec.kind}
    fields = dataclasses.fields(spec)
    omit = {f.name for f in fields if f.metadata.get("omit_default") and getattr(spec, f.name) == f.default}
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items() if k not in omit}
    return {**tag, **values}


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Read a spec of class ``cls`` from ``meta``: unknown keys and schema-1 nulls are dropped, lists become tuples."""
    names = set(field_names(cls))
    optional = {f.name for f in dataclasses.fields(cls) if "None" in str(f.type)}
    values = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in data.items()
        if k in names and (v is not None or k in optional)
    }
    return cls(**values)


def task_kind(data: dict[str, Any]) -> str:
    """The kind of a task record: its tag, or (schema 1) what the registry says of its name."""
    if isinstance(data.get("kind"), str):
        return str(data["kind"])
    entry = get_entry(str(data["name"]))
    return "brax" if entry.library == "brax" else entry.kind


def task_from_json(data: dict[str, Any]) -> TaskSpec:
    return from_json(TASK_KINDS[task_kind(data)], data)


def model_from_json(data: dict[str, Any]) -> ModelSpec:
    return from_json(MODEL_KINDS[str(data["kind"])], data)


def trainer_from_json(data: dict[str, Any]) -> TrainerSpec:
    return from_json(TRAINER_KINDS[str(data.get("name", "es"))], data)


def optimiser_of(meta: dict[str, Any]) -> str:
    """What trained (or will train) a checkpoint: its ES strategy, or the gradient trainer's name."""
    trainer = meta.get("trainer") or {}
    if isinstance(trainer, str):  # analysis records store the trainer name and the strategy apart
        return str(meta.get("strategy") or trainer) if trainer == "es" else trainer
    name = trainer.get("name", "es")
    return str(trainer.get("strategy") or name) if name == "es" else str(name)

"""Frozen settings, one dataclass per concern and kind, stored in a checkpoint's ``meta``.

Tasks: :class:`VisionSpec`, :class:`ControlSpec` (gymnax), :class:`BraxSpec`.
Models: :class:`CNNSpec`, :class:`MLPSpec`. Trainers: :class:`ESSpec`,
:class:`AdamSpec`, :class:`PPOSpec`. Each holds only the fields that apply to it
and serialises to ``meta`` with its tag (``kind`` for tasks and models,
``name`` for trainers); :func:`task_from_json`, :func:`model_from_json` and
:func:`trainer_from_json` read them back, converting schema-1 records (one flat
record per concern, fields of other kinds set to null) on the way. ``prune``
and ``train`` read them to know how a parent was made; change one with
:func:`dataclasses.replace`, never in place.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from eslt_cli.errors import BadInput

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # a spec: a dataclass


# Field metadata of settings added after checkpoints were written: :func:`to_json` leaves such a
# field out at its default, so the records (and fingerprints) of older runs stay as they were.
OMIT = {"omit_default": True}


@dataclass(frozen=True)
class VisionSpec:
    """An image classification task: training images per fitness evaluation (or Adam step)."""

    name: str
    batch_size: int = 256
    data_dir: str | None = None  # IDX folder or tfds data dir
    standardize: bool = False  # inputs (x/255 - 0.1307)/0.3081, as the paper's code (MNIST constants)
    kind: ClassVar[str] = "vision"


@dataclass(frozen=True)
class ControlSpec:
    """A gymnax control task: episodes per fitness and per test evaluation."""

    name: str
    train_episodes: int = 8
    test_episodes: int = 16
    obs_norm: bool = False  # running observation normalisation
    kind: ClassVar[str] = "control"


@dataclass(frozen=True)
class BraxSpec:
    """A brax control task: as :class:`ControlSpec`, plus the physics backend and episode length."""

    name: str
    train_episodes: int = 2
    test_episodes: int = 16
    obs_norm: bool = True
    backend: str = "generalized"  # generalized, positional, spring, mjx
    episode_length: int = 200
    kind: ClassVar[str] = "brax"


@dataclass(frozen=True)
class CNNSpec:
    """The paper's CNN: conv channels and filter size."""

    features: tuple[int, ...] = (8, 16)
    kernel_size: int = 5
    bias_init: float = 0.0  # conv biases ~ U[0, bias_init) (the paper's code: 0.05); the output bias is zero
    kind: ClassVar[str] = "cnn"


@dataclass(frozen=True)
class MLPSpec:
    """The paper's MLP policy: hidden widths."""

    hidden: tuple[int, ...] = (32, 32)
    bias_init: float = 0.0  # every bias ~ U[0, bias_init) (the paper's code: 0.05)
    linear_output: bool = False  # continuous actions: linear output instead of tanh (the paper's Pendulum)
    kind: ClassVar[str] = "mlp"


@dataclass(frozen=True)
class ESSpec:
    """An evosax strategy and its settings (see :mod:`eslt_cli.strategies` for how each is applied)."""

    strategy: str
    population: int
    generations: int
    std_init: float
    lr: float | None = None  # ES optimiser learning rate (None: the strategy has no optimiser)
    optimizer: str | None = None  # "adam" | "sgd" | "clipup" (None: the strategy has none)
    elite_ratio: float | None = None  # only for strategies with elite selection
    mean_decay: float = 0.0  # the mean shrinks by the factor 1 - mean_decay after every update (paper code)
    eval_every: int = 10
    temperature: float | None = None  # snes, des: softmax temperature of the fitness weights (None: evosax's)
    lr_decay: float = 1.0  # ES optimiser lr times lr_decay per generation ...
    lr_floor: float = 0.0  # ... never below lr_floor
    std_decay: float = 1.0  # pgpe: search std times std_decay per generation ...
    std_floor: float = 0.0  # ... never below std_floor
    std_lr: float | None = None  # pgpe: learning rate of the std adaptation (None: evosax's 0.1, 0.1.4's too)
    adam_b1: float = 0.9  # Adam's first-moment decay (the paper's code: 0.99)
    constants: str = "evosax"  # sep_cma_es, pgpe: "evosax" (0.3) or "paper" (evosax 0.1.4's update)
    # What --snr divides |mean| by: "text" (the search std) or "code" (what the paper's code divided by:
    # Sep-CMA-ES's variance C); see strategies.snr_noise. Absent from meta at its default (OMIT).
    snr_std: str = field(default="text", metadata=OMIT)
    name: ClassVar[str] = "es"


@dataclass(frozen=True)
class AdamSpec:
    """Gradient descent with Adam on a vision task (the paper's GD baseline)."""

    lr: float = 3e-4
    epochs: int = 2
    eval_every: int = 1
    name: ClassVar[str] = "adam"


@dataclass(frozen=True)
class PPOSpec:
    """Masked PPO on a control task (the paper's GD baseline for control)."""

    lr: float = 3e-4
    timesteps: int = 200_000
    num_envs: int = 8
    rollout_steps: int = 128
    update_epochs: int = 4
    minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 1.0  # rewards times this in the PPO loss (brax configs' reward_scaling)
    critic: tuple[int, ...] = ()  # value-network widths (empty: the policy's hidden widths)
    eval_every: int = 10
    lr_end: float | None = field(default=None, metadata=OMIT)  # lr goes linearly from lr to this (None: constant)
    lr_steps: int | None = field(default=None, metadata=OMIT)  # ... over this many optimiser steps (None: all)
    name: ClassVar[str] = "ppo"


TaskSpec = VisionSpec | ControlSpec | BraxSpec
ModelSpec = CNNSpec | MLPSpec
TrainerSpec = ESSpec | AdamSpec | PPOSpec
TASK_KINDS: dict[str, type[TaskSpec]] = {c.kind: c for c in (VisionSpec, ControlSpec, BraxSpec)}
MODEL_KINDS: dict[str, type[ModelSpec]] = {c.kind: c for c in (CNNSpec, MLPSpec)}
TRAINER_KINDS: dict[str, type[TrainerSpec]] = {c.name: c for c in (ESSpec, AdamSpec, PPOSpec)}


def field_names(cls: type) -> tuple[str, ...]:
    """The settings a spec class holds (its tag excluded)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def check_ranges(spec: T) -> T:
    """``spec`` if its numbers are in range, else a one-line :class:`BadInput` naming the option."""

    def bad(k: str, v: Any, what: str) -> BadInput:
        return BadInput(f"--{k.replace('_', '-')} must be {what}, got {v}")

    for k in field_names(type(spec)):
        v = getattr(spec, k)
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, float) and not math.isfinite(v):  # inf passes every "positive" test below
            raise bad(k, v, "a finite number")
        if k in ("ent_coef", "vf_coef", "mean_decay", "lr_floor", "std_floor", "std_lr", "bias_init"):
            if not v >= 0:
                raise bad(k, v, "non-negative")
        elif k in ("gamma", "gae_lambda", "adam_b1"):
            if not 0.0 <= v <= 1.0:
                raise bad(k, v, "in [0, 1]")
        elif k in ("lr_decay", "std_decay"):
            if not 0.0 < v <= 1.0:
                raise bad(k, v, "in (0, 1]")
        elif isinstance(v, tuple):
            if any(x < 1 for x in v):
                raise bad(k, ",".join(map(str, v)), "positive widths")
        elif not v > 0:
            raise bad(k, v, "positive")
    if isinstance(spec, ESSpec) and spec.mean_decay >= 1:
        raise BadInput(f"--mean-decay must be below 1 (the mean shrinks by 1 - c), got {spec.mean_decay}")
    return spec


def to_json(spec: Any) -> dict[str, Any]:
    """A spec as a JSON-ready dict with its tag (tuples become lists); an :data:`OMIT` field is left
    out at its default."""
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
    from eslt_cli.tasks import get_entry

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

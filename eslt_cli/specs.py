"""Frozen settings, one dataclass per concern, stored in a checkpoint's ``meta``.

``prune`` and ``train`` read them back to know how a parent was made; change one
with :func:`dataclasses.replace`, never in place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TaskSpec:
    """What is optimised: a registered task name and how it is sampled."""

    name: str
    data_dir: str | None = None  # vision: IDX folder or tfds data dir
    batch_size: int | None = None  # vision: images per fitness evaluation
    train_episodes: int | None = None  # control: episodes per fitness evaluation
    test_episodes: int | None = None  # control: episodes per test evaluation


@dataclass(frozen=True)
class ModelSpec:
    """The network: ``cnn`` (vision) or ``mlp`` (control) and its sizes."""

    kind: str
    hidden: tuple[int, ...] | None = None  # mlp hidden units
    features: tuple[int, ...] | None = None  # cnn conv channels
    kernel_size: int | None = None  # cnn filter size


@dataclass(frozen=True)
class TrainerSpec:
    """How it is optimised: an evosax strategy and its knobs."""

    name: str  # "es"
    strategy: str
    population: int
    generations: int
    std_init: float
    lr: float | None  # ES optimiser learning rate (None: no optimiser, e.g. Sep-CMA-ES)
    optimizer: str | None  # "adam" | "sgd" | "clipup" (None: the strategy has none)
    elite_ratio: float | None  # only for strategies with elite selection
    mean_decay: float  # L2 penalty on the search mean (evosax add_weight_decay)
    eval_every: int  # generations between test evaluations (one jitted chunk)


def to_json(spec: Any) -> dict[str, Any]:
    """A spec as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Read a spec back from ``meta``; unknown keys are ignored, lists become tuples."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return cls(**values)

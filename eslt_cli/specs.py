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
    obs_norm: bool | None = None  # control: running observation normalisation (default: on for brax)
    backend: str | None = None  # brax: physics pipeline (generalized, positional, spring, mjx)
    episode_length: int | None = None  # brax: steps per episode


@dataclass(frozen=True)
class ModelSpec:
    """The network: ``cnn`` (vision) or ``mlp`` (control) and its sizes."""

    kind: str
    hidden: tuple[int, ...] | None = None  # mlp hidden units
    features: tuple[int, ...] | None = None  # cnn conv channels
    kernel_size: int | None = None  # cnn filter size


@dataclass(frozen=True)
class TrainerSpec:
    """How it is optimised: an evosax strategy (``es``) or a gradient trainer (``adam``, ``ppo``).

    Fields that do not apply to a trainer stay None.
    """

    name: str  # "es" | "adam" | "ppo"
    strategy: str | None = None  # es: evosax strategy
    population: int | None = None  # es
    generations: int | None = None  # es
    std_init: float | None = None  # es: initial search std
    lr: float | None = None  # es: ES optimiser learning rate (None: no optimiser); adam/ppo: Adam's
    optimizer: str | None = None  # es: "adam" | "sgd" | "clipup" (None: the strategy has none)
    elite_ratio: float | None = None  # es: only for strategies with elite selection
    mean_decay: float = 0.0  # es: L2 penalty on the search mean (evosax add_weight_decay)
    eval_every: int = 10  # test evaluations every eval_every generations (es), epochs (adam), updates (ppo)
    epochs: int | None = None  # adam: passes over the training set
    timesteps: int | None = None  # ppo: environment steps in all
    num_envs: int | None = None  # ppo: parallel environments
    rollout_steps: int | None = None  # ppo: steps per environment per update
    update_epochs: int | None = None  # ppo: epochs over each rollout
    minibatches: int | None = None  # ppo: minibatches per epoch
    gamma: float | None = None  # ppo: discount
    gae_lambda: float | None = None  # ppo: GAE lambda
    clip_eps: float | None = None  # ppo: ratio clip
    ent_coef: float | None = None  # ppo: entropy bonus
    vf_coef: float | None = None  # ppo: value loss weight
    max_grad_norm: float | None = None  # ppo: gradient clipping


def check_ranges(spec: TrainerSpec) -> TrainerSpec:
    """``spec`` if its gradient-trainer settings are in range, else a one-line :class:`BadInput`."""
    from eslt_cli.errors import BadInput

    def bad(k: str, v: Any, what: str) -> BadInput:
        return BadInput(f"--{k.replace('_', '-')} must be {what}, got {v}")

    for k in ("lr", "epochs", "eval_every", "timesteps", "num_envs", "rollout_steps", "update_epochs", "minibatches",
              "clip_eps", "max_grad_norm"):  # fmt: skip
        if getattr(spec, k) is not None and not getattr(spec, k) > 0:
            raise bad(k, getattr(spec, k), "positive")
    for k in ("ent_coef", "vf_coef"):
        if getattr(spec, k) is not None and not getattr(spec, k) >= 0:
            raise bad(k, getattr(spec, k), "non-negative")
    for k in ("gamma", "gae_lambda"):
        if getattr(spec, k) is not None and not 0.0 <= getattr(spec, k) <= 1.0:
            raise bad(k, getattr(spec, k), "in [0, 1]")
    return spec


def to_json(spec: Any) -> dict[str, Any]:
    """A spec as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Read a spec back from ``meta``; unknown keys are ignored, lists become tuples."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return cls(**values)


def optimiser_of(meta: dict[str, Any]) -> str:
    """What trained (or will train) a checkpoint: its ES strategy, or the gradient trainer's name."""
    trainer = meta.get("trainer") or {}
    if isinstance(trainer, str):  # analysis records store the trainer name and the strategy apart
        return str(meta.get("strategy") or trainer) if trainer == "es" else trainer
    name = trainer.get("name", "es")
    return str(trainer.get("strategy") or name) if name == "es" else str(name)

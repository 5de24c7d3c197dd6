"""Every setting of a run, declared once: its type, default, range or choices, help and where it applies.

A setting belongs to one or more settings types, named by their tag: the task families
``vision``, ``control`` (gymnax) and ``brax``, the models ``cnn`` and ``mlp``, and the trainers
``es``, ``adam`` and ``ppo``. Its :attr:`Setting.defaults` maps each tag it applies to to its
default there (:data:`REQUIRED`: no default, a preset supplies it). The spec dataclasses of
:mod:`eslt_cli.specs` take their defaults from here (:func:`spec_field`), and
:func:`check` holds a value to the setting's one range rule, whether it came from an option
(``--batch-size``) or from a checkpoint's meta (``task.batch_size``).

Settings added after checkpoints were written are declared ``omit_default``: a record leaves them
out at their default (:func:`eslt_cli.specs.to_json`), so older fingerprints still match.

Plain data with no heavy imports (start-up time).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from eslt_cli.errors import BadInput

REQUIRED: Any = dataclasses.MISSING  # no default: the preset layers supply the value

TASK_TAGS = ("vision", "control", "brax")
MODEL_TAGS = ("cnn", "mlp")
TRAINER_TAGS = ("es", "adam", "ppo")

# Panels of `eslt train --help`.
ES, GRAD, TASK, RUN = "Evolution strategy (--trainer es)", "Gradient trainers (adam, ppo)", "Task", "Run"


@dataclass(frozen=True)
class Setting:
    """One setting. ``low``/``high`` bound a number (open ends with ``low_open``/``high_open``);
    a tuple's entries are widths, each at least 1; ``choices`` lists a string's allowed values."""

    name: str
    type: Any  # int, float, str, bool or tuple (widths)
    defaults: dict[str, Any]  # settings type tag -> default (REQUIRED: none)
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    noun: str = ""  # how an unknown choice is named in its message (default: the option or field)
    note: str = ""  # said after the rule in a range message
    omit_default: bool = False  # left out of records at its default (added after checkpoints were written)
    option: bool = True  # an `eslt train` option
    panel: str | None = None  # its panel in `eslt train --help`
    metavar: str | None = None  # its value's name in `eslt train --help` (default: the type's)
    per_strategy: bool = False  # an ES setting of one strategy: a ticket moved to another strategy drops it

    @property
    def option_name(self) -> str:
        return f"--{self.name.replace('_', '-')}"

    def rule(self) -> str:
        """The range rule in words: ``positive``, ``non-negative``, ``at least 2``, ``in (0, 1]``."""
        low, high = _num(self.low), _num(self.high)
        if self.high is None:
            if self.low == 0:
                text = "positive" if self.low_open else "non-negative"
            else:
                text = f"above {low}" if self.low_open else f"at least {low}"
        else:
            text = f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        return f"{text} ({self.note})" if self.note else text

    def fits(self, value: float) -> bool:
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def _num(v: float | None) -> str:
    return str(int(v)) if v is not None and float(v).is_integer() else str(v)


POSITIVE: dict[str, Any] = {"low": 0, "low_open": True}
NON_NEGATIVE: dict[str, Any] = {"low": 0}
UNIT: dict[str, Any] = {"low": 0, "high": 1}  # [0, 1]
DECAY: dict[str, Any] = {"low": 0, "low_open": True, "high": 1}  # (0, 1]
OPTIMIZERS = ("adam", "sgd", "clipup")
CONSTANTS = ("evosax", "paper")
SNR_STD = ("text", "code")  # the paper's text's SNR, or its code's (strategies.snr_noise)
BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")  # brax 0.14's physics backends
OWN: dict[str, Any] = {"panel": ES, "per_strategy": True}  # an ES setting of one strategy

_DECLARED = [
    # ------------------------------------------------------------- evolution strategies
    Setting("strategy", str, {"es": REQUIRED}, "pgpe, snes, sep_cma_es, des, open_es, ars.", panel=ES),
    Setting("generations", int, {"es": REQUIRED}, "ES generations.", **POSITIVE, panel=ES),
    Setting("population", int, {"es": REQUIRED}, "ES population size.", low=2, panel=ES),
    Setting("eval_every", int, {"es": 10, "adam": 1, "ppo": 10},
            "Generations (es), epochs (adam) or updates (ppo) between test evaluations.", **POSITIVE),
    Setting("std_init", float, {"es": REQUIRED}, "Initial search std.", **POSITIVE, panel=ES),
    # None (es): the strategy has no optimiser, or takes its own default.
    Setting("lr", float, {"es": None, "adam": 3e-4, "ppo": 3e-4},
            "Learning rate: of the ES optimiser (mean update), or Adam's (adam, ppo).", **POSITIVE, per_strategy=True),
    Setting("optimizer", str, {"es": None}, "ES optimiser: adam, sgd, clipup.", choices=OPTIMIZERS,
            noun="optimizer", **OWN),
    Setting("elite_ratio", float, {"es": None}, "Elite ratio (sep_cma_es, ars).", **DECAY, **OWN),
    # The mean shrinks by the factor 1 - mean_decay after every update (the paper's code).
    Setting("mean_decay", float, {"es": 0.0}, "The mean shrinks by the factor 1 - c after every update.",
            low=0, high=1, high_open=True, note="non-negative, below 1: the mean shrinks by 1 - c", panel=ES),
    # None: evosax's own fitness weights.
    Setting("temperature", float, {"es": None}, "snes, des: temperature of the softmax fitness weights.",
            **POSITIVE, **OWN),
    Setting("lr_decay", float, {"es": 1.0}, "ES optimiser lr times this per generation.", **DECAY, **OWN),
    Setting("lr_floor", float, {"es": 0.0}, "Lower bound of the decayed ES lr.", **NON_NEGATIVE, **OWN),
    Setting("std_decay", float, {"es": 1.0}, "pgpe: search std times this per generation.", **DECAY, **OWN),
    Setting("std_floor", float, {"es": 0.0}, "pgpe: lower bound of the decayed std.", **NON_NEGATIVE, **OWN),
    # None: evosax's 0.1 (evosax 0.1.4's too).
    Setting("std_lr", float, {"es": None}, "pgpe: learning rate of the std adaptation.", **NON_NEGATIVE, **OWN),
    # optax's default (strategies.ADAM_B1); the paper's code: 0.99.
    Setting("adam_b1", float, {"es": 0.9}, "First-moment decay of the ES Adam optimiser.",
            low=0, high=1, high_open=True, **OWN),
    Setting("constants", str, {"es": "evosax"},
            "sep_cma_es: evosax (0.3) or paper (evosax 0.1.4 weights and rates); pgpe: evosax or paper "
            "(0.1.4's std step, a random walk from an index bug).", choices=CONSTANTS, **OWN),
    Setting("snr_std", str, {"es": "text"},
            "What --snr will divide |mean| by: text (the search std) or code (the paper's code: "
            "sep_cma_es's variance C) [text; paper preset, sep_cma_es: code].",
            choices=SNR_STD, omit_default=True, **OWN),
    # ------------------------------------------------------------- gradient trainers
    Setting("epochs", int, {"adam": 2}, "adam: passes over the training set.", **POSITIVE, panel=GRAD),
    Setting("timesteps", int, {"ppo": 200_000}, "ppo: environment steps in all.", **POSITIVE, panel=GRAD),
    Setting("num_envs", int, {"ppo": 8}, "ppo: parallel environments.", **POSITIVE, panel=GRAD),
    Setting("rollout_steps", int, {"ppo": 128}, "ppo: steps per environment per update.", **POSITIVE, panel=GRAD),
    Setting("update_epochs", int, {"ppo": 4}, "ppo: epochs over each rollout.", **POSITIVE, panel=GRAD),
    Setting("minibatches", int, {"ppo": 4}, "ppo: minibatches per epoch.", **POSITIVE, panel=GRAD),
    Setting("gamma", float, {"ppo": 0.99}, "ppo: discount.", **UNIT, panel=GRAD),
    Setting("gae_lambda", float, {"ppo": 0.95}, "ppo: GAE lambda.", **UNIT, panel=GRAD),
    Setting("clip_eps", float, {"ppo": 0.2}, "ppo: probability-ratio clip.", **POSITIVE, panel=GRAD),
    Setting("ent_coef", float, {"ppo": 0.01}, "ppo: entropy bonus.", **NON_NEGATIVE, panel=GRAD),
    Setting("vf_coef", float, {"ppo": 0.5}, "ppo: value-loss weight.", **NON_NEGATIVE, panel=GRAD),
    Setting("max_grad_norm", float, {"ppo": 0.5}, "ppo: gradient clipping norm.", **POSITIVE, panel=GRAD),
    # None: a constant lr.
    Setting("lr_end", float, {"ppo": None}, "ppo: the lr goes linearly from --lr to this [constant].",
            **POSITIVE, omit_default=True, panel=GRAD),
    # None: over all of the run's optimiser steps.
    Setting("lr_steps", int, {"ppo": None}, "ppo: ... over this many optimiser steps [all of the run's].",
            **POSITIVE, omit_default=True, panel=GRAD),
    # ------------------------------------------------------------- tasks
    Setting("batch_size", int, {"vision": 256}, "Vision: training images per generation (es) or step (adam).",
            **POSITIVE, panel=TASK),
    Setting("train_episodes", int, {"control": 8, "brax": 2}, "Control: episodes per fitness evaluation.",
            **POSITIVE, panel=TASK),
    Setting("test_episodes", int, {"control": 16, "brax": 16}, "Control: episodes per test evaluation.",
            **POSITIVE, panel=TASK),
    Setting("hidden", tuple, {"mlp": (32, 32)}, "Control: MLP hidden widths, e.g. 32,32.", panel=TASK,
            metavar="<widths>"),
    Setting("obs_norm", bool, {"control": False, "brax": True},
            "Control: running observation normalisation [on for brax].", panel=TASK),
    # The task registry names the backends each brax task runs on, its default first.
    Setting("backend", str, {"brax": "generalized"},
            "Brax: physics pipeline (generalized, positional, spring, mjx).", panel=TASK),
    Setting("episode_length", int, {"brax": 200}, "Brax: steps per episode.", **POSITIVE, panel=TASK),
    # An IDX folder or a tfds data dir.
    Setting("data_dir", str, {"vision": None}, "Vision: folder with the four IDX files, or a tfds data dir.",
            panel=TASK, metavar="<path>"),
    # ------------------------------------------------------------- set by presets only
    # Inputs (x/255 - 0.1307)/0.3081, as the paper's code (MNIST constants).
    Setting("standardize", bool, {"vision": False}, option=False),
    Setting("features", tuple, {"cnn": (8, 16)}, "CNN conv channels.", option=False),
    Setting("kernel_size", int, {"cnn": 5}, "CNN filter size.", **POSITIVE, option=False),
    # Biases ~ U[0, bias_init) (the paper's code: 0.05): the CNN's conv biases (its output bias is
    # zero), every MLP bias.
    Setting("bias_init", float, {"cnn": 0.0, "mlp": 0.0}, **NON_NEGATIVE, option=False),
    # Continuous actions: a linear output instead of tanh (the paper's Pendulum).
    Setting("linear_output", bool, {"mlp": False}, option=False),
    # Rewards times this in the PPO loss (brax configs' reward_scaling).
    Setting("reward_scale", float, {"ppo": 1.0}, **POSITIVE, option=False),
    # Value-network widths (empty: the policy's hidden widths).
    Setting("critic", tuple, {"ppo": ()}, option=False),
]  # fmt: skip
SETTINGS: dict[str, Setting] = {s.name: s for s in _DECLARED}


def per_strategy() -> tuple[str, ...]:
    """The ES settings that belong to one strategy, in declaration order."""
    return tuple(s.name for s in _DECLARED if s.per_strategy)


def options() -> tuple[str, ...]:
    """The settings ``eslt train`` takes as options, in declaration order."""
    return tuple(s.name for s in _DECLARED if s.option)


def applying(tag: str) -> tuple[str, ...]:
    """The settings of settings type ``tag``, in declaration order."""
    return tuple(s.name for s in _DECLARED if tag in s.defaults)


def tags_of(name: str) -> tuple[str, ...]:
    """The settings types setting ``name`` applies to."""
    return tuple(SETTINGS[name].defaults)


def default(tag: str, name: str) -> Any:
    """The default of setting ``name`` in settings type ``tag`` (:data:`REQUIRED`: none)."""
    return SETTINGS[name].defaults[tag]


def spec_field(tag: str, name: str) -> Any:
    """A spec dataclass field for setting ``name`` of ``tag``: its default, and ``omit_default``
    in its metadata (read by :func:`eslt_cli.specs.to_json`)."""
    s = SETTINGS[name]
    return dataclasses.field(default=s.defaults[tag], metadata={"omit_default": True} if s.omit_default else {})


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def check(name: str, value: Any, label: str) -> None:
    """Refuse ``value`` of setting ``name`` outside its rule: one :class:`BadInput` line naming it as
    ``label`` (an option, ``--lr``, or a meta field, ``trainer.lr``). None (unset) and booleans pass."""
    s = SETTINGS[name]
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if s.choices and value not in s.choices:
            raise BadInput(f"unknown {s.noun or label} {value!r}: choose one of {', '.join(s.choices)}")
        return
    if isinstance(value, tuple | list):
        if any(w < 1 for w in value):
            raise BadInput(f"{label} must be positive widths, got {_shown(value)}")
        return
    if isinstance(value, float) and not math.isfinite(value):  # inf passes every "positive" test
        raise BadInput(f"{label} must be a finite number, got {value}")
    if not s.fits(value):
        raise BadInput(f"{label} must be {s.rule()}, got {value}")


def check_spec(spec: Any) -> Any:
    """``spec`` (a settings dataclass) if every setting of it is in range, else one :class:`BadInput`
    line naming the option."""
    for f in dataclasses.fields(spec):
        if f.name in SETTINGS:
            check(f.name, getattr(spec, f.name), SETTINGS[f.name].option_name)
    return spec


def check_record(tag: str, data: dict[str, Any], what: str) -> None:
    """Refuse a settings record of ``tag`` read from a checkpoint's meta (``what``: ``task``,
    ``model`` or ``trainer``) with a setting out of range."""
    for name in applying(tag):
        if name in data:
            check(name, data[name], f"{what}.{name}")

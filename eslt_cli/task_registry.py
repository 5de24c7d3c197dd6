"""The task registry: every task's name, data or environment, family and variants.

A leaf module (it imports no other eslt module but :mod:`eslt_cli.errors`), so the settings
records (:mod:`eslt_cli.specs`, :mod:`eslt_cli.schema`) and the task implementations
(:mod:`eslt_cli.tasks`) can all read it without importing each other. Names are
lower_snake_case; the libraries' own ids (``Pendulum-v1``, ``Asterix-MinAtar``, tfds names) are
accepted as aliases, and any tfds image classification dataset works as ``tfds:NAME``. Brax tasks
are named as in ``brax.envs`` (``ant``, ``halfcheetah``, ...) and run on a physics backend chosen
per task (``--backend``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eslt_cli.errors import BadInput

# A tfds dataset name as eslt accepts it: tfds:NAME, tfds:NAME/CONFIG, tfds:NAME:VERSION.
TFDS = re.compile(r"tfds:[a-z0-9_]+(/[a-z0-9_.]+)?(:[0-9.]+)?")


@dataclass(frozen=True)
class TaskEntry:
    """One registered task; all entries share this shape. Preset settings live in :mod:`eslt_cli.presets`."""

    kind: str  # "vision" | "control"
    source: str  # tfds dataset name, gymnax environment id or brax environment name
    env_params: dict[str, Any] = field(default_factory=dict)
    default_data: Path | None = None  # IDX folder used when present and no --data-dir
    library: str | None = None  # control: "gymnax" | "brax"
    backends: tuple[str, ...] = ()  # brax: physics backends the environment runs on, the default first
    episode_length: int | None = None  # brax: steps per episode on the CPU preset (paper: 500)
    base: str | None = None  # a variant for `eslt transfer`: the task whose tuned settings it shares

    @property
    def family(self) -> str:
        """The preset family and settings type: ``vision``, ``control`` (gymnax) or ``brax``."""
        return "brax" if self.library == "brax" else self.kind


def _vision(source: str, default_data: Path | None = None) -> TaskEntry:
    return TaskEntry("vision", source, default_data=default_data)


def _gymnax(env_id: str, base: str | None = None, **env_params: Any) -> TaskEntry:
    return TaskEntry("control", env_id, env_params, library="gymnax", base=base)


# brax 0.14's physics backends; every registered environment accepts each.
BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")
# Backends on which body masses act in full: positional and spring replace a mass m by
# m ** (1 - spring_mass_scale), which ant's XML sets to 1 (all masses 1), so a mass
# variant must run on these.
MASS_BACKENDS = ("generalized", "mjx")


def _brax(
    env: str, episode_length: int, backends: tuple[str, ...] = BRAX_BACKENDS, base: str | None = None, **env_params: Any
) -> TaskEntry:
    """A brax environment on ``backends`` (the first is the default), ``episode_length`` steps on CPU."""
    return TaskEntry(
        "control", env, env_params, library="brax", backends=backends, episode_length=episode_length, base=base
    )


TASKS: dict[str, TaskEntry] = {
    "fashion_mnist": _vision("fashion_mnist", Path("/usr/share/datasets/fashion-mnist")),
    "mnist": _vision("mnist"),
    "kmnist": _vision("kmnist"),
    "mnist_corrupted": _vision("mnist_corrupted"),
    "pendulum": _gymnax("Pendulum-v1"),
    # A variant environment for `eslt transfer`: same observation/action spaces, 1.5x the mass.
    "pendulum_heavy": _gymnax("Pendulum-v1", base="pendulum", m=1.5),
    "cartpole": _gymnax("CartPole-v1"),
    "acrobot": _gymnax("Acrobot-v1"),
    "mountain_car_continuous": _gymnax("MountainCarContinuous-v0"),
    "asterix": _gymnax("Asterix-MinAtar"),
    "breakout": _gymnax("Breakout-MinAtar"),
    "freeway": _gymnax("Freeway-MinAtar"),
    "seaquest": _gymnax("Seaquest-MinAtar"),
    "space_invaders": _gymnax("SpaceInvaders-MinAtar"),
    # Brax locomotion on brax's default (and most faithful) backend, generalized; CPU episodes
    # of 200 steps (reacher: 100), long enough to tell a good policy from a bad one.
    "ant": _brax("ant", 200),
    # Variants for `eslt transfer` (paper Table 1: Ant torso mass 10 -> 15): same spaces, torso mass
    # and inertia x1.5.
    "ant_heavy": _brax("ant", 200, MASS_BACKENDS, base="ant", mass_scale={"torso": 1.5}),
    "halfcheetah": _brax("halfcheetah", 200),
    "halfcheetah_heavy": _brax("halfcheetah", 200, MASS_BACKENDS, base="halfcheetah", mass_scale={"torso": 1.5}),
    "hopper": _brax("hopper", 200),
    "humanoid": _brax("humanoid", 200),
    "humanoidstandup": _brax("humanoidstandup", 200),
    "inverted_pendulum": _brax("inverted_pendulum", 200),
    "inverted_double_pendulum": _brax("inverted_double_pendulum", 200),
    "pusher": _brax("pusher", 200),
    "reacher": _brax("reacher", 100),
    # Not swimmer: its fluid drag (brax/fluid.py) calls jnp.clip(a_min=...), gone in JAX 0.10.
    "walker2d": _brax("walker2d", 200),
}
# A library id names the plain task, never a variant with changed env params.
ALIASES = {entry.source.lower(): name for name, entry in reversed(TASKS.items()) if not entry.env_params} | {
    "fashion-mnist": "fashion_mnist"
}


def canonical_task(name: str) -> str:
    """The registry name for ``name`` (aliases and ``tfds:NAME`` accepted)."""
    if name.startswith("tfds:"):
        if not TFDS.fullmatch(name):
            raise BadInput(f"{name[:80]!r} is not a tfds dataset name (tfds:NAME, tfds:NAME/CONFIG, tfds:NAME:VERSION)")
        return name
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise BadInput(f"unknown task {name!r}: choose one of {', '.join(TASKS)} or tfds:NAME")
    return key


def base_task(name: str) -> str:
    """The task whose settings the registry name ``name`` shares: itself, or a transfer variant's base."""
    entry = TASKS.get(name)
    return entry.base or name if entry else name


def get_entry(name: str) -> TaskEntry:
    """The registry entry for ``name``."""
    key = canonical_task(name)
    return TASKS[key] if key in TASKS else _vision(key[len("tfds:") :])

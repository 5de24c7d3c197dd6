"""Trainers registry: ``es`` (evosax strategies), ``adam`` (vision) and ``ppo`` (control).

Every trainer is ``train(task, spec, init, mask, key, on_progress, store,
save_every, stop, devices) -> TrainResult`` with the same resume, stop and
determinism guarantees, and ``check(task, spec)``, the refusals of its settings
that ``train`` makes, run before anything is written; modules are imported on
demand (JAX start-up cost).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from eslt_cli.specs import TRAINER_KINDS  # the registry: each trainer's spec class names its module


def get(name: str) -> Callable[..., Any]:
    """The ``train`` function of trainer ``name`` (names are checked when a run is planned)."""
    train: Callable[..., Any] = importlib.import_module(TRAINER_KINDS[name].module).train
    return train


def check(name: str) -> Callable[..., Any]:
    """The ``check(task, spec)`` of trainer ``name``: what its ``train`` refuses, without training."""
    checker: Callable[..., Any] = importlib.import_module(TRAINER_KINDS[name].module).check
    return checker

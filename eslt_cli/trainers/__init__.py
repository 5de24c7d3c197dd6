"""Trainers registry: ``es`` (evosax strategies), ``adam`` (vision) and ``ppo`` (control).

Every trainer is ``train(task, spec, init, mask, key, on_progress, store,
save_every, stop, devices) -> TrainResult`` with the same resume, stop and
determinism guarantees; modules are imported on demand (JAX start-up cost).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

MODULES = {"es": "eslt_cli.trainers.es", "adam": "eslt_cli.trainers.adam", "ppo": "eslt_cli.trainers.ppo"}


def get(name: str) -> Callable[..., Any]:
    """The ``train`` function of trainer ``name`` (names are checked when a run is planned)."""
    train: Callable[..., Any] = importlib.import_module(MODULES[name]).train
    return train

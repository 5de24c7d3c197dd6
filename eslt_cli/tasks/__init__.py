"""Tasks built from their settings: the data or environment and the network, for every family
(vision, gymnax control, brax). The names and entries are :mod:`eslt_cli.task_registry`'s."""

from __future__ import annotations

import functools
from pathlib import Path

from eslt_cli.errors import BadInput
from eslt_cli.specs import TASK_KINDS, BraxSpec, CNNSpec, MLPSpec, ModelSpec, TaskSpec, VisionSpec
from eslt_cli.task_registry import get_entry
from eslt_cli.tasks.base import Params, Task

__all__ = ["Params", "Task", "build_task", "check_task_spec"]


def check_task_spec(spec: TaskSpec) -> None:
    """Refuse settings that do not apply to ``spec``'s task (:class:`BadInput`, one line)."""
    entry = get_entry(spec.name)
    if type(spec) is not TASK_KINDS[entry.family]:
        raise BadInput(f"{spec.name} is a {entry.family} task: its settings cannot be {type(spec).__name__}")
    if isinstance(spec, BraxSpec) and spec.backend not in entry.backends:
        raise BadInput(f"--backend {spec.backend} does not run {spec.name}: choose one of {', '.join(entry.backends)}")


@functools.lru_cache(maxsize=8)
def build_task(spec: TaskSpec, model: ModelSpec) -> Task:
    """The task for ``spec``; cached so one process reuses data and compiled functions."""
    entry = get_entry(spec.name)
    check_task_spec(spec)  # so the settings type is the family's: VisionSpec, BraxSpec or ControlSpec
    if isinstance(spec, VisionSpec):
        from eslt_cli.tasks.data import load_images
        from eslt_cli.tasks.vision import VisionTask

        if not isinstance(model, CNNSpec):
            raise BadInput(f"{spec.name} is a vision task: its network must be a cnn, not {model.kind}")
        data_dir = Path(spec.data_dir) if spec.data_dir else None
        return VisionTask(spec, model, load_images(entry.source, data_dir, entry.default_data))
    if not isinstance(model, MLPSpec):
        raise BadInput(f"{spec.name} is a control task: its network must be an mlp, not {model.kind}")
    if isinstance(spec, BraxSpec):
        from eslt_cli.tasks.brax import BraxTask

        return BraxTask(spec, model, entry.source, entry.env_params)
    from eslt_cli.tasks.control import GymnaxTask

    return GymnaxTask(spec, model, entry.source, entry.env_params)

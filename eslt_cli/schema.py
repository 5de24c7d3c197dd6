"""The checkpoint ``meta`` schema, checked once when a checkpoint is read.

Every command reads meta through :func:`validate`, so a malformed field
(wrong type, out of range, a path-like name, a missing key) is one
:class:`~eslt_cli.errors.BadInput` line naming the field, never a traceback
deep in the core. Names that become path segments (``arm``, task names) are
held to :data:`NAME`, so nothing read from a checkpoint can steer a derived
path out of its run folder.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

from eslt_cli import settings
from eslt_cli.errors import BadInput
from eslt_cli.specs import MODEL_KINDS, TASK_KINDS, TRAINER_KINDS
from eslt_cli.task_registry import TFDS, canonical_task, get_entry

# A path segment eslt derives from a name: letters, digits and _ . + -, no leading dot, no "..".
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}")
# tfds dataset names, optionally with a config and a version (tfds:mnist, tfds:emnist/letters:3.1.0).
SEED_LIMIT = 2**63  # jax.random.PRNGKey takes a signed 64-bit seed
MAX_TEXT = 4096  # longest string accepted in a meta field (paths included)
MAX_LEVEL = 999
MODEL_OF_KIND = {"vision": "cnn", "control": "mlp"}


def safe_name(value: Any, what: str) -> str:
    """``value`` if it is a string usable as one path segment (:data:`NAME`), else :class:`BadInput`."""
    if not isinstance(value, str) or not NAME.fullmatch(value) or ".." in value:
        raise BadInput(f"{what} {str(value)[:80]!r} is not a plain name (letters, digits, _ . + -)")
    return value


def safe_text(value: Any, what: str) -> str:
    """``value`` if it is a string of printable characters no longer than :data:`MAX_TEXT`."""
    if not isinstance(value, str) or len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise BadInput(f"{what} must be one line of text (at most {MAX_TEXT} characters)")
    return value


def finite(value: Any) -> bool:
    """Whether ``value`` is a real number (not a bool) that a float can hold: not NaN or infinite,
    nor an integer too large to convert (``math.isfinite`` raises OverflowError on those)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def shown(value: Any, limit: int = 80) -> str:
    """``value`` quoted for a message, at most ``limit`` characters; integers too long for Python's
    int-to-string limit (4300 digits) are described, not converted."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return repr(f"an integer of {value.bit_length()} bits")
    return repr(str(value)[:limit])


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a spec field's annotation (JSON lists stand for tuples)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, list | tuple) and all(_conforms(v, typing.get_args(hint)[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < SEED_LIMIT
    if hint is float:
        return finite(value)
    if hint is str:
        return isinstance(value, str) and len(value) <= MAX_TEXT and not any(ord(c) < 32 for c in value)
    return True  # Any


def check_fields(cls: type, data: Any, what: str) -> dict[str, Any]:
    """``data`` if it holds every required field of dataclass ``cls`` with values of the right types."""
    if not isinstance(data, dict):
        raise BadInput(f"{what} must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise BadInput(f"{what} lacks {f.name!r}")
            continue
        if data[f.name] is None and f.default is not dataclasses.MISSING:
            continue  # null: the default (schema 1 wrote null for settings of other kinds)
        if not _conforms(data[f.name], hints[f.name]):
            raise BadInput(f"{what}.{f.name} has a value of the wrong type or range: {shown(data[f.name])}")
    return data


def check_int(value: Any, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadInput(f"{what} must be an integer in [{low}, {high}], got {shown(value)}")
    return value


def check_number(value: Any, what: str, low: float, high: float, low_open: bool = False) -> float:
    if not finite(value) or not (low < value if low_open else low <= value) or not value <= high:
        bracket = "(" if low_open else "["
        raise BadInput(f"{what} must be a number in {bracket}{low}, {high}], got {shown(value)}")
    return float(value)


def check_seed(value: Any, what: str = "--seed") -> int:
    """A seed jax.random.PRNGKey takes: an integer in [0, 2**63)."""
    return check_int(value, what, 0, SEED_LIMIT - 1)


def validate(meta: Any, path: Path, newest: int) -> dict[str, Any]:
    """``meta`` if it is a well-formed eslt meta record of schema 1..``newest``, else one :class:`BadInput` line."""
    if not isinstance(meta, dict) or meta.get("kind") not in ("ticket", "trained"):
        raise BadInput(f"{path}: meta lacks a valid kind (ticket or trained); not an eslt checkpoint")
    schema = meta.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise BadInput(f"{path}: meta lacks a valid schema number; not an eslt checkpoint")
    if schema > newest:
        raise BadInput(f"{path}: written with checkpoint schema {schema}, this eslt reads up to {newest}: upgrade eslt")
    where = f"{path}: meta"
    try:
        task = meta.get("task")
        if not isinstance(task, dict) or not isinstance(task.get("name"), str):
            raise BadInput("task must be a JSON object with a name")
        name = task["name"]
        if name.startswith("tfds:") and not TFDS.fullmatch(name):
            raise BadInput(f"task name {name[:80]!r} is not a tfds dataset name")
        if canonical_task(name) != name:
            raise BadInput(f"task name {name!r} is not a registry name")
        family = get_entry(name).family
        if task.get("kind", family) != family:
            raise BadInput(f"task.kind {str(task.get('kind'))[:40]!r} does not fit task {name} (a {family} task)")
        check_fields(TASK_KINDS[family], task, "task")
        settings.check_record(family, task, "task")
        model = meta.get("model")
        if not isinstance(model, dict):
            raise BadInput("model must be a JSON object")
        if MODEL_OF_KIND[get_entry(name).kind] != model.get("kind"):
            raise BadInput(f"model.kind {str(model.get('kind'))[:40]!r} does not fit task {name} "
                           f"(a {get_entry(name).kind} task)")  # fmt: skip
        check_fields(MODEL_KINDS[model["kind"]], model, "model")
        settings.check_record(model["kind"], model, "model")
        trainer = meta.get("trainer")
        if not isinstance(trainer, dict) or not isinstance(trainer.get("name", "es"), str) \
                or trainer.get("name", "es") not in TRAINER_KINDS:  # fmt: skip
            raise BadInput(f"trainer must be a JSON object naming one of {', '.join(TRAINER_KINDS)}")
        check_fields(TRAINER_KINDS[trainer.get("name", "es")], trainer, "trainer")
        settings.check_record(trainer.get("name", "es"), trainer, "trainer")
        if meta.get("metric") not in ("accuracy", "return"):
            raise BadInput(f"metric must be accuracy or return, got {str(meta.get('metric'))[:40]!r}")
        check_seed(meta.get("seed"), "seed")
        check_int(meta.get("level"), "level", 0, MAX_LEVEL)
        safe_name(meta.get("arm"), "arm")
        if meta.get("parent") is not None:
            safe_text(meta["parent"], "parent")
        lineage = meta.get("lineage", [])
        if not isinstance(lineage, list):
            raise BadInput("lineage must be a list of paths")
        for item in lineage:
            safe_text(item, "lineage entry")
        for k in ("sparsity", "fingerprint", "history", "run", "snr_stats", "permutation", "transfer"):
            if meta.get(k) is not None and not isinstance(meta[k], dict):
                raise BadInput(f"{k} must be a JSON object")
        sparsity = meta.get("sparsity")
        if not isinstance(sparsity, dict):
            raise BadInput("sparsity is missing")
        check_number(sparsity.get("global"), "sparsity.global", 0.0, 1.0)
        pruning = meta.get("pruning")
        if pruning is not None:
            if not isinstance(pruning, dict):
                raise BadInput("pruning must be a JSON object")
            check_number(pruning.get("keep", 1.0), "pruning.keep", 0.0, 1.0, low_open=True)
            check_number(pruning.get("rate", 0.5), "pruning.rate", 0.0, 1.0, low_open=True)
        if meta["kind"] == "trained":
            metrics = meta.get("metrics")
            if not isinstance(metrics, dict) or not all(isinstance(metrics.get(k), dict) for k in ("final", "best")):
                raise BadInput("metrics must hold final and best records")
            for k in ("final", "best"):
                value = metrics[k].get("metric")
                # NaN and infinity are read (figures show them as such); an integer no float holds is not.
                if value is not None and not (isinstance(value, float) or finite(value)):
                    raise BadInput(f"metrics.{k}.metric must be a number, got {shown(value)}")
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}; the checkpoint is damaged (or not eslt's): re-create it") from None
    return meta

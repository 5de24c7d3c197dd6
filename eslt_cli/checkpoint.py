"""The eslt checkpoint: one Orbax checkpoint directory, the only code that touches its layout.

Items (see README, "Checkpoint format"):

- ``state`` (Orbax pytree): ``init`` (level-0 initialisation, never changed by
  pruning) and ``mask`` (uint8 0/1), both flax param dicts; once trained also
  ``mean``, ``best`` and, for diagonal ES, ``std``.
- ``meta`` (Orbax JSON): ``schema``, ``kind`` (``ticket`` | ``trained``), specs,
  seed, level, sparsity, metrics, history, parent, lineage, eslt version.

A checkpoint is written into a hidden sibling folder and renamed into place, so
a crash never leaves a directory that :func:`load` accepts; an existing one is
replaced only with ``force`` (and only after the new one is complete).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import __version__
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.tasks.base import Params

SCHEMA = 1
KINDS = ("ticket", "trained")
STATE_KEYS = ("init", "mask", "mean", "best", "std")
_MARKERS = ("_CHECKPOINT_METADATA", "state", "meta")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: arrays in ``state`` (numpy), everything else in ``meta``."""

    path: Path
    state: dict[str, Params]
    meta: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])


def _checkpointer() -> Any:
    import orbax.checkpoint as ocp

    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` looks like a complete eslt checkpoint (cheap, no reading)."""
    return path.is_dir() and all((path / m).exists() for m in _MARKERS)


def read_meta(path: Path) -> dict[str, Any]:
    """The ``meta`` item of the checkpoint at ``path``, validated."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such checkpoint (check the path, or the command that should have written it)")
    if not is_checkpoint(path):
        raise BadInput(f"{path}: not an eslt checkpoint (no Orbax state/meta items); pass a folder written by eslt")
    meta_file = path / "meta" / "metadata"
    try:
        # Orbax's JsonCheckpointHandler stores the item as plain JSON in this file;
        # reading it directly is the same parse without starting Orbax's machinery.
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: unreadable meta ({type(exc).__name__}); the checkpoint is damaged, re-create it") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("schema"), int) or meta.get("kind") not in KINDS:
        raise BadInput(f"{path}: meta lacks a valid schema/kind; not an eslt checkpoint")
    if meta["schema"] > SCHEMA:
        raise BadInput(
            f"{path}: written with checkpoint schema {meta['schema']}, this eslt reads up to {SCHEMA}: upgrade eslt"
        )
    return meta


def load(path: Path | str) -> Checkpoint:
    """Load and validate the checkpoint at ``path``."""
    path = Path(path)
    meta = read_meta(path)
    import orbax.checkpoint as ocp

    try:
        restored = _checkpointer().restore(path.resolve(), ocp.args.Composite(state=ocp.args.StandardRestore()))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise BadInput(f"{path}: unreadable state ({type(exc).__name__}); the checkpoint is damaged, re-create it") from None
    state = {k: jax.tree.map(np.asarray, v) for k, v in dict(restored["state"]).items()}
    _validate(path, state, meta)
    return Checkpoint(path, state, meta)


def _validate(path: Path, state: dict[str, Params], meta: dict[str, Any]) -> None:
    missing = [k for k in ("init", "mask") if k not in state]
    if meta["kind"] == "trained":
        missing += [k for k in ("mean", "best") if k not in state]
    if missing:
        raise BadInput(f"{path}: state lacks {', '.join(missing)}; the checkpoint is damaged, re-create it")
    structure = jax.tree.structure(state["init"])
    for key, tree in state.items():
        if jax.tree.structure(tree) != structure or any(
            np.shape(a) != np.shape(b) for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(state["init"]))
        ):
            raise BadInput(f"{path}: state/{key} does not match the structure of state/init; damaged checkpoint")
    for leaf in jax.tree.leaves(state["mask"]):
        if not np.isin(leaf, (0, 1)).all():
            raise BadInput(f"{path}: mask holds values other than 0 and 1; damaged checkpoint")


def save(path: Path | str, state: dict[str, Params], meta: dict[str, Any], force: bool = False) -> Path:
    """Write a new checkpoint atomically at ``path`` and return its path.

    Refuses to replace an existing path unless ``force``; even then the old one
    is removed only once the new one is complete.
    """
    path = Path(path).absolute()
    if path.exists() and not force:
        raise BadInput(f"{path} exists: pass --force to replace it, or --out elsewhere")
    unknown = set(state) - set(STATE_KEYS)
    if unknown:
        raise ValueError(f"unknown state items {sorted(unknown)}")  # a programming error, not user input
    meta = {"schema": SCHEMA, **meta, "eslt_version": __version__}
    import orbax.checkpoint as ocp

    tmp = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: jax.tree.map(np.asarray, v) for k, v in state.items() if v is not None}
        _checkpointer().save(tmp, ocp.args.Composite(state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)))
        if path.exists():  # only reached with force
            trash = path.parent / f".{path.name}.replaced-{uuid.uuid4().hex[:8]}"
            os.rename(path, trash)
            os.rename(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, path)
    except OSError as exc:
        raise RunFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path

"""The eslt checkpoint: one Orbax checkpoint directory, the only code that touches its layout.

Items (see README, "Checkpoint format"):

- ``state`` (Orbax pytree): ``init`` (level-0 initialisation, never changed by
  pruning) and ``mask`` (uint8 0/1), both flax param dicts; once trained also
  ``mean``, ``best`` and, for diagonal ES, ``std``; control tasks with
  observation normalisation add ``obs_norm`` and ``obs_norm_best`` (the
  running ``count``/``mean``/``var`` the final and best means were tested with).
- ``meta`` (Orbax JSON): ``schema``, ``kind`` (``ticket`` | ``trained``), specs,
  seed, level, sparsity, metrics, history, parent, lineage, eslt version.

A checkpoint is written into a hidden sibling folder and renamed into place, so
a crash never leaves a directory that :func:`load` accepts; an existing one is
replaced only with ``force`` (and only after the new one is complete).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import __version__
from eslt_cli.errors import BadInput, Busy, RunFailed
from eslt_cli.tasks.base import Params

SCHEMA = 1
KINDS = ("ticket", "trained")
STATE_KEYS = ("init", "mask", "mean", "best", "std", "obs_norm", "obs_norm_best")
NORM_KEYS = ("obs_norm", "obs_norm_best")  # observation normalisers: {count, mean, var}, not param trees
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


def _process_options() -> Any:
    """Orbax multiprocessing options for this process alone.

    In a multi-host run only process 0 writes (see :func:`is_writer`); telling
    Orbax so keeps it from waiting at barriers for processes that never save.
    """
    import orbax.checkpoint as ocp

    me = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})


def is_writer() -> bool:
    """Whether this process writes results (the only one, or process 0 of a multi-host run)."""
    return jax.process_index() == 0


def _checkpointer() -> Any:
    import orbax.checkpoint as ocp

    options = _process_options()
    # The composite handler syncs processes on its own: it needs the options too.
    handler = ocp.CompositeCheckpointHandler(composite_options=ocp.CompositeOptions(multiprocessing_options=options))
    return ocp.Checkpointer(handler, multiprocessing_options=options)


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` looks like a complete eslt checkpoint (cheap, no reading)."""
    return path.is_dir() and all((path / m).exists() for m in _MARKERS)


def find(folder: Path) -> list[Path]:
    """``folder`` if it is a checkpoint, else the checkpoints below it, sorted.

    Hidden folders (in-progress writes, resume snapshots) are skipped, and a
    checkpoint's own items are never searched.
    """
    found = []
    for root, dirs, _ in os.walk(folder):
        here = Path(root)
        if is_checkpoint(here):
            found.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found)


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
        raise BadInput(
            f"{path}: unreadable meta ({type(exc).__name__}); the checkpoint is damaged, re-create it"
        ) from None
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
        raise BadInput(
            f"{path}: unreadable state ({type(exc).__name__}); the checkpoint is damaged, re-create it"
        ) from None
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
    for key in NORM_KEYS:
        norm = state.get(key)
        if norm is not None and (
            not isinstance(norm, dict)
            or set(norm) != {"count", "mean", "var"}
            or np.shape(norm["mean"]) != np.shape(norm["var"])
        ):
            raise BadInput(f"{path}: state/{key} is not an observation normaliser; damaged checkpoint")
    for key, tree in state.items():
        if key in NORM_KEYS:
            continue
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


@contextlib.contextmanager
def lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` while it is being made.

    Two jobs on the same output (overlapping cron runs) cannot both write it:
    the second stops at once with :class:`Busy`. The lock file is a hidden
    sibling, ``.<name>.lock``, and is released when the process dies.
    """
    path = Path(path).absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.parent / f".{path.name}.lock", "a")
    except OSError as exc:
        raise RunFailed(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(
                f"another eslt process is writing {path}: wait for it to finish, or use --out elsewhere"
            ) from None
        yield


class ResumeStore:
    """Periodic snapshots of a training run, kept until its checkpoint is written.

    Lives in the hidden sibling folder ``.<name>.resume`` of the output and is
    managed by Orbax's ``CheckpointManager`` (atomic steps, the last two kept).
    A snapshot is only used by a run with the same fingerprint.
    """

    def __init__(self, out: Path | str, fingerprint: dict[str, Any], read_only: bool = False):
        out = Path(out).absolute()
        self.folder = out.parent / f".{out.name}.resume"
        self.fingerprint = fingerprint
        self.read_only = read_only  # non-writing processes of a multi-host run only resume
        self._manager: Any = None

    def _open(self) -> Any:
        if self._manager is None:
            import orbax.checkpoint as ocp

            # Orbax refuses create=True with active_processes: make the folder here.
            self.folder.mkdir(parents=True, exist_ok=True)
            options = ocp.CheckpointManagerOptions(
                max_to_keep=2,
                enable_async_checkpointing=False,
                create=False,
                multiprocessing_options=_process_options(),
            )
            self._manager = ocp.CheckpointManager(self.folder, options=options)
        return self._manager

    def latest(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(arrays, info) of the newest snapshot made with this fingerprint, else None."""
        if not self.folder.exists():
            return None
        import orbax.checkpoint as ocp

        try:
            manager = self._open()
            step = manager.latest_step()
            if step is None:
                return None
            info = manager.restore(step, args=ocp.args.Composite(info=ocp.args.JsonRestore()))["info"]
            if info.get("fingerprint") != self.fingerprint:
                self.clear()  # a snapshot of other settings: not resumable, and nobody's result
                return None
            arrays = manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore()))["arrays"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadInput(
                f"{self.folder}: unreadable resume state ({type(exc).__name__}): delete it to start over"
            ) from None
        return jax.tree.map(np.asarray, dict(arrays)), dict(info)

    def save(self, step: int, arrays: dict[str, Any], info: dict[str, Any]) -> None:
        if self.read_only:
            return
        import orbax.checkpoint as ocp

        manager = self._open()
        manager.save(
            step,
            args=ocp.args.Composite(
                arrays=ocp.args.StandardSave(jax.tree.map(np.asarray, arrays)),
                info=ocp.args.JsonSave({**info, "fingerprint": self.fingerprint}),
            ),
            force=True,
        )
        manager.wait_until_finished()

    def clear(self) -> None:
        if self.read_only:
            return
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        shutil.rmtree(self.folder, ignore_errors=True)

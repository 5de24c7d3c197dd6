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

import asyncio
import errno
import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import __version__, errors, outputs, paths, schema
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.meta import Meta, parse
from eslt_cli.specs import MLPSpec, ModelSpec
from eslt_cli.tasks.base import Params, same_structure

SCHEMA = 2  # 2: typed settings records (a kind or name tag, only the fields that apply), digests
KINDS = ("ticket", "trained")
STATE_KEYS = ("init", "mask", "mean", "best", "std", "std_best", "obs_norm", "obs_norm_best")
NORM_KEYS = ("obs_norm", "obs_norm_best")  # observation normalisers: {count, mean, var}, not param trees
_MARKERS = ("_CHECKPOINT_METADATA", "state", "meta")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: arrays in ``state`` (numpy), its meta as stored (JSON) in ``meta`` and
    parsed in :attr:`record`, which is what eslt reads."""

    path: Path
    state: dict[str, Params]
    meta: dict[str, Any]
    record: Meta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "record", parse(self.meta))  # frozen: set once, here

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def digest(self) -> str:
        """What identifies this checkpoint's content: stored at save (schema 2), else computed from it."""
        return self.record.digest or digest(self.state, self.record.fingerprint)


def digest(state: dict[str, Params], fingerprint: Any) -> str:
    """A SHA-256 of a checkpoint's arrays and the settings that made them (its fingerprint).

    Results derived from a checkpoint record this digest, so a parent re-made
    with other settings or other weights at the same path is told apart.
    """
    h = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode())
    for key in sorted(state):
        if state[key] is None:
            continue
        for where, leaf in jax.tree_util.tree_flatten_with_path(state[key])[0]:
            a = np.ascontiguousarray(np.asarray(leaf))
            h.update(f"{key}{jax.tree_util.keystr(where)}:{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()[:32]


class _DrainingLoop(asyncio.SelectorEventLoop):
    """An event loop that lets its outstanding tasks finish before it closes.

    Orbax runs each save and restore in a fresh event loop that it closes as soon
    as the operation returns. When one TensorStore read or write fails (a
    truncated state file, a full disk), ``asyncio.gather`` returns that error at
    once while the operation's other reads are still in flight; they complete
    later on TensorStore's threads and call back into the closed loop, which
    prints "RuntimeError: Event loop is closed" tracebacks at random moments
    (measured: 1369 in 30 failed restores; none with this loop). Draining the
    loop's remaining tasks before closing it removes the cause.
    """

    def close(self) -> None:
        if not self.is_closed() and not self.is_running():
            pending = [t for t in asyncio.all_tasks(self) if not t.done()]
            if pending:
                self.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        super().close()


class _DrainingPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _DrainingLoop()


def _ocp() -> Any:
    """``orbax.checkpoint``, imported on first use (it is slow to import), with draining event loops."""
    if not isinstance(asyncio.get_event_loop_policy(), _DrainingPolicy):
        asyncio.set_event_loop_policy(_DrainingPolicy())
    import orbax.checkpoint as ocp

    return ocp


def _failure(exc: BaseException) -> str:
    """What went wrong in an Orbax write, in a few words (disk full is the common case)."""
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "RESOURCE_EXHAUSTED" in text or "No space" in text:
        return "no space left on device"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {text.splitlines()[0][:160] if text else ''}"


def parent_record(parent: Checkpoint | None) -> dict[str, Any]:
    """How a fingerprint names its parent: by content alone, so a re-made parent invalidates its
    children and a run folder moved or copied elsewhere is still up to date."""
    if parent is None:
        return {"parent": None}
    return {"parent_digest": parent.digest}


def identity(fingerprint: Any) -> Any:
    """A fingerprint as compared for reuse: the parent named by its digest, not by where it lay.

    Checkpoints written before run folders became portable also recorded the
    parent's absolute path; it is dropped here (convert on read), so they are
    still reused wherever the folder now lies.
    """
    if isinstance(fingerprint, dict) and "parent_digest" in fingerprint:
        return {k: v for k, v in fingerprint.items() if k != "parent"}
    return fingerprint


def ancestors(path: Path, meta: Meta) -> list[Path]:
    """Every checkpoint the one at ``path`` derives from, nearest first: its parent links followed
    as far as they lead (and its recorded lineage), stopping at a missing parent or a cycle."""
    found: list[Path] = []
    seen = {Path(path).absolute().resolve()}
    here, record = Path(path), meta
    while record.parent is not None:
        parent = paths.follow(here, record.parent)
        key = parent.resolve()
        if key in seen:
            break
        seen.add(key)
        found.append(parent)
        if not is_checkpoint(parent):
            break
        try:
            here, record = parent, read_record(parent)
        except BadInput:
            break
    for item in meta.lineage:
        entry = paths.follow(path, item)
        if entry.resolve() not in seen:
            seen.add(entry.resolve())
            found.append(entry)
    return found


def _process_options() -> Any:
    """Orbax multiprocessing options for this process alone.

    In a multi-host run only process 0 writes (see :func:`is_writer`); telling
    Orbax so keeps it from waiting at barriers for processes that never save.
    """
    ocp = _ocp()
    me = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})


def is_writer() -> bool:
    """Whether this process writes results (the only one, or process 0 of a multi-host run)."""
    return jax.process_index() == 0


def _checkpointer() -> Any:
    ocp = _ocp()
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


MAX_META_BYTES = 64 << 20  # a meta record is a few kB; anything near this is not eslt's


def read_meta(path: Path) -> dict[str, Any]:
    """The ``meta`` item of the checkpoint at ``path``, validated against :mod:`eslt_cli.schema`."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such checkpoint (check the path, or the command that should have written it)")
    if not is_checkpoint(path):
        raise BadInput(f"{path}: not an eslt checkpoint (no Orbax state/meta items); pass a folder written by eslt")
    meta_file = path / "meta" / "metadata"
    try:
        # Orbax's JsonCheckpointHandler reads the item (a plain, synchronous read of this file). A FIFO or
        # device planted there would block it or never end: regular files of bounded size only.
        info = meta_file.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_META_BYTES:
            raise BadInput(f"{path}: meta/metadata is not a regular file of at most 64 MiB; damaged checkpoint")
        meta = _ocp().JsonCheckpointHandler(filename=meta_file.name).restore(meta_file.parent.absolute())
    except PermissionError:
        raise BadInput(f"{path}: cannot read meta/metadata: permission denied (check the file's permissions)") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: meta/metadata is not UTF-8 text; the checkpoint is damaged, re-create it") from None
    except json.JSONDecodeError:
        raise BadInput(f"{path}: meta/metadata is not valid JSON; the checkpoint is damaged, re-create it") from None
    except ValueError:  # json's other ValueError: an integer past Python's int-string limit (4300 digits)
        raise BadInput(f"{path}: meta/metadata holds an integer too long to read (over 4300 digits); "
                       "the checkpoint is damaged, re-create it") from None  # fmt: skip
    except (OSError, RecursionError) as exc:
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise BadInput(f"{path}: cannot read meta/metadata ({what})") from None
    return schema.validate(meta, path, SCHEMA)


def read_record(path: Path) -> Meta:
    """The ``meta`` of the checkpoint at ``path``, validated and parsed."""
    return parse(read_meta(path))


def load(path: Path | str) -> Checkpoint:
    """Load and validate the checkpoint at ``path``."""
    path = Path(path)
    meta = read_meta(path)
    ocp = _ocp()
    checkpointer = _checkpointer()
    try:
        restored = checkpointer.restore(path.resolve(), ocp.args.Composite(state=ocp.args.StandardRestore()))
    except PermissionError:
        raise BadInput(f"{path}: cannot read state: permission denied (check the files' permissions)") from None
    except Exception as exc:  # Orbax and TensorStore raise many types for damaged arrays
        raise BadInput(
            f"{path}: unreadable state ({type(exc).__name__}); the checkpoint is damaged, re-create it"
        ) from None
    finally:
        checkpointer.close()  # joins Orbax's threads, so none reports a closed event loop at exit
    state = {k: jax.tree.map(np.asarray, v) for k, v in dict(restored["state"]).items()}
    checkpoint = Checkpoint(path, state, meta)
    record = checkpoint.record
    _validate(path, state, record)
    # The arrays must be the ones the digest was made of (schema 2 stores it; schema 1 has none):
    # a state/ copied from another run, or changed bytes, is refused here, before anything uses it.
    if record.digest is not None and digest(state, record.fingerprint) != record.digest:
        raise BadInput(f"{path}: its arrays do not match the digest in its meta (state/ was changed or copied "
                       "from another checkpoint); the checkpoint is damaged, re-create it")  # fmt: skip
    return checkpoint


def _validate(path: Path, state: dict[str, Params], meta: Meta) -> None:
    missing = [k for k in ("init", "mask") if k not in state]
    if meta.kind == "trained":
        missing += [k for k in ("mean", "best") if k not in state]
    if missing:
        raise BadInput(f"{path}: state lacks {', '.join(missing)}; the checkpoint is damaged, re-create it")
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
        if not same_structure(tree, state["init"]) or any(
            np.shape(a) != np.shape(b) for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(state["init"]))
        ):
            raise BadInput(f"{path}: state/{key} does not match the structure of state/init; damaged checkpoint")
    for leaf in jax.tree.leaves(state["mask"]):
        if not np.isin(leaf, (0, 1)).all():
            raise BadInput(f"{path}: mask holds values other than 0 and 1; damaged checkpoint")
    want = _layer_widths(meta.model)
    if not (isinstance(state["init"], dict) and _fits(want, state["init"])):
        raise BadInput(f"{path}: its arrays do not fit the {meta.model.kind} its meta describes "
                       "(layer names or widths differ); damaged checkpoint")  # fmt: skip


def _layer_widths(model: ModelSpec) -> dict[str, tuple[int | None, int | None]]:
    """Per layer of the network ``model`` describes, in order: its width (None: the task's output
    size) and its conv kernel size (None: a dense layer).

    Only what the model record fixes; input and output sizes depend on the task's
    data or environment, which the digest and training check.
    """
    if isinstance(model, MLPSpec):
        return {f"hidden{i}": (int(w), None) for i, w in enumerate(model.hidden)} | {"out": (None, None)}
    return {f"conv{i}": (int(w), model.kernel_size) for i, w in enumerate(model.features)} | {"dense": (None, None)}


def _fits(want: dict[str, tuple[int | None, int | None]], init: dict[str, Any]) -> bool:
    """Whether ``init``'s layers have the names and shapes of ``want``, each fed by the one before."""
    if set(init) != set(want):
        return False
    previous: int | None = None
    for name, (width, size) in want.items():
        layer = init[name]
        if not isinstance(layer, dict) or set(layer) != {"kernel", "bias"}:
            return False
        kernel, bias = np.shape(layer["kernel"]), np.shape(layer["bias"])
        if len(kernel) != (2 if size is None else 4) or bias != kernel[-1:]:
            return False
        if (width is not None and kernel[-1] != width) or (size is not None and kernel[:2] != (size, size)):
            return False
        # Each layer is fed by the one before; the dense layer after convs sees the flattened image: not checked.
        chained = size is not None or name.startswith("hidden") or name == "out"
        if previous is not None and chained and kernel[-2] != previous:
            return False
        previous = kernel[-1]
    return True


def replaceable(path: Path) -> None:
    """Refuse to let ``--force`` replace ``path`` unless it is an eslt checkpoint (nothing eslt did not write)."""
    if path.is_symlink() or not is_checkpoint(path):
        raise BadInput(
            f"{path} exists and is not an eslt checkpoint: --force replaces only eslt checkpoints; "
            "move it away or choose another --out"
        )


def _remove_stale(path: Path) -> None:
    """Remove in-progress writes of ``path`` left by a killed process (the caller holds its lock).

    Orbax writes into ``<tmp>.orbax-checkpoint-tmp*`` before renaming, hence the glob.
    """
    for stale in paths.leftovers(path):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def save(path: Path | str, state: dict[str, Params], meta: dict[str, Any], force: bool = False) -> Path:
    """Write a new checkpoint atomically at ``path`` and return its path.

    Refuses to replace an existing path unless ``force`` and it is an eslt
    checkpoint; even then the old one is removed only once the new one is
    complete. ``meta`` gains ``schema``, ``eslt_version`` and the content ``digest``.
    """
    path = Path(path).absolute()
    errors.check_interrupted()
    paths.check_out(path)
    if path.exists() or path.is_symlink():
        if not force:
            raise BadInput(f"{path} exists: pass --force to replace it, or --out elsewhere")
        replaceable(path)
    unknown = set(state) - set(STATE_KEYS)
    if unknown:
        raise ValueError(f"unknown state items {sorted(unknown)}")  # a programming error, not user input
    arrays = {k: jax.tree.map(np.asarray, v) for k, v in state.items() if v is not None}
    meta = {"schema": SCHEMA, **meta, "eslt_version": __version__, "digest": digest(arrays, meta.get("fingerprint"))}
    ocp = _ocp()

    tmp = paths.partial(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path)
        checkpointer = _checkpointer()
        try:
            checkpointer.save(
                tmp, ocp.args.Composite(state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta))
            )
        except Exception as exc:  # TensorStore reports a full disk as ValueError(RESOURCE_EXHAUSTED), Orbax as OSError
            raise RunFailed(f"cannot write {path}: {_failure(exc)}") from None
        finally:
            checkpointer.close()
        outputs.place(tmp, path)
    except OSError as exc:
        raise RunFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        for partial in path.parent.glob(f"{tmp.name}*"):
            shutil.rmtree(partial, ignore_errors=True)
    return path


class ResumeStore:
    """Periodic snapshots of a training run, kept until its checkpoint is written.

    Lives in the hidden sibling folder ``.<name>.resume`` of the output and is
    managed by Orbax's ``CheckpointManager`` (atomic steps, the last two kept).
    A snapshot is only used by a run with the same fingerprint.
    """

    def __init__(self, out: Path | str, fingerprint: dict[str, Any], read_only: bool = False):
        out = Path(out).absolute()
        self.folder = paths.resume_folder(out)
        self.fingerprint = fingerprint
        self.read_only = read_only  # non-writing processes of a multi-host run only resume
        self._manager: Any = None

    def _open(self) -> Any:
        if self._manager is None:
            ocp = _ocp()
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
        ocp = _ocp()
        try:
            manager = self._open()
            step = manager.latest_step()
            if step is None:
                return None
            info = manager.restore(step, args=ocp.args.Composite(info=ocp.args.JsonRestore()))["info"]
            if identity(info.get("fingerprint")) != identity(self.fingerprint):
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
        ocp = _ocp()
        try:
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
        except Exception as exc:  # as in save(): a full disk comes as OSError or ValueError(RESOURCE_EXHAUSTED)
            raise RunFailed(f"cannot write the resume snapshot {self.folder}: {_failure(exc)}") from None

    def clear(self) -> None:
        if self.read_only:
            return
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        shutil.rmtree(self.folder, ignore_errors=True)

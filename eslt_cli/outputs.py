"""Outputs: atomic writes, locks and the ``--force`` rule (checkpoints, figures, surfaces); bounded file inputs.

Every output is made into a hidden sibling and moved into place by :func:`place` (a checkpoint
folder, swapped with the old one under ``--force``) or :func:`write_atomic` (a plain file), under
the output's :func:`lock`, so a crash leaves the old output or the new one, never half of one.

Inputs: :func:`read_regular` opens a path without blocking, refuses anything but a regular file
(a FIFO, a device or a socket would block or never end) and reads at most a given size, so every
file input is one error line at worst, never a hang.

Outputs and the ``--force`` rule, proven by content: beside every figure (``eslt plot``) and
surface (``eslt sharpness --2d``) it writes, eslt keeps a hidden record ``.<name>.eslt`` (JSON:
``eslt_output``, ``kind``, ``name``, ``sha256``, ``bytes``, ``eslt``) holding the file's SHA-256.
``--force`` replaces such a file only while it is a regular file whose SHA-256 is the recorded one:
a user's file (even one that embeds an eslt figure), an eslt file edited since, or one written
before eslt kept records, is refused with a line saying to remove it by hand. An output is also
never an input of the command, nor inside an input checkpoint.

:func:`write_atomic` writes such an output: into a hidden temporary beside it, flushed to disk,
renamed into place, then its record; a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from eslt_cli import __version__, paths
from eslt_cli.errors import BadInput, Busy, RunFailed

RECORD_TAG = "eslt_output"
MAX_RECORD_BYTES = 1 << 16
MAX_OUTPUT_BYTES = 1 << 30  # far above any figure or surface eslt writes; a bigger file is not eslt's


def _size(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 else f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def read_regular(path: Path, limit: int, what: str = "") -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``limit`` of them.

    Opened non-blocking, so a FIFO is refused instead of waiting for a writer; a FIFO, device,
    socket or folder, a file over ``limit`` bytes or an unreadable one is one :class:`BadInput`.
    ``what`` names the input in the message (default: the path).
    """
    name = what or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInput(f"{name}: no such file (check the path)") from None
    except OSError as exc:
        raise BadInput(f"{name}: cannot open it ({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO, device or socket"
            raise BadInput(f"{name} is {kind}, not a regular file: eslt reads plain files only")
        if info.st_size > limit:
            raise BadInput(f"{name} is larger than {_size(limit)} ({_size(info.st_size)}): not a file eslt wrote")
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise BadInput(f"{name}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if len(data) > limit:  # grew while being read
        raise BadInput(f"{name} is larger than {_size(limit)}: not a file eslt wrote")
    return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_record(out: Path) -> dict[str, Any] | None:
    """The record beside ``out`` if it is one eslt wrote for that name, else None (absent or foreign)."""
    rec = paths.record_file(Path(out))
    try:
        info = rec.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
        return None
    try:
        data = json.loads(rec.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get(RECORD_TAG) != 1 or data.get("name") != Path(out).name:
        return None
    if not isinstance(data.get("sha256"), str) or not isinstance(data.get("kind"), str):
        return None
    return data


def _why_not_ours(out: Path, kind: str) -> str | None:
    """None if ``out`` is a ``kind`` eslt wrote and nobody changed since, else what stands against it."""
    try:
        info = out.lstat()
    except OSError:
        return "cannot be examined"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if not paths.record_file(Path(out)).exists() and not paths.record_file(Path(out)).is_symlink():
        return f"has no record of eslt writing it ({paths.record_file(Path(out)).name}; older eslt versions kept none)"
    rec = _read_record(out)
    if rec is None:
        return f"has a record {paths.record_file(Path(out)).name} that eslt did not write"
    if rec["kind"] != kind:
        return f"is recorded as an eslt {rec['kind']}, not a {kind}"
    if info.st_size > MAX_OUTPUT_BYTES or rec.get("bytes") != info.st_size:
        return "has changed since eslt wrote it"
    try:
        if _sha256(out) != rec["sha256"]:
            return "has changed since eslt wrote it"
    except OSError:
        return "cannot be read"
    return None


def is_ours(out: Path, kind: str) -> bool:
    """Whether ``out`` is a ``kind`` (figure, surface) eslt wrote, unchanged since (its record's SHA-256)."""
    return _why_not_ours(Path(out), kind) is None


def check_inputs(out: Path, inputs: Iterable[Path], flag: str) -> None:
    """Refuse an output that is one of ``inputs`` or lies inside an input folder (a checkpoint, say)."""
    target = Path(out).absolute().resolve()
    for given in inputs:
        source = Path(given).absolute().resolve()
        if target == source:
            raise BadInput(f"{flag} {out} is an input of this command ({given}): choose another path")
        if source in target.parents:
            raise BadInput(f"{flag} {out} is inside the input {given}: written checkpoints are never changed; "
                           "choose a path outside it")  # fmt: skip


def check_replace(out: Path, kind: str, force: bool, flag: str, inputs: Iterable[Path] = ()) -> None:
    """Refuse to write ``out`` unless it is new, or ``force`` and :func:`is_ours` (checked before any work).

    ``kind`` (figure, surface) must be what the record says; ``flag`` names the option in messages;
    ``inputs`` are the command's input files and folders (see :func:`check_inputs`).
    """
    out = Path(out)
    if any(c in str(out) for c in "\n\r\0"):
        raise BadInput(f"{flag} {str(out)[:80]!r} holds a line break: the next step of a pipe could not read it")
    check_inputs(out, inputs, flag)
    if out.is_dir():
        raise BadInput(f"{flag} {out} is a folder: give a file name")
    rec = paths.record_file(Path(out))
    if (rec.exists() or rec.is_symlink()) and _read_record(out) is None:
        raise BadInput(f"{rec} exists and is not a record eslt wrote: move it away, or choose another {flag}")
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise BadInput(f"{out} exists: pass --force to replace it (if eslt wrote it), or {flag} elsewhere")
    why = _why_not_ours(out, kind)
    if why is not None:
        raise BadInput(f"{out} {why}: --force replaces only a {kind} eslt wrote, unchanged since; "
                       f"if it may go, remove it by hand (rm {str(out)!r}), or choose another {flag}")  # fmt: skip


def remember(out: Path, kind: str) -> None:
    """Write the record of ``out`` (just written by eslt as a ``kind``) atomically beside it."""
    out = Path(out)
    rec = paths.record_file(Path(out))
    tmp = rec.parent / f"{rec.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        body = {RECORD_TAG: 1, "kind": kind, "name": out.name, "sha256": _sha256(out),
                "bytes": out.stat().st_size, "eslt": __version__}  # fmt: skip
        tmp.write_text(json.dumps(body) + "\n")
        os.replace(tmp, rec)
    except OSError as exc:
        raise RunFailed(f"{out} was written, but not its record {rec.name} ({exc.strerror or exc}): "
                        "--force will not replace it") from None  # fmt: skip
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_atomic(out: Path, kind: str, write: Callable[[Path], object]) -> Path:
    """Write the ``kind`` (figure, surface) ``out`` through ``write(tmp)`` atomically, then its record.

    ``tmp`` is a hidden sibling ending in the suffix of ``out`` (libraries pick formats by it); it is
    flushed to disk and renamed over ``out``, and removed if anything fails. Check ``out`` with
    :func:`check_replace` first: this replaces whatever is there.
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFailed(f"cannot create the folder of {out}: {exc.strerror or exc}") from None
    tmp = paths.partial(out, out.suffix)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise RunFailed(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    remember(out, kind)
    return out


def place(tmp: Path, out: Path) -> None:
    """Move the complete output ``tmp`` (a checkpoint folder) into place at ``out``: an existing ``out``
    (only reached under ``--force``, checked by the caller) is renamed aside first and removed once the
    new one is in place, so ``out`` always holds a whole output."""
    if out.exists():
        trash = paths.replaced(out)
        os.rename(out, trash)
        os.rename(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, out)


@contextlib.contextmanager
def lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` while it is being made.

    Two jobs on the same output (overlapping cron runs) cannot both write it:
    the second stops at once with :class:`Busy`. The lock file is a hidden
    sibling, ``.<name>.lock``, opened without following symlinks; it is
    released when the process dies and removed on exit, together with the
    folders made for it when nothing was written there.
    """
    path = Path(path).absolute()
    made = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
    lock_file = paths.lock_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        _remove_empty(made)
        why = "a symlink is planted there" if exc.errno == errno.ELOOP else exc.strerror or exc
        raise RunFailed(f"cannot make the lock file {lock_file}: {why}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(
                f"another eslt process is writing {path}: wait for it to finish, or use --out elsewhere"
            ) from None
        # The holder before us may have removed the file after we opened it: then ours is stale.
        if os.fstat(fd).st_ino != _inode(lock_file):
            raise Busy(f"another eslt process has just written {path}: run the command again")
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock_file)
            if not path.exists():
                _remove_empty(made)
    finally:
        os.close(fd)


def _inode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) that this process made and that are still empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()

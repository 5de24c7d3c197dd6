"""Every name eslt derives, and the rules a path must keep (DESIGN: one owner for the disk layout's names).

Run folders ``<root>/<task>-<optimiser>-seed<seed>``, holding ``L00-trained``,
``L01-snr``, ``L01-snr-trained``, ...; permuted and transferred tickets beside
their input; surfaces beside their checkpoint; figures in the working folder.
Hidden siblings of an output: ``.<name>.lock`` (its lock), ``.<name>.resume``
(training snapshots), ``.<name>.partial-*`` (a write in progress),
``.<name>.replaced-*`` (the old output during a ``--force`` swap) and
``.<name>.eslt`` (the record of a figure or surface eslt wrote).

The rules: a derived path stays inside its folder (:func:`inside`); an output
is one line of text and never an input, inside one or above one
(:func:`check_out`); links between checkpoints are relative to the holder's
folder (:func:`link`, :func:`follow`), so run folders move.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from eslt_cli.errors import BadInput
from eslt_cli.schema import safe_name


def inside(path: Path, folder: Path) -> Path:
    """``path`` (absolute) if it resolves to a place inside ``folder``: derived paths never leave their root."""
    path = Path(path).absolute()
    if Path(folder).absolute().resolve() not in path.resolve().parents:
        raise BadInput(f"derived path {path} leaves {folder}: pass --out explicitly")
    return path


def _beside(path: Path, name: str) -> Path:
    """``name`` in ``path``'s folder, checked to stay there."""
    return inside(path.parent / name, path.parent)


def run_folder(root: Path, task: str, optimiser: str, seed: int) -> Path:
    """The folder that holds every level and arm of one IMP run (``optimiser``: the ES or gradient trainer)."""
    name = safe_name(f"{task.replace(':', '-').replace('/', '-')}-{optimiser}-seed{seed}", "run folder")
    return inside(root / name, root)


def level0(root: Path, task: str, optimiser: str, seed: int) -> Path:
    """A fresh run's trained dense network."""
    return run_folder(root, task, optimiser, seed) / "L00-trained"


def ticket(trained: Path, level: int, arm: str) -> Path:
    """The ticket of ``level`` and ``arm`` pruned from the trained checkpoint at ``trained``."""
    return _beside(trained, f"L{level:02d}-{arm}")


def trained(ticket: Path) -> Path:
    """Where the ticket at ``ticket`` is trained to."""
    return _beside(ticket, f"{ticket.name}-trained")


def permuted(ticket: Path, variant: str, seed: int) -> Path:
    """The ticket at ``ticket`` with its weights or mask permuted by ``seed``."""
    return _beside(ticket, f"{ticket.name}-perm-{variant}-s{seed}")


def transferred(ticket: Path, target: str) -> Path:
    """The ticket at ``ticket`` retargeted to a task, strategy or trainer named ``target``."""
    return _beside(ticket, f"{ticket.name}-to-{target.replace(':', '-').replace('/', '-')}")


def surface(checkpoint: Path, seed: int) -> Path:
    """A checkpoint's 2D loss surface: ``<name>-surface-seed<seed>.npz`` beside (not inside) it."""
    checkpoint = Path(checkpoint).resolve()
    return checkpoint.parent / f"{checkpoint.name}-surface-seed{seed}.npz"


def figure(kind: str) -> Path:
    """A figure's default file, in the working folder."""
    return Path(f"{kind}.png")


def lock_file(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def resume_folder(out: Path) -> Path:
    return out.parent / f".{out.name}.resume"


def record_file(out: Path) -> Path:
    """The record of a figure or surface eslt wrote (see :mod:`eslt_cli.outputs`)."""
    return out.parent / f".{out.name}.eslt"


def partial(out: Path, suffix: str = "") -> Path:
    """A fresh hidden sibling to write ``out`` into before renaming it into place."""
    return out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}{suffix}"


def replaced(out: Path) -> Path:
    """Where an output replaced with ``--force`` waits while the new one is renamed into place."""
    return out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"


def leftovers(out: Path) -> list[Path]:
    """In-progress writes and swaps of ``out`` left by a killed process."""
    return [*out.parent.glob(f".{out.name}.partial-*"), *out.parent.glob(f".{out.name}.replaced-*")]


def check_out(out: Path, inputs: Iterable[Path] = ()) -> Path:
    """``out`` if it may be written: one line of text, not equal to, inside or above an input."""
    text = str(out)
    if any(c in text for c in "\n\r\0"):
        raise BadInput(f"output path {text[:80]!r} holds a line break: the next step of a pipe could not read it")
    target = Path(out).absolute().resolve()
    for given in inputs:
        source = Path(given).absolute().resolve()
        if target == source or source in target.parents:
            raise BadInput(f"--out {out} is {'the input' if target == source else 'inside the input'} {given}: "
                           f"choose a path outside it")  # fmt: skip
        if target in source.parents:
            raise BadInput(f"--out {out} holds the input {given}: choose a path that does not contain it")
    return out


def link(target: Path, holder: Path) -> str:
    """How the checkpoint at ``holder`` names ``target`` (its parent, an ancestor): a path relative to
    ``holder``'s folder, so the pair can move together."""
    return os.path.relpath(Path(target).absolute().resolve(), Path(holder).absolute().parent.resolve())


def follow(holder: Path, text: str) -> Path:
    """The path a link stored in ``holder``'s meta names (relative to ``holder``'s folder; older
    checkpoints stored absolute paths, kept as they are)."""
    return Path(os.path.normpath(Path(holder).absolute().parent / text))

"""``eslt show``: list checkpoints, their settings, sparsity and metrics."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from eslt_cli import paths
from eslt_cli.cli import common
from eslt_cli.errors import BadInput
from eslt_cli.meta import Meta

HELP = """Show checkpoints: a table on stderr, their paths (or --json records) on stdout.

PATHS are checkpoints or folders searched recursively for checkpoints; with
none given, paths are read from stdin (one per line). --json writes one JSON
object per checkpoint (its path and meta, without the bulky history unless
--history); --lineage lists each checkpoint's ancestors from level 0 first.

Example:

\b
  eslt show eslt-runs/
  eslt show --lineage --json eslt-runs/fashion_mnist-snes-seed0/L03-snr-trained
"""


def find_checkpoints(path: Path) -> list[Path]:
    """``path`` if it is a checkpoint, else the checkpoints below it (hidden folders skipped), sorted."""
    from eslt_cli import checkpoint as ckpt

    if not path.exists():
        raise BadInput(f"{path}: no such checkpoint or folder (check the path)")
    if not path.is_dir():
        raise BadInput(f"{path}: not an eslt checkpoint; pass a checkpoint folder or a folder of runs")
    found = ckpt.find(path)
    if not found:
        raise BadInput(f"{path}: holds no eslt checkpoints (folders with _CHECKPOINT_METADATA, meta and state)")
    return found


def lineage(path: Path, meta: Meta) -> list[tuple[Path, Meta]]:
    """The chain of ``parent`` links ending at ``path``, level 0 first; stops (with a note) at a missing parent."""
    from eslt_cli import checkpoint as ckpt

    chain = [(path, meta)]
    seen = {path.resolve()}
    while chain[0][1].parent:
        parent = paths.follow(chain[0][0], str(chain[0][1].parent))
        if parent.resolve() in seen:
            common.say(f"eslt: warning: {chain[0][0]}: its parent links form a cycle at {parent}; lineage cut there")
            break
        if not ckpt.is_checkpoint(parent):
            common.say(f"eslt: warning: {chain[0][0]}: parent {parent} is missing (moved or deleted?)")
            break
        seen.add(parent.resolve())
        chain.insert(0, (parent, ckpt.read_record(parent)))
    return chain


def _short(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` (else to the working folder) where that is shorter."""
    absolute = str(path.absolute())
    options = [absolute]
    for start in ([base] if base is not None else []) + [Path.cwd()]:
        with contextlib.suppress(ValueError):  # another drive (Windows): no relative path
            options.append(os.path.relpath(absolute, start))
    return min(options, key=len)


def _common_base(paths: list[Path]) -> Path | None:
    """The deepest folder holding every path's folder, when there are several paths."""
    if len(paths) < 2:
        return None
    try:
        return Path(os.path.commonpath([str(p.absolute().parent) for p in paths]))
    except ValueError:
        return None


def _metric(meta: Meta, which: str) -> str:
    value = meta.test_metric(which)
    return "-" if value is None else f"{value:.4g}"


def _row(path: Path, meta: Meta, base: Path | None) -> list[str]:
    return [
        _short(path, base),
        meta.kind,
        meta.task.name,
        meta.optimiser,
        str(meta.seed),
        str(meta.level),
        meta.arm,
        f"{meta.sparsity.pruned:.1%}",
        _metric(meta, "final"),
        _metric(meta, "best"),
        "-" if not meta.parent else Path(meta.parent).name,
    ]


def _breaks_lines(path: Path) -> bool:
    """Whether ``path``, printed as a line of data, would come out as more than one line."""
    return any(c in str(path.absolute()) for c in "\n\r")


def _paths_from_stdin() -> list[str]:
    if sys.stdin is None or sys.stdin.isatty():
        raise BadInput("no checkpoints: give paths or folders, or pipe paths on stdin")
    lines = common.stdin_lines()
    if not lines:
        raise BadInput("empty stdin: expected checkpoint paths (did the previous command fail?)")
    return lines


def show(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Checkpoints or folders; absent: read stdin.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per checkpoint on stdout.")] = False,
    history: Annotated[bool, typer.Option("--history", help="Keep the training history in --json.")] = False,
    with_lineage: Annotated[bool, typer.Option("--lineage", help="Also list ancestors, level 0 first.")] = False,
) -> None:
    from eslt_cli import checkpoint as ckpt

    given = paths if paths else [common.path_of(line) for line in _paths_from_stdin()]
    found: list[tuple[Path, bool]] = []  # (checkpoint, named itself rather than found in a folder)
    for arg in given:
        found += [(c, c == Path(arg)) for c in find_checkpoints(Path(arg))]
    rows: list[tuple[Path, Meta]] = []
    listed: set[str] = set()
    for path, named in found:
        if not as_json and _breaks_lines(path):
            message = f"{str(path)!r}: its path holds a line break, which stdout's one path per line cannot carry"
            if named:
                raise BadInput(f"{message}: rename it, or use --json")
            common.say(f"eslt: warning: {message} (skipped; --json lists it)")
            continue
        try:
            meta = ckpt.load(path).record  # arrays checked against the digest it reports
        except BadInput as exc:
            if named:
                raise
            common.say(f"eslt: warning: {exc} (skipped)")  # one damaged run must not hide the others
            continue
        for p, m in lineage(path, meta) if with_lineage else [(path, meta)]:
            if not as_json and _breaks_lines(p):
                common.say(f"eslt: warning: ancestor {str(p)!r}: its path holds a line break (skipped; see --json)")
                continue
            key = str(p.resolve())
            if key not in listed:
                listed.add(key)
                rows.append((p, m))
    if not common.QUIET:
        from rich.table import Table

        base = _common_base([p for p, _ in rows])
        table = Table(title=None if base is None else f"under {_short(base, None)}", title_justify="left")
        for col in ("path", "kind", "task", "optimiser", "seed", "level", "arm", "sparsity", "final", "best", "parent"):
            table.add_column(col, justify="right" if col in ("seed", "level", "sparsity", "final", "best") else "left")
        for p, m in rows:
            table.add_row(*_row(p, m, base))
        if common.console.is_terminal:
            common.console.print(table)
        else:  # logs and pipes get the whole table, not one squeezed to 80 columns
            width = common.console.width
            common.console.width = max(width, 200)
            try:
                common.console.print(table)
            finally:
                common.console.width = width
    for p, m in rows:
        if as_json:
            record = {k: v for k, v in m.raw.items() if history or k != "history"}
            common.data_line(json.dumps({"path": str(p.absolute()), **record}))
        else:
            common.data_line(str(p.absolute()))


show.__doc__ = HELP

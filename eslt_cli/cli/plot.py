"""``eslt plot``: a figure from checkpoints, ``eslt lmc``/``eslt sharpness`` output or 2D surfaces."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from eslt_cli import figures
from eslt_cli import paths as layout  # `paths` is this command's argument
from eslt_cli.cli import common
from eslt_cli.errors import BadInput

KINDS = list(figures.FIGURES)
HELP = f"""Draw a figure and print its path on stdout.

KIND is one of:

\b
{figures.kinds_help()}

Each input (argument, or line on stdin when no argument is given) is a
checkpoint folder, a folder searched recursively for checkpoints (e.g. a runs
root), a .jsonl/.json file of JSON records, an .npz surface or, on stdin, a
JSON record itself. Only checkpoint meta is read, never arrays.

With --json, stdout is one JSON line instead of the path: path, kind, format,
reads (what the kind reads), inputs (checkpoints, records and surfaces read),
drawn (how many of them the figure shows), series (its lines, heatmaps or
surfaces, by label), panels (their titles) and warnings (how many).

Examples:

\b
  eslt plot sparsity eslt-runs --out sparsity.png
  eslt lmc A B | eslt plot lmc --out lmc.pdf
"""


def plot(
    kind: Annotated[str, typer.Argument(help=f"{', '.join(KINDS[:-1])} or {KINDS[-1]}.", autocompletion=lambda: KINDS)],
    paths: Annotated[
        Optional[list[str]], typer.Argument(help="Checkpoints, folders, .jsonl/.json, .npz; '-' or absent: read stdin.")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Figure file: .png, .svg or .pdf [./KIND.png].")] = None,
    which: Annotated[str, typer.Option(help="sparsity: the final or the best test-scoring ES mean.")] = "final",
    dpi: Annotated[int, typer.Option(help="Resolution of .png figures (dots per inch).")] = 100,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --out figure that eslt drew and nobody changed since.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON line (path, kind, inputs, series drawn) instead of the path.")
    ] = False,
) -> None:
    figure = figures.get(kind)
    options = figures.Options(which=which, dpi=dpi)
    target = out if out is not None else layout.figure(kind)
    figures.check_out(target, force)  # early: before reading any input (checked again against the inputs)
    lines: list[str] = []
    dash = "-" in (paths or [])
    paths = [p for p in paths or [] if p != "-"]
    if dash or (not paths and sys.stdin is not None and not sys.stdin.isatty()):
        lines = common.stdin_lines()
    if not paths and not any(line.strip() for line in lines):
        raise BadInput(f"no inputs: {kind} needs {figure.needs}; give paths, or pipe them (or JSON lines) on stdin")
    # Deferred for start-up time: reading checkpoints imports JAX, drawing matplotlib.
    from eslt_cli.figures import drawing, inputs

    got = inputs.collect(paths, lines)
    summary = drawing.render(figure, got, target, options, force)
    for warning in got.warnings:
        common.say(f"eslt: warning: {warning}")
    common.say(f"{kind}: wrote {target} ({got.describe()})")
    common.emit(target.absolute(), as_json, figures.as_json(kind, target, got.counts(), summary, len(got.warnings)))


plot.__doc__ = HELP

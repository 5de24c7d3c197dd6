"""``eslt plot``: a figure from checkpoints, ``eslt lmc``/``eslt sharpness`` output or 2D surfaces."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from eslt_cli.cli import common

HELP = """Draw a figure and print its path on stdout.

KIND is one of:

\b
  sparsity   test metric vs remaining weights, a line per arm (mean ± std
             over seeds), a panel per task       <- trained checkpoints
  curves     population fitness and test metric vs generation
                                                 <- trained checkpoints
  layers     remaining weights per layer vs level <- checkpoints
  snr        |mean|-SNR Pearson/Spearman correlation vs level
                                                 <- tickets from prune
  lmc        error barrier heatmap over level pairs, or barrier vs level
             and error along the path            <- `eslt lmc` JSON lines
  sharpness  curvature vs remaining weights, a line per trainer
                                                 <- `eslt sharpness` lines
  surface    filled contours of 2D loss surfaces <- `eslt sharpness --2d`
             lines or its .npz files

Each input (argument, or line on stdin when no argument is given) is a
checkpoint folder, a folder searched recursively for checkpoints (e.g. a runs
root), a .jsonl/.json file of JSON records, an .npz surface or, on stdin, a
JSON record itself. Only checkpoint meta is read, never arrays.

Examples:

\b
  eslt plot sparsity eslt-runs --out sparsity.png
  eslt lmc A B | eslt plot lmc --out lmc.pdf
"""


def plot(
    kind: Annotated[str, typer.Argument(help="sparsity, curves, layers, snr, lmc, sharpness or surface.")],
    paths: Annotated[
        Optional[list[str]], typer.Argument(help="Checkpoints, folders, .jsonl/.json, .npz; '-' or absent: read stdin.")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Figure file: .png, .svg or .pdf [./KIND.png].")] = None,
    which: Annotated[str, typer.Option(help="sparsity: the final or the best test-scoring ES mean.")] = "final",
    dpi: Annotated[int, typer.Option(help="Resolution of .png figures (dots per inch).")] = 100,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --out figure that eslt drew and nobody changed since.")
    ] = False,
) -> None:
    from eslt_cli import plotting
    from eslt_cli.errors import BadInput

    if kind not in plotting.PLOTS:
        raise BadInput(f"unknown plot kind {kind!r}: choose one of {', '.join(plotting.PLOTS)}")
    if not 10 <= dpi <= 2400:
        raise BadInput(f"--dpi must be in [10, 2400], got {dpi}")
    if which not in plotting.WHICH:
        raise BadInput(f"--which {which!r}: choose final or best")
    target = out if out is not None else Path(f"{kind}.png")
    plotting.check_out(target, force)  # early: before reading any input (checked again against the inputs)
    lines: list[str] = []
    dash = "-" in (paths or [])
    paths = [p for p in paths or [] if p != "-"]
    if dash or (not paths and sys.stdin is not None and not sys.stdin.isatty()):
        lines = common.stdin_lines()
    if not paths and not any(line.strip() for line in lines):
        raise BadInput(
            f"no inputs: {kind} needs {plotting.NEEDS[kind]}; give paths, or pipe them (or JSON lines) on stdin"
        )
    inputs = plotting.collect(paths, lines)
    path = plotting.plot(kind, inputs, target, which=which, dpi=dpi, force=force)
    for warning in inputs.warnings:
        common.say(f"eslt: warning: {warning}")
    common.say(f"{kind}: wrote {path} ({inputs.describe()})")
    common.data_line(str(path.absolute()), f"{path} was written, but ")


plot.__doc__ = HELP

"""Figure registry: :data:`FIGURES` holds one :class:`Figure` per kind of ``eslt plot``.

Each kind is drawn by ``draw(inputs, canvas, options) -> Summary`` in its own module,
``eslt_cli/figures/<kind>.py``; :mod:`.inputs` gathers what the figures read (checkpoints' meta,
``eslt lmc`` / ``eslt sharpness`` records, ``.npz`` surfaces), :mod:`.labels` names and groups runs
and records, and :mod:`.drawing` holds the canvas, the shared drawing helpers and the write.
The command's choices and help, its man page and the README's table of kinds come from
:data:`FIGURES`: adding a kind is adding its module and one entry here.

This module stays light (the command line imports it at start-up for its help): a kind's module,
with numpy and matplotlib, is imported when it draws, so ``eslt show`` or ``eslt prune`` never
load matplotlib.
"""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eslt_cli import outputs
from eslt_cli.errors import BadInput

Source = Literal["checkpoints", "lmc", "sharpness", "surfaces"]
"""What a figure reads: checkpoints (their meta), ``eslt lmc`` or ``eslt sharpness`` records, ``.npz`` surfaces."""

WHICH = ("final", "best")
SUFFIXES = (".png", ".svg", ".pdf")
DPI = (10, 2400)


@dataclass(frozen=True)
class Options:
    """The settings every kind is drawn with (checked when made)."""

    which: str = "final"  # sparsity: the final or the best test-scoring ES mean
    dpi: int = 100  # resolution of .png figures

    def __post_init__(self) -> None:
        if not DPI[0] <= self.dpi <= DPI[1]:
            raise BadInput(f"--dpi must be in [{DPI[0]}, {DPI[1]}], got {self.dpi}")
        if self.which not in WHICH:
            raise BadInput(f"--which {self.which!r}: choose final or best")


@dataclass(frozen=True)
class Summary:
    """What a figure drew: how many of its inputs (checkpoints, records or surfaces), its series
    (lines, heatmaps, surfaces, by legend label, in drawing order) and its panels' titles."""

    drawn: int
    series: tuple[str, ...] = ()
    panels: tuple[str, ...] = ()


Draw = Callable[..., Summary]
"""``draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary``; a kind with nothing it can
draw raises a one-line :class:`~eslt_cli.errors.BadInput` saying what it needs, before drawing."""


@dataclass(frozen=True)
class Figure:
    """One kind of figure: its name, what it reads, what to give it (for messages) and one line of help."""

    name: str
    reads: tuple[Source, ...]
    needs: str
    help: str

    @property
    def draw(self) -> Draw:
        """The ``draw`` of ``eslt_cli/figures/<name>.py``, imported now (numpy, matplotlib)."""
        fn: Draw = importlib.import_module(f"{__name__}.{self.name}").draw
        return fn


FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("sparsity", ("checkpoints",), "trained checkpoints or run folders",
           "test metric vs remaining weights, a line per arm (mean ± std over seeds), a panel per task"),
    Figure("curves", ("checkpoints",), "trained checkpoints",
           "population fitness and test metric vs generation, a line per checkpoint"),
    Figure("layers", ("checkpoints",), "checkpoints or run folders",
           "remaining weights per layer vs level (mean ± std over seeds), a panel per arm"),
    Figure("snr", ("checkpoints",), "tickets pruned from diagonal-ES checkpoints",
           "|mean|-SNR Pearson and Spearman correlation vs level, a line per arm"),
    Figure("lmc", ("lmc",), "`eslt lmc` JSON lines",
           "error barrier heatmap over level pairs, or barrier vs level and error along the path"),
    Figure("sharpness", ("sharpness",), "`eslt sharpness` JSON lines",
           "curvature vs remaining weights, a line per trainer and arm, and the 1D loss profiles"),
    Figure("surface", ("sharpness", "surfaces"), "`eslt sharpness --2d` JSON lines or its .npz",
           "filled contours of 2D loss surfaces, side by side"),
)}  # fmt: skip


def get(kind: str) -> Figure:
    """The entry of ``kind``; an unknown one is a :class:`BadInput` listing the kinds."""
    if kind not in FIGURES:
        raise BadInput(f"unknown plot kind {kind!r}: choose one of {', '.join(FIGURES)}")
    return FIGURES[kind]


def check_format(out: Path) -> None:
    """Refuse an output path whose suffix is not a figure format."""
    if Path(out).suffix.lower() not in SUFFIXES:
        raise BadInput(f"--out {out}: unknown figure format '{Path(out).suffix}'; end the name with .png, .svg or .pdf")


def check_out(out: Path, force: bool = False, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output path with an unknown suffix, or one :func:`eslt_cli.outputs.check_replace` refuses.

    An existing file is replaced only with ``force``, and only when eslt drew it and nobody
    changed it since (its ``.<name>.eslt`` record, see :mod:`eslt_cli.outputs`); never an input.
    """
    check_format(out)
    outputs.check_replace(Path(out), "figure", force, "--out", inputs)


def kinds_help(width: int = 76) -> str:
    """The kinds for ``eslt plot --help`` (a block click keeps as written): name, help, ``<-`` what it reads."""
    lines = []
    for f in FIGURES.values():
        text = textwrap.wrap(f.help, width - 13)
        needs = f"<- {f.needs}"
        if len(text[-1]) + 2 + len(needs) <= width - 13:
            text[-1] += f"  {needs}"
        else:
            text.append(needs)
        lines += [f"  {f.name:<10} {text[0]}", *(f"{'':13}{t}" for t in text[1:])]
    return "\n".join(lines)


def readme_table() -> str:
    """The README's table of kinds (scripts/gen_docs.py writes it between its markers)."""
    rows = ["| kind | draws | from |", "| --- | --- | --- |"]
    cell = lambda text: text.replace("|", "\\|")  # |mean| is not a column
    rows += [f"| `{f.name}` | {cell(f.help)} | {cell(f.needs)} |" for f in FIGURES.values()]
    return "\n".join(rows)


def as_json(kind: str, out: Path, counts: dict[str, int], summary: Summary, warnings: int) -> dict[str, Any]:
    """What ``eslt plot --json`` prints after the figure's path: the kind, format, inputs read and drawn."""
    return {"kind": kind, "format": Path(out).suffix.lower()[1:], "reads": list(get(kind).reads), "inputs": counts,
            "drawn": summary.drawn, "series": list(summary.series), "panels": list(summary.panels),
            "warnings": warnings}  # fmt: skip

"""The canvas a figure draws on, the helpers the kinds share, and :func:`render`, which writes it.

matplotlib draws with the non-interactive Agg backend. A figure is written atomically by
:func:`eslt_cli.outputs.write_atomic` (with its record, so ``--force`` may replace it later) as PNG,
SVG or PDF by the suffix of its path, labelled ``eslt-figure`` in its metadata: a label, not a proof.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from eslt_cli import outputs
from eslt_cli.figures import Figure, Options, Summary, check_out
from eslt_cli.figures.inputs import Inputs

MARK = "eslt-figure"  # written into every figure's metadata (PNG text, SVG/PDF creator): a label, not a proof
STYLES = ("-", "--", ":", "-.")  # line styles that tell groups apart where colour shows the level


class Canvas:
    """The matplotlib figure of one ``eslt plot``, made once its kind knows how many panels it needs."""

    def __init__(self) -> None:
        self.fig: Any = None

    def panels(self, n: int, width: float = 5.0, height: float = 3.6, max_cols: int = 3) -> list[Any]:
        """``n`` axes on a grid of at most ``max_cols`` columns, each ``width`` x ``height`` inches."""
        cols = min(n, max_cols)
        rows = math.ceil(n / cols)
        self.fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                                      layout="constrained")  # fmt: skip
        flat = list(axes.flat)
        for ax in flat[n:]:
            ax.set_visible(False)
        return flat[:n]

    def titles(self) -> tuple[str, ...]:
        """The titles of the panels drawn (colour bars have none)."""
        fig = self.fig
        return tuple(
            ax.get_title() for ax in (fig.axes if fig is not None else []) if ax.get_visible() and ax.get_title()
        )

    def close(self) -> None:
        if self.fig is not None:
            plt.close(self.fig)
            self.fig = None


def render(figure: Figure, inputs: Inputs, out: Path, options: Options, force: bool = False) -> Summary:
    """Draw ``figure`` from ``inputs`` into ``out`` (an existing ``out`` only with ``force``, see
    :func:`eslt_cli.figures.check_out`, checked before any drawing).

    Points a figure shows specially (non-finite metrics) are listed in ``inputs.warnings``.
    """
    out = Path(out)
    check_out(out, force, inputs.paths())
    canvas = Canvas()
    try:
        summary = figure.draw(inputs, canvas, options)
        fmt = out.suffix.lower()[1:]
        mark = {"Software" if fmt == "png" else "Creator": MARK}

        def write(tmp: Path) -> None:
            canvas.fig.savefig(tmp, dpi=options.dpi, format=fmt, bbox_inches="tight", metadata=mark)

        outputs.write_atomic(out, "figure", write)
        return dataclasses.replace(summary, panels=canvas.titles())
    finally:
        canvas.close()


# --------------------------------------------------------------------------- helpers


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std()) if arr.size > 1 else 0.0


def band(ax: Any, x: Sequence[float], mean: Sequence[float], std: Sequence[float], label: str, **kw: Any) -> None:
    """A line of means with a shaded ± std band (where any std is positive)."""
    xs, m, s = (np.asarray(v, dtype=float) for v in (x, mean, std))
    (line,) = ax.plot(xs, m, marker="o", ms=4, label=label, **kw)
    if np.any(s > 0):
        ax.fill_between(xs, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)


def band_of(ax: Any, samples: dict[Any, list[float]], label: str, reverse: bool = False) -> list[Any]:
    """Mean ± std of ``samples`` (x -> values) as a band, x sorted; returns the x values."""
    xs = sorted(samples, reverse=reverse)
    ms = [mean_std(samples[x]) for x in xs]
    band(ax, xs, [a for a, _ in ms], [b for _, b in ms], label)
    return xs


def mark_non_finite(ax: Any, xs: Sequence[float], label: str) -> None:
    """Red crosses at the bottom edge of ``ax`` at ``xs``: NaN, infinite or missing values, shown, not dropped."""
    if not xs:
        return
    ax.plot(list(xs), [0.03] * len(xs), ls="none", marker="x", color="red", ms=7, mew=1.5, clip_on=False,
            transform=blended_transform_factory(ax.transData, ax.transAxes), label=label)  # fmt: skip


def legend(ax: Any, **kw: Any) -> None:
    """A legend, when something on ``ax`` has a label (matplotlib warns on stderr otherwise)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def plain_log(axis: Any) -> None:
    """Plain numbers (100, 50, 12.5) on a log axis instead of powers of ten; no minor labels."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def remaining_axis(ax: Any, xs: Iterable[float]) -> None:
    """Log x axis of remaining weights in percent, decreasing to the right as in the paper."""
    xs = sorted({round(x, 3) for x in xs if x > 0}, reverse=True)
    ax.set_xscale("log")
    if xs:
        lo, hi = xs[-1], xs[0]
        ax.set_xlim(hi * 1.12, lo / 1.12)  # inverted: sparser to the right
        if len(xs) <= 8:
            ticks = [x for i, x in enumerate(xs) if i == 0 or xs[i - 1] / x > 1.15]  # no crowded labels
        else:
            ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if lo / 1.12 <= t <= hi * 1.12]
        ax.set_xticks(ticks)
    plain_log(ax.xaxis)
    ax.set_xlabel("remaining weights (%, log scale)")


def integer_x(ax: Any) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def shade(levels: Sequence[int], level: int, top: float = 0.9) -> Any:
    """The colour of ``level`` among ``levels``: viridis from the first (dark) to ``top`` of the map."""
    return plt.get_cmap("viridis")(levels.index(level) / max(len(levels) - 1, 1) * top)


def style(names: Sequence[str], name: str) -> str:
    """The line style of group ``name`` among ``names``."""
    return STYLES[names.index(name) % len(STYLES)]


def level_key(ax: Any, levels: Sequence[int], names: Sequence[str], top: float = 0.9) -> None:
    """Legend entries for lines coloured by level (:func:`shade`) and styled by group (:func:`style`)."""
    for lvl in levels:
        ax.plot([], [], color=shade(levels, lvl, top), label=f"level {lvl}")
    if len(names) > 1:
        for n in names:
            ax.plot([], [], color="gray", ls=style(names, n), label=n)

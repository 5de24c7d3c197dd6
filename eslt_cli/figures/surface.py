"""``surface``: filled contours of 2D loss surfaces, side by side (paper SI Figure 10).

The surfaces are the ``.npz`` files named by ``eslt sharpness --2d`` records, or given directly;
all are read and checked before drawing. Non-finite grid points are left blank and marked ×,
and named in a warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eslt_cli.errors import BadInput
from eslt_cli.figures import Options, Summary, drawing, labels
from eslt_cli.figures.drawing import Canvas
from eslt_cli.figures.inputs import SURFACE_HINT, Inputs, load_surface, surface_path


def draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary:
    panels: list[tuple[str, Path]] = []
    for r in inputs.records:
        if r.get("kind") == "sharpness":
            p = surface_path(r)
            if p is not None:
                title = f"{r.get('task')} {labels.trainer_label(r)}, level {r.get('level')}"
                remaining = labels.remaining_of(r.get("sparsity", 0.0))
                panels.append((title + f" ({remaining:.3g}% left)", p))
    panels += [(p.stem, p) for p in inputs.surfaces]
    if not panels:
        raise BadInput(f"{SURFACE_HINT}; got {inputs.describe()}")
    for _, p in panels:
        if not p.exists():
            raise BadInput(f"{p}: surface file not found (moved?); {SURFACE_HINT}")
    grids = [load_surface(p) for _, p in panels]  # all checked before drawing
    for (_, p), g in zip(panels, grids):
        if not np.isfinite(np.asarray(g["loss"], dtype=float)).any():
            raise BadInput(f"{p}: every loss on the grid is NaN or Infinity: nothing to draw (try a smaller --radius)")
    for ax, (title, p), s in zip(canvas.panels(len(panels), width=4.4, height=3.9, max_cols=4), panels, grids):
        a, b, loss = s["alpha"], s["beta"], np.asarray(s["loss"], dtype=float)
        bad = ~np.isfinite(loss)
        if bad.any():  # shown as such: blank in the contours, a cross on each such grid point
            inputs.warnings.append(f"{p}: {int(bad.sum())} of {bad.size} grid points have a non-finite loss; "
                                   "left blank and marked ×")  # fmt: skip
            ii, jj = np.nonzero(bad)
            ax.plot(b[jj], a[ii], ls="none", marker="x", color="red", ms=5, label="non-finite loss")
        cs = ax.contourf(b, a, np.ma.masked_invalid(loss), levels=20, cmap="viridis")
        ax.contour(b, a, np.ma.masked_invalid(loss), levels=10, colors="white", linewidths=0.4, alpha=0.6)
        ax.plot([0], [0], marker="*", color="red", ms=10, label="trained optimum")
        ax.set_xlabel("β (second random direction)")
        ax.set_ylabel("α (first random direction)")
        ax.set_title(title, fontsize="medium")
        drawing.legend(ax, fontsize="small", loc="upper right")
        canvas.fig.colorbar(cs, ax=ax, label="test loss", shrink=0.85)
    return Summary(len(panels), tuple(title for title, _ in panels))

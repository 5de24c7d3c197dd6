"""``sharpness``: curvature of the test loss along random directions vs remaining weights, and the
1D loss profiles, from ``eslt sharpness`` records (paper Figure 6, bottom).

A panel per task with a line per trainer (ES strategy or GD) and arm, mean ± std over directions
and runs; a last panel with the mean profile per line and level (colour: level, style: line).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from eslt_cli.figures import Options, Summary, drawing, labels
from eslt_cli.figures.drawing import Canvas
from eslt_cli.figures.inputs import Inputs


def draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary:
    recs = [r for r in inputs.records if r.get("kind") == "sharpness"]
    if not recs:
        raise inputs.missing("sharpness", "`eslt sharpness` output (JSON lines with kind 'sharpness')")
    tasks = sorted({str(r.get("task")) for r in recs})
    arms = labels.arms_by(recs, labels.trainer_label, lambda r: r.get("arm"))
    axes = canvas.panels(len(tasks) + 1)
    series = []
    for ax, task in zip(axes, tasks):
        groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in recs:
            if str(r.get("task")) != task:
                continue
            x = labels.remaining_of(r.get("sparsity", 0.0))
            vals = r.get("curvature") or ([r["curvature_mean"]] if r.get("curvature_mean") is not None else [])
            if not vals:
                inputs.warnings.append(f"{r.get('_where', 'a sharpness record')}: no curvature; "
                                       "not in the curvature panel")  # fmt: skip
                continue
            for name in labels.arm_groups(labels.trainer_label(r), r.get("arm"), arms):
                groups[name][round(x, 6)].extend(float(v) for v in vals)
        xs_all = []
        for name, pts in sorted(groups.items()):
            xs_all += drawing.band_of(ax, pts, name, reverse=True)
            series.append(name)
        drawing.remaining_axis(ax, xs_all)
        ax.set_ylabel("curvature d²loss/dt² (quadratic fit)")
        ax.set_title(f"{task}: sharpness of the optimum")
        ax.grid(alpha=0.3)
        drawing.legend(ax, fontsize="small", title="mean ± std over directions, runs", title_fontsize="small")
    _profiles(axes[-1], recs, arms)
    return Summary(len(recs), tuple(series))


def _profiles(ax: Any, recs: list[dict[str, Any]], arms: dict[str, list[str]]) -> None:
    """Mean 1D loss profile per line and level: over directions, then over the runs of one line and level."""
    levels = sorted({int(r.get("level") or 0) for r in recs})

    def line_of(r: dict[str, Any]) -> str:  # a level 0 joins its base's line when the base has one arm
        names = labels.arm_groups(labels.trainer_label(r), r.get("arm"), arms)
        return names[0] if len(names) == 1 else labels.trainer_label(r)

    names = sorted({line_of(r) for r in recs})
    profiles: dict[tuple[str, int, tuple[float, ...]], list[np.ndarray]] = defaultdict(list)
    for r in recs:
        t, loss = r.get("t"), r.get("loss")
        if not t or not loss:
            continue
        arr = np.asarray(loss, dtype=float)
        profiles[(line_of(r), int(r.get("level") or 0), tuple(float(v) for v in t))].append(
            arr.mean(axis=0) if arr.ndim == 2 else arr
        )
    for (name, lvl, t), curves in sorted(profiles.items()):
        ax.plot(t, np.mean(curves, axis=0), color=drawing.shade(levels, lvl), ls=drawing.style(names, name), lw=1.3)
    drawing.level_key(ax, levels, names)
    ax.set_xlabel("perturbation strength t (along a random direction)")
    ax.set_ylabel("test loss (mean over directions and runs)")
    ax.set_title("1D loss projections")
    ax.grid(alpha=0.3)
    drawing.legend(ax, fontsize="small")

"""``sparsity``: test metric vs remaining weights, a line per arm (mean ± std over seeds), a panel per task.

The paper's Figures 1-3. Level-0 dense runs start every arm's curve of their optimiser; alone,
they are its "dense" curve. A NaN, infinite or missing metric is left out of the mean, marked ×
and named in a warning.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from eslt_cli.figures import Options, Summary, drawing, labels
from eslt_cli.figures.drawing import Canvas
from eslt_cli.figures.inputs import Inputs


def draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary:
    which = options.which
    trained = [c for c in inputs.checkpoints if c.meta.kind == "trained" and c.meta.metrics.get(which)]
    if not trained:
        raise inputs.missing("sparsity", "trained checkpoints (from `eslt train`) of one or more pruning runs")
    tasks = sorted({c.meta.task.name for c in trained})
    series = []
    for ax, task in zip(canvas.panels(len(tasks)), tasks):
        here = [c for c in trained if c.meta.task.name == task]
        methods = sorted({c.meta.optimiser for c in here})
        # (method, arm) -> level -> [(remaining %, metric)]
        points: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
        dense: dict[str, list[tuple[float, float]]] = defaultdict(list)
        non_finite: list[float] = []
        for c in here:
            value = c.meta.metrics[which].get("metric")
            if value is None or not math.isfinite(value):  # shown, never dropped silently
                non_finite.append(c.meta.sparsity.remaining_pct())
                inputs.warnings.append(labels.left_out(c.path, c.meta, f"{which} test metric", value))
                continue
            pt = (c.meta.sparsity.remaining_pct(), float(value))
            if c.meta.level == 0:
                dense[c.meta.optimiser].append(pt)
            else:
                points[(c.meta.optimiser, c.meta.arm)][c.meta.level].append(pt)
        for m in methods:  # level-0 dense runs start every arm's curve; alone, they are the "dense" curve
            if dense.get(m) and not any(k[0] == m for k in points):
                points[(m, "dense")][0] = dense[m]
            elif dense.get(m):
                for key in [k for k in points if k[0] == m]:
                    points[key][0] = dense[m]
        xs_all = []
        for (m, arm), levels in sorted(points.items()):
            lv = sorted(levels)
            x = [float(np.mean([p[0] for p in levels[k]])) for k in lv]
            ms = [drawing.mean_std([p[1] for p in levels[k]]) for k in lv]
            seeds = max(len(levels[k]) for k in lv)
            label = (f"{m} {arm}" if len(methods) > 1 else arm) + (f" (n={seeds})" if seeds > 1 else "")
            drawing.band(ax, x, [a for a, _ in ms], [b for _, b in ms], label)
            series.append(label)
            xs_all += x
        drawing.mark_non_finite(ax, non_finite, f"{which} metric NaN or missing (not in the mean)")
        drawing.remaining_axis(ax, xs_all + non_finite)
        ax.set_ylabel(labels.metric_label(here[0].meta.metric))
        ax.set_title(f"{task}: {which} ES mean" + (f" ({methods[0]})" if len(methods) == 1 else ""))
        ax.grid(alpha=0.3)
        drawing.legend(ax, fontsize="small", title="arm (mean ± std over seeds)", title_fontsize="small")
    return Summary(len(trained), tuple(series))

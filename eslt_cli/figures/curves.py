"""``curves``: population mean fitness and test metric vs generation, a line per trained checkpoint.

Colour is the level, line style the arm. Control tasks' fitness is the negative return, drawn as
a return; non-finite values in a history are gaps in its curves, named in a warning.
"""

from __future__ import annotations

import numpy as np

from eslt_cli.figures import Options, Summary, drawing, labels
from eslt_cli.figures.drawing import Canvas
from eslt_cli.figures.inputs import Inputs


def draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary:
    cks = [c for c in inputs.checkpoints if c.meta.kind == "trained" and (c.meta.history or {}).get("fitness_mean")]
    if not cks:
        raise inputs.missing("curves", "trained checkpoints (from `eslt train`) with a training history")
    cks.sort(key=lambda c: (c.meta.task.name, c.meta.arm, c.meta.level, c.meta.seed))
    group = labels.grouping(c.meta for c in cks)
    metrics = {c.meta.metric for c in cks}
    levels = sorted({c.meta.level for c in cks})
    arms = sorted({c.meta.arm for c in cks})
    ax, ax2 = canvas.panels(2)
    series = []
    for c in cks:
        m = c.meta
        color = drawing.shade(levels, m.level)
        ls = drawing.style(arms, m.arm)
        prefix = group(m)
        label = f"{prefix + ' ' if prefix else ''}L{m.level} {m.arm} s{m.seed}"
        history = m.history or {}
        fit = np.asarray(history["fitness_mean"], dtype=float)
        ev = history.get("eval") or {}
        gaps = int(np.sum(~np.isfinite(fit))) + int(np.sum(~np.isfinite(np.asarray(ev.get("metric") or [], float))))
        if gaps:
            inputs.warnings.append(f"{c.path}: {gaps} non-finite value(s) in its training history "
                                   f"({labels.run_name(m)}): gaps in its curves")  # fmt: skip
        sign = -1.0 if m.metric == "return" else 1.0  # control fitness is the negative return
        ax.plot(np.arange(1, fit.size + 1), sign * fit, color=color, ls=ls, lw=1.1, label=label)
        if ev.get("generation"):
            ax2.plot(ev["generation"], ev["metric"], color=color, ls=ls, lw=1.1, marker=".", label=label)
        series.append(label)
    fit_label = "population mean return" if metrics == {"return"} else (
        "population mean loss (cross-entropy)" if metrics == {"accuracy"} else "population mean fitness")  # fmt: skip
    ax.set_ylabel(fit_label)
    ax.set_title("ES population during training")
    ax2.set_ylabel(labels.metric_label(metrics.pop()) if len(metrics) == 1 else "test metric")
    ax2.set_title("Test evaluation of the ES mean")
    for a in (ax, ax2):
        a.set_xlabel("generation")
        a.grid(alpha=0.3)
    ncol = 1 if len(cks) <= 10 else 2
    drawing.legend(ax2, fontsize="x-small", ncol=ncol, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                   title="level arm seed", title_fontsize="x-small")  # fmt: skip
    return Summary(len(cks), tuple(series))

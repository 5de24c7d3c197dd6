"""``snr``: Pearson and Spearman correlation of |mean| and SNR vs level, a line per arm (paper Figure 7).

Read from tickets' ``meta.snr_stats``, which ``eslt prune`` writes from a diagonal-ES checkpoint
(the scores of the trained level before). An undefined correlation (NaN: a constant |mean| or SNR)
is left out of the mean, marked × and named in a warning.
"""

from __future__ import annotations

import math
from collections import defaultdict

from eslt_cli.figures import Options, Summary, drawing, labels
from eslt_cli.figures.drawing import Canvas
from eslt_cli.figures.inputs import Inputs


def draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary:
    cks = [c for c in inputs.checkpoints if c.meta.snr_stats is not None]
    if not cks:
        raise inputs.missing(
            "snr", "tickets made by `eslt prune` from a diagonal-ES checkpoint (their meta holds snr_stats)"
        )
    group = labels.grouping(c.meta for c in cks)
    series = []
    for ax, key, name in zip(canvas.panels(2), ("pearson", "spearman"), ("Pearson", "Spearman")):
        groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        undefined: list[float] = []
        for c in cks:
            label = " ".join(s for s in (group(c.meta), c.meta.arm) if s)
            value = (c.meta.snr_stats or {}).get(key)
            if value is None or not math.isfinite(value):  # NaN: undefined (constant |mean| or SNR); shown
                undefined.append(c.meta.level)
                inputs.warnings.append(labels.left_out(c.path, c.meta, f"snr_stats.{key}", value))
                continue
            groups[label][c.meta.level].append(float(value))
        for label, levels in sorted(groups.items()):
            drawing.band_of(ax, levels, label)
            series.append(label)
        drawing.mark_non_finite(ax, undefined, "correlation undefined (NaN) or missing")
        drawing.integer_x(ax)
        ax.set_xlabel("level of the ticket (scores from the trained level before)")
        ax.set_ylabel(f"{name} correlation of |mean| and SNR")
        ax.set_title(f"Magnitude–SNR correlation ({name})")
        ax.grid(alpha=0.3)
        drawing.legend(ax, fontsize="small", title="arm (mean ± std over seeds)", title_fontsize="small")
    return Summary(len(cks), tuple(series))

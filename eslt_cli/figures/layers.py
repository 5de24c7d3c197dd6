"""``layers``: remaining weights per layer vs IMP level (mean ± std over seeds), a panel per arm.

Read from ``meta.sparsity.layers``; the ticket and the trained checkpoint of one level share a
mask, and level 0 starts every arm of its group (task and optimiser, where several are given).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from eslt_cli.figures import Options, Summary, drawing, labels
from eslt_cli.figures.drawing import Canvas
from eslt_cli.figures.inputs import Inputs
from eslt_cli.meta import Meta


def draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary:
    cks = [c for c in inputs.checkpoints if c.meta.sparsity.layers]
    if not cks:
        raise inputs.missing("layers", "checkpoints (tickets or trained) whose meta holds sparsity.layers")
    group = labels.grouping(c.meta for c in cks)
    # (group, arm) -> layer -> level -> {seed: remaining %}; tickets and trained of one level share a mask
    data: dict[tuple[str, str], dict[str, dict[int, dict[Any, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict))
    )

    def add(key: tuple[str, str], meta: Meta) -> None:
        for layer, st in meta.sparsity.layers.items():
            pct = 100.0 * float(st["remaining"]) / max(float(st["total"]), 1.0)
            data[key][layer][meta.level][meta.seed] = pct

    dense = [c for c in cks if c.meta.level == 0]
    for c in cks:
        if c.meta.level != 0:
            add((group(c.meta), c.meta.arm), c.meta)
    for c in dense:  # level 0 starts every arm of its group
        for key in [k for k in list(data) if k[0] == group(c.meta)] or [(group(c.meta), "dense")]:
            add(key, c.meta)
    panels = sorted(data)
    series = []
    for ax, key in zip(canvas.panels(len(panels)), panels):
        panel = " ".join(s for s in key if s)
        for layer, levels in data[key].items():
            lv = sorted(levels)
            ms = [drawing.mean_std(list(levels[k].values())) for k in lv]
            drawing.band(ax, lv, [a for a, _ in ms], [b for _, b in ms], layer)
            series.append(layer)
        ax.set_yscale("log")
        lows = [min(drawing.mean_std(list(v.values()))[0] for v in levels.values()) for levels in data[key].values()]
        ax.set_ylim(max(min(lows) / 1.5, 1e-3), 130)  # a band reaching 0 would stretch the log axis
        drawing.plain_log(ax.yaxis)
        drawing.integer_x(ax)
        ax.set_xlabel("IMP level")
        ax.set_ylabel("remaining weights in layer (%, log scale)")
        ax.set_title(f"{panel}: per-layer remaining weights")
        ax.grid(alpha=0.3, which="both")
        drawing.legend(ax, fontsize="small", title="layer", title_fontsize="small")
    return Summary(len(cks), tuple(series))

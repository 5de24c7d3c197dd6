"""``lmc``: linear mode connectivity from ``eslt lmc`` records (paper Figure 6, top).

Pairs of one seed at different levels give a heatmap of error barriers over level pairs (a panel
per strategy pair, and arm where several are given); pairs all at one level give the barrier vs
level and the error along the path. The barrier drawn is Frankle et al.'s (2020),
``max_α err(α) − (err(0) + err(1)) / 2`` (Section 5); old records are converted or refused by
:func:`barrier_record`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from eslt_cli.analysis.lmc import BARRIER_DEFINITION, barrier
from eslt_cli.errors import BadInput
from eslt_cli.figures import Options, Summary, drawing, labels
from eslt_cli.figures.drawing import Canvas
from eslt_cli.figures.inputs import Inputs

Record = dict[str, Any]


def _arm(r: Record) -> str | None:
    arms = sorted({str(a) for a in r.get("arms") or []} - {"dense"})
    return "/".join(arms) if arms else None


def _label(r: Record, many_tasks: bool) -> str:
    """A record's strategy pair (and task, when several are present)."""
    strategies = [str(s) for s in r.get("strategies") or []]
    label = " vs ".join(strategies) if len(set(strategies)) > 1 else (strategies[0] if strategies else "run")
    return f"{r.get('task')}: {label}" if many_tasks else label


def _groups(r: Record, many_tasks: bool, arms: Mapping[str, Sequence[str]]) -> list[str]:
    """The lines/panels a record belongs to: by strategy pair (and arm, when several arms are present)."""
    return labels.arm_groups(_label(r, many_tasks), _arm(r), arms)


def _error_label(records: Sequence[Record]) -> str:
    of = {str(r.get("error_of")) for r in records}
    if of == {"accuracy"}:
        return "test error (1 − accuracy)"
    if of == {"return"}:
        return "test error (−return)"
    return "test error"


def _record_name(r: Record) -> str:
    """How messages name a record: where it was read (file and record number, or stdin line), and its pair."""
    where = str(r.get("_where") or r.get("_source") or "a record")
    a, b = r.get("a"), r.get("b")
    pair = f" ({a} vs {b})" if isinstance(a, str) and isinstance(b, str) else ""
    return f"{where}: lmc record{pair}"


def barrier_record(r: Record) -> Record:
    """``r`` with ``barrier`` the Frankle et al. (2020) barrier, whichever eslt wrote it.

    Records without ``barrier_definition`` predate it and hold the linear-baseline
    barrier under ``barrier``: theirs is recomputed from their error curve (kept
    as ``barrier_linear``), and one without a curve is refused rather than misread.
    """
    name = _record_name(r)
    if len(r.get("levels") or []) != 2:
        raise BadInput(f"{name} has no levels (the IMP levels of its two networks): not a line `eslt lmc` "
                       "printed; re-run `eslt lmc` for that pair")  # fmt: skip
    definition = r.get("barrier_definition")
    if definition is not None:
        if definition != BARRIER_DEFINITION:
            raise BadInput(f"{name} has barrier_definition {definition!r}, not {BARRIER_DEFINITION!r}: "
                           "re-run `eslt lmc` with this eslt")  # fmt: skip
        if not isinstance(r.get("barrier"), (int, float)):
            raise BadInput(f"{name} lacks a numeric barrier; re-run `eslt lmc`")
        return r
    if not r.get("alpha") or not r.get("error"):
        raise BadInput(f"{name} predates barrier_definition (its barrier is the old linear-baseline one) "
                       "and has no error curve to recompute it from; re-run `eslt lmc`")  # fmt: skip
    try:
        frankle = barrier(r["alpha"], r["error"])
    except (BadInput, TypeError, ValueError):
        raise BadInput(f"{name} has a malformed alpha/error curve; re-run `eslt lmc`") from None
    return {**r, "barrier": frankle, "barrier_linear": r.get("barrier"), "barrier_definition": BARRIER_DEFINITION}


def draw(inputs: Inputs, canvas: Canvas, options: Options) -> Summary:
    recs = [r for r in inputs.records if r.get("kind") == "lmc"]
    if not recs:
        raise inputs.missing("lmc", "`eslt lmc` output (JSON lines with kind 'lmc'), piped or as a .jsonl file")
    recs = [barrier_record(r) for r in recs]
    many_tasks = len({r.get("task") for r in recs}) > 1
    arms = labels.arms_by(recs, lambda r: _label(r, many_tasks), _arm)
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in recs:
        for name in _groups(r, many_tasks, arms):
            groups[name].append(r)
    if any(int(r["levels"][0]) != int(r["levels"][1]) for r in recs):
        _heatmaps(canvas, groups)
    else:
        _barrier_vs_level(canvas, recs, groups, lambda r: _groups(r, many_tasks, arms)[0])
    return Summary(len(recs), tuple(sorted(groups)))


def _heatmaps(canvas: Canvas, groups: dict[str, list[Record]]) -> None:
    """A heatmap of mean barriers over level pairs per group (same-level pairs of different seeds: diagonal)."""
    for ax, (name, rs) in zip(canvas.panels(len(groups), width=4.6, height=4.0), sorted(groups.items())):
        levels = sorted({int(lv) for r in rs for lv in r["levels"]})
        idx = {lv: i for i, lv in enumerate(levels)}
        cells: dict[tuple[int, int], list[float]] = defaultdict(list)
        for r in rs:
            a, b = idx[int(r["levels"][0])], idx[int(r["levels"][1])]
            cells[(a, b)].append(float(r["barrier"]))
            if a != b:
                cells[(b, a)].append(float(r["barrier"]))
        grid = np.full((len(levels), len(levels)), np.nan)
        for (a, b), v in cells.items():
            grid[a, b] = float(np.mean(v))
        im = ax.imshow(grid, cmap="magma_r", origin="lower", vmin=0.0)
        if len(levels) <= 12:
            for a, b in cells:
                val = grid[a, b]
                ax.text(b, a, f"{val:.2f}" if abs(val) < 10 else f"{val:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if val > np.nanmax(grid) * 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(len(levels)), [str(lv) for lv in levels])
        ax.set_yticks(range(len(levels)), [str(lv) for lv in levels])
        ax.set_xlabel("IMP level of network b")
        ax.set_ylabel("IMP level of network a")
        seed_pairs = any(r["levels"][0] == r["levels"][1] and len(set(r.get("seeds") or [])) > 1 for r in rs)
        ax.set_title(f"{name}: error barrier" + ("\n(diagonal: runs of different seeds)" if seed_pairs else ""))
        canvas.fig.colorbar(im, ax=ax, label=f"barrier ({_error_label(rs)})", shrink=0.85)


def _barrier_vs_level(canvas: Canvas, recs: list[Record], groups: dict[str, list[Record]],
                      line_of: Callable[[Record], str]) -> None:  # fmt: skip
    """The barrier vs level (a band per group), and the error along each linear path (colour: level)."""
    ax, ax2 = canvas.panels(2)
    for name, rs in sorted(groups.items()):
        by_level: dict[int, list[float]] = defaultdict(list)
        for r in rs:
            by_level[int(r["levels"][0])].append(float(r["barrier"]))
        drawing.band_of(ax, by_level, name)
    drawing.integer_x(ax)
    ax.set_xlabel("IMP level (both networks)")
    ax.set_ylabel(f"error barrier ({_error_label(recs)})")
    ax.set_title("Linear mode connectivity: barrier vs level")
    ax.grid(alpha=0.3)
    drawing.legend(ax, fontsize="small", title="pair (mean ± std)", title_fontsize="small")
    levels = sorted({int(r["levels"][0]) for r in recs})
    names = sorted(groups)
    for r in recs:
        if not r.get("alpha") or not r.get("error"):
            continue
        color = drawing.shade(levels, int(r["levels"][0]), top=1.0)
        ax2.plot(r["alpha"], r["error"], color=color, ls=drawing.style(names, line_of(r)), lw=1.2, alpha=0.85)
    drawing.level_key(ax2, levels, names, top=1.0)
    ax2.set_xlabel("interpolation α (0: network a, 1: network b)")
    ax2.set_ylabel(_error_label(recs))
    ax2.set_title("Error along the linear path")
    ax2.grid(alpha=0.3)
    drawing.legend(ax2, fontsize="small")

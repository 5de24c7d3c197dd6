"""Tables of a study from its checkpoints: every number as JSON lines, summaries with spread, markdown.

    python scripts/study.py results            # read results/runs/*, write results/*.jsonl and results/table.md
    python scripts/study.py results --check    # exit 1 if the README's Results table differs from the JSON lines

Reads only checkpoint meta (``eslt_cli.checkpoint``), never arrays. A study folder holds
``runs/<name>/`` sweep roots (each the ``--root`` of an ``examples/imp.sh`` sweep); ``<name>``
labels the rows. Outputs:

- ``runs.jsonl``: one line per trained checkpoint (study, task, optimiser, arm, seed, level,
  sparsity, final and best test metric).
- ``summary.jsonl``: per (study, task, optimiser, arm, level): seeds, mean, std and standard
  error of the final test metric.
- ``effects.jsonl``: the ticket effect as the paper's code measures it, ``ticket - random-reinit``
  at the same level (same sparsity; a fresh random mask and a fresh init each level,
  src/prune/imp.py), paired by seed: mean, standard error and seeds, per arm and level; and the
  same against the ``random`` arm (a random mask rewound to the level-0 init), a second control.
  Each record names its control (``vs``); a transferred arm (``snr+to-pgpe``) is compared with
  random tickets transferred alike (``random-reinit+to-pgpe``, ``random+to-pgpe``).
- ``correlations.jsonl``: one line per ticket pruned from a diagonal ES: the Pearson and Spearman
  correlation of |mean| and SNR over the weights it was scored on (its ``snr_stats``).
- ``analyses.jsonl``: per level (or level pair) the mean, std and standard error over seeds of
  those correlations, of the sharpness (``analyses/sharpness.jsonl``, from ``eslt sharpness``) and
  of the LMC error barrier (``analyses/lmc*.jsonl``, from ``eslt lmc``).
- ``table.md``: the markdown tables the README's Results section shows, made from the JSON lines.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eslt_cli import checkpoint  # noqa: E402
from eslt_cli.errors import BadInput  # noqa: E402
from eslt_cli.specs import optimiser_of  # noqa: E402

START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"


def collect(study: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One record per trained checkpoint under ``study/runs/<name>/``, and one per ticket with SNR statistics."""
    rows: list[dict[str, Any]] = []
    correlations: list[dict[str, Any]] = []
    for sweep in sorted(p for p in (study / "runs").iterdir() if p.is_dir()):
        for path in checkpoint.find(sweep):
            try:
                meta = checkpoint.read_meta(path)
            except BadInput as exc:
                print(f"study: skipped {exc}", file=sys.stderr)
                continue
            # Tickets `eslt prune` made (a transferred ticket carries its source's statistics).
            if meta["kind"] == "ticket" and isinstance(meta.get("snr_stats"), dict) and "+" not in meta["arm"]:
                correlations.append({
                    "study": sweep.name, "task": meta["task"]["name"], "optimiser": optimiser_of(meta),
                    "arm": meta["arm"], "seed": meta["seed"], "level": meta["level"],
                    **{k: meta["snr_stats"].get(k) for k in ("pearson", "spearman")},
                })  # fmt: skip
            if meta["kind"] != "trained":
                continue
            rows.append({
                "study": sweep.name,
                "task": meta["task"]["name"],
                "optimiser": optimiser_of(meta),
                "arm": meta["arm"],
                "seed": meta["seed"],
                "level": meta["level"],
                "sparsity": round(float(meta["sparsity"]["global"]), 6),
                "metric": meta["metric"],
                "final": meta["metrics"]["final"]["metric"],
                "best": meta["metrics"]["best"]["metric"],
                "path": str(path.relative_to(study)),
            })  # fmt: skip
    key = lambda r: (r["study"], r["task"], r["optimiser"], r["arm"], r["level"], r["seed"])
    return sorted(rows, key=key), sorted(correlations, key=key)


def _stats(values: list[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": std, "se": std / math.sqrt(n) if n > 1 else None}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, std and standard error over seeds of the final test metric per (study, task, optimiser, arm, level)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["study"], r["task"], r["optimiser"], r["arm"], r["level"])].append(r)
    out = []
    for (study, task, optimiser, arm, level), rs in sorted(groups.items()):
        out.append({"study": study, "task": task, "optimiser": optimiser, "arm": arm, "level": level,
                    "sparsity": rs[0]["sparsity"], "seeds": sorted(r["seed"] for r in rs),
                    **_stats([float(r["final"]) for r in rs])})  # fmt: skip
    return out


# The controls a ticket is compared with, the paper's first: random-reinit (a fresh random mask and
# a fresh init each level, the paper code's baseline), then random (a random mask rewound to the
# level-0 init); the random arms are controls only. Then magnitude, for claim 2 (SNR vs magnitude
# pruning): an arm other than magnitude is compared with it too.
RANDOM = ("random-reinit", "random")
CONTROLS = (*RANDOM, "magnitude")


def _control(arm: str, control: str) -> str:
    """The ``control`` arm an arm is compared with: ``control``, or ``control+to-X`` for a ticket transferred to X."""
    return control + arm[arm.index("+") :] if "+" in arm else control


def _base(arm: str) -> str:
    return arm.split("+", 1)[0]


def effects(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``arm - control`` at the same level (same sparsity), paired by seed, for each control in
    :data:`CONTROLS` the study has: the paper's ticket effect (against random-reinit), the effect
    against the rewound random arm, and (an arm other than magnitude) the difference from magnitude
    pruning. The random controls themselves are not arms here.

    A transferred arm (``snr+to-pgpe``) is compared with random tickets transferred alike.
    """
    by: dict[tuple, float] = {
        (r["study"], r["task"], r["optimiser"], r["arm"], r["level"], r["seed"]): float(r["final"]) for r in rows
    }
    diffs: dict[tuple, list[float]] = defaultdict(list)
    for (study, task, optimiser, arm, level, seed), value in by.items():
        if arm == "dense" or _base(arm) in RANDOM:
            continue
        for rank, name in enumerate(CONTROLS):
            if name == _base(arm):
                continue
            control = by.get((study, task, optimiser, _control(arm, name), level, seed))
            if control is not None:
                diffs[(study, task, optimiser, arm, level, rank)].append(value - control)
    out = []
    for (study, task, optimiser, arm, level, rank), ds in sorted(diffs.items()):
        out.append({"study": study, "task": task, "optimiser": optimiser, "arm": arm,
                    "vs": _control(arm, CONTROLS[rank]), "level": level, **_stats(ds)})  # fmt: skip
    return out


def _pm(s: dict[str, Any], digits: int) -> str:
    se = "" if s.get("se") is None else f" ± {s['se']:.{digits}f}"
    return f"{s['mean']:.{digits}f}{se} (n={s['n']})"


def table(summary: list[dict[str, Any]], effect: list[dict[str, Any]], analysis: list[dict[str, Any]]) -> str:
    """Markdown: test metric (mean ± standard error over seeds) per level and arm; the ticket effects."""
    digits = lambda task: 3 if any(r["task"] == task and abs(r["mean"]) <= 1 for r in summary) else 0
    lines = []
    for study, task, optimiser in sorted({(r["study"], r["task"], r["optimiser"]) for r in summary}):
        rs = [r for r in summary if (r["study"], r["task"], r["optimiser"]) == (study, task, optimiser)]
        arms = sorted({r["arm"] for r in rs if r["arm"] != "dense"}) or ["dense"]
        levels = sorted({r["level"] for r in rs})
        cell = {(r["arm"], r["level"]): r for r in rs}
        lines += [f"**{study}: {task}, {optimiser}** (final test metric, mean ± standard error over seeds)", "",
                  "| level | remaining | " + " | ".join(arms) + " |", "|---|---|" + "---|" * len(arms)]  # fmt: skip
        for level in levels:
            dense = cell.get(("dense", level))
            remaining = next((f"{1 - r['sparsity']:.1%}" for r in rs if r["level"] == level), "-")
            if dense is not None:
                values = [_pm(dense, digits(task)) for _ in arms] if arms else []
            else:
                values = [_pm(cell[(a, level)], digits(task)) if (a, level) in cell else "-" for a in arms]
            lines.append(f"| {level} | {remaining} | " + " | ".join(values) + " |")
        es = [e for e in effect if (e["study"], e["task"], e["optimiser"]) == (study, task, optimiser)]
        if es:
            vs = {(e["arm"], e["level"], _base(e["vs"])): e for e in es}
            shown = [c for c in CONTROLS if any(k[2] == c for k in vs)]
            lines += [
                "",
                "Ticket effect, arm − control at the same level, paired by seed (random-reinit: a fresh random "
                "mask and init each level, the paper's baseline; random: a random mask rewound to the level-0 "
                "init; magnitude: the magnitude-pruned ticket, claim 2):",
                "",
                "| arm | level | " + " | ".join(f"− {c}" for c in shown) + " |",
                "|---|---|" + "---|" * len(shown),
            ]
            for arm, level in sorted({(a, lv) for a, lv, _ in vs}):
                cells = [_pm(vs[(arm, level, c)], digits(task)) if (arm, level, c) in vs else "-" for c in shown]
                lines.append(f"| {arm} | {level} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(analyses_table(analysis))
    return "\n".join(lines).rstrip() + "\n"


def _mean_se(s: dict[str, Any], digits: int) -> str:
    return _pm(s, digits).rsplit(" (n=", 1)[0]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def analyses(study: Path, correlations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-level summaries over seeds of the |mean|-SNR correlation (tickets), the sharpness
    (``analyses/sharpness.jsonl``) and the LMC error barriers (``analyses/lmc*.jsonl``)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    seeds: dict[tuple, set] = defaultdict(set)

    def add(key: tuple, value: Any, seed: Any) -> None:
        if isinstance(value, int | float) and math.isfinite(value):
            groups[key].append(float(value))
            seeds[key].add(seed)

    for r in correlations:
        for stat in ("pearson", "spearman"):
            add(
                ("correlation", r["task"], f"{r['optimiser']} {r['arm']}", stat, r["level"], r["level"]),
                r[stat],
                r["seed"],
            )
    for r in _jsonl(study / "analyses" / "sharpness.jsonl"):
        add(
            ("sharpness", r["task"], optimiser_of(r), "curvature", r["level"], r["level"]),
            r["curvature_mean"],
            r["seed"],
        )
    for name in ("lmc", "lmc-es-gd"):
        for r in _jsonl(study / "analyses" / f"{name}.jsonl"):
            a, b = r["strategies"]
            pair = a if a == b else f"{a} vs {b}"
            same = "same seed" if r["seeds"][0] == r["seeds"][1] else "different seeds"
            add(("lmc", r["task"], pair, same, *r["levels"]), r["barrier"], tuple(r["seeds"]))
    out = []
    for (kind, task, group, stat, la, lb), values in sorted(groups.items()):
        out.append({"analysis": kind, "task": task, "group": group, "stat": stat, "levels": [la, lb],
                    "seeds": sorted(map(str, seeds[(kind, task, group, stat, la, lb)])), **_stats(values)})  # fmt: skip
    return out


def analyses_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: correlation and sharpness per level (a column per group), LMC barriers per level pair."""
    lines: list[str] = []
    titles = {
        "pearson": "Pearson correlation of |mean| and SNR over the weights each ticket was scored on",
        "curvature": "Sharpness: mean curvature of the test loss along 5 directions drawn at level 0 (appendix A.3)",
    }
    for stat, title in titles.items():
        rs = [
            r for r in rows if r["stat"] == stat and not r["group"].endswith(" random") and "reinit" not in r["group"]
        ]
        for task in sorted({r["task"] for r in rs}):
            cols = sorted({r["group"] for r in rs if r["task"] == task})
            cell = {(r["group"], r["levels"][0]): r for r in rs if r["task"] == task}
            levels = sorted({lv for _, lv in cell})
            lines += [f"**{title}, {task}** (mean ± standard error over seeds)", "",
                      "| level | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]  # fmt: skip
            lines += [f"| {lv} | " + " | ".join(_pm(cell[(c, lv)], 3) if (c, lv) in cell else "-" for c in cols) + " |"
                      for lv in levels]  # fmt: skip
            lines.append("")
    rs = [r for r in rows if r["analysis"] == "lmc"]
    for task, group in sorted({(r["task"], r["group"]) for r in rs}):
        cell = {
            tuple(r["levels"]): r for r in rs if (r["task"], r["group"]) == (task, group) and r["stat"] == "same seed"
        }
        diag = {
            r["levels"][0]: r for r in rs if (r["task"], r["group"]) == (task, group) and r["stat"] == "different seeds"
        }
        levels = sorted({lv for k in cell for lv in k} | set(diag))
        n = max([r["n"] for r in [*cell.values(), *diag.values()]])
        if not diag and all(la == lb for la, lb in cell):  # two optimisers' networks at the same level
            lines += [f"**LMC error barrier (Frankle et al.), {task}, {group}**: the two networks of the same "
                      f"seed and level (mean ± standard error over up to {n} seeds)", "", "| level | barrier |",
                      "|---|---|", *(f"| {lv} | {_mean_se(cell[(lv, lv)], 3)} |" for lv in levels), ""]  # fmt: skip
            continue
        lines += [f"**LMC error barrier (Frankle et al.), {task}, {group}**: rows and columns are IMP levels; "
                  f"off the diagonal the same seed (mean ± standard error over up to {n} seeds), on the diagonal "
                  "seed 0 vs seed 1" + ("" if diag else " (not run)"), "",
                  "| level | " + " | ".join(map(str, levels)) + " |", "|---|" + "---|" * len(levels)]  # fmt: skip
        for la in levels:
            vals = []
            for lb in levels:
                r = diag.get(la) if la == lb else cell.get((la, lb)) or cell.get((lb, la))
                vals.append("-" if r is None else _mean_se(r, 3))
            lines.append(f"| {la} | " + " | ".join(vals) + " |")
        lines.append("")
    return "\n".join(lines)


def write(study: Path) -> str:
    rows, correlations = collect(study)
    summary, effect, analysis = summarise(rows), effects(rows), analyses(study, correlations)
    for name, records in (("runs", rows), ("summary", summary), ("effects", effect), ("correlations", correlations),
                          ("analyses", analysis)):  # fmt: skip
        (study / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text = table(summary, effect, analysis)
    (study / "table.md").write_text(text)
    return text


def from_jsonl(study: Path) -> str:
    """The table made from the committed JSON lines alone (what the README must show)."""
    return table(_jsonl(study / "summary.jsonl"), _jsonl(study / "effects.jsonl"), _jsonl(study / "analyses.jsonl"))


def readme_section(readme: str) -> str:
    return readme.split(START, 1)[1].split(END, 1)[0].strip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--check", action="store_true", help="compare the README's Results table with the JSON lines")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    if args.check:
        ok = readme_section(args.readme.read_text()) == from_jsonl(args.study)
        print("README results table matches the JSON lines" if ok else "README results table is stale")
        return 0 if ok else 1
    text = write(args.study)
    readme = args.readme.read_text()
    if START in readme:
        head, rest = readme.split(START, 1)
        args.readme.write_text(f"{head}{START}\n{text}{END}{rest.split(END, 1)[1]}")
    print(f"wrote {args.study}/runs.jsonl, summary.jsonl, effects.jsonl, table.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

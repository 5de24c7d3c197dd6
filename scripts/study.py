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
- ``effects.jsonl``: the ticket effect as the paper defines it, ``ticket - random`` at the same
  level (same sparsity), paired by seed: mean, standard error and seeds, per arm and level.
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


def collect(study: Path) -> list[dict[str, Any]]:
    """One record per trained checkpoint under ``study/runs/<name>/``, sorted."""
    rows = []
    for sweep in sorted(p for p in (study / "runs").iterdir() if p.is_dir()):
        for path in checkpoint.find(sweep):
            try:
                meta = checkpoint.read_meta(path)
            except BadInput as exc:
                print(f"study: skipped {exc}", file=sys.stderr)
                continue
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
    return sorted(rows, key=lambda r: (r["study"], r["task"], r["optimiser"], r["arm"], r["level"], r["seed"]))


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


def effects(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``arm - random`` at the same level, paired by seed (the paper's ticket effect), with its standard error."""
    by: dict[tuple, float] = {
        (r["study"], r["task"], r["optimiser"], r["arm"], r["level"], r["seed"]): float(r["final"]) for r in rows
    }
    out = []
    keys = sorted({k[:5] for k in by if k[3] not in ("dense", "random")})
    for study, task, optimiser, arm, level in keys:
        pairs = [(by[(study, task, optimiser, arm, level, s)], by[(study, task, optimiser, "random", level, s)])
                 for (st, t, o, a, lv, s) in by
                 if (st, t, o, a, lv) == (study, task, optimiser, arm, level)
                 and (study, task, optimiser, "random", level, s) in by]  # fmt: skip
        if not pairs:
            continue
        out.append({"study": study, "task": task, "optimiser": optimiser, "arm": arm, "vs": "random",
                    "level": level, **_stats([a - b for a, b in pairs])})  # fmt: skip
    return out


def _pm(s: dict[str, Any], digits: int) -> str:
    se = "" if s.get("se") is None else f" ± {s['se']:.{digits}f}"
    return f"{s['mean']:.{digits}f}{se} (n={s['n']})"


def table(summary: list[dict[str, Any]], effect: list[dict[str, Any]]) -> str:
    """Markdown: test metric (mean ± standard error over seeds) per level and arm; the ticket effects."""
    digits = lambda task: 3 if any(r["task"] == task and abs(r["mean"]) <= 1 for r in summary) else 0
    lines = []
    for study, task, optimiser in sorted({(r["study"], r["task"], r["optimiser"]) for r in summary}):
        rs = [r for r in summary if (r["study"], r["task"], r["optimiser"]) == (study, task, optimiser)]
        arms = sorted({r["arm"] for r in rs if r["arm"] != "dense"})
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
            lines += ["", "Ticket effect, arm − random at the same level (paired by seed):", "",
                      "| arm | level | effect |", "|---|---|---|"]  # fmt: skip
            lines += [f"| {e['arm']} | {e['level']} | {_pm(e, digits(task))} |" for e in es]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(study: Path) -> str:
    rows = collect(study)
    summary, effect = summarise(rows), effects(rows)
    for name, records in (("runs", rows), ("summary", summary), ("effects", effect)):
        (study / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text = table(summary, effect)
    (study / "table.md").write_text(text)
    return text


def from_jsonl(study: Path) -> str:
    """The table made from the committed JSON lines alone (what the README must show)."""
    load = lambda name: [json.loads(line) for line in (study / f"{name}.jsonl").read_text().splitlines() if line]
    return table(load("summary"), load("effects"))


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

#!/usr/bin/env bash
# Table 1: the transfer settings of Section 4, and what each transfer gave. Rows of the paper:
# Sep-CMA-ES tickets of Ant with torso mass 10 evaluated on mass 15 (`ant` -> `ant_heavy`), SNES
# tickets of F-MNIST on MNIST, Ant tickets from Sep-CMA-ES trained by DES, F-MNIST tickets from
# SNES by PGPE, Ant's Sep-CMA-ES tickets by PPO and F-MNIST's SNES tickets by GD (eslt: Adam);
# eslt adds Pendulum -> pendulum_heavy and F-MNIST SNES -> Sep-CMA-ES. It runs the transfers of
# Figures 4 and 5 (the same runs: nothing new when those ran) and writes, per comparison, the
# final test metric per level (mean ± std over seeds, n) of the transferred tickets, the
# target's own chains and the source's SNR chain, from the checkpoints' meta (`eslt show --json`).
#
# Runs: those of Figures 4 and 5.
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# 0 after Figures 4 and 5; else their sum, about 520-660 GPU-hours.
#
# Output: FIGURES/table1.md (Markdown; prints its path); the meta lines in ROOT/analysis/table1.jsonl.
# Smoke (ESLT_SMOKE=1): the smoke comparisons of Figures 4 and 5.
source "$(dirname "$0")/common.sh"

specs=() inputs=()
for flag in --task --strategy --trainer; do
  case $flag in
    --task) list=("${TASK_TRANSFERS[@]}") kind="across tasks" ;;
    --strategy) list=("${ES_TRANSFERS[@]}") kind="across ES" ;;
    --trainer) list=("${GD_TRANSFERS[@]}") kind="ES to GD" ;;
  esac
  for pair in "${list[@]}"; do
    transfer_pair "$flag" "$pair"
    out=$ROOT/analysis/table1-$PAIR_NAME.paths
    printf '%s\n' "${PAIR_INPUTS[@]}" >"$out"
    inputs+=("${PAIR_INPUTS[@]}")
    paper=eslt
    in_table1 "$pair" && paper="paper Table 1"
    specs+=("$pair|$kind|$paper|$out")
  done
done
# One `eslt show` for all of them: a JSON line of meta per checkpoint, with its path.
e show --json "${inputs[@]}" >"$ROOT/analysis/table1.jsonl.tmp"
mv "$ROOT/analysis/table1.jsonl.tmp" "$ROOT/analysis/table1.jsonl"

python3 - "$FIGURES/table1.md" "$ROOT/analysis/table1.jsonl" "${specs[@]}" <<'PY'
import json, os, statistics, sys
from collections import defaultdict

out, shown, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
meta = {}
for line in open(shown):
    if line.strip():
        m = json.loads(line)
        meta[os.path.realpath(m["path"])] = m
lines = ["# Table 1: transfer settings and results", "",
         "| source task | source ES | target | transfer | row |", "|---|---|---|---|---|"]
for spec in specs:
    pair, kind, paper, _ = spec.split("|")
    task, strategy, target = pair.split(":")
    lines.append(f"| {task} | {strategy} | {target} | {kind} | {paper} |")
lines += ["", "Cells: final test metric of the trained checkpoints (accuracy, or return for control), "
          "mean ± std over seeds (n). Level 0 is the dense network of each trainer; a column "
          "`METHOD ARM` is one chain (`snr+to-T`: the source's SNR tickets trained on or by T).", ""]
for spec in specs:
    pair, kind, paper, path = spec.split("|")
    metas = [meta[os.path.realpath(p)] for p in open(path).read().split("\n") if p and os.path.realpath(p) in meta]
    cells, dense, remaining, metric = defaultdict(lambda: defaultdict(list)), defaultdict(list), {}, set()
    for m in metas:
        if m.get("kind") != "trained":
            continue
        tr = m["trainer"]
        method = tr.get("strategy") if tr.get("name") == "es" else tr.get("name")
        key = f'{m["task"]["name"]}: {method}'
        value = m["metrics"]["final"]["metric"]
        metric.add(m.get("metric"))
        level = int(m["level"])
        remaining.setdefault(level, 100.0 * (1.0 - m["sparsity"]["global"]))
        if level == 0:
            dense[key].append(value)
        else:
            cells[f'{key} {m["arm"]}'][level].append(value)
    for col in cells:
        key = col.rsplit(" ", 1)[0]
        if dense.get(key):
            cells[col][0] = dense[key]
    cols = sorted(cells)
    task, strategy, target = pair.split(":")
    lines += [f"## {task} ({strategy}) -> {target}: {kind} ({paper}; metric: {', '.join(sorted(map(str, metric)))})", "",
              "| level | remaining % | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    def cell(vs):
        if not vs:
            return ""
        sd = statistics.stdev(vs) if len(vs) > 1 else 0.0
        return f"{statistics.mean(vs):.4g} ± {sd:.2g} ({len(vs)})"
    for level in sorted(remaining):
        lines.append(f"| {level} | {remaining[level]:.1f} | " + " | ".join(cell(cells[c].get(level, [])) for c in cols) + " |")
    lines.append("")
open(out, "w").write("\n".join(lines))
print(out)
PY

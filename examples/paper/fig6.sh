#!/usr/bin/env bash
# Figure 6: the optima of ES and GD (Section 5), on F-MNIST. Top: linear mode connectivity,
# the test-error barrier (Frankle et al., 2020) between trained networks of one seed at every
# pair of IMP levels (0, 2, ..., 20), seed 0 vs seed 1 at the same level on the diagonal, for
# ES-IMP with ARS (the paper's ES here; isotropic, so magnitude pruning), ES-IMP with SNES and
# SNR pruning (the ES of the other F-MNIST figures), and GD-IMP (Adam); and ES vs GD at the same
# level and seed (the paper: not linearly connected). Bottom: sharpness, the curvature of the
# test loss along 5 filter-normalised random directions (51 steps in [-1, 1], `eslt sharpness
# --preset paper`) drawn at the level-0 network of each chain (`--directions-from L00-trained`,
# as appendix A.3) vs remaining weights, for every level and seed of the three chains (the
# paper: GD optima sharpen quickly with sparsity, ES optima stay flat). 20 levels, 5 seeds.
#
# Runs: the ARS chain, 5 x 21 ES trainings (SNES SNR and GD-IMP chains shared with Figures 1-3);
# 3 x 66 + 2 x 21 `eslt lmc` calls (11 points each) and 3 x 105 `eslt sharpness` calls
# (255 test evaluations each).
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# ARS 105 x 6 min = 11 h; the analyses are full test-set evaluations of one small CNN, seconds
# each plus eslt's start-up: about 2 h; with the SNES and GD chains if not run yet
# (11 h + 2 h): about 13-26 GPU-hours.
#
# Output: FIGURES/fig6-lmc.png (a heatmap per chain), fig6-lmc-es-vs-gd.png (barrier vs level,
# error along the path), fig6-sharpness.png; the JSON lines in ROOT/analysis/fig6-*.jsonl.
# Smoke (ESLT_SMOKE=1): SNES SNR and GD chains only, levels 0-1 (ES vs GD and sharpness: level 1),
# 3-point paths, 2 directions of 5 points.
source "$(dirname "$0")/common.sh"

task=fashion_mnist
if smoke; then
  CHAINS=(snes:snr gd:gd)  # STRATEGY:ARM (gd: the GD-IMP chain)
  LMC_LEVELS=$(seq 0 "$LEVELS") ES_GD_LEVELS=$LEVELS
  LMC=(--points 3) SHARP=(--directions 2 --points 5)
else
  CHAINS=(ars:magnitude snes:snr gd:gd)
  LMC_LEVELS=$(seq 0 2 "$LEVELS") ES_GD_LEVELS=$(seq 0 "$LEVELS")
  LMC=() SHARP=(--preset paper --directions 5)
fi
read -ra lmc_levels <<<"$(echo $LMC_LEVELS)"
read -ra es_gd_levels <<<"$(echo $ES_GD_LEVELS)"
s0=${SEED_LIST[0]}
s1=${SEED_LIST[1]:-}

# lmc_lines OUT PAIRS...: `eslt lmc` on each "A B" pair into the JSON-lines file OUT, unless fresh.
lmc_lines() {
  local out=$1 pair a b inputs=()
  shift
  for pair in "$@"; do inputs+=($pair); done
  fresh "$out" "${LMC[*]}" "${inputs[@]}" && return 0
  for pair in "$@"; do
    read -r a b <<<"$pair"
    e lmc "${LMC[@]}" "$a" "$b"
  done >"$out.tmp"
  made "$out" "${LMC[*]}"
}

# Sweeps first (reused when Figures 1-3 ran them).
for chain in "${CHAINS[@]}"; do
  strategy=${chain%%:*} arm=${chain#*:}
  [ "$arm" = gd ] && strategy=snes
  sweep "$task" "$strategy" "$arm"
done

# Top: barriers within each chain (a heatmap per chain), and between each ES chain and GD at the
# same level (barrier vs level).
within=()
for chain in "${CHAINS[@]}"; do
  strategy=${chain%%:*} arm=${chain#*:}
  pairs=()
  for ((i = 0; i < ${#lmc_levels[@]}; i++)); do
    a=$(ckpt_at "$task" "$strategy" "$arm" "$s0" "${lmc_levels[i]}")
    for ((j = i + 1; j < ${#lmc_levels[@]}; j++)); do
      pairs+=("$a $(ckpt_at "$task" "$strategy" "$arm" "$s0" "${lmc_levels[j]}")")
    done
    [ -z "$s1" ] || pairs+=("$a $(ckpt_at "$task" "$strategy" "$arm" "$s1" "${lmc_levels[i]}")")
  done
  name=$task-$strategy-$arm
  [ "$arm" = gd ] && name=$task-gd
  out=$ROOT/analysis/fig6-lmc-$name.jsonl
  lmc_lines "$out" "${pairs[@]}"
  within+=("$out")
done
plot lmc fig6-lmc "${within[@]}"
pairs=()
for chain in "${CHAINS[@]}"; do
  [ "${chain#*:}" = gd ] && continue
  for level in "${es_gd_levels[@]}"; do
    pairs+=("$(ckpt_at "$task" "${chain%%:*}" "${chain#*:}" "$s0" "$level") $(ckpt_at "$task" gd gd "$s0" "$level")")
  done
done
lmc_lines "$ROOT/analysis/fig6-lmc-es-vs-gd.jsonl" "${pairs[@]}"
plot lmc fig6-lmc-es-vs-gd "$ROOT/analysis/fig6-lmc-es-vs-gd.jsonl"

# Bottom: sharpness of every trained checkpoint of each chain, directions from its level 0.
out=$ROOT/analysis/fig6-sharpness.jsonl
ckpts=()
for chain in "${CHAINS[@]}"; do
  if smoke; then  # the last level only (a level 0 probed along its own directions: a3_surfaces.sh)
    ckpts+=("$(ckpt_at "$task" "${chain%%:*}" "${chain#*:}" "$s0" "$LEVELS")")
  else
    mapfile -t -O "${#ckpts[@]}" ckpts < <(chain_paths "$task" "${chain%%:*}" "${chain#*:}")
  fi
done
if ! fresh "$out" "${SHARP[*]}" "${ckpts[@]}"; then
  for c in "${ckpts[@]}"; do
    e sharpness "${SHARP[@]}" --directions-from "$(dirname "$c")/L00-trained" "$c"
  done >"$out.tmp"
  made "$out" "${SHARP[*]}"
fi
plot sharpness fig6-sharpness "$out"

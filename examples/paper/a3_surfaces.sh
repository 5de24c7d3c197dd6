#!/usr/bin/env bash
# Appendix A.3 (SI Figure 10): 2D projections of the test loss (Li et al., 2018) around the
# optima of different IMP levels. Two random directions, normalised filter- and neuron-wise at
# the trained dense network of level 0 (`--directions-from L00-trained`) and applied, masked, to
# the optimum of each level; the test loss on a 51 x 51 grid over [-1, 1]^2 (`eslt sharpness
# --preset paper --2d`). F-MNIST, seed 0, levels 0, 5, 10, 15 and 20 of the SNES SNR chain and of
# GD-IMP (Adam), side by side (`eslt plot surface`; eslt draws filled contours of the grid, the
# paper spline-smoothed heat maps).
#
# Runs: 2 x 5 surfaces of 2601 test-set evaluations each; the chains are Figure 1's (shared).
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# a surface is 2601 evaluations of one small CNN on the 10k test images, about a minute; 10
# surfaces under 1 h; the two chains, if not run yet, 5 x 21 x 6 min + 5 x 21 x 1 min = 12 h.
#
# Output: FIGURES/a3-surfaces.png (ES levels, then GD levels); the surfaces (.npz) beside the
# checkpoints, the JSON lines in ROOT/analysis/a3-*.jsonl.
# Smoke (ESLT_SMOKE=1): the ES chain only, levels 0 and 1, a 3 x 3 grid.
source "$(dirname "$0")/common.sh"

task=fashion_mnist strategy=snes
if smoke; then
  ARMS=(snr) SURF_LEVELS=$(seq 0 "$LEVELS")
  SHARP=(--2d --grid 3 --directions 1 --points 3)
else
  ARMS=(snr gd) SURF_LEVELS=$(seq 0 5 "$LEVELS")
  SHARP=(--preset paper --2d --directions 1)
fi
seed=${SEED_LIST[0]}

sweep "$task" "$strategy" "$(IFS=,; echo "${ARMS[*]}")"
lines=()
for arm in "${ARMS[@]}"; do
  name=$task-$strategy-$arm
  [ "$arm" = gd ] && name=$task-gd
  ckpts=()
  for level in $SURF_LEVELS; do ckpts+=("$(ckpt_at "$task" "$strategy" "$arm" "$seed" "$level")"); done
  out=$ROOT/analysis/a3-$name.jsonl
  if ! fresh "$out" "${SHARP[*]}" "${ckpts[@]}"; then
    for c in "${ckpts[@]}"; do
      e sharpness "${SHARP[@]}" --force --directions-from "$(dirname "$c")/L00-trained" "$c"
    done >"$out.tmp"
    made "$out" "${SHARP[*]}"
  fi
  lines+=("$out")
done
plot surface a3-surfaces "${lines[@]}"

#!/usr/bin/env bash
# Figure 1 (right): ES-IMP vs GD-IMP, test performance against remaining weights. For each task,
# IMP with the ES: SNR pruning (Algorithm 1, black in the paper), magnitude pruning of the ES mean
# (red) and the random-reinit baseline (yellow: a random mask of the same sparsity, fresh init),
# and GD-IMP (green: Adam for images, PPO for control, magnitude pruning), 20 levels of 20%
# pruning, 5 seeds, `--preset paper`. The paper's text does not say which tasks its Figure 1
# panels show; eslt takes one per family, each with the ES of its curves in the paper's
# figures: F-MNIST (SNES), Pendulum (Sep-CMA-ES), Hopper (SNES). Figures 2, 3, 5-7 and A.3 reuse
# these runs.
#
# Runs: per task and seed 1 + 3 x 20 ES trainings and 21 GD trainings (5 seeds: 305 + 105).
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# F-MNIST 305 x 6 min + 105 x 1 min = 32 h, Pendulum 305 x 3 min + 105 x 5 min = 24 h, Hopper
# 305 x 30 min + 105 x 30 min = 205 h: about 260 GPU-hours in all, most of it brax.
#
# Output: FIGURES/fig1-imp-es-vs-gd.png (a panel per task).
# Smoke (ESLT_SMOKE=1): F-MNIST (SNES) only.
source "$(dirname "$0")/common.sh"

if smoke; then PAIRS=(fashion_mnist:snes); else PAIRS=(fashion_mnist:snes pendulum:sep_cma_es hopper:snes); fi
ARMS=snr,magnitude,random-reinit,gd

inputs=()
for pair in "${PAIRS[@]}"; do
  task=${pair%%:*} strategy=${pair#*:}
  sweep "$task" "$strategy" "$ARMS"
  for arm in ${ARMS//,/ }; do mapfile -t -O "${#inputs[@]}" inputs < <(chain_paths "$task" "$strategy" "$arm"); done
done
plot sparsity fig1-imp-es-vs-gd "${inputs[@]}"

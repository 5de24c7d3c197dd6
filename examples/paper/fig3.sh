#!/usr/bin/env bash
# Figure 3: sparse trainability of ES vs GD. ES-IMP with SNR pruning (black) against GD-IMP
# (green: magnitude pruning with Adam for the CNN tasks, PPO for control) on the tasks of
# Figure 2, 20 levels, 5 seeds, `--preset paper` (GD-IMP: Adam 2 epochs per level as the paper's
# code, brax PPO with the brax configs' numbers, 5e7 steps). The paper finds ES better at high
# sparsity, GD degrading faster on the vision tasks.
#
# Runs: per task 5 x 21 ES trainings (shared with Figure 2) and 5 x 21 GD trainings.
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# GD alone: vision 3 x 105 x 1 min = 5 h, Pendulum 105 x 5 min = 9 h, brax 5 x 105 x 30 min =
# 263 h; the ES SNR chains, if Figure 2 has not run them, add 3 x 105 x 6 min + 105 x 3 min +
# 5 x 105 x 30 min = 300 h: about 280 GPU-hours after Figure 2, 580 before.
#
# Output: FIGURES/fig3-es-vs-gd.png (a panel per task).
# Smoke (ESLT_SMOKE=1): F-MNIST (SNES, Adam) only (PPO runs in Figure 5's smoke transfer).
source "$(dirname "$0")/common.sh"

if smoke; then
  PAIRS=(fashion_mnist:snes)
else
  PAIRS=(mnist:sep_cma_es fashion_mnist:snes kmnist:pgpe pendulum:sep_cma_es ant:sep_cma_es
         halfcheetah:snes hopper:snes reacher:pgpe walker2d:pgpe)
fi
ARMS=snr,gd

inputs=()
for pair in "${PAIRS[@]}"; do
  sweep "${pair%%:*}" "${pair#*:}" "$ARMS"
  mapfile -t -O "${#inputs[@]}" inputs < <(paths_of "${pair%%:*}" "${pair#*:}" "$ARMS")
done
plot sparsity fig3-es-vs-gd "${inputs[@]}"

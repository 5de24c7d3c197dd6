#!/usr/bin/env bash
# Figure 5: ES tickets transfer to GD training (Table 1, bottom). The SNR tickets of F-MNIST
# (SNES) trained by Adam (the paper: SGD-style cross-entropy training; eslt's GD baseline is
# Adam, lr 3e-4, batch 128, 20 epochs as the paper's code's ES->GD transfer) and those of Ant
# (Sep-CMA-ES) trained by PPO, every level k's ticket separately (`eslt transfer --trainer`),
# against GD-IMP (magnitude pruning with the same trainer; Adam 2 epochs per level, as the
# paper's code) and the ES's own SNR chain; 20 levels, 5 seeds, `--preset paper`.
#
# Runs: per comparison 5 x 20 transferred GD trainings, 5 x 21 GD-IMP trainings, and the source's
# SNR chain (5 x 21, shared with Figures 2-4).
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# F-MNIST 100 x 5 min + 105 x 1 min = 10 h, Ant 100 x 30 min + 105 x 30 min = 103 h, sources
# (F-MNIST 11 h, Ant 53 h) unless run already: about 115-180 GPU-hours.
#
# Output: FIGURES/fig5-es-to-gd.png (a panel per task: `<ES> snr`, `<trainer> magnitude` (GD-IMP)
# and `<trainer> snr+to-<trainer>`, the transferred tickets).
# Smoke (ESLT_SMOKE=1): F-MNIST -> Adam and Pendulum (Sep-CMA-ES) -> PPO in place of Ant, without
# the GD-IMP chains (GD_ARMS is empty).
source "$(dirname "$0")/common.sh"

transfer_figure --trainer fig5-es-to-gd "${GD_TRANSFERS[@]}"

#!/usr/bin/env bash
# Figure 4: ES tickets transfer. Top, across related tasks (Table 1, top): the SNR tickets of
# Ant (Sep-CMA-ES, torso mass 10) trained on Ant with torso mass 15 (`ant_heavy`), those of
# F-MNIST (SNES) trained on MNIST, and, as eslt's cheap addition, Pendulum (Sep-CMA-ES) ->
# Pendulum with mass 1.5 (`pendulum_heavy`). Bottom, across ES: Ant's Sep-CMA-ES tickets trained
# by DES, F-MNIST's SNES tickets by PGPE and (eslt's addition) by Sep-CMA-ES. Every level k's
# ticket of the source's SNR chain is retargeted (`eslt transfer --task|--strategy`) and trained
# with the target's `--preset paper` settings (blue in the paper), against the target's own SNR
# ticket and its random-reinit baseline (yellow), 20 levels, 5 seeds.
#
# Runs: per comparison 5 x 20 transferred trainings and 5 x (1 + 2 x 20) target trainings, plus
# the source's SNR chain (5 x 21, shared with Figure 2).
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# Ant pairs 2 x 305 x 30 min = 305 h, F-MNIST pairs 3 x 305 x 6 min = 92 h, Pendulum 305 x 3 min
# = 15 h, sources (Ant 53 h, F-MNIST 11 h, Pendulum 5 h) unless Figure 2 ran them: about
# 410-480 GPU-hours.
#
# Output: FIGURES/fig4-tasks.png (top: a panel per task, sources and targets; the transferred
# tickets are the line `<ES> snr+to-<target>` in the target's panel) and fig4-es.png (bottom: a
# panel per task, lines `<target ES> snr+to-<target ES>` beside the target ES's own chains).
# Smoke (ESLT_SMOKE=1): Pendulum -> pendulum_heavy and F-MNIST SNES -> PGPE, without the
# target's own chains (TARGET_ARMS is empty).
source "$(dirname "$0")/common.sh"

transfer_figure --task fig4-tasks "${TASK_TRANSFERS[@]}"
transfer_figure --strategy fig4-es "${ES_TRANSFERS[@]}"

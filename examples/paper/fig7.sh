#!/usr/bin/env bash
# Figure 7: SNR pruning accounts for fitness curvature. The Pearson and Spearman correlation of
# |mean| and SNR (|mean| / std) of the trained ES that each ticket was pruned from, vs IMP level,
# for the SNR and the magnitude chains (`eslt plot snr`, from the tickets' meta.snr_stats),
# beside the two chains' performance (the SNR-IMP gap the paper relates it to: SNR helps where
# the correlation falls faster under magnitude pruning). The paper shows Fetch (a brax v1 task
# that brax 0.14 lacks; eslt shows Ant with Sep-CMA-ES in its place) and F-MNIST (SNES);
# 20 levels, 5 seeds, `--preset paper`.
#
# Runs: per task 5 x (1 + 2 x 20) = 205 ES trainings, shared with Figure 2 (nothing new after it).
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# 0 after Figure 2; else Ant 205 x 30 min = 103 h, F-MNIST 205 x 6 min = 21 h: about 124
# GPU-hours.
#
# Output: FIGURES/fig7-snr.png (Pearson and Spearman panels, a line per task and arm) and
# fig7-imp.png (the SNR and magnitude chains' test performance, a panel per task).
# Smoke (ESLT_SMOKE=1): F-MNIST and Pendulum (gymnax) in place of Ant, as fig2.sh's smoke run.
source "$(dirname "$0")/common.sh"

if smoke; then PAIRS=(fashion_mnist:snes pendulum:sep_cma_es); else PAIRS=(fashion_mnist:snes ant:sep_cma_es); fi
ARMS=snr,magnitude

tickets=() trained=()
for pair in "${PAIRS[@]}"; do
  task=${pair%%:*} strategy=${pair#*:}
  sweep "$task" "$strategy" "$ARMS"
  mapfile -t -O "${#tickets[@]}" tickets < <(paths_of "$task" "$strategy" "$ARMS" tickets)
  mapfile -t -O "${#trained[@]}" trained < <(paths_of "$task" "$strategy" "$ARMS")
done
plot snr fig7-snr "${tickets[@]}"
plot sparsity fig7-imp "${trained[@]}"

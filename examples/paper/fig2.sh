#!/usr/bin/env bash
# Figure 2: winning tickets exist across tasks, architectures and ES. For every task eslt has of
# the paper's 12, with the ES of its curves in the paper's figures (README, "Settings"):
# MNIST (Sep-CMA-ES), F-MNIST (SNES), K-MNIST (PGPE) with the CNN; Pendulum (Sep-CMA-ES, gymnax),
# Ant (Sep-CMA-ES), HalfCheetah (SNES), Hopper (SNES), Reacher (PGPE), Walker2d (PGPE) (brax) with
# the MLP. Fetch, Grasp and UR5e were brax v1 tasks that brax 0.14 lacks: left out. Arms: SNR
# (black in the paper), magnitude (red), random-reinit (yellow); 20 levels, 5 seeds, `--preset
# paper`. MNIST and K-MNIST come from tfds (prepare them on a host with network) or from
# MNIST_DIR / KMNIST_DIR holding their IDX files.
#
# Runs: per task 5 x (1 + 3 x 20) = 305 ES trainings, 2745 in all.
# Expected GPU time, an ESTIMATE (no GPU measurement exists yet; see common.sh for the basis):
# vision 3 x 305 x 6 min = 92 h, Pendulum 305 x 3 min = 15 h, brax 5 x 305 x 30 min = 763 h:
# about 870 GPU-hours (F-MNIST, Pendulum and Hopper's ES arms are shared with Figure 1).
#
# Output: FIGURES/fig2-tickets.png (a panel per task).
# Smoke (ESLT_SMOKE=1): F-MNIST (SNES) and Pendulum (Sep-CMA-ES) only: gymnax in place of brax, whose
# compilation alone took 90 of the test's 120 s (brax pipes are tested in tests/test_brax.py).
source "$(dirname "$0")/common.sh"

if smoke; then
  PAIRS=(fashion_mnist:snes pendulum:sep_cma_es)
else
  PAIRS=(mnist:sep_cma_es fashion_mnist:snes kmnist:pgpe pendulum:sep_cma_es ant:sep_cma_es
         halfcheetah:snes hopper:snes reacher:pgpe walker2d:pgpe)
fi
ARMS=snr,magnitude,random-reinit

inputs=()
for pair in "${PAIRS[@]}"; do
  task=${pair%%:*} strategy=${pair#*:}
  sweep "$task" "$strategy" "$ARMS"
  mapfile -t -O "${#inputs[@]}" inputs < <(paths_of "$task" "$strategy" "$ARMS")
done
plot sparsity fig2-tickets "${inputs[@]}"

#!/usr/bin/env bash
# The exact commands that made docs/figures/*.png (README, "Figures"): a small CPU run on
# Pendulum (SNES, population 16, 30 generations), IMP levels 1-3 at --rate 0.5 for the snr,
# magnitude and random arms, seeds 0 and 1; about 6 minutes on 2 cores. Re-running skips the
# finished checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
export ESLT_HOME=eslt-runs/figures
small=(--population 16 --generations 30 --eval-every 10 --train-episodes 4 --test-episodes 8)
for seed in 0 1; do
  dense=$(eslt -q train --task pendulum --strategy snes --seed "$seed" "${small[@]}")
  for arm in snr magnitude random; do
    ckpt=$dense
    for level in 1 2 3; do
      ckpt=$(eslt -q prune --"$arm" --rate 0.5 "$ckpt" | eslt -q train)
    done
  done
done

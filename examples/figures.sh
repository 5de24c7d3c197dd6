#!/usr/bin/env bash
# The exact commands that made docs/figures/*.png (README, "Figures"): a small CPU run on
# Pendulum (SNES, population 16, 30 generations, std 0.3), IMP levels 1-3 at --rate 0.5 for the snr,
# magnitude and random arms, seeds 0 and 1, then lmc and sharpness on them: about 12 minutes
# on 2 cores. Re-running skips the finished checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
export ESLT_HOME=eslt-runs/figures
# Every trainer setting is pinned, so a change of the CPU defaults cannot mix settings across seeds.
small=(--population 16 --generations 30 --eval-every 10 --std-init 0.3 --lr 1.0 --optimizer sgd
       --train-episodes 4 --test-episodes 8)
for seed in 0 1; do
  dense=$(eslt -q train --task pendulum --strategy snes --seed "$seed" "${small[@]}")
  for arm in snr magnitude random; do
    ckpt=$dense
    for level in 1 2 3; do
      ckpt=$(eslt -q prune --"$arm" --rate 0.5 "$ckpt" | eslt -q train)
    done
  done
done

# Figures (each under ~100 KB at --dpi 80). `eslt plot` prints the figure's path.
fig=docs/figures
runs=$ESLT_HOME
s0=$runs/pendulum-snes-seed0
s1=$runs/pendulum-snes-seed1
plot() { eslt -q plot "$@" --dpi 80 --force; }
plot sparsity "$runs" --out "$fig/sparsity.png"
plot curves "$s0"/L00-trained "$s0"/L0{1,2,3}-snr-trained "$s0"/L03-random-trained --out "$fig/curves.png"
plot layers "$runs" --out "$fig/layers.png"
plot snr "$runs" --out "$fig/snr.png"

# Linear mode connectivity along the snr arm: every pair of levels of seed 0, and seed 0 vs
# seed 1 at each level (the heatmap's diagonal).
snr0=("$s0"/L00-trained "$s0"/L0{1,2,3}-snr-trained)
snr1=("$s1"/L00-trained "$s1"/L0{1,2,3}-snr-trained)
for i in 0 1 2 3; do
  for ((j = i + 1; j < 4; j++)); do eslt -q lmc --points 7 "${snr0[i]}" "${snr0[j]}"; done
  eslt -q lmc --points 7 "${snr0[i]}" "${snr1[i]}"
done > "$runs/lmc.jsonl"
plot lmc "$runs/lmc.jsonl" --out "$fig/lmc.png"

# Sharpness of the snr and random arms, both seeds; 2D surfaces of the dense and the level-3
# snr optimum of seed 0 (written beside the checkpoints, named in the JSON lines).
for ckpt in "$runs"/pendulum-snes-seed{0,1}/L00-trained \
  "$runs"/pendulum-snes-seed{0,1}/L0{1,2,3}-{snr,random}-trained; do
  eslt -q sharpness --directions 3 --points 11 "$ckpt"
done > "$runs/sharpness.jsonl"
plot sharpness "$runs/sharpness.jsonl" --out "$fig/sharpness.png"
for ckpt in "$s0"/L00-trained "$s0"/L03-snr-trained; do
  eslt -q sharpness --2d --grid 11 --directions 1 --points 11 --force "$ckpt"
done | eslt -q plot surface --out "$fig/surface.png" --dpi 80 --force

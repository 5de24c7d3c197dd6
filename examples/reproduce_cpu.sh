#!/usr/bin/env bash
# The CPU study (README, "Results"): IMP on Pendulum and Fashion-MNIST with every arm, over seeds,
# then the tables. Only eslt (through examples/imp.sh) trains; scripts/study.py reads the
# checkpoints' meta into results/*.jsonl and the README's Results table.
#
#   bash examples/reproduce_cpu.sh            # the whole study (hours on 2 cores); resumable
#   STAGES="pendulum" bash examples/reproduce_cpu.sh
#   ESLT_SMOKE=1 bash examples/reproduce_cpu.sh   # seconds: tiny settings, into $RESULTS (tests)
#
# Re-running continues where it stopped: every finished step is reused by eslt itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
RESULTS=${RESULTS:-$repo/results}
JOBS=${JOBS:-2}
STAGES=${STAGES:-"pendulum fashion transfer analyses tables"}
export ESLT_JAX_CACHE=${ESLT_JAX_CACHE:-$HOME/.cache/eslt/jax}

if [ -n "${ESLT_SMOKE:-}" ]; then
  # Tiny: a few generations, 2 levels, 2 seeds (the scripts' wiring, not the science).
  P_SEEDS=0-1; P_LEVELS=2; P_TRAIN=(--population 8 --generations 4 --eval-every 2 --train-episodes 2 --test-episodes 2)
  F_SEEDS=0-1; F_LEVELS=1; F_TRAIN=(--population 4 --generations 2 --eval-every 1 --batch-size 32)
  F_GD=(--epochs 1 --batch-size 512)
  T_LEVEL=1; A_POINTS=(--points 3 --directions 1); L_POINTS=(--points 3)
else
  # Calibrated on this machine (results/calibration): level 0 solves Pendulum in every seed.
  P_SEEDS=0-4; P_LEVELS=10; P_TRAIN=()
  F_SEEDS=0-2; F_LEVELS=5; F_TRAIN=()
  F_GD=(--epochs 2)
  T_LEVEL=5; A_POINTS=(); L_POINTS=()  # transfer from level 5 (67% sparse)
fi
eslt=${ESLT:-$repo/.venv/bin/eslt}
run() { "$eslt" -q "$@"; }
seeds() { local a=${1%-*} b=${1#*-}; seq "$a" "$b"; }

sweep() { "$here/imp.sh" -j "$JOBS" "$@" >/dev/null; }

for stage in $STAGES; do
  case $stage in
    pendulum)
      sweep --task pendulum --strategy snes --seeds "$P_SEEDS" --levels "$P_LEVELS" \
        --arms snr,magnitude,random,random-reinit --root "$RESULTS/runs/pendulum" -- "${P_TRAIN[@]}"
      ;;
    fashion)
      sweep --task fashion_mnist --strategy snes --seeds "$F_SEEDS" --levels "$F_LEVELS" \
        --arms snr,magnitude,random,gd --gd-options "${F_GD[*]}" --root "$RESULTS/runs/fashion" -- "${F_TRAIN[@]}"
      ;;
    transfer)
      # Pendulum: SNR and random tickets of level T_LEVEL to pendulum_heavy; SNES SNR tickets to
      # PGPE and Sep-CMA-ES. Fashion-MNIST: ES tickets to Adam. Written beside the tickets.
      for s in $(seeds "$P_SEEDS"); do
        d=$RESULTS/runs/pendulum/pendulum-snes-seed$s
        for arm in snr random; do
          t=$d/L$(printf %02d "$T_LEVEL")-$arm
          [ -d "$t" ] || continue
          run transfer --task pendulum_heavy "$t" | run train "${P_TRAIN[@]}" >/dev/null
        done
        t=$d/L$(printf %02d "$T_LEVEL")-snr
        [ -d "$t" ] || continue
        for target in pgpe sep_cma_es; do
          run transfer --strategy "$target" "$t" | run train "${P_TRAIN[@]}" >/dev/null
        done
      done
      for s in $(seeds "$F_SEEDS"); do
        d=$RESULTS/runs/fashion/fashion_mnist-snes-seed$s
        for arm in snr magnitude random; do
          t=$d/L$(printf %02d "$F_LEVELS")-$arm
          [ -d "$t" ] || continue
          run transfer --trainer adam "$t" | run train "${F_GD[@]}" >/dev/null
        done
      done
      ;;
    analyses)
      # Sharpness vs level with directions from level 0 (appendix A.3), ES and GD; LMC of level
      # pairs within a seed (Frankle barrier), ES and GD; results as JSON lines and figures.
      mkdir -p "$RESULTS/analyses" "$RESULTS/figures"
      : >"$RESULTS/analyses/sharpness.jsonl.partial"
      : >"$RESULTS/analyses/lmc.jsonl.partial"
      for s in $(seeds "$F_SEEDS"); do
        for d in "$RESULTS/runs/fashion/fashion_mnist-snes-seed$s" "$RESULTS/runs/fashion/fashion_mnist-adam-seed$s"; do
          [ -d "$d/L00-trained" ] || continue
          arm=$([ "${d##*-adam-*}" ] && echo snr || echo magnitude)
          chain=("$d/L00-trained")
          for k in $(seq 1 "$F_LEVELS"); do
            c=$d/L$(printf %02d "$k")-$arm-trained
            [ -d "$c" ] && chain+=("$c")
          done
          for c in "${chain[@]}"; do
            run sharpness --directions-from "$d/L00-trained" "${A_POINTS[@]}" "$c" >>"$RESULTS/analyses/sharpness.jsonl.partial"
          done
          for c in "${chain[@]:1}"; do
            run lmc "${L_POINTS[@]}" "$d/L00-trained" "$c" >>"$RESULTS/analyses/lmc.jsonl.partial"
          done
        done
      done
      mv "$RESULTS/analyses/sharpness.jsonl.partial" "$RESULTS/analyses/sharpness.jsonl"
      mv "$RESULTS/analyses/lmc.jsonl.partial" "$RESULTS/analyses/lmc.jsonl"
      run plot sharpness "$RESULTS/analyses/sharpness.jsonl" --out "$RESULTS/figures/sharpness.png" --force >/dev/null
      run plot lmc "$RESULTS/analyses/lmc.jsonl" --out "$RESULTS/figures/lmc.png" --force >/dev/null
      run plot snr "$RESULTS/runs/fashion" "$RESULTS/runs/pendulum" --out "$RESULTS/figures/snr.png" --force >/dev/null
      ;;
    tables)
      "$repo/.venv/bin/python" "$repo/scripts/study.py" "$RESULTS" ${ESLT_SMOKE:+--readme /dev/null}
      mkdir -p "$RESULTS/figures"
      for name in $(ls "$RESULTS/runs"); do
        run plot sparsity "$RESULTS/runs/$name" --out "$RESULTS/figures/$name-sparsity.png" --force >/dev/null
      done
      ;;
    *) echo "reproduce_cpu.sh: unknown stage '$stage' (pendulum, fashion, transfer, analyses, tables)" >&2; exit 2 ;;
  esac
done

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
STAGES=${STAGES:-"pendulum fashion tables"}
export ESLT_JAX_CACHE=${ESLT_JAX_CACHE:-$HOME/.cache/eslt/jax}

if [ -n "${ESLT_SMOKE:-}" ]; then
  # Tiny: a few generations, 2 levels, 2 seeds (the scripts' wiring, not the science).
  P_SEEDS=0-1; P_LEVELS=2; P_TRAIN=(--population 8 --generations 4 --eval-every 2 --train-episodes 2 --test-episodes 2)
  F_SEEDS=0-1; F_LEVELS=1; F_TRAIN=(--population 4 --generations 2 --eval-every 1 --batch-size 32)
  F_GD=(--epochs 1 --batch-size 512)
else
  # Calibrated on this machine (results/calibration): level 0 solves Pendulum in every seed.
  P_SEEDS=0-4; P_LEVELS=10; P_TRAIN=()
  F_SEEDS=0-2; F_LEVELS=5; F_TRAIN=()
  F_GD=(--epochs 2)
fi

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
    tables)
      "$repo/.venv/bin/python" "$repo/scripts/study.py" "$RESULTS" ${ESLT_SMOKE:+--readme /dev/null}
      mkdir -p "$RESULTS/figures"
      for name in $(ls "$RESULTS/runs"); do
        eslt=${ESLT:-$repo/.venv/bin/eslt}
        "$eslt" -q plot sparsity "$RESULTS/runs/$name" --out "$RESULTS/figures/$name-sparsity.png" --force >/dev/null
      done
      ;;
    *) echo "reproduce_cpu.sh: unknown stage '$stage' (pendulum, fashion, tables)" >&2; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# The CPU study (README, "Results"): IMP on Pendulum and Fashion-MNIST with every arm, over seeds,
# then the tables. Only eslt (through examples/imp.sh) trains; scripts/study.py reads the
# checkpoints' meta into results/*.jsonl and the README's Results table.
#
#   bash examples/reproduce_cpu.sh            # the whole study (hours on 2 cores); resumable
#   STAGES="pendulum" bash examples/reproduce_cpu.sh
#   STAGES="pendulum-paper" JOBS=1 bash examples/reproduce_cpu.sh   # the paper's own Pendulum settings,
#                                                 # 20 levels deep (about 100 s a training on one core)
#   STAGES=analyses A_LEVELS="0 5 10" bash examples/reproduce_cpu.sh  # the analyses at some levels
#                                                 # only (before the deeper levels exist)
#   ESLT_SMOKE=1 bash examples/reproduce_cpu.sh   # seconds: tiny settings, into $RESULTS, by default
#                                                 # ./eslt-runs/cpu-smoke (never the committed results/)
#
# Re-running continues where it stopped: every finished step is reused by eslt itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
if [ -n "${ESLT_SMOKE:-}" ]; then
  RESULTS=${RESULTS:-$PWD/eslt-runs/cpu-smoke}  # tiny runs: never into the committed results/
else
  RESULTS=${RESULTS:-$repo/results}
fi
JOBS=${JOBS:-2}
STAGES=${STAGES:-"pendulum pendulum-paper fashion transfer transfer-deep analyses figures tables"}
export ESLT_JAX_CACHE=${ESLT_JAX_CACHE:-$HOME/.cache/eslt/jax}

if [ -n "${ESLT_SMOKE:-}" ]; then
  # Tiny: a few generations, 2 levels, 2 seeds (the scripts' wiring, not the science).
  P_SEEDS=0-1; P_LEVELS=2; P_TRAIN=(--population 8 --generations 4 --eval-every 2 --train-episodes 2 --test-episodes 2)
  F_SEEDS=0-1; F_LEVELS=1; F_TRAIN=(--population 4 --generations 2 --eval-every 1 --batch-size 32)
  F_GD=(--epochs 1 --batch-size 512)
  T_LEVEL=1; A_POINTS=(--points 3 --directions 1); L_POINTS=(--points 3); S_GRID=(--grid 3)
  PP_SEEDS=0-1; PP_LEVELS=2; PP_TRAIN=(--population 8 --generations 4 --eval-every 2 --test-episodes 2)
  D_LEVEL=2; A_LEVELS="0 1"
else
  # Calibrated on this machine (results/calibration): level 0 solves Pendulum in every seed.
  P_SEEDS=0-4; P_LEVELS=10; P_TRAIN=()
  F_SEEDS=0-2; F_LEVELS=20; F_TRAIN=()  # 20 levels: 1.2% of weights remaining (levels 1-5 were the first study)
  F_GD=(--epochs 2)
  T_LEVEL=5; A_POINTS=(); L_POINTS=(); S_GRID=(--grid 21)  # transfer from level 5 (67% sparse)
  # The paper's own Pendulum settings (Sep-CMA-ES, population 100, 2000 generations, 64x64) to 1.2%
  # of weights remaining, with the paper's arms and baseline (random-reinit).
  PP_SEEDS=0-4; PP_LEVELS=20; PP_TRAIN=()
  # Deep transfers start from level-10 tickets (89.3% sparse); analyses along both Fashion-MNIST
  # chains at these levels.
  D_LEVEL=10; A_LEVELS=${A_LEVELS:-"0 5 10 15 20"}
fi
eslt=${ESLT:-$repo/.venv/bin/eslt}
run() { "$eslt" -q "$@"; }
seeds() { local a=${1%-*} b=${1#*-}; seq "$a" "$b"; }

# Level by level, each level's tickets of all seeds and arms in one batched `eslt train` (same
# numbers as one process per run: bit-identical on CPU, see the README's batching section).
sweep() { "$here/imp.sh" --batch -j "$JOBS" "$@" >/dev/null; }

for stage in $STAGES; do
  case $stage in
    pendulum)
      sweep --task pendulum --strategy snes --seeds "$P_SEEDS" --levels "$P_LEVELS" \
        --arms snr,magnitude,random,random-reinit --root "$RESULTS/runs/pendulum" -- "${P_TRAIN[@]}"
      ;;
    pendulum-paper)
      sweep --task pendulum --strategy sep_cma_es --seeds "$PP_SEEDS" --levels "$PP_LEVELS" \
        --arms snr,magnitude,random-reinit --root "$RESULTS/runs/pendulum-paper" -- --preset paper "${PP_TRAIN[@]}"
      ;;
    fashion)
      sweep --task fashion_mnist --strategy snes --seeds "$F_SEEDS" --levels "$F_LEVELS" \
        --arms snr,magnitude,random-reinit,gd --gd-options "${F_GD[*]}" --root "$RESULTS/runs/fashion" \
        -- "${F_TRAIN[@]}"
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
        for arm in snr random; do
          t=$d/L$(printf %02d "$T_LEVEL")-$arm
          [ -d "$t" ] || continue
          for target in pgpe sep_cma_es; do
            run transfer --strategy "$target" "$t" | run train "${P_TRAIN[@]}" >/dev/null
          done
        done
      done
      # The targets' own dense level 0 (is the target solvable at these settings at all?).
      sweep --task pendulum_heavy --strategy snes --seeds "$P_SEEDS" --levels 0 --root "$RESULTS/runs/targets" \
        -- "${P_TRAIN[@]}"
      for target in pgpe sep_cma_es; do
        sweep --task pendulum --strategy "$target" --seeds "$P_SEEDS" --levels 0 --root "$RESULTS/runs/targets" \
          -- "${P_TRAIN[@]}"
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
    transfer-deep)
      # From level D_LEVEL, each against the paper's baseline (random-reinit tickets transferred alike):
      # Pendulum at the paper's settings to pendulum_heavy and from Sep-CMA-ES to SNES (both trained
      # with --preset paper, the target's own paper settings); Fashion-MNIST ES tickets to Adam.
      for s in $(seeds "$PP_SEEDS"); do
        d=$RESULTS/runs/pendulum-paper/pendulum-sep_cma_es-seed$s
        for arm in snr magnitude random-reinit; do
          t=$d/L$(printf %02d "$D_LEVEL")-$arm
          [ -d "$t" ] || continue
          run transfer --task pendulum_heavy "$t" | run train --preset paper "${PP_TRAIN[@]}" >/dev/null
          run transfer --strategy snes "$t" | run train --preset paper "${PP_TRAIN[@]}" >/dev/null
        done
      done
      # The targets' own dense level 0 at the same settings.
      sweep --task pendulum_heavy --strategy sep_cma_es --seeds "$PP_SEEDS" --levels 0 \
        --root "$RESULTS/runs/targets-paper" -- --preset paper "${PP_TRAIN[@]}"
      sweep --task pendulum --strategy snes --seeds "$PP_SEEDS" --levels 0 --root "$RESULTS/runs/targets-paper" \
        -- --preset paper "${PP_TRAIN[@]}"
      for s in $(seeds "$F_SEEDS"); do
        d=$RESULTS/runs/fashion/fashion_mnist-snes-seed$s
        for arm in snr magnitude random-reinit; do
          t=$d/L$(printf %02d "$D_LEVEL")-$arm
          [ -d "$t" ] || continue
          run transfer --trainer adam "$t" | run train "${F_GD[@]}" >/dev/null
        done
      done
      ;;
    analyses)
      # Fashion-MNIST, per seed, the ES chain (SNES, SNR) and the GD chain (Adam, magnitude), at the
      # levels A_LEVELS: sharpness along directions drawn at its level 0 (appendix A.3); LMC
      # (Frankle barrier) of every pair of those levels within a chain, seed 0 vs seed 1 at each level,
      # and ES vs GD at the same level and seed. One JSON file per call under analyses/calls/
      # (reused when present, so an interrupted stage continues). The pending calls go to a few
      # batched processes: all LMC pairs to one `eslt lmc`, each chain's sharpness to one
      # `eslt sharpness` (its directions are drawn at that chain's level 0).
      calls=$RESULTS/analyses/calls
      mkdir -p "$calls" "$RESULTS/figures"
      lmc_jobs=()
      declare -A sharp_jobs=()
      job() { # OUT sharpness|lmc ... : a pending call (its OUT not yet written)
        local out=$1 kind=$2
        [ -s "$out" ] && return 0
        if [ "$kind" = lmc ]; then
          lmc_jobs+=("$out"$'\t'"${@: -2:1}"$'\t'"${@: -1}")
        else
          sharp_jobs[$4]+="$out"$'\t'"${@: -1}"$'\n'
        fi
      }
      # keep OUTS CMD...: run CMD; its stdout lines land, in order, in the files listed in OUTS.
      keep() {
        local -a outs
        mapfile -t outs <<<"$1"
        shift
        local i=0 line
        while IFS= read -r line; do
          printf '%s\n' "$line" >"${outs[i]}.partial" && mv "${outs[i]}.partial" "${outs[i]}"
          i=$((i + 1))
        done < <("$@")
      }
      chain_of() { # SEED KIND -> the chain's folder and arm
        case $2 in
          es) echo "$RESULTS/runs/fashion/fashion_mnist-snes-seed$1 snr" ;;
          gd) echo "$RESULTS/runs/fashion/fashion_mnist-adam-seed$1 magnitude" ;;
        esac
      }
      at() { # SEED KIND LEVEL -> the trained checkpoint
        local d arm
        read -r d arm <<<"$(chain_of "$1" "$2")"
        if [ "$3" = 0 ]; then echo "$d/L00-trained"; else echo "$d/L$(printf %02d "$3")-$arm-trained"; fi
      }
      seed_list=($(seeds "$F_SEEDS"))
      for s in "${seed_list[@]}"; do
        for kind in es gd; do
          for i in $A_LEVELS; do
            job "$calls/sharpness-$kind-seed$s-L$i.json" sharpness --directions-from "$(at "$s" "$kind" 0)" \
              "${A_POINTS[@]}" "$(at "$s" "$kind" "$i")"
            for j in $A_LEVELS; do
              [ "$j" -gt "$i" ] || continue
              job "$calls/lmc-$kind-seed$s-L$i-L$j.json" lmc "${L_POINTS[@]}" "$(at "$s" "$kind" "$i")" "$(at "$s" "$kind" "$j")"
            done
            [ "$kind" = es ] && job "$calls/lmc-es-gd-seed$s-L$i.json" lmc "${L_POINTS[@]}" "$(at "$s" es "$i")" "$(at "$s" gd "$i")"
            if [ "$s" = "${seed_list[0]}" ] && [ ${#seed_list[@]} -gt 1 ]; then
              job "$calls/lmc-$kind-seed$s-seed${seed_list[1]}-L$i.json" lmc "${L_POINTS[@]}" "$(at "$s" "$kind" "$i")" \
                "$(at "${seed_list[1]}" "$kind" "$i")"
            fi
          done
        done
      done
      if [ ${#lmc_jobs[@]} -gt 0 ]; then
        printf '%s\n' "${lmc_jobs[@]}" | cut -f2,3 >"$calls/.pairs"
        keep "$(printf '%s\n' "${lmc_jobs[@]}" | cut -f1)" run lmc "${L_POINTS[@]}" --pairs "$calls/.pairs"
      fi
      for c0 in "${!sharp_jobs[@]}"; do
        todo=${sharp_jobs[$c0]%$'\n'}
        mapfile -t ckpts < <(cut -f2 <<<"$todo")
        keep "$(cut -f1 <<<"$todo")" run sharpness --directions-from "$c0" "${A_POINTS[@]}" "${ckpts[@]}"
      done
      while IFS= read -r out; do
        [ -z "$out" ] || [ -s "$out" ] ||
          { echo "reproduce_cpu.sh: analyses: $out was not written (see the errors above)" >&2; exit 1; }
      done < <(printf '%s\n' "${lmc_jobs[@]}" "${sharp_jobs[@]}" | cut -f1)
      cat "$calls"/sharpness-*.json >"$RESULTS/analyses/sharpness.jsonl"
      cat "$calls"/lmc-es-seed*.json "$calls"/lmc-gd-seed*.json >"$RESULTS/analyses/lmc.jsonl"
      cat "$calls"/lmc-es-gd-*.json >"$RESULTS/analyses/lmc-es-gd.jsonl"
      run plot sharpness "$RESULTS/analyses/sharpness.jsonl" --out "$RESULTS/figures/sharpness.png" --force >/dev/null
      run plot lmc "$RESULTS/analyses/lmc.jsonl" --out "$RESULTS/figures/lmc.png" --force >/dev/null
      run plot lmc "$RESULTS/analyses/lmc-es-gd.jsonl" --out "$RESULTS/figures/lmc-es-gd.png" --force >/dev/null
      roots=()
      for r in fashion pendulum pendulum-paper; do [ -d "$RESULTS/runs/$r" ] && roots+=("$RESULTS/runs/$r"); done
      run plot snr "${roots[@]}" --out "$RESULTS/figures/snr.png" --force >/dev/null
      ;;
    figures)
      # The README's Figures section: training curves and per-layer sparsity of the Fashion-MNIST
      # chains, and 2D loss surfaces (directions from level 0) of seed 0's ES and GD optima at
      # levels 0 and F_LEVELS.
      f=$RESULTS/figures d=$RESULTS/runs/fashion
      mkdir -p "$f" "$RESULTS/analyses/surfaces"
      last=L$(printf %02d "$F_LEVELS")
      run plot curves "$d"/fashion_mnist-snes-seed0/{L00-trained,"$last"-snr-trained,"$last"-random-reinit-trained} \
        --out "$f/curves.png" --force >/dev/null
      run plot layers "$d" --out "$f/layers.png" --force >/dev/null
      surfaces=()
      for c in snes-seed0/L00-trained snes-seed0/"$last"-snr-trained adam-seed0/L00-trained adam-seed0/"$last"-magnitude-trained; do
        npz=$RESULTS/analyses/surfaces/${c//\//-}.npz
        [ -s "$npz" ] || run sharpness --2d "${S_GRID[@]}" --directions 1 --points 5 \
          --directions-from "$d/fashion_mnist-${c%%/*}/L00-trained" --surface-out "$npz" "$d/fashion_mnist-$c" >/dev/null
        surfaces+=("$npz")
      done
      run plot surface "${surfaces[@]}" --out "$f/surface.png" --force >/dev/null
      ;;
    tables)
      "$repo/.venv/bin/python" "$repo/scripts/study.py" "$RESULTS" ${ESLT_SMOKE:+--readme /dev/null}
      mkdir -p "$RESULTS/figures"
      for name in $(ls "$RESULTS/runs"); do
        run plot sparsity "$RESULTS/runs/$name" --out "$RESULTS/figures/$name-sparsity.png" --force >/dev/null
      done
      ;;
    *) echo "reproduce_cpu.sh: unknown stage '$stage' (pendulum, pendulum-paper, fashion, transfer, transfer-deep, analyses, figures, tables)" >&2; exit 2 ;;
  esac
done

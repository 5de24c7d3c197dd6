# shellcheck shell=bash
# Shared settings and helpers of the paper recipes (examples/paper/*.sh), sourced by each of them.
# Not a recipe itself. Every recipe reproduces one figure or table of Lange & Sprekeler (ICML 2023)
# at `--preset paper` settings, on a GPU host, by calling examples/imp.sh and eslt; the recipes
# share one runs root, so a checkpoint that two figures need is trained once.
#
#   bash examples/paper/fig1.sh                # on a GPU host; prints the figures' paths
#   ESLT_SMOKE=1 bash examples/paper/fig1.sh   # seconds to minutes on a CPU (the tests)
#   for r in examples/paper/{fig?,table1,a3_surfaces}.sh; do bash "$r"; done   # everything
# A recipe re-run continues where it stopped (a crash, a wall-clock limit, SIGTERM: eslt saves).
#
# Environment (all optional):
#   ESLT_SMOKE=1     tiny settings (seconds per training, 1 seed, 1 level, small analyses, fast
#                    tasks substituted for brax and tfds ones): the recipes' wiring, not the science.
#                    `--preset paper` is not used then. tests/test_paper_recipes.py runs every recipe so.
#                    Smoke runs have a root of their own (below): their tiny checkpoints would make a
#                    later real run refuse every step ("made with other settings").
#   PAPER_ROOT       runs root (default $ESLT_HOME, else ./eslt-runs/paper; smoke: $ESLT_HOME/paper-smoke,
#                    else ./eslt-runs/paper-smoke); exported as ESLT_HOME. A root holds smoke runs or
#                    real ones, never both (ROOT/.paper/mode says which; a recipe of the other kind stops).
#   PAPER_FIGURES    where figures and tables go (default ROOT/figures)
#   PAPER_SEEDS      seeds, imp.sh syntax: 0-4 or 0,2 (default 0-4; smoke 0)
#   PAPER_LEVELS     IMP levels after the dense level 0 (default 20; smoke 1)
#   PAPER_JOBS       (seed, arm) chains in parallel, imp.sh -j (default 1: one GPU);
#                    with more than 1, XLA_PYTHON_CLIENT_PREALLOCATE=false is set unless it is set
#   PAPER_RECHECK=1  ignore the recipes' own "finished" markers (below) and let eslt check every step
#   ESLT             the eslt command (default `eslt` on PATH, else this checkout's .venv)
#   MNIST_DIR, KMNIST_DIR  folders with MNIST's / K-MNIST's four IDX files (else tfds)
# Run recipes one after another on one root (or give each its own PAPER_ROOT): two at once
# that sweep the same task and ES collide on imp.sh's sweep lock, and the later one stops.
#
# Finished work is skipped twice over. eslt itself reuses an output that exists with the same
# settings and parent (README, "Re-running is safe"), but asking it costs one eslt process per
# step (seconds of JAX start-up; minutes for a 5-seed, 20-level sweep). So each finished IMP chain,
# transfer chain or analysis also leaves a marker under ROOT/.paper/, named by a hash of its full
# settings (task, strategy, arm, seeds, levels, options, eslt version); a marker counts only while
# every checkpoint it lists exists and none is newer than it (a re-trained level 0 makes all its
# chains stale), else the work goes through eslt again, which reuses or refuses as usual.
#
# GPU time: every recipe's header gives an ESTIMATE, not a measurement: eslt has not run these
# benchmarks on a GPU yet. The estimates count the training runs a recipe starts and price them
# with the paper's appendix B, which reports one 20-run IMP sequence at about 2 h for MNIST-like
# tasks and 1 h for Pendulum (RTX 2080Ti) and 10 h for brax (V100S), i.e. per ES training about
# 6 min (vision: 4000 generations x 128 members x 1024 images), 3 min (Pendulum: 2000 x 100 x
# 8 episodes of 200 steps) and 30 min (brax: 3000 x 256 x 8 episodes of 500 steps, 3e9 steps).
# Gradient baselines: about 1 min per Adam run (2 epochs), 5 min with 20 epochs, 5 min per
# Pendulum PPO run (1e7 steps) and 30 min per brax PPO run (5e7 steps). eslt runs brax 0.14's
# generalized physics (slower per step than brax v1's spring, which the paper ran), so the brax
# numbers may well be low; a faster GPU than the paper's makes the others high.
set -euo pipefail
die() { printf 'paper: error: %s\n' "$*" >&2; exit 1; }

PAPER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$(dirname "$PAPER_DIR")")
IMP=$REPO/examples/imp.sh
if [ -z "${ESLT:-}" ]; then
  if command -v eslt >/dev/null; then ESLT=eslt; else ESLT=$REPO/.venv/bin/eslt; fi
fi
command -v "$ESLT" >/dev/null || die "no eslt command ($ESLT): put eslt on PATH or set ESLT"
export ESLT

SMOKE=0
case ${ESLT_SMOKE:-} in "" | 0) ;; *) SMOKE=1 ;; esac
smoke() { [ "$SMOKE" = 1 ]; }

if smoke; then
  MODE=smoke
  ROOT=${PAPER_ROOT:-${ESLT_HOME:+$ESLT_HOME/paper-smoke}}
  ROOT=${ROOT:-./eslt-runs/paper-smoke}
else
  MODE=paper
  ROOT=${PAPER_ROOT:-${ESLT_HOME:-./eslt-runs/paper}}
fi
mkdir -p "$ROOT"
ROOT=$(cd "$ROOT" && pwd)
if [ -f "$ROOT/.paper/mode" ] && [ "$(cat "$ROOT/.paper/mode")" != "$MODE" ]; then
  die "$ROOT holds the recipes' $(cat "$ROOT/.paper/mode") runs, this is a $MODE run: give it its own PAPER_ROOT" \
    "(smoke and real runs never share a root)"
fi
export ESLT_HOME=$ROOT
FIGURES=${PAPER_FIGURES:-$ROOT/figures}
mkdir -p "$FIGURES" "$ROOT/.paper" "$ROOT/analysis"
[ -f "$ROOT/.paper/mode" ] || printf '%s\n' "$MODE" >"$ROOT/.paper/mode"
LOG=$ROOT/paper.log  # stderr of the recipes' own eslt calls (imp.sh logs to ROOT/imp-*.log)
if smoke; then
  SEEDS=${PAPER_SEEDS:-0} LEVELS=${PAPER_LEVELS:-1} JOBS=${PAPER_JOBS:-1}
else
  SEEDS=${PAPER_SEEDS:-0-4} LEVELS=${PAPER_LEVELS:-20} JOBS=${PAPER_JOBS:-1}
fi
[ "$JOBS" -le 1 ] || export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
SEED_LIST=()
IFS=, read -ra _items <<<"$SEEDS"
for _item in "${_items[@]}"; do
  if [[ $_item =~ ^([0-9]+)-([0-9]+)$ ]]; then
    for ((_s = BASH_REMATCH[1]; _s <= BASH_REMATCH[2]; _s++)); do SEED_LIST+=("$_s"); done
  else
    SEED_LIST+=("$_item")
  fi
done
ESLT_VERSION=$("$ESLT" --version 2>/dev/null || echo unknown)

# Smoke vision data: the first 1024 training and 512 test images of the offline Fashion-MNIST IDX
# files (Debian's dataset-fashion-mnist, or FASHION_MNIST_DIR), as IDX files of their own under
# ROOT/.paper, so that a test evaluation or an Adam epoch takes a moment, not a minute on a CPU.
SMOKE_DATA=()
if smoke; then
  _src=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
  _dst=$ROOT/.paper/fashion-mnist-smoke
  if [ -d "$_src" ] && [ ! -f "$_dst/done" ]; then
    mkdir -p "$_dst"
    python3 - "$_src" "$_dst" <<'PY' || die "cannot write the smoke subset of $_src into $_dst"
import gzip, pathlib, struct, sys
src, dst = map(pathlib.Path, sys.argv[1:])
for base, n in (("train-images-idx3-ubyte", 1024), ("train-labels-idx1-ubyte", 1024),
                ("t10k-images-idx3-ubyte", 512), ("t10k-labels-idx1-ubyte", 512)):
    path = src / base if (src / base).is_file() else src / (base + ".gz")
    raw = gzip.open(path).read() if path.name.endswith(".gz") else path.read_bytes()
    ndim = raw[3]
    dims = list(struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim]))
    size = 1
    for d in dims[1:]:
        size *= d
    dims[0] = min(n, dims[0])
    (dst / base).write_bytes(raw[:4] + struct.pack(">" + "I" * ndim, *dims) + raw[4 + 4 * ndim:4 + 4 * ndim + dims[0] * size])
(dst / "done").write_text("")
PY
  fi
  if [ -f "$_dst/done" ]; then SMOKE_DATA=(--data-dir "$_dst"); fi
fi

# e ARGS...: one eslt call, its stderr appended to LOG; a failure names the call and the log.
e() {
  local rc=0
  printf '%(%Y-%m-%dT%H:%M:%S%z)T eslt %s\n' -1 "$*" >>"$LOG"
  "$ESLT" "$@" 2>>"$LOG" || rc=$?
  [ "$rc" = 0 ] || { printf 'paper: eslt %s failed (exit %s); see %s\n' "$*" "$rc" "$LOG" >&2; return "$rc"; }
}

# kind_of TASK: vision, brax or control (gymnax).
kind_of() {
  case $1 in
    fashion_mnist | fashion-mnist | mnist | kmnist | mnist_corrupted | tfds:*) echo vision ;;
    ant | ant_heavy | halfcheetah | halfcheetah_heavy | hopper | humanoid | humanoidstandup | \
      inverted_pendulum | inverted_double_pendulum | pusher | reacher | walker2d) echo brax ;;
    *) echo control ;;
  esac
}

# gd_trainer TASK: the gradient baseline of the task (Adam for images, PPO for control).
gd_trainer() { if [ "$(kind_of "$1")" = vision ]; then echo adam; else echo ppo; fi; }

# data_opts TASK: --data-dir for MNIST and K-MNIST when MNIST_DIR / KMNIST_DIR name a folder
# with their four IDX files (else eslt reads them with tfds, prepared on a host with network).
data_opts() {
  DATA_OPTS=()
  case $1 in
    mnist) [ -z "${MNIST_DIR:-}" ] || DATA_OPTS=(--data-dir "$MNIST_DIR") ;;
    kmnist) [ -z "${KMNIST_DIR:-}" ] || DATA_OPTS=(--data-dir "$KMNIST_DIR") ;;
  esac
}

# smoke_task TASK: stops a smoke run on a brax task (smoke runs use fast tasks; tests/test_brax.py covers brax).
smoke_task() { [ "$(kind_of "$1")" != brax ] || die "smoke runs train no brax task ($1): tests/test_brax.py covers brax"; }

# es_opts TASK: sets ES_OPTS, the options of every ES `eslt train` on TASK.
es_opts() {
  if ! smoke; then data_opts "$1"; ES_OPTS=(--preset paper "${DATA_OPTS[@]}"); return; fi
  smoke_task "$1"
  case $(kind_of "$1") in
    vision) ES_OPTS=(--population 4 --generations 2 --eval-every 1 --batch-size 32 "${SMOKE_DATA[@]}") ;;
    control) ES_OPTS=(--population 4 --generations 2 --eval-every 1 --train-episodes 1 --test-episodes 1) ;;
  esac
}

# gd_opts TASK: sets GD_OPTS, the options of every gradient-baseline `eslt train` on TASK
# (the GD-IMP arm: Adam 2 epochs per level, as the paper's code; PPO with the brax configs).
gd_opts() {
  if ! smoke; then data_opts "$1"; GD_OPTS=(--preset paper "${DATA_OPTS[@]}"); return; fi
  smoke_task "$1"
  case $(kind_of "$1") in
    vision) GD_OPTS=(--epochs 1 --batch-size 512 "${SMOKE_DATA[@]}") ;;
    control) GD_OPTS=(--timesteps 256 --num-envs 4 --rollout-steps 16 --minibatches 2 --update-epochs 1
                      --eval-every 2 --test-episodes 1) ;;
  esac
}

lv() { printf 'L%02d' "$1"; }
run_dir() { printf '%s/%s-%s-seed%s' "$ROOT" "${1//:/-}" "$2" "$3"; }  # TASK STRATEGY|TRAINER SEED

# chain_paths TASK STRATEGY ARM [trained|tickets|all]: the checkpoints of one IMP chain over every
# seed, by eslt's naming (level 0 included unless tickets). Arm gd: the gradient baseline's run
# folder, pruned by magnitude.
chain_paths() {
  local task=$1 strategy=$2 arm=$3 which=${4:-trained} seed dir k
  if [ "$arm" = gd ]; then strategy=$(gd_trainer "$task") arm=magnitude; fi
  for seed in "${SEED_LIST[@]}"; do
    dir=$(run_dir "$task" "$strategy" "$seed")
    [ "$which" = tickets ] || echo "$dir/L00-trained"
    for ((k = 1; k <= LEVELS; k++)); do
      [ "$which" = trained ] || echo "$dir/$(lv "$k")-$arm"
      [ "$which" = tickets ] || echo "$dir/$(lv "$k")-$arm-trained"
    done
  done
}

# ckpt_at TASK STRATEGY ARM SEED LEVEL: one trained checkpoint of a chain (level 0: L00-trained).
ckpt_at() {
  local strategy=$2 arm=$3
  if [ "$arm" = gd ]; then strategy=$(gd_trainer "$1") arm=magnitude; fi
  if [ "$5" = 0 ]; then
    printf '%s/L00-trained\n' "$(run_dir "$1" "$strategy" "$4")"
  else
    printf '%s/%s-%s-trained\n' "$(run_dir "$1" "$strategy" "$4")" "$(lv "$5")" "$arm"
  fi
}

# marker NAME SETTINGS...: the marker path for a piece of work with these settings.
marker() {
  local name=$1
  shift
  printf '%s/.paper/%s-%s' "$ROOT" "$name" "$(printf '%s\0' "$ESLT_VERSION" "$SEEDS" "$LEVELS" "$@" | sha256sum | cut -c1-16)"
}

# finished MARKER: the marker exists, every path it lists exists and none is newer than it.
finished() {
  local m=$1 paths
  [ -z "${PAPER_RECHECK:-}" ] && [ -f "$m" ] || return 1
  mapfile -t paths <"$m"
  none_newer "$m" "${paths[@]}"
}
# none_newer REF PATHS...: every path exists and none is newer than REF.
none_newer() {
  local ref=$1 p
  shift
  for p in "$@"; do [ -e "$p" ] || return 1; done
  [ $# = 0 ] || [ -z "$(find "$@" -maxdepth 0 -newer "$ref" -print -quit)" ]
}

# sweep TASK STRATEGY ARMS: examples/imp.sh over SEEDS and LEVELS for the comma-separated ARMS
# (snr, magnitude, random, random-reinit, gd, ...), with ES_OPTS and GD_OPTS of the task;
# chains with a valid marker are skipped.
sweep() {
  local task=$1 strategy=$2 arms=$3 todo=() arm m
  es_opts "$task"
  gd_opts "$task"
  for arm in ${arms//,/ }; do
    finished "$(chain_marker "$task" "$strategy" "$arm")" || todo+=("$arm")
  done
  [ ${#todo[@]} -gt 0 ] || return 0
  printf 'paper: IMP %s %s, arms %s, seeds %s, levels %s\n' "$task" "$strategy" "${todo[*]}" "$SEEDS" "$LEVELS" >&2
  "$IMP" --task "$task" --strategy "$strategy" --seeds "$SEEDS" --levels "$LEVELS" \
    --arms "$(IFS=,; echo "${todo[*]}")" --root "$ROOT" -j "$JOBS" --gd-options "${GD_OPTS[*]}" \
    -- "${ES_OPTS[@]}" >/dev/null ||
    die "examples/imp.sh --task $task --strategy $strategy failed; see $ROOT/imp-${task//:/-}-$strategy.log"
  for arm in "${todo[@]}"; do
    m=$(chain_marker "$task" "$strategy" "$arm")
    chain_paths "$task" "$strategy" "$arm" all >"$m"
  done
}
chain_marker() {  # TASK STRATEGY ARM (the GD-IMP chain does not depend on the ES)
  if [ "$3" = gd ]; then
    marker "chain-${1//:/-}-gd" "$1" gd "${GD_OPTS[*]}"
  else
    marker "chain-${1//:/-}-$2-$3" "$1" "$2" "$3" "${ES_OPTS[*]}"
  fi
}

# transfer_opts SOURCE_TASK --task|--strategy|--trainer TARGET: sets XFER_OPTS, the `eslt train`
# options of a retargeted ticket: the target's own ES settings, Adam with 20 epochs (the paper
# code's ES->GD transfer; its GD-IMP arm runs 2) or PPO.
transfer_opts() {
  case $2 in
    --task) es_opts "$3"; XFER_OPTS=("${ES_OPTS[@]}") ;;
    --strategy) es_opts "$1"; XFER_OPTS=("${ES_OPTS[@]}") ;;
    --trainer)
      gd_opts "$1"
      XFER_OPTS=("${GD_OPTS[@]}")
      if ! smoke && [ "$3" = adam ]; then XFER_OPTS+=(--epochs 20); fi ;;
  esac
}

# transfer_paths SOURCE_TASK SOURCE_STRATEGY TARGET [trained|tickets|all]: the transferred
# checkpoints, beside the source's SNR tickets (Lkk-snr-to-TARGET, Lkk-snr-to-TARGET-trained).
transfer_paths() {
  local seed k dir which=${4:-trained}
  for seed in "${SEED_LIST[@]}"; do
    dir=$(run_dir "$1" "$2" "$seed")
    for ((k = 1; k <= LEVELS; k++)); do
      [ "$which" = trained ] || echo "$dir/$(lv "$k")-snr"
      [ "$which" = trained ] || echo "$dir/$(lv "$k")-snr-to-$3"
      [ "$which" = tickets ] || echo "$dir/$(lv "$k")-snr-to-$3-trained"
    done
  done
}

# transfer SOURCE_TASK SOURCE_STRATEGY --task|--strategy|--trainer TARGET: Section 4's transfer.
# The source's SNR IMP chain (sweep), then, for every seed and level k, its level-k SNR ticket
# retargeted by `eslt transfer` and trained with the target's settings (not iterated: each
# level's ticket comes from the source's own pruning).
transfer() {
  local task=$1 strategy=$2 flag=$3 target=$4 m seed k dir t
  sweep "$task" "$strategy" snr
  transfer_opts "$task" "$flag" "$target"
  m=$(marker "transfer-${task//:/-}-$strategy-to-$target" "$task" "$strategy" "$flag" "$target" "${XFER_OPTS[*]}")
  finished "$m" && return 0
  printf 'paper: transfer %s %s SNR tickets %s %s, seeds %s, levels 1-%s\n' "$task" "$strategy" "$flag" "$target" "$SEEDS" "$LEVELS" >&2
  for seed in "${SEED_LIST[@]}"; do
    dir=$(run_dir "$task" "$strategy" "$seed")
    for ((k = 1; k <= LEVELS; k++)); do
      t=$(e -q transfer "$flag" "$target" "$dir/$(lv "$k")-snr")
      e -q train "${XFER_OPTS[@]}" "$t" >/dev/null
    done
  done
  transfer_paths "$task" "$strategy" "$target" all >"$m"
}

# paths_of TASK STRATEGY ARMS [trained|tickets|all]: chain_paths of every comma-separated arm.
paths_of() {
  local arm
  for arm in ${3//,/ }; do chain_paths "$1" "$2" "$arm" "${4:-trained}"; done
}

# The transfer comparisons of Figures 4 and 5 and Table 1, as SOURCE_TASK:SOURCE_STRATEGY:TARGET.
# in_table1 names the rows of the paper's Table 1; the others are eslt's additions (Pendulum ->
# Pendulum with mass 1.5, a cheap gymnax sibling pair; F-MNIST's SNES tickets by Sep-CMA-ES).
if smoke; then  # gymnax and F-MNIST stand in for brax and MNIST
  TASK_TRANSFERS=(pendulum:sep_cma_es:pendulum_heavy)
  ES_TRANSFERS=(fashion_mnist:snes:pgpe)
  GD_TRANSFERS=(fashion_mnist:snes:adam pendulum:sep_cma_es:ppo)
  TARGET_ARMS="" GD_ARMS=""  # the target's own chains: none in smoke (only the transferred tickets
                             # and the source's chain)
else
  TASK_TRANSFERS=(ant:sep_cma_es:ant_heavy fashion_mnist:snes:mnist pendulum:sep_cma_es:pendulum_heavy)
  ES_TRANSFERS=(ant:sep_cma_es:des fashion_mnist:snes:pgpe fashion_mnist:snes:sep_cma_es)
  GD_TRANSFERS=(ant:sep_cma_es:ppo fashion_mnist:snes:adam)
  TARGET_ARMS=snr,random-reinit GD_ARMS=gd
fi
in_table1() {
  case $1 in
    ant:sep_cma_es:ant_heavy | fashion_mnist:snes:mnist | ant:sep_cma_es:des | fashion_mnist:snes:pgpe | \
      ant:sep_cma_es:ppo | fashion_mnist:snes:adam) return 0 ;;
  esac
  return 1
}

# transfer_pair FLAG SOURCE_TASK:SOURCE_STRATEGY:TARGET: every run of one transfer comparison
# (the source's SNR chain, the transferred tickets, the target's own chains: TARGET_ARMS on the
# target task or ES, GD_ARMS (GD-IMP) for a gradient trainer) and, in PAIR_INPUTS, their trained
# checkpoints; PAIR_NAME names the comparison.
transfer_pair() {
  local flag=$1 task strategy target ttask tstrat arms
  IFS=: read -r task strategy target <<<"$2"
  case $flag in
    --task) ttask=$target tstrat=$strategy arms=$TARGET_ARMS ;;
    --strategy) ttask=$task tstrat=$target arms=$TARGET_ARMS ;;
    --trainer) ttask=$task tstrat=$strategy arms=$GD_ARMS ;;
    *) die "transfer_pair: $flag" ;;
  esac
  transfer "$task" "$strategy" "$flag" "$target"
  [ -z "$arms" ] || sweep "$ttask" "$tstrat" "$arms"
  mapfile -t PAIR_INPUTS < <(transfer_paths "$task" "$strategy" "$target"; chain_paths "$task" "$strategy" snr
                             paths_of "$ttask" "$tstrat" "$arms")
  PAIR_NAME=${task//:/-}-$strategy-to-$target
}

# transfer_figure FLAG NAME PAIRS...: transfer_pair FLAG for each pair, then one sparsity figure
# FIGURES/NAME.png of all their runs.
transfer_figure() {
  local flag=$1 name=$2 pair inputs=()
  shift 2
  for pair in "$@"; do
    transfer_pair "$flag" "$pair"
    inputs+=("${PAIR_INPUTS[@]}")
  done
  plot sparsity "$name" "${inputs[@]}"
}

# fresh OUT SETTINGS INPUTS...: OUT exists, was made with SETTINGS (recorded by made) and no
# input is newer (make's rule); PAPER_RECHECK=1: never fresh.
fresh() {
  local out=$1 settings=$2
  shift 2
  [ -z "${PAPER_RECHECK:-}" ] && [ -s "$out" ] && [ -f "$out.settings" ] || return 1
  [ "$(cat "$out.settings")" = "$ESLT_VERSION $settings" ] || return 1
  none_newer "$out" "$@"
}
# made OUT SETTINGS: OUT.tmp, finished, becomes OUT, made with SETTINGS.
made() {
  mv "$1.tmp" "$1"
  printf '%s\n' "$ESLT_VERSION $2" >"$1.settings"
}

# plot KIND NAME INPUTS...: `eslt plot KIND` into FIGURES/NAME.png; prints the figure's path.
plot() {
  local kind=$1 name=$2
  shift 2
  e -q plot "$kind" "$@" --out "$FIGURES/$name.png" --force
}

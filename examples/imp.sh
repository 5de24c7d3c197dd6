#!/usr/bin/env bash
# Iterative magnitude/SNR pruning (IMP) sweep over seeds, arms and levels, for shells, cron and
# SLURM. It only calls `eslt`; every step's output path comes from eslt's conventions, and a
# re-run skips finished steps because eslt reports an existing output with the same settings
# instead of recomputing it. `examples/imp.sh --help` describes the options and exit codes.
set -uo pipefail

usage() {
  cat <<'EOF'
Usage: examples/imp.sh [OPTIONS] [-- TRAIN_OPTIONS...]

Iterative pruning sweep: for each seed, the dense level 0
  eslt train --task T --strategy S --seed N TRAIN_OPTIONS
then, for each arm, LEVELS rounds of
  eslt prune --ARM [PRUNE_OPTIONS] CKPT  ->  eslt train [TRAIN_OPTIONS] TICKET
in the run folder ROOT/<task>-<strategy>-seed<N>/ (L00-trained, L01-snr, L01-snr-trained, ...).
Re-running the same sweep skips every finished step (eslt reuses outputs that exist with the
same settings) and resumes interrupted trainings.

Options:
  -t, --task T           task (default fashion_mnist)
  -s, --strategy S       ES strategy (default snes)
      --seeds LIST       seeds: 0,1,2 or 0-4 or 0-2,7 (default 0)
  -n, --num-seeds N      seeds 0 .. N-1 (instead of --seeds)
  -a, --arms LIST        comma-separated arms (default snr,magnitude,random,random-reinit):
                           CRITERION          eslt prune --CRITERION (snr, magnitude, random,
                                              movement, snip, grasp)
                           CRITERION-reinit   eslt prune --CRITERION --reinit
                           gd                 gradient baseline: level 0 trained with
                                              --trainer adam (vision) / ppo (control) in its own
                                              run folder ROOT/<task>-<trainer>-seed<N>/, pruned
                                              by --magnitude
  -l, --levels L         pruning levels per arm (default 10; 0: level 0 only)
  -r, --root DIR         runs root (default $ESLT_HOME, else ./eslt-runs)
  -j, --jobs N           (seed, arm) chains run in parallel (default 1); the level 0 of a seed
                         finishes before its arms start. With --batch: eslt processes per step
      --batch            level by level: every level's trainings of all seeds and arms go to one
                         `eslt train` (-j: split over N), which trains those that share settings
                         and surviving-weight count as one program; prunes take a whole arm at once
      --log FILE         log: every eslt call's stderr, timestamped and tagged, appended
                         (default ROOT/imp-<task>-<strategy>.log)
      --lock FILE        the sweep's flock file
                         (default ROOT/.imp-<task>-<strategy>-seeds<SEEDS>.lock)
      --skip-if-busy     when another sweep holds the lock, exit 0 with a line in the log
                         only (for cron), instead of exit 75 with a message on stderr
      --prune-options S  options for every `eslt prune`, split on spaces (e.g. '--rate 0.5')
      --gd-trainer R     trainer of the gd arm: adam or ppo (default: by the task's kind)
      --gd-options S     options for every `eslt train` of the gd arm, split on spaces
                         (e.g. '--timesteps 100000'); TRAIN_OPTIONS do not apply to it
  -h, --help             this text
  TRAIN_OPTIONS          after `--`: options for every ES `eslt train` (level 0 and every
                         level), e.g. -- --population 16 --generations 50 --preset paper

Environment: ESLT (the eslt command; default `eslt` on PATH, else the .venv of this checkout),
ESLT_HOME, ESLT_JAX_CACHE (passed on to eslt).

Output: stdout gets the last checkpoint of each finished chain; the log gets everything eslt
says on stderr, each line as `TIME seed<N> <arm> L<k> <step>: ...`, plus one line per step
(`ok PATH` or `FAILED (exit N)`). stderr gets those step lines when it is a terminal, and
failures always. A failed step stops its own chain only; other seeds and arms go on.

Lock: held by the sweep and every step it started until the last of them ends. Sweeps over
other seeds (e.g. SLURM array tasks) have locks of their own; a checkpoint that two
overlapping sweeps would both write is refused to the later one by eslt's own lock (a failed
step, "another eslt process is writing"). Several steps on one GPU (-j > 1) need
XLA_PYTHON_CLIENT_PREALLOCATE=false (JAX preallocates 75% of GPU memory per process).

Exit status:
  0    every step finished (or was up to date)
  1    at least one step failed (see the log)
  2    bad usage
  75   another sweep holds the lock (EX_TEMPFAIL: nothing was done; try again later);
       0 with --skip-if-busy
  130, 143  interrupted by SIGINT / SIGTERM (forwarded to the running eslt steps, which save
       their progress; a re-run resumes them)
EOF
}

die() {
  printf 'imp.sh: error: %s\n' "$1" >&2
  exit 2
}

# ---------------------------------------------------------------- options
task=fashion_mnist
strategy=snes
seeds_spec=0
num_seeds=""
arms_spec=snr,magnitude,random,random-reinit
levels=10
root=${ESLT_HOME:-eslt-runs}
jobs=1
log=""
lock=""
skip_busy=0
batch=0
prune_str=""
gd_trainer=""
gd_str=""
train_opts=()

need() { [ $# -ge 2 ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    -t | --task) need "$@"; task=$2; shift 2 ;;
    -s | --strategy) need "$@"; strategy=$2; shift 2 ;;
    --seeds) need "$@"; seeds_spec=$2; num_seeds=""; shift 2 ;;
    -n | --num-seeds) need "$@"; num_seeds=$2; shift 2 ;;
    -a | --arms) need "$@"; arms_spec=$2; shift 2 ;;
    -l | --levels) need "$@"; levels=$2; shift 2 ;;
    -r | --root) need "$@"; root=$2; shift 2 ;;
    -j | --jobs) need "$@"; jobs=$2; shift 2 ;;
    --log) need "$@"; log=$2; shift 2 ;;
    --lock) need "$@"; lock=$2; shift 2 ;;
    --skip-if-busy) skip_busy=1; shift ;;
    --batch) batch=1; shift ;;
    --prune-options) need "$@"; prune_str=$2; shift 2 ;;
    --gd-trainer) need "$@"; gd_trainer=$2; shift 2 ;;
    --gd-options) need "$@"; gd_str=$2; shift 2 ;;
    -j[0-9]*) jobs=${1#-j}; shift ;;
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    --) shift; train_opts=("$@"); break ;;
    *) die "unknown option $1 (train options go after --; see --help)" ;;
  esac
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_uint "$levels" || die "--levels must be a whole number, got '$levels'"
is_uint "$jobs" && [ "$jobs" -ge 1 ] || die "--jobs must be a positive whole number, got '$jobs'"

seeds=()
if [ -n "$num_seeds" ]; then
  is_uint "$num_seeds" && [ "$num_seeds" -ge 1 ] || die "--num-seeds must be positive, got '$num_seeds'"
  for ((i = 0; i < num_seeds; i++)); do seeds+=("$i"); done
else
  IFS=, read -ra items <<<"$seeds_spec"
  for item in "${items[@]}"; do
    if [[ $item =~ ^([0-9]+)-([0-9]+)$ ]]; then
      for ((i = 10#${BASH_REMATCH[1]}; i <= 10#${BASH_REMATCH[2]}; i++)); do seeds+=("$i"); done
    elif is_uint "$item"; then
      seeds+=("$((10#$item))")
    else
      die "--seeds: '$item' is not a seed or a range A-B"
    fi
  done
  [ ${#seeds[@]} -gt 0 ] || die "--seeds names no seed"
fi
mapfile -t seeds < <(printf '%s\n' "${seeds[@]}" | sort -n -u)

IFS=, read -ra arms <<<"$arms_spec"
[ ${#arms[@]} -gt 0 ] || die "--arms names no arm"
for arm in "${arms[@]}"; do
  [[ $arm =~ ^(gd|(snr|magnitude|random|movement|snip|grasp)(-reinit)?)$ ]] ||
    die "unknown arm '$arm': snr, magnitude, random, movement, snip, grasp, CRITERION-reinit or gd"
done

if [ -z "$gd_trainer" ]; then
  case $task in
    fashion_mnist | fashion-mnist | mnist | kmnist | mnist_corrupted | tfds:*) gd_trainer=adam ;;
    *) gd_trainer=ppo ;;
  esac
fi
read -ra prune_opts <<<"$prune_str"
read -ra gd_opts <<<"$gd_str"

# Options the sweep sets itself (or that would break re-running) are refused in pass-through.
refuse() {
  local what=$1 opt
  shift
  for opt in "$@"; do
    case ${opt%%=*} in
      --task | --strategy | --seed | --root | --out | --json | --force | --trainer | --help)
        [ "$what" = "--prune-options" ] && [ "${opt%%=*}" = --seed ] && continue
        die "$what: ${opt%%=*} is set by the sweep (or breaks re-running); leave it out" ;;
      --magnitude | --snr | --random | --movement | --snip | --grasp | --reinit)
        die "$what: ${opt%%=*} is chosen by --arms" ;;
    esac
  done
}
refuse "train options" "${train_opts[@]}"
refuse "--gd-options" "${gd_opts[@]}"
refuse "--prune-options" "${prune_opts[@]}"

if [ -z "${ESLT:-}" ]; then
  if command -v eslt >/dev/null; then
    ESLT=eslt
  else
    ESLT="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/eslt"
  fi
fi
command -v "$ESLT" >/dev/null || die "no eslt command ($ESLT): put eslt on PATH or set ESLT"
command -v flock >/dev/null || die "flock (util-linux) is missing"

mkdir -p "$root" || die "cannot create the root $root"
root=$(cd "$root" && pwd)
name="${task//:/-}-$strategy"
[ -n "$log" ] || log="$root/imp-$name.log"
if [ -z "$lock" ]; then
  tag=$(IFS=,; echo "${seeds[*]}")
  [ ${#tag} -le 40 ] || tag="$(printf '%s' "$tag" | cksum | cut -d' ' -f1)"
  lock="$root/.imp-$name-seeds$tag.lock"
fi
mkdir -p "$(dirname "$log")" "$(dirname "$lock")" || die "cannot create the folders of $log and $lock"
touch "$log" || die "cannot write the log $log"

# ---------------------------------------------------------------- the lock
# fd 9 stays open in every child (xargs, eslt), so the lock is held until the last step exits,
# even if this shell is killed.
exec 9>>"$lock" || die "cannot open the lock $lock"
if ! flock -n 9; then
  holder=$(head -c 64 "$lock" 2>/dev/null | tr -dc '0-9')
  busy="another sweep${holder:+ (pid $holder)} holds $lock"
  if [ "$skip_busy" = 1 ]; then
    printf '%(%Y-%m-%dT%H:%M:%S%z)T sweep: %s; skipped (--skip-if-busy)\n' -1 "$busy" >>"$log"
    exit 0
  fi
  printf 'imp.sh: %s; exiting without doing anything (exit 75)\n' "$busy" >&2
  exit 75
fi
printf '%s\n' "$$" >"$lock"

# ---------------------------------------------------------------- steps and chains
# These run in the `bash -c` jobs that xargs starts, so they and their settings are exported.
IMP_TTY=0
[ -t 2 ] && IMP_TTY=1
IMP_ARRAYS=$(declare -p train_opts prune_opts gd_opts)
export ESLT task strategy root log levels gd_trainer IMP_TTY IMP_ARRAYS

# stamp TAG: copy stdin to the log, each line prefixed with the time and TAG.
stamp() {
  local line
  trap '' INT TERM  # keep logging what eslt says while it saves its progress
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%(%Y-%m-%dT%H:%M:%S%z)T %s: %s\n' -1 "$1" "$line" >>"$log"
  done
}

# note TAG TEXT: one line of the sweep itself, in the log (and on a terminal's stderr).
note() {
  printf '%(%Y-%m-%dT%H:%M:%S%z)T %s: %s\n' -1 "$1" "$2" >>"$log"
  if [ "$IMP_TTY" = 1 ] || [[ $2 == FAILED* ]]; then printf 'imp.sh: %s: %s\n' "$1" "$2" >&2; fi
}

# step TAG CMD...: run one eslt call, its stderr stamped into the log; print the path it printed.
step() {
  local tag=$1 out rc
  shift
  trap : INT TERM
  out=$( { trap : INT TERM; "$@" </dev/null 2>&1 1>&3 3>&- | stamp "$tag"; exit "${PIPESTATUS[0]}"; } 3>&1)
  rc=$?
  if [ "$rc" = 0 ] && [ -n "$out" ] && [[ $out != *$'\n'* ]]; then
    note "$tag" "ok $out"
    printf '%s\n' "$out"
    return 0
  fi
  [ "$rc" != 0 ] || rc="0, but printed no single path"
  note "$tag" "FAILED (exit $rc): ${*@Q}"
  return 1
}

# level0 SEED: the dense ES run of a seed; prints "SEED<TAB>PATH" when it finished.
level0() {
  trap : INT TERM  # on a signal, let the running step end (eslt saves) and log it, then stop
  eval "$IMP_ARRAYS"
  local path
  path=$(step "seed$1 dense L00 train" "$ESLT" train --task "$task" --strategy "$strategy" --seed "$1" \
    --root "$root" "${train_opts[@]}") || return 1
  printf '%s\t%s\n' "$1" "$path"
}

# chain "SEED<TAB>ARM<TAB>LEVEL0": levels 1..L of one arm; prints the last checkpoint.
chain() {
  trap : INT TERM
  eval "$IMP_ARRAYS"
  local seed arm ckpt ticket level lv crit topts
  IFS=$'\t' read -r seed arm ckpt <<<"$1"
  topts=("${train_opts[@]}")
  case $arm in
    gd)
      ckpt=$(step "seed$seed gd L00 train" "$ESLT" train --task "$task" --trainer "$gd_trainer" \
        --seed "$seed" --root "$root" "${gd_opts[@]}") || return 1
      crit=(--magnitude)
      topts=("${gd_opts[@]}") ;;
    *-reinit) crit=("--${arm%-reinit}" --reinit) ;;
    *) crit=("--$arm") ;;
  esac
  for ((level = 1; level <= levels; level++)); do
    printf -v lv 'L%02d' "$level"
    ticket=$(step "seed$seed $arm $lv prune" "$ESLT" prune "${crit[@]}" "${prune_opts[@]}" "$ckpt") || return 1
    ckpt=$(step "seed$seed $arm $lv train" "$ESLT" train "${topts[@]}" "$ticket") || return 1
  done
  printf '%s\n' "$ckpt"
}
export -f stamp note step level0 chain

# ---------------------------------------------------------------- run
tmp=$(mktemp -d "${TMPDIR:-/tmp}/eslt-imp.XXXXXX") || die "mktemp failed"
child=""
on_signal() {  # forward to the running jobs' process group, wait until all of it has exited
  trap '' INT TERM
  note sweep "interrupted by SIG$1: stopping the running steps"
  if [ -n "$child" ] && kill -"$1" -- -"$child" 2>/dev/null; then
    while kill -0 -- -"$child" 2>/dev/null; do sleep 0.2; done
  fi
  note sweep "stopped; a re-run resumes"
  rm -rf "$tmp"
  exit $((128 + $2))
}
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'rm -rf "$tmp"' EXIT

# run_jobs FUNC IN OUT: FUNC on each line of IN, -j at a time (own process group, so a signal
# can be forwarded to all of them); 0 when every one succeeded.
run_jobs() {
  set -m
  xargs -d '\n' -r -n 1 -P "$jobs" "$BASH" -c "$1"' "$1"' imp <"$2" >"$3" &
  child=$!
  set +m
  wait "$child"
  local rc=$?
  child=""
  return "$rc"
}

# ---------------------------------------------------------------- batched (--batch)
# many TAG CMD...: one eslt call over many inputs (after CMD), its stderr stamped into the log; its
# paths on stdout. A failure is one FAILED line; the inputs that succeeded still print their paths.
many() {
  local tag=$1 rc
  shift
  ("$@" </dev/null 2>&1 1>&3 3>&- | stamp "$tag"; exit "${PIPESTATUS[0]}") 3>&1
  rc=$?
  if [ "$rc" = 0 ]; then note "$tag" "ok"; else note "$tag" "FAILED (exit $rc): see the log"; fi
  return 0
}

# parts TAG CMD... -- INPUTS...: `many` over the inputs split round-robin into -j parallel calls.
parts() {
  local tag=$1 i k cmd=() inputs=()
  shift
  while [ "$1" != -- ]; do cmd+=("$1"); shift; done
  shift
  inputs=("$@")
  local n=$((jobs < ${#inputs[@]} ? jobs : ${#inputs[@]}))
  for ((k = 0; k < n; k++)); do
    local chunk=()
    for ((i = k; i < ${#inputs[@]}; i += n)); do chunk+=("${inputs[i]}"); done
    many "$tag" "${cmd[@]}" "${chunk[@]}" >"$tmp/part$k" &
  done
  wait
  for ((k = 0; k < n; k++)); do cat "$tmp/part$k"; done
}

# One step over many inputs runs in its own process group, so a signal reaches all of it.
in_group() {
  set -m
  "$@" >"$tmp/out" &
  child=$!
  set +m
  wait "$child"
  child=""
  cat "$tmp/out"
}

# Whether $1 is one of the other arguments. Not printf piped into grep -q: under pipefail, grep
# quitting at an early match can kill printf with SIGPIPE, and the pipeline then reads as "no match"
# (about 1 in 700 tries here when the match is the first line: it once dropped a chain).
has_line() {
  local want=$1 line
  shift
  for line in "$@"; do [ "$line" = "$want" ] && return 0; done
  return 1
}

run_batched() {
  local -A cur=()  # "SEED ARM" -> the chain's last trained checkpoint (absent: the chain stopped)
  local seed arm level lv path ticket es_seeds=() gd=0 listed
  for arm in "${arms[@]}"; do [ "$arm" = gd ] && gd=1; done
  for arm in "${arms[@]}"; do [ "$arm" = gd ] || { es_seeds=("${seeds[@]}"); break; }; done
  if [ ${#es_seeds[@]} -gt 0 ]; then
    listed=$(IFS=,; echo "${es_seeds[*]}")
    mapfile -t made < <(in_group many "dense L00 train" "$ESLT" train --task "$task" --strategy "$strategy" \
      --seeds "$listed" --root "$root" "${train_opts[@]}")
    for seed in "${es_seeds[@]}"; do
      path=$(printf '%s\n' "${made[@]}" | grep -x ".*-seed$seed/L00-trained" | head -1)
      for arm in "${arms[@]}"; do [ "$arm" = gd ] || [ -z "$path" ] || cur["$seed $arm"]=$path; done
    done
  fi
  if [ "$gd" = 1 ]; then
    listed=$(IFS=,; echo "${seeds[*]}")
    mapfile -t made < <(in_group many "gd L00 train" "$ESLT" train --task "$task" --trainer "$gd_trainer" \
      --seeds "$listed" --root "$root" "${gd_opts[@]}")
    for seed in "${seeds[@]}"; do
      path=$(printf '%s\n' "${made[@]}" | grep -x ".*-seed$seed/L00-trained" | head -1)
      [ -z "$path" ] || cur["$seed gd"]=$path
    done
  fi
  for ((level = 1; level <= levels; level++)); do
    printf -v lv 'L%02d' "$level"
    local -A tickets=()
    for arm in "${arms[@]}"; do
      local crit inputs=() keys=()
      case $arm in
        gd) crit=(--magnitude) ;;
        *-reinit) crit=("--${arm%-reinit}" --reinit) ;;
        *) crit=("--$arm") ;;
      esac
      for seed in "${seeds[@]}"; do
        [ -n "${cur["$seed $arm"]:-}" ] && { inputs+=("${cur["$seed $arm"]}"); keys+=("$seed $arm"); }
      done
      [ ${#inputs[@]} -gt 0 ] || continue
      mapfile -t made < <(in_group many "$arm $lv prune" "$ESLT" prune "${crit[@]}" "${prune_opts[@]}" "${inputs[@]}")
      local i
      for i in "${!inputs[@]}"; do  # a ticket lies beside its parent, named L<level>-...
        ticket=$(printf '%s\n' "${made[@]}" | grep -x "$(dirname "${inputs[i]}")/$lv-.*" | head -1)
        if [ -n "$ticket" ]; then tickets["${keys[i]}"]=$ticket; else unset 'cur[${keys[i]}]'; fi
      done
    done
    local es=() gds=()
    for key in "${!tickets[@]}"; do
      if [[ $key == *" gd" ]]; then gds+=("${tickets[$key]}"); else es+=("${tickets[$key]}"); fi
    done
    made=()
    [ ${#es[@]} -eq 0 ] || mapfile -t made < <(in_group parts "$lv train" "$ESLT" train "${train_opts[@]}" -- "${es[@]}")
    [ ${#gds[@]} -eq 0 ] || mapfile -t -O "${#made[@]}" made < <(in_group parts "gd $lv train" "$ESLT" train \
      "${gd_opts[@]}" -- "${gds[@]}")
    for key in "${!tickets[@]}"; do
      if has_line "${tickets[$key]}-trained" "${made[@]}"; then
        cur["$key"]="${tickets[$key]}-trained"
      else
        unset 'cur[$key]'
      fi
    done
    unset tickets
  done
  for key in "${!cur[@]}"; do printf '%s\n' "${cur[$key]}" >>"$tmp/done"; done
}

note sweep "start pid $$: task $task, strategy $strategy, seeds ${seeds[*]}, arms ${arms[*]}, levels $levels, -j $jobs, lock $lock"
: >"$tmp/seeds"
for arm in "${arms[@]}"; do  # the ES level 0 only when an ES arm needs it
  [ "$arm" = gd ] || { printf '%s\n' "${seeds[@]}" >"$tmp/seeds"; break; }
done
: >"$tmp/done"
if [ "$batch" = 1 ]; then
  run_batched
  cp "$tmp/seeds" "$tmp/level0"  # a failed level 0 counts as its chains' failures
else
run_jobs level0 "$tmp/seeds" "$tmp/level0"

: >"$tmp/chains"
for seed in "${seeds[@]}"; do
  l0=$(awk -F'\t' -v s="$seed" '$1 == s { print $2 }' "$tmp/level0")
  for arm in "${arms[@]}"; do
    if [ "$arm" = gd ] || [ -n "$l0" ]; then printf '%s\t%s\t%s\n' "$seed" "$arm" "$l0" >>"$tmp/chains"; fi
  done
done
run_jobs chain "$tmp/chains" "$tmp/done"
fi
sort -u "$tmp/done"

total=$((${#seeds[@]} * ${#arms[@]}))
finished=$(wc -l <"$tmp/done")
failed_l0=$(($(wc -l <"$tmp/seeds") - $(wc -l <"$tmp/level0")))
summary="$finished of $total chains finished"
[ "$failed_l0" = 0 ] || summary+=", $failed_l0 level-0 run(s) failed"
if [ "$finished" = "$total" ] && [ "$failed_l0" = 0 ]; then
  note sweep "done: $summary"
  exit 0
fi
note sweep "FAILED: $summary; see $log"
exit 1

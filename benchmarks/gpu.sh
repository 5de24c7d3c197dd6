#!/usr/bin/env bash
# One GPU benchmark pass in at most 10 minutes: bench_train.py's cnn (paper scale: pop 128,
# batch 1024 Fashion-MNIST), pendulum (gymnax, pop 256, 8 episodes) and brax (ant, 256 members
# x 8 episodes x 500 steps) cases, each eslt's jitted chunk against a plain evosax loop; and
# bench_batch.py's batched cases (issue 26): 20 Pendulum tickets at --preset paper for 200
# generations, one process each vs one batched process, and the CNN at population 128 x batch
# 1024, 8 runs batched vs one at a time.
#
#   pip install -e '.[cuda]'          # first, on the GPU host
#   benchmarks/gpu.sh                 # ratio lines on stdout, all numbers in gpu_bench.json
#   GPU_SH_SMOKE=1 benchmarks/gpu.sh  # tiny sizes, runs on CPU: checks the script, measures nothing
#
# Each case runs in its own process under `timeout`, capped at its share of the budget and at
# what is left of it, so one slow case (compilation included: it counts against the budget but
# not in the timed region) cannot eat the others' time. A case that times out or fails gets a
# line saying so and a record in the JSON; the script still exits 0 when it finished in budget.
#
# Environment: GPU_SH_SMOKE (1: tiny sizes), GPU_SH_BUDGET_S (total seconds, default 570, so the
# whole pass fits in 10 minutes with the kill grace), GPU_SH_JSON (the JSON file; default
# $OUT/gpu_bench.json when $OUT is set, else ./gpu_bench.json), PYTHON (default .venv/bin/python
# when present, else python3), CNN_GENS / PENDULUM_GENS / BRAX_GENS (timed generations),
# BRAX_BACKEND (default generalized), FASHION_MNIST_DIR (the cnn's data: IDX files or a tfds
# data dir; default /usr/share/datasets/fashion-mnist when present, else tfds, which downloads),
# ESLT_POPULATION_EVAL (auto|grouped|vmap, eslt's side).
set -euo pipefail

cd "$(dirname "$0")/.."
start=$SECONDS
smoke=${GPU_SH_SMOKE:-0}
budget=${GPU_SH_BUDGET_S:-570}
json_out=${GPU_SH_JSON:-${OUT:-.}/gpu_bench.json}
grace=10 # seconds `timeout` waits after TERM before KILL
if [[ -n ${PYTHON:-} ]]; then
    py=$PYTHON
elif [[ -x .venv/bin/python ]]; then
    py=.venv/bin/python
else
    py=python3
fi
backend=${BRAX_BACKEND:-generalized}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== gpu.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)  smoke=$smoke  budget ${budget}s  git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== nvidia-smi -L"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L || echo "nvidia-smi -L failed"
else
    echo "nvidia-smi: not found (no NVIDIA driver on this host)"
fi
echo "== jax.devices()"
"$py" -c 'import jax; print("jax", jax.__version__, "backend", jax.default_backend(), jax.devices())' ||
    echo "jax.devices() failed"

data=()
if [[ -n ${FASHION_MNIST_DIR:-} ]]; then
    data=(--data-dir "$FASHION_MNIST_DIR")
fi

# name | cap (s) | script in benchmarks/ | its arguments
if [[ $smoke == 1 ]]; then
    cases=(
        "cnn|240|bench_train.py|--case cnn --population 8 --batch 32 --generations ${CNN_GENS:-2}"
        "pendulum|240|bench_train.py|--case pendulum --population 8 --episodes 2 --generations ${PENDULUM_GENS:-2}"
        "batch-pendulum|240|bench_batch.py|--case pendulum --tickets 4 --generations 2"
        "brax|300|bench_train.py|--case brax --population 4 --episodes 1 --episode-length 10 --generations ${BRAX_GENS:-1} --backend $backend"
    )
else
    # Sized for one H200 (not yet measured there; see benchmarks/README.md). cnn: at the goal of
    # 110 gen/s, 100 generations are ~1 s per timed run; at 5 gen/s the 7 x 100 generations it
    # runs (eslt warm-up chunk + 3 timed per side) take ~140 s. pendulum: 200 generations,
    # 5 x 200 in all. batch-pendulum: 20 tickets in one process against 3 of them one process
    # each (scaled to 20: start-up and compilation dominate there). batch-cnn: 8 runs batched vs
    # 2 of them alone (scaled to 8). brax: 1M env steps per generation, 3 timed generations, 11 in
    # all, plus two compilations of the 500-step rollout; it runs last and gets what is left.
    cases=(
        "cnn|130|bench_train.py|--case cnn --population 128 --batch 1024 --generations ${CNN_GENS:-100} --repeats 3"
        "pendulum|60|bench_train.py|--case pendulum --population 256 --episodes 8 --generations ${PENDULUM_GENS:-200} --repeats 2"
        "batch-pendulum|120|bench_batch.py|--case pendulum-paper --tickets 20 --sequential-sample 3"
        "batch-cnn|90|bench_batch.py|--case cnn --cnn-runs 8 --cnn-generations 20 --sequential-sample 2"
        "brax|330|bench_train.py|--case brax --population 256 --episodes 8 --episode-length 500 --generations ${BRAX_GENS:-3} --backend $backend"
    )
fi

status_lines=()
names=()
for entry in "${cases[@]}"; do
    IFS='|' read -r name cap script args <<<"$entry"
    names+=("$name")
    extra=()
    if [[ $name == cnn || $name == batch-cnn ]]; then
        extra=("${data[@]}")
    fi
    left=$((budget - (SECONDS - start) - grace))
    limit=$((cap < left ? cap : left))
    if ((limit < 30)); then
        echo "$name  SKIPPED: ${left}s of the budget left"
        echo "{\"case\": \"$name\", \"status\": \"skipped\", \"limit_s\": $limit}" >"$tmp/$name.status"
        status_lines+=("$name  SKIPPED")
        continue
    fi
    echo "== $name (timeout ${limit}s): $script $args"
    t0=$SECONDS
    rc=0
    # Progress goes to stderr as it happens; the result lines (stdout) are shown when the case ends.
    # shellcheck disable=SC2086  # $args is a word list on purpose
    timeout --kill-after="$grace" "$limit" "$py" "benchmarks/$script" $args "${extra[@]}" \
        --json-out "$tmp/$name.json" >"$tmp/$name.out" || rc=$?
    took=$((SECONDS - t0))
    grep -v "import warp" "$tmp/$name.out" || true
    if ((rc == 0)); then
        state=ok
    elif ((rc == 124 || rc == 137)); then
        state=timeout
        echo "$name  TIMEOUT after ${limit}s"
    else
        state=failed
        echo "$name  FAILED (exit $rc) after ${took}s"
    fi
    echo "{\"case\": \"$name\", \"status\": \"$state\", \"exit\": $rc, \"limit_s\": $limit, \"wall_s\": $took}" \
        >"$tmp/$name.status"
    if [[ $state == ok ]]; then
        status_lines+=("$(grep 'ratio ' "$tmp/$name.out" | tail -n 1)")
    else
        status_lines+=("$name  ${state^^}")
    fi
done

"$py" - "$tmp" "$json_out" "$smoke" "$budget" "$((SECONDS - start))" "${names[@]}" <<'EOF'
import json
import sys
from pathlib import Path

tmp, out, smoke, budget, elapsed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
cases, env = [], None
for name in sys.argv[6:]:
    record = json.loads((tmp / f"{name}.status").read_text())
    result = tmp / f"{record['case']}.json"
    if result.exists():
        data = json.loads(result.read_text())
        env = {k: v for k, v in data.items() if k != "results"}
        record |= data["results"][0]
    cases.append(record)
summary = {"smoke": smoke == "1", "budget_s": int(budget), "elapsed_s": int(elapsed), **(env or {}), "cases": cases}
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(summary, indent=1) + "\n")
EOF

echo "== summary ($((SECONDS - start))s of ${budget}s)"
printf '%s\n' "${status_lines[@]}"
echo "== JSON: $json_out"

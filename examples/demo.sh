#!/usr/bin/env bash
# Offline demo of iterative SNR pruning (Algorithm 1) on real Fashion-MNIST, CPU settings.
# Installs eslt into ./.venv and Debian's Fashion-MNIST IDX files if they are missing.
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist
fi
[ -x .venv/bin/eslt ] || { python3 -m venv .venv && .venv/bin/pip install -q -e .; }
export PATH="$PWD/.venv/bin:$PATH"
levels=${LEVELS:-2}

ckpt=$(eslt train --task fashion_mnist --strategy snes --seed 0)
for level in $(seq 1 "$levels"); do
  ckpt=$(eslt prune --snr "$ckpt" | eslt train)
done
echo "$ckpt"
root=${ESLT_HOME:-eslt-runs} bin=.venv/bin
if [ "$here" != "$PWD" ]; then  # name them as seen from where the demo was started
  [[ $root == /* ]] || root="$PWD/$root"
  bin="$PWD/$bin"
fi
cat >&2 <<EOF
demo: done. Every checkpoint of the demo is under $root/ (the last one is printed above). Next:
  eslt show $root             # a table of the runs: level, sparsity, test accuracy
  eslt plot sparsity $root    # test accuracy against the weights left, drawn into sparsity.png
(eslt is in $bin: 'source $bin/activate' first, or call $bin/eslt)
EOF

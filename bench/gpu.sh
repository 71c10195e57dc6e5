#!/usr/bin/env bash
# Every GPU row of docs/benchmarks.md, in one command (about 8 minutes on one H200):
#   1. per trial, side by side in one run: steadytune vanilla / SDA K=5 / SDV K=3 against
#      HF Trainer in its three configurations (defaults, length-grouped, grouped + bf16);
#   2. 16 vanilla trials packed on the one GPU through Ray Tune with gpu: auto.
# Each writes its JSON lines into OUT_DIR (strategies.jsonl, packed.jsonl).
#
# On a device machine, prepare first with ../shared/tools/device-bundle sst2 and carry
# .device/ (its wheels are installed and its MiniLM unpacked here, offline). The same
# script dry-runs on CPU, which tests/test_bench_gpu.py does so that it cannot rot:
#   bench/gpu.sh OUT_DIR --device cpu --steps 2 --rows 64 --trials 2 --model tiny-bert --data DIR
#
# usage: bench/gpu.sh OUT_DIR [--device cuda|cpu] [--steps N] [--rows N] [--trials N]
#                     [--model NAME_OR_DIR] [--data DIR]
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,15p' "$0"; exit 2; }
out=$1; shift
device=cuda steps=300 rows=20000 trials=16 model=minilm-l6 data=.device/data/sst2
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=$2 ;;
    --steps) steps=$2 ;;
    --rows) rows=$2 ;;
    --trials) trials=$2 ;;
    --model) model=$2 ;;
    --data) data=$2 ;;
    *) echo "bench/gpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"

if [ -d .device ]; then  # a device machine: what it lacks comes from the bundle, offline
  "$py" -m pip install -q --no-index --find-links .device/py --find-links .device/ray \
    ray optuna datasets
  "$py" -m pip install -q --no-deps --no-build-isolation -e .
  if [ "$model" = minilm-l6 ] && [ -f .device/model/minilm-l6.tar.xz ]; then
    mkdir -p .device/model/minilm-l6 && tar -xJf .device/model/minilm-l6.tar.xz -C .device/model/minilm-l6
    model=$(dirname "$(find "$PWD/.device/model/minilm-l6" -name config.json | head -1)")
  fi
fi
[ "$device" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"

started=$(date +%s)
"$py" bench/strategies.py --with-hf --device "$device" --strategies vanilla sda:5 sdv:3 \
  --steps "$steps" --rows "$rows" --model "$model" --data "$data" --repeats 1 \
  | tee "$out/strategies.jsonl"
"$py" bench/packed_sweep.py --device "$device" --gpu-auto --trials "$trials" \
  --concurrent "$trials" --steps "$steps" --rows "$rows" --model "$model" --data "$data" \
  | tee "$out/packed.jsonl"
echo "bench/gpu.sh: done in $(( $(date +%s) - started )) s; JSON lines in $out" >&2

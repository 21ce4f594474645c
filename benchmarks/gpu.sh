#!/usr/bin/env bash
# Everything that needs a GPU, in one script, within about 8 minutes of device time:
#   bash benchmarks/gpu.sh            (from the repository root, .venv built by `make`)
# writes benchmarks/results/gpu_*.json and a log of each step in benchmarks/results/gpu_log/.
#  1. the `gpu`-marked tests (fast kernels against exact, bf16, compile);
#  2. airbench-class packed throughput on CIFAR-shaped synthetic data against one seed at a
#     time: seed-runs per GPU-hour, TFLOP/s against the device's bf16 peak, the pack size chosen;
#  3. the Fashion-MNIST Picard preset at a few thousand seeds (when data/ has the files):
#     wall time and orchestration share (benchmarks/scale.py's measure on that command).
# Each step has its own time limit (3 + 3 + 2 minutes), so one slow step cannot eat the
# others' time.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results
mkdir -p "$OUT/gpu_log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu_log/device.csv" 2>&1

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local tic=$(date +%s)
  # SIGINT first: pytest still writes its junit XML, the benchmarks stop like on Ctrl-C
  timeout -s INT -k 15 "$limit" "$@" > "$OUT/gpu_log/$name.log" 2>&1
  local rc=$? took=$(( $(date +%s) - tic ))
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $took}" | tee -a "$OUT/gpu_log/steps.jsonl"
}

step tests 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider --junitxml="$OUT/gpu_tests.xml"

step airbench 180 "$PY" benchmarks/packing.py --data synthetic --shape 3 32 32 --n-train 50000 \
  --model airbench --epochs 2 --batch-size 1024 --precision bf16 --kernels fast --pack auto \
  --seeds 64 --alone 2 --device cuda --out "$OUT/gpu_airbench.json"

if [ -d data/FashionMNIST/raw ]; then
  step picard 120 "$PY" benchmarks/scale.py --seeds 2000 --out "$OUT/gpu_picard_scale.json" \
    --sweep experiment=picard train.device=cuda
fi

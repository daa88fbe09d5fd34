#!/usr/bin/env bash
# Everything that needs a GPU, in under 5 minutes on one: the GPU tests, a training step at the
# paper size (LSTM 2000, four 600-unit layers, x 200, z 200, batch 128, T 40) with its FLOP/s
# against the card's dense TF32 and BF16 peaks, importance sampling at K = 1000, and a two-process
# DDP smoke run when two GPUs are present. Each part writes OUT/PART.json (and OUT/PART.log);
# OUT/summary.json gathers them. Format: docs/performance.md, "The GPU script".
#
#   benchmarks/gpu.sh [OUT]               OUT defaults to benchmarks/results/gpu
#   benchmarks/gpu.sh --cpu-smoke OUT     the same pipeline on the CPU at a tiny size, GPU parts
#                                         skipped (tests/test_gpu_script.py runs it)
#
# Exit status 0 when every part is ok or skipped. PYTHON selects the interpreter (default: python).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=gpu
if [[ "${1:-}" == "--cpu-smoke" ]]; then MODE=cpu-smoke; shift; fi
OUT="${1:-benchmarks/results/gpu}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
STARTED="$(date +%s.%N)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"

part() {  # part NAME SECONDS: one part, killed past SECONDS (its JSON then is missing: summary says failed)
  timeout --kill-after=10 "$2" "$PY" benchmarks/gpu_bench.py "$1" --out "$OUT" --mode "$MODE" --timeout "$(( $2 - 10 ))" \
    > "$OUT/$1.log" 2>&1
  tail -n 1 "$OUT/$1.log"
}

rm -f "$OUT"/{tests,step,importance,ddp,summary}.json
part tests 70         # pytest -m gpu
part step 100         # paper-size training step, fp32 (TF32) and bf16, FLOP/s against the peaks
part importance 60    # K = 1000 on the paper-size model, fp32 and bf16
part ddp 60           # torchrun --nproc_per_node=2 on two GPUs (NCCL), when present
"$PY" benchmarks/gpu_bench.py summary --out "$OUT" --mode "$MODE" --started "$STARTED"

#!/usr/bin/env bash
# Runs the CUDA microbenchmark suite on a GPU machine with a harness built elsewhere.
#
#   scripts/cuda-suite.sh HARNESS OUTDIR [run options, e.g. --quick]
#
# Build on any x86-64 Linux machine (no CUDA needed):
#   cargo build --release -p planner-harness --features cuda
# copy target/release/planner-harness and this checkout to the GPU machine, run this
# script from the checkout's root (the suite reads the GEMM shapes from models/), then,
# back where planner is built:
#   planner calibrate OUTDIR/cuda.csv --base h100-sxm --name "..." --out hardware/ID.toml
#
# The CUDA libraries are found as scripts/cuda-libs.sh says. It also records the GPU,
# driver and clocks next to the CSV.
set -euo pipefail
HARNESS="${1:?usage: scripts/cuda-suite.sh HARNESS OUTDIR [run options]}"
OUT="${2:?usage: scripts/cuda-suite.sh HARNESS OUTDIR [run options]}"
shift 2
mkdir -p "$OUT"

. "$(dirname "$0")/cuda-libs.sh"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
        --format=csv 2>&1 || true
} > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"

"$HARNESS" run --backend cuda "$@" --out "$OUT/cuda.csv"

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
# The harness loads libcuda, libcublas, libcublasLt and libnvrtc under their
# unversioned or CUDA 12 names. Where the machine has only other names (a CUDA 13
# install ships libcublas.so.13), this script links the newest one it finds under the
# unversioned name in a scratch folder and puts that folder, and the library's own,
# on LD_LIBRARY_PATH. It also records the GPU, driver and clocks next to the CSV.
set -euo pipefail
HARNESS="${1:?usage: scripts/cuda-suite.sh HARNESS OUTDIR [run options]}"
OUT="${2:?usage: scripts/cuda-suite.sh HARNESS OUTDIR [run options]}"
shift 2
mkdir -p "$OUT"

links=$(mktemp -d)
paths="$links"
for lib in cublas cublasLt nvrtc; do
    if ldconfig -p 2>/dev/null | grep -q "lib$lib\.so "; then
        continue
    fi
    found=$(find /usr/local /usr/lib /usr/lib64 /opt -name "lib$lib.so.*" 2>/dev/null \
        | grep -E "lib$lib\.so\.[0-9.]+$" | sort -V | tail -n 1 || true)
    if [ -n "$found" ]; then
        ln -sf "$found" "$links/lib$lib.so"
        paths="$paths:$(dirname "$found")"
        echo "cuda-suite: lib$lib.so -> $found"
    else
        echo "cuda-suite: no lib$lib.so* found; the harness will say what it tried"
    fi
done
export LD_LIBRARY_PATH="$paths${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
        --format=csv 2>&1 || true
} > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"

"$HARNESS" run --backend cuda "$@" --out "$OUT/cuda.csv"

# Sourced by scripts/cuda-suite.sh and scripts/cuda-end-to-end.sh: puts the CUDA
# libraries on LD_LIBRARY_PATH under the names planner-harness loads.
#
# The harness loads libcuda, libcublas, libcublasLt and libnvrtc under their
# unversioned or CUDA 12 names. Where the machine has only other names (a CUDA 13
# install ships libcublas.so.13), this links the newest one found under the
# unversioned name in a scratch folder and puts that folder, and the library's own,
# on LD_LIBRARY_PATH.
cuda_links=$(mktemp -d)
cuda_paths="$cuda_links"
for lib in cublas cublasLt nvrtc; do
    if ldconfig -p 2>/dev/null | grep -q "lib$lib\.so "; then
        continue
    fi
    found=$(find /usr/local /usr/lib /usr/lib64 /opt -name "lib$lib.so.*" 2>/dev/null \
        | grep -E "lib$lib\.so\.[0-9.]+$" | sort -V | tail -n 1 || true)
    if [ -n "$found" ]; then
        ln -sf "$found" "$cuda_links/lib$lib.so"
        cuda_paths="$cuda_paths:$(dirname "$found")"
        echo "cuda-libs: lib$lib.so -> $found" >&2
    else
        echo "cuda-libs: no lib$lib.so* found; the harness will say what it tried" >&2
    fi
done
export LD_LIBRARY_PATH="$cuda_paths${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

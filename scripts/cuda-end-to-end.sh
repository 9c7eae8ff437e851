#!/usr/bin/env bash
# End to end on an NVIDIA GPU: the harness's decode engine against the planner's
# prediction on the calibrated H100 SXM profile (hardware/h100-sxm.toml).
#
#   scripts/cuda-end-to-end.sh HARNESS PLANNER OUTDIR [MODELS...]
#
# HARNESS is a planner-harness built with --features cuda, PLANNER a planner binary,
# both built on any x86-64 Linux machine (no CUDA needed) and copied to the GPU
# machine with this checkout; run from the checkout's root. For each model (default:
# llama-3.2-3b gemma-3-4b llama-3.1-8b) it runs every layer on the GPU (32 tokens
# timed after 32 in cache), simulates scenarios/gpu-decode-MODEL.toml and compares
# tokens/s. Then it runs the first 4 layers of llama-3.2-3b on the CPU and on the GPU
# with the same seed: both engines run the same weights, so the greedy tokens should
# agree. The scenarios name h100-sxm; DEVICE=h200-sxm (any catalog device) simulates
# them on that device instead.
set -euo pipefail
H="${1:?usage: scripts/cuda-end-to-end.sh HARNESS PLANNER OUTDIR [MODELS...]}"
P="${2:?usage: scripts/cuda-end-to-end.sh HARNESS PLANNER OUTDIR [MODELS...]}"
OUT="${3:?usage: scripts/cuda-end-to-end.sh HARNESS PLANNER OUTDIR [MODELS...]}"
shift 3
MODELS=("$@")
DEVICE="${DEVICE:-h100-sxm}"
[ ${#MODELS[@]} -gt 0 ] || MODELS=(llama-3.2-3b gemma-3-4b llama-3.1-8b)
mkdir -p "$OUT"

# The CUDA libraries under the names the harness loads.
. "$(dirname "$0")/cuda-libs.sh"

for model in "${MODELS[@]}"; do
    "$H" decode --backend cuda --model "$model" --prompt 32 --tokens 32 \
        --out "$OUT/decode-cuda-$model.json"
    sed "s/^device = \"h100-sxm\"/device = \"$DEVICE\"/" "scenarios/gpu-decode-$model.toml" \
        > "$OUT/scenario-$model.toml"
    "$P" simulate "$OUT/scenario-$model.toml" --format json > "$OUT/simulate-$model.json"
done
for backend in cpu cuda; do
    "$H" decode --backend "$backend" --model llama-3.2-3b --layers 4 --prompt 8 --tokens 24 \
        --out "$OUT/agree-$backend.json"
done

python3 - "$OUT" "$DEVICE" "${MODELS[@]}" <<'PY'
import json, sys
out, device, models = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"predicted on `{device}`")
print(f"{'model':<14}{'GPU':>26}{'measured tok/s':>16}{'predicted':>11}{'error':>8}{'band':>16}")
for model in models:
    d = json.load(open(f"{out}/decode-cuda-{model}.json"))
    s = json.load(open(f"{out}/simulate-{model}.json"))
    assert d["layers_run"] == d["model_layers"], "the comparison needs every layer run"
    measured, predicted = d["tokens_per_s"], s["decode_tokens_per_s"]
    band = (s.get("band") or {}).get("decode_tokens_per_s")
    btxt = f"{band[0]:.1f}..{band[1]:.1f}" if band else "-"
    err = (predicted - measured) / measured * 100
    print(f"{model:<14}{d['device'][:25]:>26}{measured:>16.2f}{predicted:>11.2f}{err:>7.1f}%{btxt:>16}")
    print(f"{'':<14}  per step: layers {d['layers_s_per_step'] * 1e3:.3f} ms + head "
          f"{d['head_s_per_step'] * 1e3:.3f} ms measured; {s['tpot_s'] * 1e3:.3f} ms predicted")
a, b = (json.load(open(f"{out}/agree-{x}.json")) for x in ("cpu", "cuda"))
verdict = "agree" if a["last_token"] == b["last_token"] else "DIFFER"
print(f"same weights, 4 layers of llama-3.2-3b, 24 greedy tokens: last token cpu "
      f"{a['last_token']}, cuda {b['last_token']} ({verdict})")
PY

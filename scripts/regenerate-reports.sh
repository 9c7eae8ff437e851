#!/usr/bin/env bash
# Regenerates the example reports committed under reports/ with the release build:
#
#   scripts/regenerate-reports.sh
#
# Each report directory is removed first, so files an older version wrote do not
# linger. Reports depend only on the inputs (no dates, paths or machine names): run
# twice, the script leaves `git status` clean.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p planner
P=target/release/planner

fresh() { rm -rf "reports/$1" && mkdir -p "reports/$1"; }

# (a) DBRX bf16 on 2, 3 and 4 M2 Ultra Mac Studios against an 8x H100 SXM server, the
# server first: every ratio is the Mac cluster's tokens/s per $1,000 over the server's.
fresh dbrx-mac-vs-h100
"$P" compare \
  scenarios/dbrx-8x-h100-sxm.toml \
  scenarios/dbrx-2x-m2-ultra-10gbe.toml \
  scenarios/dbrx-3x-m2-ultra-10gbe.toml \
  scenarios/dbrx-4x-m2-ultra-10gbe.toml \
  --title "DBRX bf16: Mac Studio cluster against an 8x H100 SXM server" \
  --reference-ratio 1.15 \
  --reference "arXiv 2506.23635: the Mac Studio cluster is 1.15x more cost-efficient than an NVIDIA H100 AI supercomputer" \
  --out reports/dbrx-mac-vs-h100 > /dev/null

# (b) EXO's DGX Spark prefill + M3 Ultra decode against each machine alone.
fresh exo-spark-mac
"$P" compare \
  scenarios/exo-disaggregated.toml \
  scenarios/exo-spark-alone.toml \
  scenarios/exo-m3-ultra-alone.toml \
  --title "Llama-3.1 8B: DGX Spark + M3 Ultra (EXO) against each alone" \
  --out reports/exo-spark-mac > /dev/null

# (c) What to buy for Llama-3.1 70B at 10 requests/s.
fresh plan-llama-3.1-70b
"$P" plan scenarios/plans/llama-3.1-70b-10rps.toml --out reports/plan-llama-3.1-70b > /dev/null

echo "reports/ regenerated"

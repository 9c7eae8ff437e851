#!/usr/bin/env bash
# The network probe over a loopback shaped like a wire: a private network namespace
# whose loopback has an htb rate limit, so that the probe and `planner calibrate`
# can be checked against a link of known bandwidth on one machine.
#
#   scripts/shaped-loopback-probe.sh [RATE] [OUT]      (default 1gbit, target/shaped)
#
# Needs root (unshare -n, tc) and iproute2's htb qdisc; netem, which would add a
# delay, is not needed. Writes OUT/net.csv (the probe, --quick) and OUT/calibration.txt.
# What to expect: README, "Network probe".
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-1gbit}"
OUT="${2:-target/shaped}"
cargo build --release -q -p planner -p planner-harness
mkdir -p "$OUT"
unshare -n bash -euo pipefail -c '
    ip link set lo up mtu 1500
    tc qdisc add dev lo root handle 1: htb default 10
    tc class add dev lo parent 1: classid 1:10 htb rate "$1" ceil "$1" 2>/dev/null
    target/release/planner-harness net serve --bind 127.0.0.1:7878 --max-connections 1 \
        --timeout-s 600 2>/dev/null &
    sleep 0.5
    target/release/planner-harness net probe --peer 127.0.0.1:7878 --quick --out "$2/net.csv"
    wait
' shaped "$RATE" "$OUT"
target/release/planner calibrate "$OUT/net.csv" --name "loopback shaped to $RATE" \
    | tee "$OUT/calibration.txt"

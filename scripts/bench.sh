#!/usr/bin/env bash
# bench.sh — tarn's benchmark, one command:
#   scripts/bench.sh [--quick] [--only get,serve-get,put,verify,stage,server,deps] [--runs N]
# Installs the peers (nginx, wrk, b3sum from Debian), builds the release binaries, generates
# the mathlib fixture once into $TARN_BENCH_DIR (default /tmp/tarn-bench), runs every
# comparison against servers on 127.0.0.1 and writes BENCHMARKS.md. Never fails on a missed
# target; exits non-zero only when the harness itself cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
export TARN_BENCH_DIR="${TARN_BENCH_DIR:-/tmp/tarn-bench}"
mkdir -p "$TARN_BENCH_DIR"

# Peers from Debian's archive (curl and sha256sum are already there).
missing=()
for p in nginx:nginx wrk:wrk b3sum:b3sum; do
  command -v "${p%%:*}" >/dev/null 2>&1 || missing+=("${p#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing ${missing[*]} (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian package starts a system nginx on port 80; the benchmark runs its own on a free port.

cargo build --release -p tarn-cli   # tarn and tarn-fixture

# Servers the harness started are listed in servers.pid; stop any left running (by PID).
cleanup() {
  if [ -f "$TARN_BENCH_DIR/servers.pid" ]; then
    while read -r pid; do
      [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done <"$TARN_BENCH_DIR/servers.pid"
    rm -f "$TARN_BENCH_DIR/servers.pid"
  fi
}
trap cleanup EXIT INT TERM
python3 scripts/bench.py --bench-dir "$TARN_BENCH_DIR" "$@"

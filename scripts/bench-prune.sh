#!/usr/bin/env bash
# bench-prune.sh — the `tarn cache prune` / `tarn cache stats` benchmark (issue 24):
#   scripts/bench-prune.sh [--artifacts N] [--no-write]
# Builds the release binary, generates a Lake-shaped cache of 200,000 sparse artifacts in
# $TARN_BENCH_DIR (default /tmp/tarn-bench-prune; it needs a few hundred MB of real disk),
# times stats and a prune to half the size against `find`-based peers in the same run
# (scripts/bench_prune.py), and writes its section of BENCHMARKS.md (between the
# bench-prune markers). Never fails on a missed target.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${TARN_BENCH_DIR:-/tmp/tarn-bench-prune}"
cargo build --release -p tarn-cli --bin tarn
python3 scripts/bench_prune.py --tarn target/release/tarn --dir "$dir" "$@"

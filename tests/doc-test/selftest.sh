#!/usr/bin/env bash
# Proves that scripts/doc-test.sh can fail: it is fed Markdown files with a broken command, a
# transcript whose output differs, malformed TOML and JSON, and bad markers, and must exit 1
# naming each FILE:LINE; a page where everything works must pass with the expected counts.
#
#   tests/doc-test/selftest.sh          (run by scripts/test.sh before scripts/doc-test.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --bin tarn --bin tarn-fixture
bin="${CARGO_TARGET_DIR:-target}/debug"
dir=tests/doc-test
fail() { printf 'doc-test selftest: FAILED: %s\n%s\n' "$1" "$2" >&2; exit 1; }
expect() {  # expect OUTPUT TEXT: OUTPUT contains TEXT
  grep -qF -- "$2" <<<"$1" || fail "expected \"$2\" in the output" "$1"
}
before=$(ls "${CARGO_TARGET_DIR:-target}/tarn-test" 2>/dev/null | grep -c '^doc-test-' || true)

# Everything works: exit 0 and the counts.
out=$(python3 scripts/doc_test.py --bin "$bin" "$dir/good.md" 2>&1) || fail "good.md failed" "$out"
expect "$out" "doc-test: 3 blocks run, 2 toml/json parsed, 1 blocks + 1 lines skipped, 0 failed"

# Broken things: exit 1, each named by file and line, with the command's output.
if out=$(python3 scripts/doc_test.py --bin "$bin" "$dir/bad.md" "$dir/marker.md" "$dir/skipline.md" 2>&1); then
  fail "bad pages passed" "$out"
fi
expect "$out" "doc-test: FAILED $dir/bad.md:5: tarn no-such-command --flag"
expect "$out" "unrecognized subcommand 'no-such-command'"
expect "$out" "doc-test: FAILED $dir/bad.md:10: printf 'actual\n'"
expect "$out" "+actual"
expect "$out" "doc-test: FAILED $dir/bad.md:17: \`\`\`toml block does not parse"
expect "$out" "doc-test: FAILED $dir/bad.md:22: \`\`\`json block does not parse"
expect "$out" "doc-test: FAILED $dir/marker.md:3: bad doc-test marker"
expect "$out" "doc-test: FAILED $dir/skipline.md:3: skip-line \"no such text\" matches no command"
expect "$out" "doc-test: 0 blocks run, 0 toml/json parsed, 0 blocks + 0 lines skipped, 6 failed"
# The third command of bad.md's first block never ran: the block stops at its first failure.
[ "$(grep -c '### doc-test line 6' <<<"$out")" = 0 ] || fail "ran past the failing command" "$out"

after=$(ls "${CARGO_TARGET_DIR:-target}/tarn-test" 2>/dev/null | grep -c '^doc-test-' || true)
[ "$after" = "$before" ] || fail "left a scratch directory in target/tarn-test" "$(ls "${CARGO_TARGET_DIR:-target}/tarn-test")"
echo "doc-test selftest: ok (a broken command, a wrong transcript, bad TOML/JSON, bad markers: each named by FILE:LINE)"

#!/usr/bin/env bash
# Lints tarn's GitHub Actions: actionlint and zizmor (pedantic persona, offline) over the
# reusable workflow, the actions, the example workflows and the test stand-ins; then checks that
# every YAML block docs/ci.md shows from a file is that file, byte for byte.
#
#   tests/pipeline/lint.sh        (ACTIONLINT, ZIZMOR: the binaries, default on PATH)
set -euo pipefail
cd "$(dirname "$0")/../.."
ACTIONLINT=${ACTIONLINT:-actionlint}
ZIZMOR=${ZIZMOR:-zizmor}

workflows=(.github/workflows/*.yml examples/ci/*.yml tests/pipeline/workflows/*.yml)
actions=(actions/*/action.yml tests/pipeline/act-standins/*/action.yml)

"$ACTIONLINT" "${workflows[@]}"
echo "  ok  actionlint: ${workflows[*]}"
"$ZIZMOR" --offline --no-progress --persona pedantic --config .github/zizmor.yml \
  "${workflows[@]}" "${actions[@]}"
echo "  ok  zizmor (pedantic): ${#workflows[@]} workflows, ${#actions[@]} actions"

# docs/ci.md: a line `<!-- file: PATH -->` comes right before a fenced block that must be PATH.
python3 - docs/ci.md <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```\n", text, re.S)
assert blocks, "docs/ci.md shows no file"
for path, body in blocks:
    if open(path).read() != body:
        sys.exit(f"docs/ci.md: the block shown as {path} differs from the file")
print(f"  ok  docs/ci.md: {len(blocks)} blocks identical to their files ({', '.join(p for p, _ in blocks)})")
PY

# The release pins: the tag a release would get agrees with every tarn-cache/tarn ref and
# setup-tarn's default version; one ref left behind makes the check fail, naming it.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
scripts/release.sh check "v$version" > /dev/null
t=$(mktemp -d "${TMPDIR:-/tmp}/tarn-lint-release.XXXXXX")
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/scripts"
cp -a Cargo.toml README.md .github actions examples docs "$t/"
cp scripts/release.sh "$t/scripts/"
sed -i "s|tarn-cache/tarn/actions/verify@v$version|tarn-cache/tarn/actions/verify@v0.0.9|" "$t/.github/workflows/lake-cache.yml"
if out=$("$t/scripts/release.sh" check "v$version" 2>&1); then
  echo "lint.sh: release.sh check passed with a stale ref" >&2; exit 1
fi
grep -q "lake-cache.yml:[0-9]*:tarn-cache/tarn/actions/verify@v0.0.9" <<<"$out" \
  || { echo "lint.sh: release.sh check did not name the stale ref: $out" >&2; exit 1; }
echo "  ok  release pins: v$version everywhere (scripts/release.sh check); a stale ref is named and fails"

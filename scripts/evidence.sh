#!/usr/bin/env bash
# evidence.sh — every published figure from one run:
#   scripts/evidence.sh [--allow-dirty] [--allow-no-deep]
# On a clean checkout it runs, in release mode, the benchmarks (scripts/bench.sh, which
# rewrites BENCHMARKS.md) and the reliability measurements (scripts/reliability.sh: the
# hostile and crash tests, the stable and the deep fuzzing; it rewrites RELIABILITY.md's
# figures), and stamps both documents with one stamp: the commit, the git tree id of the
# measured sources (crates/, fuzz/; unchanged by a rebase), the machine's core count and the
# date. README.md carries no figures of its own (it links BENCHMARKS.md's Targets table, misses
# next to hits), so nothing there can drift. Takes hours on 2 cores (deep fuzzing the most);
# run it on an otherwise idle machine. --allow-no-deep is passed to reliability.sh (deep rows
# are then marked not re-measured); --allow-dirty measures uncommitted sources (the stamp
# says "+dirty").
set -euo pipefail
cd "$(dirname "$0")/.."
allow_dirty=0
reliability_flags=()
for a in "$@"; do
  case "$a" in
    --allow-dirty) allow_dirty=1 ;;
    --allow-no-deep) reliability_flags+=(--allow-no-deep) ;;
    *) echo "usage: scripts/evidence.sh [--allow-dirty] [--allow-no-deep]" >&2; exit 2 ;;
  esac
done

sources="$(git rev-parse --short HEAD:crates)/$(git rev-parse --short HEAD:fuzz)"
if [ -n "$(git status --porcelain -- crates fuzz Cargo.toml Cargo.lock scripts)" ]; then
  if [ "$allow_dirty" = 0 ]; then
    echo "evidence: the sources differ from HEAD; commit first (or pass --allow-dirty)" >&2
    exit 1
  fi
  sources="$sources+dirty"
fi
stamp="commit $(git rev-parse --short HEAD), sources $sources, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "evidence: $stamp" >&2

# README must not quote speed figures: they live in BENCHMARKS.md alone.
if grep -Eq '[0-9.]+ ?× (faster|slower)|req/s' README.md; then
  echo "evidence: README.md quotes speed figures; link BENCHMARKS.md instead" >&2
  exit 1
fi

scripts/bench.sh
TARN_RELIABILITY_RELEASE=1 scripts/reliability.sh "${reliability_flags[@]}" all

# One stamp in both documents, right under their first line.
python3 - "$stamp" <<'PY'
import re, sys
stamp = sys.argv[1]
for doc in ("BENCHMARKS.md", "RELIABILITY.md"):
    text = open(doc).read()
    text = re.sub(r"\n<!-- evidence: .* -->\n", "\n", text)
    head, _, rest = text.partition("\n")
    open(doc, "w").write(f"{head}\n<!-- evidence: {stamp} (scripts/evidence.sh) -->\n{rest}")
PY
git diff --stat -- README.md BENCHMARKS.md RELIABILITY.md >&2
echo "evidence: done ($stamp)" >&2

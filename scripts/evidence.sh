#!/usr/bin/env bash
# evidence.sh — every published figure from one run:
#   scripts/evidence.sh [--allow-dirty] [--allow-no-deep]
# On a clean checkout it runs, in release mode, the benchmarks (scripts/bench.sh, which
# rewrites BENCHMARKS.md, then the restore, tmpfs trust and prune benchmarks, each written as
# its own section of it by scripts/bench-section.py or scripts/bench-prune.sh) and the
# reliability measurements (scripts/reliability.sh: the hostile and crash tests, the stable
# and the deep fuzzing; it rewrites RELIABILITY.md's figures), and stamps both documents with
# one stamp: the commit, the git tree id of the measured sources (crates/, fuzz/; unchanged by
# a rebase), the machine's core count and the date. README.md carries no figures of its own
# (it links BENCHMARKS.md, misses next to hits), so nothing there can drift. Run it on an
# otherwise idle machine: about an hour on 2 cores with FUZZ_SECS=300, hours without a cap
# (deep fuzzing the most). --allow-no-deep is passed to reliability.sh (deep rows are then
# marked not re-measured); --allow-dirty measures uncommitted sources (the stamp says
# "+dirty"). FUZZ_RUNS, FUZZ_SECS and FUZZ_ITERS pass through to reliability.sh: a deep target
# stopped at a FUZZ_SECS cap is published as such, next to any longer earlier run.
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

# BENCHMARKS.md: the main comparisons (rewrites the file, keeping the marked sections below),
# then each further benchmark as its own section, its command and output written next to it.
scripts/bench.sh
section() { python3 scripts/bench-section.py "$@"; }
# A restore benchmark's packed archives (DIR/cache, DIR/modules.json) copied into a fresh DEST.
copy_archives() { rm -rf "$2" && mkdir -p "$2" && cp -r "$1/cache" "$1/modules.json" "$2/"; }
# Restore on a tmpfs first, where creating a file costs the same whatever was deleted before
# (bench.sh has just deleted its outputs; see BENCHMARKS.md's Machine section), then on disk.
scripts/bench-restore.sh --modules 9000 --prepare-only
if [ -d /dev/shm ]; then
  shm=/dev/shm/tarn-bench-restore
  copy_archives target/bench-restore "$shm"
  section restore-tmpfs "Restore: 9,000 modules, tmpfs" \
    --intro "Issue 22's goals: (c) >= 5x faster than (a), no slower than (b), peak RSS <= 150 MB. The benchmark directory is on a tmpfs." \
    -- scripts/bench-restore.sh --modules 9000 --runs 3 --dir "$shm"
  rm -rf "$shm"
  section trust-tmpfs "Signed revisions: verified get on a tmpfs" \
    --intro "Row 8b of the main run again with the bench directory on a tmpfs (issue 19's goal: a verified get within 1.10x of an unsigned one)." \
    -- python3 scripts/bench.py --only trust --runs 5 --bench-dir /dev/shm/tarn-bench-trust --no-write
  rm -rf /dev/shm/tarn-bench-trust
fi
section restore-disk "Restore: 9,000 modules, this disk" \
  --intro "The same archives and goals on this disk (ext4 without a journal: each way starts by deleting the previous way's build directory, which makes the next one's file creation slower by a varying amount)." \
  -- scripts/bench-restore.sh --modules 9000 --runs 3
section restore-overlap "Restore: get --restore from a cold cache, 2,000 modules" \
  --intro "Issue 22's goal: tarn get --restore takes <= 1.3x the longer of get alone and restore alone." \
  -- scripts/bench-restore.sh --modules 2000 --runs 3 --overlap --dir target/bench-restore-2000
if [ -d /dev/shm ]; then
  shm=/dev/shm/tarn-bench-restore-2000
  copy_archives target/bench-restore-2000 "$shm"
  section restore-overlap-tmpfs "Restore: get --restore from a cold cache, 2,000 modules, tmpfs" \
    --intro "The same goal as the section above, the benchmark directory (the server's data, the cold cache and the workspace) on a tmpfs." \
    -- scripts/bench-restore.sh --modules 2000 --runs 3 --overlap --dir "$shm"
  rm -rf "$shm"
fi
scripts/bench-prune.sh
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

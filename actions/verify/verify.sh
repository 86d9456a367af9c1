#!/usr/bin/env bash
# The `verify` action's step (the reusable workflow's verify job): on a fresh runner, fetch one
# revision's outputs into an empty Lake cache, anonymously as Lake does, then check them:
#
#   1. `tarn get --rev REV` in the project's checkout: the revision file and every artifact it
#      names, each hashed on arrival (exit 1 naming every failure);
#   2. `tarn verify` of the revision's mappings and of the whole cache: every artifact present
#      and hashing to its name;
#   3. where Lean's `lake` is installed: `lake build --no-build --rehash` in the checkout, which
#      succeeds only if every target of the build resolves from the cache (exit 3 naming the
#      first that does not). This is what `tarn verify` cannot know: whether the revision's
#      mappings cover everything the project builds.
#
# Configuration (environment; the action maps its inputs onto these):
#   TARN_VERIFY_PROJECT    the checkout of the project at REV (default .)
#   TARN_VERIFY_REV        the revision (40 lowercase hex digits)
#   TARN_VERIFY_SCOPE      a verbatim scope, or else
#   TARN_VERIFY_REPO       a repository scope OWNER/NAME, with TARN_VERIFY_PLATFORM and
#                          TARN_VERIFY_TOOLCHAIN as its revision URL's pt/ and tc/ parts
#   TARN_VERIFY_ARTIFACT_ENDPOINT, TARN_VERIFY_REVISION_ENDPOINT   download endpoints (…/a0, …/r0)
#   TARN_VERIFY_LAKE       auto (default): run step 3 if `lake` is on PATH; required: fail
#                          without it; off: never
#   TARN_VERIFY_TARGETS    targets for step 3 (default: the package's default targets)
#   TARN_VERIFY_CACHE      the cache directory to fill; must not exist or be empty
#                          (default RUNNER_TEMP/tarn-verify-cache)
# Writes `verified=N` and `checked-with=tarn` or `checked-with=tarn+lake` to GITHUB_OUTPUT.
set -euo pipefail
fail() { echo "::error title=tarn verify::$*" >&2; exit 1; }
say() { echo "tarn verify: $*" >&2; }

tmp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
project=$(realpath -m -- "${TARN_VERIFY_PROJECT:-.}")
rev=${TARN_VERIFY_REV:-}
[[ "$rev" =~ ^[0-9a-f]{40}$ ]] || fail "rev '$rev' is not a full commit SHA (40 lowercase hex digits)"
[ -d "$project" ] || fail "project directory '$project' does not exist (check out the revision first)"
mode=${TARN_VERIFY_LAKE:-auto}
case $mode in auto|required|off) ;; *) fail "lake must be auto, required or off, not '$mode'" ;; esac
command -v tarn >/dev/null || fail "tarn not found (run the setup-tarn action first)"

export LAKE_CACHE_DIR
LAKE_CACHE_DIR=$(realpath -m -- "${TARN_VERIFY_CACHE:-$tmp/tarn-verify-cache}")
[ ! -e "$LAKE_CACHE_DIR" ] || [ -z "$(ls -A "$LAKE_CACHE_DIR")" ] \
  || fail "the cache directory '$LAKE_CACHE_DIR' is not empty: the check needs an empty cache"
mkdir -p "$LAKE_CACHE_DIR"
# A private configuration: only the anonymous download service.
export LAKE_CONFIG="$tmp/tarn-verify-config.toml"
[ -n "${TARN_VERIFY_ARTIFACT_ENDPOINT:-}" ] && [ -n "${TARN_VERIFY_REVISION_ENDPOINT:-}" ] \
  || fail "artifact-endpoint and revision-endpoint are required"
printf 'cache.defaultService = "download"\n\n[[cache.service]]\nname = "download"\nkind = "s3"\nartifactEndpoint = "%s"\nrevisionEndpoint = "%s"\n' \
  "$TARN_VERIFY_ARTIFACT_ENDPOINT" "$TARN_VERIFY_REVISION_ENDPOINT" > "$LAKE_CONFIG"
if [ -n "${TARN_VERIFY_SCOPE:-}" ]; then scope=(--scope "$TARN_VERIFY_SCOPE")
else
  [ -n "${TARN_VERIFY_REPO:-}" ] || fail "set a scope or a repository"
  scope=(--repo "$TARN_VERIFY_REPO" --platform "${TARN_VERIFY_PLATFORM:-}" --toolchain "${TARN_VERIFY_TOOLCHAIN:-}")
fi

# 1. Fetch.
tarn get -d "$project" --rev "$rev" "${scope[@]}"
mappings=$(find "$LAKE_CACHE_DIR/revisions" -name "$rev.jsonl" -type f)
[ "$(printf '%s\n' "$mappings" | grep -c .)" = 1 ] || fail "expected one revision file for $rev in $LAKE_CACHE_DIR/revisions, found: $mappings"

# 2. Every fetched byte, again.
tarn verify "$mappings"
tarn verify
n=$(find "$LAKE_CACHE_DIR/artifacts" -type f | wc -l)
checked=tarn

# 3. Lake's own completeness check.
lake=$(command -v lake || true)
if [ "$mode" = off ]; then
  say "lake check: off"
elif [ -z "$lake" ]; then
  [ "$mode" = auto ] || fail "lake is not installed and the lake check is required"
  say "lake check: lake is not installed on this runner; checked with tarn verify only"
else
  # shellcheck disable=SC2086 # targets are words
  if (cd "$project" && "$lake" build --no-build --rehash ${TARN_VERIFY_TARGETS:-}); then
    checked=tarn+lake
    say "lake check: lake build --no-build --rehash: every target resolves from the cache"
  else
    rc=$?
    fail "lake build --no-build --rehash exited $rc: the outputs uploaded for $rev do not cover the build (the target named above is missing from the cache)"
  fi
fi
say "revision $rev: $n artifacts fetched and rehashed; checked with $checked"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "verified=$n" >> "$GITHUB_OUTPUT"
  echo "checked-with=$checked" >> "$GITHUB_OUTPUT"
fi

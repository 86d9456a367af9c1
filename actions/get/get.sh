#!/usr/bin/env bash
# The `get` action's step: fetch a Lake workspace's outputs with tarn, in PROJECT, from the
# service given by endpoints (written to a private Lake configuration) or by name:
#   1. `tarn get` for the root package (the newest cached commit from HEAD back, or REV);
#   2. unless DEPS=false, `tarn get --deps`: every dependency in lake-manifest.json, git-only
#      ones included, each from the repository scope of its git URL (docs/remote.md).
# Both run even if the first fails; the step fails (exit 1) if either did.
# Writes `rev=` (the root's revision, empty if none) to GITHUB_OUTPUT.
set -euo pipefail
fail() { echo "::error title=tarn get::$*" >&2; exit 1; }
tarn=${TARN_BIN:-$(command -v tarn || true)}
[ -n "$tarn" ] || fail "tarn not found (run the setup-tarn action first)"
case ${DEPS:-true} in true|false) ;; *) fail "deps must be true or false, not '$DEPS'" ;; esac

project=${PROJECT:-.}
service=()
if [ -n "${ARTIFACT_ENDPOINT:-}" ]; then
  [ -n "${REVISION_ENDPOINT:-}" ] || fail "revision-endpoint is required with artifact-endpoint"
  export LAKE_CONFIG="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/tarn-get-config.toml"
  printf 'cache.defaultService = "download"\n\n[[cache.service]]\nname = "download"\nkind = "s3"\nartifactEndpoint = "%s"\nrevisionEndpoint = "%s"\n' \
    "$ARTIFACT_ENDPOINT" "$REVISION_ENDPOINT" > "$LAKE_CONFIG"
elif [ -n "${SERVICE:-}" ]; then
  service=(--service "$SERVICE")
fi
args=(get -d "$project" --json "${service[@]}")
if [ -n "${IN_SCOPE:-}" ]; then args+=(--scope "$IN_SCOPE"); fi
if [ -n "${IN_REPO:-}" ]; then args+=(--repo "$IN_REPO"); fi
if [ -n "${REV:-}" ]; then args+=(--rev "$REV"); fi

summary="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/tarn-get.json"
failed=()
"$tarn" "${args[@]}" > "$summary" || failed+=("the root package")
rev=$(sed -n 's/^ *"rev": "\([0-9a-f]*\)".*/\1/p' "$summary" | head -n 1)
echo "tarn get: revision ${rev:-(none)}" >&2
if [ "${DEPS:-true}" = true ]; then
  echo "tarn get: dependencies (tarn get --deps)" >&2
  "$tarn" get --deps -d "$project" "${service[@]}" || failed+=("dependencies")
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "rev=$rev" >> "$GITHUB_OUTPUT"; fi
[ "${#failed[@]}" = 0 ] || fail "fetching failed for: ${failed[*]} (see above)"

#!/usr/bin/env bash
# The `get` action's step: `tarn get` for the project in PROJECT with the service given by
# endpoints (written to a private Lake configuration) or by name. Writes `rev=` to GITHUB_OUTPUT.
set -euo pipefail
fail() { echo "::error title=tarn get::$*" >&2; exit 1; }
tarn=${TARN_BIN:-$(command -v tarn || true)}
[ -n "$tarn" ] || fail "tarn not found (run the setup-tarn action first)"

args=(get -d "${PROJECT:-.}" --json)
if [ -n "${ARTIFACT_ENDPOINT:-}" ]; then
  [ -n "${REVISION_ENDPOINT:-}" ] || fail "revision-endpoint is required with artifact-endpoint"
  export LAKE_CONFIG="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/tarn-get-config.toml"
  printf 'cache.defaultService = "download"\n\n[[cache.service]]\nname = "download"\nkind = "s3"\nartifactEndpoint = "%s"\nrevisionEndpoint = "%s"\n' \
    "$ARTIFACT_ENDPOINT" "$REVISION_ENDPOINT" > "$LAKE_CONFIG"
elif [ -n "${SERVICE:-}" ]; then
  args+=(--service "$SERVICE")
fi
if [ -n "${IN_SCOPE:-}" ]; then args+=(--scope "$IN_SCOPE"); fi
if [ -n "${IN_REPO:-}" ]; then args+=(--repo "$IN_REPO"); fi
if [ -n "${REV:-}" ]; then args+=(--rev "$REV"); fi

summary="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/tarn-get.json"
"$tarn" "${args[@]}" > "$summary"
rev=$(sed -n 's/^ *"rev": "\([0-9a-f]*\)".*/\1/p' "$summary" | head -n 1)
echo "tarn get: revision $rev" >&2
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "rev=$rev" >> "$GITHUB_OUTPUT"; fi

#!/usr/bin/env bash
# The `setup-tarn` action's install step. Inputs come from the environment:
#   TARN_BINARY   use this binary as it is, or else
#   TARN_VERSION  `cargo install --locked tarn-cli --version V` from crates.io, or else
#   TARN_GIT + TARN_REV  `cargo install --locked --git URL --rev SHA tarn-cli`
#   TARN_ROOT     install root (cached between runs by the action)
#   TARN_INSTALL_CARGO_ARGS  extra `cargo install` arguments, one word each (tests use `--debug`)
# Puts the binary's directory on GITHUB_PATH and writes `path=` to GITHUB_OUTPUT.
set -euo pipefail

fail() { echo "::error title=setup-tarn::$*" >&2; exit 1; }

if [ -n "${TARN_BINARY:-}" ]; then
  [ -f "$TARN_BINARY" ] && [ -x "$TARN_BINARY" ] || fail "binary '$TARN_BINARY' is not an executable file"
  bin=$(realpath "$TARN_BINARY")
else
  root=${TARN_ROOT:?TARN_ROOT is not set}
  bin="$root/bin/tarn"
  if [ -n "${TARN_VERSION:-}" ]; then
    [[ "$TARN_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || fail "version '$TARN_VERSION' is not a semantic version"
    want="tarn-cli $TARN_VERSION"
    source=(tarn-cli --version "$TARN_VERSION")
  else
    [[ "${TARN_REV:-}" =~ ^[0-9a-f]{40}$ ]] || fail "set 'version', 'binary', or 'rev' (a full 40-character commit SHA); got rev '${TARN_REV:-}'"
    want="git $TARN_GIT $TARN_REV"
    source=(--git "$TARN_GIT" --rev "$TARN_REV" tarn-cli)
  fi
  # The cache key names the version; the stamp guards against a cache restored from elsewhere.
  if [ -x "$bin" ] && [ "$(cat "$root/.tarn-source" 2>/dev/null)" = "$want" ]; then
    echo "tarn: using the cached build of $want"
  else
    read -r -a extra <<< "${TARN_INSTALL_CARGO_ARGS:-}"
    cargo install --locked --root "$root" --force "${extra[@]}" "${source[@]}"
    printf '%s' "$want" > "$root/.tarn-source"
  fi
fi

"$bin" --version
dir=$(dirname "$bin")
if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >> "$GITHUB_PATH"; fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "path=$bin" >> "$GITHUB_OUTPUT"; fi

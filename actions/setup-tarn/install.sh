#!/usr/bin/env bash
# The `setup-tarn` action's install step. Inputs come from the environment:
#   TARN_BINARY       use this binary as it is, or else
#   TARN_FROM_SOURCE  `true`: build with cargo (below), or else
#   TARN_VERSION      download release TARN_VERSION (default RELEASE_VERSION below) with scripts/install.sh (checksum verified)
#                     into the tool cache, RUNNER_TOOL_CACHE/tarn/VERSION/ARCH (the layout of
#                     @actions/tool-cache, with its `.complete` marker), reused when present;
#                     base URL TARN_RELEASE_URL_INPUT, else TARN_RELEASE_URL, else GitHub
#   from source: TARN_GIT + TARN_REV `cargo install --locked --git URL --rev SHA tarn-cli`,
#                or without TARN_REV `cargo install --locked tarn-cli --version TARN_VERSION`
#   TARN_ROOT     install root of a source build (cached between runs by the action)
#   TARN_INSTALL_CARGO_ARGS  extra `cargo install` arguments, one word each (tests use `--debug`)
# Puts the binary's directory on GITHUB_PATH and writes `path=` to GITHUB_OUTPUT.
set -euo pipefail

fail() { echo "::error title=setup-tarn::$*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)

# The release this action belongs to, the default version (scripts/release.sh check keeps it
# equal to the tag the action is released under: the two are pinned together).
RELEASE_VERSION=0.1.0
semver='^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$'
if [ -n "${TARN_BINARY:-}" ]; then
  [ -f "$TARN_BINARY" ] && [ -x "$TARN_BINARY" ] || fail "binary '$TARN_BINARY' is not an executable file"
  bin=$(realpath "$TARN_BINARY")
elif [ "${TARN_FROM_SOURCE:-false}" = true ]; then
  root=${TARN_ROOT:?TARN_ROOT is not set}
  bin="$root/bin/tarn"
  if [ -n "${TARN_REV:-}" ]; then
    [[ "$TARN_REV" =~ ^[0-9a-f]{40}$ ]] || fail "rev '$TARN_REV' is not a full 40-character commit SHA"
    want="git $TARN_GIT $TARN_REV"
    source=(--git "$TARN_GIT" --rev "$TARN_REV" tarn-cli)
  else
    [[ "${TARN_VERSION:-}" =~ $semver ]] || fail "version '${TARN_VERSION:-}' is not a semantic version; with from-source, set version or rev (a full 40-character commit SHA)"
    want="tarn-cli $TARN_VERSION"
    source=(tarn-cli --version "$TARN_VERSION")
  fi
  # The cache key names the version; the stamp guards against a cache restored from elsewhere.
  if [ -x "$bin" ] && [ "$(cat "$root/.tarn-source" 2>/dev/null)" = "$want" ]; then
    echo "tarn: using the cached build of $want"
  else
    read -r -a extra <<< "${TARN_INSTALL_CARGO_ARGS:-}"
    cargo install --locked --root "$root" --force "${extra[@]}" "${source[@]}"
    printf '%s' "$want" > "$root/.tarn-source"
  fi
else
  [ "${TARN_FROM_SOURCE:-false}" = false ] || fail "from-source is '$TARN_FROM_SOURCE'; use true or false"
  version=${TARN_VERSION:-$RELEASE_VERSION}
  version=${version#v}
  [[ "$version" =~ $semver ]] || fail "version '${TARN_VERSION:-}' is not a semantic version"
  case ${RUNNER_ARCH:-$(uname -m)} in
    X64 | x86_64 | amd64) arch=x64 ;;
    ARM64 | aarch64 | arm64) arch=arm64 ;;
    *) fail "no tarn release for the runner's architecture '${RUNNER_ARCH:-$(uname -m)}'; set from-source: true" ;;
  esac
  tool_cache=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:?neither RUNNER_TOOL_CACHE nor RUNNER_TEMP is set}/tool-cache}
  dir="$tool_cache/tarn/$version/$arch"
  exe=tarn
  [ "${RUNNER_OS:-}" = Windows ] && exe=tarn.exe
  bin="$dir/$exe"
  if [ -f "$dir.complete" ] && [ -x "$bin" ]; then
    echo "tarn: using tarn $version from the tool cache ($dir)"
  else
    # The installer verifies the checksum before anything runs, and installs atomically.
    rm -rf "$dir" "$dir.complete"
    TARN_RELEASE_URL=${TARN_RELEASE_URL_INPUT:-${TARN_RELEASE_URL:-}} TARN_INSTALL_DIR="$dir" \
      sh "$here/../../scripts/install.sh" --version "$version" ||
      fail "could not install tarn $version (see above); set from-source: true to build it instead"
    : > "$dir.complete"
  fi
fi

"$bin" --version
dir=$(dirname "$bin")
if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >> "$GITHUB_PATH"; fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "path=$bin" >> "$GITHUB_OUTPUT"; fi

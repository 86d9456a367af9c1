#!/usr/bin/env bash
# Builds and packages tarn's release assets, the same way here and in the release workflow
# (.github/workflows/release.yml; docs/release.md).
#
#   scripts/release.sh build TARGET [PROFILE]    cargo build of the `tarn` binary for TARGET
#                                                (Linux musl targets through cargo-zigbuild)
#   scripts/release.sh package TARGET BIN OUT    OUT/tarn-TARGET.tar.gz (tarn, LICENSE,
#                                                README.md) and OUT/tarn-TARGET.tar.gz.sha256;
#                                                TARN_RELEASE_FAST=1 (tests packaging a debug
#                                                build): debug info stripped, gzip -1
#   scripts/release.sh mirror ASSETS TAG OUT     lays out ASSETS as GitHub serves a release:
#                                                OUT/download/TAG/* and OUT/latest/download/*,
#                                                the layout install.sh reads (TARN_RELEASE_URL=OUT)
#   scripts/release.sh check TAG                 TAG is vVERSION (Cargo.toml), and every
#                                                tarn-cache/tarn/…@vX.Y.Z ref, tarn version
#                                                input in workflows, actions, examples and docs,
#                                                and setup-tarn's default version name TAG: they
#                                                are released (pinned) together
#
# PROFILE is `release` (default) or `debug`. Needs cargo-zigbuild and zig (PyPI:
# cargo-zigbuild, ziglang) for the Linux targets; the others build natively on their runner.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "release.sh: error: $*" >&2; exit 1; }

# The targets a release has; install.sh and actions/setup-tarn map platforms onto these names.
TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-msvc)

known_target() {
  local t
  for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done
  die "unknown target '$1' (release targets: ${TARGETS[*]})"
}

build() {
  local target=$1 profile=${2:-release} flags=()
  known_target "$target"
  [ "$profile" = release ] && flags=(--release)
  cd "$repo"
  case $target in
    *-linux-musl)
      command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild is not on PATH (pip install cargo-zigbuild ziglang)"
      cargo zigbuild --locked "${flags[@]}" --target "$target" --bin tarn ;;
    *) cargo build --locked "${flags[@]}" --target "$target" --bin tarn ;;
  esac
  local exe=tarn
  [[ $target == *windows* ]] && exe=tarn.exe
  echo "${CARGO_TARGET_DIR:-$repo/target}/$target/$profile/$exe"
}

package() {
  local target=$1 bin=$2 out=$3
  known_target "$target"
  [ -f "$bin" ] || die "no binary at $bin"
  local exe=tarn name="tarn-$target.tar.gz"
  [[ $target == *windows* ]] && exe=tarn.exe
  mkdir -p "$out"
  local stage
  stage=$(mktemp -d "${TMPDIR:-/tmp}/tarn-package.XXXXXX")
  trap 'rm -rf "$stage"' RETURN
  local level=9
  if [ "${TARN_RELEASE_FAST:-}" = 1 ]; then
    level=1
    strip --strip-debug -o "$stage/$exe" "$bin" 2>/dev/null || cp "$bin" "$stage/$exe"
  else
    cp "$bin" "$stage/$exe"
  fi
  chmod 755 "$stage/$exe"
  cp "$repo/LICENSE" "$repo/README.md" "$stage/"
  # Reproducible where the tar is GNU tar: fixed order, owner and times.
  local det=()
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    det=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
  fi
  tar "${det[@]}" -C "$stage" -cf - "$exe" LICENSE README.md | gzip -"$level"n > "$out/$name.tmp"
  mv -f "$out/$name.tmp" "$out/$name"
  local sum
  if command -v sha256sum >/dev/null; then sum=$(sha256sum "$out/$name" | cut -d' ' -f1)
  else sum=$(shasum -a 256 "$out/$name" | cut -d' ' -f1); fi
  printf '%s  %s\n' "$sum" "$name" > "$out/$name.sha256.tmp"
  mv -f "$out/$name.sha256.tmp" "$out/$name.sha256"
  echo "$out/$name"
}

mirror() {
  local assets=$1 tag=$2 out=$3
  [[ $tag =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "tag '$tag' is not vX.Y.Z"
  mkdir -p "$out/download/$tag" "$out/latest/download"
  cp "$assets"/* "$out/download/$tag/"
  cp "$assets"/* "$out/latest/download/"
}

check() {
  local tag=$1 version
  cd "$repo"
  version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
  [ "$tag" = "v$version" ] || die "tag '$tag' is not v$version, the version in Cargo.toml"
  local files=(.github/workflows/*.yml actions/*/action.yml examples/ci/*.yml docs/*.md README.md)
  local bad
  bad=$(grep -noE 'tarn-cache/tarn/[A-Za-z0-9_./-]+@v[0-9][0-9A-Za-z.+-]*' "${files[@]}" | grep -v "@$tag\$" || true)
  [ -z "$bad" ] || die "refs that do not name $tag:"$'\n'"$bad"
  bad=$(grep -nE '^\s*(tarn-)?version: ' examples/ci/*.yml | grep -vE "version: \"?$version\"?\s*(#.*)?\$" || true)
  [ -z "$bad" ] || die "tarn version inputs that are not $version:"$'\n'"$bad"
  bad=$(grep -E '^tarn-[a-z]+ = \{ path = ' Cargo.toml | grep -v 'tarn-test' | grep -v "version = \"$version\"" || true)
  [ -z "$bad" ] || die "Cargo.toml: workspace dependencies without version $version (crates.io needs it):"$'\n'"$bad"
  grep -qx "RELEASE_VERSION=$version" actions/setup-tarn/install.sh || die "actions/setup-tarn/install.sh: RELEASE_VERSION is not $version"
  echo "release.sh: $tag agrees with Cargo.toml and every tarn-cache/tarn ref and version input"
}

case ${1:-} in
  build) shift; build "$@" ;;
  package) shift; [ $# -eq 3 ] || die "usage: release.sh package TARGET BIN OUT"; package "$@" ;;
  mirror) shift; [ $# -eq 3 ] || die "usage: release.sh mirror ASSETS TAG OUT"; mirror "$@" ;;
  check) shift; [ $# -eq 1 ] || die "usage: release.sh check TAG"; check "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac

#!/bin/sh
# Installs a released tarn binary, verified, into ~/.local/bin (docs/release.md).
#
#   curl -sSfL https://github.com/tarn-cache/tarn/releases/latest/download/install.sh | sh
#   sh install.sh [--version X.Y.Z] [--dir DIR]
#
# Platforms: Linux (static musl builds) and macOS on x86_64 and aarch64, Windows on x86_64
# under Git Bash (tarn.exe).
#
# Environment (flags win):
#   TARN_VERSION      release to install (default: the newest)
#   TARN_INSTALL_DIR  where `tarn` goes (default: ~/.local/bin)
#   TARN_RELEASE_URL  base URL of the releases (default: https://github.com/tarn-cache/tarn/releases);
#                     the newest asset is BASE/latest/download/NAME, a named one
#                     BASE/download/vX.Y.Z/NAME, as on GitHub (mirrors copy that layout)
#
# Steps: detect the platform, download tarn-<target>.tar.gz and its .sha256 into a private
# temporary directory, check the SHA-256, unpack the one file `tarn`, copy it next to its
# destination under a temporary name and rename it into place. Nothing downloaded runs before
# its checksum matched; on any error nothing is installed and an existing tarn stays as it was.
# POSIX sh (dash, bash, busybox ash, macOS sh); needs curl or wget, tar, and sha256sum, shasum
# or openssl.
set -eu

DEFAULT_RELEASE_URL=https://github.com/tarn-cache/tarn/releases
SOURCE_HINT="build from source instead: cargo install --locked --git https://github.com/tarn-cache/tarn tarn-cli"

say() { printf 'tarn-install: %s\n' "$*" >&2; }
die() { printf 'tarn-install: error: %s\n' "$1" >&2; [ $# -lt 2 ] || printf '  hint: %s\n' "$2" >&2; exit 1; }
usage() {
  cat <<'EOF'
usage: install.sh [--version X.Y.Z] [--dir DIR]
Installs the newest (or the named) tarn release into ~/.local/bin (or DIR), verified by its
SHA-256 checksum. Environment: TARN_VERSION, TARN_INSTALL_DIR, TARN_RELEASE_URL (default
https://github.com/tarn-cache/tarn/releases). See docs/release.md.
EOF
  exit 0
}
usage_error() { printf 'tarn-install: error: %s\n  hint: sh install.sh --help\n' "$1" >&2; exit 2; }

version=${TARN_VERSION:-}
dir=${TARN_INSTALL_DIR:-}
base=${TARN_RELEASE_URL:-$DEFAULT_RELEASE_URL}
while [ $# -gt 0 ]; do
  case $1 in
    --version) [ $# -ge 2 ] || usage_error "--version needs a value"; version=$2; shift 2 ;;
    --version=*) version=${1#--version=}; shift ;;
    --dir) [ $# -ge 2 ] || usage_error "--dir needs a value"; dir=$2; shift 2 ;;
    --dir=*) dir=${1#--dir=}; shift ;;
    -h | --help) usage ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

# --- What to fetch -------------------------------------------------------------------------
version=${version#v}
if [ -n "$version" ]; then
  # X.Y.Z with an optional pre-release or build suffix; nothing that could leave the URL path.
  case $version in
    *[!0-9A-Za-z.+-]* | .* | *..*) usage_error "version '$version' is not a release number like 0.1.0" ;;
  esac
  case $version in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) usage_error "version '$version' is not a release number like 0.1.0" ;;
  esac
fi
if [ -z "$dir" ]; then
  [ -n "${HOME:-}" ] || die "HOME is not set; name the directory with --dir or TARN_INSTALL_DIR"
  dir=$HOME/.local/bin
fi
base=${base%/}
case $base in
  https://*) ;;
  http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) ;;
  http://*) say "warning: $base is plain HTTP; only the checksum from the same server protects the download" ;;
  *) usage_error "TARN_RELEASE_URL '$base' is not an http(s) URL" ;;
esac

os=$(uname -s 2>/dev/null || echo unknown)
arch=$(uname -m 2>/dev/null || echo unknown)
# A shell running under Rosetta reports x86_64 on an Apple silicon Mac: take the native build.
if [ "$os" = Darwin ] && [ "$arch" = x86_64 ] &&
  [ "$(sysctl -n hw.optional.arm64 2>/dev/null || echo 0)" = 1 ]; then
  arch=arm64
fi
exe=tarn
case $os/$arch in
  Linux/x86_64 | Linux/amd64) target=x86_64-unknown-linux-musl ;;
  Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-musl ;;
  Darwin/x86_64) target=x86_64-apple-darwin ;;
  Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
  MINGW*/x86_64 | MSYS*/x86_64 | CYGWIN*/x86_64) target=x86_64-pc-windows-msvc exe=tarn.exe ;; # Git Bash
  *) die "no tarn release is built for this platform ($os $arch); releases exist for Linux and macOS on x86_64 and aarch64, and Windows on x86_64" "$SOURCE_HINT" ;;
esac
asset=tarn-$target.tar.gz
if [ -n "$version" ]; then
  release_url=$base/download/v$version
else
  release_url=$base/latest/download
fi

# --- Tools ---------------------------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
  fetch() { curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 900 --output "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget --quiet --tries=3 --timeout=60 --output-document="$2" "$1"; }
else
  die "neither curl nor wget is installed; one of them is needed to download tarn"
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
elif command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
else
  die "no SHA-256 tool (sha256sum, shasum or openssl) is installed; the download cannot be verified"
fi
command -v tar >/dev/null 2>&1 || die "tar is not installed; it is needed to unpack $asset"

# --- Download and verify, in a private directory removed on every exit ----------------------
tmp=""
staged=""
cleanup() {
  [ -z "$staged" ] || rm -f "$staged"
  [ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tarn-install.XXXXXX") || die "cannot create a temporary directory in ${TMPDIR:-/tmp}"

what=${version:+tarn $version}
what=${what:-the newest tarn}
say "downloading $what for $target from $release_url"
fetch "$release_url/$asset.sha256" "$tmp/$asset.sha256" ||
  die "could not download $release_url/$asset.sha256 (see the message above); nothing was installed" \
    "check the version ('${version:-latest}') and TARN_RELEASE_URL; the release must have the asset $asset"
fetch "$release_url/$asset" "$tmp/$asset" ||
  die "could not download $release_url/$asset (see the message above); nothing was installed"

# The checksum file is `sha256sum` output: 64 hex digits, two spaces (or ' *'), the asset name.
line=$(head -n 1 "$tmp/$asset.sha256")
want=${line%% *}
named=${line#* }
named=${named# }
named=${named#\*}
case $want in
  *[!0-9a-f]*) die "$release_url/$asset.sha256 is not a SHA-256 checksum file; nothing was installed" ;;
esac
[ ${#want} -eq 64 ] || die "$release_url/$asset.sha256 is not a SHA-256 checksum file; nothing was installed"
[ "$named" = "$asset" ] || die "$release_url/$asset.sha256 is the checksum of '$named', not of $asset; nothing was installed"
got=$(sha256 "$tmp/$asset")
[ "$got" = "$want" ] ||
  die "checksum mismatch for $release_url/$asset: expected $want, got $got; nothing was installed" \
    "an interrupted or altered download; run the installer again, and report it if it repeats"

mkdir "$tmp/unpacked"
tar -xzf "$tmp/$asset" -C "$tmp/unpacked" "$exe" 2>"$tmp/tar.log" ||
  die "$asset has no file '$exe' ($(head -n 1 "$tmp/tar.log")); nothing was installed"
[ -f "$tmp/unpacked/$exe" ] && [ ! -L "$tmp/unpacked/$exe" ] ||
  die "'$exe' in $asset is not a regular file; nothing was installed"

# --- Install: a temporary name in the same directory, then one rename ------------------------
mkdir -p "$dir" || die "cannot create the directory $dir"
staged=$dir/.tarn-install.$$
cp "$tmp/unpacked/$exe" "$staged" || die "cannot write to $dir"
chmod 755 "$staged"
mv -f "$staged" "$dir/$exe" || die "cannot rename $staged to $dir/$exe"
staged=""

installed=$("$dir/$exe" --version 2>&1) || die "$dir/$exe was installed but does not run: $installed"
say "installed $installed to $dir/$exe"
case ":${PATH:-}:" in
  *":$dir:"*) ;;
  *) say "$dir is not on PATH; add it, for example: export PATH=\"$dir:\$PATH\"" ;;
esac

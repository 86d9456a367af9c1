#!/usr/bin/env bash
# Tests the installer (scripts/install.sh) under dash against a release served over HTTP on
# 127.0.0.1, laid out by scripts/release.sh exactly as the release workflow lays it out:
#
#   newest      TARN_RELEASE_URL + TARN_INSTALL_DIR, no version: latest/download/…, installed
#               and runs, in under 10 s; the pipe form `curl …/install.sh | sh` too
#   named       --version X.Y.Z (and TARN_VERSION) reads download/vX.Y.Z/…; default directory
#               ~/.local/bin; an existing tarn is replaced
#   refusals    tampered checksum, truncated asset, a download cut off mid-body, a missing
#               asset (unknown version), an unknown platform (uname), a bad --version (exit 2):
#               each exits non-zero with a clear message, installs nothing, leaves no temporary
#               file, and keeps an existing tarn as it was
#
#   tests/pipeline/install.sh TARGET_DIR     (TARGET_DIR holds a built `tarn`)
#   TARN_RELEASE_ASSETS=DIR tests/pipeline/install.sh TARGET_DIR
#       uses the release assets in DIR (scripts/release.sh build + package: the real static
#       musl binary) instead of packaging TARGET_DIR/tarn under this machine's target name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${1:?usage: install.sh TARGET_DIR}" && pwd)
INSTALL=$repo/scripts/install.sh
DASH=$(command -v dash || true)
[ -n "$DASH" ] || { echo "install.sh: dash is not installed (the POSIX sh the installer is tested under)" >&2; exit 1; }
started=$(date +%s%N)
W=$(mktemp -d "${TMPDIR:-/tmp}/tarn-pipeline-install.XXXXXX")
server_pid=""
cleanup() { [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
[ -z "${KEEP:-}" ] || trap - EXIT
ok() { echo "  ok  $*"; }
die() { echo "install.sh: FAILED: $*" >&2; exit 1; }

case $(uname -m) in
  x86_64) target=x86_64-unknown-linux-musl ;;
  aarch64) target=aarch64-unknown-linux-musl ;;
  *) die "no release target for $(uname -m)" ;;
esac
version=$("$bin_dir/tarn" --version | awk '{print $2}')
tag=v$version

# --- The release, as the release workflow produces it ---------------------------------------
assets=$W/assets
if [ -n "${TARN_RELEASE_ASSETS:-}" ]; then
  mkdir -p "$assets"
  cp "$TARN_RELEASE_ASSETS"/* "$assets/"
  from="the release assets in $TARN_RELEASE_ASSETS"
else
  TARN_RELEASE_FAST=1 "$repo/scripts/release.sh" package "$target" "$bin_dir/tarn" "$assets" > /dev/null
  from="$bin_dir/tarn packaged by scripts/release.sh"
fi
cp "$INSTALL" "$assets/install.sh"
# Windows (Git Bash): a stand-in tarn.exe, a script that runs here, packaged the same way.
if [ ! -e "$assets/tarn-x86_64-pc-windows-msvc.tar.gz" ]; then
  mkdir -p "$W/win"
  printf '#!/bin/sh\necho "tarn %s (windows stand-in)"\n' "$version" > "$W/win/tarn.exe"
  TARN_RELEASE_FAST=1 "$repo/scripts/release.sh" package x86_64-pc-windows-msvc "$W/win/tarn.exe" "$assets" > /dev/null
fi
[ -s "$assets/tarn-$target.tar.gz" ] && [ -s "$assets/tarn-$target.tar.gz.sha256" ] || die "no tarn-$target.tar.gz(.sha256) in the assets"
want_version=$(tar -xzOf "$assets/tarn-$target.tar.gz" tarn > "$W/expected-tarn" && chmod +x "$W/expected-tarn" && "$W/expected-tarn" --version)
"$repo/scripts/release.sh" mirror "$assets" "$tag" "$W/good"
# Broken copies of the same release.
cp -a "$W/good" "$W/tampered"
sum=$(cut -d' ' -f1 "$assets/tarn-$target.tar.gz.sha256")
printf '%s  %s\n' "$(printf '%s' "$sum" | tr '0-9a-f' '1-9a-f0')" "tarn-$target.tar.gz" > "$W/tampered/latest/download/tarn-$target.tar.gz.sha256"
cp -a "$W/good" "$W/truncated"
size=$(stat -c %s "$assets/tarn-$target.tar.gz")
head -c $((size / 2)) "$assets/tarn-$target.tar.gz" > "$W/truncated/latest/download/tarn-$target.tar.gz"

# --- A static file server on 127.0.0.1; under /cut/ it sends half a body and hangs up -------
python3 "$here/release-server.py" "$W" > "$W/port" 2> "$W/server.log" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
port=$(cat "$W/port")
[ -n "$port" ] || { cat "$W/server.log" >&2; die "the release server did not start"; }
URL=http://127.0.0.1:$port

# --- Helpers --------------------------------------------------------------------------------
# run_install NAME ENV... -- ARGS...: the installer under dash, in a sealed environment with
# its own HOME and TMPDIR; stdout+stderr in $W/NAME.log, exit code in $rc.
run_install() {
  local name=$1 envs=() ; shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  mkdir -p "$W/$name/home" "$W/$name/tmp"
  rc=0
  env -i PATH="${FAKE_PATH:-}/usr/local/bin:/usr/bin:/bin" HOME="$W/$name/home" TMPDIR="$W/$name/tmp" \
    "${envs[@]}" "$DASH" "$INSTALL" "$@" > "$W/$name.log" 2>&1 || rc=$?
}
# nothing_left NAME DIR: no tarn and no temporary file in DIR, nothing in the run's TMPDIR.
nothing_left() {
  local name=$1 dir=$2
  [ ! -e "$dir/tarn" ] || die "$name: $dir/tarn exists after a failed install"
  [ -z "$(ls -A "$dir" 2>/dev/null)" ] || die "$name: $dir holds $(ls -A "$dir")"
  [ -z "$(ls -A "$W/$name/tmp")" ] || die "$name: temporary files left: $(ls -A "$W/$name/tmp")"
}
expect_refusal() { # NAME WANT_RC MESSAGE
  [ "$rc" = "$2" ] || { cat "$W/$1.log" >&2; die "$1: exit $rc, expected $2"; }
  grep -qF -- "$3" "$W/$1.log" || { cat "$W/$1.log" >&2; die "$1: no '$3' in the output"; }
}

# --- The newest release ---------------------------------------------------------------------
t0=$(date +%s%N)
run_install newest TARN_RELEASE_URL="$URL/good" TARN_INSTALL_DIR="$W/newest/bin"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 0 ] || { cat "$W/newest.log" >&2; die "newest: exit $rc"; }
[ "$("$W/newest/bin/tarn" --version)" = "$want_version" ] || die "newest: the installed tarn says $("$W/newest/bin/tarn" --version)"
[ "$(ls -A "$W/newest/bin")" = tarn ] || die "newest: $W/newest/bin holds $(ls -A "$W/newest/bin")"
[ -z "$(ls -A "$W/newest/tmp")" ] || die "newest: temporary files left"
grep -q "installed $want_version to $W/newest/bin/tarn" "$W/newest.log" || die "newest: no 'installed' line: $(cat "$W/newest.log")"
grep -q "is not on PATH" "$W/newest.log" || die "newest: no PATH hint"
[ "$ms" -lt 10000 ] || die "newest: took $ms ms (limit 10 s)"
ok "newest: latest/download/tarn-$target.tar.gz from $from, verified and installed under dash in $ms ms"

# The documented one-liner: the installer itself fetched from the release, piped into sh.
mkdir -p "$W/pipe/home" "$W/pipe/tmp"
env -i PATH=/usr/bin:/bin HOME="$W/pipe/home" TMPDIR="$W/pipe/tmp" TARN_RELEASE_URL="$URL/good" \
  sh -c "curl -sSfL '$URL/good/latest/download/install.sh' | sh" > "$W/pipe.log" 2>&1 \
  || { cat "$W/pipe.log" >&2; die "curl … | sh failed"; }
[ "$("$W/pipe/home/.local/bin/tarn" --version)" = "$want_version" ] || die "pipe: nothing in ~/.local/bin"
ok "curl …/latest/download/install.sh | sh: installed into ~/.local/bin (the default)"

# --- A named release, over an existing tarn -------------------------------------------------
mkdir -p "$W/named/bin"
printf '#!/bin/sh\necho old tarn\n' > "$W/named/bin/tarn"; chmod +x "$W/named/bin/tarn"
run_install named TARN_RELEASE_URL="$URL/good" -- --version "$version" --dir "$W/named/bin"
[ "$rc" = 0 ] || { cat "$W/named.log" >&2; die "named: exit $rc"; }
grep -q "from $URL/good/download/$tag" "$W/named.log" || die "named: did not read download/$tag: $(cat "$W/named.log")"
[ "$("$W/named/bin/tarn" --version)" = "$want_version" ] || die "named: the old tarn was not replaced"
run_install named-env TARN_RELEASE_URL="$URL/good" TARN_VERSION="$tag" TARN_INSTALL_DIR="$W/named-env/bin"
[ "$rc" = 0 ] && grep -q "from $URL/good/download/$tag" "$W/named-env.log" || { cat "$W/named-env.log" >&2; die "TARN_VERSION=$tag: exit $rc"; }
ok "named: --version $version and TARN_VERSION=$tag read download/$tag/; an existing tarn is replaced"

# --- Refusals: nothing installed, an existing tarn untouched --------------------------------
old() { mkdir -p "$1"; printf '#!/bin/sh\necho old tarn\n' > "$1/tarn"; chmod +x "$1/tarn"; }
kept() { [ "$("$1/tarn")" = "old tarn" ] && [ "$(ls -A "$1")" = tarn ] || die "$2: the existing tarn in $1 was changed ($(ls -A "$1"))"; }

run_install tampered TARN_RELEASE_URL="$URL/tampered" TARN_INSTALL_DIR="$W/tampered/bin"
expect_refusal tampered 1 "checksum mismatch for $URL/tampered/latest/download/tarn-$target.tar.gz"
grep -q "nothing was installed" "$W/tampered.log" || die "tampered: does not say nothing was installed"
nothing_left tampered "$W/tampered/bin"
old "$W/tampered-old/bin"
run_install tampered-old TARN_RELEASE_URL="$URL/tampered" TARN_INSTALL_DIR="$W/tampered-old/bin"
expect_refusal tampered-old 1 "checksum mismatch"
kept "$W/tampered-old/bin" tampered-old
ok "tampered checksum: exit 1, 'checksum mismatch … nothing was installed', no file, an existing tarn kept"

run_install truncated TARN_RELEASE_URL="$URL/truncated" TARN_INSTALL_DIR="$W/truncated/bin"
expect_refusal truncated 1 "checksum mismatch"
nothing_left truncated "$W/truncated/bin"
ok "truncated asset (half the bytes, served complete): exit 1, checksum mismatch, nothing installed"

old "$W/cut/bin"
run_install cut TARN_RELEASE_URL="$URL/cut" TARN_INSTALL_DIR="$W/cut/bin"
expect_refusal cut 1 "could not download $URL/cut/latest/download/tarn-$target.tar.gz"
kept "$W/cut/bin" cut
[ -z "$(ls -A "$W/cut/tmp")" ] || die "cut: temporary files left"
ok "download cut off mid-body: exit 1 naming the URL, an existing tarn kept, no temporary file"

run_install missing TARN_RELEASE_URL="$URL/good" TARN_INSTALL_DIR="$W/missing/bin" -- --version 9.9.9
expect_refusal missing 1 "could not download $URL/good/download/v9.9.9/tarn-$target.tar.gz.sha256"
grep -q "hint: check the version ('9.9.9')" "$W/missing.log" || die "missing: no hint"
nothing_left missing "$W/missing/bin"
ok "missing asset (--version 9.9.9): exit 1 naming the URL with a hint, nothing installed"

mkdir -p "$W/fake-uname"
printf '#!/bin/sh\ncase $1 in -s) echo Plan9 ;; -m) echo mips ;; esac\n' > "$W/fake-uname/uname"
chmod +x "$W/fake-uname/uname"
FAKE_PATH="$W/fake-uname:" run_install unknown TARN_RELEASE_URL="$URL/good" TARN_INSTALL_DIR="$W/unknown/bin"
expect_refusal unknown 1 "no tarn release is built for this platform (Plan9 mips)"
grep -q "hint: build from source instead: cargo install --locked --git" "$W/unknown.log" || die "unknown: no source hint"
nothing_left unknown "$W/unknown/bin"
[ ! -e "$W/unknown/bin" ] || die "unknown: created $W/unknown/bin"
ok "unknown platform (uname: Plan9 mips): exit 1 with the build-from-source hint, nothing created"

printf '#!/bin/sh\ncase $1 in -s) echo MINGW64_NT-10.0-20348 ;; -m) echo x86_64 ;; esac\n' > "$W/fake-uname/uname"
FAKE_PATH="$W/fake-uname:" run_install windows TARN_RELEASE_URL="$URL/good" TARN_INSTALL_DIR="$W/windows/bin"
[ "$rc" = 0 ] && [ "$("$W/windows/bin/tarn.exe" --version)" = "tarn $version (windows stand-in)" ] \
  && [ "$(ls -A "$W/windows/bin")" = tarn.exe ] || { cat "$W/windows.log" >&2; die "windows: exit $rc"; }
ok "Windows under Git Bash (uname: MINGW64_NT x86_64): tarn-x86_64-pc-windows-msvc.tar.gz, tarn.exe installed"

run_install badversion TARN_INSTALL_DIR="$W/badversion/bin" -- --version '1.0/../../x'
expect_refusal badversion 2 "is not a release number"
run_install badarg TARN_INSTALL_DIR="$W/badarg/bin" -- --frobnicate
expect_refusal badarg 2 "unknown argument '--frobnicate'"
nothing_left badversion "$W/badversion/bin"
ok "usage errors (a version with a path in it, an unknown flag): exit 2, nothing installed"

echo "install.sh: passed in $(( ($(date +%s%N) - started) / 1000000 )) ms"

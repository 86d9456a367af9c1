#!/usr/bin/env bash
# Tests the setup-tarn action's install script (actions/setup-tarn/install.sh) on its paths,
# with no network beyond 127.0.0.1 and the crates.io registry the build already uses:
#
#   release  (the default) a release laid out by scripts/release.sh (TARGET_DIR's tarn packaged
#            as this machine's target) served on 127.0.0.1: downloaded through scripts/install.sh,
#            checksum verified, into RUNNER_TOOL_CACHE/tarn/VERSION/ARCH with a `.complete`
#            marker, no cargo on PATH; the next run uses the tool cache without the network; the
#            release URL comes from the `release-url` input or else TARN_RELEASE_URL; a tampered
#            checksum fails and leaves nothing in the tool cache.
#   git      from-source: `cargo install --locked --git file://<this repository> --rev <HEAD>
#            tarn-cli`, the action's own command (with `--debug` and this checkout's target
#            directory, so the dependencies already built are reused); both binaries (tarn,
#            tarn-fixture) are installed and run, the directory goes to GITHUB_PATH, `path=` to
#            GITHUB_OUTPUT; a second run with the same source uses the cached build without
#            cargo (the action's cache restores TARN_ROOT).
#   binary   a caller-supplied binary is used as it is; a path that is not an executable file
#            is refused.
#   inputs   a version that is not semantic, or a rev that is not 40 hex digits, is refused
#            before anything is downloaded or built.
# Not covered: from-source with `version` (crates.io), since tarn-cli is not published there
# yet; it is the same cargo command with `tarn-cli --version V` as its source.
#
#   tests/pipeline/setup-tarn.sh TARGET_DIR    (TARGET_DIR holds the built `tarn`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${1:?usage: setup-tarn.sh TARGET_DIR}" && pwd)
install=$repo/actions/setup-tarn/install.sh
started=$(date +%s%N)
W=$(mktemp -d "${TMPDIR:-/tmp}/tarn-setup-tarn.XXXXXX")
server_pid=""
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; rm -rf "$W"' EXIT
ok() { echo "  ok  $*"; }
die() { echo "setup-tarn.sh: FAILED: $*" >&2; exit 1; }
run_install() { # NAME ENV... -> install.sh's exit code; GITHUB_PATH/OUTPUT and log under $W/NAME
  local name=$1 rc=0; shift
  mkdir -p "$W/$name"
  : > "$W/$name/path"; : > "$W/$name/output"
  env GITHUB_PATH="$W/$name/path" GITHUB_OUTPUT="$W/$name/output" "$@" "$install" > "$W/$name.log" 2>&1 || rc=$?
  return $rc
}

rev=$(git -C "$repo" rev-parse HEAD)
want_version=$("$bin_dir/tarn" --version)
version=${want_version#tarn }

# --- release: download, verify, tool cache -----------------------------------------------------
case $(uname -m) in x86_64) target=x86_64-unknown-linux-musl arch=x64 ;; aarch64) target=aarch64-unknown-linux-musl arch=arm64 ;; esac
TARN_RELEASE_FAST=1 "$repo/scripts/release.sh" package "$target" "$bin_dir/tarn" "$W/assets" > /dev/null
"$repo/scripts/release.sh" mirror "$W/assets" "v$version" "$W/good"
cp -a "$W/good" "$W/tampered"
printf '%s  %s\n' "$(printf '%064d' 0)" "tarn-$target.tar.gz" > "$W/tampered/download/v$version/tarn-$target.tar.gz.sha256"
python3 "$here/release-server.py" "$W" > "$W/port" 2> "$W/server.log" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
[ -s "$W/port" ] || { cat "$W/server.log" >&2; die "the release server did not start"; }
URL=http://127.0.0.1:$(cat "$W/port")
tc=$W/toolcache
run_install release RUNNER_TOOL_CACHE="$tc" RUNNER_ARCH=X64 TARN_VERSION="$version" TARN_RELEASE_URL_INPUT="$URL/good" PATH=/usr/bin:/bin \
  || { cat "$W/release.log" >&2; die "the release download failed"; }
[ -x "$tc/tarn/$version/$arch/tarn" ] && [ -f "$tc/tarn/$version/$arch.complete" ] || die "release: nothing in the tool cache ($(find "$tc"))"
[ "$("$tc/tarn/$version/$arch/tarn" --version)" = "$want_version" ] || die "release: the tool cache's tarn is not $want_version"
grep -qx "$tc/tarn/$version/$arch" "$W/release/path" && grep -qx "path=$tc/tarn/$version/$arch/tarn" "$W/release/output" \
  || die "release: GITHUB_PATH / GITHUB_OUTPUT: $(cat "$W/release/path" "$W/release/output")"
grep -q "from $URL/good/download/v$version" "$W/release.log" || die "release: not downloaded from the input's URL"
ok "release: tarn $version downloaded from release-url, checksum verified, in the tool cache, on GITHUB_PATH (no cargo on PATH)"
run_install release-again RUNNER_TOOL_CACHE="$tc" RUNNER_ARCH=X64 TARN_VERSION="$version" TARN_RELEASE_URL_INPUT=http://127.0.0.1:9/nothing PATH=/usr/bin:/bin \
  || { cat "$W/release-again.log" >&2; die "the tool-cache run failed"; }
grep -q "using tarn $version from the tool cache" "$W/release-again.log" || die "the second run did not use the tool cache"
ok "release, second run: the tool cache, no download"
run_install release-env RUNNER_TOOL_CACHE="$W/tc-env" RUNNER_ARCH=X64 TARN_VERSION="v$version" TARN_RELEASE_URL="$URL/good" PATH=/usr/bin:/bin \
  || { cat "$W/release-env.log" >&2; die "TARN_RELEASE_URL from the environment failed"; }
grep -q "from $URL/good/download/v$version" "$W/release-env.log" || die "release-env: TARN_RELEASE_URL not used"
ok "release: TARN_RELEASE_URL from the runner's environment when the input is empty; version 'v$version' accepted"
rc=0; run_install tampered RUNNER_TOOL_CACHE="$W/tc-bad" RUNNER_ARCH=X64 TARN_VERSION="$version" TARN_RELEASE_URL_INPUT="$URL/tampered" PATH=/usr/bin:/bin || rc=$?
[ "$rc" = 1 ] && grep -q "checksum mismatch" "$W/tampered.log" && grep -q "set from-source: true to build it instead" "$W/tampered.log" \
  || { cat "$W/tampered.log" >&2; die "tampered: exit $rc"; }
[ -z "$(find "$W/tc-bad" -type f 2>/dev/null)" ] || die "tampered: files in the tool cache: $(find "$W/tc-bad" -type f)"
ok "release: a tampered checksum fails (exit 1) and leaves no file in the tool cache"
# The git path: the action's cargo command against this repository at HEAD. Its target
# directory starts as a hard-linked copy of this checkout's debug build (cargo install replaces
# the binaries in the target directory it uses), so only tarn's own crates are compiled.
mkdir -p "$W/target"
cp -al "$bin_dir" "$W/target/debug" 2>/dev/null || cp -a "$bin_dir" "$W/target/debug"
t0=$(date +%s)
run_install git TARN_FROM_SOURCE=true TARN_ROOT="$W/root" TARN_GIT="file://$repo" TARN_REV="$rev" \
  TARN_INSTALL_CARGO_ARGS="--debug" CARGO_TARGET_DIR="$W/target" \
  || { tail -n 30 "$W/git.log" >&2; die "cargo install from git failed"; }
secs=$(( $(date +%s) - t0 ))
[ -x "$W/root/bin/tarn" ] || die "no $W/root/bin/tarn after the install"
[ "$("$W/root/bin/tarn" --version)" = "$want_version" ] || die "the installed tarn says $("$W/root/bin/tarn" --version)"
# The package installs both of its binaries (README: Install); tarn-fixture runs and writes a cache.
[ -x "$W/root/bin/tarn-fixture" ] || die "no $W/root/bin/tarn-fixture after the install (ls: $(ls "$W/root/bin"))"
"$W/root/bin/tarn-fixture" --modules 3 --out "$W/fx" > "$W/fixture.log" 2>&1 && [ -s "$W/fx/mappings.jsonl" ] \
  || { cat "$W/fixture.log" >&2; die "the installed tarn-fixture did not write a fixture"; }
grep -qx "$W/root/bin" "$W/git/path" && grep -qx "path=$W/root/bin/tarn" "$W/git/output" \
  || die "GITHUB_PATH / GITHUB_OUTPUT: $(cat "$W/git/path" "$W/git/output")"
grep -q "Installed package \`tarn-cli" "$W/git.log" || die "cargo install did not report the install"
ok "git: cargo install --locked --git file://… --rev $rev tarn-cli (--debug) in ${secs}s; tarn and tarn-fixture installed, on GITHUB_PATH, path= output"

run_install cached TARN_FROM_SOURCE=true TARN_ROOT="$W/root" TARN_GIT="file://$repo" TARN_REV="$rev" CARGO=/nonexistent PATH=/usr/bin:/bin \
  || { cat "$W/cached.log" >&2; die "the cached install failed"; }
grep -q "tarn: using the cached build of git file://$repo $rev" "$W/cached.log" || die "the second run did not use the cached build"
ok "git, second run (TARN_ROOT restored by the action's cache): the cached build, no cargo on PATH"

# The cache stamp names the source: a restored root from another revision is rebuilt, not used.
printf 'git file://%s %s' "$repo" "0000000000000000000000000000000000000000" > "$W/root/.tarn-source"
rc=0; run_install stale TARN_FROM_SOURCE=true TARN_ROOT="$W/root" TARN_GIT="file://$repo" TARN_REV="$rev" PATH=/usr/bin:/bin || rc=$?
[ "$rc" != 0 ] && grep -q "cargo: command not found" "$W/stale.log" && ! grep -q "using the cached build" "$W/stale.log" \
  || { cat "$W/stale.log" >&2; die "a root stamped for another source was used"; }
ok "git: a cached root stamped for another revision is not used (cargo is called again)"

run_install binary TARN_BINARY="$bin_dir/tarn" || { cat "$W/binary.log" >&2; die "the binary path failed"; }
grep -qx "path=$(realpath "$bin_dir/tarn")" "$W/binary/output" && grep -qx "$(dirname "$(realpath "$bin_dir/tarn")")" "$W/binary/path" \
  || die "binary: outputs $(cat "$W/binary/output" "$W/binary/path")"
ok "binary: used as it is (path= output, its directory on GITHUB_PATH)"
for bad in "$W/nonexistent" "$repo/README.md"; do
  rc=0; run_install bad-binary TARN_BINARY="$bad" || rc=$?
  [ "$rc" = 1 ] && grep -q "is not an executable file" "$W/bad-binary.log" || die "binary '$bad': exit $rc"
done
ok "binary: a missing or non-executable path is refused (exit 1)"

rc=0; run_install bad-version TARN_ROOT="$W/r2" RUNNER_TOOL_CACHE="$W/r2" TARN_VERSION="1.0; rm -rf /" || rc=$?
[ "$rc" = 1 ] && grep -q "is not a semantic version" "$W/bad-version.log" || die "bad version: exit $rc"
rc=0; run_install bad-rev TARN_FROM_SOURCE=true TARN_ROOT="$W/r2" TARN_GIT="file://$repo" TARN_REV=HEAD || rc=$?
[ "$rc" = 1 ] && grep -q "a full 40-character commit SHA" "$W/bad-rev.log" || die "bad rev: exit $rc"
[ ! -e "$W/r2" ] || die "a refused input left an install root"
ok "inputs: a version that is not semantic and a rev that is not 40 hex digits are refused before anything is downloaded or built"
echo "setup-tarn.sh: passed in $(( ($(date +%s%N) - started) / 1000000 )) ms (cargo install ${secs}s)"

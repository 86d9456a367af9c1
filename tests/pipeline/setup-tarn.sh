#!/usr/bin/env bash
# Tests the setup-tarn action's install script (actions/setup-tarn/install.sh) on its three
# paths, with no network beyond the crates.io registry the build already uses:
#
#   git      `cargo install --locked --git file://<this repository> --rev <HEAD> tarn-cli`, the
#            action's own command (with `--debug` and this checkout's target directory, so the
#            dependencies already built are reused); both binaries (tarn, tarn-fixture) are
#            installed and run, the directory goes to
#            GITHUB_PATH, `path=` to GITHUB_OUTPUT; a second run with the same source uses the
#            cached build without cargo (the action's cache restores TARN_ROOT).
#   binary   a caller-supplied binary is used as it is; a path that is not an executable file
#            is refused.
#   inputs   a version that is not semantic, or a rev that is not 40 hex digits, is refused
#            before cargo runs.
# Not covered: `version` (crates.io), since tarn-cli is not published there yet; it is the
# same cargo command with `tarn-cli --version V` as its source.
#
#   tests/pipeline/setup-tarn.sh TARGET_DIR    (TARGET_DIR holds the built `tarn`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${1:?usage: setup-tarn.sh TARGET_DIR}" && pwd)
install=$repo/actions/setup-tarn/install.sh
started=$(date +%s%N)
W=$(mktemp -d "${TMPDIR:-/tmp}/tarn-setup-tarn.XXXXXX")
trap 'rm -rf "$W"' EXIT
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
# The git path: the action's cargo command against this repository at HEAD. Its target
# directory starts as a hard-linked copy of this checkout's debug build (cargo install replaces
# the binaries in the target directory it uses), so only tarn's own crates are compiled.
mkdir -p "$W/target"
cp -al "$bin_dir" "$W/target/debug" 2>/dev/null || cp -a "$bin_dir" "$W/target/debug"
t0=$(date +%s)
run_install git TARN_ROOT="$W/root" TARN_GIT="file://$repo" TARN_REV="$rev" \
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

run_install cached TARN_ROOT="$W/root" TARN_GIT="file://$repo" TARN_REV="$rev" CARGO=/nonexistent PATH=/usr/bin:/bin \
  || { cat "$W/cached.log" >&2; die "the cached install failed"; }
grep -q "tarn: using the cached build of git file://$repo $rev" "$W/cached.log" || die "the second run did not use the cached build"
ok "git, second run (TARN_ROOT restored by the action's cache): the cached build, no cargo on PATH"

# The cache stamp names the source: a restored root from another revision is rebuilt, not used.
printf 'git file://%s %s' "$repo" "0000000000000000000000000000000000000000" > "$W/root/.tarn-source"
rc=0; run_install stale TARN_ROOT="$W/root" TARN_GIT="file://$repo" TARN_REV="$rev" PATH=/usr/bin:/bin || rc=$?
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

rc=0; run_install bad-version TARN_ROOT="$W/r2" TARN_VERSION="1.0; rm -rf /" || rc=$?
[ "$rc" = 1 ] && grep -q "is not a semantic version" "$W/bad-version.log" || die "bad version: exit $rc"
rc=0; run_install bad-rev TARN_ROOT="$W/r2" TARN_GIT="file://$repo" TARN_REV=HEAD || rc=$?
[ "$rc" = 1 ] && grep -q "a full 40-character commit SHA" "$W/bad-rev.log" || die "bad rev: exit $rc"
[ ! -e "$W/r2" ] || die "a refused input left an install root"
ok "inputs: a version that is not semantic and a rev that is not 40 hex digits are refused before cargo runs"
echo "setup-tarn.sh: passed in $(( ($(date +%s%N) - started) / 1000000 )) ms (cargo install ${secs}s)"

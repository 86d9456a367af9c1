#!/usr/bin/env bash
# Proves that the README's test command works for a new user on this machine: a fresh clone,
# an empty HOME (so no virtual environment, no pip cache, no s3s-fs), an empty CARGO_HOME and
# target directory (crates download and everything builds), and Debian's own python3 first on
# PATH, which refuses system-wide `pip install` (PEP 668). The command runs in full: every
# test with every peer armed, the Lake-curl tests with curl 8, the doc comments' examples,
# the doc-test and the pipeline tests; any failure fails this script. CI runs its suite only
# here (one cold build of the workspace, not two).
#
#   scripts/fresh-home-check.sh          # CI: the above, reusing the cargo-nextest and s3s-fs
#                                        # binaries of the real HOME
#   scripts/fresh-home-check.sh --full   # also cargo-nextest and s3s-fs built from scratch
#                                        # (what the README's times measure)
#
# Why CI reuses those two: a new CARGO_HOME means `cargo install cargo-nextest` (~5.5 min on
# 2 cores) and s3s-fs (~3.5 min) on top of the cold build of the workspace. `scripts/test.sh
# --setup-only`, run first in the real HOME, provides them (.ci/run does); everything else
# (virtual environment, crates, the workspace, leantar, curl 8) is fetched and built fresh.
# --full proves the two `cargo install` steps too.
#
# When run as root with `useradd` available, it also runs `scripts/test.sh --setup-only` as a
# new unprivileged user (created here, removed at exit) to prove that a non-root run never
# prompts: with a system package missing it prints the one `sudo apt-get install` command and
# stops, and otherwise it builds its own virtual environment under that user's HOME.
#
# Everything lives in target/fresh-home-check/ and is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
MODE=reuse-tools
[ "${1:-}" = "--full" ] && MODE=full

say() { printf 'fresh-home-check: %s\n' "$*" >&2; }
fail() { printf 'fresh-home-check: FAIL: %s\n' "$*" >&2; exit 1; }
elapsed() { echo $(($(date +%s) - $1)); }

target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
work="$(cd "$target_dir" && pwd)/fresh-home-check"
user=""
nonroot_pid=""
cleanup() {
  if [ -n "$nonroot_pid" ]; then kill -- "$nonroot_pid" 2>/dev/null || true; wait "$nonroot_pid" 2>/dev/null || true; fi
  if [ -n "$user" ]; then pkill -KILL -u "$user" 2>/dev/null || true; fi
  if [ -n "$user" ]; then userdel --remove "$user" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$work"
mkdir -p "$work/home" "$work/toolchain" "$work/tmp"
ls -A /tmp | sort >"$work/tmp-before"

git clone --quiet "$repo" "$work/clone"
say "fresh clone of $(git -C "$work/clone" rev-parse --short HEAD) in $work/clone"

# The Rust toolchain is the machine's, not the home directory's: link rustup's proxies (or
# whatever cargo is here) into a directory of their own and keep RUSTUP_HOME. rustdoc too:
# the whole run (`--full`) tests the doc comments' examples, and cargo finds rustdoc on PATH.
for tool in cargo rustc rustdoc rustup; do
  if command -v "$tool" >/dev/null 2>&1; then ln -s "$(command -v "$tool")" "$work/toolchain/$tool"; fi
done
rustup_home=""
if command -v rustup >/dev/null 2>&1; then rustup_home=$(rustup show home); fi
s3s_root=""
if [ "$MODE" = reuse-tools ]; then
  nextest=$(command -v cargo-nextest) || fail "without --full this reuses the real HOME's cargo-nextest: run scripts/test.sh --setup-only first"
  ln -s "$nextest" "$work/toolchain/cargo-nextest"
  s3s_root=$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/s3s-fs-* 2>/dev/null | tail -1) ||
    fail "without --full this reuses the real HOME's s3s-fs: run scripts/test.sh --setup-only first"
  [ -n "$s3s_root" ] || fail "without --full this reuses the real HOME's s3s-fs: run scripts/test.sh --setup-only first"
fi

# Debian's python3 first on PATH; say whether it is the PEP 668 kind.
path="$work/toolchain:/usr/bin:/bin:/usr/sbin:/sbin"
py=$(PATH=$path command -v python3 || true)
if [ -n "$py" ] && [ -n "$(ls /usr/lib/python3*/EXTERNALLY-MANAGED 2>/dev/null)" ]; then
  say "python3 on the new user's PATH: $py (externally managed: system pip is refused, PEP 668)"
else
  say "python3 on the new user's PATH: ${py:-none}"
fi

# The new user's TMPDIR is a directory of its own, so that anything left there is ours.
fresh_env=(env -i "HOME=$work/home" "PATH=$path" "CARGO_HOME=$work/home/.cargo"
  "TMPDIR=$work/tmp" "LANG=C.UTF-8" "TERM=dumb" "USER=${USER:-$(id -un)}")
[ -z "$rustup_home" ] || fresh_env+=("RUSTUP_HOME=$rustup_home")
[ -z "$s3s_root" ] || fresh_env+=("S3S_ROOT=$s3s_root")

# ---- A new unprivileged user: never a password prompt, its own venv. -------------------------
# Runs beside the suite below (it mostly waits for PyPI), its output in $work/non-root.log.
nonroot_check() {
  local uhome out rc as_user
  uhome=$(getent passwd "$user" | cut -d: -f6)
  git clone --quiet "$repo" "$uhome/clone"
  chown -R "$user:" "$uhome"
  as_user=(runuser -u "$user" -- env -i "HOME=$uhome" "PATH=/usr/bin:/bin" "LANG=C.UTF-8")

  out=$("${as_user[@]}" TARN_TEST_EXTRA_APT="tarn-no-such-package:tarn-no-such-command" \
        bash -c 'cd ~/clone && scripts/test.sh --setup-only' </dev/null 2>&1) && rc=0 || rc=$?
  [ "$rc" = 1 ] || fail "non-root with a missing package: exit $rc, expected 1; output: $out"
  grep -q 'sudo apt-get install -y tarn-no-such-package' <<<"$out" ||
    fail "non-root with a missing package did not print the command to run: $out"
  say "non-root, a package missing: exit 1 with '$(grep 'sudo apt-get' <<<"$out" | sed 's/^ *//')'"

  out=$("${as_user[@]}" bash -c 'cd ~/clone && scripts/test.sh --setup-only' </dev/null 2>&1) && rc=0 || rc=$?
  # The new user has no Rust (rustup lives in root's home), so setup stops at the cargo step,
  # after the Python step this checks.
  runuser -u "$user" -- "$uhome/.cache/tarn-test/venv/bin/aws" --version >/dev/null 2>&1 ||
    fail "non-root: no awscli in $uhome/.cache/tarn-test/venv (exit $rc): $out"
  say "non-root: virtual environment with awscli built in the user's HOME with $(PATH=/usr/bin:/bin command -v python3)"
}
if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1; then
  user="tarnfresh$$"
  useradd --create-home --shell /bin/bash "$user"     # removed with its home at exit
  nonroot_check >"$work/non-root.log" 2>&1 &
  nonroot_pid=$!
fi

start=$(date +%s)
say "running the README's test command as a new user: scripts/test.sh"
(cd "$work/clone" && "${fresh_env[@]}" scripts/test.sh </dev/null) && test_rc=0 || test_rc=$?
say "scripts/test.sh from a fresh clone and empty HOME: exit $test_rc in $(elapsed "$start") s ($MODE)"
if [ -n "$nonroot_pid" ]; then
  wait "$nonroot_pid" && rc=0 || rc=$?
  nonroot_pid=""
  cat "$work/non-root.log" >&2
  [ "$rc" = 0 ] || fail "the non-root setup check failed (above)"
fi
[ "$test_rc" = 0 ] || fail "scripts/test.sh failed from a fresh clone with an empty HOME"
"$work/home/.cache/tarn-test/venv/bin/aws" --version >/dev/null ||
  fail "no awscli in the private virtual environment"
# A run's own directory (target/tarn-test/run-<pid>) is removed at exit; what stays there is
# kept on purpose (the status page test's screenshots, README).
left_runs=$(cd "$work/clone/target/tarn-test" 2>/dev/null && ls -d run-* 2>/dev/null || true)
[ -z "$left_runs" ] || fail "scripts/test.sh left its run directory in target/tarn-test: $left_runs"

[ -z "$(ls -A "$work/tmp")" ] || fail "left behind in TMPDIR: $(ls -A "$work/tmp")"
# /tmp itself is only reported: on a shared machine other people's runs write there too.
ls -A /tmp | sort >"$work/tmp-after"
left=$(comm -13 "$work/tmp-before" "$work/tmp-after" | grep -iE 'tarn|s3|pip|venv' | tr '\n' ' ' || true)
[ -z "$left" ] || say "note: new in /tmp during the run (this run's TMPDIR stayed empty, so not from it): $left"
say "ok: nothing left in TMPDIR or target/tarn-test; total $(elapsed "$start") s"

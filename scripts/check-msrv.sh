#!/usr/bin/env bash
# Offline MSRV check (no other toolchain can be downloaded): the workspace's `rust-version`
#  1. is what the README promises ("Rust X or newer"),
#  2. is at most the installed rustc,
#  3. is at least the `rust-version` of every crate in the locked dependency graph.
# Our own code is held to it by clippy's `incompatible_msrv` lint, which reads `rust-version`.
set -euo pipefail
cd "$(dirname "$0")/.."
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

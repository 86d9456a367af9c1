#!/usr/bin/env bash
# Prints the path of a leantar binary for the tests that need Lake's archive tool (`.ltar`).
#
#   scripts/leantar.sh        build once if needed, print the path
#
# $LEANTAR, when set to an executable, is used as it is. Otherwise this builds leantar v0.1.19
# (digama0/leangz @bc36c61, Apache-2.0; the version Lean v4.30-v4.32 bundle) from the source
# tarball the repository carries (tests/data/leangz-0.1.19-bc36c61.tar.gz) into
# target/leantar-0.1.19/ and prints that binary's path. The build fetches leantar's own crates
# from crates.io and takes about a minute. scripts/test.sh exports the result as LEANTAR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${LEANTAR:-}" ] && [ -x "$LEANTAR" ]; then
  echo "$LEANTAR"
  exit 0
fi
src=$root/tests/data/leangz-0.1.19-bc36c61.tar.gz
dest=${CARGO_TARGET_DIR:-$root/target}/leantar-0.1.19
bin=$dest/target/release/leantar
if [ ! -x "$bin" ]; then
  mkdir -p "$dest"
  tar -xzf "$src" -C "$dest" --strip-components=1
  # target/ lies inside tarn's workspace: an empty [workspace] table keeps cargo from taking
  # leantar for an unlisted member of it.
  grep -q '^\[workspace\]' "$dest/Cargo.toml" || printf '\n[workspace]\n' >>"$dest/Cargo.toml"
  (cd "$dest" && cargo build --release --locked --bin leantar -q) >&2
fi
echo "$bin"

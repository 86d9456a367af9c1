#!/usr/bin/env bash
# Installs curl 8.14.1 from Debian's bookworm-backports into a private directory, without
# touching the system curl (Lake's transport is the system curl, and curls differ: Debian 12
# ships 7.88, Ubuntu 24.04 and macOS runners 8.x). The package is fetched with the ordinary
# apt client using a private apt state (the system's sources are not changed), unpacked with
# `dpkg -x`, and run through a wrapper that sets LD_LIBRARY_PATH to its libcurl.
#
#   scripts/curl8.sh        # prints the path of the wrapper (<dir>/bin/curl)
#
# The directory is $TARN_CURL8_DIR (default target/curl8). Reruns reuse a working install.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="8.14.1-2+deb13u2~bpo13+1"
DIR=$(realpath -m "${TARN_CURL8_DIR:-${CARGO_TARGET_DIR:-target}/curl8}")
WRAPPER="$DIR/bin/curl"
if [ -x "$WRAPPER" ] && "$WRAPPER" --version 2>/dev/null | head -1 | grep -q '^curl 8\.14\.1 '; then
  echo "$WRAPPER"
  exit 0
fi
rm -rf "$DIR"
mkdir -p "$DIR/apt/state/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/debs" "$DIR/bin"
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$DIR/apt/sources.list"
APT_OPTS=(
  -o "Dir::State=$DIR/apt/state" -o "Dir::Cache=$DIR/apt/cache"
  -o "Dir::Etc::SourceList=$DIR/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::status=/var/lib/dpkg/status" -o "APT::Sandbox::User=root"
)
apt-get "${APT_OPTS[@]}" update -qq >&2
(cd "$DIR/debs" && apt-get "${APT_OPTS[@]}" download -qq "curl=$VERSION" "libcurl4=$VERSION" >&2)
for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/root"; done
ARCH_LIB=$(dirname "$(find "$DIR/root/usr/lib" -name 'libcurl.so.4' | head -1)")
cat > "$WRAPPER" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$ARCH_LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$DIR/root/usr/bin/curl" "\$@"
WRAP
chmod +x "$WRAPPER"
"$WRAPPER" --version | head -1 | grep -q '^curl 8\.14\.1 ' || {
  echo "curl8.sh: the unpacked curl does not run as curl 8.14.1:" >&2
  "$WRAPPER" --version >&2 || true
  exit 1
}
echo "$WRAPPER"

#!/bin/bash
# Runs inside the `stage` action's sandbox (see stage.sh, which passes everything in the
# environment). Mode `probe`: prove confinement and stop. Mode `stage`: prove it again, then
# `lake build --no-build -o` into the private /tmp and `tarn stage` into the staging directory.
# Exit 3 means a probe found the sandbox open.
set -uo pipefail
say() { echo "tarn-stage (sandbox): $*" >&2; }
open=0

# 1. Writes outside the writable mounts must fail. A write may land in the sandbox's own
# file systems, which is harmless: under /tmp (its private tmpfs), and in the directories
# bubblewrap creates on its root tmpfs to hold the mount points (the parents of the project,
# for example, when TMPDIR is one of them). There the verdict is stage.sh's, which looks for
# the probe file on the host afterwards; everywhere else a successful write is a leak.
root_dev=$(stat -c %d /)
while IFS= read -r g; do
  [ -z "$g" ] && continue
  if ( : > "$g/.$TARN_INSIDE_NONCE" ) 2>/dev/null; then
    case "$g" in
      /tmp|/tmp/*) say "probe: write to $g went through inside (checked from outside)" ;;
      *)
        if [ "$(stat -c %d "$g")" = "$root_dev" ]; then
          say "probe: write to $g went to the sandbox's own root file system (checked from outside)"
        else
          say "probe: write to $g SUCCEEDED"; open=1
        fi ;;
    esac
  else
    say "probe: write to $g refused"
  fi
done <<< "$TARN_INSIDE_GUARD"

# 2. No network: only the loopback interface, and the probe address cannot be reached.
ifaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev | grep -vx lo | tr '\n' ' ')
if [ -n "$ifaces" ]; then say "probe: network interfaces visible: $ifaces"; open=1
else say "probe: network interfaces: loopback only"; fi
host=${TARN_INSIDE_CONNECT%:*}; port=${TARN_INSIDE_CONNECT##*:}
if timeout 10 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
  say "probe: connect to $TARN_INSIDE_CONNECT SUCCEEDED"; open=1
else
  say "probe: connect to $TARN_INSIDE_CONNECT refused"
fi

# 3. No inherited environment: only what stage.sh set, and no trace of its canary anywhere.
allowed=" PATH HOME LAKE_CACHE_DIR ELAN_HOME ELAN_TOOLCHAIN PWD OLDPWD SHLVL _ TARN_INSIDE_MODE TARN_INSIDE_NONCE TARN_INSIDE_GUARD TARN_INSIDE_CONNECT TARN_INSIDE_STAGING TARN_INSIDE_LAKE TARN_INSIDE_TARGETS "
extra=""
while IFS= read -r name; do
  case "$allowed" in *" $name "*) ;; *) extra="$extra $name" ;; esac
done < <(env -0 | tr '\0\n' '\n ' | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p')
if [ -n "$extra" ]; then say "probe: inherited environment variables:$extra"; open=1
else say "probe: environment: only the sandbox's own variables"; fi
for f in /proc/[0-9]*/environ; do
  if { tr '\0' '\n' < "$f"; } 2>/dev/null | grep -q '^TARN_PROBE_CANARY='; then
    say "probe: the runner's environment is readable in $f"; open=1; canary=seen; break
  fi
done
[ "${canary:-}" = seen ] || say "probe: no process environment with the runner's canary is readable"

[ "$open" = 0 ] || exit 3
[ "$TARN_INSIDE_MODE" = probe ] && exit 0

# The step itself. The mappings go to the private /tmp: only the staging directory leaves.
mkdir -p /tmp/tarn-stage
# shellcheck disable=SC2086 # targets are words
"$TARN_INSIDE_LAKE" build --no-build -o /tmp/tarn-stage/outputs.jsonl $TARN_INSIDE_TARGETS || {
  rc=$?; say "lake build --no-build -o failed (exit $rc): the build is not complete"; exit 1; }
tarn stage /tmp/tarn-stage/outputs.jsonl "$TARN_INSIDE_STAGING" || exit 1

#!/usr/bin/env bash
# The `stage` action's step: record Lake's mappings (`lake build --no-build -o`) and stage the
# artifacts they name (`tarn stage`), inside a bubblewrap sandbox this script builds itself.
#
# The sandbox sees the system read-only, the project, Elan and the tools read-only, and may
# write only to the Lake cache directory and the staging directory (plus a private /tmp that
# vanishes). It has no network (a fresh network namespace), a cleared environment (no secrets),
# its own PID namespace and no capabilities. Before anything runs, probes prove that: from
# inside, a write to each guarded path, a TCP connection to PROBE_CONNECT, and a look for a
# canary variable must all fail; from outside, none of the probe files may appear. If any probe
# succeeds the step refuses (exit 3) and stages nothing.
#
# Configuration (environment; the action maps its inputs onto these):
#   TARN_STAGE_PROJECT         project directory (default: .)
#   TARN_STAGE_CACHE           Lake cache directory, LAKE_CACHE_DIR inside (default: PROJECT/.lake/cache)
#   TARN_STAGE_STAGING         staging directory to fill; must be absent or empty (default: PROJECT/.lake/staging)
#   TARN_STAGE_LAKE            the lake command (default: lake)
#   TARN_STAGE_TARGETS         build targets for `lake build --no-build -o` (default: none = default targets)
#   TARN_STAGE_TARN            the tarn binary (default: tarn on PATH)
#   TARN_STAGE_BWRAP           the bubblewrap binary (default: bwrap on PATH)
#   TARN_STAGE_PROBE_CONNECT   HOST:PORT reachable from the runner that the sandbox must not reach
#                              (default: the host of GITHUB_SERVER_URL, port 443)
#   TARN_STAGE_EXTRA_WRITABLE  more writable paths, one per line (for example a Lake that needs
#                              PROJECT/.lake/build for its lock file)
#   TARN_STAGE_EXTRA_READONLY  more read-only paths, one per line
#   TARN_STAGE_PROBE_ONLY=1    run the probes only (check a runner, or test the confinement)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "tarn-stage: $*" >&2; }
refuse() { echo "::error title=tarn stage::$*" >&2; exit 3; }
fail() { echo "::error title=tarn stage::$*" >&2; exit 1; }

abspath() { realpath -m -- "$1"; }

project=$(abspath "${TARN_STAGE_PROJECT:-.}")
[ -d "$project" ] || fail "project directory '$project' does not exist"
cache=$(cd "$project" && abspath "${TARN_STAGE_CACHE:-.lake/cache}")
staging=$(cd "$project" && abspath "${TARN_STAGE_STAGING:-.lake/staging}")
lake=${TARN_STAGE_LAKE:-lake}
targets=${TARN_STAGE_TARGETS:-}
probe_only=${TARN_STAGE_PROBE_ONLY:-0}

bwrap=${TARN_STAGE_BWRAP:-$(command -v bwrap || true)}
[ -n "$bwrap" ] && [ -x "$bwrap" ] \
  || refuse "bubblewrap (bwrap) is not installed: the stage step never runs unconfined (apt-get install bubblewrap)"

tarn=${TARN_STAGE_TARN:-$(command -v tarn || true)}
[ -n "$tarn" ] && [ -x "$tarn" ] || fail "tarn not found (run the setup-tarn action first, or set TARN_STAGE_TARN)"
tarn=$(realpath "$tarn")

lake_path=$(command -v "$lake" || true)
[ -n "$lake_path" ] || [ "$probe_only" = 1 ] || fail "'$lake' not found on PATH"

# The connection the sandbox must not make. By default GitHub itself, which every runner reaches.
probe_connect=${TARN_STAGE_PROBE_CONNECT:-}
if [ -z "$probe_connect" ]; then
  server=${GITHUB_SERVER_URL:-https://github.com}
  host=${server#*://}; host=${host%%/*}; host=${host%%:*}
  probe_connect="$host:443"
fi
[[ "$probe_connect" =~ ^[A-Za-z0-9.-]+:[0-9]+$ ]] || fail "probe address '$probe_connect' is not HOST:PORT"

mkdir -p "$cache" "$staging"
if [ -n "$(ls -A "$staging")" ] && [ "$probe_only" != 1 ]; then
  fail "staging directory '$staging' is not empty"
fi

# --- The sandbox -----------------------------------------------------------------------------
args=(--die-with-parent --new-session --unshare-all --cap-drop ALL --clearenv)
# The system, read-only. Merged-/usr systems have /bin etc. as symlinks: recreate them.
args+=(--ro-bind /usr /usr --ro-bind /etc /etc)
for d in /bin /sbin /lib /lib32 /lib64 /libx32; do
  if [ -L "$d" ]; then args+=(--symlink "$(readlink "$d")" "$d")
  elif [ -d "$d" ]; then args+=(--ro-bind "$d" "$d"); fi
done
args+=(--proc /proc --dev /dev --tmpfs /tmp --dir /tmp/home)
# The project, Elan's toolchains and the tools, read-only.
ro=("$project")
elan_home=${ELAN_HOME:-${HOME:-/nonexistent}/.elan}
[ -d "$elan_home" ] && ro+=("$(realpath "$elan_home")")
# lake's directory as found on PATH (Elan's proxies are symlinks that dispatch on their name),
# and the directory of what it points to.
if [ -n "$lake_path" ]; then
  lake_path=$(abspath "$lake_path")
  ro+=("$(dirname "$lake_path")")
  [ "$(dirname "$(realpath "$lake_path")")" = "$(dirname "$lake_path")" ] || ro+=("$(dirname "$(realpath "$lake_path")")")
fi
while IFS= read -r p; do [ -n "$p" ] && ro+=("$(abspath "$p")"); done <<< "${TARN_STAGE_EXTRA_READONLY:-}"
for p in "${ro[@]}"; do
  [ -e "$p" ] || fail "read-only path '$p' does not exist"
  args+=(--ro-bind "$p" "$p")
done
args+=(--ro-bind "$tarn" /run/tarn/bin/tarn --ro-bind "$here/inside.sh" /run/tarn/inside.sh)
# The only writable places.
rw=("$cache" "$staging")
while IFS= read -r p; do [ -n "$p" ] && rw+=("$(cd "$project" && abspath "$p")"); done <<< "${TARN_STAGE_EXTRA_WRITABLE:-}"
for p in "${rw[@]}"; do
  [ -d "$p" ] || fail "writable path '$p' is not a directory"
  args+=(--bind "$p" "$p")
done
# A fixed, minimal environment: nothing of the runner's (tokens, keys) comes in.
path_inside=/run/tarn/bin
[ -n "$lake_path" ] && path_inside="$path_inside:$(dirname "$lake_path")"
[ -d "$elan_home" ] && path_inside="$path_inside:$(realpath "$elan_home")/bin"
path_inside="$path_inside:/usr/local/bin:/usr/bin:/bin"
args+=(--setenv PATH "$path_inside" --setenv HOME /tmp/home --setenv LAKE_CACHE_DIR "$cache")
[ -d "$elan_home" ] && args+=(--setenv ELAN_HOME "$(realpath "$elan_home")")
[ -n "${ELAN_TOOLCHAIN:-}" ] && args+=(--setenv ELAN_TOOLCHAIN "$ELAN_TOOLCHAIN")
args+=(--chdir "$project")

# --- Probes ----------------------------------------------------------------------------------
# Places a confined step must not write to: the project, the runner's home and temp directory,
# the directories of the runner's command files (GITHUB_ENV and friends, which would reach
# later steps), the staging directory's parent and the host's /tmp.
nonce="tarn-probe-$$-$RANDOM$RANDOM"
guard=("$project" "${HOME:-/root}" "${TMPDIR:-/tmp}" "$(dirname "$staging")")
for v in RUNNER_TEMP GITHUB_ENV GITHUB_PATH GITHUB_OUTPUT GITHUB_STEP_SUMMARY; do
  val=${!v:-}
  [ -z "$val" ] && continue
  if [ -d "$val" ]; then guard+=("$val"); else guard+=("$(dirname "$val")"); fi
done
guard_list=$(printf '%s\n' "${guard[@]}" | sort -u)

# A canary: a process on the runner whose environment holds it, alive while the sandbox runs.
# If the code inside can read it (through /proc), it could read a key the same way.
env TARN_PROBE_CANARY="$nonce" sleep 3600 &
canary_pid=$!
trap 'kill "$canary_pid" 2>/dev/null || true' EXIT

# Whether the probe address is reachable from here; if not, the connect probe proves nothing.
reachable() { timeout 10 bash -c "exec 3<>/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null; }
if reachable "$probe_connect"; then connect_control=reachable; else
  connect_control=unreachable
  say "warning: $probe_connect is not reachable from the runner either; the sandbox's network is checked by its interfaces only"
fi

# bwrap itself starts with an empty environment: it stays alive as PID 1 of the sandbox, and
# its /proc/1/environ would otherwise show the runner's variables to the code inside.
run_inside() { # MODE
  env -i "$bwrap" "${args[@]}" \
    --setenv TARN_INSIDE_MODE "$1" \
    --setenv TARN_INSIDE_NONCE "$nonce" \
    --setenv TARN_INSIDE_GUARD "$guard_list" \
    --setenv TARN_INSIDE_CONNECT "$probe_connect" \
    --setenv TARN_INSIDE_STAGING "$staging" \
    --setenv TARN_INSIDE_LAKE "${lake_path:-$lake}" \
    --setenv TARN_INSIDE_TARGETS "$targets" \
    /bin/bash /run/tarn/inside.sh
}

check_outside() {
  local leaked=0
  while IFS= read -r g; do
    if [ -e "$g/.$nonce" ]; then
      say "probe: a write inside the sandbox reached $g"
      rm -f -- "$g/.$nonce"
      leaked=1
    fi
  done <<< "$guard_list"
  [ "$leaked" = 0 ]
}

say "sandbox: $bwrap; writable: ${rw[*]}; read-only: ${ro[*]}; probe target $probe_connect ($connect_control from the runner)"
set +e
run_inside probe
rc=$?
set -e
check_outside || refuse "the sandbox does not confine writes; nothing was staged"
case $rc in
  0) say "probes: writes refused, no network, no inherited environment" ;;
  3) refuse "the sandbox does not confine (see the probe lines above); nothing was staged" ;;
  *) refuse "the sandbox could not be started (bwrap exit $rc). On Ubuntu 24.04 runners unprivileged user namespaces need: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" ;;
esac
[ "$probe_only" = 1 ] && exit 0

set +e
run_inside stage
rc=$?
set -e
check_outside || refuse "the sandbox does not confine writes"
[ "$rc" = 0 ] || { [ "$rc" = 3 ] && refuse "a probe failed inside the staging run; nothing is trusted"; fail "staging failed (exit $rc)"; }
# The sandboxed build wrote the staging directory, and the next step (actions/upload-artifact)
# follows symbolic links: before anything hands it on, it must hold only regular files with
# one link each, named as Lake names artifacts (<16 hex digits>[.ext]), and outputs.jsonl.
# The sandbox has ended (its PID namespace is gone), so nothing changes it after this check.
check_staging() {
  local entry name bad=()
  [ -d "$staging" ] && [ ! -L "$staging" ] || fail "staging directory '$staging' is not a directory"
  while IFS= read -r -d '' entry; do
    name=${entry#"$staging"/}
    if [ -L "$entry" ]; then bad+=("$(printf '%q' "$name"): a symbolic link")
    elif [ ! -f "$entry" ]; then bad+=("$(printf '%q' "$name"): not a regular file")
    elif [ "$(stat -c %h -- "$entry")" != 1 ]; then bad+=("$(printf '%q' "$name"): has more than one link (a hard link)")
    elif [ "$name" != outputs.jsonl ] && ! [[ "$name" =~ ^[0-9a-f]{16}(\.[A-Za-z0-9_-]+)*$ ]]; then
      bad+=("$(printf '%q' "$name"): not an artifact name")
    fi
  done < <(find "$staging" -mindepth 1 -print0)
  [ "${#bad[@]}" = 0 ] && return 0
  for b in "${bad[@]}"; do say "staging directory: $b"; done
  fail "the staging directory holds ${#bad[@]} entries that are not staged artifacts (see above); the sandboxed build may have planted them, nothing is handed on"
}
check_staging
n=$(find "$staging" -maxdepth 1 -type f ! -name outputs.jsonl | wc -l)
say "staged $n artifacts in $staging"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "staging-dir=$staging"; echo "artifacts=$n"; } >> "$GITHUB_OUTPUT"
fi

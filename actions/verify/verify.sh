#!/usr/bin/env bash
# The `verify` action's step (the reusable workflow's verify job): on a fresh runner, fetch one
# revision's outputs, and its dependencies', into an empty Lake cache, anonymously as Lake
# does, then check them:
#
#   0. with TARN_VERIFY_DEPS=true: every git dependency in lake-manifest.json that is not
#      checked out is cloned with git into the manifest's packagesDir at its locked revision
#      (what `lake resolve-deps` does; no Lean needed); one checked out at another commit is
#      an error;
#   1. `tarn get --rev REV` in the project's checkout: the revision file and every artifact it
#      names, each hashed on arrival (exit 1 naming every failure); then, with deps,
#      `tarn get --deps --max-revs 1`: each dependency's outputs for exactly its locked
#      revision, from the repository scope of its git URL (docs/remote.md). A dependency whose
#      outputs fail to fetch or verify fails the step, naming it. A dependency with no outputs
#      there ("unpublished") is noted and the check goes on (see 3), unless TARN_VERIFY_DEPS
#      is `required`, which fails the step naming it;
#   2. `tarn verify` of every fetched revision file (the root's and each dependency's) and of
#      the whole cache: every artifact present and hashing to its name;
#   3. where Lean's `lake` is installed: the unpublished dependencies are built first
#      (`lake build @NAME …`, as the seed pipeline's verify job builds its dependencies), then
#      `lake build --no-build --rehash` in the checkout, which succeeds only if every target of
#      the build, dependencies' included, resolves from the cache (exit 3 naming the first that
#      does not). This is what `tarn verify` cannot know: whether the fetched mappings cover
#      everything the project builds. Without the lake check an unpublished dependency is a
#      warning naming it (there is nothing of it to rehash, and only lake can build it).
#      docs/ci.md, "Dependencies", explains the choice.
#
# Configuration (environment; the action maps its inputs onto these):
#   TARN_VERIFY_PROJECT    the checkout of the project at REV (default .)
#   TARN_VERIFY_REV        the revision (40 lowercase hex digits)
#   TARN_VERIFY_SCOPE      a verbatim scope, or else
#   TARN_VERIFY_REPO       a repository scope OWNER/NAME, with TARN_VERIFY_PLATFORM and
#                          TARN_VERIFY_TOOLCHAIN as its revision URL's pt/ and tc/ parts
#   TARN_VERIFY_ARTIFACT_ENDPOINT, TARN_VERIFY_REVISION_ENDPOINT   download endpoints (…/a0, …/r0)
#   TARN_VERIFY_DEPS       true (default): also the dependencies (steps 0 and 1), building
#                          unpublished ones where lake is installed; required: every
#                          dependency's outputs must be on the service; false: the root only
#   TARN_VERIFY_LAKE       auto (default): run step 3 if `lake` is on PATH; required: fail
#                          without it; off: never
#   TARN_VERIFY_TARGETS    targets for step 3 (default: the package's default targets)
#   TARN_VERIFY_TRUSTED_KEYS  public key lines (docs/trust.md): the root revision must be
#                          signed by one of them (also required when the checkout has its own
#                          .tarn/trusted-keys)
#   TARN_VERIFY_CACHE      the cache directory to fill; must not exist or be empty
#                          (default RUNNER_TEMP/tarn-verify-cache)
# Writes `verified=N`, `dependencies=N` (dependencies whose outputs were fetched),
# `unpublished-dependencies=NAME …` (without outputs on the service; built here where lake is
# installed) and `checked-with=tarn` or `checked-with=tarn+lake` to GITHUB_OUTPUT.
set -euo pipefail
fail() { echo "::error title=tarn verify::$*" >&2; exit 1; }
# git hardened against a hostile checkout: no system configuration, no hooks, no
# file-system monitor, no bare repository found by discovery, no prompt.
safe_git() {
  GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 git -c core.fsmonitor=false -c core.hooksPath=/dev/null \
    -c safe.bareRepository=explicit -c protocol.ext.allow=never "$@"
}
# Whether $1 (resolved through every symbolic link, even where it does not exist yet) lies
# inside the project.
inside_project() { case $(realpath -m -- "$1") in "$project"|"$project"/*) return 0 ;; *) return 1 ;; esac; }
say() { echo "tarn verify: $*" >&2; }

tmp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
project=$(realpath -m -- "${TARN_VERIFY_PROJECT:-.}")
rev=${TARN_VERIFY_REV:-}
[[ "$rev" =~ ^[0-9a-f]{40}$ ]] || fail "rev '$rev' is not a full commit SHA (40 lowercase hex digits)"
[ -d "$project" ] || fail "project directory '$project' does not exist (check out the revision first)"
mode=${TARN_VERIFY_LAKE:-auto}
case $mode in auto|required|off) ;; *) fail "lake must be auto, required or off, not '$mode'" ;; esac
deps=${TARN_VERIFY_DEPS:-true}
case $deps in true|false|required) ;; *) fail "deps must be true, required or false, not '$deps'" ;; esac
command -v tarn >/dev/null || fail "tarn not found (run the setup-tarn action first)"

export LAKE_CACHE_DIR
LAKE_CACHE_DIR=$(realpath -m -- "${TARN_VERIFY_CACHE:-$tmp/tarn-verify-cache}")
[ ! -e "$LAKE_CACHE_DIR" ] || [ -z "$(ls -A "$LAKE_CACHE_DIR")" ] \
  || fail "the cache directory '$LAKE_CACHE_DIR' is not empty: the check needs an empty cache"
mkdir -p "$LAKE_CACHE_DIR"
# A private configuration: only the anonymous download service.
export LAKE_CONFIG="$tmp/tarn-verify-config.toml"
[ -n "${TARN_VERIFY_ARTIFACT_ENDPOINT:-}" ] && [ -n "${TARN_VERIFY_REVISION_ENDPOINT:-}" ] \
  || fail "artifact-endpoint and revision-endpoint are required"
printf 'cache.defaultService = "download"\n\n[[cache.service]]\nname = "download"\nkind = "s3"\nartifactEndpoint = "%s"\nrevisionEndpoint = "%s"\n' \
  "$TARN_VERIFY_ARTIFACT_ENDPOINT" "$TARN_VERIFY_REVISION_ENDPOINT" > "$LAKE_CONFIG"
if [ -n "${TARN_VERIFY_SCOPE:-}" ]; then scope=(--scope "$TARN_VERIFY_SCOPE")
else
  [ -n "${TARN_VERIFY_REPO:-}" ] || fail "set a scope or a repository"
  scope=(--repo "$TARN_VERIFY_REPO" --platform "${TARN_VERIFY_PLATFORM:-}" --toolchain "${TARN_VERIFY_TOOLCHAIN:-}")
fi

# 0. The dependencies' checkouts, at the revisions the manifest locks.
manifest=$project/lake-manifest.json
if [ "$deps" != false ] && [ -f "$manifest" ]; then
  locked=$(python3 - "$manifest" <<'PY'
import json, os, re, sys
path = sys.argv[1]
def bad(msg):
    sys.exit(f"{path}: {msg}")
if os.path.getsize(path) > 1 << 20:
    bad("larger than 1 MiB")
try:
    m = json.load(open(path, encoding="utf-8"))
except ValueError as e:
    bad(f"not JSON: {e}")
def control(s):
    return any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in s)
pd = m.get("packagesDir") or ".lake/packages"
if not isinstance(pd, str) or pd.startswith("/") or ".." in pd.split("/") or control(pd):
    bad(f"packagesDir {pd!r} is not a relative path inside the project")
for p in m.get("packages") or []:
    if not isinstance(p, dict) or p.get("type") != "git":
        continue  # path dependencies are part of the checkout
    name, url, rev = p.get("name"), p.get("url"), p.get("rev")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.«»-]+", name) or name in (".", ".."):
        bad(f"dependency name {name!r} cannot be a directory under {pd}")
    if not isinstance(rev, str) or not re.fullmatch(r"[0-9a-f]{40}", rev):
        bad(f"dependency {name}: rev {rev!r} is not a full commit SHA")
    if not isinstance(url, str) or not url or control(url) or url.startswith("-"):
        bad(f"dependency {name}: url {url!r} is not a git URL")
    print(f"{pd}\t{name}\t{url}\t{rev}")
PY
  ) || fail "cannot read the dependencies of $manifest (see above)"
  while IFS=$'\t' read -r pd name url lrev; do
    [ -n "$name" ] || continue
    dir=$project/$pd/$name
    # A packagesDir (or a part of it) committed as a symbolic link would put the clone
    # anywhere, $HOME/.config included.
    inside_project "$dir" || fail "dependency $name: $pd/$name leads outside the project (to $(realpath -m -- "$dir")) through a symbolic link; refused"
    if [ -e "$dir/.git" ]; then
      head=$(safe_git -C "$dir" rev-parse HEAD 2>/dev/null || true)
      [ "$head" = "$lrev" ] || fail "dependency $name is checked out in $dir at ${head:-no commit}, but $manifest locks $lrev"
    else
      say "cloning dependency $name at $lrev from $url into $pd/$name"
      mkdir -p "$project/$pd"
      safe_git clone -q --no-checkout -- "$url" "$dir" \
        && safe_git -C "$dir" -c advice.detachedHead=false checkout -q --detach "$lrev" \
        || fail "cannot check out dependency $name at $lrev from $url (its locked revision in $manifest)"
    fi
  done <<< "$locked"
fi

# 1. Fetch: the root package's revision, then the dependencies' locked revisions.
trust=()
if [ -n "${TARN_VERIFY_TRUSTED_KEYS:-}" ]; then
  printf '%s\n' "$TARN_VERIFY_TRUSTED_KEYS" > "$tmp/tarn-verify-trusted-keys"
  trust=(--trust "$tmp/tarn-verify-trusted-keys")
fi
tarn get -d "$project" --rev "$rev" "${scope[@]}" "${trust[@]}"
mappings=$(find "$LAKE_CACHE_DIR/revisions" -name "$rev.jsonl" -type f)
[ "$(printf '%s\n' "$mappings" | grep -c .)" = 1 ] || fail "expected one revision file for $rev in $LAKE_CACHE_DIR/revisions, found: $mappings"
no_outputs=()
n_deps=0
if [ "$deps" != false ]; then
  say "dependencies: tarn get --deps --max-revs 1 (each at the revision lake-manifest.json locks)"
  summary=$tmp/tarn-verify-deps.json
  rc=0
  tarn get --deps -d "$project" --max-revs 1 --json > "$summary" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "tarn get --deps exited $rc (see above)"
  # One line per dependency: `ok NAME REV SCOPE`, `missing NAME WHY` (no revision file for
  # its locked revision, or no repository scope) or `failed NAME WHY` (anything else: a
  # corrupt or missing artifact, the service unreachable).
  report=$(python3 - "$summary" <<'PY'
import json, sys
s = json.load(open(sys.argv[1], encoding="utf-8"))
for p in s["packages"]:
    if p.get("ok"):
        print(f"ok {p['package']} {p['rev']} {p['scope']}")
        continue
    if p.get("skipped"):
        state, why = "missing", p["skipped"]
    elif p.get("error"):
        why = p["error"]
        state = "missing" if ": no outputs found " in why else "failed"
    else:
        fails = p.get("failed") or []
        shown = "; ".join(f"{f.get('artifact')} ({f.get('error')})" if isinstance(f, dict) else str(f)
                          for f in fails[:5])
        state, why = "failed", f"{len(fails)} artifact(s) not fetched: {shown}"
    print(f"{state} {p['package']} {' '.join(str(why).split())}")
PY
  ) || fail "tarn get --deps: cannot read its summary $summary"
  failed=()
  while read -r state name rest; do
    case $state in
      ok) n_deps=$((n_deps + 1)); say "dependency $name: outputs for ${rest%% *} from ${rest#* }" ;;
      missing) no_outputs+=("$name"); echo "::warning title=tarn verify::dependency $name: no outputs for its locked revision on the service ($rest)" >&2 ;;
      failed) failed+=("$name"); echo "::error title=tarn verify::dependency $name: $rest" >&2 ;;
    esac
  done <<< "$report"
  [ "${#failed[@]}" = 0 ] || fail "fetching the outputs of dependencies failed: ${failed[*]} (see above)"
  [ "$deps" != required ] || [ "${#no_outputs[@]}" = 0 ] \
    || fail "deps is required, and the service has no outputs for these dependencies at their locked revisions: ${no_outputs[*]}. Publish them under their repository scopes (tarn put --package NAME --repo OWNER/REPO), or set deps: true to build them in this job"
fi

# 2. Every fetched byte, again: each revision file's artifacts, then the whole cache.
while IFS= read -r -d '' file; do
  say "rehashing the artifacts of ${file#"$LAKE_CACHE_DIR"/}"
  tarn verify "$file"
done < <(find "$LAKE_CACHE_DIR/revisions" -name '*.jsonl' -type f -print0 | sort -z)
tarn verify
n=$(find "$LAKE_CACHE_DIR/artifacts" -type f | wc -l)
checked=tarn

# 3. Lake's own completeness check.
lake=$(command -v lake || true)
if [ "$mode" = off ]; then
  say "lake check: off"
elif [ -z "$lake" ]; then
  [ "$mode" = auto ] || fail "lake is not installed and the lake check is required"
  say "lake check: lake is not installed on this runner; checked with tarn verify only"
else
  if [ "${#no_outputs[@]}" != 0 ]; then
    build_targets=()
    for name in "${no_outputs[@]}"; do build_targets+=("@$name"); done
    say "building the unpublished dependencies, as the seed pipeline does: lake build ${build_targets[*]}"
    (cd "$project" && "$lake" build "${build_targets[@]}") \
      || fail "lake build ${build_targets[*]} failed: the dependencies without outputs on the service (${no_outputs[*]}) do not build"
  fi
  # shellcheck disable=SC2086 # targets are words
  if (cd "$project" && "$lake" build --no-build --rehash ${TARN_VERIFY_TARGETS:-}); then
    checked=tarn+lake
    say "lake check: lake build --no-build --rehash: every target resolves from the cache"
    [ "${#no_outputs[@]}" = 0 ] || say "dependencies built here (no outputs on the service for their locked revisions): ${no_outputs[*]}"
  else
    rc=$?
    why="the outputs uploaded for $rev do not cover the build (the target named above is missing from the cache)"
    if [ "$deps" = false ] && [ -f "$manifest" ]; then
      why="$why; deps is false, so no dependency's outputs were fetched: if that target is a dependency's, set deps: true"
    fi
    fail "lake build --no-build --rehash exited $rc: $why"
  fi
fi
if [ "$checked" = tarn ] && [ "${#no_outputs[@]}" != 0 ]; then
  echo "::warning title=tarn verify::not checked: dependencies with no outputs on the service for their locked revisions: ${no_outputs[*]}. Without lake on this runner they cannot be built here (the seed pipeline builds them); set deps: required to fail instead, or publish them (tarn put --package NAME --repo OWNER/REPO)" >&2
fi
say "revision $rev: $n artifacts fetched and rehashed ($n_deps dependencies' outputs included); checked with $checked"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "verified=$n" >> "$GITHUB_OUTPUT"
  echo "dependencies=$n_deps" >> "$GITHUB_OUTPUT"
  echo "unpublished-dependencies=${no_outputs[*]}" >> "$GITHUB_OUTPUT"
  echo "checked-with=$checked" >> "$GITHUB_OUTPUT"
fi

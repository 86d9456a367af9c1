#!/usr/bin/env bash
# Regenerates the figures section of RELIABILITY.md from real runs. Each step keeps its raw
# output in target/reliability/ (with the commit and date it ran on); `render` rebuilds the
# figures from whatever is recorded there, so a long step can run on its own and the document
# still says exactly what was measured, when and on which commit.
#
#   scripts/reliability.sh            # tests + stable + deep + render (hours on 2 cores)
#   scripts/reliability.sh tests      # hostile-server/-client/-staging, stale-temp, crash campaign
#                                     # (through scripts/test.sh, so the real S3 server runs):
#                                     # peak RSS, kill counts
#   scripts/reliability.sh stable     # the stable fuzz harness, FUZZ_ITERS per target (10,000,000)
#   scripts/reliability.sh deep [T…]  # cargo-fuzz targets (all, fastest first, or the ones named),
#                                     # one at a time under `nice -n 19`, FUZZ_RUNS executions each
#                                     # (10,000,000; FUZZ_SECS>0 also caps the time per target),
#                                     # starting from the seeds in fuzz/seeds/<target>/ (copied
#                                     # into fuzz/corpus/<target>/, which is not checked in)
#   scripts/reliability.sh --allow-no-deep [STEP]
#                                     # without nightly/cargo-fuzz, go on without the deep runs
#                                     # (their published rows are marked not re-measured)
#                                     # instead of failing
#   scripts/reliability.sh render     # rewrite RELIABILITY.md's figures from target/reliability/;
#                                     # a part not recorded there keeps its published figures
#                                     # (and the run they name)
#
# Every run is stamped with the commit and with the git tree ids of the measured sources
# (crates/ and fuzz/), which a rebase leaves unchanged; "+dirty" marks uncommitted changes there.
#
# Deep runs need `cargo +nightly fuzz` (rustup toolchain install nightly; cargo install
# cargo-fuzz). They are built with debug assertions (overflow checks) and without
# AddressSanitizer: tarn-core has no `unsafe` code, and without ASan a run is 3-6× faster.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_ITERS="${FUZZ_ITERS:-10000000}"
FUZZ_RUNS="${FUZZ_RUNS:-10000000}"
FUZZ_SECS="${FUZZ_SECS:-0}"
OUT=target/reliability
mkdir -p "$OUT"
# Fastest first, so a session that ends early has the most targets complete.
FAST_FIRST="byte_range request_target s3_listing config_toml mapping_file lakefile_lean sigv4_authorization"

ALLOW_NO_DEEP=0
if [ "${1:-}" = --allow-no-deep ]; then ALLOW_NO_DEEP=1; shift; fi

# The measured sources: tree ids of crates/ and fuzz/ at HEAD, "+dirty" if the checkout differs.
sources() {
  local t
  t="$(git rev-parse --short HEAD:crates)/$(git rev-parse --short HEAD:fuzz)"
  [ -z "$(git status --porcelain -- crates fuzz Cargo.toml Cargo.lock)" ] || t="$t+dirty"
  echo "$t"
}
stamp() { echo "reliability-run commit $(git rev-parse --short HEAD) date $(date -u +%Y-%m-%dT%H:%MZ) cores $(nproc) sources $(sources)"; }

step_tests() {
  echo "reliability: hostile and crash tests…" >&2
  { stamp
    # TARN_RELIABILITY_RELEASE=1 (scripts/evidence.sh) measures the release build.
    release=()
    [ "${TARN_RELIABILITY_RELEASE:-0}" = 1 ] && release=(--release)
    scripts/test.sh -E 'test(hostile_) | test(slow_bodies) | test(crash_campaign) | test(stale_temp)' "${release[@]}" --no-capture 2>&1
  } >"$OUT/tests.part" || { tail -50 "$OUT/tests.part" >&2; exit 1; }
  mv "$OUT/tests.part" "$OUT/tests.txt"
}

step_stable() {
  echo "reliability: stable fuzz harness, $FUZZ_ITERS per target…" >&2
  { stamp
    TARN_FUZZ_ITERS="$FUZZ_ITERS" cargo test -q -p tarn-core --release --test fuzz_parsers -- --nocapture 2>&1
  } >"$OUT/fuzz.part" || { tail -50 "$OUT/fuzz.part" >&2; exit 1; }
  mv "$OUT/fuzz.part" "$OUT/fuzz.txt"
}

step_deep() {
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    # Never a quiet skip: the run says so, the rendered figures say so, and the exit code
    # says so unless --allow-no-deep was given.
    stamp >"$OUT/no-deep.txt"
    {
      echo
      echo "reliability: *** DEEP FUZZING NOT RUN: no nightly toolchain with cargo-fuzz ***"
      echo "reliability: install it with: rustup toolchain install nightly && cargo install cargo-fuzz"
      echo "reliability: the published libFuzzer rows are kept and marked not re-measured"
      echo
    } >&2
    if [ "$ALLOW_NO_DEEP" = 1 ]; then return 0; fi
    render
    echo "reliability: failing (pass --allow-no-deep to accept a run without deep fuzzing)" >&2
    exit 1
  fi
  rm -f "$OUT/no-deep.txt"
  (cd fuzz && nice -n 19 cargo +nightly fuzz build -O -a -s none) >&2
  local all targets=("$@")
  all=$(cd fuzz && cargo +nightly fuzz list)
  if [ ${#targets[@]} = 0 ]; then
    for t in $FAST_FIRST; do grep -qx "$t" <<<"$all" && targets+=("$t"); done
    for t in $all; do [[ " $FAST_FIRST " == *" $t "* ]] || targets+=("$t"); done
  fi
  local bin=fuzz/target/x86_64-unknown-linux-gnu/release
  local limit=()
  [ "$FUZZ_SECS" != 0 ] && limit=(-max_total_time="$FUZZ_SECS")
  for t in "${targets[@]}"; do
    echo "reliability: cargo-fuzz $t, $FUZZ_RUNS runs…" >&2
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    # The checked-in seeds start the working corpus; libFuzzer writes only to fuzz/corpus.
    [ -d "fuzz/seeds/$t" ] && cp -n "fuzz/seeds/$t"/* "fuzz/corpus/$t/"
    local start rc=0
    start=$(date +%s)
    { stamp
      echo "reliability-deep-limits runs $FUZZ_RUNS secs $FUZZ_SECS"
      nice -n 19 "$bin/$t" "fuzz/corpus/$t" -runs="$FUZZ_RUNS" "${limit[@]}" -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>&1 || rc=$?
      echo "reliability-deep-end secs $(( $(date +%s) - start )) exit $rc"
    } >"$OUT/deep-$t.part"
    mv "$OUT/deep-$t.part" "$OUT/deep-$t.txt"
  done
}

# "commit X on YYYY-MM-DD" from a step's first line.
provenance() {
  head -1 "$1" | awk '{printf "commit %s", $3; if ($9 != "") printf " (sources %s)", $9; printf ", %s", substr($5, 1, 10)}'
}

render() {
  local f="$OUT/figures.md"
  {
    echo "Generated by \`scripts/reliability.sh\` ($(nproc) cores); each part names the commit it ran on."
    if [ -f "$OUT/tests.txt" ]; then
      local t="$OUT/tests.txt"
      echo
      echo "**Client peak RSS against hostile servers** (the kernel's \`ru_maxrss\` when the client is reaped, started through \`tarn-measure-launcher\` so the figure is its own; goal ≤ 100 MB; $(provenance "$t")):"
      echo
      echo "| server behaviour | peak RSS | time |"
      echo "| --- | --- | --- |"
      grep -o 'hostile-server-rss .*' "$t" | sort -u |
        awk '{printf "| %s | %.1f MB | %s s |\n", $2, $3/1024, $5}'
      echo
      echo "**Server peak RSS under the hostile-client suite** (the kernel's \`VmHWM\` of the running server; each test asserts its own bound, at most 400 MB):"
      echo
      echo "| client behaviour | server peak RSS |"
      echo "| --- | --- |"
      grep -o 'hostile-client-rss .*' "$t" | sort -u |
        awk '{printf "| %s | %.1f MB |\n", $2, $3/1024}'
      echo
      echo "**Server peak RSS under hostile framing** (rows 9c, 9f, 9l: raw HTTP/1.1 and HTTP/2 frames against one \`tarn serve\`, each attack in turn; the kernel's \`VmHWM\` of the running server, reset before each attack; at most 100 MB asserted after each):"
      echo
      echo "| attack | server peak RSS |"
      echo "| --- | --- |"
      grep -o 'hostile-framing rss .*' "$t" | sort -u |
        awk '{printf "| %s | %.1f MB |\n", $3, $4/1024}'
      echo
      # A line a test no longer prints is left out rather than ending the script (pipefail).
      { grep -o 'bad signature: .*' "$t" || true; } | head -1 | sed 's/^/Pre-auth upload: /'
      { grep -oE 'trickled (artifact|bulk request): .*' "$t" || true; } | sort -u |
        sed 's/^/- /'
      echo
      echo "**Attacks:** $(grep -c '^| [0-9—]' RELIABILITY.md) rows in the table above; held: $(grep -Ec 'PASS.*(hostile_|slow_bodies|crash_campaign|stale_temp)' "$t") of $(grep -Ec '(PASS|FAIL).*(hostile_|slow_bodies|crash_campaign|stale_temp)' "$t") attack tests passed."
      echo
      echo "**Crash campaign:**"
      grep -o 'crash-campaign .*' "$t" | head -1 |
        awk '{printf "%s kill -9 points landed mid-operation over %s seeds (stage, unstage, put-staged, get, server uploads, server gc); %s corrupt or partial files under final names; every re-run completed; %s s.\n", $3, $7, $5, $9}'
      echo
      echo "**What the attack tests printed in this run** (every line a test printed, in order, but nextest's own, log warnings and the CLI's error text; the rows above that quote no figure of their own name the line that holds it):"
      echo
      echo '```'
      grep -vE '^[[:space:]]*$|^[[:space:]]*(PASS|START|SLOW|FAIL|TRY|RETRY|LEAK|TERMINATING|SIGTERM|SIGKILL|Nextest|Starting|Summary|Cancelling|Compiling|Finished|Running|Blocking|stdout|stderr)\b|^running [0-9]+ tests?$|^test .* \.\.\. |^─|WARN|^reliability-run|^test\.sh:|^s3s-fs pid|^[[:space:]]+hint:|^[[:space:]]*(error|caused by):|^[a-z]+ @ |^note:|^test result:|^(successes|failures):' "$t" | cut -c1-300
      echo '```'
    fi
    echo
    echo "**Fuzzing** (goal: ≥ 10,000,000 executions per deep target, 0 crashes):"
    echo
    echo "| target | executions | time | crashes | run |"
    echo "| --- | --- | --- | --- | --- |"
    if [ -f "$OUT/fuzz.txt" ]; then
      local p
      p=$(provenance "$OUT/fuzz.txt")
      grep -o 'fuzz-execs .*' "$OUT/fuzz.txt" | sort |
        awk -v p="$p" '{printf "| `%s` (stable harness) | %s | — | %s | %s |\n", $2, $3, $5, p}'
    fi
    local d
    for d in "$OUT"/deep-*.txt; do
      [ -f "$d" ] || continue
      local t execs secs rc crashed
      t=$(basename "$d" .txt); t=${t#deep-}
      execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$d" | awk '{print $NF}' | tail -1)
      secs=$(grep -o 'reliability-deep-end secs [0-9]*' "$d" | awk '{print $3}')
      rc=$(grep -o 'reliability-deep-end secs [0-9]* exit [0-9]*' "$d" | awk '{print $5}')
      crashed=$(grep -c '==ERROR: libFuzzer\|panicked at\|SUMMARY: libFuzzer' "$d" || true)
      local runs cap
      runs=$(grep -o 'reliability-deep-limits runs [0-9]*' "$d" | awk '{print $3}')
      cap=$(grep -o 'reliability-deep-limits runs [0-9]* secs [0-9]*' "$d" | awk '{print $5}')
      if grep -q 'libFuzzer: run interrupted' "$d"; then
        # Stopped by a signal (e.g. the session's deadline): the count is what ran.
        execs="${execs:-?} (interrupted)"
      elif [ -n "$runs" ] && [ -n "$execs" ] && [ "$execs" -lt "$runs" ] && [ "${cap:-0}" != 0 ]; then
        execs="$execs (stopped at the $cap s time cap)"
      fi
      if [ "${rc:-1}" != 0 ] && [ "$crashed" = 0 ] && [[ "$execs" != *interrupted* ]]; then
        crashed="? (exit $rc)"
      fi
      local run
      run=$(provenance "$d")
      # A deep run recorded before a run that could not fuzz was not re-measured by it.
      [ -f "$OUT/no-deep.txt" ] && [ "$d" -ot "$OUT/no-deep.txt" ] && run="not re-measured; $run"
      echo "| \`$t\` (libFuzzer) | ${execs:-?} | ${secs:-?} s | $crashed | $run |"
    done
  } >"$f"
  local deep_note=""
  if [ -f "$OUT/no-deep.txt" ]; then
    deep_note="Deep fuzzing was NOT re-measured in the run of $(provenance "$OUT/no-deep.txt") (no nightly cargo-fuzz); each libFuzzer row is from the earlier run it names."
  fi
  DEEP_NOTE="$deep_note" python3 - "$f" <<'PY'
# Merge the fresh figures into the published block: a part with no raw output in
# target/reliability (a step not re-run on this machine) keeps its published text and rows,
# each still naming the run it came from.
import os, re, sys
deep_note = os.environ.get("DEEP_NOTE", "")
fresh = open(sys.argv[1]).read().rstrip() + "\n"
doc = open("RELIABILITY.md").read()
m = re.search(r"<!-- figures:begin -->\n(.*?)<!-- figures:end -->", doc, flags=re.S)
old = m.group(1) if m else ""

def split(block):
    """(first line, tests part, fuzzing heading and table header, {row key: row})"""
    head, _, rest = block.partition("\n")
    tests, _, fuzz = rest.partition("**Fuzzing**")
    rows = {}
    for line in fuzz.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            key = cells[0] if cells[0] not in rows else f"{cells[0]} [{cells[-1]}]"
            rows[key] = cells
    return head, tests.strip("\n"), rows

# Provenance of a block in the first format ("… on 2026-12-01 (2 cores, d3b1346).").
legacy = re.search(r"on (\d{4}-\d\d-\d\d) \(\d+ cores, (\w+)\)", old.partition("\n")[0])
legacy_run = f"commit {legacy.group(2)}, {legacy.group(1)}" if legacy else "earlier run"
_, old_tests, old_rows = split(old)
head, new_tests, new_rows = split(fresh)
def count(cells):
    m = re.match(r"\d+", cells[1])
    return int(m.group()) if m else 0
for k, cells in old_rows.items():
    if len(cells) == 3:  # first format: target | executions | crashes
        cells = [cells[0], cells[1], "—", cells[2], legacy_run]
    k = k.split(" [")[0]  # a kept earlier run of a target is listed under its own key
    if k not in new_rows:
        if deep_note and "(libFuzzer)" in k and not cells[4].startswith("not re-measured"):
            cells[4] = "not re-measured; " + cells[4]
        new_rows[k] = cells
    elif cells[4] != new_rows[k][4] and count(cells) > count(new_rows[k]):
        # A shorter new run does not hide a longer published one: both are listed.
        new_rows[f"{k} [{cells[4]}]"] = cells
tests = new_tests
if not tests and old_tests:
    tests = old_tests
    if legacy:  # the first format named its run only in the first line
        tests = tests.replace("(goal ≤ 100 MB):", f"(goal ≤ 100 MB; {legacy_run}):", 1)
        tests = tests.replace("**Crash campaign:**", f"**Crash campaign** ({legacy_run}):", 1)
order = lambda k: (0 if "(stable harness)" in k else 1, k)
table = "\n".join("| " + " | ".join(new_rows[k]) + " |" for k in sorted(new_rows, key=order))
fuzz = ("**Fuzzing** (goal: ≥ 10,000,000 executions per deep target, 0 crashes):\n\n"
        + (f"**{deep_note}**\n\n" if deep_note else "")
        + "| target | executions | time | crashes | run |\n| --- | --- | --- | --- | --- |\n" + table + "\n")
fig = head + "\n" + ("\n" + tests + "\n" if tests else "") + "\n" + fuzz
doc = re.sub(r"(<!-- figures:begin -->\n).*?(<!-- figures:end -->)", lambda m: m.group(1) + fig + m.group(2), doc, flags=re.S)
open("RELIABILITY.md", "w").write(doc)
PY
  echo "RELIABILITY.md figures updated" >&2
}

case "${1:-all}" in
  tests) step_tests; render ;;
  stable) step_stable; render ;;
  deep) shift; step_deep "$@"; render ;;
  render) render ;;
  all) step_tests; step_stable; step_deep; render ;;
  *) echo "usage: scripts/reliability.sh [all|tests|stable|deep [TARGET…]|render]" >&2; exit 2 ;;
esac

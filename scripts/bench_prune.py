#!/usr/bin/env python3
"""The `tarn cache prune` / `tarn cache stats` benchmark (issue 24); run by scripts/bench-prune.sh.

Generates a Lake-shaped cache of N artifacts (sparse files, so 50 GB cost no disk): N/2
`outputs/pkg/<input>.json` entries, each naming an `.olean` and an `.ilean`, last used at a
random time within 90 days (seeded). Then, on 2 cores:

* stats: `tarn cache stats` against `find -printf` of every file's size and access time
  (the metadata walk any size report needs), median of 3 runs each;
* prune to half the size: `tarn cache prune --max-size HALF` against the naive LRU that
  keeps no consistency (`find | sort | head | xargs rm`, on a second copy of the cache made
  from the same seed).

Prints the results and replaces the section between the `bench-prune` markers in
BENCHMARKS.md. Never fails on a missed target.
"""

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START = "<!-- bench-prune:start -->"
END = "<!-- bench-prune:end -->"
DAY = 86_400


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def generate(root: Path, n: int, seed: int) -> int:
    """Writes the cache; returns its apparent size in bytes."""
    if root.exists():
        subprocess.run(["rm", "-rf", str(root)], check=True)
    rng = random.Random(seed)
    arts = root / "artifacts"
    outs = root / "outputs" / "pkg"
    arts.mkdir(parents=True)
    outs.mkdir(parents=True)
    now = time.time()
    total = 0
    for _ in range(n // 2):
        age = rng.uniform(2 * 3600, 90 * DAY)
        t = int((now - age) * 1e9)
        names = []
        for ext, mean in (("olean", 440_000), ("ilean", 60_000)):
            name = f"{rng.getrandbits(64):016x}.{ext}"
            size = max(1, int(rng.lognormvariate(0, 0.8) * mean))
            fd = os.open(arts / name, os.O_CREAT | os.O_WRONLY, 0o444)
            os.ftruncate(fd, size)
            os.utime(fd, ns=(t, t))
            os.close(fd)
            names.append(name)
            total += size
        body = (f'{{"data": {{"o": ["{names[0]}"], "i": "{names[1]}"}},\n'
                f' "schemaVersion": "2026-02-25",\n "service": null}}').encode()
        fd = os.open(outs / f"{rng.getrandbits(64):016x}.json", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, body)
        os.utime(fd, ns=(t, t))
        os.close(fd)
        total += len(body)
    return total


def loadavg():
    """The 1-minute load average (other work on the machine), or "?"."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def stamp():
    """What a result was measured on: commit (dirty or not), cores, date, load."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return commit + (" (with local changes)" if dirty else ""), os.cpu_count()


def timed(cmd, **kw):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, **kw)
    return time.perf_counter() - t, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tarn", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--artifacts", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    bench = Path(a.dir)
    bench.mkdir(parents=True, exist_ok=True)
    root = bench / "cache"
    tarn = a.tarn
    env = dict(os.environ, LAKE_CONFIG=str(bench / "none.toml"))

    commit, cpu = stamp()
    log(f"bench-prune on {commit}, {cpu} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {loadavg()}")
    log(f"generating {a.artifacts} sparse artifacts in {root} ...")
    t = time.perf_counter()
    total = generate(root, a.artifacts, a.seed)
    log(f"  {total / 1e9:.1f} GB apparent, {time.perf_counter() - t:.0f} s")
    half = total // 2

    stats_runs, find_runs = [], []
    find_cmd = ["find", str(root), "-type", "f", "-printf", "%s %A@ %p\n"]
    stats_cmd = [tarn, "--json", "--cache-dir", str(root), "cache", "stats"]
    for i in range(3):
        s, out = timed(stats_cmd, env=env)
        stats_runs.append(s)
        log(f"  tarn cache stats run {i + 1}: {s:.2f} s (target < 2 s), load {loadavg()}")
        f, _ = timed(find_cmd)
        find_runs.append(f)
        log(f"  find -printf run {i + 1}: {f:.2f} s; ratio {s / f:.2f}")
    stats = json.loads(out)
    assert stats["total"]["artifacts"] == a.artifacts, stats["total"]

    prune_cmd = [tarn, "--json", "--cache-dir", str(root), "cache", "prune", "--max-size", f"{half}B"]
    prune_s, out = timed(prune_cmd, env=env)
    pruned = json.loads(out)
    log(f"  tarn cache prune: {prune_s:.2f} s (target < 5 s), load {loadavg()}, removed {pruned['removed']}")

    # The naive peer on an identical second copy: LRU by access time, no consistency.
    log("regenerating the same cache for the naive peer ...")
    generate(root, a.artifacts, a.seed)
    k = pruned["removed"]["artifacts"] + pruned["removed"]["entries"]
    naive = (f"find {root}/artifacts {root}/outputs -type f -printf '%A@ %p\\n' | sort -n "
             f"| head -n {k} | cut -d' ' -f2- | xargs -d '\\n' rm -f")
    naive_s, _ = timed(["sh", "-c", naive])
    log(f"  naive LRU peer: {naive_s:.2f} s; ratio {prune_s / naive_s:.2f}, load {loadavg()}")
    subprocess.run(["rm", "-rf", str(root)], check=True)
    load_end = loadavg()
    st, fd = statistics.median(stats_runs), statistics.median(find_runs)
    met = lambda ok: "**MET**" if ok else "**NOT MET**"
    lines = [
        START,
        "## Cache prune and stats (issue 24)",
        "",
        f"Generated by `scripts/bench-prune.sh` on `{commit}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu} cores, load average {load_end} at the end "
        f"(other work on the machine; above the core count the absolute times are inflated, the ratios less so): a Lake-shaped cache of "
        f"{a.artifacts:,} sparse artifacts ({total / 1e9:.1f} GB apparent) and {a.artifacts // 2:,} "
        f"`outputs/` entries, last uses spread over 90 days (seed {a.seed}); metadata warm (the cache was just written), as after a build.",
        "",
        "| what | target | measured | status |",
        "|---|---|---|---|",
        f"| `tarn cache prune --max-size` half of {total / 1e9:.1f} GB | < 5 s | {prune_s:.2f} s | {met(prune_s < 5)} |",
        f"| `tarn cache stats` (median of 3) | < 2 s | {st:.2f} s | {met(st < 2)} |",
        "",
        "| comparison | A | B | wall A/B |",
        "|---|---|---|---|",
        f"| stats | tarn cache stats ({st:.2f} s) | find -printf size+atime ({fd:.2f} s) | {st / fd:.2f} |",
        f"| prune | tarn cache prune ({prune_s:.2f} s) | naive LRU: find \\| sort \\| head \\| xargs rm, no consistency ({naive_s:.2f} s) | {prune_s / naive_s:.2f} |",
        "",
        f"Removed by tarn: {pruned['removed']['entries']:,} entries and {pruned['removed']['artifacts']:,} "
        f"artifacts ({pruned['removed']['bytes'] / 1e9:.1f} GB); the peer removed the same number of "
        "files by access time alone.",
        "",
        "Commands (`$B` = the bench directory):",
        "",
        "```",
        "scripts/bench-prune.sh            # this section; TARN_BENCH_DIR, default /tmp/tarn-bench-prune",
        shlex.join(stats_cmd).replace(str(bench), "$B"),
        shlex.join(find_cmd).replace(str(bench), "$B").replace("\n", "\\n"),
        shlex.join(prune_cmd).replace(str(bench), "$B"),
        naive.replace(str(bench), "$B"),
        "```",
        END,
    ]
    text = "\n".join(lines)
    print(text)
    if a.no_write:
        return
    md = REPO / "BENCHMARKS.md"
    old = md.read_text()
    if START in old and END in old:
        new = old[: old.index(START)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    md.write_text(new)
    log(f"wrote {md}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""tarn benchmark harness (Python 3.11, standard library only).

Run through scripts/bench.sh, which installs the peers (nginx, wrk, b3sum) and builds the
release binaries first. Every measured command is started with subprocess and reaped with
os.wait4, which gives its wall time, CPU time (user + sys, including the children it waited
for) and peak RSS (ru_maxrss).

    scripts/bench.py [--quick] [--only NAME[,NAME...]] [--runs N] [--bench-dir DIR] [--no-write]

Comparisons (NAME): get, serve-get, put, verify, stage, server, trust, deps.
Results: printed, written to $BENCH_DIR/results.json, and rendered into BENCHMARKS.md
(full runs; --quick writes $BENCH_DIR/BENCHMARKS.quick.md instead).
"""

import argparse
import hashlib
import hmac
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import urllib.error
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# TARN_BENCH_PROFILE=debug measures the debug build (request counts do not depend on it).
PROFILE = os.environ.get("TARN_BENCH_PROFILE", "release")
TARN = REPO / "target" / PROFILE / "tarn"
FIXTURE = REPO / "target" / PROFILE / "tarn-fixture"
CORES = os.cpu_count() or 1
SCOPE = "bench"
REV = "0123456789abcdef0123456789abcdef01234567"
KEY_ID = "benchkey"
KEY_SECRET = "bench-secret-0123456789abcdef"
CT_ART = "application/vnd.reservoir.artifact"
CT_MAP = "application/vnd.reservoir.outputs+json-lines"


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------------------
# Measurement


class Run:
    __slots__ = ("wall", "cpu", "rss_mb", "rc", "extra")

    def __init__(self, wall, cpu, rss_mb, rc, extra=None):
        self.wall, self.cpu, self.rss_mb, self.rc, self.extra = wall, cpu, rss_mb, rc, extra or {}


RSS_FILE = None  # set by Bench: where GNU time writes the child's peak RSS


def measure(argv, env=None, cwd=None, stdout=None, stderr=None):
    """Runs argv to completion; returns a Run with wall, CPU (user+sys) and peak RSS.

    Wall time and CPU time come from os.wait4 on the spawned process (CPU includes the
    children it waited for). Peak RSS comes from GNU time (/usr/bin/time -f %M) wrapped around
    the command: Linux carries the parent's resident set into a child's ru_maxrss at exec, so
    a command started straight from this Python process would never report less than the
    harness's own ~20 MB; GNU time is ~1 MB and reports its child's maxrss.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    argv = [str(a) for a in argv]
    if cwd is not None:
        argv = ["env", "-C", str(cwd)] + argv
    rss_file = RSS_FILE or "/tmp/tarn-bench-rss"
    argv = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] + argv
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)]
    for fd, target in ((1, stdout), (2, stderr)):
        path = str(target) if target is not None else "/dev/null"
        actions.append((os.POSIX_SPAWN_OPEN, fd, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, full_env, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter()
    try:
        rss_kb = int(Path(rss_file).read_text().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        rss_kb = 0
    return Run(t1 - t0, ru.ru_utime + ru.ru_stime, rss_kb / 1024.0,
               os.waitstatus_to_exitcode(status))


def proc_cpu(pid):
    """CPU seconds (user+sys) of a live process and its live direct children (nginx workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    st = Path(f"/proc/{d}/stat").read_text()
                    if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        for p in pids:
            try:
                f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(f[11]) + int(f[12])) / tick
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return total


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


class Contender:
    """One command of a comparison.

    argv(i): the command for run i; prepare(i): untimed set-up before it; check(i, run):
    untimed check after it (raises on a wrong result); cleanup(i): untimed clean-up.
    server: a Server whose CPU time during the run is recorded as well.
    """

    def __init__(self, name, argv, prepare=None, check=None, cleanup=None, env=None, cwd=None,
                 stdout=None, stderr=None, server=None):
        self.name, self.argv, self.prepare, self.check, self.cleanup = name, argv, prepare, check, cleanup
        self.env, self.cwd, self.stdout, self.stderr, self.server = env, cwd, stdout, stderr, server
        self.runs = []
        self.error = None
        self.example = None


def run_comparison(title, contenders, runs, warmup=1):
    """Alternates contenders (A B C A B C ...): `warmup` discarded rounds, then `runs` rounds."""
    log(f"\n== {title}: {', '.join(c.name for c in contenders)} "
        f"({warmup} warm-up + {runs} measured rounds, alternating)")
    for rnd in range(warmup + runs):
        for c in contenders:
            if c.error:
                continue
            i = rnd
            try:
                if c.prepare:
                    c.prepare(i)
                os.sync()
                argv = c.argv(i) if callable(c.argv) else c.argv
                if c.example is None:
                    c.example = argv
                server = c.server() if callable(c.server) else c.server
                s0 = proc_cpu(server.pid) if server else None
                r = measure(argv, env=c.env, cwd=c.cwd,
                            stdout=c.stdout(i) if callable(c.stdout) else c.stdout,
                            stderr=c.stderr(i) if callable(c.stderr) else c.stderr)
                if server:
                    r.extra["server_cpu"] = proc_cpu(server.pid) - s0
                if r.rc != 0:
                    raise RuntimeError(f"exit code {r.rc}: {shlex.join(map(str, argv))[:300]}")
                if c.check:
                    c.check(i, r)
                tag = "warm-up" if rnd < warmup else f"run {rnd - warmup + 1}"
                srv = f", server CPU {r.extra['server_cpu']:.2f}s" if "server_cpu" in r.extra else ""
                log(f"   {c.name:<28} {tag:<8} wall {r.wall:7.3f}s  CPU {r.cpu:7.3f}s  "
                    f"RSS {r.rss_mb:7.1f} MB{srv}")
                if rnd >= warmup:
                    c.runs.append(r)
            except Exception as e:  # noqa: BLE001 - one broken contender must not stop the others
                c.error = str(e)
                log(f"   {c.name}: FAILED: {e}")
            finally:
                if c.cleanup:
                    try:
                        c.cleanup(i)
                    except Exception as e:  # noqa: BLE001
                        log(f"   {c.name}: cleanup failed: {e}")
    res = []
    for c in contenders:
        d = {"name": c.name, "command": shlex.join(map(str, c.example)) if c.example else None,
             "error": c.error, "runs": len(c.runs)}
        if c.runs and not c.error:
            d["wall"] = stats([r.wall for r in c.runs])
            d["cpu"] = stats([r.cpu for r in c.runs])
            d["rss_mb"] = stats([r.rss_mb for r in c.runs])
            if any("server_cpu" in r.extra for r in c.runs):
                d["server_cpu"] = stats([r.extra.get("server_cpu", 0.0) for r in c.runs])
        res.append(d)
    return res


# ----------------------------------------------------------------------------------------------
# Helpers


def rmtree(p):
    p = Path(p)
    if p.exists() or p.is_symlink():
        subprocess.run(["rm", "-rf", "--", str(p)], check=True)


TRASH = None  # set by Bench


def discard(p):
    """Moves p out of the way (into the trash directory, emptied at the end of the run).

    Deleting files right before creating as many again is slow on ext4 without a journal:
    its inode allocator skips inodes freed in the last 60 s (recently_deleted(), scanning the
    inode tables once per new file, O(created x deleted)). Deleting between runs would charge
    that to whichever contender runs next, so nothing is deleted until the end.
    """
    p = Path(p)
    if p.exists() or p.is_symlink():
        TRASH.mkdir(parents=True, exist_ok=True)
        os.rename(p, TRASH / f"{time.monotonic_ns()}-{p.name}")


def mark_deleted(bench_dir):
    os.sync()  # clean inode-table buffers: ext4 then treats deleted inodes as recent for 60 s, not 360 s
    (Path(bench_dir) / ".last-delete").write_text(f"{time.time()}\n")


SETTLE_SECS = float(os.environ.get("TARN_BENCH_SETTLE", "361"))


def settle(bench_dir):
    """Waits until SETTLE_SECS after the last mass deletion in the bench dir (see discard).

    ext4 skips inodes freed less than 60 s ago, or 360 s while their inode-table block is
    dirty; a back-to-back re-run measured cp -r at 4.2 s instead of 0.37 s after only 60 s.
    """
    try:
        t = float((Path(bench_dir) / ".last-delete").read_text())
    except (OSError, ValueError):
        return
    wait = t + SETTLE_SECS - time.time()
    if wait > 0:
        log(f"waiting {wait:.0f} s after the last mass deletion: ext4 without a journal is slow to "
            f"allocate inodes freed in the last 60–360 s (TARN_BENCH_SETTLE to change)")
        time.sleep(wait)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc=None, timeout=20.0):
    t_end = time.time() + timeout
    while time.time() < t_end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no answer from {url}")


def have(cmd):
    return shutil.which(cmd) is not None


def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def lean_quote(s):
    """Lean's String.quote, as Lake writes curl config files."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Server:
    def __init__(self, name, proc, base_url, pid=None):
        self.name, self.proc, self.base_url = name, proc, base_url
        self.pid = pid or proc.pid


class Servers:
    """Starts servers and always stops them (by their own PIDs) at the end."""

    def __init__(self, pidfile):
        self.pidfile = Path(pidfile)
        self.running = []

    def add(self, srv):
        self.running.append(srv)
        self._write()

    def _write(self):
        self.pidfile.write_text("".join(f"{s.proc.pid}\n" for s in self.running))

    def stop(self, srv):
        if srv.proc.poll() is None:
            srv.proc.send_signal(signal.SIGTERM)
            try:
                srv.proc.wait(10)
            except subprocess.TimeoutExpired:
                srv.proc.kill()
                srv.proc.wait()
        if srv in self.running:
            self.running.remove(srv)
            self._write()

    def stop_all(self):
        for s in list(self.running):
            self.stop(s)


# ----------------------------------------------------------------------------------------------
# SigV4 (for pre-signed PUT requests in the server load test)


def sigv4_headers(method, host, path, body_sha256, region="auto", service="s3",
                  content_type=CT_ART, key_id=KEY_ID, secret=KEY_SECRET):
    now = datetime.now(timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    headers = {"content-type": content_type, "host": host, "x-amz-content-sha256": body_sha256,
               "x-amz-date": amz_date}
    names = sorted(headers)
    canonical = "\n".join([method, path, "", *[f"{k}:{headers[k]}" for k in names], "",
                           ";".join(names), body_sha256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    del headers["host"]
    return headers


# ----------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.runs = args.runs or (3 if self.quick else 5)
        self.modules = args.modules or (800 if self.quick else 8900)
        self.dir = Path(args.bench_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        import fcntl
        self.lock = open(self.dir / ".lock", "w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            sys.exit(f"another benchmark is running in {self.dir} (or still deleting its files)")
        self.tmp = self.dir / "tmp"
        global TRASH
        TRASH = self.dir / "trash"
        leftovers = [p for p in (self.tmp, TRASH) if p.exists()]
        if leftovers:
            log(f"removing leftovers of an earlier run: {', '.join(map(str, leftovers))}")
            for p in leftovers:
                rmtree(p)
            mark_deleted(self.dir)
        settle(self.dir)
        self.tmp.mkdir()
        global RSS_FILE
        RSS_FILE = self.tmp / "rss.txt"
        self.servers = Servers(self.dir / "servers.pid")
        self.results = {}
        self.targets = []  # (comparison, description, value text, met: bool|None)
        self.commands = {}
        self.notes = []
        self.skipped = {}
        self.tarn_help = {}

    # ---- capabilities

    def tarn_has(self, sub, flag=None):
        if sub not in self.tarn_help:
            r = subprocess.run([str(TARN), sub, "--help"], capture_output=True, text=True)
            self.tarn_help[sub] = r.stdout if r.returncode == 0 else ""
        h = self.tarn_help[sub]
        return bool(h) and "not implemented" not in h and (flag is None or flag in h)

    def tarn_works(self, sub):
        """A subcommand is there when its help works and it is not a placeholder."""
        if not self.tarn_has(sub):
            return False
        src = REPO / "crates" / "tarn-cli" / "src" / "commands"
        for f in src.glob("*.rs"):
            t = f.read_text()
            if "placeholder!" in t and re.search(rf"=>\s*{sub.replace('-', '_')}\s*[,)]", t):
                return False
        return True

    def skip(self, name, why):
        log(f"\n== {name}: SKIPPED: {why}")
        self.skipped[name] = why

    # ---- fixture and trees

    def setup_fixture(self):
        tag = f"mathlib-{self.modules}"
        self.fx = self.dir / f"fixture-{tag}"
        if not (self.fx / ".done").exists():
            rmtree(self.fx)
            log(f"generating fixture: {FIXTURE} --preset mathlib --modules {self.modules} --seed 1")
            subprocess.run([str(FIXTURE), "--preset", "mathlib", "--modules", str(self.modules),
                            "--seed", "1", "--out", str(self.fx)], check=True)
            (self.fx / ".done").write_text("ok\n")
        self.cache = self.fx / "cache"
        self.art_dir = self.cache / "artifacts"
        self.mappings = self.fx / "mappings.jsonl"
        self.files = sorted(p for p in self.art_dir.iterdir() if p.is_file())
        self.total_bytes = sum(p.stat().st_size for p in self.files)
        self.n = len(self.files)
        log(f"fixture: {self.n} artifacts, {self.total_bytes / 1e6:.1f} MB in {self.art_dir}")
        self.commands["fixture"] = (f"tarn-fixture --preset mathlib --modules {self.modules} "
                                    f"--seed 1 --out {self.fx}")
        # Lake's remote layout, made of hard links, for nginx.
        self.www = self.dir / f"www-{tag}"
        if not (self.www / ".done").exists():
            rmtree(self.www)
            a = self.www / "a0" / SCOPE
            r = self.www / "r0" / SCOPE
            a.mkdir(parents=True)
            r.mkdir(parents=True)
            for p in self.files:
                os.link(p, a / (p.name.split(".")[0] + ".art"))
            shutil.copyfile(self.mappings, r / f"{REV}.jsonl")
            (self.www / ".done").write_text("ok\n")
        # A package directory for tarn get (lakefile.toml names the package).
        self.pkg = self.dir / "pkg"
        self.pkg.mkdir(exist_ok=True)
        (self.pkg / "lakefile.toml").write_text('name = "bench"\n')
        self.home = self.dir / "home"
        self.home.mkdir(exist_ok=True)
        # Curl config files (Lake's format), per destination.
        self.list0 = self.dir / f"files-{tag}.list0"
        self.list0.write_bytes(b"".join(str(p).encode() + b"\0" for p in self.files))

    def lake_config(self):
        lines = []
        for name, base in self.services.items():
            lines += ["[[cache.service]]", f'name = "{name}"', 'kind = "s3"',
                      f'artifactEndpoint = "{base}/a0"', f'revisionEndpoint = "{base}/r0"', ""]
        self.config = self.dir / "lake-config.toml"
        self.config.write_text("\n".join(lines))
        self.commands["LAKE_CONFIG"] = " | ".join(l for l in lines if l)

    def tarn_env(self):
        return {"LAKE_CONFIG": str(self.config), "HOME": str(self.home),
                "LAKE_CACHE_KEY": f"{KEY_ID}:{KEY_SECRET}", "ELAN_TOOLCHAIN": "",
                "LAKE_CACHE_DIR": "", "LAKE_CACHE_ARTIFACT_ENDPOINT": "",
                "LAKE_CACHE_REVISION_ENDPOINT": ""}

    # ---- servers

    def start_nginx(self, workers=CORES, tag="nginx"):
        if not have("nginx"):
            raise RuntimeError("nginx not installed")
        prefix = self.dir / tag
        rmtree(prefix)
        prefix.mkdir()
        port = free_port()
        conf = (REPO / "scripts" / "bench" / "nginx.conf.in").read_text()
        for k, v in {"@WORKERS@": str(workers), "@PREFIX@": str(prefix), "@PORT@": str(port),
                     "@ROOT@": str(self.www)}.items():
            conf = conf.replace(k, v)
        (prefix / "nginx.conf").write_text(conf)
        nginx = shutil.which("nginx")
        proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                                stdout=subprocess.DEVNULL, stderr=open(prefix / "stderr.log", "wb"))
        srv = Server("nginx", proc, f"http://127.0.0.1:{port}")
        self.servers.add(srv)
        wait_http(f"{srv.base_url}/r0/{SCOPE}/{REV}.jsonl", proc)
        self.commands[tag] = f"nginx -p {prefix} -c {prefix}/nginx.conf  (template: scripts/bench/nginx.conf.in, {workers} worker(s))"
        log(f"nginx {tool_version([nginx, '-v'])} on {srv.base_url} (pid {proc.pid})")
        return srv

    def start_tarn_serve(self, name, data):
        """Starts `tarn serve` on an empty (or given) data directory with the bench key."""
        port = free_port()
        data = Path(data)
        data.mkdir(parents=True, exist_ok=True)
        argv = [str(TARN), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}",
                "--key", f"{KEY_ID}:{KEY_SECRET}"]
        logf = open(self.dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                env={**os.environ, **self.tarn_env()})
        srv = Server(name, proc, f"http://127.0.0.1:{port}")
        self.servers.add(srv)
        wait_http(f"{srv.base_url}/healthz", proc)
        self.commands["tarn serve"] = shlex.join(argv)
        log(f"tarn serve on {srv.base_url} (pid {proc.pid}), data {data}")
        return srv

    def serve_config_text(self, data):
        # See docs/server.md; the keys section follows it.
        return (f'[[key]]\nid = "{KEY_ID}"\nsecret = "{KEY_SECRET}"\nwrite = ["*"]\n')

    # ---- comparisons

    def fresh(self, name):
        d = self.tmp / name
        rmtree(d)
        return d

    def curl_get_config(self, base, dest_art):
        """Lake's G3 download config: one url / -o pair per artifact."""
        lines = []
        for p in self.files:
            h = p.name.split(".")[0]
            lines.append(f"url = {lean_quote(f'{base}/a0/{SCOPE}/{h}.art')}")
            lines.append(f"-o {lean_quote(str(dest_art / p.name))}")
        return "\n".join(lines) + "\n"

    def check_files(self, d, expect=None):
        expect = self.n if expect is None else expect
        got = sum(1 for _ in Path(d).iterdir()) if Path(d).exists() else 0
        if got != expect:
            raise RuntimeError(f"{d}: {got} files, expected {expect}")

    def check_curl_json(self, path, codes=("200", "201")):
        bad = 0
        n = 0
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            n += 1
            j = json.loads(line)
            code = str(j.get("response_code", j.get("http_code")))
            if code not in codes:
                bad += 1
        if bad or n == 0:
            raise RuntimeError(f"curl: {bad} of {n} transfers failed ({path})")

    def get_contenders(self, srv, label, with_curl=True, with_cp=True):
        env = self.tarn_env()
        cs = []
        dest = self.tmp / f"get-{label}"

        def prep(_i):
            discard(dest)
            dest.mkdir(parents=True)

        def prep_art(_i):
            prep(_i)
            (dest / "cache" / "artifacts").mkdir(parents=True)

        def tarn_check(_i, _r):
            self.check_files(dest / "cache" / "artifacts")

        cs.append(Contender(
            f"tarn get ({label})",
            [str(TARN), "--cache-dir", str(dest / "cache"), "-d", str(self.pkg), "get",
             str(self.mappings), "--scope", SCOPE, "--service", label],
            prepare=prep, check=tarn_check, env=env, cwd=str(self.pkg), server=srv,
            cleanup=lambda i: discard(dest)))
        if with_curl:
            cfg = self.dir / f"curl-get-{label}.cfg"
            cfg.write_text(self.curl_get_config(srv.base_url, dest / "cache" / "artifacts"))
            err = self.dir / f"curl-get-{label}.stderr"
            cs.append(Contender(
                f"curl -Z ({label})",
                ["curl", "-Z", "-X", "GET", "-L", "--retry", "3", "-s", "-w", "%{stderr}%{json}\\n",
                 "--config", str(cfg)],
                prepare=prep_art, stderr=err, server=srv,
                check=lambda i, r: (self.check_curl_json(err),
                                    self.check_files(dest / "cache" / "artifacts")),
                cleanup=lambda i: discard(dest)))
        if with_cp:
            cs.append(Contender(
                "cp -r (floor)", ["cp", "-r", str(self.art_dir), str(dest / "artifacts")],
                prepare=prep, check=lambda i, r: self.check_files(dest / "artifacts"),
                cleanup=lambda i: discard(dest)))
        return cs

    def bench_get(self):
        if not self.tarn_works("get"):
            return self.skip("get", "tarn get not available")
        cs = self.get_contenders(self.nginx, "nginx")
        res = run_comparison("1. get, cold, over loopback from nginx", cs, self.runs)
        self.results["get"] = res
        self.commands["get"] = [c["command"] for c in res]
        t, cu, fl = res
        self.ratio_target("get", "tarn get ≥ 3× faster than Lake's curl -Z", cu, t, 3.0)
        if t.get("wall") and fl.get("wall"):
            r = t["wall"]["median"] / fl["wall"]["median"]
            self.targets.append(("get", "tarn get ≤ 2× the floor (cp -r)",
                                 f"tarn/floor = {r:.2f}×", r <= 2.0))
        if t.get("rss_mb"):
            m = t["rss_mb"]["max"]
            self.targets.append(("get", "tarn get peak RSS ≤ 100 MB", f"max {m:.1f} MB", m <= 100))
        self.notes.append("get: the source files stay in the page cache (the server reads them "
                          "from memory); each run writes into a fresh empty cache directory, "
                          "after `sync`. Lake would also hash every downloaded file and write the "
                          "`outputs/` entries after curl; tarn's time includes both, curl's does not.")

    def bench_trust(self):
        """Signed revisions (docs/trust.md): the cost of signing an upload and of verifying a
        download, each against the same command without, in the same run."""
        if not self.tarn_has("get", "--trust") or not self.tarn_has("put-staged", "--sign-key"):
            return self.skip("trust", "tarn has no --trust / --sign-key")
        srv = self.setup_serve()
        if srv is None:
            return self.skip("trust", "tarn serve not available")
        env = self.tarn_env()
        key = self.dir / "trust-signing-key"
        if not key.exists():
            subprocess.run([str(TARN), "key", "generate", str(key)], check=True, env={**os.environ, **env},
                           stderr=subprocess.DEVNULL)
        pub = Path(f"{key}.pub")
        commit = machine()["tarn_commit"]
        loads = [os.getloadavg()]
        put = [str(TARN), "put-staged", str(self.staging), "--rev", REV, "--scope", SCOPE,
               "--service", "tarnserve"]
        # Signing, every artifact already on the service: the signature uses the SHA-256 taken
        # while validating (no artifact is read again), so the cost is one manifest and one PUT.
        cs = [Contender("put-staged, everything present", put, env=env, server=srv),
              Contender("put-staged --sign-key, everything present", put + ["--sign-key", str(key)],
                        env=env, server=srv)]
        res = run_comparison("8a. signing a Mathlib-sized revision (put-staged, all present)", cs, self.runs)
        loads.append(os.getloadavg())
        self.results["trust-sign"] = res
        self.commands["trust-sign"] = [c["command"] for c in res]
        u, sgn = res
        if u.get("wall") and sgn.get("wall"):
            extra = sgn["wall"]["median"] - u["wall"]["median"]
            r = sgn["wall"]["median"] / u["wall"]["median"]
            log(f"signed/unsigned put-staged: {r:.3f}× (+{extra:.2f} s); tarn {commit}; "
                f"load average {fmt_load(loads[0])} before, {fmt_load(loads[1])} after")
            self.targets.append(("trust", "signing ≤ 1 s beyond the upload",
                                 f"+{extra:.2f} s, signed/unsigned = {r:.3f}× ({sgn['wall']['median']:.2f} s vs "
                                 f"{u['wall']['median']:.2f} s; load {fmt_load(loads[1])})",
                                 extra <= 1.0))
        # The last signed put left the signature in tarn serve's data; nginx serves a copy.
        sig = self.tmp / "serve-data" / "r0" / SCOPE / f"{REV}.jsonl.sig"
        shutil.copyfile(sig, self.www / "r0" / SCOPE / f"{REV}.jsonl.sig")
        dest = self.tmp / "get-trust"

        def prep(_i):
            discard(dest)
            dest.mkdir(parents=True)

        get = [str(TARN), "--cache-dir", str(dest / "cache"), "-d", str(self.pkg), "get", "--rev", REV,
               "--scope", SCOPE, "--service", "nginx"]
        check = lambda i, r: self.check_files(dest / "cache" / "artifacts")  # noqa: E731
        cs = [Contender("tarn get (unsigned)", get, prepare=prep, check=check, env=env,
                        cwd=str(self.pkg), server=self.nginx, cleanup=lambda i: discard(dest)),
              Contender("tarn get --trust (signature, SHA-256 of every artifact)", get + ["--trust", str(pub)],
                        prepare=prep, check=check, env=env, cwd=str(self.pkg), server=self.nginx,
                        cleanup=lambda i: discard(dest))]
        res = run_comparison("8b. get, cold, from nginx: verified vs unsigned", cs, self.runs)
        loads.append(os.getloadavg())
        self.results["trust-get"] = res
        self.commands["trust-get"] = [c["command"] for c in res]
        u, v = res
        if u.get("wall") and v.get("wall"):
            r = v["wall"]["median"] / u["wall"]["median"]
            # On a busy machine wall time is mostly other processes' noise; CPU time (the
            # client's own, user + system) shows what the SHA-256 pass costs.
            rc = v["cpu"]["median"] / u["cpu"]["median"] if u.get("cpu") and v.get("cpu") else None
            cpu = f"; CPU verified/unsigned = {rc:.3f}×" if rc else ""
            log(f"verified/unsigned get: {r:.3f}× wall{cpu}; tarn {commit}; load average {fmt_load(loads[2])}")
            self.targets.append(("trust", "verified get within 10% of unsigned get",
                                 f"verified/unsigned = {r:.3f}× wall{cpu} (load {fmt_load(loads[2])})",
                                 r <= 1.10))
        busy = max(l[0] for l in loads) > CORES
        self.notes.append(f"trust: tarn `{commit}`; load average (1/5/15 min) "
                          + ", ".join(fmt_load(l) for l in loads)
                          + " (before 8a, after 8a, after 8b)"
                          + (f": **loaded machine** (1-minute load above the {CORES} cores; other "
                             "processes shared the CPU, the ratios compare contenders run "
                             "alternately under the same load)" if busy else ""))

    def ratio_target(self, comp, desc, slow, fast, factor):
        if slow.get("wall") and fast.get("wall"):
            r = slow["wall"]["median"] / fast["wall"]["median"]
            self.targets.append((comp, desc, f"{r:.2f}× faster", r >= factor))
        else:
            self.targets.append((comp, desc, "not measured", None))

    def setup_serve(self):
        if not self.tarn_works("serve") or not self.tarn_has("serve", "--listen"):
            return None
        if self.tarn_serve is None:
            self.tarn_serve = self.start_tarn_serve("tarn-serve", self.tmp / "serve-data")
            self.services["tarnserve"] = self.tarn_serve.base_url
            self.lake_config()
            # Fill it with the fixture: one put-staged (also the "already present" state).
            self.staging = self.tmp / "staging"
            if not (self.staging / "outputs.jsonl").exists():
                subprocess.run([str(TARN), "--cache-dir", str(self.cache), "stage",
                                str(self.mappings), str(self.staging)], check=True,
                               stdout=subprocess.DEVNULL)
            r = measure([str(TARN), "--json", "put-staged", str(self.staging), "--rev", REV, "--scope",
                         SCOPE, "--service", "tarnserve"], env=self.tarn_env(),
                        stdout=self.dir / "fill.out", stderr=self.dir / "fill.err")
            if r.rc != 0:
                raise RuntimeError("filling tarn serve failed: " + (self.dir / "fill.err").read_text()[-2000:])
            fill = json.loads((self.dir / "fill.out").read_text() or "{}")
            log(f"filled tarn serve with the fixture in {r.wall:.2f}s: "
                f"{fill.get('uploaded')} uploaded, {fill.get('already_present')} already present")
            if fill.get("uploaded") != self.n:
                raise RuntimeError(f"tarn serve fill uploaded {fill.get('uploaded')}, expected {self.n}")
        return self.tarn_serve

    def bench_serve_get(self):
        if not self.tarn_works("get"):
            return self.skip("serve-get", "tarn get not available")
        srv = self.setup_serve()
        if srv is None:
            return self.skip("serve-get", "tarn serve not available")
        cs = self.get_contenders(self.nginx, "nginx", with_curl=False, with_cp=False)
        cs += self.get_contenders(srv, "tarnserve", with_curl=False, with_cp=False)
        res = run_comparison("2. tarn get from tarn serve vs from nginx", cs, self.runs)
        self.results["serve-get"] = res
        self.commands["serve-get"] = [c["command"] for c in res]

    def bench_put(self):
        if not self.tarn_works("put-staged"):
            return self.skip("put", "tarn put-staged not available")
        srv = self.setup_serve()
        if srv is None:
            return self.skip("put", "tarn serve not available")
        env = self.tarn_env()
        # Fresh uploads go to a second tarn serve whose data directory is emptied before
        # every run (restart untimed), so nothing is ever already present.
        state = {"srv": None}
        put_data = self.tmp / "serve-put-data"

        def restart(_i):
            if state["srv"]:
                self.servers.stop(state["srv"])
            discard(put_data)
            state["srv"] = self.start_tarn_serve("tarn-serve-put", put_data)
            self.services["tarnput"] = state["srv"].base_url
            self.lake_config()
            write_put_cfg(state["srv"].base_url)

        cfg = self.dir / "curl-put.cfg"
        cfg_present = self.dir / "curl-put-present.cfg"

        def put_cfg_text(base):
            lines = []
            for p in self.files:
                h = p.name.split(".")[0]
                lines.append(f"-T {lean_quote(str(self.staging / p.name))}")
                lines.append(f"url = {lean_quote(f'{base}/a0/{SCOPE}/{h}.art')}")
            return "\n".join(lines) + "\n"

        def write_put_cfg(base):
            cfg.write_text(put_cfg_text(base))

        cfg_present.write_text(put_cfg_text(srv.base_url))
        curl_put = ["curl", "-Z", "-X", "PUT", "-L", "-H", f"Content-Type: {CT_ART}", "--retry", "3",
                    "--aws-sigv4", "aws:amz:auto:s3", "--user", f"{KEY_ID}:{KEY_SECRET}",
                    "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-s", "-w",
                    "%{stderr}%{json}\\n", "--config"]
        curl_rev = ["curl", "-X", "PUT", "-L", "-H", f"Content-Type: {CT_MAP}", "--retry", "3",
                    "--aws-sigv4", "aws:amz:auto:s3", "--user", f"{KEY_ID}:{KEY_SECRET}",
                    "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-s", "-f", "-o", "/dev/null",
                    "-T", str(self.staging / "outputs.jsonl")]

        def curl_argv(base, c):
            script = (f"{shlex.join(curl_put + [str(c)])} && "
                      f"{shlex.join(curl_rev + [f'{base}/r0/{SCOPE}/{REV}.jsonl'])}")
            return ["sh", "-c", script]

        err = self.dir / "curl-put.stderr"
        cs = [
            Contender("tarn put-staged (fresh)",
                      lambda i: [str(TARN), "put-staged", str(self.staging), "--rev", REV,
                                 "--scope", SCOPE, "--service", "tarnput"],
                      prepare=restart, env=env, server=lambda: state["srv"]),
            Contender("curl -Z PUT (fresh)", lambda i: curl_argv(state["srv"].base_url, cfg),
                      prepare=restart, stderr=err, check=lambda i, r: self.check_curl_json(err),
                      server=lambda: state["srv"]),
        ]
        res = run_comparison("3a. put-staged to tarn serve, nothing present", cs, self.runs)
        if state["srv"]:
            self.servers.stop(state["srv"])
            discard(put_data)
        self.results["put"] = res
        readable = (f"{shlex.join(curl_put + [str(cfg)])}  &&  {shlex.join(curl_rev + ['$URL/r0/bench/REV.jsonl'])}")
        self.commands["put"] = [res[0]["command"], readable]
        self.ratio_target("put", "tarn put-staged ≥ 2× faster than Lake's curl -Z PUT", res[1], res[0], 2.0)

        err2 = self.dir / "curl-put-present.stderr"
        cs = [
            Contender("tarn put-staged (present)",
                      [str(TARN), "put-staged", str(self.staging), "--rev", REV, "--scope", SCOPE,
                       "--service", "tarnserve"], env=env, server=srv),
            Contender("curl -Z PUT (present)", curl_argv(srv.base_url, cfg_present), stderr=err2,
                      check=lambda i, r: self.check_curl_json(err2), server=srv),
        ]
        res = run_comparison("3b. put-staged to tarn serve, everything present", cs, self.runs)
        self.results["put-present"] = res
        self.commands["put-present"] = [res[0]["command"], readable.replace(str(cfg), str(cfg_present))]
        self.ratio_target("put-present", "tarn put-staged (all present) ≥ 20× faster than curl re-uploading",
                          res[1], res[0], 20.0)

    def bench_verify(self):
        # Single-core MurmurHash64A throughput: tarn hash on one large file (page cache warm).
        big = self.dir / "big-1g.bin"
        size = (256 if self.quick else 1024) << 20
        if not big.exists() or big.stat().st_size != size:
            log(f"writing {big} ({size >> 20} MiB)")
            with open(big, "wb") as f:
                chunk = os.urandom(1 << 20)
                for i in range(size >> 20):
                    f.write(chunk[i % 997:] + chunk[:i % 997])
        if not self.tarn_works("hash"):
            return self.skip("verify", "tarn hash not available")
        subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)
        if not self.tarn_works("verify"):
            return self.skip("verify", "tarn verify not available")
        cs = [Contender("tarn verify", [str(TARN), "--cache-dir", str(self.cache), "verify",
                                        str(self.mappings)], env=self.tarn_env())]
        per = max(1, self.n // (CORES * 4))
        cs.append(Contender(f"sha256sum (xargs -P{CORES})",
                            ["xargs", "-0", "-a", str(self.list0), "-P", str(CORES), "-n", str(per),
                             "sha256sum"]))
        if have("b3sum"):
            cs.append(Contender(f"b3sum (xargs -P{CORES})",
                                ["xargs", "-0", "-a", str(self.list0), "-P", str(CORES), "-n",
                                 str(per), "b3sum"]))
        else:
            self.notes.append("verify: b3sum not installed; skipped")
        # The floor's input, measured in the same alternation (A B C D E A B C D E ...), so each
        # round's floor sees the same machine state as that round's tarn verify.
        hash_big = Contender(f"tarn hash ({size >> 20} MiB file, 1 core)", [str(TARN), "hash", str(big)])
        hash_all = Contender("tarn hash (every artifact, 1 core)",
                             [str(TARN), "hash"] + [str(p) for p in self.files])
        cs += [hash_big, hash_all]
        res = run_comparison("4. verify (rehash every artifact, page cache warm)", cs, self.runs)
        verify = cs[0]
        if hash_big.error or not hash_big.runs:
            self.targets.append(("verify", "tarn verify ≥ 80% of the hashing floor", "no floor", None))
            return
        tput = [size / r.wall for r in hash_big.runs]
        floors = [self.total_bytes / (CORES * t) for t in tput]
        floor_row = {"name": "floor: bytes ÷ (cores × MurmurHash64A 1-core throughput)", "command": None,
                     "error": None, "runs": len(floors), "wall": stats(floors)}
        res.insert(len(res) - 2, floor_row)
        if not hash_all.error and hash_all.runs:
            mf = [r.wall / CORES for r in hash_all.runs]
            res.insert(len(res) - 2, {"name": "many-file floor: (1-core `tarn hash` of every artifact) ÷ cores",
                                      "command": None, "error": None, "runs": len(mf), "wall": stats(mf)})
        self.results["verify"] = res
        self.commands["verify"] = [c["command"] for c in res if c.get("command")]
        self.commands["verify"][-1] = self.commands["verify"][-1][:160] + f" … (all {self.n} paths)"
        log(f"   MurmurHash64A 1-core: {statistics.median(tput) / 1e9:.2f} GB/s (median); floor "
            f"{statistics.median(floors) * 1000:.1f} ms")
        if verify.runs and not verify.error:
            fr = [f / v.wall for f, v in zip(floors, verify.runs)]
            frac = statistics.median(fr)
            self.targets.append(("verify", "tarn verify ≥ 80% of the hashing floor",
                                 f"{frac * 100:.0f}% of floor (median of per-round ratios)", frac >= 0.8))
            if not hash_all.error and hash_all.runs:
                mr = statistics.median([h.wall / CORES / v.wall for h, v in zip(hash_all.runs, verify.runs)])
                self.targets.append(("verify", "(context) tarn verify vs the many-file floor",
                                     f"{mr * 100:.0f}% of it", "info"))
        self.notes.append(f"verify floor: MurmurHash64A single-core throughput from `tarn hash` of a "
                          f"{size >> 20} MiB file (memory-mapped; process start included) in each "
                          f"round, × {CORES} cores. The many-file floor is `tarn hash` of all "
                          f"{self.n} artifacts in one single-threaded process (open, read and hash "
                          f"per file) divided by {CORES}: what perfect parallel scaling of that "
                          f"would give. sha256sum and b3sum run {CORES} at a time through xargs, "
                          f"{per} files each.")

    def bench_stage(self):
        if not self.tarn_works("stage"):
            return self.skip("stage", "tarn stage not available")
        dest = self.tmp / "stage"

        def prep(_i):
            discard(dest)

        cs = [
            Contender("tarn stage", [str(TARN), "--cache-dir", str(self.cache), "stage",
                                     str(self.mappings), str(dest)], prepare=prep,
                      check=lambda i, r: self.check_files(dest, self.n + 1), env=self.tarn_env(),
                      cleanup=prep),
            Contender("cp -r", ["cp", "-r", str(self.art_dir), str(dest)], prepare=prep,
                      check=lambda i, r: self.check_files(dest), cleanup=prep),
            Contender("tarn stage --copy", [str(TARN), "--cache-dir", str(self.cache), "stage",
                                            "--copy", str(self.mappings), str(dest)], prepare=prep,
                      check=lambda i, r: self.check_files(dest, self.n + 1), env=self.tarn_env(),
                      cleanup=prep),
            Contender("cp -al (hard links)", ["cp", "-al", str(self.art_dir), str(dest)],
                      prepare=prep, check=lambda i, r: self.check_files(dest), cleanup=prep),
            # The same two with the writes made durable: cp's 389 MB otherwise sit in the
            # page cache as dirty pages when its clock stops.
            Contender("tarn stage; sync", ["sh", "-c", shlex.join(
                [str(TARN), "--cache-dir", str(self.cache), "stage", str(self.mappings), str(dest)]) + " && sync"],
                      prepare=prep, check=lambda i, r: self.check_files(dest, self.n + 1),
                      env=self.tarn_env(), cleanup=prep),
            Contender("cp -r; sync", ["sh", "-c", shlex.join(["cp", "-r", str(self.art_dir), str(dest)]) + " && sync"],
                      prepare=prep, check=lambda i, r: self.check_files(dest), cleanup=prep),
        ]
        res = run_comparison("5. stage (same filesystem)", cs, self.runs)
        self.results["stage"] = res
        self.commands["stage"] = [c["command"] for c in res]
        self.ratio_target("stage", "tarn stage ≥ 5× faster than cp", res[1], res[0], 5.0)
        if res[4].get("wall") and res[5].get("wall"):
            r = res[5]["wall"]["median"] / res[4]["wall"]["median"]
            self.targets.append(("stage", "(context) same, both followed by `sync`",
                                 f"{r:.2f}× faster", "info"))
        self.notes.append("stage: `sync` flushes the whole machine's dirty pages, so the `; sync` "
                          "rows also carry other processes' writes; they show what cp's data costs "
                          "once it reaches the disk.")

    # ---- server load test

    def small_paths(self, k):
        target = 44_000
        by = sorted(self.files, key=lambda p: abs(p.stat().st_size - target))[:k]
        sizes = [p.stat().st_size for p in by]
        return [f"/a0/{SCOPE}/{p.name.split('.')[0]}.art" for p in by], sizes

    def wrk(self, base, script, duration, conns=64, threads=2, cpu=None):
        pre = ["taskset", "-c", str(cpu)] if cpu is not None else []
        argv = pre + ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{duration}s", "--timeout",
                "5s", "--latency", "-s", str(script), base]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
        out = r.stdout
        m = re.search(r"Requests/sec:\s*([\d.]+)", out)
        if r.returncode != 0 or not m:
            raise RuntimeError(f"wrk failed: {out[-1500:]} {r.stderr[-500:]}")

        def lat(p):
            mm = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
            if not mm:
                return float("nan")
            v = float(mm.group(1))
            return v * {"us": 1e-3, "ms": 1.0, "s": 1e3}[mm.group(2)]

        non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
        errs = re.search(r"Socket errors:.*", out)
        return {"rps": float(m.group(1)), "p50": lat(50), "p99": lat(99),
                "non2xx": int(non2xx.group(1)) if non2xx else 0,
                "socket_errors": errs.group(0) if errs else "", "argv": shlex.join(argv)}

    def bench_server(self):
        if not have("wrk"):
            return self.skip("server", "wrk not installed")
        srv = self.setup_serve()
        if srv is None:
            self.skip("server", "tarn serve not available (nginx measured alone)")
        paths, sizes = self.small_paths(2000 if not self.quick else 400)
        script = self.dir / "wrk-get.lua"
        script.write_text(
            "-- cycles over artifact paths; each thread starts at a different offset\n"
            "local paths = {\n" + "".join(f'  "{p}",\n' for p in paths) + "}\n"
            "local i = 0\n"
            "setup = function(thread) thread:set('offset', math.random(#paths)) end\n"
            "init = function(args) i = tonumber(offset) or 0 end\n"
            "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n")
        dur = 3 if self.quick else 10
        contenders = [("nginx", self.nginx)] + ([("tarn serve", srv)] if srv else [])
        log(f"\n== 6. server GET throughput: {len(paths)} artifacts of "
            f"{min(sizes) / 1e3:.1f}–{max(sizes) / 1e3:.1f} KB (median "
            f"{statistics.median(sizes) / 1e3:.1f} KB), 64 connections, {dur}s per run, alternating")
        res = self.load_rounds(contenders, script, dur, paths, sizes, pinned=False)
        self.results["server"] = res
        if "error" in res or not srv:
            return
        n, t = res["nginx"], res["tarn serve"]
        rr = t["rps"]["median"] / n["rps"]["median"]
        self.targets.append(("server", "tarn serve ≥ 0.8× nginx requests/s", f"{rr:.2f}×", rr >= 0.8))
        pr = t["p99"]["median"] / n["p99"]["median"]
        self.targets.append(("server", "tarn serve p99 ≤ 2× nginx p99", f"{pr:.2f}×", pr <= 2.0))
        self.notes.append("server: wrk (2 threads) runs on the same 2 cores as the server, so both "
                          "servers share the CPU with the load generator. The pinned variant puts "
                          "every server thread on CPU 0 (`taskset -a -p`; nginx then runs 1 worker) "
                          "and wrk (1 thread) on CPU 1.")
        if CORES >= 2 and have("taskset"):
            log("\n== 6 (pinned): servers on CPU 0 (nginx with 1 worker), wrk -t1 on CPU 1")
            n1 = self.start_nginx(workers=1, tag="nginx-1w")
            try:
                resp = self.load_rounds([("nginx", n1), ("tarn serve", srv)], script, dur, paths,
                                        sizes, pinned=True)
            finally:
                self.servers.stop(n1)
            self.results["server-pinned"] = resp
            if "error" not in resp:
                n, t = resp["nginx"], resp["tarn serve"]
                self.targets.append(("server", "(pinned) tarn serve / nginx requests/s",
                                     f"{t['rps']['median'] / n['rps']['median']:.2f}×", "info"))
                self.targets.append(("server", "(pinned) tarn serve / nginx p99",
                                     f"{t['p99']['median'] / n['p99']['median']:.2f}×", "info"))
        self.bench_server_put(srv, paths)

    def pin(self, srv, cpus):
        pids = [srv.pid]
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    st = Path(f"/proc/{d}/stat").read_text()
                    if int(st.rsplit(")", 1)[1].split()[1]) == srv.pid:
                        pids.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        for p in pids:
            subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(p)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    def load_rounds(self, contenders, script, dur, paths, sizes, pinned):
        rows = {n: [] for n, _ in contenders}
        try:
            for rnd in range(1 + self.runs):
                for name, s in contenders:
                    if pinned:
                        self.pin(s, "0")
                    try:
                        c0 = proc_cpu(s.pid)
                        w = self.wrk(s.base_url, script, 2 if rnd == 0 else dur,
                                     threads=1 if pinned else 2, cpu=1 if pinned else None)
                        w["server_cpu"] = proc_cpu(s.pid) - c0
                    finally:
                        if pinned:
                            self.pin(s, f"0-{CORES - 1}")
                    w["cpu_us_per_req"] = w["server_cpu"] / max(1.0, w["rps"] * (2 if rnd == 0 else dur)) * 1e6
                    tag = "warm-up" if rnd == 0 else f"run {rnd}"
                    log(f"   {name:<12} {tag:<8} {w['rps']:9.0f} req/s  p50 {w['p50']:7.2f} ms  "
                        f"p99 {w['p99']:7.2f} ms  non-2xx {w['non2xx']}  server CPU "
                        f"{w['server_cpu']:.1f}s ({w['cpu_us_per_req']:.0f} µs/req) {w['socket_errors']}")
                    if w["non2xx"]:
                        raise RuntimeError(f"{name}: {w['non2xx']} non-2xx responses")
                    if rnd > 0:
                        rows[name].append(w)
        except Exception as e:  # noqa: BLE001
            log(f"   FAILED: {e}")
            return {"error": str(e)}
        res = {}
        for name, ws in rows.items():
            res[name] = {k: stats([w[k] for w in ws]) for k in ("rps", "p50", "p99", "server_cpu", "cpu_us_per_req")}
            res[name]["argv"] = ws[0]["argv"]
        res["sizes"] = {"count": len(paths), "min": min(sizes), "max": max(sizes),
                        "median": statistics.median(sizes)}
        res["duration"] = dur
        return res

    def bench_server_put(self, srv, paths):
        """PUT throughput with SigV4 checking and hash validation: pre-signed requests."""
        sel = paths[: (100 if self.quick else 400)]
        host = srv.base_url.split("//", 1)[1]
        entries = []
        for p in sel:
            h = p.rsplit("/", 1)[1].split(".")[0]
            f = next(x for x in self.files if x.name.startswith(h + "."))
            body = f.read_bytes()
            put_path = f"/a0/bench-put/{h}.art"
            hd = sigv4_headers("PUT", host, put_path, hashlib.sha256(body).hexdigest())
            entries.append((put_path, hd, str(f)))
        script = self.dir / "wrk-put.lua"
        lua = ["-- pre-signed PUTs (SigV4 with the real payload hash), cycled", "local reqs = {}",
               "local specs = {"]
        for path, hd, f in entries:
            hs = ", ".join(f'["{k}"] = "{v}"' for k, v in hd.items())
            lua.append(f'  {{ "{path}", {{ {hs} }}, "{f}" }},')
        lua += ["}",
                "init = function(args)",
                "  for k, s in ipairs(specs) do",
                "    local fh = io.open(s[3], 'rb'); local body = fh:read('*a'); fh:close()",
                "    reqs[k] = wrk.format('PUT', s[1], s[2], body)",
                "  end",
                "end",
                "local i = 0",
                "request = function() i = i % #reqs + 1; return reqs[i] end"]
        script.write_text("\n".join(lua) + "\n")
        dur = 3 if self.quick else 10
        log(f"\n== 6b. tarn serve PUT throughput (SigV4 + hash validation), {len(entries)} artifacts, "
            f"64 connections, {dur}s")
        ws = []
        try:
            for rnd in range(1 + min(self.runs, 3)):
                c0 = proc_cpu(srv.pid)
                w = self.wrk(srv.base_url, script, 2 if rnd == 0 else dur)
                w["server_cpu"] = proc_cpu(srv.pid) - c0
                log(f"   tarn serve PUT {'warm-up' if rnd == 0 else f'run {rnd}'}: {w['rps']:9.0f} req/s  "
                    f"p50 {w['p50']:7.2f} ms  p99 {w['p99']:7.2f} ms  non-2xx {w['non2xx']}")
                if w["non2xx"]:
                    raise RuntimeError(f"{w['non2xx']} non-2xx responses")
                if rnd:
                    ws.append(w)
        except Exception as e:  # noqa: BLE001
            log(f"   FAILED: {e}")
            self.results["server-put"] = {"error": str(e)}
            return
        self.results["server-put"] = {k: stats([w[k] for w in ws]) for k in ("rps", "p50", "p99", "server_cpu")}
        self.results["server-put"]["argv"] = ws[0]["argv"]
        self.notes.append(f"server PUT: wrk cycles over {len(entries)} pre-signed PUTs of ≈44 KB "
                          "artifacts (SigV4 over the real payload SHA-256, scope `bench-put`). "
                          "Only the first pass creates objects; later PUTs of the same object still "
                          "have their body read, their signature and content hash checked, and end "
                          "as 'already present' (no overwrite). nginx has no equivalent (no "
                          "signature or content checks), so there is no ratio.")

    # ---- main

    def bench_deps(self):
        """`tarn get --deps` on the Mathlib-shaped workspace vs the same dependencies fetched
        one scope at a time (`tarn get --package P --repo O/R`, one process per dependency),
        from a counting HTTP server (Python's, the same for both), cold cache each run."""
        import http.server
        import threading
        base = self.dir / "deps"
        ws = base / "workspace"
        modules = 40 if self.args.quick else 300
        if not ws.exists():
            rmtree(base)
            subprocess.run([str(FIXTURE), "--workspace", "--modules", str(modules), "--out", str(base)],
                           check=True, stdout=subprocess.DEVNULL)
        manifest = json.loads((ws / "lake-manifest.json").read_text())
        deps = [(p["name"], "/".join(p["url"].rstrip("/").removesuffix(".git").split("/")[-2:]))
                for p in manifest["packages"]]
        remote = base / "remote"
        counter = {"n": 0}
        lock = threading.Lock()

        class H(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(remote), **k)

            def log_message(self, *_a):
                pass

            def _count(self):
                with lock:
                    counter["n"] += 1

            def do_GET(self):
                self._count()
                super().do_GET()

            def do_HEAD(self):
                self._count()
                super().do_HEAD()

            def do_PUT(self):
                self._count()
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                path = remote / self.path.lstrip("/").split("?")[0]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self):
                self._count()
                self.rfile.read(int(self.headers.get("content-length", "0")))
                self.send_response(405)
                self.send_header("content-length", "0")
                self.end_headers()

        http.server.ThreadingHTTPServer.daemon_threads = True
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        config = base / "config.toml"
        config.write_text(f'[[cache.service]]\nname = "deps"\nkind = "s3"\n'
                          f'artifactEndpoint = "{url}/a0"\nrevisionEndpoint = "{url}/r0"\n')
        # No ELAN_TOOLCHAIN: the workspace's lean-toolchain applies, as in a plain shell.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LAKE_", "ELAN", "RESERVOIR_", "TARN_"))}
        env.update(LAKE_CONFIG=str(config), HOME=str(base), LAKE_CACHE_KEY=f"{KEY_ID}:{KEY_SECRET}")
        if not (remote / "r0").exists():
            for name, repo in deps:
                subprocess.run([str(TARN), "-q", "--cache-dir", str(base / "cache"), "put",
                                str(base / "mappings" / f"{name}.jsonl"), "--package", name,
                                "--repo", repo, "--service", "deps"],
                               cwd=ws, env=env, check=True)
        cache = base / "get-cache"

        def prep(_i):
            discard(cache)
            counter["n"] = 0

        def check(_i, r):
            r.extra["requests"] = counter["n"]
            got = sum(len(list((cache / "outputs" / n).iterdir())) for n, _ in deps)
            if got != modules * len(deps):
                raise RuntimeError(f"{got} outputs entries, expected {modules * len(deps)}")
        one_by_one = " && ".join(
            f"{shlex.quote(str(TARN))} -q --cache-dir {shlex.quote(str(cache))} get --package {n} "
            f"--repo {r} --service deps" for n, r in deps)
        contenders = [
            Contender("tarn get --deps", [str(TARN), "-q", "--cache-dir", str(cache), "get", "--deps",
                                          "--service", "deps"],
                      prepare=prep, check=check, env=env, cwd=ws),
            Contender("one scope at a time", ["sh", "-c", one_by_one],
                      prepare=prep, check=check, env=env, cwd=ws),
        ]
        res = run_comparison(f"get --deps ({len(deps)} dependencies x {modules} modules)",
                             contenders, self.runs)
        for c, d in zip(contenders, res):
            if c.runs:
                d["requests"] = stats([r.extra["requests"] for r in c.runs])
        srv.shutdown()
        self.results["deps"] = {"packages": len(deps), "modules": modules, "contenders": res}
        self.commands["deps"] = [d["command"] for d in res]

    def run(self):
        self.tarn_serve = None
        self.services = {}
        if self.args.only == "deps":
            # Its own fixture and server: no need for the 8,900-artifact fixture or nginx.
            self.n = None
            self.config = None
            try:
                self.bench_deps()
            finally:
                self.servers.stop_all()
            # Printed and saved on its own (BENCHMARKS.md's other sections are left as they are).
            out = self.dir / "deps-results.json"
            blob = {"results": self.results, "commands": self.commands, "machine": machine(),
                    "runs": self.runs, "profile": PROFILE}
            out.write_text(json.dumps(blob, indent=1, default=str))
            log("\n".join(render_deps(blob)))
            d = self.results["deps"]
            log(f"\n{d['packages']} dependencies x {d['modules']} modules, {self.runs} runs (median [min–max])")
            log("| contender | wall s | HTTP requests | peak RSS MB |")
            log("|---|---|---|---|")
            for c in d["contenders"]:
                if c.get("wall"):
                    w, q, m = c["wall"], c["requests"], c["rss_mb"]
                    log(f"| {c['name']} | {w['median']:.3f} [{w['min']:.3f}–{w['max']:.3f}] | "
                        f"{q['median']:.0f} | {m['median']:.1f} |")
                else:
                    log(f"| {c['name']} | FAILED: {c.get('error')} | | |")
            log(f"wrote {out}")
            rmtree(self.tmp)
            rmtree(TRASH)
            return
        self.setup_fixture()
        self.notes.append("Between runs nothing is deleted: outputs are moved to a trash directory, "
                          "emptied at the end. On this machine's ext4 (no journal) creating files "
                          "right after deleting as many is several times slower (the inode "
                          "allocator skips inodes freed in the last 60 s; perf shows `cp -r` of "
                          "the fixture at 0.5 s normally and 3–5 s of `recently_deleted` scanning "
                          "after an `rm -rf` of a previous copy).")
        only = set(self.args.only.split(",")) if self.args.only else None
        want = lambda n: only is None or n in only  # noqa: E731
        try:
            self.nginx = self.start_nginx()
            self.services["nginx"] = self.nginx.base_url
            self.lake_config()
            for name, fn in [("get", self.bench_get), ("serve-get", self.bench_serve_get),
                             ("put", self.bench_put), ("verify", self.bench_verify),
                             ("stage", self.bench_stage), ("server", self.bench_server),
                             ("trust", self.bench_trust), ("deps", self.bench_deps)]:
                if want(name):
                    try:
                        fn()
                    except Exception as e:  # noqa: BLE001
                        log(f"\n== {name}: ERROR: {e}")
                        self.skipped[name] = f"error: {e}"
        finally:
            self.servers.stop_all()
        self.report()
        log(f"removing {TRASH} and {self.tmp}")
        rmtree(TRASH)
        rmtree(self.tmp)
        mark_deleted(self.dir)

    GROUPS = {"get": ["get"], "serve-get": ["serve-get"], "put": ["put", "put-present"],
              "verify": ["verify"], "stage": ["stage"],
              "server": ["server", "server-pinned", "server-put"], "deps": ["deps"],
              "trust": ["trust-sign", "trust-get"]}

    def merge_previous(self):
        """--only: keep the other comparisons' results from the last run on the same fixture."""
        try:
            old = json.loads((self.dir / "results.json").read_text())
        except (OSError, ValueError):
            return
        if old.get("quick") or old.get("fixture", {}).get("artifacts") != self.n:
            return
        rerun = set(self.args.only.split(","))
        keys = {k for n in rerun for k in self.GROUPS.get(n, [n])}
        for k, v in old.get("results", {}).items():
            if k not in keys and k not in self.results:
                self.results[k] = v
        comps = keys
        self.targets = [tuple(t) for t in old.get("targets", []) if t[0] not in comps] + self.targets
        order = ["get", "put", "put-present", "verify", "stage", "server", "trust"]
        self.targets.sort(key=lambda t: order.index(t[0]) if t[0] in order else 99)
        for k, v in old.get("commands", {}).items():
            self.commands.setdefault(k, v)
        for n in old.get("notes", []):
            if n not in self.notes:
                self.notes.append(n)
        for k, v in old.get("skipped", {}).items():
            if k not in rerun:
                self.skipped.setdefault(k, v)
        self.notes.append(f"Comparisons {', '.join(sorted(rerun))} were re-run later "
                          f"(`--only`); the others are from the previous full run.")

    def report(self):
        log("\n== Targets")
        for comp, desc, val, met in self.targets:
            s = "info" if met == "info" else "MET" if met else ("NOT MET" if met is False else "NOT MEASURED")
            log(f"   [{s:^12}] {desc}: {val}")
        for n, why in self.skipped.items():
            log(f"   [ SKIPPED ] {n}: {why}")
        if self.args.only and not self.quick:
            self.merge_previous()
        blob = {"results": self.results, "targets": self.targets, "skipped": self.skipped,
                "notes": self.notes, "commands": self.commands, "machine": machine(),
                "fixture": {"artifacts": self.n, "bytes": self.total_bytes},
                "quick": self.quick, "runs": self.runs, "bench_dir": str(self.dir),
                "argv": sys.argv[1:]}
        (self.dir / "results.json").write_text(json.dumps(blob, indent=1, default=str))
        if self.args.no_write:
            return
        out = REPO / "BENCHMARKS.md" if not self.quick else self.dir / "BENCHMARKS.quick.md"
        out.write_text(with_other_sections(render(blob), out))
        log(f"\nwrote {out} and {self.dir / 'results.json'}")


# ----------------------------------------------------------------------------------------------
# Report


def with_other_sections(text, path):
    """`text` plus the sections other scripts keep in the same file between their own markers
    (`<!-- NAME:start -->` … `<!-- NAME:end -->`: scripts/bench-prune.sh's `bench-prune`,
    scripts/bench-section.py's `bench-section:LABEL`), in the order the file had them."""
    old = path.read_text() if path.exists() else ""
    kept = [m.group(0) for m in
            re.finditer(r"<!-- ([\w:-]+):start -->.*?<!-- \1:end -->", old, flags=re.S)]
    return "\n\n".join([text.rstrip("\n")] + kept) + "\n"


def machine():
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    df = subprocess.run(["df", "-hT", "/tmp"], capture_output=True, text=True).stdout.splitlines()
    disk = df[1] if len(df) > 1 else "?"
    try:
        parts = disk.split()
        dev = os.path.basename(parts[0])
        rot = Path(f"/sys/block/{dev}/queue/rotational").read_text().strip()
        disk += f" (rotational={rot})"
    except (OSError, IndexError):
        pass
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "crates", "Cargo.lock"],
                           capture_output=True, text=True).stdout.split("\n")
    dirty = sorted({l[3:].split("/src")[0] for l in dirty if l.strip()})
    if dirty:
        rev += " + uncommitted changes in " + ", ".join(dirty)
    ext4 = " ext4 " in f" {disk} "
    jbd2 = Path("/proc/fs/jbd2")
    no_journal = ext4 and jbd2.is_dir() and not any(jbd2.iterdir())
    return {"cpu": cpu, "cores": CORES, "memory": mem, "disk": disk, "kernel": platform.release(),
            "ext4_without_journal": no_journal,
            "os": platform.platform(), "tarn_commit": rev,
            "curl": tool_version(["curl", "--version"]),
            "nginx": tool_version(["nginx", "-v"]) if have("nginx") else "-",
            "wrk": tool_version(["wrk", "-v"]) if have("wrk") else "-",
            "b3sum": tool_version(["b3sum", "--version"]) if have("b3sum") else "-",
            "sha256sum": tool_version(["sha256sum", "--version"]),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def fmt_load(load):
    """A load average triple as `1.23/0.98/0.75`."""
    return "/".join(f"{x:.2f}" for x in load)


def fmt_s(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def triple(d, key, f=fmt_s):
    if not d.get(key):
        return "–"
    s = d[key]
    return f"{f(s['median'])} ({f(s['min'])}–{f(s['max'])})"


def render(b):
    m = b["machine"]
    L = []
    L.append("# tarn benchmarks\n")
    L.append("`scripts/evidence.sh` regenerates this whole file in one run. Everything down to "
             "\"Exact commands\" is written by `scripts/bench.sh` (harness: `scripts/bench.py`): "
             "every comparison alternates its contenders (A B A B …), one warm-up round is "
             f"discarded, then {b['runs']} measured rounds; times are medians with (min–max). "
             "Each later section is the output of the command written in it "
             "(`scripts/bench-section.py`, `scripts/bench-prune.sh`), with its commit and date.\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {m['cpu']}, **{m['cores']} cores**; memory {m['memory']}")
    L.append(f"- disk (bench dir, /tmp): `{m['disk']}`")
    if m.get("ext4_without_journal"):
        L.append("- that ext4 has **no journal** (`/proc/fs/jbd2` is empty): creating a file there "
                 "costs more right after mass deletions, by an amount that varies from run to run "
                 "(see [docs/benchmark-history.md](docs/benchmark-history.md)); sections measured "
                 "on a tmpfs say so")
    L.append(f"- kernel {m['kernel']}; {m['os']}")
    L.append(f"- tarn: `{m['tarn_commit']}` (release build of the working tree); {m['curl']}; {m['nginx']}; "
             f"{m['wrk']}; {m['b3sum']}; {m['sha256sum']}")
    L.append(f"- run: {m['date']}; fixture: {b['fixture']['artifacts']} artifacts, "
             f"{b['fixture']['bytes'] / 1e6:.1f} MB (mathlib preset, log-normal sizes)\n")
    L.append("## Targets\n")
    L.append("| comparison | target | measured | status |")
    L.append("|---|---|---|---|")
    for comp, desc, val, met in b["targets"]:
        s = "info" if met == "info" else "**MET**" if met else ("**NOT MET**" if met is False else "not measured")
        L.append(f"| {comp} | {desc} | {val} | {s} |")
    for n, why in b["skipped"].items():
        L.append(f"| {n} | – | SKIPPED: {why} | – |")
    L.append("")
    L.append("## Ratios (medians; A/B < 1 means A is faster)\n")
    L.append("| comparison | A | B | wall A/B | CPU A/B | peak RSS A/B |")
    L.append("|---|---|---|---|---|---|")
    R = b["results"]
    pairs = [("get", 0, 1), ("get", 0, 2), ("get", 1, 2), ("serve-get", 1, 0), ("put", 0, 1),
             ("put-present", 0, 1), ("verify", 0, 1), ("verify", 0, 2), ("verify", 0, 3), ("verify", 0, 4),
             ("stage", 0, 1), ("stage", 2, 1), ("stage", 0, 3), ("stage", 4, 5),
             ("stage-rerun", 0, 1), ("stage-rerun", 4, 5)]
    for comp, a, bb in pairs:
        rs = R.get(comp)
        if not isinstance(rs, list) or max(a, bb) >= len(rs):
            continue
        A, B = rs[a], rs[bb]
        if not A.get("wall") or not B.get("wall"):
            continue

        def rt(k):
            if not A.get(k) or not B.get(k) or not B[k]["median"]:
                return "–"
            return f"{A[k]['median'] / B[k]['median']:.3f}"
        L.append(f"| {comp} | {A['name']} | {B['name']} | {rt('wall')} | {rt('cpu')} | {rt('rss_mb')} |")
    for key in ("server", "server-pinned"):
        sv = R.get(key)
        if isinstance(sv, dict) and "tarn serve" in sv:
            t, n = sv["tarn serve"], sv["nginx"]
            L.append(f"| {key} | tarn serve | nginx | req/s {t['rps']['median'] / n['rps']['median']:.3f} "
                     f"| p50 {t['p50']['median'] / n['p50']['median']:.3f} | p99 "
                     f"{t['p99']['median'] / n['p99']['median']:.3f} |")
    L.append("")
    L.append("## Details\n")
    titles = {"get": "1. get, cold, over loopback from nginx",
              "serve-get": "2. tarn get from tarn serve vs from nginx",
              "put": "3a. put-staged to tarn serve, nothing present",
              "put-present": "3b. put-staged to tarn serve, everything present",
              "verify": "4. verify", "stage": "5. stage (same filesystem)",
              "trust-sign": "8a. signing a Mathlib-sized revision (put-staged, all present)",
              "trust-get": "8b. get, cold, from nginx: verified (--trust) vs unsigned",
              "stage-rerun": "5b. stage re-run (`--only stage`) while the filesystem was busy freeing the previous run's files"}
    for comp, title in titles.items():
        rs = R.get(comp)
        if not isinstance(rs, list):
            continue
        L.append(f"### {title}\n")
        has_srv = any(r.get("server_cpu") for r in rs)
        L.append("| contender | wall s | CPU s (user+sys) | peak RSS MB |" + (" server CPU s |" if has_srv else ""))
        L.append("|---|---|---|---|" + ("---|" if has_srv else ""))
        for r in rs:
            if r.get("error"):
                L.append(f"| {r['name']} | FAILED: {r['error'][:200]} | | |" + (" |" if has_srv else ""))
                continue
            row = f"| {r['name']} | {triple(r, 'wall')} | {triple(r, 'cpu')} | {triple(r, 'rss_mb', lambda x: f'{x:.1f}')} |"
            if has_srv:
                row += f" {triple(r, 'server_cpu')} |"
            L.append(row)
        L.append("")
    for key, title in (("server", "6. server GET throughput"),
                       ("server-pinned", "6 (pinned). server GET throughput, server on CPU 0 (nginx: 1 worker), wrk -t1 on CPU 1")):
        sv = R.get(key)
        if isinstance(sv, dict) and "nginx" in sv:
            L.append(f"### {title}\n")
            sz = sv["sizes"]
            L.append(f"{sz['count']} artifacts of {sz['min'] / 1e3:.1f}–{sz['max'] / 1e3:.1f} KB (median "
                     f"{sz['median'] / 1e3:.1f} KB), wrk with 64 connections, {sv['duration']} s per run.\n")
            L.append("| server | req/s | p50 ms | p99 ms | server CPU s per run | server CPU µs per request |")
            L.append("|---|---|---|---|---|---|")
            for name in ("nginx", "tarn serve"):
                if name not in sv:
                    continue
                r = sv[name]
                L.append(f"| {name} | {triple(r, 'rps', lambda x: f'{x:.0f}')} | {triple(r, 'p50', lambda x: f'{x:.2f}')} "
                         f"| {triple(r, 'p99', lambda x: f'{x:.2f}')} | {triple(r, 'server_cpu', lambda x: f'{x:.1f}')} "
                         f"| {triple(r, 'cpu_us_per_req', lambda x: f'{x:.0f}')} |")
            L.append("")
        elif isinstance(sv, dict):
            L.append(f"### {title}\n\nFAILED: {sv.get('error')}\n")
    sp = R.get("server-put")
    if isinstance(sp, dict) and "rps" in sp:
        L.append("### 6b. tarn serve PUT throughput (SigV4 checked, content hash validated)\n")
        L.append("| server | req/s | p50 ms | p99 ms | server CPU s per run |")
        L.append("|---|---|---|---|---|")
        L.append(f"| tarn serve | {triple(sp, 'rps', lambda x: f'{x:.0f}')} | {triple(sp, 'p50', lambda x: f'{x:.2f}')} "
                 f"| {triple(sp, 'p99', lambda x: f'{x:.2f}')} | {triple(sp, 'server_cpu', lambda x: f'{x:.1f}')} |")
        L.append("")
    elif isinstance(sp, dict):
        L.append(f"### 6b. tarn serve PUT throughput\n\nFAILED: {sp.get('error')}\n")
    deps = Path(b.get("bench_dir", "")) / "deps-results.json"
    if (b.get("results") or {}).get("deps"):
        # A full run measured it with the rest.
        L.extend(render_deps(dict(b, profile=b.get("profile", PROFILE))))
    elif b.get("bench_dir") and deps.exists():
        L.extend(render_deps(json.loads(deps.read_text())))
    L.append("## Analysis\n")
    L.append("Why the misses above are missed (profiles, floors, what was tried) is in "
             "[docs/benchmark-history.md](docs/benchmark-history.md), with the commit each "
             "finding was measured on; the figures in this file are only those of this run.\n")
    L.append("## Notes\n")
    for n in b["notes"]:
        L.append(f"- {n}")
    L.append("")
    L.append("## Exact commands\n")
    shown = []
    skip = False
    for a in b["argv"]:
        if skip:
            skip = False
            continue
        if a == "--bench-dir":
            skip = True
            continue
        if a.startswith("--bench-dir=") or a == "--no-write":
            continue
        shown.append(a)
    L.append("```sh\nscripts/bench.sh " + " ".join(shown) + "\n```\n")
    L.append("(bench directory: `$TARN_BENCH_DIR`, default `/tmp/tarn-bench`; the fixture and the "
             "1 GiB hash-throughput file are generated there once and reused.)\n")
    L.append("Per contender, as run (`$BENCH` is the bench directory; `$URL` the server):\n")
    L.append("```")
    bench_dir = b.get("bench_dir", "")

    def tidy(c):
        c = c.replace(str(REPO) + "/", "")
        return c.replace(bench_dir, "$BENCH") if bench_dir else c
    for k, v in b["commands"].items():
        if isinstance(v, list):
            for c in v:
                if c:
                    L.append(f"[{k}] {tidy(c)}")
        else:
            L.append(f"[{k}] {tidy(v)}")
    srv = R.get("server")
    if isinstance(srv, dict) and "nginx" in srv:
        L.append(f"[server] {tidy(srv['nginx']['argv'])}")
        if "tarn serve" in srv:
            L.append(f"[server] {tidy(srv['tarn serve']['argv'])}")
    svp = R.get("server-pinned")
    if isinstance(svp, dict) and "nginx" in svp:
        L.append(f"[server-pinned] taskset -a -p -c 0 <server pids>; {tidy(svp['nginx']['argv'])}")
    if isinstance(sp, dict) and "argv" in sp:
        L.append(f"[server-put] {tidy(sp['argv'])}")
    L.append("```")
    L.append("\nThe curl config files follow Lake (`url = \"…\"` / `-o \"…\"` pairs for downloads, "
             "`-T \"…\"` / `url = \"…\"` pairs for uploads, Lean `String.quote`d). curl 7.88 needs "
             "`-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'` for SigV4 uploads; Lake's command "
             "is otherwise unchanged. The curl upload is followed by the single revision-file "
             "PUT, as Lake does.\n")
    return "\n".join(L)



def render_deps(blob):
    """BENCHMARKS.md's `get --deps` section, from a full run's results or from the
    deps-results.json of an `--only deps` run."""
    d = blob["results"]["deps"]
    L = ["## 7. get --deps: a whole workspace's dependencies\n",
         f"The Mathlib-shaped workspace (`tarn-fixture --workspace`): {d['packages']} dependencies "
         f"(seven Reservoir packages and one git-only), {d['modules']} modules each, published with "
         "`tarn put --package P --repo OWNER/REPO` to a counting HTTP server (Python's "
         "`ThreadingHTTPServer`, the same for both), fetched into a cold cache. "
         f"{blob['runs']} runs after one warm-up, alternating; build: `{blob.get('profile', 'release')}`.\n",
         "| contender | wall s, median [min–max] | HTTP requests | peak RSS MB |",
         "|---|---|---|---|"]
    cs = d["contenders"]
    for c in cs:
        if c.get("wall"):
            w = c["wall"]
            L.append(f"| {c['name']} | {w['median']:.2f} [{w['min']:.2f}–{w['max']:.2f}] | "
                     f"{c['requests']['median']:.0f} | {c['rss_mb']['median']:.1f} |")
        else:
            L.append(f"| {c['name']} | FAILED: {c.get('error')} | | |")
    if len(cs) == 2 and cs[0].get("wall") and cs[1].get("wall"):
        L.append(f"\nwall A/B = {cs[0]['wall']['median'] / cs[1]['wall']['median']:.3f} "
                 f"(A = {cs[0]['name']}, B = {cs[1]['name']}).\n")
    L.append("```")
    for c in cs:
        L.append(f"[deps] {c['command']}")
    L.append("```\n")
    return L

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small fixture, fewer runs (development)")
    ap.add_argument("--only", help="comma-separated: get,serve-get,put,verify,stage,server,trust,deps")
    ap.add_argument("--runs", type=int, help="measured rounds per comparison (default 5; quick 3)")
    ap.add_argument("--modules", type=int, help="fixture size (default 8900; quick 800)")
    ap.add_argument("--bench-dir", default=os.environ.get("TARN_BENCH_DIR", "/tmp/tarn-bench"))
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--render-only", action="store_true",
                    help="re-render BENCHMARKS.md from the bench dir's results.json, run nothing")
    args = ap.parse_args()
    if args.render_only:
        blob = json.loads((Path(args.bench_dir) / "results.json").read_text())
        (REPO / "BENCHMARKS.md").write_text(with_other_sections(render(blob), REPO / "BENCHMARKS.md"))
        log(f"wrote {REPO / 'BENCHMARKS.md'}")
        return
    for b in (TARN, FIXTURE):
        if not b.exists():
            sys.exit(f"{b} missing: run scripts/bench.sh (it builds the release binaries)")
    bench = Bench(args)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    try:
        bench.run()
    except KeyboardInterrupt:
        bench.servers.stop_all()
        log("interrupted; servers stopped")
        sys.exit(130)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Run every command shown in tarn's documentation (scripts/doc-test.sh is the entry point).

    scripts/doc_test.py --bin DIR [--keep] [FILE.md ...]     (default: README.md docs/*.md)

What it does with each fenced block of a Markdown file:

  ```sh / ```bash / ```shell / ```console
      run. A block is one bash script, run in a fresh scratch directory (see "The world a block
      runs in"), command by command; the first command that exits non-zero fails the block,
      reported as FILE:LINE with the command and its output. A block whose lines start with
      `$ ` is a transcript: those lines are the commands and the lines after each one are its
      expected output (stdout and stderr), compared exactly.
  ```toml / ```json
      parsed (tomllib / json); a parse error fails it, with the line.
  anything else (```yaml: docs/ci.md checks those against the tested files; ```rust; plain ```)
      not touched.

Markers (an HTML comment on the lines right before a block; the reason is required):

  <!-- doc-test: skip — REASON -->                  the whole block is not run
  <!-- doc-test: skip-line "TEXT" — REASON -->      commands containing TEXT are not run (each
                                                    marker must match at least one command)
  <!-- doc-test: no-lake-config — REASON -->        run without the prepared Lake configuration
                                                    (for a block that writes its own)

A marker that is malformed, has no reason, or is not followed by a block is an error.

The world a block runs in (one fresh copy per block, so blocks are independent, as copy-pasted):

  * HOME: an empty directory except
      ~/.cache/lake          Lake's default cache, holding the fixture's build outputs;
      ~/.lake/config.toml    Lake's system configuration, the SERVICES below (not with
                             no-lake-config). LAKE_CONFIG, LAKE_CACHE_DIR, XDG_*, ELAN_* unset.
  * the working directory: a Mathlib-shaped Lake workspace from `tarn-fixture --workspace`
    (git repositories for the root and eight dependencies, lean-toolchain, lake-manifest.json),
    with the root made an ordinary package (no platformIndependent / fixedToolchain), plus
    build.jsonl and outputs.jsonl (the root's mappings), staging/ (`tarn stage` of them),
    f, f.olean and f.lean.
  * PATH: the freshly built tarn and tarn-fixture first, then the system's.
  * a `tarn serve` on 127.0.0.1 (a free port) started by this script, holding the fixture's
    outputs for the scopes in SEEDS; every endpoint URL in the docs is substituted by its URL.
  * `tarn serve` lines (the server itself, not gc/scrub) run in the background with
    `--listen 127.0.0.1:0` until the server says it is listening and GET /healthz answers
    200 (its storage works), then are stopped.

Exit status: 0 when nothing failed, 1 otherwise; 2 for a usage error.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- Placeholders: text in the docs -> what runs here. Applied to every shell block (and to
# nothing else), in one pass (an earlier entry first where two match at one place). {url}: the local server; {rev}: the fixture root's HEAD;
# {key}: the upload key id:secret; {scratch}: the block's scratch directory; {s3_*}: the S3
# server scripts/doc-test.sh provides (S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY).
PLACEHOLDERS = [
    ("cargo run --release --bin tarn --", "tarn"),   # the freshly built binary, not a release build
    ("<rev>", "{rev}"),                               # a commit of the package
    ("https://cache.example.org", "{url}"),          # a tarn serve / R2 public URL
    ("https://cache.example.com", "{url}"),
    ("http://cache.internal:7070", "{url}"),
    ("https://<ACCOUNT_ID>.r2.cloudflarestorage.com/<BUCKET>", "{url}"),   # R2's S3 API
    ("https://lake-cache.s3.eu-west-1.amazonaws.com", "{url}"),            # AWS S3
    ("<R2 access key id>:<R2 secret access key>", "{key}"),
    ("LAKE_CACHE_KEY=id:secret", "LAKE_CACHE_KEY={key}"),
    ("tarn:<secret>", "{key}"),                       # the key tarn serve printed
    ("https://s3.example.com", "{s3_endpoint}"),     # a bucket for tarn serve's objects:
    ("--s3-bucket lake-cache", "--s3-bucket {s3_bucket}"),   # s3s-fs (scripts/s3-test-server.sh)
    ("<bucket key id>", "{s3_key}"),
    ("<bucket secret>", "{s3_secret}"),
    ("/var/lib/tarn", "{scratch}/var/lib/tarn"),     # a server's data directory (seeded)
    ("/tmp/", "{scratch}/tmp/"),                      # nothing is written to the real /tmp
]

# ---- Variables the docs use as if the reader (or CI) had set them.
def doc_env(url, rev, key_id, secret):
    return {
        "ACCESS_KEY_ID": key_id, "SECRET_ACCESS_KEY": secret,            # an S3 / R2 key
        "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
        "GITHUB_SHA": rev,                                                # CI's commit
        "RESERVOIR_API_URL": f"{url}/api/v1",   # Reservoir: the local server's Reservoir API
    }

# ---- Services the docs name, all at the local server (~/.lake/config.toml of each block).
SERVICES = ["team", "tarn", "my-s3", "s3", "r2", "r2-upload"]
DEFAULT_UPLOAD_SERVICE = "team"   # no default download service: Reservoir, as for a new user

KEY_ID, KEY_SECRET = "doc-test", "doc-test-secret"
BLOCK_TIMEOUT = 180        # seconds
SHELL_LANGS = {"sh", "bash", "shell", "console"}

MARKER = re.compile(r"<!--\s*doc-test:(.*?)-->", re.S)
MARKER_BODY = re.compile(
    r'^\s*(skip-line\s+"([^"]+)"|skip|no-lake-config)\s*(?:—|--|:|-)\s*(\S.*?)\s*$', re.S)
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")


class DocError(Exception):
    """A problem with a Markdown file itself (a bad marker, an unclosed fence): where, what."""

    def __init__(self, where, what):
        super().__init__(f"{where}: {what}")
        self.where, self.what = where, what


def parse_markdown(path, text):
    """The fenced blocks of one file: dicts with lang, line (of the first content line),
    lines, and the markers right before it."""
    blocks, pending = [], []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if m:
            indent, fence, lang = m.groups()
            start = i + 1
            j = start
            while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence))
                                          and lines[j].strip().strip(fence[0]) == ""):
                j += 1
            if j == len(lines):
                raise DocError(f"{path}:{i + 1}", f"fence {fence} is never closed")
            body = [l[len(indent):] if l.startswith(indent) else l for l in lines[start:j]]
            blocks.append({"lang": lang.lower(), "line": start + 1, "lines": body,
                           "markers": pending})
            pending = []
            i = j + 1
            continue
        if "<!--" in line and "doc-test:" in line:
            # A marker may span lines; read up to its end.
            chunk, k = line, i
            while "-->" not in chunk and k + 1 < len(lines):
                k += 1
                chunk += "\n" + lines[k]
            for mm in MARKER.finditer(chunk):
                body = MARKER_BODY.match(mm.group(1))
                if not body:
                    raise DocError(
                        f"{path}:{i + 1}", f"bad doc-test marker {mm.group(0)!r}: expected "
                        '`skip — REASON`, `skip-line "TEXT" — REASON` or `no-lake-config — REASON`')
                kind = body.group(1).split()[0]
                pending.append({"kind": kind, "text": body.group(2), "reason": body.group(3),
                                "line": i + 1})
            i = k + 1
            continue
        if pending and line.strip() and not line.strip().startswith("<!--"):
            raise DocError(f"{path}:{pending[0]['line']}", "doc-test marker not followed by a block")
        i += 1
    if pending:
        raise DocError(f"{path}:{pending[0]['line']}", "doc-test marker not followed by a block")
    return blocks


def shell_commands(block):
    """(md_line, command_text, expected_output_or_None) for each command of a shell block."""
    lines, first = block["lines"], block["line"]
    cmds = []
    if any(l.startswith("$ ") for l in lines):            # a transcript
        cur = None
        for n, l in enumerate(lines):
            if l.startswith("$ "):
                cur = [first + n, l[2:], []]
                cmds.append(cur)
            elif cur is not None:
                cur[2].append(l)
        return [(n, c, "\n".join(out).rstrip("\n") + "\n" if out else "") for n, c, out in cmds]
    n = 0
    while n < len(lines):
        start, text = n, lines[n]
        while text.endswith("\\") and n + 1 < len(lines):  # continuation lines
            n += 1
            text += "\n" + lines[n]
        here = re.search(r"<<-?\s*(['\"]?)(\w+)\1", text)
        if here:                                           # a here-document
            end = here.group(2)
            while n + 1 < len(lines) and lines[n].strip() != end:
                n += 1
                text += "\n" + lines[n]
        n += 1
        if text.strip() and not text.strip().startswith("#"):
            cmds.append((first + start, text, None))
    return cmds


def substitute(text, values):
    # One pass: what a placeholder became is never matched again (the scratch directory may
    # itself lie under /tmp/, as in a checkout under /tmp). At one place the earlier entry wins.
    table = {old: new.format(**values) for old, new in reversed(PLACEHOLDERS)}
    pattern = "|".join(re.escape(old) for old, _ in PLACEHOLDERS)
    return re.sub(pattern, lambda m: table[m.group(0)], text)


SERVE = re.compile(r"^(\s*)(tarn serve)(?!\s+(gc|scrub|help)\b)(?![^\n#]*(--help|-h)\b)")

PRELUDE = r"""
doc_test_serve() {   # a long-running `tarn serve ...`: until it listens and /healthz answers 200, then stop it
  local log args=() a skip=0
  log=$(mktemp "$DOC_SCRATCH/serve.XXXXXX")
  for a in "$@"; do
    if [ "$skip" = 1 ]; then args+=(127.0.0.1:0); skip=0; continue; fi
    case "$a" in --listen) args+=("$a"); skip=1 ;; --listen=*) args+=(--listen=127.0.0.1:0) ;; *) args+=("$a") ;; esac
  done
  case " ${args[*]} " in *" --listen "*|*" --listen="*) ;; *) args+=(--listen 127.0.0.1:0) ;; esac
  "${args[@]}" >"$log" 2>&1 &
  local pid=$! i
  for i in $(seq 1 300); do
    grep -q 'listening on' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q 'listening on' "$log" || ! kill -0 "$pid" 2>/dev/null; then
    cat "$log"; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; echo "doc-test: the server did not start (args: ${args[*]})"; return 1
  fi
  local url ok=0
  url=$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | cut -d' ' -f3)
  curl -fsS --max-time 10 "$url/healthz" || ok=$?
  kill "$pid"; wait "$pid" 2>/dev/null || true
  cat "$log"
  [ "$ok" = 0 ] || { echo "doc-test: GET $url/healthz failed (the server cannot reach its storage)"; return 1; }
}
"""


def block_script(block, cmds, values, skipped_lines, expect_dir):
    """The bash script for one block; each command is checked and announced in the log."""
    out = ["set -u", PRELUDE]
    for k, (line, cmd, expected) in enumerate(cmds):
        if line in skipped_lines:
            continue
        cmd = substitute(cmd, values)
        cmd = SERVE.sub(r"\1doc_test_serve \2", cmd)
        out.append(f"printf '%s\\n' {shquote('### doc-test line ' + str(line) + ': ' + cmd.splitlines()[0])}")
        if expected is None:
            out.append(cmd)
            out.append(f"__rc=$?; if [ $__rc -ne 0 ]; then echo \"doc-test: exit $__rc\"; "
                       f"echo {line} >\"$DOC_FAILED\"; exit 1; fi")
        else:
            exp = os.path.join(expect_dir, f"expected-{k}")
            with open(exp, "w") as f:
                f.write(expected)
            got = exp.replace("expected-", "got-")
            out.append("{\n" + cmd + f"\n}} >{shquote(got)} 2>&1")
            out.append(f"__rc=$?; cat {shquote(got)}; if [ $__rc -ne 0 ]; then echo \"doc-test: exit $__rc\"; "
                       f"echo {line} >\"$DOC_FAILED\"; exit 1; fi")
            out.append(f"if ! diff -u --label shown --label actual {shquote(exp)} {shquote(got)}; then echo 'doc-test: output differs "
                       f"from the one shown (- shown, + actual)'; echo {line} >\"$DOC_FAILED\"; exit 1; fi")
    return "\n".join(out) + "\n"


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


class World:
    """The fixture (made once) and the local server; each block gets a copy of the fixture."""

    def __init__(self, bin_dir, work, keep=False):
        self.bin = bin_dir
        self.keep = keep
        self.work = work
        self.path = f"{bin_dir}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        self.server = None
        # The S3 server for `tarn serve --s3-endpoint` examples (scripts/doc-test.sh starts it).
        s3 = {k: os.environ.get(f"S3_{k}", f"<S3_{k} not set>")
              for k in ("ENDPOINT", "BUCKET", "ACCESS_KEY", "SECRET_KEY")}
        self.s3 = {"s3_endpoint": s3["ENDPOINT"], "s3_bucket": s3["BUCKET"],
                   "s3_key": s3["ACCESS_KEY"], "s3_secret": s3["SECRET_KEY"]}

    def env(self, home, extra=None):
        keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TERM", "USER", "LOGNAME",
                                           "CARGO_HOME", "RUSTUP_HOME") if k in os.environ}
        env = dict(keep, PATH=self.path, HOME=home, TMPDIR=os.path.join(home, "..", "tmp"),
                   GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
                   GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
        env.update(extra or {})
        return env

    def make_fixture(self):
        fx = os.path.join(self.work, "fixture")
        run(["tarn-fixture", "--workspace", "--modules", "3", "--out", fx],
            env=self.env(self.work))
        ws = os.path.join(fx, "workspace")
        # An ordinary package: revision URLs of `--repo` carry the platform and toolchain.
        lf = os.path.join(ws, "lakefile.lean")
        with open(lf) as f:
            text = f.read()
        text = re.sub(r"\n\s*(platformIndependent|fixedToolchain) := true", "", text)
        with open(lf, "w") as f:
            f.write(text)
        genv = self.env(self.work, {"GIT_AUTHOR_NAME": "doc-test", "GIT_AUTHOR_EMAIL": "d@t",
                                    "GIT_COMMITTER_NAME": "doc-test", "GIT_COMMITTER_EMAIL": "d@t"})
        run(["git", "-C", ws, "commit", "-qam", "an ordinary package"], env=genv)
        with open(os.path.join(ws, ".git", "info", "exclude"), "a") as f:
            f.write("/build.jsonl\n/outputs.jsonl\n/staging/\n/f\n/f.olean\n/f.lean\n")
        for name in ("build.jsonl", "outputs.jsonl"):
            shutil.copyfile(os.path.join(fx, "mappings", "mathlib.jsonl"), os.path.join(ws, name))
        for name, data in (("f", b"hello"), ("f.olean", b"olean bytes"), ("f.lean", b"def x := 1\n")):
            with open(os.path.join(ws, name), "wb") as f:
                f.write(data)
        cenv = self.env(self.work, {"LAKE_CACHE_DIR": os.path.join(fx, "cache")})
        run(["tarn", "-q", "stage", "build.jsonl", "staging"], cwd=ws, env=cenv)
        self.fixture = fx
        self.rev = run(["git", "-C", ws, "rev-parse", "HEAD"]).stdout.strip()
        with open(os.path.join(ws, "lake-manifest.json")) as f:
            self.deps = json.load(f)["packages"]

    def start_server(self, data):
        """`tarn serve` on a free port of 127.0.0.1, over DATA; sets self.url."""
        log = open(data + ".log", "w")
        self.server = subprocess.Popen(
            ["tarn", "serve", "--data", data, "--listen", "127.0.0.1:0",
             "--key", f"{KEY_ID}:{KEY_SECRET}"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env(self.work))
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(log.name) as f:
                m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", f.read())
            if m:
                self.url = m.group(1)
                log.close()
                return
            if self.server.poll() is not None:
                break
            time.sleep(0.05)
        log.close()
        with open(log.name) as f:
            raise RuntimeError("tarn serve did not start:\n" + f.read())

    def stop_server(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def lake_config(self):
        lines = [f'cache.defaultUploadService = "{DEFAULT_UPLOAD_SERVICE}"', ""]
        for s in SERVICES:
            lines += ["[[cache.service]]", f'name = "{s}"', 'kind = "s3"',
                      f'artifactEndpoint = "{self.url}/a0"', f'revisionEndpoint = "{self.url}/r0"', ""]
        return "\n".join(lines)

    def seed(self):
        """The server data every block starts from: the fixture's outputs where the docs'
        downloads look."""
        self.seed_data = os.path.join(self.work, "server-seed")
        self.start_server(self.seed_data)
        home = os.path.join(self.work, "seed-home")
        os.makedirs(os.path.join(home, ".lake"))
        with open(os.path.join(home, ".lake", "config.toml"), "w") as f:
            f.write(self.lake_config())
        ws = os.path.join(self.fixture, "workspace")
        env = self.env(home, {"LAKE_CACHE_DIR": os.path.join(self.fixture, "cache"),
                              "LAKE_CACHE_KEY": f"{KEY_ID}:{KEY_SECRET}"})
        puts = [["build.jsonl", "--scope", "my-scope"]]
        for d in self.deps:
            m = re.search(r"[/:]([^/:]+)/([^/]+?)(\.git)?/?$", d["url"])
            mappings = os.path.join(self.fixture, "mappings", d["name"] + ".jsonl")
            # `tarn get --deps`: the repository scope of its git URL.
            puts.append([mappings, "--package", d["name"], "--repo", f"{m.group(1)}/{m.group(2)}"])
            # Reservoir (`tarn get`, `--package`): packages/<scope>/<name>, no platform or
            # toolchain part.
            if d.get("scope"):
                puts.append([mappings, "--package", d["name"], "--scope", f"{d['scope']}/{d['name']}"])
        for p in puts:
            run(["tarn", "-q", "put", *p, "--service", "team"], cwd=ws, env=env)
        self.stop_server()

    def block_dir(self, n, lake_config):
        """A fresh copy of the fixture for block n: (scratch, home, cwd)."""
        scratch = os.path.join(self.work, f"block-{n}")
        home = os.path.join(scratch, "home")
        os.makedirs(os.path.join(home, ".cache"))
        os.makedirs(os.path.join(scratch, "tmp"))
        shutil.copytree(os.path.join(self.fixture, "cache"), os.path.join(home, ".cache", "lake"),
                        symlinks=True)
        cwd = os.path.join(scratch, "work")
        shutil.copytree(os.path.join(self.fixture, "workspace"), cwd, symlinks=True)
        shutil.copytree(self.seed_data, os.path.join(scratch, "server"), symlinks=True)
        # /var/lib/tarn in the docs is an existing server's data directory (maintenance
        # commands refuse one that does not exist): a second copy of the seeded data, which no
        # running server uses.
        shutil.copytree(self.seed_data, os.path.join(scratch, "var", "lib", "tarn"),
                        symlinks=True)
        self.start_server(os.path.join(scratch, "server"))
        if lake_config:
            os.makedirs(os.path.join(home, ".lake"))
            with open(os.path.join(home, ".lake", "config.toml"), "w") as f:
                f.write(self.lake_config())
        return scratch, home, cwd


def check_data_block(path, block, stats, failures):
    text = "\n".join(block["lines"]) + "\n"
    try:
        if block["lang"] == "toml":
            tomllib.loads(text)
        else:
            json.loads(text)
        stats["parsed"] += 1
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        line = block["line"] + (getattr(e, "lineno", 1) or 1) - 1
        m = re.search(r"at line (\d+)", str(e))
        if block["lang"] == "toml" and m:
            line = block["line"] + int(m.group(1)) - 1
        failures.append((f"{path}:{line}", f"```{block['lang']} block does not parse", str(e)))


def run_shell_block(world, path, block, n, stats, failures):
    markers = block["markers"]
    skip = [m for m in markers if m["kind"] == "skip"]
    if skip:
        stats["skipped_blocks"] += 1
        print(f"  skip  {path}:{block['line']}: {skip[0]['reason']}")
        return
    cmds = shell_commands(block)
    skipped_lines = set()
    for m in (m for m in markers if m["kind"] == "skip-line"):
        hit = [line for line, cmd, _ in cmds if m["text"] in cmd]
        if not hit:
            failures.append((f"{path}:{m['line']}", f'skip-line "{m["text"]}" matches no command '
                             "of the block after it", ""))
            return
        skipped_lines.update(hit)
        stats["skipped_lines"] += len(hit)
        for line in hit:
            print(f"  skip  {path}:{line}: {m['reason']}")
    lake_config = not any(m["kind"] == "no-lake-config" for m in markers)
    scratch, home, cwd = world.block_dir(n, lake_config)
    values = {"url": world.url, "rev": world.rev, "key": f"{KEY_ID}:{KEY_SECRET}",
              "scratch": scratch, **world.s3}
    script = block_script(block, cmds, values, skipped_lines, scratch)
    with open(os.path.join(scratch, "block.sh"), "w") as f:
        f.write(script)
    failed_file = os.path.join(scratch, "failed-line")
    env = world.env(home, doc_env(world.url, world.rev, KEY_ID, KEY_SECRET))
    env.update(DOC_SCRATCH=scratch, DOC_FAILED=failed_file, TMPDIR=os.path.join(scratch, "tmp"))
    t0 = time.time()
    try:
        p = subprocess.run(["bash", os.path.join(scratch, "block.sh")], cwd=cwd, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=BLOCK_TIMEOUT, start_new_session=True)
        log, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        log, rc = (e.stdout or b"").decode(errors="replace") + \
            f"\ndoc-test: timed out after {BLOCK_TIMEOUT}s", 1
    finally:
        world.stop_server()
    failed_line = None
    if os.path.exists(failed_file):
        with open(failed_file) as f:
            failed_line = int(f.read().strip() or block["line"])
    if not world.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    dt = time.time() - t0
    if rc == 0:
        stats["run"] += 1
        print(f"  ok    {path}:{block['line']} ({len(cmds) - len(skipped_lines)} commands, {dt:.1f}s)")
        return
    line = failed_line or block["line"]
    # The failing command's own output: the log after its announcement.
    marker = f"### doc-test line {line}: "
    part = log[log.rfind(marker):] if marker in log else log
    head, _, rest = part.partition("\n")
    command = head[len(marker):] if head.startswith(marker) else ""
    for l, c, _ in cmds:
        if l == line:
            command = c
    failures.append((f"{path}:{line}", command, rest))
    print(f"  FAIL  {path}:{block['line']} ({dt:.1f}s)")


def main(argv):
    bin_dir, keep, files = None, False, []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--bin" and args:
            bin_dir = os.path.abspath(args.pop(0))
        elif a == "--keep":
            keep = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a.startswith("-"):
            print(f"doc-test: unknown option {a}", file=sys.stderr)
            return 2
        else:
            files.append(a)
    if not bin_dir:
        print("doc-test: --bin DIR (holding tarn and tarn-fixture) is required", file=sys.stderr)
        return 2
    if not files:
        files = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(
            os.path.join(ROOT, "docs")) if f.endswith(".md"))
    t0 = time.time()
    stats = dict(run=0, parsed=0, skipped_blocks=0, skipped_lines=0)
    failures = []
    parsed = []
    for path in files:
        try:
            with open(path if os.path.isabs(path) else os.path.join(ROOT, path),
                      encoding="utf-8") as f:
                parsed.append((path, parse_markdown(path, f.read())))
        except DocError as e:
            failures.append((e.where, e.what, ""))
        except (OSError, UnicodeDecodeError) as e:
            failures.append((str(path), "cannot read it", str(e)))
    base = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                        "tarn-test")
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"doc-test-{os.getpid()}-", dir=base)
    world = World(bin_dir, work, keep)
    try:
        needs_world = any(b["lang"] in SHELL_LANGS for _, bs in parsed for b in bs)
        if needs_world:
            world.make_fixture()
            world.seed()
            print(f"doc-test: fixture and server data ready in {time.time() - t0:.1f}s")
        n = 0
        for path, blocks in parsed:
            for block in blocks:
                if block["lang"] in ("toml", "json"):
                    check_data_block(path, block, stats, failures)
                elif block["lang"] in SHELL_LANGS:
                    n += 1
                    run_shell_block(world, path, block, n, stats, failures)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
        out = getattr(e, "stdout", "") or ""
        failures.append(("doc-test setup", " ".join(getattr(e, "cmd", []) or []), f"{e}\n{out}"))
    finally:
        world.stop_server()
        if keep:
            print(f"doc-test: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for where, what, output in failures:
        print(f"\ndoc-test: FAILED {where}: {what}", file=sys.stderr)
        if output.strip():
            lines = output.rstrip().splitlines()
            if len(lines) > 60:
                lines = [f"... ({len(lines) - 60} lines before)"] + lines[-60:]
            print("  " + "\n  ".join(lines), file=sys.stderr)
    print(f"doc-test: {stats['run']} blocks run, {stats['parsed']} toml/json parsed, "
          f"{stats['skipped_blocks']} blocks + {stats['skipped_lines']} lines skipped, "
          f"{len(failures)} failed, {time.time() - t0:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

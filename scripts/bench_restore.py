#!/usr/bin/env python3
"""Restore benchmark (issue 22): unpacking N Lake module archives into a build directory.

Side by side, in one run, on the same archives and a warm page cache:
  (a) Lake's way: one `leantar -C <lib>/A/B -C <ir>/A/B -x <archive>` process per module,
      as many at once as there are cores (Lake runs module jobs in parallel);
  (b) Mathlib's way: one `leantar -x -j -` over every archive (JSON list with base arrays);
  (c) `tarn restore MAPPINGS` into an empty build directory;
  (d) `tarn restore MAPPINGS` again (everything up to date: nothing is written).
Prints each median, the ratios (a)/(c) and (b)/(c), the CPU seconds (user + system, from the
kernel) of each way, with (c)'s split between leantar (run through a wrapper that logs its
`wait4` usage) and tarn itself, the wall-time floor that leantar's CPU alone sets on this many
cores, and the peak RSS of `tarn restore` from `wait4` (tarn or its largest leantar). Each way
starts on an empty build directory after `sync`, so none pays for writing back or deleting the
previous way's files.

With --overlap, also (same run, each from a cold cache: an empty cache directory and build
directory) against a local `tarn serve` whose data directory holds the archives:
  (g) `tarn get MAPPINGS` alone;
  (r) `tarn restore MAPPINGS` alone, from the cache (g) filled;
  (o) `tarn get MAPPINGS --restore`, which restores while it downloads;
and the ratio (o) / max((g), (r)) (goal <= 1.3). The archives are
packed once by the real leantar with Lake's command line from the real oleans in
tests/data/ltar: each archive has the real lgz-compressed olean record of a committed test
archive (three oleans for two modules in three, one for the rest) and its own trace, `.ilean`,
`.ir` and `.c` (varied sizes) as zstd entries (stored blocks: writing 9,000 archives at zstd
level 19 takes hours here). Written once into --dir and reused.

usage: bench_restore.py --tarn BIN --leantar BIN [--modules 9000] [--runs 3] [--dir DIR]
                        [--prepare-only] [--ways abcd] [--overlap]
"""
import argparse
import concurrent.futures
import json
import os
import random
import resource
import shutil
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M = 0xC6A4A7935BD1E995
MASK = (1 << 64) - 1


def lake_hash(data):
    """MurmurHash64A, seed 11: Lake's content hash of a file."""
    h = (11 ^ (len(data) * M)) & MASK
    n = len(data) // 8
    for (k,) in struct.iter_unpack('<Q', data[: n * 8]):
        k = (k * M) & MASK
        k ^= k >> 47
        k = (k * M) & MASK
        h ^= k
        h = (h * M) & MASK
    rest = data[n * 8:]
    if rest:
        for i in range(len(rest) - 1, -1, -1):
            h ^= rest[i] << (8 * i)
        h = (h * M) & MASK
    h ^= h >> 47
    h = (h * M) & MASK
    h ^= h >> 47
    return '%016x' % h


def module_name(i):
    # Mathlib-like nesting: Bench.A<i/1000>.B<i/50>.M<i>
    return 'Bench.A%d.B%d.M%d' % (i // 1000, i // 50, i)


def raw_zstd(data):
    """A zstd frame holding `data` in raw (stored) blocks: valid input for any zstd decoder."""
    out = bytearray(b'\x28\xb5\x2f\xfd')
    out.append(0xE0)  # single segment, 8-byte content size, no checksum, no dictionary id
    out += struct.pack('<Q', len(data))
    chunks = [data[i:i + 128 * 1024] for i in range(0, len(data), 128 * 1024)] or [b'']
    for k, chunk in enumerate(chunks):
        last = 1 if k == len(chunks) - 1 else 0
        out += struct.pack('<I', last | (len(chunk) << 3))[:3]
        out += chunk
    return bytes(out)


def olean_records(path):
    """The olean record (kind 1 or 5: lgz payload) of a real archive: (kind, payload bytes)."""
    b = open(path, 'rb').read()
    pos = 4 + 8
    pos = b.index(b'\0', pos) + 1          # trace path
    kind = b[pos]; pos += 1
    (n,) = struct.unpack_from('<Q', b, pos); pos += 8 + n
    pos += 1                                # base
    pos = b.index(b'\0', pos) + 1          # first olean name
    kind = b[pos]; pos += 1
    if kind == 5:
        for _ in range(2):
            pos += 1
            pos = b.index(b'\0', pos) + 1
    (n,) = struct.unpack_from('<Q', b, pos)
    return kind, b[pos:pos + 8 + n]


def make_archive(i, templates, olean_hashes):
    """Module i's archive in Lake's layout: the real lgz olean payload of the committed test
    archives, and zstd (stored) entries for its own trace, .ilean, .ir and .c."""
    name = module_name(i)
    last = name.split('.')[-1]
    rng = random.Random(i)
    module_system = i % 3 != 0
    kind, payload = templates[module_system]
    files = {}
    if module_system:
        files['ir'] = ('IR %s ' % name).encode() * rng.randint(10, 2000)
    files['ilean'] = json.dumps({'directImports': [], 'module': name, 'references': {},
                                 'version': 5}, separators=(',', ':')).encode()
    body = ''.join('lean_object* l_%s_%d(lean_object* x) { return x; }\n' % (last, k)
                   for k in range(rng.randint(5, 800)))
    files['c'] = ('// Lean compiler output\n// Module: %s\n%s' % (name, body)).encode()
    d = {e: lake_hash(v) + '.' + e for e, v in files.items()}
    oleans = ['olean', 'olean.server', 'olean.private'] if module_system else ['olean']
    outputs = {'c': d['c'], 'i': d['ilean'], 'm': module_system,
               'o': [olean_hashes[e] + '.' + e for e in oleans]}
    if 'ir' in d:
        outputs['r'] = d['ir']
    input_hash = 0xB000000000000000 + i
    trace = json.dumps({'schemaVersion': '2025-09-10', 'depHash': '%016x' % input_hash,
                        'outputs': outputs}, separators=(',', ':')).encode()
    out = bytearray(b'LTR3')
    out += struct.pack('<Q', input_hash)
    out += (last + '.trace').encode() + b'\0'
    z = raw_zstd(trace)
    out += b'\0' + struct.pack('<Q', len(z)) + z
    out += b'\0' + (last + '.olean').encode() + b'\0' + bytes([kind])
    if kind == 5:
        out += b'\0' + (last + '.olean.server').encode() + b'\0'
        out += b'\0' + (last + '.olean.private').encode() + b'\0'
    out += payload
    for ext, base in (('ilean', 0), ('ir', 0), ('c', 1)):
        if ext in files:
            z = raw_zstd(files[ext])
            out += bytes([base]) + (last + '.' + ext).encode() + b'\0\0'
            out += struct.pack('<Q', len(z)) + z
    return '%016x' % input_hash, bytes(out)


def prepare(leantar, work, n):
    stamp = os.path.join(work, 'modules.json')
    if os.path.exists(stamp):
        mods = json.load(open(stamp))
        if len(mods) == n:
            return mods
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, 'cache', 'artifacts'))
    data = os.path.join(ROOT, 'tests', 'data', 'ltar')
    templates = {True: olean_records(os.path.join(data, 'archives', 'a74d1ed7ffcb58c4.ltar')),
                 False: olean_records(os.path.join(data, 'archives', '311447e8cf024e29.ltar'))}
    exp = os.path.join(data, 'expected', 'lib', 'lean', 'Plausible')
    olean_hashes = {e: lake_hash(open(os.path.join(exp, 'Attr.' + e), 'rb').read())
                    for e in ('olean', 'olean.server', 'olean.private')}
    print('writing %d archives into %s (once)' % (n, work), flush=True)
    mods = []
    for i in range(n):
        input_hash, archive = make_archive(i, templates, olean_hashes)
        art = lake_hash(archive) + '.ltar'
        open(os.path.join(work, 'cache', 'artifacts', art), 'wb').write(archive)
        mods.append((i, input_hash, art, len(archive)))
    json.dump(mods, open(stamp, 'w'))
    return mods


class Usage:
    """Wall time, and from the kernel (`wait4`): CPU seconds (user + system) of the process and
    every descendant it waited for, and the peak RSS of the process or its largest descendant."""

    def __init__(self, wall=0.0, cpu=0.0, maxrss_kb=0):
        self.wall, self.cpu, self.maxrss_kb = wall, cpu, maxrss_kb


def timed_usage(cmd, input=None, **kw):
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stdin=subprocess.PIPE if input is not None else None, **kw)
    if input is not None:
        p.stdin.write(input)
        p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return Usage(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss)


def timed(cmd, **kw):
    return timed_usage(cmd, **kw).wall


LEANTAR_WRAPPER = """#!/usr/bin/env python3
# Runs the real leantar and appends its CPU seconds and peak RSS (from wait4) to a log: the
# benchmark's split of (c)'s CPU between leantar and tarn itself.
# The wrapper's own CPU (Python's start-up) is logged too: it is neither leantar's nor tarn's.
import os, resource, sys
pid = os.fork()
if pid == 0:
    os.execv(%(leantar)r, [%(leantar)r] + sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
me = resource.getrusage(resource.RUSAGE_SELF)
with open(%(log)r, 'a') as f:
    f.write('%%f %%d %%f\\n' %% (ru.ru_utime + ru.ru_stime, ru.ru_maxrss,
                                  me.ru_utime + me.ru_stime))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def leantar_wrapper(leantar, work):
    """A wrapper script for $LEANTAR that logs each run's CPU and RSS; returns (path, log)."""
    path = os.path.join(work, 'leantar-usage')
    log = os.path.join(work, 'leantar-usage.log')
    with open(path, 'w') as f:
        f.write(LEANTAR_WRAPPER % {'leantar': os.path.abspath(leantar), 'log': log})
    os.chmod(path, 0o755)
    return path, log


def logged_usage(log):
    """(leantar's CPU seconds, its largest peak RSS in KB, the wrapper's own CPU seconds) over
    the runs in a wrapper's log; clears it."""
    cpu, rss, wrapper = 0.0, 0, 0.0
    if os.path.exists(log):
        for line in open(log):
            c, r, w = line.split()
            cpu += float(c)
            rss = max(rss, int(r))
            wrapper += float(w)
        os.remove(log)
    return cpu, rss, wrapper


def met(ok):
    return 'MET' if ok else 'NOT MET'


def fresh(build):
    """Removes the build directory, then flushes the file systems (`sync`), so that the next
    way does not pay for writing back or deleting the previous way's files."""
    shutil.rmtree(build, ignore_errors=True)
    os.sync()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class LocalServe:
    """`tarn serve` on a free 127.0.0.1 port over a data directory holding the archives as
    `a0/<scope>/<hash>.art` (plain files: the server's local layout), and a Lake config naming
    it as the S3 service `bench`. Stopped (its own PID) by `stop`."""

    SCOPE = 'bench/restore'

    def __init__(self, tarn, work, mods):
        data = os.path.join(work, 'serve-data')
        arts = os.path.join(data, 'a0', *self.SCOPE.split('/'))
        os.makedirs(arts, exist_ok=True)
        for _, _, art, _ in mods:
            dst = os.path.join(arts, art[:-len('.ltar')] + '.art')
            if not os.path.exists(dst):
                src = os.path.join(work, 'cache', 'artifacts', art)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        port = free_port()
        self.url = 'http://127.0.0.1:%d' % port
        self.log = open(os.path.join(work, 'serve.log'), 'wb')
        self.proc = subprocess.Popen([tarn, 'serve', '--data', data, '--listen',
                                      '127.0.0.1:%d' % port], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.config = os.path.join(work, 'lake-config.toml')
        with open(self.config, 'w') as f:
            f.write('[[cache.service]]\nname = "bench"\nkind = "s3"\n'
                    'artifactEndpoint = "%s/a0"\nrevisionEndpoint = "%s/r0"\n'
                    % (self.url, self.url))
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(('127.0.0.1', port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError('tarn serve did not start (see %s)' % self.log.name)
                time.sleep(0.1)

    def cpu(self):
        """The server's CPU seconds so far (user + system, from /proc/<pid>/stat)."""
        fields = open('/proc/%d/stat' % self.proc.pid).read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tarn', required=True)
    ap.add_argument('--leantar', required=True)
    ap.add_argument('--modules', type=int, default=9000)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--dir', default=os.path.join(ROOT, 'target', 'bench-restore'))
    ap.add_argument('--prepare-only', action='store_true', help='pack the archives and stop')
    ap.add_argument('--ways', default=None,
                    help='which of (a) (b) (c) (d) to run (default all, none with --overlap; '
                         '(d) needs (c))')
    ap.add_argument('--overlap', action='store_true',
                    help='also get alone, restore alone and get --restore from a cold cache '
                         'against a local tarn serve')
    a = ap.parse_args()
    if a.ways is None:
        a.ways = '' if a.overlap else 'abcd'
    mods = prepare(a.leantar, a.dir, a.modules)
    if a.prepare_only:
        return
    total = sum(m[3] for m in mods)
    cache = os.path.join(a.dir, 'cache')
    ws = os.path.join(a.dir, 'ws')
    build = os.path.join(ws, '.lake', 'build')
    mapping = os.path.join(a.dir, 'outputs.jsonl')
    with open(mapping, 'w') as f:
        f.write('"2026-03-17"\n')
        for _, inp, art, _ in mods:
            f.write('["%s","%s"]\n' % (inp, art))
    os.makedirs(ws, exist_ok=True)
    open(os.path.join(ws, 'lakefile.toml'), 'w').write('name = "bench"\n')

    def bases(i):
        parts = module_name(i).split('.')
        sub = os.path.join(*parts[:-1])
        return os.path.join(build, 'lib', 'lean', sub), os.path.join(build, 'ir', sub)

    def lake_way():
        # One process per module, `nproc` at a time, as Lake's parallel module jobs.
        args = []
        for i, _, art, _ in mods:
            lib, ir = bases(i)
            args.append([a.leantar, '-C', lib, '-C', ir, '-x', os.path.join(cache, 'artifacts', art)])
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as ex:
            list(ex.map(lambda c: subprocess.run(c, check=True), args))

    def mathlib_way():
        items = [{'file': os.path.join(cache, 'artifacts', art), 'base': list(bases(i))}
                 for i, _, art, _ in mods]
        return timed_usage([a.leantar, '-x', '-j', '-'], input=json.dumps(items).encode())

    env = dict(os.environ, LEANTAR=a.leantar)
    wrapper, wrapper_log = leantar_wrapper(a.leantar, a.dir)
    logged_usage(wrapper_log)
    tarn_cmd = [a.tarn, '--cache-dir', cache, '-d', ws, 'restore', mapping]
    results = {k: [] for k in ('a', 'b', 'c', 'd') if k in a.ways}
    if a.overlap:
        serve = LocalServe(a.tarn, a.dir, mods)
        for k in 'gro':
            results[k] = []
        cold = os.path.join(a.dir, 'cold-cache')
        get_env = dict(env, LAKE_CONFIG=serve.config)
        get_cmd = [a.tarn, '--cache-dir', cold, '-d', ws, 'get', mapping, '--service', 'bench',
                   '--scope', LocalServe.SCOPE]
    rss = 0
    cpu = {k: [] for k in ('a', 'b', 'c', 'c_leantar', 'g', 'r', 'o')}  # (c): without the wrapper's own
    leantar_rss = 0
    for run in range(a.runs):
        if a.overlap:
            # CPU of each: the client and its leantars (wait4) plus the server's own.
            shutil.rmtree(cold, ignore_errors=True)
            fresh(build)
            s0 = serve.cpu()
            u = timed_usage(get_cmd, env=get_env)
            results['g'].append(u.wall)
            cpu['g'].append(u.cpu + serve.cpu() - s0)
            os.sync()
            u = timed_usage([a.tarn, '--cache-dir', cold, '-d', ws, 'restore', mapping], env=env)
            results['r'].append(u.wall)
            cpu['r'].append(u.cpu)
            shutil.rmtree(cold, ignore_errors=True)
            fresh(build)
            s0 = serve.cpu()
            u = timed_usage(get_cmd + ['--restore'], env=get_env)
            results['o'].append(u.wall)
            cpu['o'].append(u.cpu + serve.cpu() - s0)
        for key, fn in (('a', lake_way), ('b', mathlib_way)):
            if key not in a.ways:
                continue
            fresh(build)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.monotonic()
            fn()
            results[key].append(time.monotonic() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[key].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if 'c' in a.ways:
            fresh(build)
            # leantar through the logging wrapper: (c)'s CPU split between leantar and tarn.
            u = timed_usage(tarn_cmd, env=dict(env, LEANTAR=wrapper))
            results['c'].append(u.wall)
            cpu['c'].append(u.cpu)
            lt_cpu, lt_rss, wrapper_cpu = logged_usage(wrapper_log)
            cpu['c'][-1] -= wrapper_cpu
            cpu['c_leantar'].append(lt_cpu)
            rss = max(rss, u.maxrss_kb)
            leantar_rss = max(leantar_rss, lt_rss)
        if 'd' in a.ways:
            results['d'].append(timed(tarn_cmd, env=env))
        print('run %d: %s' % (run + 1, ', '.join('%s %.2fs' % (k, v[-1]) for k, v in results.items())),
              flush=True)
    if a.overlap:
        serve.stop()
        shutil.rmtree(cold, ignore_errors=True)
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
    nan = float('nan')
    for k in 'abcdgro':
        med.setdefault(k, nan)
    commit = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'],
                            capture_output=True, text=True).stdout.strip()
    leantar_v = subprocess.run([a.leantar, '--version'], capture_output=True, text=True).stdout.strip()
    print()
    print('restore benchmark: %d modules, %.1f MB of archives, %d cores, %s, commit %s, median of %d'
          % (len(mods), total / 1e6, os.cpu_count(), leantar_v, commit, a.runs))
    cmed = {k: sorted(v)[len(v) // 2] for k, v in cpu.items() if v}
    cores = os.cpu_count()
    if a.ways:
        print('(a) Lake: one leantar per module   %8.2fs' % med['a'])
        print('(b) Mathlib: one leantar -x -j -    %8.2fs' % med['b'])
        print('(c) tarn restore, empty build dir   %8.2fs' % med['c'])
        print('(d) tarn restore again (no-op)      %8.2fs' % med['d'])
        print('ratios: a/c = %.2f (goal >= 5: %s), b/c = %.2f (goal >= 1: %s)'
              % (med['a'] / med['c'], met(med['a'] / med['c'] >= 5),
                 med['b'] / med['c'], met(med['b'] / med['c'] >= 1)))
        print('peak RSS (wait4 of tarn: tarn or its largest leantar) %.0f MB (goal <= 150 MB: %s); '
              'largest leantar %.0f MB' % (rss / 1024, met(rss / 1024 <= 150), leantar_rss / 1024))
        if 'c' in cmed:
            tarn_own = cmed['c'] - cmed['c_leantar']
            print('CPU seconds (user+sys, median): a %.2f, b %.2f, c %.2f = leantar %.2f + tarn %.2f'
                  % (cmed.get('a', nan), cmed.get('b', nan), cmed['c'], cmed['c_leantar'], tarn_own))
            print('floor of (c) on %d cores from its CPU alone: %.2fs (leantar alone %.2fs); '
                  'best a/c from CPU: %.2f'
                  % (cores, cmed['c'] / cores, cmed['c_leantar'] / cores,
                     med['a'] / (cmed['c_leantar'] / cores) if cmed['c_leantar'] else nan))
            if 'b' in cmed:
                spare = cores * med['b'] - cmed['c_leantar']
                print('(c) no slower than (b): (b) took %.2f CPU-s in %.2fs on %d cores, so (c) has '
                      '%.2f core-s beside its leantar work for tarn\'s own %.2f CPU-s'
                      % (cmed['b'], med['b'], cores, spare, tarn_own))
    if a.overlap:
        print('(g) tarn get alone, cold cache      %8.2fs' % med['g'])
        print('(r) tarn restore alone              %8.2fs' % med['r'])
        print('(o) tarn get --restore, cold cache  %8.2fs' % med['o'])
        longer = max(med['g'], med['r'])
        print('ratio: o / max(g, r) = %.2f (goal <= 1.3: %s); o / (g + r) = %.2f'
              % (med['o'] / longer, met(med['o'] / longer <= 1.3), med['o'] / (med['g'] + med['r'])))
        print('CPU seconds (user+sys, median; client, its leantars and the server): '
              'g %.2f, r %.2f, o %.2f' % (cmed['g'], cmed['r'], cmed['o']))
        print('floor of (o) on %d cores from its CPU alone: %.2fs, so o / max(g, r) >= %.2f; '
              'from (g)+(r) CPU: %.2fs, >= %.2f'
              % (cores, cmed['o'] / cores, cmed['o'] / cores / longer,
                 (cmed['g'] + cmed['r']) / cores, (cmed['g'] + cmed['r']) / cores / longer))
    print('load average at the end: %.2f %.2f %.2f' % os.getloadavg())


if __name__ == '__main__':
    main()

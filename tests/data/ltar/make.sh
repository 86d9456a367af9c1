#!/usr/bin/env bash
# Regenerates the .ltar test data in this directory (run from anywhere; needs python3 and
# leantar: $LEANTAR or scripts/leantar.sh). Deterministic: zstd level 19 output does not vary
# between runs of the same leantar, so a rerun reproduces the committed bytes.
#
# Real oleans: Plausible's `Plausible.Attr` (a module-system module) from leangz's own test
# data (tests/module/ in the source tarball). The .ilean, .ir and .c beside them are small
# stand-ins with the right shape (the ilean's "module" field, the C header's `// Module:`).
# Each module is packed with exactly Lake's command line (Lake/Build/Module.lean,
# Module.packLtar), unpacked again by the same leantar into expected/, and named by its hash.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
leantar=$("$root/scripts/leantar.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$root/tests/data/leangz-0.1.19-bc36c61.tar.gz" -C "$work" leangz-0.1.19/tests/module
oleans=$work/leangz-0.1.19/tests/module
rm -rf "$here/archives" "$here/expected"
mkdir -p "$here/archives" "$here/expected"
python3 - "$here" "$oleans" "$work" "$leantar" <<'PY'
import json, os, shutil, struct, subprocess, sys
here, oleans, work, leantar = sys.argv[1:]
M = 0xc6a4a7935bd1e995; MASK = (1 << 64) - 1
def lake_hash(data, seed=11):
    # MurmurHash64A, seed 11: Lake's content hash of a file.
    h = (seed ^ (len(data) * M)) & MASK
    n = len(data) // 8
    for i in range(n):
        k = (struct.unpack_from('<Q', data, i * 8)[0] * M) & MASK
        k ^= k >> 47; k = (k * M) & MASK
        h ^= k; h = (h * M) & MASK
    rest = data[n * 8:]
    if rest:
        for i in range(len(rest) - 1, -1, -1):
            h ^= rest[i] << (8 * i)
        h = (h * M) & MASK
    h ^= h >> 47; h = (h * M) & MASK; h ^= h >> 47
    return '%016x' % h
def read(name):
    return open(os.path.join(oleans, name), 'rb').read()
# (module, input hash, is module-system, files by extension)
modules = [
    ('Plausible.Attr', '57289f38c9016500', True),
    ('Plausible.Gen.Basic', '1f2e3d4c5b6a7988', False),
]
mapping = ['"2026-03-17"']
for name, input_hash, is_module in modules:
    parts = name.split('.')
    last, subdir = parts[-1], os.path.join(*parts[:-1])
    lib = os.path.join(work, 'build', 'lib', 'lean', subdir)
    ir = os.path.join(work, 'build', 'ir', subdir)
    os.makedirs(lib, exist_ok=True); os.makedirs(ir, exist_ok=True)
    files = {'olean': read('Attr.olean')}
    if is_module:
        files['olean.server'] = read('Attr.olean.server')
        files['olean.private'] = read('Attr.olean.private')
        files['ir'] = b'IR\x00' + name.encode() + b'\x00' + bytes(range(64))
    files['ilean'] = json.dumps({'directImports': [], 'module': name, 'references': {},
                                 'version': 5}, separators=(',', ':')).encode()
    files['c'] = ('// Lean compiler output\n// Module: %s\n// Imports: Init\n'
                  '#include <lean/lean.h>\n' % name).encode()
    for ext, data in files.items():
        d = ir if ext == 'c' else lib
        open(os.path.join(d, last + '.' + ext), 'wb').write(data)
    h = {ext: lake_hash(data) + '.' + ext for ext, data in files.items()}
    outputs = {'m': is_module,
               'o': [h[e] for e in ('olean', 'olean.server', 'olean.private') if e in h],
               'i': h['ilean'], 'c': h['c']}
    if 'ir' in h:
        outputs['r'] = h['ir']
    trace = {'synthetic': False, 'schemaVersion': '2025-09-10', 'outputs': outputs,
             'log': [], 'inputs': [['Module.leanArgs: #[]', '00000000000006bb']],
             'depHash': input_hash}
    open(os.path.join(lib, last + '.trace'), 'w').write(json.dumps(trace, indent=1))
    # Lake's Module.packLtar argument shape.
    args = [leantar, '-C', lib, '-C', ir, os.path.join(ir, last + '.ltar'), last + '.trace']
    for ext in ('olean', 'olean.server', 'olean.private', 'ilean', 'ir'):
        if ext in files:
            args += ['-i', '0', last + '.' + ext]
    args += ['-i', '1', last + '.c']
    subprocess.run(args, check=True)
    ltar = open(os.path.join(ir, last + '.ltar'), 'rb').read()
    ltar_name = lake_hash(ltar) + '.ltar'
    open(os.path.join(here, 'archives', ltar_name), 'wb').write(ltar)
    mapping.append(json.dumps([input_hash, ltar_name], separators=(',', ':')))
    # Lake's Module.unpackLtar argument shape, into expected/.
    elib = os.path.join(here, 'expected', 'lib', 'lean', subdir)
    eir = os.path.join(here, 'expected', 'ir', subdir)
    subprocess.run([leantar, '-C', elib, '-C', eir, '-x',
                    os.path.join(here, 'archives', ltar_name)], check=True)
    for ext, data in files.items():
        got = open(os.path.join(eir if ext == 'c' else elib, last + '.' + ext), 'rb').read()
        assert got == data, (name, ext)
open(os.path.join(here, 'outputs.jsonl'), 'w').write('\n'.join(mapping) + '\n')
PY
chmod -R u+w,go+r "$here/expected" "$here/archives"
find "$here/expected" -type f -exec chmod 644 {} +
echo "ltar test data written to $here"

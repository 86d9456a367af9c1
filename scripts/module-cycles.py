#!/usr/bin/env python3
"""Finds module circles: a module that imports a module that imports it back, directly or
through others, inside one crate of the workspace.

Every `crate::…` and `super::…` path in a module's source (in `use` lines and inline) is
resolved to the module it names (the longest module prefix of the path). A module's uses of
its own ancestors or descendants are not counted: a child using its parent's items, and a
parent dispatching to its children, is the layering Rust's module tree is for. Unit-test
modules (`#[cfg(test)] mod tests { … }` at the end of a file) are left out.

Prints each circle (a strongly connected component of two or more modules) with one
reference per edge, and exits 1 if there is any; exits 0 and prints a one-line summary if
there is none. Run by `.ci/run`; alone: `scripts/module-cycles.py [CRATE_DIR ...]`.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_files(src: Path) -> dict:
    """Module path (tuple of names) -> file, for every .rs file below `src`."""
    out = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main") and len(parts) == 1:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        elif len(parts) == 1 and parts[0] != "lib" and (src / "main.rs").exists() and f.parent == src / "bin":
            continue
        if parts and parts[0] == "bin":
            continue
        out[tuple(parts)] = f
    return out


def strip_tests(text: str) -> str:
    """The source without a trailing `#[cfg(test)] mod … { … }` block, and without comments."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    text = re.sub(r"//[^\n]*", "", text)
    return text


def expand_use_groups(text: str) -> list:
    """Every path of every `use` item, with `{a, b::c}` groups expanded."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(re.sub(r"\s+", "", m.group(1))))
    return paths


def expand(tree: str) -> list:
    brace = tree.find("{")
    if brace < 0:
        return [tree.split(" as ")[0]]
    prefix = tree[:brace]
    inner = tree[brace + 1 : tree.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        items.append(cur)
    out = []
    for it in items:
        for p in expand(it):
            out.append(prefix + p if p != "self" else prefix.rstrip(":"))
    return out


def resolve(path: str, here: tuple, modules: dict):
    """The module a `crate::`/`super::`/`self::` path names, or None."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = here
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
        rest = segs
    else:
        return None
    best = None
    for i in range(len(rest) + 1):
        cand = base + tuple(rest[:i])
        if cand in modules:
            best = cand
    return best


def related(a: tuple, b: tuple) -> bool:
    """Whether one module is the other or an ancestor of it."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def crate_edges(src: Path) -> dict:
    modules = module_files(src)
    edges = {m: {} for m in modules}
    for mod, f in modules.items():
        text = strip_tests(f.read_text(encoding="utf-8"))
        paths = expand_use_groups(text)
        paths += re.findall(r"\b(?:crate|super)(?:::\w+)+", text)
        for p in paths:
            target = resolve(p, mod, modules)
            if target is None or related(mod, target):
                continue
            edges[mod].setdefault(target, p)
    return edges


def circles(edges: dict) -> list:
    """Strongly connected components of two or more modules (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def name(m: tuple) -> str:
    return "::".join(m) or "crate"


def main(argv: list) -> int:
    crates = [Path(a) for a in argv] or sorted(p.parent for p in (ROOT / "crates").glob("*/src"))
    found = 0
    modules = 0
    for crate in crates:
        edges = crate_edges(crate / "src")
        modules += len(edges)
        for comp in circles(edges):
            found += 1
            print(f"{crate.name}: a module circle: {', '.join(name(m) for m in comp)}")
            for a in comp:
                for b, via in edges[a].items():
                    if b in comp:
                        print(f"  {name(a)} -> {name(b)} (`{via}`)")
    if found:
        return 1
    print(f"module-cycles: no module circle in {len(crates)} crates ({modules} modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

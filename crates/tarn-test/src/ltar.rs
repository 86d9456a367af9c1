//! Real Lake module archives for tests: the committed ones in `tests/data/ltar/`, the
//! leantar binary (`$LEANTAR`, else built by `scripts/leantar.sh`), and packing new ones with
//! exactly Lake's `Module.packLtar` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use tarn_core::Hash;

/// The repository's root.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/data/ltar/`: archives, `outputs.jsonl`, and leantar's own unpack in `expected/`.
pub fn ltar_data() -> PathBuf {
    repo_root().join("tests/data/ltar")
}

/// The leantar binary: `$LEANTAR`, else `scripts/leantar.sh` (which builds v0.1.19 once from
/// the tarball in `tests/data`). The repository carries leantar's source, so a test never
/// skips for want of it: when it cannot be built, the test fails saying why.
pub fn leantar() -> PathBuf {
    if let Some(p) = std::env::var_os("LEANTAR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let out = Command::new(repo_root().join("scripts/leantar.sh")).output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            panic!("leantar is needed and scripts/leantar.sh failed (set LEANTAR to a leantar 0.1.19 binary): {why}");
        }
    }
}

/// One module's outputs for [`pack_module`]: extension → bytes. Must hold `olean`, `ilean`
/// and `c`; `olean.server` and `olean.private` make it a module-system module.
pub type ModuleBytes = Vec<(&'static str, Vec<u8>)>;

/// Packs module `name` (built for input hash `input`, 16 hex digits) the way Lake does:
/// writes its files and a Lake build trace under `work`, runs
/// `leantar -C <lib>/A/B -C <ir>/A/B <ir>/A/B/C.ltar C.trace -i 0 C.olean … -i 1 C.c`,
/// and returns the archive's bytes.
pub fn pack_module(
    leantar: &Path,
    work: &Path,
    name: &str,
    input: &str,
    files: &ModuleBytes,
) -> Vec<u8> {
    let parts: Vec<&str> = name.split('.').collect();
    let (last, dirs) = parts.split_last().expect("a module name");
    let sub: PathBuf = dirs.iter().collect();
    let lib = work.join("lib").join(&sub);
    let ir = work.join("ir").join(&sub);
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(&ir).unwrap();
    let get = |ext: &str| files.iter().find(|(e, _)| *e == ext).map(|(_, b)| b);
    let descr = |ext: &str| {
        get(ext).map(|b| serde_json::Value::String(format!("{}.{ext}", Hash::of_bytes(b))))
    };
    for (ext, bytes) in files {
        let dir = if matches!(*ext, "c" | "bc") {
            &ir
        } else {
            &lib
        };
        std::fs::write(dir.join(format!("{last}.{ext}")), bytes).unwrap();
    }
    let is_module = get("olean.server").is_some();
    let mut outputs = serde_json::Map::new();
    outputs.insert("m".into(), is_module.into());
    let oleans: Vec<serde_json::Value> = ["olean", "olean.server", "olean.private"]
        .iter()
        .filter_map(|e| descr(e))
        .collect();
    outputs.insert("o".into(), oleans.into());
    for (k, ext) in [("i", "ilean"), ("r", "ir"), ("c", "c"), ("b", "bc")] {
        if let Some(d) = descr(ext) {
            outputs.insert(k.into(), d);
        }
    }
    let trace = serde_json::json!({
        "schemaVersion": "2025-09-10", "depHash": input, "inputs": [],
        "outputs": outputs, "log": [], "synthetic": false,
    });
    std::fs::write(lib.join(format!("{last}.trace")), trace.to_string()).unwrap();
    let ltar = ir.join(format!("{last}.ltar"));
    let mut cmd = Command::new(leantar);
    cmd.arg("-C")
        .arg(&lib)
        .arg("-C")
        .arg(&ir)
        .arg(&ltar)
        .arg(format!("{last}.trace"));
    for ext in ["olean", "olean.server", "olean.private", "ilean", "ir"] {
        if get(ext).is_some() {
            cmd.args(["-i", "0", &format!("{last}.{ext}")]);
        }
    }
    for ext in ["c", "bc"] {
        if get(ext).is_some() {
            cmd.args(["-i", "1", &format!("{last}.{ext}")]);
        }
    }
    let out = cmd.output().expect("run leantar");
    assert!(
        out.status.success(),
        "leantar pack failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&ltar).unwrap()
}

/// Realistic outputs for module `name`: the real Plausible oleans from `tests/data/ltar`
/// (three parts when `module_system`), a `.ilean` naming the module, a `.c` with Lean's
/// header, and `.ir` for module-system modules; `salt` varies the `.c` so archives differ.
pub fn module_bytes(name: &str, module_system: bool, salt: u64) -> ModuleBytes {
    let exp = ltar_data().join("expected/lib/lean/Plausible");
    let read = |f: &str| std::fs::read(exp.join(f)).unwrap();
    let mut files: ModuleBytes = vec![("olean", read("Attr.olean"))];
    if module_system {
        files.push(("olean.server", read("Attr.olean.server")));
        files.push(("olean.private", read("Attr.olean.private")));
    }
    let ilean = serde_json::json!({"directImports": [], "module": name, "references": {},
        "version": 5});
    files.push(("ilean", ilean.to_string().into_bytes()));
    if module_system {
        files.push(("ir", format!("IR {name}").into_bytes()));
    }
    files.push((
        "c",
        format!("// Lean compiler output\n// Module: {name}\n// {salt}\n").into_bytes(),
    ));
    files
}

/// A zstd frame holding `data` in stored (raw) blocks: what any zstd decoder, leantar's
/// included, reads back as `data`. Lets tests make many archives without compressing.
fn stored_zstd(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(128 * 1024).collect()
    };
    for (k, chunk) in chunks.iter().enumerate() {
        let last = u32::from(k + 1 == chunks.len());
        let header = last | ((chunk.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

/// The olean record of a committed test archive: its kind byte (1 or 5) and its payload
/// (length and lgz data), copied as it is into synthetic archives.
fn olean_record(module_system: bool) -> (u8, Vec<u8>) {
    let name = if module_system {
        "a74d1ed7ffcb58c4.ltar"
    } else {
        "311447e8cf024e29.ltar"
    };
    let b = std::fs::read(ltar_data().join("archives").join(name)).unwrap();
    let cstr_end = |from: usize| from + b[from..].iter().position(|&x| x == 0).unwrap() + 1;
    let len_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let mut pos = cstr_end(12) + 1; // trace path, trace kind
    pos += 8 + len_at(pos); // trace payload
    pos = cstr_end(pos + 1); // base, first olean name
    let kind = b[pos];
    pos += 1;
    if kind == 5 {
        pos = cstr_end(cstr_end(pos + 1) + 1);
    }
    (kind, b[pos..pos + 8 + len_at(pos)].to_vec())
}

/// A Lake module archive for `name` packed for input hash `input`, without running leantar:
/// the real lgz olean record of a committed test archive (three oleans when `module_system`)
/// and stored-zstd entries for the trace, `.ilean`, `.ir` and `.c` (from [`module_bytes`]
/// with `salt`). Returns the archive and the module's files (extension, bytes) as leantar
/// unpacks them.
pub fn synth_archive(
    name: &str,
    input: u64,
    module_system: bool,
    salt: u64,
) -> (Vec<u8>, ModuleBytes) {
    let files = module_bytes(name, module_system, salt);
    let last = name.rsplit('.').next().unwrap();
    let descr = |ext: &str| -> Option<String> {
        files
            .iter()
            .find(|(e, _)| *e == ext)
            .map(|(_, b)| format!("{}.{ext}", Hash::of_bytes(b)))
    };
    let oleans: Vec<String> = ["olean", "olean.server", "olean.private"]
        .iter()
        .filter_map(|e| descr(e))
        .collect();
    let mut outputs = serde_json::json!({
        "m": module_system,
        "o": oleans,
        "i": descr("ilean"),
        "c": descr("c"),
    });
    if let Some(r) = descr("ir") {
        outputs["r"] = r.into();
    }
    let trace = serde_json::json!({"schemaVersion": "2025-09-10",
        "depHash": format!("{input:016x}"), "outputs": outputs});
    let mut out = b"LTR3".to_vec();
    out.extend_from_slice(&input.to_le_bytes());
    out.extend_from_slice(format!("{last}.trace\0").as_bytes());
    let z = stored_zstd(trace.to_string().as_bytes());
    out.push(0);
    out.extend_from_slice(&(z.len() as u64).to_le_bytes());
    out.extend_from_slice(&z);
    let (kind, payload) = olean_record(module_system);
    out.extend_from_slice(format!("\0{last}.olean\0").as_bytes());
    out.push(kind);
    if kind == 5 {
        out.extend_from_slice(
            format!("\0{last}.olean.server\0\0{last}.olean.private\0").as_bytes(),
        );
    }
    out.extend_from_slice(&payload);
    for (ext, base) in [("ilean", 0u8), ("ir", 0), ("c", 1)] {
        if let Some((_, bytes)) = files.iter().find(|(e, _)| *e == ext) {
            let z = stored_zstd(bytes);
            out.push(base);
            out.extend_from_slice(format!("{last}.{ext}\0").as_bytes());
            out.push(0);
            out.extend_from_slice(&(z.len() as u64).to_le_bytes());
            out.extend_from_slice(&z);
        }
    }
    (out, files)
}

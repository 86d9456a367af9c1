//! Lake's "up to date" rule for restored modules, checked from the files alone, as an oracle
//! for restore tests. For each module: its `.trace` (at Lake's path) parses as Lake reads it,
//! its `depHash` is the mapping entry's input hash, and every output the trace lists exists,
//! in the build directory (or, for outputs Lake reads from the cache, in the cache's
//! `artifacts/`), with exactly that content hash. Written apart from tarn's own code so that
//! a bug there does not hide here.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tarn_core::Hash;

/// A package's build directories, relative to its directory (Lake's defaults:
/// `.lake/build`, `lib/lean`, `ir`).
#[derive(Debug, Clone)]
pub struct Dirs {
    /// `buildDir`.
    pub build: String,
    /// `leanLibDir`.
    pub lean_lib: String,
    /// `irDir`.
    pub ir: String,
}

impl Default for Dirs {
    fn default() -> Self {
        Dirs {
            build: ".lake/build".into(),
            lean_lib: "lib/lean".into(),
            ir: "ir".into(),
        }
    }
}

impl Dirs {
    /// Lake's path of module `name`'s file with extension `ext`, under `pkg`.
    pub fn path(&self, pkg: &Path, name: &str, ext: &str) -> PathBuf {
        let parts: Vec<&str> = name.split('.').collect();
        let (last, dirs) = parts.split_last().expect("a module name");
        let sub = if matches!(ext, "c" | "bc" | "ltar") {
            &self.ir
        } else {
            &self.lean_lib
        };
        let mut p = pkg.join(&self.build).join(sub);
        for d in dirs {
            p.push(d);
        }
        p.join(format!("{last}.{ext}"))
    }
}

/// Checks one module; returns what breaks Lake's rule (empty: Lake treats it as built).
pub fn lake_rule_problems(
    pkg: &Path,
    dirs: &Dirs,
    module: &str,
    input: &str,
    cache: Option<&Path>,
) -> Vec<String> {
    let trace_path = dirs.path(pkg, module, "trace");
    let text = match std::fs::read_to_string(&trace_path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", trace_path.display())],
    };
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![format!("{}: not JSON: {e}", trace_path.display())],
    };
    let mut problems = Vec::new();
    // Lake: with schemaVersion the depHash is hex, without it decimal.
    let dep = match (&v["schemaVersion"], &v["depHash"]) {
        (Value::String(_), Value::String(h)) => u64::from_str_radix(h, 16).ok(),
        (Value::Null, Value::String(d)) => d.parse().ok(),
        _ => None,
    };
    let want = u64::from_str_radix(input, 16).ok();
    if dep.is_none() || dep != want {
        problems.push(format!(
            "{}: depHash {} is not the input hash {input}",
            trace_path.display(),
            v["depHash"]
        ));
    }
    let mut names = Vec::new();
    collect_strings(&v["outputs"], &mut names);
    if names.is_empty() {
        problems.push(format!("{}: lists no outputs", trace_path.display()));
    }
    for name in names {
        let Some((hash, ext)) = name.split_once('.') else {
            problems.push(format!(
                "{}: output {name:?} has no extension",
                trace_path.display()
            ));
            continue;
        };
        let in_build = dirs.path(pkg, module, ext);
        let found = if in_build.exists() {
            Some(in_build.clone())
        } else {
            cache
                .map(|c| c.join("artifacts").join(&name))
                .filter(|p| p.exists())
        };
        let Some(file) = found else {
            problems.push(format!(
                "{module}: output {name} is neither at {} nor in the cache",
                in_build.display()
            ));
            continue;
        };
        match std::fs::read(&file) {
            Ok(bytes) if Hash::of_bytes(&bytes).hex() == hash => {}
            Ok(bytes) => problems.push(format!(
                "{}: content hash {} but the trace says {hash}",
                file.display(),
                Hash::of_bytes(&bytes)
            )),
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    problems
}

/// Panics with every problem of every `(module, input hash)` pair, reported per module.
pub fn assert_lake_rule(pkg: &Path, dirs: &Dirs, modules: &[(&str, &str)], cache: Option<&Path>) {
    let mut report = Vec::new();
    for (module, input) in modules {
        for p in lake_rule_problems(pkg, dirs, module, input, cache) {
            report.push(format!("{module}: {p}"));
        }
    }
    assert!(
        report.is_empty(),
        "Lake would not accept these modules as built:\n{}",
        report.join("\n")
    );
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

//! A Lean module's place in Lake's build directory, and the `.trace` file Lake keeps beside
//! its outputs (`Lake/Build/Trace.lean`, `Lake/Config/Module.lean`).
//!
//! * Paths: for module `A.B.C` of a package with `buildDir` `B`, the olean parts, `.ilean`,
//!   `.ir` and `.trace` are `<B>/<leanLibDir>/A/B/C.<ext>`; `.c`, `.bc` and `.ltar` are
//!   `<B>/<irDir>/A/B/C.<ext>` ([`BuildLayout`]).
//! * Traces: `BuildMetadata` JSON, schema `2025-09-10`; a fetched module gets
//!   `BuildMetadata.ofFetch` (`synthetic: true`, no inputs, empty log), written with
//!   `Json.pretty` ([`fetch_trace_text`]); Lake reads any of its trace forms back
//!   ([`SavedTrace::parse`]).
//!
//! ```
//! use tarn_core::{BuildLayout, Hash, ModuleName, PackageConfig};
//! let layout = BuildLayout::of(&PackageConfig::default()).unwrap();
//! let m = ModuleName::parse("Mathlib.Data.Nat").unwrap();
//! assert_eq!(layout.output_path(&m, "olean"), std::path::Path::new(".lake/build/lib/lean/Mathlib/Data/Nat.olean"));
//! assert_eq!(layout.output_path(&m, "c"), std::path::Path::new(".lake/build/ir/Mathlib/Data/Nat.c"));
//! ```

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::artifact::ArtifactName;
use crate::config::PackageConfig;
use crate::hash::Hash;

/// `BuildMetadata.schemaVersion`: the trace format Lake writes since 2025-09-10.
pub(crate) const TRACE_SCHEMA: &str = "2025-09-10";
/// Lake's default `buildDir`.
pub(crate) const DEFAULT_BUILD_DIR: &str = ".lake/build";
/// Lake's default `leanLibDir` (relative to the build directory).
pub(crate) const DEFAULT_LEAN_LIB_DIR: &str = "lib/lean";
/// Lake's default `irDir` (relative to the build directory).
pub(crate) const DEFAULT_IR_DIR: &str = "ir";

/// A Lean module name whose components are usable as path components.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleName {
    parts: Vec<String>,
}

/// A module name tarn cannot place in a build directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("module name {name:?}: {reason}")]
pub struct ModuleNameError {
    /// The name as given.
    pub name: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl ModuleName {
    /// Parses `A.B.C`. Components must be non-empty, not `.`/`..`, and free of path
    /// separators, NUL and Lean's `«»` escapes (whose file names tarn does not derive).
    pub fn parse(name: &str) -> Result<ModuleName, ModuleNameError> {
        let bad = |reason| ModuleNameError {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() || name.len() > 4096 {
            return Err(bad("empty or longer than 4096 bytes"));
        }
        let mut parts = Vec::new();
        for part in name.split('.') {
            if part.is_empty() {
                return Err(bad("empty component"));
            }
            if part.contains(['/', '\\', '\0', '«', '»']) || part.chars().any(char::is_control) {
                return Err(bad(
                    "a component holds a path separator, escape or control character",
                ));
            }
            parts.push(part.to_string());
        }
        Ok(ModuleName { parts })
    }

    /// The last component (the file stem Lake gives the module's files).
    pub fn last(&self) -> &str {
        self.parts.last().expect("a module name has a component")
    }

    /// The directory of the module's files relative to a root: `A/B` for `A.B.C`.
    pub(crate) fn dir(&self) -> PathBuf {
        self.parts[..self.parts.len() - 1].iter().collect()
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("."))
    }
}

/// A package's build directories, relative to the package directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLayout {
    /// `buildDir`.
    pub build_dir: PathBuf,
    /// `buildDir/leanLibDir`.
    pub lean_lib_dir: PathBuf,
    /// `buildDir/irDir`.
    pub ir_dir: PathBuf,
}

/// A configured directory that would put files outside the package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` = {value:?}: {reason}")]
pub struct LayoutError {
    /// The option.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn relative_dir(key: &'static str, value: &str) -> Result<PathBuf, LayoutError> {
    let bad = |reason| LayoutError {
        key,
        value: value.to_string(),
        reason,
    };
    let path = Path::new(value);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("`..` would leave the package directory")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("an absolute path would leave the package directory"))
            }
        }
    }
    if key == "buildDir" && out.as_os_str().is_empty() {
        return Err(bad(
            "the build directory cannot be the package directory itself",
        ));
    }
    Ok(out)
}

impl BuildLayout {
    /// The layout of a package's options (Lake's defaults where unset). Absolute paths and
    /// `..` are refused: a restore writes only below the package directory.
    pub fn of(config: &PackageConfig) -> Result<BuildLayout, LayoutError> {
        let build_dir = relative_dir(
            "buildDir",
            config.build_dir.as_deref().unwrap_or(DEFAULT_BUILD_DIR),
        )?;
        let lean_lib = relative_dir(
            "leanLibDir",
            config
                .lean_lib_dir
                .as_deref()
                .unwrap_or(DEFAULT_LEAN_LIB_DIR),
        )?;
        let ir = relative_dir("irDir", config.ir_dir.as_deref().unwrap_or(DEFAULT_IR_DIR))?;
        Ok(BuildLayout {
            lean_lib_dir: build_dir.join(lean_lib),
            ir_dir: build_dir.join(ir),
            build_dir,
        })
    }

    /// Lake's `Module.leanLibDir`: `<leanLibDir>/A/B` for `A.B.C` (leantar's base 0).
    pub fn module_lib_dir(&self, module: &ModuleName) -> PathBuf {
        self.lean_lib_dir.join(module.dir())
    }

    /// Lake's `Module.irDir`: `<irDir>/A/B` for `A.B.C` (leantar's base 1).
    pub fn module_ir_dir(&self, module: &ModuleName) -> PathBuf {
        self.ir_dir.join(module.dir())
    }

    /// Where Lake keeps the module's file with extension `ext` (`trace`, an output, `ltar`).
    pub fn output_path(&self, module: &ModuleName, ext: &str) -> PathBuf {
        let dir = match ext {
            "c" | "bc" | "ltar" => self.module_ir_dir(module),
            _ => self.module_lib_dir(module),
        };
        dir.join(format!("{}.{ext}", module.last()))
    }
}

/// The text of `BuildMetadata.ofFetch inputHash outputs` as `writeFetchTrace` writes it
/// (`Json.pretty`): the trace Lake leaves for a module fetched from the cache.
pub fn fetch_trace_text(input: Hash, outputs: &Value) -> String {
    let v = json!({
        "schemaVersion": TRACE_SCHEMA,
        "depHash": input.hex(),
        "inputs": [],
        "outputs": outputs,
        "log": [],
        "synthetic": true,
    });
    crate::lean_json::pretty(&v)
}

/// A module's output descriptors (`ModuleOutputDescrs.toJson`): `m` (module system), `o`
/// (olean parts in order), `i`, `r` (if any), `c`, `b` (if any), `l` (the archive, if kept).
pub fn module_output_descrs(
    is_module: bool,
    outputs: &[ArtifactName],
    ltar: Option<&ArtifactName>,
) -> Value {
    let find = |ext: &str| outputs.iter().find(|a| a.ext == ext).map(|a| a.file_name());
    let mut obj = Map::new();
    obj.insert("m".into(), Value::Bool(is_module));
    let oleans: Vec<Value> = ["olean", "olean.server", "olean.private"]
        .iter()
        .filter_map(|e| find(e).map(Value::String))
        .collect();
    obj.insert("o".into(), Value::Array(oleans));
    for (key, ext) in [("i", "ilean"), ("r", "ir"), ("c", "c"), ("b", "bc")] {
        if let Some(name) = find(ext) {
            obj.insert(key.into(), Value::String(name));
        }
    }
    if let Some(l) = ltar {
        obj.insert("l".into(), Value::String(l.file_name()));
    }
    Value::Object(obj)
}

/// A trace file as Lake reads it back (`BuildMetadata.fromJson?`).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedTrace {
    /// `depHash`: the input hash the outputs belong to.
    pub dep_hash: Hash,
    /// `outputs`, if any.
    pub outputs: Option<Value>,
    /// `synthetic` (default false).
    pub synthetic: bool,
}

/// A trace Lake would log as invalid (and treat as out of date).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trace: {0}")]
pub struct TraceError(pub String);

impl SavedTrace {
    /// Parses a trace the way Lake does: a JSON number (the oldest stub), an object without
    /// `schemaVersion` whose `depHash` is a decimal string, or an object with one whose
    /// `depHash` is a hex hash. Missing `outputs`/`synthetic` take their defaults.
    pub fn parse(text: &str) -> Result<SavedTrace, TraceError> {
        let v: Value = serde_json::from_str(text).map_err(|e| TraceError(e.to_string()))?;
        match v {
            Value::Number(n) => {
                let dep_hash = n
                    .as_u64()
                    .map(Hash)
                    .ok_or_else(|| TraceError(format!("trace stub {n} is not a u64")))?;
                Ok(SavedTrace {
                    dep_hash,
                    outputs: None,
                    synthetic: false,
                })
            }
            Value::Object(obj) => {
                let dep = obj
                    .get("depHash")
                    .ok_or_else(|| TraceError("no `depHash`".into()))?;
                let dep_hash = if obj.contains_key("schemaVersion") {
                    Hash::from_json(dep)
                } else {
                    dep.as_str().and_then(|s| s.parse::<u64>().ok()).map(Hash)
                }
                .ok_or_else(|| TraceError(format!("bad `depHash` {dep}")))?;
                let outputs = obj.get("outputs").filter(|o| !o.is_null()).cloned();
                let synthetic = match obj.get("synthetic") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => return Err(TraceError(format!("bad `synthetic` {other}"))),
                };
                Ok(SavedTrace {
                    dep_hash,
                    outputs,
                    synthetic,
                })
            }
            _ => Err(TraceError("expected a JSON number or object".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_trace_is_lakes_pretty_of_fetch() {
        let outputs = module_output_descrs(
            true,
            &[
                ArtifactName::parse("3cca31ffa2f465ef.olean").unwrap(),
                ArtifactName::parse("56d5b21498fd7c3f.olean.server").unwrap(),
                ArtifactName::parse("8b675afb28e22dac.olean.private").unwrap(),
                ArtifactName::parse("3b9eae88facf7718.ilean").unwrap(),
                ArtifactName::parse("5663c04e813b1d02.ir").unwrap(),
                ArtifactName::parse("add47f1b668a8843.c").unwrap(),
            ],
            None,
        );
        let text = fetch_trace_text(Hash(0x57289f38c9016500), &outputs);
        // The layout of Lake's own `Json.pretty` trace in leangz's tests/module/Attr.trace
        // (written by Lake v4.25), with `ofFetch`'s fields and the newer `"m"` key.
        let want = r#"{"synthetic": true,
 "schemaVersion": "2025-09-10",
 "outputs":
 {"r": "5663c04e813b1d02.ir",
  "o":
  ["3cca31ffa2f465ef.olean",
   "56d5b21498fd7c3f.olean.server",
   "8b675afb28e22dac.olean.private"],
  "m": true,
  "i": "3b9eae88facf7718.ilean",
  "c": "add47f1b668a8843.c"},
 "log": [],
 "inputs": [],
 "depHash": "57289f38c9016500"}"#;
        assert_eq!(text, want);
        let back = SavedTrace::parse(&text).unwrap();
        assert_eq!(back.dep_hash, Hash(0x57289f38c9016500));
        assert!(back.synthetic);
        assert_eq!(back.outputs, Some(outputs));
    }

    #[test]
    fn every_trace_form_lake_reads() {
        assert_eq!(SavedTrace::parse("12345").unwrap().dep_hash, Hash(12345));
        assert_eq!(
            SavedTrace::parse(r#"{"depHash":"12345"}"#)
                .unwrap()
                .dep_hash,
            Hash(12345)
        );
        let compact = r#"{"schemaVersion":"2025-09-10","depHash":"57289f38c9016500","outputs":{"c":"add47f1b668a8843.c"}}"#;
        let t = SavedTrace::parse(compact).unwrap();
        assert_eq!(t.dep_hash, Hash(0x57289f38c9016500));
        assert!(!t.synthetic);
        for bad in ["[]", "{}", r#"{"depHash":"xyz"}"#, "not json"] {
            assert!(SavedTrace::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn layouts_stay_inside_the_package() {
        let cfg = PackageConfig {
            build_dir: Some("out".into()),
            lean_lib_dir: Some("lean".into()),
            ir_dir: Some("./c".into()),
            ..PackageConfig::default()
        };
        let l = BuildLayout::of(&cfg).unwrap();
        let m = ModuleName::parse("A.B").unwrap();
        assert_eq!(l.output_path(&m, "trace"), Path::new("out/lean/A/B.trace"));
        assert_eq!(l.output_path(&m, "ltar"), Path::new("out/c/A/B.ltar"));
        for (b, ll) in [
            ("../x", "lib"),
            ("/abs", "lib"),
            ("out", "../../etc"),
            (".", "lib"),
        ] {
            let cfg = PackageConfig {
                build_dir: Some(b.into()),
                lean_lib_dir: Some(ll.into()),
                ..PackageConfig::default()
            };
            assert!(BuildLayout::of(&cfg).is_err(), "{b} {ll}");
        }
        for bad in ["", "A..B", "A./B", "A.«x»", ".A"] {
            assert!(ModuleName::parse(bad).is_err(), "{bad}");
        }
    }
}

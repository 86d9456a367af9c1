//! The restore index: which module each archive restored into a build directory belongs to,
//! so that a second restore finds a module's trace without unpacking its archive again.
//! tarn's own file, `<buildDir>/.tarn-restore.json` (format in docs/restore.md):
//!
//! ```json
//! {"schemaVersion": "tarn-restore/1", "modules": {"a74d1ed7ffcb58c4.ltar": "Plausible.Attr"}}
//! ```
//!
//! It is advice, never trusted for content: a module is skipped only if its own trace
//! already has the mapping's input hash and its outputs exist, which is Lake's own rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::place::write_into_place;
use super::RestoreError;
use crate::local_file::{read_local_file, Links, ReadLimit};

/// The index's file name, directly in the build directory.
pub(crate) const RESTORE_INDEX_FILE: &str = ".tarn-restore.json";
/// The version string the index carries.
pub(crate) const RESTORE_INDEX_SCHEMA: &str = "tarn-restore/1";
/// Most bytes of an index read (about 60 bytes per module).
const MAX_INDEX_BYTES: u64 = 64 << 20;

/// Archive file name → module name, for one build directory.
#[derive(Debug, Default)]
pub(crate) struct RestoreIndex {
    path: PathBuf,
    modules: BTreeMap<String, String>,
    changed: bool,
}

impl RestoreIndex {
    /// Loads the index in `build_dir`; missing, unreadable or foreign content gives an empty
    /// index (it only saves work).
    pub(crate) fn load(build_dir: &Path) -> RestoreIndex {
        let path = build_dir.join(RESTORE_INDEX_FILE);
        let limit = ReadLimit {
            bytes: MAX_INDEX_BYTES,
            what: "a restore index",
            env: None,
        };
        let modules = read_local_file(&path, Links::Refuse, &limit)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|v| v["schemaVersion"] == RESTORE_INDEX_SCHEMA)
            .and_then(|v| match v.get("modules") {
                Some(Value::Object(m)) => Some(
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default();
        RestoreIndex {
            path,
            modules,
            changed: false,
        }
    }

    /// The module an archive was restored as, if recorded.
    pub(crate) fn module_of(&self, archive: &str) -> Option<&str> {
        self.modules.get(archive).map(String::as_str)
    }

    /// Records an archive's module.
    pub(crate) fn record(&mut self, archive: String, module: String) {
        if self.modules.get(&archive) != Some(&module) {
            self.modules.insert(archive, module);
            self.changed = true;
        }
    }

    /// Writes the index back if it changed (atomically).
    pub(crate) fn save(&self) -> Result<(), RestoreError> {
        if !self.changed {
            return Ok(());
        }
        let v = serde_json::json!({
            "schemaVersion": RESTORE_INDEX_SCHEMA,
            "modules": self.modules,
        });
        write_into_place(&self.path, &serde_json::to_vec(&v).expect("JSON"))
    }
}

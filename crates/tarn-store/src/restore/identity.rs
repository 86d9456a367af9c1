//! Naming the module an archive holds before anything unpacks it, so that leantar can write
//! straight into the module's own directories: the `// Module: A.B.C` header Lean puts at
//! the top of every `.c` file (only its first few kilobytes are decoded), else the `.ilean`'s
//! `"module"` field (decoded whole, bounded). Either is cross-checked with the files' stem.

use std::io::Read;
use std::path::Path;

use tarn_core::{LtarIndex, LtarKind, ModuleFiles, ModuleName};

use super::RestoreError;

/// Bytes of a `.c` entry decoded to find its header.
const C_HEAD_BYTES: u64 = 4096;

/// The module an archive holds (see the module documentation). `path` names the archive in
/// errors; `limit` bounds the bytes decoded from an `.ilean`.
pub(crate) fn archive_module(
    path: &Path,
    bytes: &[u8],
    index: &LtarIndex,
    files: &ModuleFiles,
    limit: u64,
) -> Result<ModuleName, RestoreError> {
    let bad = |message: String| RestoreError::Identity {
        path: path.to_path_buf(),
        message,
    };
    let stem = &files.stem;
    let entry_text = |ext: &str, max: u64| -> Result<Option<Vec<u8>>, RestoreError> {
        let name = format!("{stem}.{ext}");
        let Some(e) = index
            .entries
            .iter()
            .find(|e| e.kind == LtarKind::Zstd && e.files[0].name == name)
        else {
            return Ok(None);
        };
        let decoder = zstd::stream::read::Decoder::with_buffer(&bytes[e.payload.clone()])
            .map_err(|e| bad(format!("{name}: {e}")))?;
        let mut out = Vec::new();
        match decoder.take(max).read_to_end(&mut out) {
            Ok(_) => Ok(Some(out)),
            // A frame cut short still gives its first bytes; only those are needed here.
            Err(_) if !out.is_empty() && max == C_HEAD_BYTES => Ok(Some(out)),
            Err(e) => Err(bad(format!("{name}: not a zstd frame: {e}"))),
        }
    };
    let from_c = entry_text("c", C_HEAD_BYTES)?.and_then(|head| c_header_module(&head));
    let module = match from_c {
        Some(name) => ModuleName::parse(&name).map_err(|e| bad(format!(".c header: {e}")))?,
        None => {
            let ilean = entry_text("ilean", limit)?
                .ok_or_else(|| bad("neither a .c header nor an .ilean names the module".into()))?;
            ilean_module(path, &ilean)?
        }
    };
    if module.last() != stem {
        return Err(bad(format!(
            "it names module {module}, but its files are {stem}.*"
        )));
    }
    Ok(module)
}

/// The `// Module: A.B.C` line among the first lines of a `.c` file Lean wrote, if any.
pub(crate) fn c_header_module(head: &[u8]) -> Option<String> {
    String::from_utf8_lossy(head)
        .lines()
        .take(4)
        .find_map(|l| l.strip_prefix("// Module: ").map(|m| m.trim().to_string()))
}

/// The module an `.ilean` belongs to (its `"module"` field). The other fields (references,
/// which can be megabytes) are only skipped over, never built into a JSON tree.
pub(crate) fn ilean_module(path: &Path, bytes: &[u8]) -> Result<ModuleName, RestoreError> {
    /// The one field of an `.ilean` that names its module; the others are skipped.
    #[derive(serde::Deserialize)]
    struct IleanHead<'a> {
        #[serde(borrow)]
        module: Option<std::borrow::Cow<'a, str>>,
    }
    let bad = |message: String| RestoreError::Identity {
        path: path.to_path_buf(),
        message,
    };
    // An object, not an array (which serde would also map onto the struct, by position).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad("not an .ilean: not a JSON object".into()));
    }
    let head: IleanHead<'_> =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not an .ilean: {e}")))?;
    let name = head
        .module
        .ok_or_else(|| bad("the .ilean has no \"module\" field".into()))?;
    ModuleName::parse(&name).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(name: &str) -> (std::path::PathBuf, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/ltar/archives")
            .join(name);
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    #[test]
    fn names_real_archives_from_their_zstd_c_header() {
        for (archive, module) in [
            ("a74d1ed7ffcb58c4.ltar", "Plausible.Attr"),
            ("311447e8cf024e29.ltar", "Plausible.Gen.Basic"),
        ] {
            let (path, bytes) = committed(archive);
            let index = LtarIndex::parse(&bytes).unwrap();
            let files = index.module_files().unwrap();
            let named = archive_module(&path, &bytes, &index, &files, 1 << 20).unwrap();
            assert_eq!(named.to_string(), module);
        }
    }

    #[test]
    fn an_archive_without_a_named_module_is_refused() {
        let (path, bytes) = committed("a74d1ed7ffcb58c4.ltar");
        let index = LtarIndex::parse(&bytes).unwrap();
        let mut files = index.module_files().unwrap();
        files.stem = "Other".into();
        let e = archive_module(&path, &bytes, &index, &files, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("names the module"), "{e}");
        assert_eq!(
            c_header_module(b"// Lean compiler output\n// Module: A.B\n").as_deref(),
            Some("A.B")
        );
        assert_eq!(c_header_module(b"int x;\n"), None);
    }
}

//! Reading mapping files from disk, with Lake's warnings naming the file and line.

use std::path::{Path, PathBuf};

use tarn_core::MappingError;
use tarn_core::{ArtifactName, MappingFile};

use crate::error::StoreError;
use crate::local_file::{read_local_file, Links, ReadLimit};

/// A mapping file read from disk.
#[derive(Debug, Clone)]
pub struct LoadedMappings {
    /// Where it was read from.
    pub path: PathBuf,
    /// The exact bytes (a staging directory's `outputs.jsonl` is a byte-identical copy).
    pub bytes: Vec<u8>,
    /// The parsed entries.
    pub file: MappingFile,
    /// One `{path}:{line}: {message}` warning per skipped or suspicious line.
    pub warnings: Vec<String>,
}

impl LoadedMappings {
    /// Every artifact the entries name, or an error naming the file and the entry.
    pub fn artifacts(&self) -> Result<Vec<ArtifactName>, StoreError> {
        self.file.artifacts().map_err(|source| StoreError::Entry {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads and parses a mapping file (a path the user gave: `stage`, `verify`, `add`, ...).
/// It is read through the one bounded, non-blocking reader ([`read_local_file`]): a FIFO,
/// device or directory is refused, and a file over
/// [`Limits::max_mappings_bytes`](tarn_core::Limits) is refused naming
/// `TARN_MAX_MAPPINGS_BYTES`. An unreadable or empty file, or one without a schema header, is
/// an error naming the file; bad lines become warnings.
pub fn read_mappings(path: &Path) -> Result<LoadedMappings, StoreError> {
    let bytes = read_local_file(path, Links::Follow, &mappings_limit())
        .map_err(|e| StoreError::io(path, e))?;
    parse_mappings(path, bytes)
}

/// The bound on a mapping file read from disk, for [`read_local_file`].
pub fn mappings_limit() -> ReadLimit<'static> {
    ReadLimit {
        bytes: crate::limits().max_mappings_bytes,
        what: "a mapping file",
        env: Some(tarn_core::MAX_MAPPINGS_ENV),
    }
}

/// Parses the bytes of the mapping file at `path` (named in messages only).
pub(crate) fn parse_mappings(path: &Path, bytes: Vec<u8>) -> Result<LoadedMappings, StoreError> {
    let parsed = MappingFile::parse(&bytes).map_err(|source| match source {
        MappingError::MissingHeader if bytes.is_empty() => StoreError::EmptyMappings {
            path: path.to_path_buf(),
        },
        source => StoreError::Mappings {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let warnings = parsed
        .warnings
        .iter()
        .map(|w| format!("{}:{}: {}", path.display(), w.line, w.message))
        .collect();
    Ok(LoadedMappings {
        path: path.to_path_buf(),
        bytes,
        file: parsed.file,
        warnings,
    })
}

//! Errors of the local store; each names the file it is about.

use std::path::{Path, PathBuf};

use tarn_core::Hash;

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on a named file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Content whose hash differs from its name.
    #[error("{}: content hash is {actual}, but the name says {expected}", path.display())]
    HashMismatch {
        /// The artifact (or would-be artifact) path.
        path: PathBuf,
        /// The hash in the name.
        expected: Hash,
        /// The hash of the content.
        actual: Hash,
    },
    /// A file whose content cannot be used.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

//! Errors of the local store; each names the file it is about and keeps its cause.

use std::path::{Path, PathBuf};

use tarn_core::Hash;
use tarn_core::OutputParseError;
use tarn_core::{EntryError, MappingError};

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
    /// A file changed while it was read, or between its validation and its use.
    #[error("{}: {source}", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// How it changed.
        source: FileChanged,
    },
    /// A path that had to be a regular file is a symbolic link.
    #[error("{}: is a symbolic link; only regular files are accepted", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A path that had to be a regular file is a directory, FIFO, socket or device.
    #[error("{}: is not a regular file (directory, FIFO, socket or device); only regular files are accepted", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// A file larger than the limit for its kind.
    #[error("{}: larger than the limit of {limit} bytes (raise it with {env})", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
        /// The environment variable that raises it.
        env: String,
    },
    /// An empty mapping file.
    #[error("{}: empty mappings file (expected a schema version on line 1)", path.display())]
    EmptyMappings {
        /// The file.
        path: PathBuf,
    },
    /// A mapping file that cannot be used at all.
    #[error("{}: {source}", path.display())]
    Mappings {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: MappingError,
    },
    /// A mapping-file entry whose outputs do not name artifacts.
    #[error("{}: {source}", path.display())]
    Entry {
        /// The mapping file.
        path: PathBuf,
        /// The entry and what is wrong with it.
        source: EntryError,
    },
    /// An `outputs/` file that is not Lake's JSON.
    #[error("{}: {source}", path.display())]
    Outputs {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: OutputParseError,
    },
    /// A file whose content cannot be used for another reason.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// An I/O error about `path`. An error carrying a [`FileChanged`] (from a hashing read
    /// that saw another length) becomes [`StoreError::Changed`].
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        match FileChanged::in_io(&source) {
            Some(changed) => StoreError::Changed {
                path: path.to_path_buf(),
                source: changed.clone(),
            },
            None => StoreError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// The file or directory the error is about.
    pub(crate) fn path(&self) -> &Path {
        match self {
            StoreError::Io { path, .. }
            | StoreError::HashMismatch { path, .. }
            | StoreError::Changed { path, .. }
            | StoreError::Symlink { path }
            | StoreError::NotRegular { path }
            | StoreError::TooLarge { path, .. }
            | StoreError::EmptyMappings { path }
            | StoreError::Mappings { path, .. }
            | StoreError::Entry { path, .. }
            | StoreError::Outputs { path, .. }
            | StoreError::Invalid { path, .. } => path,
        }
    }

    /// Whether the file changed while it was read or after it was validated (a race with
    /// another writer, not a property of the content).
    pub fn is_file_changed(&self) -> bool {
        matches!(self, StoreError::Changed { .. })
    }
}

/// How a file changed under a reader. It travels inside [`std::io::Error`] through readers
/// that return `io::Result` ([`FileChanged::into_io`]) and is recognised by type
/// ([`FileChanged::find`]), never by its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileChanged {
    /// More or fewer bytes than the length it had when opened.
    #[error("the file changed size while it was read ({expected} bytes expected, {seen} read)")]
    Size {
        /// The length when opened.
        expected: u64,
        /// The bytes read (at most one more than `expected`).
        seen: u64,
    },
    /// The content no longer hashes to what it did when it was checked.
    #[error(
        "the file changed while it was read (its content hash became {actual}, not {expected})"
    )]
    Content {
        /// The hash when checked.
        expected: Hash,
        /// The hash of what was read.
        actual: Hash,
    },
    /// The content still hashes to its Lake name but its SHA-256 changed: someone rewrote it
    /// with a forged 64-bit collision between validation and upload.
    #[error("the file changed while it was read (its SHA-256 became {actual}, not {expected}, with the same Lake hash)")]
    StrongContent {
        /// The SHA-256 (hex) when checked.
        expected: String,
        /// The SHA-256 (hex) of what was read.
        actual: String,
    },
    /// Another file stands at the path validated earlier.
    #[error("the file changed after it was validated (replaced by another file)")]
    Replaced,
}

impl FileChanged {
    /// This condition as an I/O error (for readers that return `io::Result`).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// The condition inside an I/O error made by [`FileChanged::into_io`].
    pub(crate) fn in_io(e: &std::io::Error) -> Option<&FileChanged> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }

    /// The condition anywhere in an error's chain of sources, including inside an
    /// [`std::io::Error`] (which does not list its inner error as a source) or a
    /// [`StoreError`].
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a FileChanged> {
        let mut cur = Some(e);
        while let Some(c) = cur {
            if let Some(found) = c.downcast_ref::<FileChanged>() {
                return Some(found);
            }
            if let Some(found) = c
                .downcast_ref::<std::io::Error>()
                .and_then(FileChanged::in_io)
            {
                return Some(found);
            }
            cur = c.source();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_found_by_type_through_io_errors() {
        let e = FileChanged::Size {
            expected: 4,
            seen: 2,
        }
        .into_io();
        let store = StoreError::io(Path::new("a.olean"), e);
        assert!(store.is_file_changed(), "{store:?}");
        assert_eq!(
            store.to_string(),
            "a.olean: the file changed size while it was read (4 bytes expected, 2 read)"
        );
        let wrapped = std::io::Error::other(FileChanged::Replaced);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(wrapped);
        assert_eq!(FileChanged::find(&*boxed), Some(&FileChanged::Replaced));
        let plain = StoreError::io(Path::new("b"), std::io::Error::other("changed size"));
        assert!(!plain.is_file_changed());
        assert_eq!(FileChanged::find(&plain), None);
    }
}

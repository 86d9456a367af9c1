//! Where objects live: a directory on local disk or an S3-compatible bucket.
//!
//! Keys are `/`-separated strings of *decoded* path components, e.g.
//! `a0/mathlib4/master/0123456789abcdef.art`; every component has been checked by
//! [`valid_component`] before it reaches a backend.

pub(crate) mod local;
pub(crate) mod s3;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use tarn_store::TempFile;

/// Size and modification time of a stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectMeta {
    /// Length in bytes.
    pub len: u64,
    /// Last modification (upload) time.
    pub modified: SystemTime,
}

/// The body of a stored object, ready to be sent.
pub(crate) enum ObjectBody {
    /// Small objects are read whole.
    Bytes(Bytes),
    /// Larger local files are streamed.
    File(tokio::fs::File),
    /// An S3 response streamed through, bounded in time.
    Remote(s3::RemoteBody),
}

/// An object fetched for a GET.
pub(crate) struct Object {
    /// Its metadata.
    pub meta: ObjectMeta,
    /// Its content.
    pub body: ObjectBody,
}

/// An upload body, complete on disk in a temp file, waiting to be published.
pub(crate) struct Spool {
    /// The temp file (deleted if dropped).
    pub temp: TempFile,
    /// Its length.
    pub len: u64,
}

/// How a PUT treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutMode {
    /// Keep an existing object (artifacts: the name is the content hash).
    NoClobber,
    /// Replace it atomically (revision files).
    Replace,
}

/// What a PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    /// A new object was stored.
    Created,
    /// An object with that key was stored already (NoClobber) or has been replaced.
    Existed,
}

/// One listing entry.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// Full key.
    pub key: String,
    /// Metadata.
    pub meta: ObjectMeta,
}

/// The configured backend.
pub(crate) enum Storage {
    /// Files under a directory.
    Local(local::LocalStore),
    /// An S3 bucket.
    S3(Box<s3::S3Store>),
}

impl Storage {
    /// The object `key`, or `None`.
    pub(crate) async fn get(&self, key: &str) -> io::Result<Option<Object>> {
        match self {
            Storage::Local(s) => s.get(key).await,
            Storage::S3(s) => s.get(key).await,
        }
    }

    /// The metadata of `key`, or `None`.
    pub(crate) async fn head(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        match self {
            Storage::Local(s) => s.head(key).await,
            Storage::S3(s) => s.head(key).await,
        }
    }

    /// Publishes a spooled body as `key`: atomically, never exposing a partial object.
    pub(crate) async fn put(
        &self,
        key: &str,
        spool: Spool,
        mode: PutMode,
    ) -> io::Result<PutOutcome> {
        match self {
            Storage::Local(s) => s.put(key, spool, mode).await,
            Storage::S3(s) => s.put(key, spool, mode).await,
        }
    }

    /// Deletes `key`; `Ok(false)` when it was not there ("already gone").
    pub(crate) async fn delete(&self, key: &str) -> io::Result<bool> {
        match self {
            Storage::Local(s) => s.delete(key).await,
            Storage::S3(s) => s.delete(key).await,
        }
    }

    /// Every object whose key starts with `prefix`, sorted by key.
    pub(crate) async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        match self {
            Storage::Local(s) => s.list(prefix).await,
            Storage::S3(s) => s.list(prefix).await,
        }
    }

    /// Whether the backend answers (for `/healthz`).
    pub(crate) async fn healthy(&self) -> bool {
        match self {
            Storage::Local(s) => s.root().is_dir(),
            Storage::S3(s) => s.healthy().await,
        }
    }

    /// Directory for upload spool files (same file system as the objects for local
    /// storage); `None` when the server was opened for maintenance only.
    pub(crate) fn spool_dir(&self) -> Option<&Path> {
        match self {
            Storage::Local(s) => Some(s.spool_dir()),
            Storage::S3(s) => s.spool_dir(),
        }
    }

    /// Removes upload spool files left by killed servers (and, on local disk, temp files
    /// of dead processes next to objects past the grace period); returns how many.
    pub(crate) fn clean_dead_spool(&self) -> usize {
        match self {
            Storage::Local(s) => s.clean_dead_spool(),
            Storage::S3(s) => s.clean_dead_spool(),
        }
    }
}

/// Whether a decoded path component may be part of a key: non-empty, not `.`/`..`, no `/`,
/// NUL or backslash, and not starting with `.tarn-` (reserved for temp files).
pub(crate) fn valid_component(c: &str) -> bool {
    tarn_core::request_target::valid_component(c)
}

/// The default spool directory below a data directory.
pub(crate) fn spool_dir_in(data: &Path) -> PathBuf {
    data.join(".tarn-spool")
}

//! Local-disk backend: `<data>/<key>`; uploads are spooled into `<data>/.tarn-spool/` and
//! published by hard link (no clobber) or rename (replace), so a reader never sees a
//! partial object, whatever happens to the process.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tarn_store::Inserted;
use tarn_store::TEMP_PREFIX;

use super::{Listed, Object, ObjectBody, ObjectMeta, PutMode, PutOutcome, Spool};

/// Objects up to this size are read whole, inline, for a GET.
const INLINE_READ_MAX: u64 = 1 << 20;

/// Files under a data directory.
pub(crate) struct LocalStore {
    root: PathBuf,
    spool: PathBuf,
}

fn meta_of(m: &fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        len: m.len(),
        modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
}

fn not_found_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A path component that is a file (`a/b.art/c`) is also "not there".
        Err(e) if e.raw_os_error() == Some(20) => Ok(None),
        Err(e) => Err(e),
    }
}

impl LocalStore {
    /// A store rooted at `root` (created if needed).
    pub(crate) fn new(root: &Path) -> io::Result<LocalStore> {
        fs::create_dir_all(root)?;
        let spool = super::spool_dir_in(root);
        fs::create_dir_all(&spool)?;
        Ok(LocalStore {
            root: root.to_path_buf(),
            spool,
        })
    }

    /// The data directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The spool directory.
    pub(crate) fn spool_dir(&self) -> &Path {
        &self.spool
    }

    /// The file of `key`.
    pub(crate) fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// See [`super::Storage::get`].
    ///
    /// Small files are opened and read on the calling worker thread: for the usual
    /// page-cache hit that is a few microseconds, far cheaper than a hop to the blocking
    /// pool. Larger files are streamed through `tokio::fs`.
    pub(crate) async fn get(&self, key: &str) -> io::Result<Option<Object>> {
        let path = self.path_of(key);
        let r = (|| {
            let mut f = fs::File::open(&path)?;
            let m = f.metadata()?;
            if !m.is_file() {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            let meta = meta_of(&m);
            if meta.len <= INLINE_READ_MAX {
                // One read of the known length (objects are published whole, never
                // modified in place).
                let mut buf = vec![0u8; meta.len as usize];
                f.read_exact(&mut buf)?;
                Ok((meta, Ok(Bytes::from(buf))))
            } else {
                Ok((meta, Err(f)))
            }
        })();
        Ok(not_found_none(r)?.map(|(meta, body)| Object {
            meta,
            body: match body {
                Ok(b) => ObjectBody::Bytes(b),
                Err(f) => ObjectBody::File(tokio::fs::File::from_std(f)),
            },
        }))
    }

    /// See [`super::Storage::head`].
    pub(crate) async fn head(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        let path = self.path_of(key);
        let r = blocking(move || {
            let m = fs::metadata(&path)?;
            if !m.is_file() {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            Ok(meta_of(&m))
        })
        .await;
        not_found_none(r)
    }

    /// Synchronous existence check (batch API runs many in one blocking task).
    pub(crate) fn exists_sync(&self, key: &str) -> bool {
        fs::metadata(self.path_of(key))
            .map(|m| m.is_file())
            .unwrap_or(false)
    }

    /// See [`super::Storage::put`].
    pub(crate) async fn put(
        &self,
        key: &str,
        spool: Spool,
        mode: PutMode,
    ) -> io::Result<PutOutcome> {
        let dest = self.path_of(key);
        blocking(move || {
            let parent = dest.parent().expect("keys have a directory");
            fs::create_dir_all(parent)?;
            // Make the content durable before its name appears.
            if let Ok(f) = fs::File::open(spool.temp.path()) {
                let _ = f.sync_all();
            }
            let map = |e: tarn_store::StoreError| io::Error::other(e.to_string());
            match mode {
                PutMode::NoClobber => match spool.temp.publish_no_clobber(&dest).map_err(map)? {
                    Inserted::New => Ok(PutOutcome::Created),
                    Inserted::AlreadyPresent => Ok(PutOutcome::Existed),
                },
                PutMode::Replace => {
                    let existed = dest.is_file();
                    spool.temp.publish_replace(&dest).map_err(map)?;
                    Ok(if existed {
                        PutOutcome::Existed
                    } else {
                        PutOutcome::Created
                    })
                }
            }
        })
        .await
    }

    /// See [`super::Storage::delete`].
    pub(crate) async fn delete(&self, key: &str) -> io::Result<bool> {
        let path = self.path_of(key);
        let root = self.root.clone();
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => {
                // Tidy empty directories up to the root (best effort).
                let mut dir = path.parent().map(Path::to_path_buf);
                while let Some(d) = dir {
                    if d == root || fs::remove_dir(&d).is_err() {
                        break;
                    }
                    dir = d.parent().map(Path::to_path_buf);
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        })
        .await
    }

    /// See [`super::Storage::list`].
    pub(crate) async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            // Walk from the deepest directory the prefix names completely.
            let dir_part = match prefix.rfind('/') {
                Some(i) => &prefix[..i],
                None => "",
            };
            if !dir_part.is_empty() && !dir_part.split('/').all(super::valid_component) {
                return Ok(Vec::new());
            }
            let start = if dir_part.is_empty() {
                root.clone()
            } else {
                root.join(dir_part)
            };
            let mut out = Vec::new();
            walk(&root, &start, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    /// Removes spool files of processes that no longer run (a server killed mid-upload);
    /// returns how many. Files of live processes (another server or a `gc`) are kept.
    pub(crate) fn clean_dead_spool(&self) -> usize {
        // Spool files are private to this server: any whose owner is dead (a zombie counts
        // as dead) goes at once. Temp files next to objects wait for the grace period.
        let mut n =
            tarn_store::sweep_dirs(std::slice::from_ref(&self.spool), std::time::Duration::ZERO)
                .removed
                .len();
        if let Ok(leftovers) = self.temp_leftovers() {
            let mut dirs: Vec<PathBuf> = leftovers
                .iter()
                .filter_map(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| *d != self.spool)
                .collect();
            dirs.sort();
            dirs.dedup();
            n += tarn_store::sweep_dirs(&dirs, tarn_store::limits().temp_grace)
                .removed
                .len();
        }
        n
    }

    /// Temp files left in the spool or next to objects (by a killed process).
    pub(crate) fn temp_leftovers(&self) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        fn rec(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
            let rd = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for e in rd {
                let e = e?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                let ft = e.file_type()?;
                if ft.is_dir() {
                    rec(&e.path(), out)?;
                } else if name.starts_with(TEMP_PREFIX) {
                    out.push(e.path());
                }
            }
            Ok(())
        }
        rec(&self.root, &mut out)?;
        Ok(out)
    }
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<Listed>) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(".tarn") {
            continue;
        }
        let path = e.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let Some(key) = rel.to_str() else { continue };
        let ft = e.file_type()?;
        if ft.is_dir() {
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, out)?;
            }
        } else if ft.is_file() && key.starts_with(prefix) {
            if let Ok(m) = e.metadata() {
                out.push(Listed {
                    key: key.to_string(),
                    meta: meta_of(&m),
                });
            }
        }
    }
    Ok(())
}

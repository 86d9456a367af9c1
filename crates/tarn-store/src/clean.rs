//! `clean`: remove the whole cache directory (Lake's `lake cache clean`).

use std::fs;
use std::io;

use crate::cache::Cache;
use crate::error::StoreError;

/// Removes the cache directory and everything in it. Returns `Ok(false)` when there was no
/// cache to delete. Artifacts are read-only files, which does not stop their removal on
/// Unix (only the directory's permissions matter).
pub fn clean(cache: &Cache) -> Result<bool, StoreError> {
    let root = cache.root();
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io(root, e)),
        Ok(m) if !m.is_dir() => {
            return Err(StoreError::Invalid {
                path: root.to_path_buf(),
                message: "not a directory; refusing to delete it".into(),
            })
        }
        Ok(_) => {}
    }
    fs::remove_dir_all(root).map_err(|e| StoreError::io(root, e))?;
    Ok(true)
}

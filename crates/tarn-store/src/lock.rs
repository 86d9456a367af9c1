//! The cache lock: `tarn cache prune` against everything else tarn does to a cache.
//!
//! `<root>/.tarn/lock` is an empty file locked with `flock(2)`. Commands that add to the
//! cache or read artifacts out of it (`get`, `unstage`, `add`, `stage`) hold it *shared*:
//! they may run together, since every write is atomic and nothing is ever removed. A prune
//! holds it *exclusive*, so it never runs during one of them, nor during another prune.
//! The kernel drops the lock when the process dies, so a killed run never leaves the cache
//! locked. Lake does not take this lock; prune's grace period protects Lake's builds.
//!
//! `tarn clean` holds it exclusive too, and removes the cache with the lock file in it. A
//! command that was waiting then holds a lock on a file no longer in the cache, which would
//! not exclude the next command (it creates a new lock file); so a lock is only taken once
//! the file it locked is still the one at `.tarn/lock`, else it is taken again.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::PathBuf;

use crate::cache::{tarn_dir, Cache};
use crate::error::StoreError;

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Writers and readers: many at once.
    Shared,
    /// Prune: alone.
    Exclusive,
}

/// A held cache lock, released on drop (or when the process ends, however it ends).
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl CacheLock {
    /// Takes the lock, waiting for it as long as needed.
    pub fn acquire(cache: &Cache, mode: LockMode) -> Result<CacheLock, StoreError> {
        CacheLock::acquire_file(cache, MAIN_LOCK, mode)
    }

    /// Takes the lock on `<root>/.tarn/<name>` (another lock than the cache lock, e.g. the
    /// usage record's), waiting for it.
    pub(crate) fn acquire_file(
        cache: &Cache,
        name: &str,
        mode: LockMode,
    ) -> Result<CacheLock, StoreError> {
        loop {
            let (file, path) = open_lock_file(cache, name)?;
            flock(&file, mode, true).map_err(|e| StoreError::io(&path, e))?;
            if still_at_path(&file, &path) {
                return Ok(CacheLock { _file: file });
            }
        }
    }

    /// Takes the lock if nobody holds it in a conflicting mode; `Ok(None)` otherwise.
    pub fn try_acquire(cache: &Cache, mode: LockMode) -> Result<Option<CacheLock>, StoreError> {
        loop {
            let (file, path) = open_lock_file(cache, MAIN_LOCK)?;
            match flock(&file, mode, false) {
                Ok(()) if still_at_path(&file, &path) => {
                    return Ok(Some(CacheLock { _file: file }))
                }
                Ok(()) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
    }
}

/// Whether the locked `file` is still the file at `path` (a `tarn clean` may have removed
/// it, and its cache, while we waited).
#[cfg(unix)]
fn still_at_path(file: &File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
        _ => false,
    }
}

/// Elsewhere the lock is advisory only in name (see `flock`).
#[cfg(not(unix))]
fn still_at_path(_file: &File, _path: &std::path::Path) -> bool {
    true
}

/// The cache lock's file in `<root>/.tarn/`.
const MAIN_LOCK: &str = "lock";

fn open_lock_file(cache: &Cache, name: &str) -> Result<(File, PathBuf), StoreError> {
    let dir = tarn_dir(cache);
    fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    Ok((file, path))
}

#[cfg(unix)]
fn flock(file: &File, mode: LockMode, wait: bool) -> io::Result<()> {
    use rustix::fs::FlockOperation as Op;
    let op = match (mode, wait) {
        (LockMode::Shared, true) => Op::LockShared,
        (LockMode::Shared, false) => Op::NonBlockingLockShared,
        (LockMode::Exclusive, true) => Op::LockExclusive,
        (LockMode::Exclusive, false) => Op::NonBlockingLockExclusive,
    };
    loop {
        match rustix::fs::flock(file, op) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Without `flock` the lock is advisory only in name: prune's grace period is the only
/// protection there.
#[cfg(not(unix))]
fn flock(_file: &File, _mode: LockMode, _wait: bool) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_coexist_and_exclude_a_pruner() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let a = CacheLock::acquire(&cache, LockMode::Shared).unwrap();
        let b = CacheLock::try_acquire(&cache, LockMode::Shared).unwrap();
        assert!(b.is_some());
        assert!(CacheLock::try_acquire(&cache, LockMode::Exclusive)
            .unwrap()
            .is_none());
        drop((a, b));
        let _x = CacheLock::try_acquire(&cache, LockMode::Exclusive)
            .unwrap()
            .unwrap();
        assert!(CacheLock::try_acquire(&cache, LockMode::Shared)
            .unwrap()
            .is_none());
    }

    /// A `tarn clean` holds the lock, removes the cache with the lock file, and lets go: a
    /// command that waited meanwhile must hold the lock on the new file, so that it still
    /// excludes the next command (on the removed file it excluded nobody).
    #[test]
    fn a_lock_whose_file_was_removed_while_waiting_is_taken_again() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path().join("cache"));
        let clean = CacheLock::acquire(&cache, LockMode::Exclusive).unwrap();
        let waiter = {
            let cache = cache.clone();
            std::thread::spawn(move || CacheLock::acquire(&cache, LockMode::Exclusive).unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        fs::remove_dir_all(cache.root()).unwrap();
        drop(clean);
        let held = waiter.join().unwrap();
        assert!(
            CacheLock::try_acquire(&cache, LockMode::Shared)
                .unwrap()
                .is_none(),
            "the waiter's lock excludes nobody"
        );
        drop(held);
        assert!(CacheLock::try_acquire(&cache, LockMode::Shared)
            .unwrap()
            .is_some());
    }
}

//! Writing into a package's build directory without leaving it: directories are walked one
//! component at a time and a symbolic link anywhere below the package directory is refused;
//! files arrive by rename (or a temp file in the same directory, then rename), so no file
//! under a final name is ever partial.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::RestoreError;
use crate::cache::TempFile;

/// Test hook for the crash tests: with `TARN_TEST_RESTORE_ABORT_AT=N`, the process aborts
/// (as if killed) right before the N-th change a restore makes to a build directory.
pub(crate) const ABORT_AT_ENV: &str = "TARN_TEST_RESTORE_ABORT_AT";

/// Counts one change about to be made; aborts there if the test hook asks for it.
pub(crate) fn kill_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    static AT: OnceLock<Option<usize>> = OnceLock::new();
    static DONE: AtomicUsize = AtomicUsize::new(0);
    let at = AT.get_or_init(|| {
        std::env::var(ABORT_AT_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = at {
        if DONE.fetch_add(1, Ordering::SeqCst) + 1 == *at {
            std::process::abort();
        }
    }
}

/// Creates `root/rel` (every missing component) and returns it. Each existing component
/// below `root` must be a real directory: a symbolic link (which could point anywhere) or a
/// file is an error naming it. `rel` is relative and has no `..` (a [`tarn_core::BuildLayout`]
/// guarantees that).
pub(crate) fn ensure_dir(root: &Path, rel: &Path) -> Result<PathBuf, RestoreError> {
    ensure_dir_reporting_new(root, rel).map(|(dir, _)| dir)
}

/// [`ensure_dir`], also returning the directories this call made, outermost first (each
/// holds nothing from before this run).
pub(crate) fn ensure_dir_reporting_new(
    root: &Path,
    rel: &Path,
) -> Result<(PathBuf, Vec<PathBuf>), RestoreError> {
    let mut cur = root.to_path_buf();
    let mut made = Vec::new();
    for c in rel.components() {
        let Component::Normal(part) = c else {
            return Err(RestoreError::Io {
                path: root.join(rel),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a plain relative path"),
            });
        };
        cur.push(part);
        if check_dir(&cur, true)? {
            made.push(cur.clone());
        }
    }
    Ok((cur, made))
}

/// Checks that `path` is a directory and not a link; creates it when missing and `create`.
/// Returns whether it was created.
fn check_dir(path: &Path, create: bool) -> Result<bool, RestoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(RestoreError::Symlink {
            path: path.to_path_buf(),
        }),
        Ok(m) if m.is_dir() => Ok(false),
        Ok(_) => Err(RestoreError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
            ),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            match fs::create_dir(path) {
                Ok(()) => Ok(true),
                // Another worker made it meanwhile: check what is there now.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_dir(path, false),
                Err(e) => Err(RestoreError::io(path, e)),
            }
        }
        Err(e) => Err(RestoreError::io(path, e)),
    }
}

/// Removes `path` if it exists (a link is removed, never followed).
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), RestoreError> {
    kill_point();
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RestoreError::io(path, e)),
    }
}

/// Copies `src` to `dest` through a temp file in `dest`'s directory.
pub(crate) fn copy_into_place(src: &Path, dest: &Path) -> Result<(), RestoreError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut temp = TempFile::new_in(dir).map_err(RestoreError::Store)?;
    let mut from = fs::File::open(src).map_err(|e| RestoreError::io(src, e))?;
    io::copy(&mut from, temp.file_mut()).map_err(|e| RestoreError::io(dest, e))?;
    temp.publish_replace(dest).map_err(RestoreError::Store)
}

/// Writes `bytes` to `dest` through a temp file in its directory, then a rename.
pub(crate) fn write_into_place(dest: &Path, bytes: &[u8]) -> Result<(), RestoreError> {
    kill_point();
    use std::io::Write;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut temp = TempFile::new_in(dir).map_err(RestoreError::Store)?;
    temp.file_mut()
        .write_all(bytes)
        .map_err(|e| RestoreError::io(dest, e))?;
    temp.publish_replace(dest).map_err(RestoreError::Store)
}

/// Writes `bytes` to `dest` through `temp`, a file this run's leantar wrote in `dest`'s
/// directory under a name Lake never reads: its contents are replaced, it is made readable by
/// everyone, and it is renamed to `dest`. The same temp file and rename as
/// [`write_into_place`], without creating (and later deleting) a file of its own: on a file
/// system without a journal every file created looks past the files recently deleted near it
/// (ext4's `recently_deleted`), which made creating files most of a restore's own cost.
/// `temp` is opened without following a link or blocking, and must be a regular file.
pub(crate) fn rewrite_into_place(
    temp: &Path,
    bytes: &[u8],
    dest: &Path,
) -> Result<(), RestoreError> {
    kill_point();
    use std::io::Write;
    let io = |e| RestoreError::io(temp, e);
    let mut options = fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut file = options.open(temp).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(io::Error::other("not a regular file")));
    }
    // Overwritten from the start, then cut to length: never truncated to zero first, which
    // makes ext4 (`auto_da_alloc`) write the file out when it is closed.
    file.write_all(bytes).map_err(io)?;
    if meta.len() > bytes.len() as u64 {
        file.set_len(bytes.len() as u64).map_err(io)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    drop(file);
    kill_point();
    fs::rename(temp, dest).map_err(|e| RestoreError::io(dest, e))
}

/// Hard-links `src` (a cached artifact) to `dest`, else copies it; like Lake's
/// `restoreArtifact`. `dest` must not exist.
pub(crate) fn link_or_copy(src: &Path, dest: &Path) -> Result<(), RestoreError> {
    kill_point();
    match fs::hard_link(src, dest) {
        Ok(()) => Ok(()),
        Err(_) => copy_into_place(src, dest),
    }
}

// Symbolic links need privileges on Windows.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn refuses_links_and_files_on_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let made = ensure_dir(root, Path::new("a/b/c")).unwrap();
        assert!(made.is_dir());
        std::os::unix::fs::symlink(tmp.path(), root.join("a/link")).unwrap();
        let e = ensure_dir(root, Path::new("a/link/x")).unwrap_err();
        assert!(matches!(e, RestoreError::Symlink { .. }), "{e}");
        assert!(!root.join("a/link/x").exists());
        fs::write(root.join("a/file"), b"").unwrap();
        assert!(ensure_dir(root, Path::new("a/file/x")).is_err());
    }

    #[test]
    fn rewrite_into_place_reuses_the_temp_file_and_never_follows_a_link() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let (temp, dest) = (tmp.path().join("C.tarn~"), tmp.path().join("C.trace"));
        fs::write(&temp, b"the archive's own trace, longer than the new one").unwrap();
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o600)).unwrap();
        let inode = fs::metadata(&temp).unwrap().ino();
        rewrite_into_place(&temp, b"new trace", &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new trace");
        let meta = fs::metadata(&dest).unwrap();
        // The same file, renamed: nothing created, nothing left behind.
        assert_eq!(meta.ino(), inode);
        assert_eq!(meta.mode() & 0o777, 0o644);
        assert!(!temp.exists());
        // A link in the temp file's place is refused, and what it points to is untouched.
        let target = tmp.path().join("elsewhere");
        fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, &temp).unwrap();
        assert!(rewrite_into_place(&temp, b"x", &dest).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert_eq!(fs::read(&dest).unwrap(), b"new trace");
    }
}

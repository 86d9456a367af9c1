//! A cache directory reached through one open descriptor, for the bulk work of `prune` and
//! `stats`: each file is looked at (`fstatat`), read (`openat`) and removed (`unlinkat`) by
//! its name relative to that descriptor, so a hundred thousand files cost no path walks, and
//! threads can share the descriptor.
//!
//! Files are opened for reading as tarn's own checks open them (`O_NOATIME` where allowed,
//! `O_NOFOLLOW | O_NONBLOCK`, see [`crate::local_file::open_without_touching`]): such a read
//! is not a use and does not move the file in prune's order.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use std::time::{SystemTime, UNIX_EPOCH};

/// An open directory (see the module documentation). Names given to it are single path
/// components taken from a listing of the same directory.
#[derive(Debug)]
pub(crate) struct OpenDir {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl OpenDir {
    /// The path it was opened by (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the regular file `name`, of at most `limit` bytes, with one open and without
    /// touching its access time. Returns its metadata (taken from the open descriptor, before
    /// reading) and its bytes.
    pub(crate) fn read_small(&self, name: &str, limit: u64) -> io::Result<(Metadata, Vec<u8>)> {
        let file = self.open_without_touching(name)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(limit) + 1).unwrap_or(0));
        file.take(limit + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(io::Error::other(format!("larger than {limit} bytes")));
        }
        Ok((meta, bytes))
    }
}

#[cfg(unix)]
impl OpenDir {
    /// Opens the directory at `path` (`O_DIRECTORY`).
    pub(crate) fn open(path: &Path) -> io::Result<OpenDir> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(OpenDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The times of the entry `name`, not following a link.
    pub(crate) fn stamp(&self, name: &str) -> io::Result<FileStamp> {
        let st = rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
        // The field types differ between targets.
        #[allow(clippy::unnecessary_cast)]
        let (a, an, m, mn) = (
            st.st_atime as i64,
            st.st_atime_nsec as u64,
            st.st_mtime as i64,
            st.st_mtime_nsec as u64,
        );
        Ok(FileStamp {
            accessed: nanos(a, an),
            modified: nanos(m, mn),
        })
    }

    /// Removes the file `name`.
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty())?;
        Ok(())
    }

    fn open_without_touching(&self, name: &str) -> io::Result<File> {
        use rustix::fs::{Mode, OFlags};
        let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        #[cfg(target_os = "linux")]
        let fd = match rustix::fs::openat(&self.fd, name, base | OFlags::NOATIME, Mode::empty()) {
            // Not the file's owner: the access time may move; eviction order is a little off.
            Err(rustix::io::Errno::PERM) => rustix::fs::openat(&self.fd, name, base, Mode::empty()),
            r => r,
        }?;
        #[cfg(not(target_os = "linux"))]
        let fd = rustix::fs::openat(&self.fd, name, base, Mode::empty())?;
        Ok(File::from(fd))
    }
}

/// Nanoseconds since the Unix epoch of a kernel time stamp, as [`unix_nanos`]
/// counts them (0 before the epoch, saturating).
#[cfg(unix)]
fn nanos(secs: i64, nsec: u64) -> u64 {
    u64::try_from(secs).map_or(0, |s| s.saturating_mul(1_000_000_000).saturating_add(nsec))
}

#[cfg(not(unix))]
impl OpenDir {
    /// Opens the directory at `path` (on this platform its entries are reached by path).
    pub(crate) fn open(path: &Path) -> io::Result<OpenDir> {
        if !std::fs::metadata(path)?.is_dir() {
            return Err(io::Error::other("not a directory"));
        }
        Ok(OpenDir {
            path: path.to_path_buf(),
        })
    }

    /// The times of the entry `name`, not following a link.
    pub(crate) fn stamp(&self, name: &str) -> io::Result<FileStamp> {
        Ok(FileStamp::of(&std::fs::symlink_metadata(
            self.path.join(name),
        )?))
    }

    /// Removes the file `name`.
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }

    fn open_without_touching(&self, name: &str) -> io::Result<File> {
        crate::local_file::open_without_touching(&self.path.join(name))
    }
}

/// A file's access and modification times as the kernel stamped them, in nanoseconds since
/// the Unix epoch (0 where the system has none). Two stats of a file that nobody used in
/// between give equal stamps; a read (where access times are kept) or a write moves one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FileStamp {
    /// Access time.
    pub accessed: u64,
    /// Modification time.
    pub modified: u64,
}

impl FileStamp {
    /// The stamp of a file's metadata.
    pub(crate) fn of(meta: &Metadata) -> FileStamp {
        FileStamp {
            accessed: meta.accessed().map(unix_nanos).unwrap_or(0),
            modified: meta.modified().map(unix_nanos).unwrap_or(0),
        }
    }

    /// Last use by the file's own times: the newer of the two.
    pub(crate) fn used(self) -> u64 {
        self.accessed.max(self.modified)
    }
}

/// Nanoseconds since the Unix epoch (0 before it; saturating in the year 2554).
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_reads_and_removes_relative_to_the_directory() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let dir = OpenDir::open(t.path()).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(dir.stamp("f").unwrap(), FileStamp::of(&meta));
        let (m, bytes) = dir.read_small("f", 5).unwrap();
        assert_eq!((m.len(), bytes.as_slice()), (5, &b"hello"[..]));
        assert!(dir.read_small("f", 4).is_err(), "over the limit");
        std::fs::create_dir(t.path().join("d")).unwrap();
        assert!(dir.read_small("d", 5).is_err(), "a directory is refused");
        dir.remove_file("f").unwrap();
        assert!(!path.exists());
        let e = dir.stamp("f").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(dir.path(), t.path());
    }
}

//! A directory someone else controls, read through one descriptor.
//!
//! The directory is opened once, refusing a symbolic link as its last component, and every
//! later step (listing it, inspecting an entry, opening a file) is relative to that
//! descriptor (`openat`, `fstatat`). So swapping the directory, or any of its parents, for a
//! link to somewhere else after it was opened changes nothing: every byte still comes from
//! the directory that was opened. Entries are opened with `O_NOFOLLOW | O_NONBLOCK` (a link
//! is refused, a FIFO or device cannot block) and accepted only if the open descriptor is a
//! regular file.

use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions};
#[cfg(unix)]
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Identity of a validated file, to notice it being swapped before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of a file from its device and inode numbers.
    #[cfg(unix)]
    pub(crate) fn from_raw(dev: u64, ino: u64) -> FileId {
        FileId { dev, ino }
    }

    /// The identity of the file `meta` describes (`None` where the platform has none).
    pub(crate) fn of(meta: &Metadata) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

/// Opens a file that someone else controls for reading: without following a symbolic link
/// in the last component, without blocking (a FIFO or device cannot hang the caller), and
/// only if the open descriptor is a regular file. Returns the file and its metadata, taken
/// from the descriptor, so every later read sees exactly the file that was checked.
pub fn open_untrusted(path: &Path) -> Result<(File, Metadata), StoreError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    // Without O_NOFOLLOW (Windows) a link is refused by looking first; a link swapped in
    // between the look and the open is the documented gap (docs/platforms.md).
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path)
        .map_err(|e| StoreError::io(path, e))?
        .file_type()
        .is_symlink()
    {
        return Err(StoreError::Symlink {
            path: path.to_path_buf(),
        });
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return StoreError::Symlink {
                path: path.to_path_buf(),
            };
        }
        StoreError::io(path, e)
    })?;
    let meta = file.metadata().map_err(|e| StoreError::io(path, e))?;
    if !meta.is_file() {
        return Err(StoreError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok((file, meta))
}

/// What an entry of the directory is (not following links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A regular file, with its identity.
    File(Option<FileId>),
    /// A symbolic link.
    Symlink,
    /// A directory.
    Dir,
    /// A FIFO, socket or device.
    Special,
}

/// An open directory (see the module documentation).
#[derive(Debug)]
pub(crate) struct UntrustedDir {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

fn symlink_refused(path: &Path) -> StoreError {
    StoreError::Invalid {
        path: path.to_path_buf(),
        message: "is a symbolic link; the directory must be given by its real path".into(),
    }
}

/// Entry names may not reach outside the directory.
fn check_name(dir: &Path, name: &str) -> Result<(), StoreError> {
    // Windows also separates paths with `\` and names drives and streams with `:`.
    let separator = name.contains(['/', '\0']) || (cfg!(windows) && name.contains(['\\', ':']));
    if name.is_empty() || name == "." || name == ".." || separator {
        return Err(StoreError::Invalid {
            path: dir.join(name),
            message: "is not a plain file name".into(),
        });
    }
    Ok(())
}

#[cfg(unix)]
impl UntrustedDir {
    /// Opens `path` as a directory: `O_DIRECTORY | O_NOFOLLOW`, so a symbolic link as the
    /// last component is refused.
    pub(crate) fn open(path: &Path) -> Result<UntrustedDir, StoreError> {
        use rustix::fs::{Mode, OFlags, CWD};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => Ok(UntrustedDir {
                fd,
                path: path.to_path_buf(),
            }),
            Err(e) => {
                // ELOOP: a link; ENOTDIR: a link to a non-directory, or not a directory.
                if e == rustix::io::Errno::LOOP
                    || (e == rustix::io::Errno::NOTDIR
                        && rustix::fs::statat(CWD, path, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|st| {
                                rustix::fs::FileType::from_raw_mode(st.st_mode)
                                    == rustix::fs::FileType::Symlink
                            }))
                {
                    return Err(symlink_refused(path));
                }
                Err(StoreError::io(path, io::Error::from(e)))
            }
        }
    }

    /// Every entry (`.` and `..` left out): its name and what it is, read from the open
    /// directory. An entry that vanishes between the listing and its inspection is left out.
    pub(crate) fn entries(&self) -> Result<Vec<(OsString, EntryKind)>, StoreError> {
        use std::os::unix::ffi::OsStrExt;
        let err = |e: rustix::io::Errno| StoreError::io(&self.path, io::Error::from(e));
        let dir = rustix::fs::Dir::read_from(&self.fd).map_err(err)?;
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(err)?;
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let st = match rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            {
                Ok(st) => st,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => {
                    let os = std::ffi::OsStr::from_bytes(bytes);
                    return Err(StoreError::io(&self.path.join(os), io::Error::from(e)));
                }
            };
            use rustix::fs::FileType;
            #[allow(clippy::unnecessary_cast)] // the field types differ between targets
            let kind = match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {
                    EntryKind::File(Some(FileId::from_raw(st.st_dev as u64, st.st_ino as u64)))
                }
                FileType::Symlink => EntryKind::Symlink,
                FileType::Directory => EntryKind::Dir,
                _ => EntryKind::Special,
            };
            out.push((std::ffi::OsStr::from_bytes(bytes).to_os_string(), kind));
        }
        Ok(out)
    }

    /// Opens the entry `name` for reading: `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`, relative to
    /// the open directory, and only if the descriptor is a regular file. Returns the file and
    /// its metadata, taken from the descriptor.
    pub(crate) fn open_file(&self, name: &str) -> Result<(File, Metadata), StoreError> {
        use rustix::fs::{Mode, OFlags};
        check_name(&self.path, name)?;
        let path = self.path.join(name);
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty()).map_err(|e| {
            if e == rustix::io::Errno::LOOP {
                StoreError::Symlink { path: path.clone() }
            } else {
                StoreError::io(&path, io::Error::from(e))
            }
        })?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| StoreError::io(&path, e))?;
        if !meta.is_file() {
            return Err(StoreError::NotRegular { path });
        }
        Ok((file, meta))
    }
}

#[cfg(not(unix))]
impl UntrustedDir {
    /// Opens `path` as a directory (without descriptor-relative access on this platform:
    /// entries are reached by path).
    pub(crate) fn open(path: &Path) -> Result<UntrustedDir, StoreError> {
        let m = std::fs::symlink_metadata(path).map_err(|e| StoreError::io(path, e))?;
        if m.file_type().is_symlink() {
            return Err(symlink_refused(path));
        }
        Ok(UntrustedDir {
            path: path.to_path_buf(),
        })
    }

    /// Every entry: its name and what it is.
    pub(crate) fn entries(&self) -> Result<Vec<(OsString, EntryKind)>, StoreError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.path).map_err(|e| StoreError::io(&self.path, e))? {
            let e = e.map_err(|e| StoreError::io(&self.path, e))?;
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            let t = m.file_type();
            let kind = if t.is_symlink() {
                EntryKind::Symlink
            } else if t.is_dir() {
                EntryKind::Dir
            } else if t.is_file() {
                EntryKind::File(FileId::of(&m))
            } else {
                EntryKind::Special
            };
            out.push((e.file_name(), kind));
        }
        Ok(out)
    }

    /// Opens the entry `name` for reading (see [`open_untrusted`]).
    pub(crate) fn open_file(&self, name: &str) -> Result<(File, Metadata), StoreError> {
        check_name(&self.path, name)?;
        open_untrusted(&self.path.join(name))
    }
}

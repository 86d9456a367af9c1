//! The one reader of local files that may come from outside: a checked-out pull request's
//! lakefile or manifest, a mapping file or configuration file given on the command line, the
//! server's PEM and key files.
//!
//! The file is opened once, without blocking (`O_NONBLOCK`, so a FIFO nobody writes to
//! cannot hang the open), and accepted only if the *open descriptor* is a regular file: a
//! FIFO, device (`/dev/zero`), socket or directory is refused with an error saying which,
//! and no path can be swapped for one between a check and the open. Reads then stop one byte
//! past the caller's limit, so an oversized file is refused without being read whole.
//!
//! Errors are [`std::io::Error`]s without the path (callers name it, as for any other I/O
//! error); a missing file stays [`ErrorKind::NotFound`] and a directory is
//! [`ErrorKind::IsADirectory`], so callers that treat those as "absent" still can.

use std::fs::{File, Metadata};
use std::io::{self, ErrorKind, Read};
use std::path::Path;

/// Whether a symbolic link as the last component of the path is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it (a path the user gave: a link to the real file is fine).
    Follow,
    /// Refuse it (`O_NOFOLLOW`): the error says the path is a symbolic link.
    Refuse,
}

/// The most bytes read from a local file, and how an error over it is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit<'a> {
    /// The limit in bytes; a longer file is refused.
    pub bytes: u64,
    /// What the file is, for the error (`"a configuration file"`).
    pub what: &'a str,
    /// The environment variable that raises the limit, if one does.
    pub env: Option<&'a str>,
}

/// Opens `path` for reading without blocking, and only if the open descriptor is a regular
/// file (see the module documentation). Returns the file, in blocking mode again, and its
/// metadata taken from the descriptor. Public because [`hash_file`](crate::hash_file)'s
/// documentation links it; nothing outside the crate calls it.
pub fn open_local_file(path: &Path, links: Links) -> io::Result<(File, Metadata)> {
    let file = open_nonblocking(path, links)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        let flags = rustix::fs::fcntl_getfl(&file)?;
        rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    }
    Ok((file, meta))
}

/// Reads the whole of `path`, a regular file of at most `limit.bytes` bytes, opened as
/// [`open_local_file`] does. A longer file is refused ([`ErrorKind::FileTooLarge`], naming
/// the limit and the variable that raises it), unread when its size says so already.
pub fn read_local_file(path: &Path, links: Links, limit: &ReadLimit<'_>) -> io::Result<Vec<u8>> {
    let (file, meta) = match open_local_file(path, links) {
        Ok(opened) => opened,
        Err(e) => {
            return match reads_empty_device(path, links) {
                Ok(true) => Ok(Vec::new()),
                _ => Err(e),
            }
        }
    };
    if meta.len() > limit.bytes {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit.bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// [`read_local_file`] for UTF-8 text.
pub fn read_local_text(path: &Path, links: Links, limit: &ReadLimit<'_>) -> io::Result<String> {
    String::from_utf8(read_local_file(path, links, limit)?)
        .map_err(|_| io::Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

/// [`read_local_text`] for a file of a checkout that must stay inside `root` (the workspace
/// directory, already canonical: see [`real_root`]): the path is resolved through every
/// symbolic link first, and a file that resolves outside `root` (a committed link to
/// `/proc/self/environ`, `~/.ssh/…`, `../../x`) is refused unread
/// ([`ErrorKind::PermissionDenied`], the error naming where the link leads); the resolved
/// path is then opened with [`Links::Refuse`], so no link swapped in afterwards is followed
/// either. A path that does not exist stays [`ErrorKind::NotFound`].
pub(crate) fn read_text_inside(
    path: &Path,
    root: &Path,
    limit: &ReadLimit<'_>,
) -> io::Result<String> {
    let real = resolve_inside(path, root)?;
    read_local_text(&real, Links::Refuse, limit)
}

/// `path` with every symbolic link resolved, if that lies inside `root` (canonical); for
/// a path that does not exist yet, its nearest existing ancestor must lie inside (a
/// missing directory below a link that leads out is refused too). The error says where
/// the path leads.
pub(crate) fn resolve_inside(path: &Path, root: &Path) -> io::Result<std::path::PathBuf> {
    let mut probe = path;
    let (real, missing) = loop {
        match std::fs::canonicalize(probe) {
            Ok(real) => break (real, probe != path),
            Err(e) if e.kind() == ErrorKind::NotFound => match probe.parent() {
                Some(parent) if parent.as_os_str().is_empty() => probe = Path::new("."),
                Some(parent) => probe = parent,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    };
    if !real.starts_with(root) {
        return Err(io::Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "leads outside the workspace {} (to {}) through a symbolic link; tarn reads \
                 nothing outside the workspace",
                root.display(),
                real.display()
            ),
        ));
    }
    if missing {
        return Err(io::Error::from(ErrorKind::NotFound));
    }
    Ok(real)
}

/// The canonical form of a workspace directory, for [`read_text_inside`] and
/// [`resolve_inside`].
pub(crate) fn real_root(dir: &Path) -> io::Result<std::path::PathBuf> {
    std::fs::canonicalize(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })
}

/// Reads a configuration file (the server's `--config`, Lake's system configuration
/// `LAKE_CONFIG`): a regular file of at most [`tarn_core::MAX_CONFIG_FILE_BYTES`], links
/// followed. The error says which rule was broken; the caller adds the path.
pub fn read_config_file(path: &Path) -> io::Result<String> {
    read_local_text(
        path,
        Links::Follow,
        &ReadLimit {
            bytes: tarn_core::MAX_CONFIG_FILE_BYTES,
            what: "a configuration file",
            env: None,
        },
    )
}

/// Whether `path` is a character device that is at its end at once (`/dev/null`): Lake reads
/// such a file as empty (`LAKE_CONFIG=/dev/null` is the usual "no configuration"). One byte is
/// asked for without blocking; a device that has data (`/dev/zero`) or none yet (a terminal)
/// is not empty, and a FIFO (which reads empty with no writer) is never taken for one.
#[cfg(unix)]
fn reads_empty_device(path: &Path, links: Links) -> io::Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    let mut file = open_nonblocking(path, links)?;
    if !file.metadata()?.file_type().is_char_device() {
        return Ok(false);
    }
    let mut byte = [0u8; 1];
    Ok(matches!(file.read(&mut byte), Ok(0)))
}

#[cfg(not(unix))]
fn reads_empty_device(_path: &Path, _links: Links) -> io::Result<bool> {
    Ok(false)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path, links: Links) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    if links == Links::Refuse {
        flags |= OFlags::NOFOLLOW;
    }
    match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::LOOP) if links == Links::Refuse => Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a symbolic link, refused here (give the file itself)",
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path, links: Links) -> io::Result<File> {
    if links == Links::Refuse && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a symbolic link, refused here (give the file itself)",
        ));
    }
    File::open(path)
}

/// The error for anything but a regular file, saying what it is.
fn not_regular(meta: &Metadata) -> io::Error {
    let t = meta.file_type();
    if t.is_dir() {
        return io::Error::new(ErrorKind::IsADirectory, "not a regular file (a directory)");
    }
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a special file"
        }
    };
    #[cfg(not(unix))]
    let what = "a special file";
    io::Error::new(
        ErrorKind::InvalidInput,
        format!("not a regular file ({what})"),
    )
}

fn too_large(limit: &ReadLimit<'_>) -> io::Error {
    let raise = limit
        .env
        .map(|e| format!(" (raise it with {e})"))
        .unwrap_or_default();
    io::Error::new(
        ErrorKind::FileTooLarge,
        format!(
            "larger than the limit of {} for {}{raise}",
            show_size(limit.bytes),
            limit.what
        ),
    )
}

/// `1 MiB`, `64 KiB`, `1000 bytes`.
fn show_size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Reads a regular file (not a link) of at most `limit` bytes without updating its access
/// time where the system allows (see [`open_without_touching`]).
pub(crate) fn read_without_touching(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_without_touching(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// Opens a cache file for tarn's own checks (`prune`, `stats`, `verify`) without updating its
/// access time where the system allows (`O_NOATIME` on Linux, for files this user owns; a
/// link or a FIFO is not followed or waited on): those reads are not uses, and must not move
/// the file in prune's least-recently-used order.
#[cfg(target_os = "linux")]
pub(crate) fn open_without_touching(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |flags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | flags)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        // Not the file's owner: the access time may move; eviction order is a little off.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        r => r,
    }
}

/// Elsewhere: a plain open.
#[cfg(not(target_os = "linux"))]
pub(crate) fn open_without_touching(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::time::{Duration, Instant};

    const LIMIT: ReadLimit<'static> = ReadLimit {
        bytes: 1024,
        what: "a test file",
        env: Some("TEST_LIMIT"),
    };

    /// Runs `f` on another thread and returns its result, failing the test if it takes more
    /// than 10 seconds (a blocked open would never return).
    #[cfg(unix)]
    fn promptly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let start = Instant::now();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("still running after {:?}", start.elapsed()))
    }

    #[test]
    fn reads_a_regular_file_within_its_limit() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, vec![b'x'; 1024]).unwrap();
        assert_eq!(
            read_local_file(&p, Links::Follow, &LIMIT).unwrap().len(),
            1024
        );
        let (mut f, meta) = open_local_file(&p, Links::Refuse).unwrap();
        assert_eq!(meta.len(), 1024);
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s.len(), 1024);
    }

    #[test]
    fn an_over_limit_file_is_refused_naming_the_limit_and_variable() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, vec![b'x'; 1025]).unwrap();
        let e = read_local_file(&p, Links::Follow, &LIMIT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FileTooLarge);
        assert_eq!(
            e.to_string(),
            "larger than the limit of 1 KiB for a test file (raise it with TEST_LIMIT)"
        );
        assert_eq!(show_size(1 << 20), "1 MiB");
        assert_eq!(show_size(1000), "1000 bytes");
    }

    /// A FIFO named `fifo` in `dir`.
    #[cfg(unix)]
    fn fifo_in(dir: &Path) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        // (`mkfifo`, not rustix's `mkfifoat`, which macOS lacks.)
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        fifo
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_dev_zero_and_a_directory_are_refused_at_once() {
        let t = tempfile::tempdir().unwrap();
        let fifo = fifo_in(t.path());
        let f = fifo.clone();
        let e = promptly(move || read_local_file(&f, Links::Follow, &LIMIT).unwrap_err());
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
        let e = promptly(|| read_config_file(Path::new("/dev/zero")).unwrap_err());
        assert_eq!(e.to_string(), "not a regular file (a character device)");
        let e = read_local_file(t.path(), Links::Follow, &LIMIT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::IsADirectory);
        let e = read_local_file(&t.path().join("nothing"), Links::Follow, &LIMIT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_reads_as_an_empty_file() {
        // Lake reads `LAKE_CONFIG=/dev/null` as an empty configuration.
        assert_eq!(
            promptly(|| read_config_file(Path::new("/dev/null")).unwrap()),
            ""
        );
        assert_eq!(
            read_local_file(Path::new("/dev/null"), Links::Refuse, &LIMIT).unwrap(),
            b""
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_or_refused_as_asked() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(
            read_local_file(&link, Links::Follow, &LIMIT).unwrap(),
            b"hello"
        );
        let e = read_local_file(&link, Links::Refuse, &LIMIT).unwrap_err();
        assert!(e.to_string().contains("a symbolic link"), "{e}");
        // A link to a FIFO is followed to the FIFO, which is refused without blocking.
        let fifo = fifo_in(t.path());
        let l2 = link.with_extension("2");
        std::os::unix::fs::symlink(&fifo, &l2).unwrap();
        let e = promptly(move || read_local_file(&l2, Links::Follow, &LIMIT).unwrap_err());
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
    }
}

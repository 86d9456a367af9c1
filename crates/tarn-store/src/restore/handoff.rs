//! Handing leantar exactly the bytes tarn vetted. Just before its batch runs, each archive is
//! read from the cache again and checked against what was vetted (content hash, container,
//! files), its trace entry is renamed (see `unpack`), and the result is put where leantar can
//! open it by name:
//!
//! * on Linux, an anonymous memory file (`memfd_create`), sealed against any change, which
//!   leantar inherits and opens as `/proc/self/fd/<n>`: nothing is written to the disk and nothing
//!   is created or deleted there. On a file system without a journal, ext4 makes every file
//!   it creates look past the files recently deleted near it (`recently_deleted`), so a copy
//!   of each archive written and deleted per restore made creating files most of tarn's own
//!   cost, and leantar's as well;
//! * elsewhere, or where `/proc` cannot be used, a file in the run's staging directory,
//!   removed when the handoff is dropped.
//!
//! Handoffs are made one batch at a time, just before the batch runs; the next batch is handed
//! over while the previous one is finished, so at most two batches of archives are held.

use std::fs;
use std::path::{Path, PathBuf};

use tarn_core::{Hash, LtarIndex, ModuleFiles};

use super::{ArchiveWork, RestoreError};
use crate::local_file::{read_local_file, Links, ReadLimit};

/// The extension leantar's copy of the archive's trace gets (`C.tarn~`): as long as `trace`,
/// so that the renamed archive has the same layout, and meaningless to Lake.
pub(crate) const UNPACKED_TRACE_EXT: &str = "tarn~";

/// Test hook: with `TARN_TEST_RESTORE_HANDOFF=files`, archives are handed over as files in the
/// staging directory even where memory files work (so that the tests cover both ways).
pub(crate) const HANDOFF_ENV: &str = "TARN_TEST_RESTORE_HANDOFF";

/// One archive as leantar reads it.
pub(crate) struct Handoff {
    /// The name leantar is given.
    name: String,
    /// What keeps it readable; dropped (closed, or removed) with the handoff.
    held: Held,
}

enum Held {
    /// A sealed memory file, open for as long as the handoff lives.
    #[cfg(target_os = "linux")]
    Memory { file: fs::File },
    /// A file in the staging directory.
    File(PathBuf),
}

impl Handoff {
    /// The name to give leantar.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor leantar must inherit for [`Handoff::name`] to work in it (a memory
    /// file's `/proc/self/fd/<n>`), if any.
    pub(crate) fn inherited_fd(&self) -> Option<i32> {
        match &self.held {
            #[cfg(target_os = "linux")]
            Held::Memory { file } => {
                use std::os::fd::AsRawFd;
                Some(file.as_raw_fd())
            }
            Held::File(_) => None,
        }
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        match &self.held {
            Held::File(path) => {
                let _ = fs::remove_file(path);
            }
            #[cfg(target_os = "linux")]
            Held::Memory { .. } => {}
        }
    }
}

/// A cached archive read (bounded), its content hash checked against its name, its container
/// parsed and vetted ([`LtarIndex`]) and its files listed as one module's.
pub(crate) struct ReadArchive {
    pub(crate) bytes: Vec<u8>,
    pub(crate) index: LtarIndex,
    pub(crate) files: ModuleFiles,
}

/// Reads and checks the cached archive of `w` (see [`ReadArchive`]).
pub(crate) fn read_archive(w: &ArchiveWork) -> Result<ReadArchive, RestoreError> {
    let limit = ReadLimit {
        bytes: crate::limits().max_artifact_bytes,
        what: "an artifact",
        env: Some(tarn_core::MAX_ARTIFACT_ENV),
    };
    let bytes = read_local_file(&w.cached, Links::Refuse, &limit).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RestoreError::Missing {
                path: w.cached.clone(),
            }
        } else {
            RestoreError::io(&w.cached, e)
        }
    })?;
    let actual = Hash::of_bytes(&bytes);
    if actual != w.name.hash {
        return Err(RestoreError::HashMismatch {
            path: w.cached.clone(),
            expected: w.name.hash,
            actual,
        });
    }
    let bad = |source| RestoreError::BadArchive {
        path: w.cached.clone(),
        source,
    };
    let index = LtarIndex::parse(&bytes).map_err(bad)?;
    let files = index.module_files().map_err(bad)?;
    Ok(ReadArchive {
        bytes,
        index,
        files,
    })
}

/// Whether this process hands archives over as memory files: on Linux, when a sealed memory
/// file can be made and opened again by its `/proc` name, and the test hook does not ask for
/// files. Decided once per process.
pub(crate) fn memory_handoff() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        if std::env::var(HANDOFF_ENV).is_ok_and(|v| v == "files") {
            return false;
        }
        memory_file_round_trip()
    })
}

#[cfg(target_os = "linux")]
fn memory_file_round_trip() -> bool {
    let probe = b"tarn";
    let Ok((file, name)) = sealed_memory_file(probe) else {
        return false;
    };
    let again = fs::read(&name);
    drop(file);
    again.is_ok_and(|b| b == probe)
}

#[cfg(not(target_os = "linux"))]
fn memory_file_round_trip() -> bool {
    false
}

/// Reads `w`'s archive again, checks that it is the one vetted (`files`), renames its trace
/// entry, and hands it over: as a memory file when `staging` is `None` (only where
/// [`memory_handoff`] says so), else as the file `<staging>/<slot>.ltar`.
pub(crate) fn hand_over(
    w: &ArchiveWork,
    files: &ModuleFiles,
    staging: Option<&Path>,
    slot: usize,
) -> Result<Handoff, RestoreError> {
    let ReadArchive {
        mut bytes,
        index,
        files: now,
    } = read_archive(w)?;
    if &now != files {
        return Err(RestoreError::Identity {
            path: w.cached.clone(),
            message: "changed in the cache while the restore ran".into(),
        });
    }
    // `C.trace` → `C.tarn~`: the name's last six bytes, the NUL after it unchanged.
    let end = index.trace_name_offset + index.trace_name.len();
    bytes[end - UNPACKED_TRACE_EXT.len()..end].copy_from_slice(UNPACKED_TRACE_EXT.as_bytes());
    match staging {
        Some(root) => {
            let path = root.join(format!("{slot}.ltar"));
            fs::write(&path, &bytes).map_err(|e| RestoreError::io(&path, e))?;
            Ok(Handoff {
                name: path.to_string_lossy().into_owned(),
                held: Held::File(path),
            })
        }
        #[cfg(target_os = "linux")]
        None => {
            let (file, name) =
                sealed_memory_file(&bytes).map_err(|e| RestoreError::io(&w.cached, e))?;
            Ok(Handoff {
                name,
                held: Held::Memory { file },
            })
        }
        #[cfg(not(target_os = "linux"))]
        None => Err(RestoreError::io(
            &w.cached,
            std::io::Error::other("no memory files here"),
        )),
    }
}

/// A memory file holding `bytes`, sealed (no write, no resize, no further seal), and the name
/// another process opens it by while this one holds it open.
#[cfg(target_os = "linux")]
fn sealed_memory_file(bytes: &[u8]) -> std::io::Result<(fs::File, String)> {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: the name is a NUL-terminated constant; a non-negative result is a new
    // descriptor that nothing else owns.
    let fd = unsafe {
        libc::memfd_create(
            c"tarn-ltar".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nothing else.
    let mut file = unsafe { fs::File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor this function owns.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // leantar inherits the descriptor at the same number (`unpack_batch` clears its
    // close-on-exec flag in the child only) and opens it through its own `/proc/self/fd`,
    // which needs no permission over tarn's process (a non-dumpable tarn, or a leantar in
    // another PID namespace, could not open `/proc/<tarn's pid>/fd/<n>`).
    let name = format!("/proc/self/fd/{}", file.as_raw_fd());
    Ok((file, name))
}

/// The most memory files a batch may hold open: half the soft limit on open files, after
/// raising it to the hard limit where that is allowed (Linux starts most processes at 1,024).
pub(crate) fn max_open_handoffs() -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return 256;
            }
            let want = lim.rlim_max.min(1 << 16);
            if lim.rlim_cur < want {
                let raised = libc::rlimit {
                    rlim_cur: want,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim.rlim_cur = want;
                }
            }
        }
        usize::try_from(lim.rlim_cur / 2)
            .unwrap_or(usize::MAX)
            .max(16)
    }
    #[cfg(not(unix))]
    {
        usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_core::ArtifactName;

    #[test]
    fn leantar_gets_the_vetted_bytes_with_the_trace_renamed_and_a_changed_archive_is_refused() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ltar/archives");
        let tmp = tempfile::tempdir().unwrap();
        let name = "a74d1ed7ffcb58c4.ltar";
        let cached = tmp.path().join(name);
        fs::copy(data.join(name), &cached).unwrap();
        let w = ArchiveWork {
            target: 0,
            input: Hash(0x5728_9f38_c901_6500),
            name: ArtifactName::parse(name).unwrap(),
            cached: cached.clone(),
        };
        let vetted = read_archive(&w).unwrap();
        let mut places = vec![Some(tmp.path())];
        if cfg!(target_os = "linux") {
            places.push(None);
        }
        for staging in places {
            let handoff = hand_over(&w, &vetted.files, staging, 7).unwrap();
            let handed = fs::read(handoff.name()).unwrap();
            let index = LtarIndex::parse(&handed).unwrap();
            assert_eq!(index.trace_name, "Attr.tarn~");
            // Only the trace's name differs from what was vetted.
            let at = index.trace_name_offset;
            let differ: Vec<usize> = (0..handed.len())
                .filter(|&i| handed[i] != vetted.bytes[i])
                .collect();
            assert!(
                differ.iter().all(|&i| (at..at + 10).contains(&i)),
                "{differ:?}"
            );
            assert_eq!(handed.len(), vetted.bytes.len());
            let name = handoff.name().to_string();
            drop(handoff);
            if staging.is_some() {
                assert!(
                    !Path::new(&name).exists(),
                    "the staging copy outlived its handoff"
                );
            }
        }
        // Another archive under the vetted one's name (the cache changed meanwhile).
        fs::copy(data.join("311447e8cf024e29.ltar"), &cached).unwrap();
        let e = hand_over(&w, &vetted.files, Some(tmp.path()), 0)
            .err()
            .unwrap();
        assert!(matches!(e, RestoreError::HashMismatch { .. }), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_memory_file_reads_back_by_its_proc_name_and_refuses_writes() {
        use std::io::Write;
        let (file, name) = sealed_memory_file(b"archive bytes").unwrap();
        assert_eq!(fs::read(&name).unwrap(), b"archive bytes");
        // Sealed: not even a process that opens it by name can change what leantar reads.
        let e = fs::OpenOptions::new()
            .write(true)
            .open(&name)
            .and_then(|mut f| f.write_all(b"x"))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        drop(file);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_reads_a_memory_file_only_through_the_descriptor_it_inherits() {
        use std::os::fd::AsRawFd;
        use std::process::Command;
        let (file, name) = sealed_memory_file(b"archive bytes").unwrap();
        assert_eq!(name, format!("/proc/self/fd/{}", file.as_raw_fd()));
        // leantar's way: the descriptor is inherited at its number, so the child's own
        // /proc/self/fd names it (no access to tarn's /proc entry needed).
        let mut given = Command::new("cat");
        given.arg(&name);
        crate::restore::leantar::inherit_descriptors(&mut given, vec![file.as_raw_fd()]);
        let out = given.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"archive bytes");
        // Any other child does not get it: the memory file stays close-on-exec.
        let out = Command::new("cat").arg(&name).output().unwrap();
        assert!(
            !out.status.success(),
            "a child that was not given it read it"
        );
        drop(file);
    }
}

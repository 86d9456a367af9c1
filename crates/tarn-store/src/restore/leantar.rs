//! Finding the toolchain's `leantar` and running it once over many archives
//! (`leantar -x -j -`, one JSON object per archive with its two base directories).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::RestoreError;

/// The environment variable naming the leantar binary to use (tarn's override; Lake always
/// uses `<sysroot>/bin/leantar`).
pub(crate) const LEANTAR_ENV: &str = "LEANTAR";

/// Most bytes of leantar's stdout or stderr kept (the rest is read and dropped).
const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// The leantar to run for the package in `dir`: `$LEANTAR` if set, else
/// `<lean --print-prefix>/bin/leantar` with `lean` run in `dir` (elan picks the package's
/// toolchain there), as Lake's `getLeantar` resolves it from the toolchain's sysroot.
pub fn find_leantar(dir: &Path) -> Result<PathBuf, RestoreError> {
    if let Some(p) = std::env::var_os(LEANTAR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let out = Command::new("lean")
        .arg("--print-prefix")
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RestoreError::NoLeantar {
            reason: format!("cannot run `lean --print-prefix`: {e}"),
        })?;
    if !out.status.success() {
        return Err(RestoreError::NoLeantar {
            reason: format!(
                "`lean --print-prefix` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let bin = Path::new(&prefix).join("bin").join("leantar");
    if !bin.is_file() {
        return Err(RestoreError::NoLeantar {
            reason: format!(
                "{} does not exist (toolchains before Lean v4.30 bundle no leantar)",
                bin.display()
            ),
        });
    }
    Ok(bin)
}

/// `leantar --version`'s answer (`leantar 0.1.19`), trimmed. Asked once per binary and
/// process: a `get --restore` restores in many rounds, each of which reports the version.
pub(crate) fn leantar_version(leantar: &Path) -> Result<String, RestoreError> {
    static KNOWN: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
    let known = |k: &Mutex<Vec<(PathBuf, String)>>| {
        k.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(p, _)| p == leantar)
            .map(|(_, v)| v.clone())
    };
    if let Some(v) = known(&KNOWN) {
        return Ok(v);
    }
    let out = Command::new(leantar)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RestoreError::Leantar {
            leantar: leantar.to_path_buf(),
            message: format!("cannot run it: {e}"),
        })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    KNOWN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((leantar.to_path_buf(), version.clone()));
    Ok(version)
}

/// One archive for [`unpack_batch`]: the file and its base directories 0 and 1.
pub(crate) struct BatchItem {
    pub(crate) archive: PathBuf,
    pub(crate) bases: [PathBuf; 2],
    /// A descriptor of tarn's that leantar inherits to open `archive` (a memory file's
    /// `/proc/self/fd/<n>`); every other descriptor stays closed on exec.
    pub(crate) inherit: Option<i32>,
}

/// Runs one `leantar -x -j -` over every item (leantar unpacks them in parallel, one thread
/// per core). Returns leantar's stderr: which archives failed is decided by the caller from
/// the files each one left, since leantar persists an archive's files all or none.
pub(crate) fn unpack_batch(leantar: &Path, items: &[BatchItem]) -> Result<String, RestoreError> {
    let err = |message: String| RestoreError::Leantar {
        leantar: leantar.to_path_buf(),
        message,
    };
    let list: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            serde_json::json!({
                "file": path_text(&i.archive),
                "base": [path_text(&i.bases[0]), path_text(&i.bases[1])],
            })
        })
        .collect();
    let input = serde_json::to_vec(&list).expect("JSON of strings");
    let mut command = Command::new(leantar);
    command
        .args(["-x", "-j", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut command);
    inherit_descriptors(
        &mut command,
        items.iter().filter_map(|i| i.inherit).collect(),
    );
    let mut child = command
        .spawn()
        .map_err(|e| err(format!("cannot start it: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut stdout = child.stdout.take().expect("piped");
    let out_reader = std::thread::spawn(move || read_bounded(&mut stdout));
    let mut stderr = child.stderr.take().expect("piped");
    let stderr_text = read_bounded(&mut stderr);
    let _ = out_reader.join();
    let write_result = writer.join().expect("the writer does not panic");
    let status = child
        .wait()
        .map_err(|e| err(format!("waiting for it: {e}")))?;
    if let Err(e) = write_result {
        return Err(err(format!("writing the archive list to it: {e}")));
    }
    // A non-zero exit means some archive failed; the caller finds which from the files.
    if !status.success() && status.code().is_none() {
        return Err(err(format!("killed ({status}): {}", stderr_text.trim())));
    }
    Ok(stderr_text)
}

/// Makes the child receive SIGKILL when the thread that started it ends (tarn killed or
/// aborted included), so that no leantar keeps writing into a dead run's staging directory.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only prctl, which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Lets the child inherit `fds` (their close-on-exec flag is cleared in the child only, after
/// the fork, so no other child started meanwhile gets them).
#[cfg(unix)]
pub(crate) fn inherit_descriptors(command: &mut Command, fds: Vec<i32>) {
    use std::os::unix::process::CommandExt;
    if fds.is_empty() {
        return;
    }
    // SAFETY: the closure runs between fork and exec, allocates nothing (it iterates a vector
    // made before the fork) and calls only fcntl, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            for &fd in &fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Without Unix descriptors nothing is handed over by descriptor.
#[cfg(not(unix))]
pub(crate) fn inherit_descriptors(_command: &mut Command, _fds: Vec<i32>) {}

/// Elsewhere there is no portable equivalent; a killed run leaves leantar to finish.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// Reads a child's stream to the end, keeping at most [`MAX_OUTPUT_BYTES`].
fn read_bounded(r: &mut impl Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

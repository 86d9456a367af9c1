//! Stale temp files: what a killed process leaves behind, and when a later run may remove it.
//!
//! Every temp file tarn writes is named `.tarn-tmp.<pid>.<…>` in the directory of its final
//! name. A crash leaves at worst such a file, which every reader ignores. A later run (`get`,
//! `unstage`, `verify`, and `tarn serve` at start-up) removes those that are older than the
//! grace period ([`Limits::temp_grace`](tarn_core::Limits), default 10 minutes,
//! `TARN_TEMP_GRACE_SECS`) and whose owner is not a live process on this machine (a zombie
//! counts as dead). The grace period protects writers on other machines sharing the cache and
//! a reused process id.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cache::{Cache, TEMP_PREFIX};

/// What a sweep found.
#[derive(Debug, Default, Clone)]
pub struct TempSweep {
    /// Stale temp files removed.
    pub removed: Vec<PathBuf>,
    /// Temp files whose owner is dead but which are younger than the grace period (kept).
    pub dead_young: Vec<PathBuf>,
    /// Temp files of live processes (kept).
    pub live: Vec<PathBuf>,
}

/// Whether process `pid` is alive on this machine (not a zombie). Linux reads `/proc`; other
/// Unix systems (macOS) ask with signal 0 (a zombie counts as alive there); where neither
/// exists (Windows) every process counts as alive, so nothing is removed by mistake and stale
/// temp files stay until `tarn clean`.
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if !Path::new("/proc/self").exists() {
        return alive_without_proc(pid);
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses (which may hold spaces).
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
        Err(_) => false,
    }
}

#[cfg(unix)]
fn alive_without_proc(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn alive_without_proc(_pid: u32) -> bool {
    true
}

/// The owner's process id from a temp file name, if it is one of ours.
pub(crate) fn temp_owner(name: &str) -> Option<u32> {
    name.strip_prefix(TEMP_PREFIX)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Sweeps the temp files directly in `dirs` (not recursive).
pub fn sweep_dirs(dirs: &[PathBuf], grace: Duration) -> TempSweep {
    let mut sweep = TempSweep::default();
    let now = SystemTime::now();
    for dir in dirs {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(temp_owner) else {
                continue;
            };
            let path = e.path();
            if process_alive(pid) {
                sweep.live.push(path);
                continue;
            }
            let age = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or(Duration::ZERO);
            if age >= grace && fs::remove_file(&path).is_ok() {
                sweep.removed.push(path);
            } else {
                sweep.dead_young.push(path);
            }
        }
    }
    sweep
}

/// Sweeps a cache: its root, `artifacts/`, and every `outputs/<scope>/` and
/// `revisions/<scope>/` directory.
pub fn sweep_cache(cache: &Cache, grace: Duration) -> TempSweep {
    let mut dirs = vec![cache.root().to_path_buf(), cache.artifacts_dir()];
    for sub in ["outputs", "revisions"] {
        if let Ok(rd) = fs::read_dir(cache.root().join(sub)) {
            dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    sweep_dirs(&dirs, grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "no process table to ask: every owner counts as alive (docs/platforms.md)"
    )]
    fn removes_only_old_files_of_dead_owners() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        fs::create_dir_all(cache.artifacts_dir()).unwrap();
        // A pid that cannot exist (above the kernel's maximum), and our own.
        let dead = cache
            .artifacts_dir()
            .join(format!("{TEMP_PREFIX}4194305.0.1"));
        let mine = cache
            .artifacts_dir()
            .join(format!("{TEMP_PREFIX}{}.0.1", std::process::id()));
        fs::write(&dead, b"partial").unwrap();
        fs::write(&mine, b"partial").unwrap();
        let s = sweep_cache(&cache, Duration::from_secs(3600));
        assert_eq!(
            (s.removed.len(), s.dead_young.len(), s.live.len()),
            (0, 1, 1)
        );
        let s = sweep_cache(&cache, Duration::ZERO);
        assert_eq!((s.removed.len(), s.live.len()), (1, 1));
        assert!(!dead.exists() && mine.exists());
        assert!(process_alive(std::process::id()));
        // Above Linux's and macOS's largest process ids.
        assert!(!process_alive(4_194_305));
    }
}

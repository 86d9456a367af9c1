//! Peak memory as the kernel counts it. A child process runs under a time bound and a memory
//! kill bound, and when it ends its peak resident set comes from `wait4`'s `ru_maxrss` —
//! the kernel's own high-water mark, kept until the moment it is reaped — never from
//! sampling `/proc`, which misses a process that balloons and exits between two samples.
//!
//! Linux folds the memory map a process leaves at `exec` into its `ru_maxrss`, and a child
//! spawned by the test process (`posix_spawn` shares the parent's map until `exec`) leaves
//! the test process's map: started directly, `true` reports the test process's peak. So the
//! child is started through `tarn-measure-launcher` (built from `launcher/main.rs`): the
//! spawned process execs the launcher, whose map is fresh and small, the launcher starts
//! the child, reaps it and writes its `ru_maxrss` to a report file. The figure is the child's
//! own peak, or the launcher's (about 2 MB) if that is larger.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often a running child is checked against its bounds.
const POLL: Duration = Duration::from_millis(5);

/// The launcher every measured child is started through (built by `build.rs`).
const LAUNCHER: &str = env!("TARN_MEASURE_LAUNCHER");

/// Runs `c` with stderr piped and returns (exit code, stderr, peak RSS in kB, seconds).
/// The peak is `ru_maxrss` from `wait4` as the launcher saw it: the child's own high-water
/// mark and that of every descendant it waited for, never the test process's. While the
/// child runs it is killed, and the call panics naming `what`, once its resident high-water
/// mark passes `kill_kb` or it runs past `bound`. A child ended by a signal reports exit
/// code -1. Everything set on `c` (environment, directory, stdio) applies to the child.
pub fn run_measured(
    mut c: Command,
    what: &str,
    bound: Duration,
    kill_kb: u64,
) -> (i32, String, u64, f64) {
    let report = tempfile::Builder::new()
        .prefix("tarn-measure-")
        .tempfile()
        .unwrap_or_else(|e| panic!("report file for {what}: {e}"));
    let exec = LauncherExec::new(report.path(), &c);
    // SAFETY: the hook only calls execve on memory prepared before the fork (async-signal
    // safe); it runs after Command applied the directory and stdio.
    unsafe {
        c.pre_exec(move || Err(exec.exec()));
    }
    let start = Instant::now();
    // Reaped with wait4 below, not Child::wait.
    #[allow(clippy::zombie_processes)]
    let mut child = c
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn the launcher for {what}: {e}"));
    let launcher = child.id() as libc::pid_t;
    // Drained on its own thread so a chatty child never blocks on a full pipe.
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let drain = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    loop {
        if reap(launcher, libc::WNOHANG).is_some() {
            break;
        }
        let measured = Report::read(report.path()).pid;
        let live = measured.and_then(live_peak_rss_kb).unwrap_or(0);
        let over = if live > kill_kb {
            Some(format!(
                "peak RSS {live} kB passed the kill bound of {kill_kb} kB"
            ))
        } else if start.elapsed() > bound {
            Some(format!("still running past the time bound of {bound:?}"))
        } else {
            None
        };
        if let Some(why) = over {
            // The launcher reaps the child and ends; one that has not started it yet is
            // killed itself, and a child it started meanwhile with it.
            if let Some(pid) = measured {
                // SAFETY: plain syscall on a pid the launcher has not reaped yet.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            } else {
                let _ = child.kill();
            }
            let _ = reap(launcher, 0);
            if let (None, Some(pid)) = (measured, Report::read(report.path()).pid) {
                // SAFETY: as above; an orphan of the killed launcher.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            panic!("{what} stopped after {:?}: {why}", start.elapsed());
        }
        std::thread::sleep(POLL);
    }
    let secs = start.elapsed().as_secs_f64();
    let err = drain.join().expect("the stderr reader");
    let got = Report::read(report.path());
    if let Some(e) = got.spawn_error {
        panic!("spawn {what}: {e}");
    }
    let (Some(code), Some(kb)) = (got.code, got.maxrss_kb) else {
        panic!("the launcher of {what} ended without a report; stderr: {err}");
    };
    (code, err, kb, secs)
}

/// What the launcher wrote to its report file so far.
#[derive(Default)]
struct Report {
    pid: Option<u32>,
    maxrss_kb: Option<u64>,
    code: Option<i32>,
    spawn_error: Option<String>,
}

impl Report {
    /// Reads the complete lines of `path` (a line still being written is left for later).
    fn read(path: &Path) -> Report {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut r = Report::default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "pid" => r.pid = value.parse().ok(),
                "maxrss" => r.maxrss_kb = value.parse::<u64>().ok().map(to_kb),
                "exit" => r.code = value.parse().ok(),
                "signal" => r.code = Some(-1),
                "spawn-error" => r.spawn_error = Some(value.to_owned()),
                _ => {}
            }
        }
        r
    }
}

/// `ru_maxrss` in kB (Linux counts kB, macOS bytes).
fn to_kb(raw: u64) -> u64 {
    if cfg!(target_os = "macos") {
        raw / 1024
    } else {
        raw
    }
}

/// The launcher's `argv` (launcher, report file, program, args) and the child's
/// environment, built before the fork so the child only calls `execve`.
struct LauncherExec {
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

// SAFETY: the pointers point into `_strings`, owned by the same value and never changed.
unsafe impl Send for LauncherExec {}
// SAFETY: as above; nothing mutates through the pointers.
unsafe impl Sync for LauncherExec {}

impl LauncherExec {
    fn new(report: &Path, c: &Command) -> LauncherExec {
        let cstr = |s: &[u8]| CString::new(s).expect("no NUL byte in an argument");
        let mut argv = vec![
            cstr(LAUNCHER.as_bytes()),
            cstr(report.as_os_str().as_bytes()),
            cstr(c.get_program().as_bytes()),
        ];
        argv.extend(c.get_args().map(|a| cstr(a.as_bytes())));
        let envp: Vec<CString> = child_environment(c)
            .into_iter()
            .map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect();
        let pointers = |list: &[CString]| {
            let mut p: Vec<*const c_char> = list.iter().map(|s| s.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        };
        let (argv_p, envp_p) = (pointers(&argv), pointers(&envp));
        argv.extend(envp);
        LauncherExec {
            _strings: argv,
            argv: argv_p,
            envp: envp_p,
        }
    }

    /// Replaces this process with the launcher; returns only on failure, with the error.
    fn exec(&self) -> std::io::Error {
        // SAFETY: `argv` and `envp` are null-terminated arrays of pointers to live C strings.
        unsafe { libc::execve(self.argv[0], self.argv.as_ptr(), self.envp.as_ptr()) };
        std::io::Error::last_os_error()
    }
}

/// The environment `c` gives its child: this process's (unless `c` cleared it) with `c`'s
/// changes. `Command` shows a cleared environment only in its `Debug` text (`env -i`), and
/// a `pre_exec` hook runs before `Command` installs the environment, so it is rebuilt here
/// (`the_environment_and_directory_set_on_the_command_apply` checks it).
fn child_environment(c: &Command) -> BTreeMap<OsString, OsString> {
    let shown = format!("{c:?}");
    let cleared = shown.starts_with("env -i ") || shown.contains("\" && env -i ");
    let mut env: BTreeMap<OsString, OsString> = if cleared {
        BTreeMap::new()
    } else {
        std::env::vars_os().collect()
    };
    for (key, value) in c.get_envs() {
        match value {
            Some(v) => env.insert(key.to_owned(), v.to_owned()),
            None => env.remove(key),
        };
    }
    env
}

/// Reaps `pid` (`flags` 0 blocks, `WNOHANG` does not); `None` while it runs.
fn reap(pid: libc::pid_t, flags: libc::c_int) -> Option<()> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: the pointer is to a live local of the type waitpid writes.
        let got = unsafe { libc::waitpid(pid, &mut status, flags) };
        if got == pid {
            return Some(());
        }
        if got == 0 {
            return None;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::Interrupted,
            "waitpid({pid}): {e}"
        );
    }
}

/// The resident high-water mark (`VmHWM`) of the live process `pid` in kB, kept by the
/// kernel since it started: exact for a process that is still running (a server under
/// test), `None` once it is gone or where there is no `/proc`. A process that exits is
/// measured with [`run_measured`] instead.
pub fn live_peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the kernel's peak resident set (`VmHWM`) of the running process `pid` to its
/// current resident set (writing `5` to `/proc/PID/clear_refs`), so the next
/// [`live_peak_rss_kb`] measures only what came after; whether the kernel took it.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024;

    /// Python filling 200 MiB and exiting at once: a sampler polling `/proc` sees this only
    /// if a sample lands in the milliseconds between the fill and the exit.
    fn balloon() -> Command {
        let mut c = Command::new("python3");
        c.args(["-c", "b = b'x' * (200 << 20)"]);
        c
    }

    #[test]
    fn a_process_that_balloons_and_exits_is_measured_at_its_peak() {
        let (code, err, peak, _) =
            run_measured(balloon(), "python3", Duration::from_secs(60), 1 << 30);
        assert_eq!(code, 0, "{err}");
        assert!(peak >= 200 * MIB, "peak {peak} kB, want at least 200 MiB");
    }

    #[test]
    fn a_balloon_in_a_waited_for_child_counts_too() {
        // The shell's own /proc entry never shows its child's memory; ru_maxrss does.
        let mut c = Command::new("sh");
        c.args(["-c", "python3 -c \"b = b'x' * (200 << 20)\"; exit 3"]);
        let (code, err, peak, _) = run_measured(c, "sh", Duration::from_secs(60), 1 << 30);
        assert_eq!(code, 3, "{err}");
        assert!(peak >= 200 * MIB, "peak {peak} kB, want at least 200 MiB");
    }

    #[test]
    #[should_panic(expected = "kill bound")]
    fn a_process_past_the_kill_bound_is_stopped() {
        let mut c = Command::new("python3");
        c.args(["-c", "import time; b = b'x' * (200 << 20); time.sleep(60)"]);
        run_measured(c, "python3", Duration::from_secs(60), 100 * MIB);
    }

    #[test]
    #[should_panic(expected = "time bound")]
    fn a_process_past_the_time_bound_is_stopped() {
        let mut c = Command::new("sleep");
        c.arg("60");
        run_measured(c, "sleep", Duration::from_millis(200), 1 << 30);
    }

    /// The test process touches 300 MiB, then measures `true`: started directly, `true`
    /// reports the test process's peak (Linux folds the map left at `exec` into
    /// `ru_maxrss`); through the launcher it reports its own few MB.
    #[test]
    fn a_small_child_of_a_large_test_process_reports_its_own_peak() {
        let mut held = vec![0u8; 300 << 20];
        for page in held.chunks_mut(4096) {
            page[0] = 1;
        }
        let own = live_peak_rss_kb(std::process::id()).expect("/proc/self/status");
        assert!(own >= 300 * MIB, "this process's peak {own} kB");
        let (code, err, peak, _) = run_measured(
            Command::new("true"),
            "true",
            Duration::from_secs(60),
            1 << 30,
        );
        assert_eq!(code, 0, "{err}");
        eprintln!("true: peak {peak} kB; this process: {own} kB");
        assert!(
            peak < 8 * MIB,
            "true's peak {peak} kB, want a few MB (this process: {own} kB)"
        );
        assert_eq!(
            held.iter().step_by(4096).filter(|b| **b == 1).count(),
            300 * 256
        );
    }

    #[test]
    fn a_program_that_does_not_exist_is_named() {
        let outcome = std::panic::catch_unwind(|| {
            run_measured(
                Command::new("tarn-no-such-program"),
                "nothing",
                Duration::from_secs(60),
                1 << 30,
            )
        });
        let message = *outcome
            .expect_err("no program, no measurement")
            .downcast::<String>()
            .expect("a formatted panic");
        assert!(
            message.contains("spawn nothing: tarn-no-such-program"),
            "{message}"
        );
    }

    #[test]
    fn the_environment_and_directory_set_on_the_command_apply() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "test \"$PWD\" = \"$WANT\" && test -z \"$HOME\" && exit 7",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("WANT", dir.path().canonicalize().unwrap())
        .current_dir(dir.path());
        let (code, err, _, _) = run_measured(c, "sh", Duration::from_secs(60), 1 << 30);
        assert_eq!(code, 7, "{err}");
    }

    #[test]
    fn stderr_and_a_signal_are_reported() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo said >&2; kill -9 $$"]);
        let (code, err, _, _) = run_measured(c, "sh", Duration::from_secs(60), 1 << 30);
        assert_eq!((code, err.as_str()), (-1, "said\n"));
    }
}

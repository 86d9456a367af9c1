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
//! own peak, or the launcher's (about 2 MB) if that is larger. The child is given as data
//! ([`MeasuredCommand`]: program, arguments, directory, environment, stdout), so the
//! launcher is started with exactly the child's directory and environment, which it passes on.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often a running child is checked against its bounds.
const POLL: Duration = Duration::from_millis(5);

/// The launcher every measured child is started through (built by `build.rs`).
const LAUNCHER: &str = env!("TARN_MEASURE_LAUNCHER");

/// The child [`run_measured`] starts, as plain data: program, arguments, working directory,
/// environment and where its stdout goes. The environment is this process's unless
/// [`env_clear`](Self::env_clear) was called, with the variables set and removed here
/// applied on top, in order. Stderr is always piped back to the caller.
#[derive(Debug)]
pub struct MeasuredCommand {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    inherit_env: bool,
    /// Each variable set (`Some`) or removed (`None`); the last change to a name wins.
    env_changes: BTreeMap<OsString, Option<OsString>>,
    stdout: Option<Stdio>,
}

impl MeasuredCommand {
    /// `program` with no arguments, in this process's directory and environment, with
    /// stdout inherited.
    pub fn new(program: impl AsRef<OsStr>) -> MeasuredCommand {
        MeasuredCommand {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            dir: None,
            inherit_env: true,
            env_changes: BTreeMap::new(),
            stdout: None,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut MeasuredCommand {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut MeasuredCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut MeasuredCommand {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets `key` to `value` in the child's environment.
    pub fn env(
        &mut self,
        key: impl AsRef<OsStr>,
        value: impl AsRef<OsStr>,
    ) -> &mut MeasuredCommand {
        self.env_changes
            .insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Removes `key` from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut MeasuredCommand {
        self.env_changes.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts the child with an empty environment: nothing of this process's, and none of
    /// the variables set before this call; only those set after it.
    pub fn env_clear(&mut self) -> &mut MeasuredCommand {
        self.inherit_env = false;
        self.env_changes.clear();
        self
    }

    /// Sends the child's stdout to `to` (inherited if never set).
    pub fn stdout(&mut self, to: impl Into<Stdio>) -> &mut MeasuredCommand {
        self.stdout = Some(to.into());
        self
    }

    /// The child's complete environment.
    fn environment(&self) -> BTreeMap<OsString, OsString> {
        let mut env: BTreeMap<OsString, OsString> = if self.inherit_env {
            std::env::vars_os().collect()
        } else {
            BTreeMap::new()
        };
        for (key, value) in &self.env_changes {
            match value {
                Some(v) => env.insert(key.clone(), v.clone()),
                None => env.remove(key),
            };
        }
        env
    }

    /// The launcher, told to write its report to `report` and to run this child, with the
    /// child's directory, environment and stdout (the launcher passes them on).
    fn launcher(self, report: &Path) -> Command {
        let environment = self.environment();
        let mut c = Command::new(LAUNCHER);
        c.arg(report)
            .arg(self.program)
            .args(self.args)
            .env_clear()
            .envs(environment)
            .stderr(Stdio::piped());
        if let Some(dir) = self.dir {
            c.current_dir(dir);
        }
        if let Some(to) = self.stdout {
            c.stdout(to);
        }
        c
    }
}

/// Runs `child` and returns (exit code, stderr, peak RSS in kB, seconds). The peak is
/// `ru_maxrss` from `wait4` as the launcher saw it: the child's own high-water mark and that
/// of every descendant it waited for, never the test process's. While the child runs it is
/// killed, and the call panics naming `what`, once its resident high-water mark passes
/// `kill_kb` or it runs past `bound`. A child ended by a signal reports exit code -1.
pub fn run_measured(
    child: MeasuredCommand,
    what: &str,
    bound: Duration,
    kill_kb: u64,
) -> (i32, String, u64, f64) {
    let report = tempfile::Builder::new()
        .prefix("tarn-measure-")
        .tempfile()
        .unwrap_or_else(|e| panic!("report file for {what}: {e}"));
    let mut c = child.launcher(report.path());
    let start = Instant::now();
    // Reaped with waitpid below, not Child::wait.
    #[allow(clippy::zombie_processes)]
    let mut child = c
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
    fn balloon() -> MeasuredCommand {
        let mut c = MeasuredCommand::new("python3");
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
        let mut c = MeasuredCommand::new("sh");
        c.args(["-c", "python3 -c \"b = b'x' * (200 << 20)\"; exit 3"]);
        let (code, err, peak, _) = run_measured(c, "sh", Duration::from_secs(60), 1 << 30);
        assert_eq!(code, 3, "{err}");
        assert!(peak >= 200 * MIB, "peak {peak} kB, want at least 200 MiB");
    }

    #[test]
    #[should_panic(expected = "kill bound")]
    fn a_process_past_the_kill_bound_is_stopped() {
        let mut c = MeasuredCommand::new("python3");
        c.args(["-c", "import time; b = b'x' * (200 << 20); time.sleep(60)"]);
        run_measured(c, "python3", Duration::from_secs(60), 100 * MIB);
    }

    #[test]
    #[should_panic(expected = "time bound")]
    fn a_process_past_the_time_bound_is_stopped() {
        let mut c = MeasuredCommand::new("sleep");
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
            MeasuredCommand::new("true"),
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
                MeasuredCommand::new("tarn-no-such-program"),
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
        let mut c = MeasuredCommand::new("sh");
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

    /// `env` run with a cleared environment and two variables (one set before the clear,
    /// which the clear drops) prints exactly the variable set after it.
    #[test]
    fn a_cleared_environment_reaches_the_child_empty() {
        let env = std::env::split_paths(&std::env::var_os("PATH").expect("PATH"))
            .map(|dir| dir.join("env"))
            .find(|p| p.is_file())
            .expect("env on PATH");
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut c = MeasuredCommand::new(env);
        c.env("DROPPED", "1")
            .env_clear()
            .env("ONLY", "this")
            .stdout(out.reopen().unwrap());
        let (code, err, _, _) = run_measured(c, "env", Duration::from_secs(60), 1 << 30);
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(out.path()).unwrap(), "ONLY=this\n");
    }

    /// Without a clear the child sees this process's environment, minus what was removed.
    #[test]
    fn an_inherited_environment_keeps_this_processs_variables() {
        let mut c = MeasuredCommand::new("sh");
        c.args(["-c", "test -n \"$PATH\" && test -z \"$HOME\" && exit 7"])
            .env_remove("HOME");
        let (code, err, _, _) = run_measured(c, "sh", Duration::from_secs(60), 1 << 30);
        assert_eq!(code, 7, "{err}");
    }

    #[test]
    fn stderr_and_a_signal_are_reported() {
        let mut c = MeasuredCommand::new("sh");
        c.args(["-c", "echo said >&2; kill -9 $$"]);
        let (code, err, _, _) = run_measured(c, "sh", Duration::from_secs(60), 1 << 30);
        assert_eq!((code, err.as_str()), (-1, "said\n"));
    }
}

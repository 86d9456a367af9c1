//! Peak memory as the kernel counts it. A child process runs under a time bound and a memory
//! kill bound, and when it ends its peak resident set comes from `wait4`'s `ru_maxrss` —
//! the kernel's own high-water mark, kept until the moment it is reaped — never from
//! sampling `/proc`, which misses a process that balloons and exits between two samples.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often a running child is checked against its bounds.
const POLL: Duration = Duration::from_millis(5);

/// Runs `c` with stderr piped and returns (exit code, stderr, peak RSS in kB, seconds).
/// The peak is `ru_maxrss` from `wait4`: the child's own high-water mark and that of every
/// descendant it waited for. While the child runs it is killed, and the call panics naming
/// `what`, once its resident high-water mark passes `kill_kb` or it runs past `bound`.
/// A child ended by a signal reports exit code -1.
pub fn run_measured(
    mut c: Command,
    what: &str,
    bound: Duration,
    kill_kb: u64,
) -> (i32, String, u64, f64) {
    let start = Instant::now();
    // Reaped with wait4 below (which keeps its rusage), not Child::wait.
    #[allow(clippy::zombie_processes)]
    let mut child = c
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    // Drained on its own thread so a chatty child never blocks on a full pipe.
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let drain = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let (status, usage) = loop {
        if let Some(done) = reap(pid, libc::WNOHANG) {
            break done;
        }
        let live = live_peak_rss_kb(child.id()).unwrap_or(0);
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
            let _ = child.kill();
            let _ = reap(pid, 0);
            panic!("{what} stopped after {:?}: {why}", start.elapsed());
        }
        std::thread::sleep(POLL);
    };
    let secs = start.elapsed().as_secs_f64();
    let err = drain.join().expect("the stderr reader");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, err, max_rss_kb(&usage), secs)
}

/// Reaps `pid` with `wait4` (`flags` 0 blocks, `WNOHANG` does not); `None` while it runs.
fn reap(pid: libc::pid_t, flags: libc::c_int) -> Option<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the types wait4 writes.
        let got = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if got == pid {
            return Some((status, usage));
        }
        if got == 0 {
            return None;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::Interrupted,
            "wait4({pid}): {e}"
        );
    }
}

/// `ru_maxrss` in kB (Linux counts kB, macOS bytes).
fn max_rss_kb(usage: &libc::rusage) -> u64 {
    let raw = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    if cfg!(target_os = "macos") {
        raw / 1024
    } else {
        raw
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

    #[test]
    fn stderr_and_a_signal_are_reported() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo said >&2; kill -9 $$"]);
        let (code, err, _, _) = run_measured(c, "sh", Duration::from_secs(60), 1 << 30);
        assert_eq!((code, err.as_str()), (-1, "said\n"));
    }
}

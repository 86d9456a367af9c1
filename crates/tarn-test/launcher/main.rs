//! `tarn-measure-launcher REPORT PROGRAM [ARG…]`: runs PROGRAM and writes what the kernel
//! says about it to the file REPORT, for `tarn_test::run_measured`.
//!
//! A child's `ru_maxrss` includes the memory map it leaves at `exec`. A child started by a
//! large test process (Rust's `Command` uses `posix_spawn`, which shares the parent's map
//! until `exec`) therefore reports at least the test process's own peak. This launcher is
//! exec'd first, so its map is a fresh and small one; PROGRAM is started from it, and its
//! `ru_maxrss` is PROGRAM's own peak (at least this launcher's, about 2 MB).
//!
//! REPORT receives `pid N` once PROGRAM runs, then `maxrss KB` and `exit CODE` or
//! `signal N` when it has ended, or `spawn-error TEXT` if it could not start. The launcher
//! exits with PROGRAM's code (128 + N after signal N). Built by tarn-test's `build.rs` with
//! the standard library only; not part of tarn.

use std::fs::File;
use std::io::Write;
use std::os::raw::{c_int, c_long};
use std::os::unix::process::ExitStatusExt;
use std::process::{exit, Command};

/// `struct rusage` on 64-bit Unix: two `timeval`s, then `ru_maxrss` and 14 more `long`s.
#[repr(C)]
struct Rusage {
    times: [c_long; 4],
    maxrss: c_long,
    rest: [c_long; 14],
}

extern "C" {
    fn getrusage(who: c_int, usage: *mut Rusage) -> c_int;
}

/// `RUSAGE_CHILDREN`: the children this process has waited for.
const RUSAGE_CHILDREN: c_int = -1;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(report), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: tarn-measure-launcher REPORT PROGRAM [ARG...]");
        exit(2);
    };
    let mut out = File::create(&report).unwrap_or_else(|e| {
        eprintln!("tarn-measure-launcher: {}: {e}", report.to_string_lossy());
        exit(2)
    });
    let mut child = match Command::new(&program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "spawn-error {}: {e}", program.to_string_lossy());
            exit(127);
        }
    };
    let _ = writeln!(out, "pid {}", child.id());
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(out, "spawn-error wait: {e}");
            exit(127);
        }
    };
    let mut usage = Rusage {
        times: [0; 4],
        maxrss: 0,
        rest: [0; 14],
    };
    // SAFETY: `usage` is a live value laid out as the C struct getrusage writes.
    let maxrss = if unsafe { getrusage(RUSAGE_CHILDREN, &mut usage) } == 0 {
        usage.maxrss
    } else {
        -1
    };
    let ending = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => "exit 1".to_owned(),
    };
    let _ = writeln!(out, "maxrss {maxrss}\n{ending}");
    let _ = out.sync_all();
    exit(status.code().unwrap_or(128 + status.signal().unwrap_or(0)));
}

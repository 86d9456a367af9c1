//! Terminal output: logging setup, error printing, progress bars (only when stderr is a
//! terminal and neither `-q` nor `--json` is given).

use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use tarn_core::printable_lines;

use crate::global_args::GlobalArgs;

/// Exit code when stdout or stderr is a closed pipe: 128 + SIGPIPE, what a shell reports
/// for a program killed by SIGPIPE, so `tarn … | head` behaves like other tools.
pub(crate) const EXIT_BROKEN_PIPE: u8 = 141;

/// Makes a write to a closed stdout or stderr end the process quietly with
/// [`EXIT_BROKEN_PIPE`] instead of panicking (exit 101 and a backtrace hint). Rust ignores
/// SIGPIPE, so such a write fails with `EPIPE`, which `println!`/`eprintln!` turn into a panic
/// with a fixed message; this hook recognises that message. Every other panic is reported as
/// before. Writes to a cache are atomic, so stopping here leaves nothing half-written.
pub(crate) fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(i32::from(EXIT_BROKEN_PIPE));
        }
        default(info);
    }));
}

/// Prints clap's help, version or usage error where clap would (stdout for help and version,
/// stderr for errors, in colour on a terminal) and returns the exit code: clap's (0, or 2 for
/// a usage error), or [`EXIT_BROKEN_PIPE`] when that stream is a closed pipe.
pub(crate) fn print_clap(e: &clap::Error) -> ExitCode {
    let printed = e.print().and_then(|()| {
        if e.use_stderr() {
            std::io::stderr().flush()
        } else {
            std::io::stdout().flush()
        }
    });
    match printed {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(EXIT_BROKEN_PIPE)
        }
        _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
    }
}

/// Sets up `tracing` on stderr: warnings by default, `-v` info, `-vv` debug, `-q` errors only.
pub(crate) fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TARN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || EscapedStderr { ansi })
        .with_target(false)
        .without_time()
        .with_ansi(ansi)
        .try_init();
}

/// Stderr for log lines, which may quote a checkout or a server: every line goes through
/// the one escaper ([`tarn_core::printable_lines`]: control characters shown escaped, no CI
/// workflow command); on a terminal, where the log's own colours are escape sequences, only
/// workflow commands are defused.
struct EscapedStderr {
    ansi: bool,
}

impl std::io::Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let shown = if self.ansi {
            tarn_core::no_workflow_commands(&text)
        } else {
            printable_lines(&text)
        };
        std::io::stderr().write_all(shown.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// An error with the fix a user can apply. The hint is data: [`print_error`] renders it once,
/// as the last line, after the chain of causes.
#[derive(Debug)]
pub(crate) struct Hinted {
    error: anyhow::Error,
    hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// `error`, with `hint` for the user.
pub(crate) fn with_hint(error: impl Into<anyhow::Error>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        error: error.into(),
        hint: hint.into(),
    })
}

/// Prints an error and its chain of causes, then the hint of the outermost [`Hinted`] in the
/// chain, if any (CONTRIBUTING.md: `error:`, `  caused by:`, `  hint:`).
///
/// Messages may quote what a server sent: every control character but the line break is
/// printed escaped ([`tarn_core::printable_lines`]), so none steers the terminal.
pub(crate) fn print_error(e: &anyhow::Error) {
    let mut shown = e.to_string();
    eprintln!("error: {}", printable_lines(&shown));
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        // Errors that embed their source in their own message would repeat it.
        if shown.contains(&text) {
            continue;
        }
        eprintln!("  caused by: {}", printable_lines(&text));
        shown = text;
    }
    if let Some(h) = e.chain().find_map(|c| c.downcast_ref::<Hinted>()) {
        print_hint(&h.hint);
    }
}

/// Prints a failure that is reported, not returned (the command goes on to exit 1), with the
/// fix for it.
pub(crate) fn print_failure(message: &str, hint: &str) {
    eprintln!("error: {}", printable_lines(message));
    print_hint(hint);
}

/// How many lines of one kind [`print_capped`] shows before it summarises the rest.
pub(crate) const REPEATS_SHOWN: usize = 5;

/// Prints `errors` as `error:` lines, at most [`REPEATS_SHOWN`] of them, then one line counting
/// the rest, so that one mistake (a wrong cache) does not flood the terminal. `what` names the
/// kind of line, plural.
pub(crate) fn print_capped<T: std::fmt::Display>(errors: &[T], what: &str) {
    for line in errors.iter().take(REPEATS_SHOWN) {
        eprintln!("error: {}", printable_lines(&line.to_string()));
    }
    if let Some(more) = capped_summary(errors.len(), what) {
        eprintln!("error: {more}");
    }
}

/// [`print_capped`] for warnings, through `tracing` (so `-q` silences them).
pub(crate) fn warn_capped<T: std::fmt::Display>(warnings: &[T], what: &str) {
    for line in warnings.iter().take(REPEATS_SHOWN) {
        tracing::warn!("{line}");
    }
    if let Some(more) = capped_summary(warnings.len(), what) {
        tracing::warn!("{more}");
    }
}

fn capped_summary(n: usize, what: &str) -> Option<String> {
    (n > REPEATS_SHOWN).then(|| format!("… and {} more {what} ({n} in all)", n - REPEATS_SHOWN))
}

fn print_hint(hint: &str) {
    eprintln!("  hint: {}", printable_lines(hint));
}

/// Whether progress bars should be drawn.
pub(crate) fn show_progress(global: &GlobalArgs) -> bool {
    !global.quiet && !global.json && std::io::stderr().is_terminal()
}

/// A progress bar over `len` items, hidden when [`show_progress`] is false.
pub(crate) fn progress_bar(global: &GlobalArgs, len: u64, what: &str) -> indicatif::ProgressBar {
    if !show_progress(global) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({per_sec}, ETA {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// `eprintln!` through the one escaper of outside text ([`tarn_core::printable_lines`]):
/// every human-readable line tarn prints may quote a checkout (a package name, a path, a
/// revision) or a server, and none may steer the terminal or forge a CI workflow command.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", tarn_core::printable_lines(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// `println!` through the same escaper, for human-readable lines on stdout.
macro_rules! show {
    ($($arg:tt)*) => {
        println!("{}", tarn_core::printable_lines(&format!($($arg)*)))
    };
}
pub(crate) use show;

thread_local! {
    /// The JSON summaries kept by [`capture_json`] instead of being printed.
    static CAPTURED_JSON: std::cell::RefCell<Option<Vec<serde_json::Value>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, keeping the JSON summaries it prints (on this thread) instead of printing them,
/// so that a command made of two steps (`get --restore`) prints one document.
pub(crate) fn capture_json<R>(f: impl FnOnce() -> R) -> (R, Vec<serde_json::Value>) {
    CAPTURED_JSON.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let result = f();
    let kept = CAPTURED_JSON
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    (result, kept)
}

/// Prints a JSON value on stdout (the `--json` summary), or keeps it for [`capture_json`].
pub(crate) fn print_json(value: &serde_json::Value) {
    let kept = CAPTURED_JSON.with(|c| match c.borrow_mut().as_mut() {
        Some(v) => {
            v.push(value.clone());
            true
        }
        None => false,
    });
    if kept {
        return;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON serialises")
    );
}

/// A byte count for people, in decimal units (CONTRIBUTING.md): `512 B`, `1.5 kB`, `389.2 MB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_are_shown_in_decimal_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(389_200_000), "389.2 MB");
        assert_eq!(human_bytes(2_000_000_000_000_000), "2000.0 TB");
    }
}

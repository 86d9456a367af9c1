//! The workspace's Lean, found as Lake finds it, and what it says about itself.
//!
//! Lake puts its own build's `System.Platform.target` and `Lean.toolchain` into cache URLs.
//! tarn is not Lean, so it asks the Lean the workspace would use: `<LEAN_SYSROOT>/bin/lean`
//! when that variable is set, else the `lean` on `PATH` (Lake's `findLeanInstall?`), run in
//! the package directory so that elan's proxy picks the package's `lean-toolchain`. The
//! answer of a toolchain elan names exactly (`leanprover/lean4:v4.28.0`, not `stable`) is kept
//! in `<cache home>/tarn/lean-version/`, one small file per toolchain, so later commands need
//! not start Lean. The output read is bounded, and a `lean` that hangs is killed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tarn_core::{elan_toolchain_name, toolchain_dir, LeanVersion, LEAN_VERSION_OUTPUT_LIMIT};

use crate::cache::write_atomic;

/// How long `lean --version` may take (elan may first have to install the toolchain).
pub(crate) const LEAN_PROBE_TIMEOUT: Duration = Duration::from_secs(300);

/// The environment variables that decide which Lean runs, captured once.
#[derive(Debug, Clone, Default)]
pub struct LeanEnv {
    /// `PATH`.
    pub path: Option<std::ffi::OsString>,
    /// `LEAN_SYSROOT`.
    pub lean_sysroot: Option<String>,
    /// `ELAN` (set but blank: elan disabled, as in Lake's `findElanInstall?`).
    pub elan: Option<String>,
    /// `ELAN_HOME`.
    pub elan_home: Option<String>,
    /// `ELAN_TOOLCHAIN` (elan's override, when set and non-empty).
    pub elan_toolchain: Option<String>,
    /// `HOME` (elan's default home is `~/.elan`; tarn's answers live under `~/.cache`).
    pub home: Option<String>,
    /// `XDG_CACHE_HOME`.
    pub xdg_cache_home: Option<String>,
}

impl LeanEnv {
    /// Reads the variables from the process environment.
    pub fn from_process() -> LeanEnv {
        let var = |k: &str| std::env::var(k).ok();
        LeanEnv {
            path: std::env::var_os("PATH"),
            lean_sysroot: var("LEAN_SYSROOT"),
            elan: var("ELAN"),
            elan_home: var("ELAN_HOME"),
            elan_toolchain: var("ELAN_TOOLCHAIN"),
            home: var(if cfg!(windows) { "USERPROFILE" } else { "HOME" }),
            xdg_cache_home: var("XDG_CACHE_HOME"),
        }
    }

    fn elan_disabled(&self) -> bool {
        self.elan.as_deref().is_some_and(|e| e.trim().is_empty())
    }

    fn elan_bin(&self) -> Option<PathBuf> {
        let home = match self.elan_home.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h),
            None => Path::new(self.home.as_deref().filter(|h| !h.is_empty())?).join(".elan"),
        };
        Some(home.join("bin"))
    }

    fn answers_dir(&self) -> Option<PathBuf> {
        let base = match self.xdg_cache_home.as_deref().filter(|s| !s.is_empty()) {
            Some(x) => PathBuf::from(x),
            None => Path::new(self.home.as_deref().filter(|h| !h.is_empty())?).join(".cache"),
        };
        Some(base.join("tarn").join("lean-version"))
    }
}

/// The Lean a workspace uses and what it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanProbe {
    /// The program that was (or, for a kept answer, would be) run.
    pub program: PathBuf,
    /// Its `--version` line, parsed.
    pub version: LeanVersion,
    /// The toolchain name elan passes to `lake` in `ELAN_TOOLCHAIN` when `program` is elan's
    /// proxy (`None` when elan is not in use).
    pub elan_toolchain: Option<String>,
}

/// Why no Lean could be asked.
#[derive(Debug, thiserror::Error)]
pub enum LeanProbeError {
    /// No `lean` on `PATH` and no `LEAN_SYSROOT`.
    #[error("no `lean` on PATH (and LEAN_SYSROOT is not set)")]
    NotFound,
    /// The program could not be started.
    #[error("could not run {}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It ran but failed or took too long.
    #[error("`{} --version` {status}", program.display())]
    Failed {
        /// The program.
        program: PathBuf,
        /// What happened (`exited with …`, `took longer than …`).
        status: String,
    },
    /// It printed something that is not Lean's version line.
    #[error("`{} --version` printed {output:?}, not Lean's version line", program.display())]
    Unrecognised {
        /// The program.
        program: PathBuf,
        /// The first line it printed (bounded).
        output: String,
    },
}

/// Finds the Lean the package in `dir` uses (its `lean-toolchain` first line is
/// `toolchain_line`) and returns what it says about itself.
pub fn probe_lean(
    dir: &Path,
    toolchain_line: Option<&str>,
    env: &LeanEnv,
) -> Result<LeanProbe, LeanProbeError> {
    let program = find_lean(env).ok_or(LeanProbeError::NotFound)?;
    let via_elan = !env.elan_disabled()
        && env.lean_sysroot.is_none()
        && env
            .elan_bin()
            .is_some_and(|bin| same_dir(program.parent(), &bin));
    // The exact name elan gives the toolchain, when it needs no network to know it.
    let fixed_name = via_elan
        .then(
            || match env.elan_toolchain.as_deref().filter(|t| !t.is_empty()) {
                Some(t) => elan_toolchain_name(t),
                None => toolchain_line.and_then(elan_toolchain_name),
            },
        )
        .flatten();
    let kept = fixed_name
        .as_deref()
        .zip(env.answers_dir())
        .map(|(name, d)| d.join(format!("{}.txt", toolchain_dir(name))));
    if let Some(version) = kept
        .as_deref()
        .and_then(|p| {
            // The one bounded, non-blocking reader: a FIFO or a huge file here is ignored.
            let limit = crate::local_file::ReadLimit {
                bytes: LEAN_VERSION_OUTPUT_LIMIT as u64,
                what: "a kept `lean --version` answer",
                env: None,
            };
            crate::local_file::read_local_file(p, crate::local_file::Links::Refuse, &limit).ok()
        })
        .and_then(|b| LeanVersion::parse(&String::from_utf8_lossy(&b)))
    {
        return Ok(LeanProbe {
            program,
            version,
            elan_toolchain: fixed_name,
        });
    }
    let line = run_version(&program, dir)?;
    let version = LeanVersion::parse(&line).ok_or_else(|| LeanProbeError::Unrecognised {
        program: program.clone(),
        output: line.chars().take(200).collect(),
    })?;
    if let Some(path) = &kept {
        // Best effort: a cache home that cannot be written only costs the next run a probe.
        if let Some(parent) = path.parent() {
            if std::fs::create_dir_all(parent).is_ok() {
                if let Err(e) = write_atomic(path, format!("{line}\n").as_bytes()) {
                    tracing::debug!("not keeping Lean's version line: {e}");
                }
            }
        }
    }
    let elan_toolchain = via_elan.then(|| {
        fixed_name.unwrap_or_else(|| version.elan_name(toolchain_line.and_then(origin_of)))
    });
    Ok(LeanProbe {
        program,
        version,
        elan_toolchain,
    })
}

fn origin_of(line: &str) -> Option<&str> {
    tarn_core::toolchain_origin(line)
}

/// `<LEAN_SYSROOT>/bin/lean`, else the first `lean` on `PATH`.
fn find_lean(env: &LeanEnv) -> Option<PathBuf> {
    let exe = format!("lean{}", std::env::consts::EXE_SUFFIX);
    if let Some(root) = env.lean_sysroot.as_deref().filter(|s| !s.is_empty()) {
        return Some(Path::new(root).join("bin").join(exe));
    }
    std::env::split_paths(env.path.as_ref()?)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(&exe))
        .find(|p| p.is_file())
}

fn same_dir(a: Option<&Path>, b: &Path) -> bool {
    match (a.and_then(|a| a.canonicalize().ok()), b.canonicalize().ok()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Runs `program --version` in `dir`; its first line, read within the output limit and the
/// time limit (a program that overruns is killed).
fn run_version(program: &Path, dir: &Path) -> Result<String, LeanProbeError> {
    let failed = |status: String| LeanProbeError::Failed {
        program: program.to_path_buf(),
        status,
    };
    let mut child = Command::new(program)
        .arg("--version")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| LeanProbeError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (send, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        // One byte over the limit tells a long output from one that just fits.
        let _ = stdout
            .take(LEAN_VERSION_OUTPUT_LIMIT as u64 + 1)
            .read_to_end(&mut buf);
        let _ = send.send(buf);
    });
    let deadline = Instant::now() + LEAN_PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "took longer than {} s",
                    LEAN_PROBE_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(failed(format!("could not be waited for: {e}"))),
        }
    };
    // The child has exited; a grandchild that still holds the pipe open is not waited for
    // beyond the deadline (the reader thread then ends with it).
    let out = received
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .map_err(|_| failed("left its output open past the time limit".to_string()))?;
    if !status.success() {
        return Err(failed(format!("exited with {status}")));
    }
    if out.len() > LEAN_VERSION_OUTPUT_LIMIT {
        return Err(failed(format!(
            "printed more than {LEAN_VERSION_OUTPUT_LIMIT} bytes"
        )));
    }
    let text = String::from_utf8_lossy(&out);
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

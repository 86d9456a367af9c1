//! Git queries through the real `git` binary (what Lake does): HEAD, `rev-list`, dirty check.
//!
//! The directory may be a checkout tarn did not make (a pull request, a dependency), so git
//! runs hardened ([`SAFE_CONFIG`], [`command`]): no system configuration, no hooks, no
//! file-system monitor, no external diff or text conversion, no pager, no prompt, no
//! repository variables inherited from the environment, and no bare repository found by
//! discovery (`safe.bareRepository=explicit`: a committed directory that looks like a git
//! directory is not one to git). A repository whose work tree does not hold the directory
//! asked about (`core.worktree` pointing elsewhere) is refused before its work tree is
//! read. Git's own ownership check (`safe.directory`) is left as it is: tarn never widens
//! it; a repository owned by another user needs `safe.directory` in the user's global
//! configuration, as for any git command.

use std::path::Path;
use std::process::{Command, Output};

/// A git command that failed or could not run.
#[derive(Debug, Clone, thiserror::Error)]
#[error("git {args} (in {dir}): {message}")]
pub struct GitError {
    /// The arguments.
    pub args: String,
    /// The directory.
    pub dir: String,
    /// stderr or the spawn error.
    pub message: String,
}

impl GitError {
    fn new(dir: &Path, args: &[&str], message: impl Into<String>) -> GitError {
        GitError {
            args: args.join(" "),
            dir: dir.display().to_string(),
            message: message.into(),
        }
    }
}

/// Configuration given to every git command (`-c NAME=VALUE`, which outranks the
/// repository's own): what a hostile repository configuration could otherwise use to run
/// a program or read outside the checkout.
pub(crate) const SAFE_CONFIG: &[&str] = &[
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "safe.bareRepository=explicit",
    "core.pager=cat",
    "diff.external=",
    "protocol.allow=never",
];

/// Environment variables that point git at another repository, index or object store, or
/// add configuration: removed so that git sees only the directory asked about.
/// (`GIT_CEILING_DIRECTORIES` is kept: it can only stop git from looking further up.)
const REMOVED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_CONFIG",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_PAGER",
];

/// `git -c SAFE… -C dir`, hardened as the module documentation says; add the arguments.
pub(crate) fn command(dir: &Path) -> Command {
    let mut c = Command::new("git");
    for name in REMOVED_ENV {
        c.env_remove(name);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .arg("--no-pager");
    for setting in SAFE_CONFIG {
        c.arg("-c").arg(setting);
    }
    c.arg("-C").arg(dir);
    c
}

/// `git -C dir args`, its output whatever the exit status; an error only if git cannot run.
fn run(dir: &Path, args: &[&str]) -> Result<Output, GitError> {
    command(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| GitError::new(dir, args, format!("cannot run git: {e}")))
}

/// Refuses a repository whose work tree does not hold `dir` (its `core.worktree` points
/// elsewhere): git would read, and run filters on, files outside the checkout.
fn check_work_tree(dir: &Path) -> Result<(), GitError> {
    let args = ["rev-parse", "--show-toplevel"];
    let top = git_ok(dir, &args)?;
    let top = Path::new(top.trim_end_matches(['\n', '\r']));
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if !real(dir).starts_with(real(top)) {
        return Err(GitError::new(
            dir,
            &args,
            format!(
                "the repository's work tree is {}, which does not hold this directory \
                 (core.worktree points elsewhere); refused",
                top.display()
            ),
        ));
    }
    Ok(())
}

/// Exit status 0 (`true`) or 1 (`false`) and stdout; any other status is an error.
fn git(dir: &Path, args: &[&str]) -> Result<(bool, String), GitError> {
    let out = run(dir, args)?;
    let ok = out.status.success();
    if !ok && out.status.code() != Some(1) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(GitError::new(dir, args, stderr.trim()));
    }
    Ok((ok, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn git_ok(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let (ok, out) = git(dir, args)?;
    if !ok {
        return Err(GitError::new(dir, args, "exited with status 1"));
    }
    Ok(out)
}

/// The commit at HEAD (full SHA-1).
pub(crate) fn head(dir: &Path) -> Result<String, GitError> {
    Ok(git_ok(dir, &["rev-parse", "--verify", "HEAD"])?
        .trim()
        .to_string())
}

/// Whether `rev` is a full SHA-1 object name (40 hex digits), which Lake uses verbatim.
pub(crate) fn is_full_object_name(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves a revision as Lake's `GitRepo.resolveRevision` does: a full object name is used
/// verbatim, without a repository; anything else is
/// `git rev-parse --verify --end-of-options REV` in `dir` (no `^{commit}`: an annotated tag
/// resolves to the tag object, as in Lake). A revision git cannot resolve is
/// `revision not found '<rev>'`.
pub(crate) fn resolve_rev(dir: &Path, rev: &str) -> Result<String, GitError> {
    if is_full_object_name(rev) {
        return Ok(rev.to_string());
    }
    let args = ["rev-parse", "--verify", "--end-of-options", rev];
    let out = run(dir, &args)?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || sha.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = format!("revision not found '{rev}' ({})", stderr.trim());
        return Err(GitError::new(dir, &args, message));
    }
    Ok(sha)
}

/// `git rev-list HEAD [-n max]`: newest first; `max == 0` means the whole history.
pub fn rev_list(dir: &Path, max: u64) -> Result<Vec<String>, GitError> {
    let n = max.to_string();
    let mut args = vec!["rev-list", "HEAD"];
    if max > 0 {
        args.extend(["-n", &n]);
    }
    Ok(git_ok(dir, &args)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Whether tracked files differ from HEAD (`git diff --quiet HEAD`), as Lake checks before
/// using HEAD as the revision. The work tree must hold `dir` (see [`check_work_tree`]).
pub(crate) fn is_dirty(dir: &Path) -> Result<bool, GitError> {
    check_work_tree(dir)?;
    let (clean, _) = git(
        dir,
        &[
            "diff",
            "--quiet",
            "--no-ext-diff",
            "--no-textconv",
            "HEAD",
            "--",
        ],
    )?;
    Ok(!clean)
}

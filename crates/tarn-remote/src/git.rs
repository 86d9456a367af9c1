//! Git queries through the real `git` binary (what Lake does): HEAD, `rev-list`, dirty check.

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

/// `git -C dir args`, its output whatever the exit status; an error only if git cannot run.
fn run(dir: &Path, args: &[&str]) -> Result<Output, GitError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| GitError::new(dir, args, format!("cannot run git: {e}")))
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
/// using HEAD as the revision.
pub(crate) fn is_dirty(dir: &Path) -> Result<bool, GitError> {
    let (clean, _) = git(dir, &["diff", "--quiet", "HEAD", "--"])?;
    Ok(!clean)
}

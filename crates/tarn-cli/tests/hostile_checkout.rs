//! A checkout is outside input (issue 18, items 7 and 8): a pull request or a dependency
//! decides its `lake-manifest.json`, its lakefiles, its `lean-toolchain` and what looks like
//! a git repository inside it. `tarn get` must read nothing outside the workspace, run no
//! command the checkout names, and print no secret a file read through a link would hold.

use std::path::Path;
use std::process::Output;

use tarn_test::Sandbox;

/// A service nobody answers (nothing listens on port 1): the checks below happen before
/// any request.
const CONFIG: &str = "[[cache.service]]\nname = \"s\"\nkind = \"s3\"\nartifactEndpoint = \"http://127.0.0.1:1/a\"\nrevisionEndpoint = \"http://127.0.0.1:1/r\"\n";

/// A sandbox with the unreachable service and a committed root package `ws` in `ws/`.
fn workspace() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    std::fs::write(sb.path("config.toml"), CONFIG).unwrap();
    let ws = sb.path("ws");
    tarn_test::git_package(&ws, "ws", 1);
    (sb, ws)
}

/// A manifest with the given `packagesDir` (JSON text) and one path dependency `dir`.
fn manifest(packages_dir: &str, dir: &str) -> String {
    format!(
        r#"{{"version": "1.1.0", "packagesDir": {packages_dir}, "packages": [{{"type": "path", "scope": "", "name": "dep", "manifestFile": "lake-manifest.json", "inherited": false, "dir": {dir}, "configFile": "lakefile.toml"}}], "name": "ws", "lakeDir": ".lake"}}"#
    )
}

/// `tarn get --deps` in `ws`, with `LAKE_CACHE_KEY` set to a secret that must never be
/// printed.
fn get_deps(sb: &Sandbox, ws: &Path, extra: &[&str]) -> Output {
    let mut c = sb.command();
    c.current_dir(ws)
        .env("LAKE_CACHE_KEY", "id:supersecretvalue0123")
        .args(["--cache-dir", "../cache", "get", "--service", "s"])
        .args(extra);
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_directory_of_the_workspace_leading_out_of_it_is_refused() {
    let (sb, ws) = workspace();
    let outside = sb.path("outside");
    tarn_test::git_package(&outside, "dep", 1);
    // A path dependency `dir` or a `packagesDir` that leads out, lexically.
    for (packages_dir, dir, why) in [
        (
            r#"".lake/packages""#,
            r#""../../../../../etc""#,
            "`dir` \"../../../../../etc\" leads out of the workspace",
        ),
        (
            r#"".lake/packages""#,
            r#""/""#,
            "`dir` \"/\" is an absolute path",
        ),
        (
            r#""/""#,
            r#""d""#,
            "`packagesDir` \"/\" is an absolute path",
        ),
        (
            r#""deps\n..""#,
            r#""d""#,
            "`packagesDir` \"deps\\n..\" holds a control character",
        ),
    ] {
        refused_with(&sb, &ws, &manifest(packages_dir, dir), why);
    }
    // Through a symbolic link: a path dependency inside the workspace whose directory is a
    // link out of it, and a `packagesDir` that is one.
    std::os::unix::fs::symlink(&outside, ws.join("linked")).unwrap();
    refused_with(
        &sb,
        &ws,
        &manifest(r#"".lake/packages""#, r#""linked""#),
        "dependency `dep`: leads outside the workspace",
    );
    std::fs::create_dir(ws.join(".lake")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join(".lake/packages")).unwrap();
    refused_with(
        &sb,
        &ws,
        &manifest(r#"".lake/packages""#, r#""d""#),
        "`packagesDir`: leads outside the workspace",
    );
}

/// Writes `manifest` into `ws` and asserts that `tarn get --deps` fails (exit 1) saying
/// `why`, and naming `lake-manifest.json` or the directory at fault.
fn refused_with(sb: &Sandbox, ws: &Path, manifest: &str, why: &str) {
    std::fs::write(ws.join("lake-manifest.json"), manifest).unwrap();
    let out = get_deps(sb, ws, &["--deps"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{why}: {err}");
    assert!(err.contains(why), "{err}");
}

#[test]
fn a_committed_bare_repository_runs_no_command() {
    let (sb, ws) = workspace();
    // `ws/evil`: plain files that make a git directory (HEAD, objects, refs, config), with a
    // commit, a work tree outside the checkout and a file-system monitor that is a command.
    let evil = ws.join("evil");
    tarn_test::git(&ws, &["init", "-q", "--bare", "evil"]);
    let tree = sb.path("elsewhere");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("f"), "x\n").unwrap();
    let in_evil = |args: &[&str]| {
        let mut all = vec!["--git-dir", "evil", "--work-tree"];
        let t = tree.to_str().unwrap();
        all.push(t);
        all.extend(args);
        tarn_test::git(&ws, &all);
    };
    in_evil(&["add", "f"]);
    in_evil(&["commit", "-q", "-m", "c"]);
    std::fs::write(tree.join("f"), "changed\n").unwrap();
    let marker = sb.path("MARKER");
    let mut config = std::fs::read_to_string(evil.join("config")).unwrap();
    config.push_str(&format!(
        "[core]\n\tbare = false\n\tworktree = {}\n\tfsmonitor = \"touch {}\"\n",
        tree.display(),
        marker.display()
    ));
    std::fs::write(evil.join("config"), config).unwrap();
    std::fs::write(evil.join("lakefile.toml"), "name = \"dep\"\n").unwrap();
    std::fs::write(
        ws.join("lake-manifest.json"),
        manifest(r#"".lake/packages""#, r#""evil""#),
    )
    .unwrap();
    let out = get_deps(&sb, &ws, &["--deps", "--dep-scope", "dep=o/dep"]);
    let err = stderr(&out);
    assert!(
        !marker.exists(),
        "git ran the checkout's core.fsmonitor: {err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("dep"), "{err}");
}

#[test]
fn a_checkout_file_linked_outside_is_refused_unread_and_no_secret_is_printed() {
    let secret = "supersecretvalue0123";
    for file in ["lakefile.toml", "lean-toolchain", "lake-manifest.json"] {
        let (sb, ws) = workspace();
        let path = ws.join(file);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink("/proc/self/environ", &path).unwrap();
        let out = get_deps(&sb, &ws, &["--repo", "o/n"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{file}: {err}");
        assert!(!err.contains(secret), "{file}: {err}");
        assert!(err.contains(file), "{file}: {err}");
        assert!(
            err.contains("leads outside the workspace") && err.contains("/proc/"),
            "{file}: {err}"
        );
    }
    // A regular lakefile holding a secret-shaped line: the parse error gives its position,
    // never the line; a parser message that quotes a secret-shaped value is withheld.
    for (text, why) in [
        (
            format!("name = \"ws\"\nLAKE_CACHE_KEY=id:{secret}\n"),
            "line 2, column 16 (key `LAKE_CACHE_KEY`): invalid string; expected",
        ),
        (
            format!("name = \"ws\"\nplatformIndependent = \"TOKEN {secret}\"\n"),
            "line 2, column 23 (key `platformIndependent`): the parser's message is withheld",
        ),
    ] {
        let (sb, ws) = workspace();
        std::fs::write(ws.join("lakefile.toml"), text).unwrap();
        let out = get_deps(&sb, &ws, &["--repo", "o/n"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains(secret), "{err}");
        assert!(err.contains("lakefile.toml"), "{err}");
        assert!(err.contains(why), "{err}");
    }
}

/// Whether a line of `text` is a GitHub Actions workflow command (`::name …::`, or the
/// older `##[name]` anywhere in a line).
fn forged_command(text: &str) -> Option<&str> {
    text.lines()
        .find(|l| l.trim_start().starts_with("::") || l.contains("##["))
}

#[test]
fn a_checkout_cannot_forge_a_workflow_command_in_the_log() {
    let forged = "\n::warning title=x::forged\n::add-mask::hunter2\n##[error]old form";
    // A dependency name, a revision and a scope with line breaks in the manifest.
    for (field, value) in [("name", "dep"), ("rev", "r"), ("scope", "s")] {
        let (sb, ws) = workspace();
        let mut entry = serde_json::json!({"type": "git", "scope": "", "name": "dep",
            "url": "https://github.com/o/dep", "rev": "r", "inherited": false});
        entry[field] = serde_json::Value::String(format!("{value}{forged}"));
        let m = serde_json::json!({"version": "1.1.0", "packagesDir": ".lake/packages",
            "packages": [entry], "name": "ws"});
        std::fs::write(ws.join("lake-manifest.json"), m.to_string()).unwrap();
        let out = get_deps(&sb, &ws, &["--deps", "-v"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{field}: {err}");
        assert!(
            err.contains("holds a control character") || err.contains("cannot name a directory"),
            "{field}: {err}"
        );
        assert_eq!(forged_command(&err), None, "{field}: {err}");
    }
    // The root package's own name.
    let (sb, ws) = workspace();
    let name = serde_json::Value::String(format!("ws{forged}")).to_string();
    std::fs::write(ws.join("lakefile.toml"), format!("name = {name}\n")).unwrap();
    let out = get_deps(&sb, &ws, &["--repo", "o/n", "-v"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(forged_command(&err), None, "{err}");
    // A path tarn prints (the workspace directory itself), as an error and as a warning.
    let (sb, _) = workspace();
    let odd = sb.path(&format!("w{forged}"));
    std::fs::create_dir(&odd).unwrap();
    std::fs::write(odd.join("lakefile.toml"), "name = \"w\"\n").unwrap();
    tarn_test::mkfifo(&odd.join("lake-manifest.json")).unwrap();
    let mut c = sb.command();
    c.arg("-d").arg(&odd).args([
        "--cache-dir",
        "cache",
        "get",
        "--service",
        "s",
        "--repo",
        "o/n",
        "-v",
    ]);
    let out = c.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a regular file (a FIFO)"), "{err}");
    assert_eq!(forged_command(&err), None, "{err}");
}

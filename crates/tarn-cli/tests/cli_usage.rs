//! The command line itself (issue 10, items 6 and 8): global options in their own help
//! section and only where they apply, `--scope | --repo` as alternatives, usage errors with
//! exit 2, and help, version or errors written to a closed pipe or a closed stderr ending
//! quietly (exit 141) rather than with exit 0 or a panic (101).

use std::process::{Command, Output, Stdio};

use tarn_test::{stderr, stdout, Sandbox};

use crate::BIN;

const REV: &str = "0123456789abcdef0123456789abcdef01234567";

/// The lines of the help section headed `heading` (up to the next blank line).
fn section<'h>(help: &'h str, heading: &str) -> Vec<&'h str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = Sandbox::new().tarn(&[args, &["--help"]].concat());
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn top_level_help_puts_the_global_options_in_their_own_section() {
    let text = help(&[]);
    let global = section(&text, "Global options:").join("\n");
    for flag in [
        "-v, --verbose",
        "-q, --quiet",
        "--json",
        "--cache-dir <DIR>",
        "-d, --dir <DIR>",
    ] {
        assert!(
            global.contains(flag),
            "{flag} not under Global options:\n{text}"
        );
    }
    let own = section(&text, "Options:").join("\n");
    assert!(
        own.contains("--help") && own.contains("--version"),
        "{text}"
    );
    for flag in ["--json", "--cache-dir", "--quiet"] {
        assert!(!own.contains(flag), "{flag} mixed into Options:\n{text}");
    }
}

#[test]
fn command_help_lists_cache_dir_and_dir_only_where_they_apply() {
    for args in [
        &["serve"][..],
        &["serve", "gc"],
        &["serve", "scrub"],
        &["demo"],
        &["hash"],
        &["services"],
    ] {
        let text = help(args);
        assert!(!text.contains("--cache-dir"), "{args:?}:\n{text}");
        assert!(!text.contains("--dir"), "{args:?}:\n{text}");
        let global = section(&text, "Global options:").join("\n");
        assert!(
            global.contains("--json") && global.contains("--quiet"),
            "{args:?}:\n{text}"
        );
    }
    for args in [
        &["stage"][..],
        &["unstage"],
        &["add"],
        &["verify"],
        &["clean"],
        &["get"],
        &["put"],
        &["put-staged"],
    ] {
        let text = help(args);
        let global = section(&text, "Global options:").join("\n");
        assert!(
            global.contains("--cache-dir <DIR>") && global.contains("-d, --dir <DIR>"),
            "{args:?}:\n{text}"
        );
        // The command's own options are not mixed with the global ones.
        let own = section(&text, "Options:").join("\n");
        assert!(
            !own.contains("--cache-dir") && !own.contains("--json"),
            "{args:?}:\n{text}"
        );
    }
}

#[test]
fn the_usage_line_shows_scope_and_repo_as_alternatives() {
    for (command, usage_line) in [
        (
            "put",
            "Usage: tarn put [OPTIONS] <--scope <SCOPE>|--repo <OWNER/NAME>> <MAPPINGS>",
        ),
        (
            "put-staged",
            "Usage: tarn put-staged [OPTIONS] <--scope <SCOPE>|--repo <OWNER/NAME>> <STAGING_DIRECTORY>",
        ),
    ] {
        let text = help(&[command]);
        let usage = text.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
        assert_eq!(usage, usage_line, "{text}");
    }
    // Optional where the service or the workspace can supply the scope.
    let text = help(&["get"]);
    let usage = text.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
    assert_eq!(usage, "Usage: tarn get [OPTIONS] [MAPPINGS]", "{text}");
}

#[test]
fn scope_and_repo_mistakes_are_usage_errors_with_exit_2() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("config.toml"), "").unwrap();
    let either = "<--scope <SCOPE>|--repo <OWNER/NAME>>";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Lake: "the `--scope` or `--repo` option must be set for `cache put`", exit 1.
        (vec!["put", "m.jsonl"], either),
        (vec!["put-staged", "staging", "--rev", REV], either),
        // Lake: "`--scope` and `--repo` require `--service`", exit 1.
        (
            vec!["unstage", "staging", "--package", "p", "--scope", "s"],
            "--service <NAME>",
        ),
        (
            vec!["add", "m.jsonl", "--package", "p", "--repo", "o/n"],
            "--service <NAME>",
        ),
    ];
    for (args, want) in cases {
        let out = sb.tarn_env(&args, &[("LAKE_CACHE_DIR", &sb.path("cache"))]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err}");
        assert!(err.contains("Usage: tarn "), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        assert!(
            !sb.path("cache").exists(),
            "{args:?}: a usage error touched the cache"
        );
    }
}

#[test]
fn cache_dir_and_dir_still_work_where_they_do_nothing_with_a_warning() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("config.toml"), "").unwrap();
    std::fs::write(sb.path("f.txt"), "x").unwrap();
    let cache = sb.path("c");
    let cache = cache.to_str().unwrap();
    for args in [
        vec!["--cache-dir", cache, "hash", "f.txt"],
        vec!["hash", "--cache-dir", cache, "f.txt"],
        vec!["-d", ".", "services"],
        vec!["services", "-d", "."],
    ] {
        let out = sb.tarn(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains("has no effect on `tarn "), "{args:?}: {err}");
    }
    // Not given: no warning.
    let out = sb.tarn(&["hash", "f.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

/// Runs tarn with stdout or stderr a pipe whose reading end is already closed.
fn with_closed_pipe(args: &[&str], closed_stdout: bool) -> Output {
    // Not `Stdio::piped()` dropped after the spawn: that races with a short write.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let sb = Sandbox::new();
    let mut cmd = sb.command();
    cmd.args(args);
    if closed_stdout {
        cmd.stdout(writer).stderr(Stdio::piped());
    } else {
        cmd.stderr(writer).stdout(Stdio::piped());
    }
    cmd.output().unwrap()
}

#[test]
fn help_and_version_to_a_closed_pipe_end_quietly_with_exit_141() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["--version"],
        &["help"],
        &["help", "put"],
        &["serve", "--help"],
        &["put", "--help"],
    ] {
        let out = with_closed_pipe(args, true);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn errors_to_a_closed_stderr_pipe_end_quietly_with_exit_141() {
    // A usage error (clap's message) and a failure (tarn's own `error:` lines).
    for args in [
        &["--no-such-flag"][..],
        &["verify", "no-such-mappings.jsonl", "--cache-dir", "c"],
    ] {
        let out = with_closed_pipe(args, false);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn a_closed_stderr_is_not_a_panic() {
    // `2>&-`: no stderr at all. Each command still ends with its own exit code.
    let sb = Sandbox::new();
    std::fs::write(sb.path("f.txt"), "x").unwrap();
    for (args, code) in [
        (&["--no-such-flag"][..], 2),
        (&["put", "m.jsonl"], 2),
        (&["verify", "no-such-mappings.jsonl", "--cache-dir", "c"], 1),
        (&["-v", "hash", "f.txt", "missing.txt"], 1),
        (&["--help"], 0),
        (&["hash", "f.txt"], 0),
    ] {
        let out = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 2>&-")
            .arg(BIN)
            .args(args)
            .current_dir(sb.root())
            .env("LAKE_CONFIG", sb.path("config.toml"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stdout(&out));
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn put_staged_help_says_platform_and_toolchain_default_to_none() {
    // put-staged reads no workspace: an upload without them lands where `get --repo`, which
    // defaults to this host and the workspace's toolchain, does not look (docs/remote.md).
    let text = help(&["put-staged"]);
    for flag in ["--platform <TRIPLE>", "--toolchain <TOOLCHAIN>"] {
        let at = text
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} missing:\n{text}"));
        let rest = &text[at + flag.len()..];
        let desc = rest[..rest.find("\n  -").unwrap_or(rest.len())]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(desc.contains("default: none"), "{flag}: {desc}\n{text}");
    }
    let get = help(&["get"]);
    let words = get.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("default: the target triple the workspace's `lean --version` reports"),
        "{get}"
    );
}

#[test]
fn tarn_fixture_to_a_closed_pipe_ends_quietly_with_exit_141() {
    // The fixture generator printed with `println!`: a panic (exit 101) on a closed pipe.
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("fx");
    let out_dir = out_dir.to_str().unwrap();
    for (args, closed_stdout) in [
        (&["--help"][..], true),
        (&["--modules", "3", "--out", out_dir], true),
        (&["--workspace", "--out", out_dir], true),
        (&["--no-such-flag"], false),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tarn-fixture"));
        cmd.args(args);
        if closed_stdout {
            cmd.stdout(writer).stderr(Stdio::piped());
        } else {
            cmd.stderr(writer).stdout(Stdio::piped());
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
}

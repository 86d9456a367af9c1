//! Where `tarn serve`'s upload keys live (RELIABILITY.md row 8j, a decision): a key on the
//! command line (`--key ID:SECRET`) is visible to every local user in `ps`, so the help
//! says to keep keys in the configuration file beyond local use; a server configured that
//! way, or one that generated its key, has no secret in its command line, and the
//! generated key file is readable by its owner only.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use tarn_test::TarnServer;

use crate::BIN;

/// The command line of the running process `pid`, as any local user reads it.
fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).expect("/proc/PID/cmdline");
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

#[test]
fn keys_kept_off_the_command_line_never_show_in_ps_and_the_help_says_so() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("Other local users see it in `ps`")
            && help.contains("put keys in the config's `[[key]]` tables"),
        "{help}"
    );

    let tmp = tempfile::tempdir().unwrap();
    // Keys in the configuration file.
    let cfg = tmp.path().join("serve.toml");
    let secret = "config-secret-0123456789";
    std::fs::write(
        &cfg,
        format!(
            "data = \"{}\"\n[[key]]\nid = \"ci\"\nsecret = \"{secret}\"\nwrite = [\"*\"]\n",
            tmp.path().join("configured").display()
        ),
    )
    .unwrap();
    let srv = TarnServer::start(&["--config", cfg.to_str().unwrap()]);
    assert!(!cmdline(srv.child.id()).contains(secret));
    drop(srv);
    // A generated key: in the banner and a mode-0600 file, never in the command line.
    let data = tmp.path().join("generated");
    let srv = TarnServer::start(&["--data", data.to_str().unwrap()]);
    let key = srv
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("Uploads: export LAKE_CACHE_KEY="))
        .and_then(|r| r.split_whitespace().next())
        .expect("the generated key in the banner")
        .to_string();
    let generated_secret = key.split_once(':').unwrap().1;
    assert!(!cmdline(srv.child.id()).contains(generated_secret));
    let mode = std::fs::metadata(data.join(".tarn-serve-key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");
    // What the decision gives up: a key passed with --key is there for anyone to read.
    let srv = TarnServer::with_key(&tmp.path().join("flag"), "local:flag-secret-0123456789");
    assert!(cmdline(srv.child.id()).contains("flag-secret-0123456789"));
}

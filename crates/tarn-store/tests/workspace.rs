//! The workspace loader on the Mathlib-shaped fixture (real files, real git repositories).

use tarn_core::DependencyKind;
use tarn_fixture::workspace::{mathlib_workspace, ConfigLanguage, TOOLCHAIN};
use tarn_store::Workspace;

#[test]
fn loads_the_mathlib_shaped_workspace_root_first_in_manifest_order() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = mathlib_workspace(&tmp.path().join("ws")).unwrap();
    let (ws, warnings) = Workspace::load(&fx.root).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let root = ws.root();
    assert!(root.is_root());
    assert_eq!(root.name, "mathlib");
    assert_eq!(root.config.enable_artifact_cache, Some(true));
    assert_eq!(root.config.restore_all_artifacts, Some(true));
    assert_eq!(root.config.platform_independent, Some(true));
    assert_eq!(root.config.fixed_toolchain, Some(true));
    assert_eq!(root.reservoir_scope(), None);
    assert_eq!(
        root.cache_platform(Some("x86_64-unknown-linux-gnu".into())),
        None
    );
    assert_eq!(root.cache_toolchain(Some(TOOLCHAIN.into())), None);
    assert_eq!(ws.lean_toolchain.as_deref(), Some(TOOLCHAIN));
    assert_eq!(ws.default_toolchain(None).as_deref(), Some(TOOLCHAIN));
    assert_eq!(
        ws.default_toolchain(Some("leanprover/lean4:v4.9.0"))
            .as_deref(),
        Some("leanprover/lean4:v4.9.0")
    );
    assert_eq!(ws.packages_dir, fx.root.join(".lake/packages"));

    let names: Vec<_> = ws.dependencies().iter().map(|p| p.name.as_str()).collect();
    let expected: Vec<_> = fx.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, expected);
    assert_eq!(names.len(), 8);
    let reservoir = ws
        .dependencies()
        .iter()
        .filter(|p| p.reservoir_scope().is_some())
        .count();
    assert_eq!(reservoir, 7);
    for (pkg, want) in ws.dependencies().iter().zip(&fx.packages) {
        assert_eq!(pkg.dir, fx.root.join(".lake/packages").join(&want.name));
        assert_eq!(pkg.repo_dir, pkg.dir);
        assert_eq!(pkg.rev.as_deref(), Some(want.rev.as_str()), "{}", pkg.name);
        assert_eq!(pkg.url.as_deref(), Some(want.url.as_str()));
        assert_eq!(pkg.kind, Some(DependencyKind::Git));
        assert_eq!(pkg.scope, want.scope);
        assert_eq!(
            pkg.config_path.as_ref().unwrap().file_name().unwrap(),
            want.language.file_name()
        );
        assert_eq!(
            pkg.config.platform_independent == Some(true),
            want.platform_independent,
            "{}",
            pkg.name
        );
        // The manifest's rev is the checkout's real HEAD.
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&pkg.repo_dir)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), want.rev);
        let origin = std::process::Command::new("git")
            .args(["remote", "get-url", "origin"])
            .current_dir(&pkg.repo_dir)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&origin.stdout).trim(), want.url);
    }
    let aesop = ws.package("aesop").unwrap();
    assert_eq!(
        aesop.reservoir_scope().as_deref(),
        Some("leanprover-community/aesop")
    );
    assert_eq!(aesop.cache_platform(Some("p".into())), None);
    assert_eq!(
        aesop.cache_toolchain(Some("t".into())).as_deref(),
        Some("t")
    );
    let batteries = ws.package("batteries").unwrap();
    assert_eq!(
        batteries.cache_platform(Some("p".into())).as_deref(),
        Some("p")
    );
    let qq = ws.package("Qq").unwrap();
    assert_eq!(
        qq.config_path.as_ref().unwrap().file_name().unwrap(),
        "lakefile.lean"
    );
    let git_only = ws.package("checkdecls").unwrap();
    assert_eq!(git_only.reservoir_scope(), None);
    assert!(fx
        .packages
        .iter()
        .any(|p| p.language == ConfigLanguage::Lean && p.scope.is_empty()));
    assert!(ws.package("nope").is_none());
}

#[test]
fn the_fixture_is_the_same_on_every_run() {
    let tmp = tempfile::tempdir().unwrap();
    let a = mathlib_workspace(&tmp.path().join("a")).unwrap();
    let b = mathlib_workspace(&tmp.path().join("b")).unwrap();
    assert_eq!(a.root_rev, b.root_rev);
    let revs = |f: &tarn_fixture::workspace::WorkspaceFixture| {
        f.packages.iter().map(|p| p.rev.clone()).collect::<Vec<_>>()
    };
    assert_eq!(revs(&a), revs(&b));
    assert!(mathlib_workspace(&tmp.path().join("a")).is_err());
}

#[test]
fn missing_checkouts_and_non_literal_options_are_warnings_naming_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = mathlib_workspace(&tmp.path().join("ws")).unwrap();
    std::fs::remove_dir_all(fx.root.join(".lake/packages/plausible")).unwrap();
    // Lake's own cache test lakefile computes an option.
    let lakefile = fx.root.join("lakefile.lean");
    let text = std::fs::read_to_string(&lakefile).unwrap().replace(
        "  restoreAllArtifacts := true\n",
        "  restoreAllArtifacts := get_config? restoreAll |>.isSome\n",
    );
    std::fs::write(&lakefile, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("restoreAllArtifacts"))
        .unwrap()
        + 1;
    let (ws, warnings) = Workspace::load(&fx.root).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let shown: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        shown[0].starts_with(&format!(
            "{}:{line}: `restoreAllArtifacts` is not a literal",
            lakefile.display()
        )),
        "{}",
        shown[0]
    );
    assert!(shown[0].contains("LAKE_RESTORE_ARTIFACTS"), "{}", shown[0]);
    assert!(
        shown[1].contains("`plausible` is not checked out"),
        "{}",
        shown[1]
    );
    assert_eq!(ws.root().config.restore_all_artifacts, None);
    let plausible = ws.package("plausible").unwrap();
    assert_eq!(plausible.config_path, None);
    assert_eq!(plausible.config.name, "plausible");
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Workspace::load(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("no lakefile.lean or lakefile.toml"), "{e}");
    let fx = mathlib_workspace(&tmp.path().join("ws")).unwrap();
    let manifest = fx.root.join("lake-manifest.json");
    std::fs::write(
        &manifest,
        "{\"version\": \"1.1.0\", \"packages\": [{\"name\": \"x\"}]}",
    )
    .unwrap();
    let e = Workspace::load(&fx.root).unwrap_err().to_string();
    assert!(e.starts_with(&manifest.display().to_string()), "{e}");
    assert!(e.contains("packages[0] (x): missing `type`"), "{e}");
    std::fs::write(&manifest, vec![b' '; 5 << 20]).unwrap();
    let e = Workspace::load(&fx.root).unwrap_err().to_string();
    assert!(e.contains("larger than the limit of 4 MiB"), "{e}");
    let toml = fx.root.join(".lake/packages/batteries/lakefile.toml");
    std::fs::write(
        fx.root.join("lake-manifest.json"),
        tarn_fixture::workspace::manifest_text(&fx.packages),
    )
    .unwrap();
    std::fs::write(&toml, "name = 3\n").unwrap();
    let e = Workspace::load(&fx.root).unwrap_err().to_string();
    assert!(e.starts_with(&toml.display().to_string()), "{e}");
    let lean = fx.root.join(".lake/packages/Qq/lakefile.lean");
    std::fs::write(&toml, "name = \"batteries\"\n").unwrap();
    std::fs::write(&lean, vec![b'-'; (1 << 20) + 1]).unwrap();
    let e = Workspace::load(&fx.root).unwrap_err().to_string();
    assert!(
        e.starts_with(&lean.display().to_string()) && e.contains("larger than the limit of 1 MiB"),
        "{e}"
    );
}

#[test]
fn per_package_caches_are_generated_into_one_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = mathlib_workspace(&tmp.path().join("ws")).unwrap();
    let caches = fx
        .package_caches(&tmp.path().join("cache"), &tmp.path().join("maps"), 3)
        .unwrap();
    assert_eq!(caches.len(), 9);
    assert_eq!(caches[0].name, "mathlib");
    for c in &caches {
        assert_eq!(
            c.fixture.mappings_path,
            tmp.path().join("maps").join(format!("{}.jsonl", c.name))
        );
        let loaded = tarn_store::read_mappings(&c.fixture.mappings_path).unwrap();
        assert_eq!(loaded.file.entries.len(), 3);
        for (name, _) in &c.fixture.artifacts {
            assert!(tmp
                .path()
                .join("cache/artifacts")
                .join(name.file_name())
                .is_file());
        }
    }
    // Different packages, different artifacts.
    assert_ne!(caches[1].fixture.artifacts, caches[2].fixture.artifacts);
}

#[test]
fn a_root_without_manifest_is_a_workspace_of_one() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("lakefile.toml"),
        "name = \"solo\"\nbootstrap = true\npackagesDir = \"deps\"\n",
    )
    .unwrap();
    let (ws, warnings) = Workspace::load(tmp.path()).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(ws.packages.len(), 1);
    assert_eq!(ws.root().name, "solo");
    assert_eq!(ws.packages_dir, tmp.path().join("deps"));
    assert_eq!(ws.root().cache_toolchain(Some("t".into())), None);
    assert_eq!(ws.default_toolchain(None), None);
    // Both config files: Lake (and tarn) read lakefile.lean, with a warning.
    std::fs::write(tmp.path().join("lakefile.lean"), "package other where\n").unwrap();
    let (ws, warnings) = Workspace::load(tmp.path()).unwrap();
    assert_eq!(ws.root().name, "other");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0]
        .message
        .contains("both lakefile.lean and lakefile.toml"));
}

#[test]
fn the_root_config_and_lean_toolchain_have_one_bounded_reader() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(!tarn_store::is_package_dir(tmp.path()));
    assert!(tarn_store::read_root_config(tmp.path()).unwrap().is_none());
    assert_eq!(tarn_store::read_lean_toolchain(tmp.path()).unwrap(), None);
    std::fs::write(tmp.path().join("lakefile.toml"), "name = \"solo\"\n").unwrap();
    std::fs::write(
        tmp.path().join("lean-toolchain"),
        "\n  leanprover/lean4:v4.22.0  \nrest\n",
    )
    .unwrap();
    assert!(tarn_store::is_package_dir(tmp.path()));
    let root = tarn_store::read_root_config(tmp.path()).unwrap().unwrap();
    assert_eq!(root.config.name, "solo");
    assert_eq!(root.path, tmp.path().join("lakefile.toml"));
    assert_eq!(
        tarn_store::read_lean_toolchain(tmp.path())
            .unwrap()
            .as_deref(),
        Some("leanprover/lean4:v4.22.0")
    );
    let (ws, _) = Workspace::load(tmp.path()).unwrap();
    assert_eq!(
        ws.lean_toolchain.as_deref(),
        Some("leanprover/lean4:v4.22.0")
    );
    // One line is expected: a large file is refused, naming it, not read whole.
    let big = tmp.path().join("lean-toolchain");
    std::fs::write(
        &big,
        vec![b'x'; tarn_store::MAX_TOOLCHAIN_BYTES as usize + 1],
    )
    .unwrap();
    let e = tarn_store::read_lean_toolchain(tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&big.display().to_string()) && e.contains("larger than the limit of 64 KiB"),
        "{e}"
    );
    assert!(Workspace::load(tmp.path()).is_err());
}

#[test]
fn the_configured_packages_dir_wins_over_the_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("lakefile.toml"),
        "name = \"root\"\npackagesDir = \"deps\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("lake-manifest.json"),
        r#"{"version": "1.1.0", "packagesDir": "./deps", "packages": [{"type": "path", "scope": "", "name": "local", "dir": "vendor/local", "inherited": false}], "name": "root", "lakeDir": ".lake"}"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("vendor/local")).unwrap();
    std::fs::write(
        dir.join("vendor/local/lakefile.toml"),
        "name = \"local\"\nplatformIndependent = true\n",
    )
    .unwrap();
    let (ws, warnings) = Workspace::load(dir).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(ws.packages_dir, dir.join("deps"));
    let local = ws.package("local").unwrap();
    assert_eq!(local.kind, Some(DependencyKind::Path));
    assert_eq!(local.dir, dir.join("vendor/local"));
    assert_eq!(local.config.platform_independent, Some(true));
    std::fs::write(
        dir.join("lakefile.toml"),
        "name = \"root\"\npackagesDir = \"elsewhere\"\n",
    )
    .unwrap();
    let (ws, warnings) = Workspace::load(dir).unwrap();
    assert_eq!(ws.packages_dir, dir.join("elsewhere"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].message.contains("tarn uses \"elsewhere\""),
        "{}",
        warnings[0]
    );
}

#[test]
fn a_single_package_workspace_has_lakes_defaults() {
    let dir = std::path::Path::new("/nowhere/pkg");
    let ws = Workspace::single(dir, "Foo");
    assert_eq!(ws.root_dir, dir);
    assert_eq!(ws.packages_dir, dir.join(".lake/packages"));
    assert_eq!(ws.packages.len(), 1);
    let root = &ws.packages[0];
    assert_eq!(
        (root.name.as_str(), root.config.name.as_str()),
        ("Foo", "Foo")
    );
    assert_eq!(
        (root.dir.as_path(), root.config_path.as_deref()),
        (dir, None)
    );
    assert!(ws.manifest.is_none() && ws.lean_toolchain.is_none());
}

/// Runs `f` on another thread, failing the test if it takes more than 10 seconds (a blocked
/// open never returns).
#[cfg(unix)]
fn promptly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("still running after 10 s: a FIFO or device was waited on")
}

#[cfg(unix)]
#[test]
fn a_fifo_or_device_in_a_checkout_is_refused_at_once_naming_it() {
    // A pull request's checkout decides what its lakefile, manifest and lean-toolchain are:
    // a FIFO nobody writes to must not hang the loader, `/dev/zero` must not be read on.
    let tmp = tempfile::tempdir().unwrap();
    let fx = mathlib_workspace(&tmp.path().join("ws")).unwrap();
    let root = fx.root.clone();
    let cases = [
        ("lakefile.lean", "fifo", "not a regular file (a FIFO)"),
        ("lake-manifest.json", "fifo", "not a regular file (a FIFO)"),
        // A link out of the workspace is refused before it is opened (issue 18).
        ("lean-toolchain", "/dev/zero", "leads outside the workspace"),
        (
            ".lake/packages/batteries/lakefile.toml",
            "fifo",
            "not a regular file (a FIFO)",
        ),
    ];
    for (name, what, why) in cases {
        let path = root.join(name);
        let saved = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        if what == "fifo" {
            let st = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap();
            assert!(st.success());
        } else {
            std::os::unix::fs::symlink(what, &path).unwrap();
        }
        let r = root.clone();
        let e = promptly(move || Workspace::load(&r).map(|_| ()).unwrap_err().to_string());
        assert!(e.starts_with(&path.display().to_string()), "{name}: {e}");
        assert!(e.contains(why), "{name}: {e}");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, saved).unwrap();
    }
    // A directory in a lakefile's place is no lakefile, as for Lake.
    std::fs::remove_file(root.join("lakefile.lean")).unwrap();
    std::fs::create_dir(root.join("lakefile.lean")).unwrap();
    let e = Workspace::load(&root).unwrap_err().to_string();
    assert!(e.contains("no lakefile.lean or lakefile.toml"), "{e}");
}

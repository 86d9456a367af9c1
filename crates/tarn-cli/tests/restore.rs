//! `tarn restore`: real `.ltar` archives (tests/data/ltar, and new ones packed by the real
//! leantar with Lake's command line) restored into Lake's build directories, checked file by
//! file against leantar's own unpack and by Lake's up-to-date rule (`tarn_test::lake_rule`)
//! after every run; hostile archives refused before anything is written.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use tarn_core::Hash;
use tarn_test::{assert_lake_rule, leantar, ltar_data, module_bytes, pack_module, Dirs, Sandbox};

const ATTR: &str = "Plausible.Attr";
const ATTR_INPUT: &str = "57289f38c9016500";
const ATTR_LTAR: &str = "a74d1ed7ffcb58c4.ltar";
const BASIC: &str = "Plausible.Gen.Basic";
const BASIC_INPUT: &str = "1f2e3d4c5b6a7988";
const BASIC_LTAR: &str = "311447e8cf024e29.ltar";

struct Env {
    sb: Sandbox,
    leantar: PathBuf,
}

impl Env {
    /// A sandbox with a package `plausible` in `ws/` (lakefile.toml `extra`), and the
    /// committed archives in `cache/artifacts/` (leantar is built if needed).
    fn new(extra: &str) -> Option<Env> {
        let leantar = leantar();
        let sb = Sandbox::new();
        fs::create_dir_all(sb.path("ws")).unwrap();
        fs::write(
            sb.path("ws/lakefile.toml"),
            format!("name = \"plausible\"\n{extra}"),
        )
        .unwrap();
        fs::create_dir_all(sb.path("cache/artifacts")).unwrap();
        for a in [ATTR_LTAR, BASIC_LTAR] {
            fs::copy(
                ltar_data().join("archives").join(a),
                sb.path("cache/artifacts").join(a),
            )
            .unwrap();
        }
        Some(Env { sb, leantar })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.sb.path(p)
    }

    /// Writes a G3 mapping file of `(input, artifact)` lines.
    fn mapping(&self, name: &str, lines: &[(&str, &str)]) -> String {
        let mut text = String::from("\"2026-03-17\"\n");
        for (i, a) in lines {
            text.push_str(&format!("[\"{i}\",\"{a}\"]\n"));
        }
        fs::write(self.path(name), text).unwrap();
        name.to_string()
    }

    /// Adds an archive to the cache under its content hash; returns its name.
    fn add_archive(&self, bytes: &[u8]) -> String {
        let name = format!("{}.ltar", Hash::of_bytes(bytes));
        fs::write(self.path("cache/artifacts").join(&name), bytes).unwrap();
        name
    }

    /// Writes `outputs.jsonl`, mapping both committed archives (`Attr` and `Basic`); returns
    /// its name.
    fn both_modules(&self) -> String {
        self.mapping(
            "outputs.jsonl",
            &[(ATTR_INPUT, ATTR_LTAR), (BASIC_INPUT, BASIC_LTAR)],
        )
    }

    /// Restores both committed modules ([`Env::both_modules`]), which must succeed.
    fn restore_both(&self) -> Output {
        let map = self.both_modules();
        let out = self.restore(&[&map], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    }

    fn restore(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.sb.command();
        cmd.args(["--cache-dir", "cache", "-d", "ws", "restore"])
            .args(args)
            .env("LEANTAR", &self.leantar);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Every output in `build` byte-identical to what leantar itself unpacks from the committed
/// archives with Lake's command line.
fn assert_unpacked_as_leantar_does(build: &Path) {
    let expected = ltar_data().join("expected");
    for rel in files_under(&expected) {
        if rel.extension().is_some_and(|e| e == "trace") {
            continue;
        }
        assert_eq!(
            fs::read(build.join(&rel)).unwrap(),
            fs::read(expected.join(&rel)).unwrap(),
            "{}",
            rel.display()
        );
    }
}

/// How many staging directories (`.tarn-restore.<pid>.<n>/`) are in `build`.
fn staging_dirs(build: &Path) -> usize {
    fs::read_dir(build)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".tarn-restore.")
                && e.path().is_dir()
        })
        .count()
}

#[test]
fn archives_reach_leantar_without_a_copy_on_disk_and_the_file_fallback_restores_the_same() {
    let Some(env) = Env::new("") else { return };
    let map = env.both_modules();
    let build = env.path("ws/.lake/build");
    // Killed at its first change to the build directory, after leantar ran (the first
    // module's trace): archives were handed over in memory, so no copy is on the disk.
    let abort = ("TARN_TEST_RESTORE_ABORT_AT", "1");
    let out = env.restore(&[&map], &[abort]);
    assert!(!out.status.success(), "the abort point was never reached");
    #[cfg(target_os = "linux")]
    assert_eq!(staging_dirs(&build), 0);

    // The fallback (elsewhere, or where /proc cannot be used): a copy of each archive in a
    // staging directory, which a killed run leaves behind and the next run removes.
    let files = ("TARN_TEST_RESTORE_HANDOFF", "files");
    fs::remove_dir_all(&build).unwrap();
    let out = env.restore(&[&map], &[abort, files]);
    assert!(!out.status.success(), "the abort point was never reached");
    assert_eq!(staging_dirs(&build), 1);
    let out = env.restore(&[&map], &[files]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(staging_dirs(&build), 0);
    assert_unpacked_as_leantar_does(&build);
    let modules = [(ATTR, ATTR_INPUT), (BASIC, BASIC_INPUT)];
    assert_lake_rule(&env.path("ws"), &Dirs::default(), &modules, None);
}

#[test]
fn restores_real_archives_byte_identical_to_leantar_with_traces_lake_accepts() {
    let Some(env) = Env::new("") else { return };
    let out = env.restore_both();
    assert!(
        text(&out.stdout).contains("restored 2 modules"),
        "{}",
        text(&out.stdout)
    );

    let build = env.path("ws/.lake/build");
    let expected = ltar_data().join("expected");
    assert_unpacked_as_leantar_does(&build);
    // The trace is Lake's fetch trace: the mapping's input hash and the unpacked outputs,
    // exactly the descriptors leantar's unpacked trace lists.
    let trace: serde_json::Value =
        serde_json::from_slice(&fs::read(build.join("lib/lean/Plausible/Attr.trace")).unwrap())
            .unwrap();
    let packed: serde_json::Value =
        serde_json::from_slice(&fs::read(expected.join("lib/lean/Plausible/Attr.trace")).unwrap())
            .unwrap();
    assert_eq!(trace["depHash"], ATTR_INPUT);
    assert_eq!(trace["schemaVersion"], "2025-09-10");
    assert_eq!(trace["synthetic"], true);
    assert_eq!(trace["outputs"], packed["outputs"]);
    // No .hash files (Lake computes them), no archive in irDir (restoreAllArtifacts is off),
    // no staging left behind.
    let all = files_under(&build);
    assert!(
        all.iter().all(|p| !p.to_string_lossy().ends_with(".hash")),
        "{all:?}"
    );
    assert!(!build.join("ir/Plausible/Attr.ltar").exists());
    let staging = |p: &PathBuf| {
        p.to_string_lossy().contains(".tarn-restore.") && p != Path::new(".tarn-restore.json")
    };
    assert!(!all.iter().any(staging), "{all:?}");
    let modules = [(ATTR, ATTR_INPUT), (BASIC, BASIC_INPUT)];
    assert_lake_rule(&env.path("ws"), &Dirs::default(), &modules, None);

    // Twice: nothing is written.
    let before = fs::metadata(build.join("lib/lean/Plausible/Attr.trace"))
        .unwrap()
        .modified()
        .unwrap();
    let out = env.restore(&["--json", &env.both_modules()], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["restored"].as_u64(), v["up_to_date"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );
    let after = fs::metadata(build.join("lib/lean/Plausible/Attr.trace"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    assert_lake_rule(&env.path("ws"), &Dirs::default(), &modules, None);
}

#[test]
fn a_trace_for_another_input_is_kept_without_force() {
    let Some(env) = Env::new("") else { return };
    let map = env.mapping("one.jsonl", &[(ATTR_INPUT, ATTR_LTAR)]);
    let out = env.restore(&[&map], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The same module, rebuilt for another input hash.
    let other = "00112233aabbccdd";
    let bytes = pack_module(
        &env.leantar,
        &env.path("pack"),
        ATTR,
        other,
        &module_bytes(ATTR, true, 7),
    );
    let name = env.add_archive(&bytes);
    let map2 = env.mapping("two.jsonl", &[(other, &name)]);
    let trace = env.path("ws/.lake/build/lib/lean/Plausible/Attr.trace");
    let before = fs::read(&trace).unwrap();
    let out = env.restore(&[&map2], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("existing trace is for input 57289f38c9016500") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(fs::read(&trace).unwrap(), before, "the trace was touched");
    assert_lake_rule(
        &env.path("ws"),
        &Dirs::default(),
        &[(ATTR, ATTR_INPUT)],
        None,
    );

    let out = env.restore(&["--force", &map2], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_lake_rule(&env.path("ws"), &Dirs::default(), &[(ATTR, other)], None);

    // An archive packed for one input is not accepted for another (Lake would rebuild).
    let map3 = env.mapping("three.jsonl", &[("0123456789abcdef", BASIC_LTAR)]);
    let out = env.restore(&[&map3], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("packed for input 1f2e3d4c5b6a7988"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env
        .path("ws/.lake/build/lib/lean/Plausible/Gen/Basic.trace")
        .exists());
}

#[test]
fn restore_all_artifacts_keeps_the_archive_and_honours_lake_restore_artifacts() {
    let Some(env) = Env::new("restoreAllArtifacts = true\nbuildDir = \"out\"\n") else {
        return;
    };
    let map = env.mapping("m.jsonl", &[(BASIC_INPUT, BASIC_LTAR)]);
    let out = env.restore(&[&map], &[("LAKE_RESTORE_ARTIFACTS", "false")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ltar = env.path("ws/out/ir/Plausible/Gen/Basic.ltar");
    assert!(
        !ltar.exists(),
        "LAKE_RESTORE_ARTIFACTS=false overrides the lakefile"
    );
    let dirs = Dirs {
        build: "out".into(),
        ..Dirs::default()
    };
    assert_lake_rule(&env.path("ws"), &dirs, &[(BASIC, BASIC_INPUT)], None);

    fs::remove_dir_all(env.path("ws/out")).unwrap();
    let out = env.restore(&[&map], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read(&ltar).unwrap(),
        fs::read(ltar_data().join("archives").join(BASIC_LTAR)).unwrap()
    );
    assert_lake_rule(&env.path("ws"), &dirs, &[(BASIC, BASIC_INPUT)], None);
}

/// Replaces the first occurrence of `from` in `bytes`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in archive");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

#[test]
fn hostile_archives_are_refused_before_anything_is_written() {
    let Some(env) = Env::new("") else { return };
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let basic = fs::read(ltar_data().join("archives").join(BASIC_LTAR)).unwrap();
    // From a base directory one level below the sandbox's `probe/`, this reaches `outside/`.
    let escape = b"../../outside/evil.ilean\0";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "path escape",
            replace(&basic, b"Basic.ilean\0", escape),
            "path separator",
        ),
        (
            "absolute name",
            replace(
                &basic,
                b"Basic.ilean\0",
                format!("{}/abs.ilean\0", outside.display()).as_bytes(),
            ),
            "path separator",
        ),
        (
            "three bases",
            replace(&basic, b"\x01Basic.c\0", b"\x02Basic.c\0"),
            "base directory 2",
        ),
        ("truncated", basic[..basic.len() - 9].to_vec(), "truncated"),
    ];
    // The escape really escapes when leantar is given it unvetted: the test can fail.
    let probe = env.path("probe");
    fs::create_dir_all(probe.join("x")).unwrap();
    fs::write(env.path("escape.ltar"), &cases[0].1).unwrap();
    let _ = std::process::Command::new(&env.leantar)
        .arg("-C")
        .arg(probe.join("x"))
        .arg("-C")
        .arg(&probe)
        .arg("-x")
        .arg(env.path("escape.ltar"))
        .output()
        .unwrap();
    assert!(
        outside.join("evil.ilean").exists(),
        "leantar alone writes outside its base"
    );
    fs::remove_file(outside.join("evil.ilean")).unwrap();

    for (what, bytes, want) in cases {
        let name = env.add_archive(&bytes);
        let map = env.mapping(
            "h.jsonl",
            &[("0000000000000abc", &name), (ATTR_INPUT, ATTR_LTAR)],
        );
        let out = env.restore(&[&map], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(&name) && err.contains(want), "{what}: {err}");
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "{what}: wrote outside"
        );
        assert!(
            env.path(&format!("cache/artifacts/{name}")).exists(),
            "{what}: cache file deleted"
        );
        // The good module still restored.
        assert_lake_rule(
            &env.path("ws"),
            &Dirs::default(),
            &[(ATTR, ATTR_INPUT)],
            None,
        );
    }

    // Content that does not match its name.
    let mut wrong = basic.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    fs::write(env.path("cache/artifacts/0123456789abcdef.ltar"), &wrong).unwrap();
    let map = env.mapping("w.jsonl", &[(BASIC_INPUT, "0123456789abcdef.ltar")]);
    let out = env.restore(&[&map], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("content hash is"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env.path("ws/.lake/build/lib/lean/Plausible/Gen").exists());

    // A symbolic link planted in the build directory is not followed.
    fs::create_dir_all(env.path("ws/.lake/build/lib/lean/Plausible")).unwrap();
    std::os::unix::fs::symlink(&outside, env.path("ws/.lake/build/lib/lean/Plausible/Gen"))
        .unwrap();
    let map = env.mapping("s.jsonl", &[(BASIC_INPUT, BASIC_LTAR)]);
    let out = env.restore(&[&map], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "followed a planted link"
    );
}

/// `owner/repo` of a git URL.
fn owner_repo(url: &str) -> String {
    let mut parts = url.trim_end_matches(".git").rsplit('/');
    let repo = parts.next().unwrap();
    format!("{}/{repo}", parts.next().unwrap())
}

/// Lake's `System.Platform.target` here.
fn host() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

#[test]
fn get_restore_on_a_mathlib_shaped_workspace_satisfies_lakes_rule() {
    use tarn_fixture::workspace::{mathlib_workspace, TOOLCHAIN};
    use tarn_test::{no_faults, tarn_bin, tarn_cmd, write_s3_config, Backend, Server};
    let leantar = leantar();
    let tmp = tempfile::tempdir().unwrap();
    let fx = mathlib_workspace(&tmp.path().join("mathlib")).unwrap();
    let remote = tmp.path().join("remote");
    let server = Server::start(Backend::Dir(remote.clone()), no_faults());
    write_s3_config(
        &tmp.path().join("config.toml"),
        "ok",
        &format!("{}/a0", server.url()),
        &format!("{}/r0", server.url()),
    );
    // One dependency (a lakefile.toml package) builds into a directory of its own.
    let plausible = fx.packages.iter().find(|p| p.name == "plausible").unwrap();
    let cfg = plausible.dir.join("lakefile.toml");
    let config = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, format!("buildDir = \"out\"\n{config}")).unwrap();
    let tc_dir = TOOLCHAIN.replace('/', "--").replace(':', "---");
    let publish = |scope: &str, module: &str, input: &str, salt: u64| -> Vec<u8> {
        let module_system = salt.is_multiple_of(2);
        // The root's archives are packed by leantar with Lake's command line; the
        // dependencies' are assembled from a packed olean record (packing is slow).
        let bytes = if salt >= 100 {
            let files = module_bytes(module, module_system, salt);
            let dir = tmp.path().join(format!("pack{salt}"));
            pack_module(&leantar, &dir, module, input, &files)
        } else {
            let input = u64::from_str_radix(input, 16).unwrap();
            tarn_test::synth_archive(module, input, module_system, salt).0
        };
        let art = remote.join(format!("a0/{scope}/{}.art", Hash::of_bytes(&bytes)));
        fs::create_dir_all(art.parent().unwrap()).unwrap();
        fs::write(&art, &bytes).unwrap();
        bytes
    };
    let mut expect: Vec<(PathBuf, Dirs, String, String)> = Vec::new();
    for (i, p) in fx.packages.iter().enumerate() {
        let scope = owner_repo(&p.url);
        let module = format!("Dep{i}.Core");
        let input = format!("{:016x}", 0xd00d_0000 + i as u64);
        let bytes = publish(&scope, &module, &input, i as u64);
        let pt = if p.platform_independent {
            String::new()
        } else {
            format!("pt/{}/", host())
        };
        let rev_file = remote.join(format!("r0/{scope}/{pt}tc/{tc_dir}/{}.jsonl", p.rev));
        fs::create_dir_all(rev_file.parent().unwrap()).unwrap();
        fs::write(
            &rev_file,
            format!(
                "\"2026-03-17\"\n[\"{input}\",\"{}.ltar\"]\n",
                Hash::of_bytes(&bytes)
            ),
        )
        .unwrap();
        let dirs = if p.name == "plausible" {
            Dirs {
                build: "out".into(),
                ..Dirs::default()
            }
        } else {
            Dirs::default()
        };
        expect.push((p.dir.clone(), dirs, module, input));
    }
    let root_scope = "leanprover-community/mathlib4";
    let root_input = "0123456789abcdef";
    let root_module = "Mathlib.Data.Foo";
    let bytes = publish(root_scope, root_module, root_input, 100);
    let root_map = tmp.path().join("root.jsonl");
    fs::write(
        &root_map,
        format!(
            "\"2026-03-17\"\n[\"{root_input}\",\"{}.ltar\"]\n",
            Hash::of_bytes(&bytes)
        ),
    )
    .unwrap();

    let tarn = |args: &[&str]| {
        let mut c = tarn_cmd(&tarn_bin(), tmp.path());
        c.current_dir(&fx.root)
            .env("LAKE_CACHE_DIR", tmp.path().join("cache"))
            .env("LEANTAR", &leantar)
            .args(args);
        c.output().unwrap()
    };
    // `tarn [--json] get <root mappings> --restore` for the root package.
    let get_root = |json: bool| {
        let map = root_map.to_str().unwrap();
        let args = [
            "get",
            map,
            "--restore",
            "--service",
            "ok",
            "--repo",
            root_scope,
        ];
        let json_args: Vec<&str> = std::iter::once("--json").chain(args).collect();
        tarn(if json { &json_args } else { &args })
    };
    let out = tarn(&["get", "--deps", "--restore", "--service", "ok"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = get_root(true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // With --json, one document: the get's summary and the restore's, modules named.
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["command"], "get", "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["get"]["downloaded"], 1, "{doc}");
    assert_eq!(doc["restore"]["restored"], 1, "{doc}");
    assert_eq!(
        doc["restore"]["restored_modules"][0]["module"], root_module,
        "{doc}"
    );
    assert_eq!(doc["restore"]["restored_modules"][0]["input"], root_input);

    for (dir, dirs, module, input) in &expect {
        assert_lake_rule(dir, dirs, &[(module, input)], None);
    }
    // (The checker looked for plausible's module under its own `out/`.)
    assert!(!plausible.dir.join(".lake/build").exists());
    assert_lake_rule(
        &fx.root,
        &Dirs::default(),
        &[(root_module, root_input)],
        None,
    );
    // The root's lakefile.lean says restoreAllArtifacts := true: the archive is kept, and
    // the oleans are byte for byte the ones packed.
    let foo = fx.root.join(".lake/build/ir/Mathlib/Data/Foo.ltar");
    assert_eq!(fs::read(&foo).unwrap(), bytes);
    let olean = module_bytes(root_module, true, 100)[0].1.clone();
    assert_eq!(
        fs::read(fx.root.join(".lake/build/lib/lean/Mathlib/Data/Foo.olean")).unwrap(),
        olean
    );

    // A changed mapping entry for the same module is refused without --force.
    let other_input = "fedcba9876543210";
    let bytes2 = publish(root_scope, root_module, other_input, 102);
    fs::write(
        &root_map,
        format!(
            "\"2026-03-17\"\n[\"{other_input}\",\"{}.ltar\"]\n",
            Hash::of_bytes(&bytes2)
        ),
    )
    .unwrap();
    let out = get_root(false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    // The same refusal in JSON: the module is named among the problems.
    let out = get_root(true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["restore"]["restored"], 0, "{doc}");
    let problem = &doc["restore"]["problems"][0];
    assert_eq!(problem["subject"], root_module, "{doc}");
    assert!(
        problem["error"].as_str().unwrap().contains("--force"),
        "{doc}"
    );
    assert_lake_rule(
        &fx.root,
        &Dirs::default(),
        &[(root_module, root_input)],
        None,
    );
    let out = tarn(&["restore", root_map.to_str().unwrap(), "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_lake_rule(
        &fx.root,
        &Dirs::default(),
        &[(root_module, other_input)],
        None,
    );
}

#[test]
fn a_killed_restore_leaves_no_partial_file_and_no_trace_naming_missing_outputs() {
    use std::time::{Duration, Instant};
    use tarn_test::{lake_rule_problems, synth_archive};
    let Some(env) = Env::new("") else { return };
    const N: usize = 120;
    let mut lines = Vec::new();
    let mut modules = Vec::new();
    for i in 0..N {
        let name = format!("Crash.A{}.M{i}", i / 20);
        let input = 0xc0de_0000_0000_0000u64 + i as u64;
        let (bytes, files) = synth_archive(&name, input, i % 2 == 0, i as u64);
        let art = env.add_archive(&bytes);
        lines.push((format!("{input:016x}"), art));
        modules.push((name, format!("{input:016x}"), files));
    }
    let refs: Vec<(&str, &str)> = lines
        .iter()
        .map(|(i, a)| (i.as_str(), a.as_str()))
        .collect();
    let map = env.mapping("crash.jsonl", &refs);
    let run = || {
        let mut cmd = env.sb.command();
        cmd.args(["--cache-dir", "cache", "-d", "ws", "restore", &map])
            .env("LEANTAR", &env.leantar)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    let build = env.path("ws/.lake/build");
    let t = Instant::now();
    assert!(run().status().unwrap().success());
    let clean = t.elapsed();
    fs::remove_dir_all(&build).unwrap();

    let dirs = Dirs::default();
    let ws = env.path("ws");
    let check = |when: &str| {
        for (name, input, files) in &modules {
            if dirs.path(&ws, name, "trace").exists() {
                let problems = lake_rule_problems(&ws, &dirs, name, input, None);
                assert!(problems.is_empty(), "{when}: {problems:?}");
            }
            for (ext, bytes) in files {
                let p = dirs.path(&ws, name, ext);
                if p.exists() {
                    assert_eq!(
                        &fs::read(&p).unwrap(),
                        bytes,
                        "{when}: {} is partial",
                        p.display()
                    );
                }
            }
        }
    };
    // Kill points: the process aborts right before its N-th change to the build directory
    // (about 3 per module into an empty build directory: the first modules' every step, then
    // a spread).
    for at in [1, 2, 3, 4, 5, 6, 7, 8, 60, 150, 235] {
        let _ = fs::remove_dir_all(&build);
        let status = run()
            .env("TARN_TEST_RESTORE_ABORT_AT", at.to_string())
            .status()
            .unwrap();
        assert!(!status.success(), "abort point {at} was never reached");
        check(&format!("after an abort at change {at}"));
    }
    // And kill -9 at random moments.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ clean.as_nanos() as u64;
    let mut kills = 0;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_nanos(seed % clean.as_nanos().max(1) as u64);
        // Every attempt restores everything, so that the kill lands somewhere in the work.
        let _ = fs::remove_dir_all(&build);
        let mut child = run().spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        check(&format!("after a kill at {delay:?}"));
    }
    assert!(kills > 0, "no kill landed mid-restore");
    assert!(run().status().unwrap().success());
    let all: Vec<(&str, &str)> = modules
        .iter()
        .map(|(n, i, _)| (n.as_str(), i.as_str()))
        .collect();
    assert_lake_rule(&ws, &dirs, &all, None);
    assert_eq!(staging_dirs(&build), 0, "staging left behind");
}

#[test]
fn a_restore_counts_as_use_for_prune_and_records_its_workspace() {
    let Some(env) = Env::new("") else { return };
    env.restore_both();
    // `tarn cache prune` orders by this record where access times are not kept (noatime).
    let usage = fs::read_to_string(env.path("cache/.tarn/usage-v1")).unwrap();
    for a in [ATTR_LTAR, BASIC_LTAR] {
        assert!(usage.contains(a), "{a} not in the usage record:\n{usage}");
    }
    // ...and keeps what a recorded workspace's current revisions need.
    let workspaces = fs::read_to_string(env.path("cache/.tarn/workspaces-v1")).unwrap();
    let ws = fs::canonicalize(env.path("ws")).unwrap();
    assert!(
        workspaces.contains(ws.to_str().unwrap())
            || workspaces.contains(env.path("ws").to_str().unwrap()),
        "{workspaces}"
    );
}

/// `get --restore` of one package restores the modules whose archives are in the cache while
/// the others still download: the server holds one archive back until the other module's
/// trace is in the build directory (a restore that waits for the whole download never gets
/// there, and the server gives up after 30 s).
#[test]
fn get_restore_restores_while_the_download_goes_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tarn_test::{service_over_dir, Fault, Plan};
    let Some(env) = Env::new("") else { return };
    let scope = "leanprover-community/plausible";
    let remote = env.path("remote");
    for a in [ATTR_LTAR, BASIC_LTAR] {
        let art = remote.join(format!("a0/{scope}/{}.art", a.trim_end_matches(".ltar")));
        fs::create_dir_all(art.parent().unwrap()).unwrap();
        fs::rename(env.path("cache/artifacts").join(a), &art).unwrap();
    }
    let attr_trace = env.path("ws/.lake/build/lib/lean/Plausible/Attr.trace");
    let held_until_restored = Arc::new(AtomicBool::new(false));
    let (trace, seen) = (attr_trace.clone(), held_until_restored.clone());
    let held = format!("{}.art", BASIC_LTAR.trim_end_matches(".ltar"));
    let plan: Plan = Arc::new(move |req, _| {
        if req.path().ends_with(&held) {
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until && !trace.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
            seen.store(trace.exists(), Ordering::SeqCst);
        }
        Fault::None
    });
    let _server = service_over_dir(env.sb.root(), "ok", plan);
    let map = env.both_modules();
    let out = env
        .sb
        .command()
        .args(["--cache-dir", "cache", "-d", "ws", "--json", "get", &map])
        .args(["--restore", "--service", "ok", "--repo", scope])
        .args(["--timeout", "120"])
        .env("LEANTAR", &env.leantar)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        held_until_restored.load(Ordering::SeqCst),
        "{ATTR} was not restored while {BASIC}'s archive was still downloading"
    );
    // One document, both modules restored, as a restore after the get reports them.
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["get"]["downloaded"], 2, "{doc}");
    assert_eq!(doc["restore"]["restored"], 2, "{doc}");
    assert_lake_rule(
        &env.path("ws"),
        &Dirs::default(),
        &[(ATTR, ATTR_INPUT), (BASIC, BASIC_INPUT)],
        None,
    );
}

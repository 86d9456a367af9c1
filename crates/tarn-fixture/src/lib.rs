//! # tarn-fixture
//!
//! Writes Lake-shaped caches and their mapping files for tests and benchmarks: `N` modules,
//! each with one `.ltar` archive (the G3 style) or with `.olean`/`.ilean`/`.c` artifacts
//! (module objects), sizes drawn from a seeded log-normal distribution, contents seeded
//! pseudo-random bytes, every file named by its real Lake content hash.
//!
//! [`workspace::mathlib_workspace`] writes a Mathlib-shaped Lake workspace (lakefiles,
//! manifest, dependency checkouts as real git repositories) for workspace-wide commands.
//!
//! Everything is a pure function of the [`FixtureSpec`]: the same spec always gives the
//! same bytes, whatever the number of threads used to write them.
//!
//! ```no_run
//! use tarn_fixture::{generate, FixtureSpec};
//! let dir = std::path::Path::new("/tmp/fx");
//! let fx = generate(&FixtureSpec::small(10), &dir.join("cache"))?;
//! assert_eq!(fx.mappings_path, dir.join("mappings.jsonl"));
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod workspace;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};
use tarn_core::{ArtifactName, Hash, MappingFile};
use tarn_core::{SCHEMA_G1, SCHEMA_G3};

/// How each module's outputs look in the mapping file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One `.ltar` archive per module: `["<input>", "<hash>.ltar"]` (Lake G3).
    Ltar,
    /// Module objects with `.olean`, `.ilean` and `.c` artifacts:
    /// `["<input>", {"c": "<h>.c", "i": "<h>.ilean", "o": ["<h>.olean"]}]`.
    Modules,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureSpec {
    /// Number of modules (mapping entries).
    pub modules: usize,
    /// Shape of each module's outputs.
    pub style: Style,
    /// Mean size in bytes of a module's main artifact (`.ltar` or `.olean`).
    pub mean_size: u64,
    /// Log-normal shape parameter (σ of the underlying normal); 0 gives equal sizes.
    pub sigma: f64,
    /// PRNG seed: sizes, contents and input hashes all derive from it.
    pub seed: u64,
}

/// Smallest artifact the generator writes, in bytes.
pub const MIN_SIZE: u64 = 16;
/// Largest artifact the generator writes, in bytes (caps the log-normal tail).
pub const MAX_SIZE: u64 = 16 << 20;

impl FixtureSpec {
    /// Mathlib-like: 8,900 modules, one `.ltar` each, mean ≈ 44 KB with a log-normal tail
    /// reaching a few MB, ≈ 400 MB in total.
    pub fn mathlib() -> FixtureSpec {
        FixtureSpec {
            modules: 8_900,
            style: Style::Ltar,
            mean_size: 44_000,
            sigma: 1.2,
            seed: 1,
        }
    }

    /// `n` modules of small `.ltar` files (mean 2 KB), quick even in debug builds.
    pub fn small(n: usize) -> FixtureSpec {
        FixtureSpec {
            modules: n,
            style: Style::Ltar,
            mean_size: 2_000,
            sigma: 0.8,
            seed: 1,
        }
    }

    /// The same spec with another style.
    pub fn with_style(mut self, style: Style) -> FixtureSpec {
        self.style = style;
        self
    }

    /// The same spec with another seed.
    pub fn with_seed(mut self, seed: u64) -> FixtureSpec {
        self.seed = seed;
        self
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The mapping file describing every module (G3 schema).
    pub mappings: MappingFile,
    /// Where the mapping file was written.
    pub mappings_path: PathBuf,
    /// Every artifact written to `<cache>/artifacts/`, with its size, sorted by name.
    pub artifacts: Vec<(ArtifactName, u64)>,
    /// Sum of the artifact sizes.
    pub total_bytes: u64,
}

/// SplitMix64: a tiny, fast, well-mixed 64-bit PRNG.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0); slightly biased for huge `n`, fine for tests.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A uniform float in (0, 1].
    pub fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// A standard normal sample (Box–Muller).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = self.next_unit();
        let u2 = self.next_unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Fills `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }
}

/// One file to write: its extension, size and content seed.
#[derive(Debug, Clone)]
struct Planned {
    ext: &'static str,
    size: u64,
    seed: u64,
}

/// One module's written artifacts, by module index.
type Written = Vec<(usize, Vec<(ArtifactName, u64)>)>;

/// One module: its input hash and planned files.
#[derive(Debug, Clone)]
struct PlannedModule {
    input: Hash,
    files: Vec<Planned>,
}

fn plan(spec: &FixtureSpec) -> Vec<PlannedModule> {
    let mut rng = SplitMix64(spec.seed ^ 0x7461_726e_6669_7874);
    let mu = (spec.mean_size.max(1) as f64).ln() - spec.sigma * spec.sigma / 2.0;
    let draw = |rng: &mut SplitMix64| -> u64 {
        let x = (mu + spec.sigma * rng.next_normal()).exp();
        (x.round() as u64).clamp(MIN_SIZE, MAX_SIZE)
    };
    (0..spec.modules)
        .map(|i| {
            let input = Hash::of_string(&format!("tarn-fixture/{}/Module{i}", spec.seed));
            let main = draw(&mut rng);
            let files = match spec.style {
                Style::Ltar => vec![Planned {
                    ext: "ltar",
                    size: main,
                    seed: rng.next_u64(),
                }],
                Style::Modules => vec![
                    Planned {
                        ext: "olean",
                        size: main,
                        seed: rng.next_u64(),
                    },
                    Planned {
                        ext: "ilean",
                        size: (main / 8).max(MIN_SIZE),
                        seed: rng.next_u64(),
                    },
                    Planned {
                        ext: "c",
                        size: (main * 2).clamp(MIN_SIZE, MAX_SIZE),
                        seed: rng.next_u64(),
                    },
                ],
            };
            PlannedModule { input, files }
        })
        .collect()
}

fn outputs_json(style: Style, names: &[ArtifactName]) -> Value {
    match style {
        Style::Ltar => Value::String(names[0].file_name()),
        Style::Modules => json!({
            "c": names[2].file_name(),
            "i": names[1].file_name(),
            "o": [names[0].file_name()],
        }),
    }
}

/// Generates the fixture into `cache_root` (artifacts under `<cache_root>/artifacts/`) and
/// writes the G3 mapping file as `mappings.jsonl` next to `cache_root` (in its parent
/// directory; inside `cache_root` when it has no parent).
pub fn generate(spec: &FixtureSpec, cache_root: &Path) -> io::Result<Fixture> {
    let mappings_path = match cache_root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("mappings.jsonl"),
        _ => cache_root.join("mappings.jsonl"),
    };
    generate_to(spec, cache_root, &mappings_path)
}

/// [`generate`] with an explicit mapping file path.
pub fn generate_to(
    spec: &FixtureSpec,
    cache_root: &Path,
    mappings_path: &Path,
) -> io::Result<Fixture> {
    let artifacts_dir = cache_root.join("artifacts");
    fs::create_dir_all(&artifacts_dir)?;
    let modules = plan(spec);
    let next = AtomicUsize::new(0);
    let results: Mutex<Written> = Mutex::new(Vec::new());
    let error: Mutex<Option<io::Error>> = Mutex::new(None);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(4)
        .min(16);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = Vec::new();
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= modules.len() || error.lock().unwrap().is_some() {
                        break;
                    }
                    let mut names = Vec::new();
                    for f in &modules[i].files {
                        match write_one(&artifacts_dir, f, &mut buf) {
                            Ok(name) => names.push((name, f.size)),
                            Err(e) => {
                                *error.lock().unwrap() = Some(e);
                                return;
                            }
                        }
                    }
                    local.push((i, names));
                }
                results.lock().unwrap().extend(local);
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap() {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let mut mappings = MappingFile::new(SCHEMA_G3);
    let mut artifacts = Vec::new();
    for (i, files) in results {
        let names: Vec<ArtifactName> = files.iter().map(|(n, _)| n.clone()).collect();
        mappings
            .entries
            .insert(modules[i].input, outputs_json(spec.style, &names));
        artifacts.extend(files);
    }
    artifacts.sort();
    artifacts.dedup();
    let total_bytes = artifacts.iter().map(|(_, s)| s).sum();
    write_mappings(&mappings, mappings_path, SCHEMA_G3)?;
    Ok(Fixture {
        mappings,
        mappings_path: mappings_path.to_path_buf(),
        artifacts,
        total_bytes,
    })
}

/// Writes `mappings` to `path` in Lake's form with the given schema header
/// ([`SCHEMA_G3`], or [`SCHEMA_G1`] for older Lakes), creating parent directories.
pub fn write_mappings(mappings: &MappingFile, path: &Path, schema: &str) -> io::Result<()> {
    let mut m = mappings.clone();
    m.schema = schema.to_string();
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent)?;
        }
    }
    fs::write(path, m.to_bytes())
}

/// The G1 schema string, for callers that want older mapping files.
pub const G1: &str = SCHEMA_G1;

fn write_one(dir: &Path, f: &Planned, buf: &mut Vec<u8>) -> io::Result<ArtifactName> {
    buf.clear();
    buf.resize(f.size as usize, 0);
    SplitMix64(f.seed).fill(buf);
    let name = ArtifactName::new(Hash::of_bytes(buf), f.ext);
    let path = dir.join(name.file_name());
    if path.exists() {
        return Ok(name);
    }
    let mut file = File::create(&path)?;
    file.write_all(buf)?;
    drop(file);
    let mut perms = fs::metadata(&path)?.permissions();
    perms.set_readonly(true);
    fs::set_permissions(&path, perms)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_fixture_is_consistent_and_deterministic() {
        let a = tempdir("a");
        let b = tempdir("b");
        let fa = generate(&FixtureSpec::small(20), &a.join("cache")).unwrap();
        let fb = generate(&FixtureSpec::small(20), &b.join("cache")).unwrap();
        assert_eq!(fa.mappings, fb.mappings);
        assert_eq!(fa.artifacts, fb.artifacts);
        assert_eq!(fa.artifacts.len(), 20);
        assert_eq!(fa.mappings.artifacts().unwrap().len(), 20);
        let on_disk = fs::read(&fa.mappings_path).unwrap();
        assert_eq!(on_disk, fa.mappings.to_bytes());
        assert!(on_disk.starts_with(b"\"2026-03-17\"\n"));
        for (name, size) in &fa.artifacts {
            let bytes = fs::read(a.join("cache/artifacts").join(name.file_name())).unwrap();
            assert_eq!(bytes.len() as u64, *size);
            assert_eq!(Hash::of_bytes(&bytes), name.hash);
        }
        let other = generate(&FixtureSpec::small(20).with_seed(2), &b.join("c2")).unwrap();
        assert_ne!(other.mappings, fa.mappings);
        fs::remove_dir_all(&a).ok();
        fs::remove_dir_all(&b).ok();
    }

    #[test]
    fn module_style_has_three_artifacts_per_module() {
        let d = tempdir("m");
        let fx = generate(
            &FixtureSpec::small(5).with_style(Style::Modules),
            &d.join("cache"),
        )
        .unwrap();
        assert_eq!(fx.artifacts.len(), 15);
        let exts: Vec<&str> = fx.artifacts.iter().map(|(n, _)| n.ext.as_str()).collect();
        assert_eq!(exts.iter().filter(|e| **e == "olean").count(), 5);
        let g1 = d.join("g1.jsonl");
        write_mappings(&fx.mappings, &g1, G1).unwrap();
        let parsed = MappingFile::parse(&fs::read(&g1).unwrap()).unwrap();
        assert_eq!(parsed.file.schema, SCHEMA_G1);
        assert_eq!(parsed.file.entries, fx.mappings.entries);
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn mathlib_sizes_have_the_right_mean_and_tail() {
        let modules = plan(&FixtureSpec::mathlib());
        let sizes: Vec<u64> = modules.iter().map(|m| m.files[0].size).collect();
        let total: u64 = sizes.iter().sum();
        assert_eq!(sizes.len(), 8_900);
        assert!((330_000_000..470_000_000).contains(&total), "{total}");
        let max = *sizes.iter().max().unwrap();
        assert!((1_000_000..=MAX_SIZE).contains(&max), "{max}");
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tarn-fixture-test-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
}

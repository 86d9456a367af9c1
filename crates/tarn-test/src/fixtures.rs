//! Small deterministic artifacts, mapping files and staging directories for the remote and
//! serve tests (larger Lake-shaped caches come from `tarn-fixture`, re-exported by this crate).

use std::path::{Path, PathBuf};

/// Deterministic pseudo-random bytes.
pub fn bytes_for(seed: u64, len: usize) -> Vec<u8> {
    seeded_bytes(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, len)
}

/// `len` bytes of tarn-fixture's generator (SplitMix64) started from `state`: one
/// generator for the test kit and the fixtures.
fn seeded_bytes(state: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    tarn_fixture::SplitMix64(state).fill(&mut out);
    out
}

/// One generated artifact.
#[derive(Debug, Clone)]
pub struct Art {
    /// Local file name `<hash>.<ext>`.
    pub file_name: String,
    /// Hex hash.
    pub hash: String,
    /// Content.
    pub content: Vec<u8>,
}

/// `n` artifacts with varied sizes and extensions, deterministic per `seed`.
pub fn artifacts(n: usize, seed: u64) -> Vec<Art> {
    const EXTS: [&str; 5] = ["olean", "ilean", "c", "ltar", "olean.server"];
    (0..n)
        .map(|i| {
            let s = seed * 1_000_003 + i as u64;
            let len = 1 + (s as usize * 7919) % 6000;
            let content = bytes_for(s, len);
            let hash = tarn_core::Hash::of_bytes(&content).hex();
            Art {
                file_name: format!("{hash}.{}", EXTS[i % EXTS.len()]),
                hash,
                content,
            }
        })
        .collect()
}

/// A mapping file (G3 header) with one entry per artifact, input hashes derived from `seed`.
pub fn mappings(arts: &[Art], seed: u64) -> Vec<u8> {
    let mut out = b"\"2026-03-17\"\n".to_vec();
    for (i, a) in arts.iter().enumerate() {
        let input = tarn_core::Hash::of_bytes(format!("input {seed} {i}").as_bytes()).hex();
        out.extend_from_slice(format!("[\"{input}\",\"{}\"]\n", a.file_name).as_bytes());
    }
    out
}

/// Writes a staging directory: the artifacts plus `outputs.jsonl`.
pub fn write_staging(dir: &Path, arts: &[Art], seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for a in arts {
        std::fs::write(dir.join(&a.file_name), &a.content).unwrap();
    }
    std::fs::write(dir.join("outputs.jsonl"), mappings(arts, seed)).unwrap();
}

/// Writes artifacts into a bucket-like tree as a service would hold them:
/// `<root>/<artifact_prefix>/<hash>.art`.
pub fn write_remote_artifacts(root: &Path, artifact_prefix: &str, arts: &[Art]) {
    let dir = root.join(artifact_prefix);
    std::fs::create_dir_all(&dir).unwrap();
    for a in arts {
        std::fs::write(dir.join(format!("{}.art", a.hash)), &a.content).unwrap();
    }
}

/// Checks that `cache/artifacts` holds every artifact with the right content hash, and returns
/// the names that are missing or wrong.
pub fn check_cache(cache: &Path, arts: &[Art]) -> Vec<String> {
    arts.iter()
        .filter(|a| {
            let p = cache.join("artifacts").join(&a.file_name);
            match std::fs::read(&p) {
                Ok(b) => tarn_core::Hash::of_bytes(&b).hex() != a.hash,
                Err(_) => true,
            }
        })
        .map(|a| a.file_name.clone())
        .collect()
}

/// Lake's hash of `b` in hex.
pub fn hash_hex(b: &[u8]) -> String {
    tarn_core::Hash::of_bytes(b).hex()
}

/// Writes `n` artifacts (size `len + i`) into `dir`; returns (path, hash, bytes).
pub fn make_artifacts(
    dir: &Path,
    n: usize,
    len: usize,
    seed: u64,
) -> Vec<(PathBuf, String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let data = seeded_bytes((seed * 7919 + i as u64) | 1, len + i);
            let h = hash_hex(&data);
            let p = dir.join(format!("{h}.olean"));
            std::fs::write(&p, &data).unwrap();
            (p, h, data)
        })
        .collect()
}

/// A Reservoir bulk request body (`POST /api/v1/repositories/OWNER/REPO/artifacts`) asking
/// about `n` distinct hashes, spread over the hash space.
pub fn bulk_request_body(n: u64) -> Vec<u8> {
    let hashes: Vec<tarn_core::Hash> = (0..n)
        .map(|i| tarn_core::Hash(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    tarn_core::reservoir::encode_bulk_request(&hashes)
}

/// A G3 mapping file whose entries reference `hashes` (as `.olean` files).
pub fn mapping_for(hashes: &[&str]) -> String {
    let mut s = "\"2026-03-17\"\n".to_string();
    for (i, h) in hashes.iter().enumerate() {
        s.push_str(&format!("[\"{:016x}\",\"{h}.olean\"]\n", i + 1));
    }
    s
}

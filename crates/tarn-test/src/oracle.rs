//! A second reader of Lake's local cache, written for the tests from the hash spec and the
//! layout alone, sharing no code with tarn: tests that ask "is this cache intact?" (the crash
//! campaign above all) must not let tarn judge its own output. It recomputes every
//! artifact's Lake hash from its bytes (its own MurmurHash64A, checked against the committed
//! vectors in `tarn-core/tests/data`) and checks that every `outputs/` entry names artifacts
//! that exist.

use std::path::Path;

const M: u64 = 0xc6a4a793_5bd1e995;
const R: u32 = 47;
/// The seed Lean passes for byte arrays and strings.
const LEAN_SEED: u64 = 11;
/// `Hash.nil`.
const NIL: u64 = 1723;

/// MurmurHash64A of `bytes` with `seed` (little-endian blocks, Lean's `hash_str`).
fn murmur64a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(M);
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let mut k = u64::from_le_bytes(word).wrapping_mul(M);
        k ^= k >> R;
        h = (h ^ k.wrapping_mul(M)).wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let t = tail
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        h = (h ^ t).wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^ (h >> R)
}

/// Lean's `mixHash` (its second step XORs with `M`, it does not multiply).
fn mix(h: u64, k: u64) -> u64 {
    let mut k = k.wrapping_mul(M);
    k ^= k >> R;
    k ^= M;
    (h ^ k).wrapping_mul(M)
}

/// The names a stored artifact with these bytes may carry: its binary hash
/// (`Hash.ofByteArray`) and, since Lake stores text artifacts already normalised, its text
/// hash (`Hash.ofString`), each as 16 hex digits.
fn names_for(bytes: &[u8]) -> [String; 2] {
    let raw = murmur64a(bytes, LEAN_SEED);
    [format!("{raw:016x}"), format!("{:016x}", mix(NIL, raw))]
}

/// Whether `bytes` hash (Lake's binary or text hash, computed here) to the 16 hex digits
/// that begin the file name `name` (`<hash>`, `<hash>.<ext>`).
pub fn name_matches_content(name: &str, bytes: &[u8]) -> bool {
    let stem = name.split('.').next().unwrap_or_default();
    is_hash(stem) && names_for(bytes).iter().any(|n| n == stem)
}

/// 16 lowercase hex digits.
fn is_hash(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Problems found in the Lake cache at `cache`, one line each naming the file: an artifact
/// whose bytes do not hash to its name, an `outputs/` file that is not JSON, and an
/// `outputs/` entry naming an artifact that is not in `artifacts/`. Files not named like an
/// artifact (dot-files such as temp files, foreign files) are left to the tests that look
/// for them. Empty when intact.
pub fn cache_problems(cache: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let artifacts = cache.join("artifacts");
    for entry in std::fs::read_dir(&artifacts)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !is_hash(name.split('.').next().unwrap_or_default()) {
            continue;
        }
        match read_quietly(&entry.path()) {
            Ok(bytes) if name_matches_content(&name, &bytes) => {}
            Ok(bytes) => problems.push(format!(
                "artifacts/{name}: its {} bytes hash to {} (binary) / {} (text)",
                bytes.len(),
                names_for(&bytes)[0],
                names_for(&bytes)[1]
            )),
            Err(e) => problems.push(format!("artifacts/{name}: unreadable: {e}")),
        }
    }
    let outputs = cache.join("outputs");
    for scope in std::fs::read_dir(&outputs).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(scope.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let shown = format!("outputs/{}/{name}", scope.file_name().to_string_lossy());
            let text = read_quietly(&entry.path()).unwrap_or_default();
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) else {
                problems.push(format!("{shown}: not JSON"));
                continue;
            };
            let data = match value.get("schemaVersion") {
                Some(_) => value.get("data").cloned().unwrap_or_default(),
                None => value,
            };
            let mut named = Vec::new();
            artifact_names(&data, &mut named);
            for a in named {
                if !artifacts.join(&a).is_file() {
                    problems.push(format!("{shown}: names {a}, which is not in artifacts/"));
                }
            }
        }
    }
    problems
}

/// Every string in `v` shaped like an artifact file name (`<16 hex>` or `<16 hex>.<ext>`).
fn artifact_names(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s)
            if is_hash(s.split('.').next().unwrap_or_default()) && !s.contains('/') =>
        {
            out.push(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| artifact_names(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| artifact_names(i, out)),
        _ => {}
    }
}

/// Reads a file without updating its access time (`O_NOATIME` where the platform has it), so
/// that checking a cache never makes its files look recently used to `tarn cache prune`.
fn read_quietly(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOATIME);
    }
    let mut file = options.open(path).or_else(|_| std::fs::File::open(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Vec<serde_json::Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tarn-core/tests/data/lean-hash-vectors.json"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        doc["vectors"].as_array().unwrap().clone()
    }

    /// A vector's input bytes: given in hex, or drawn from SplitMix64 as the vectors file
    /// defines it (`None` for a generated input with a transform: not needed here).
    fn input_bytes(input: &serde_json::Value, key: &str) -> Option<Vec<u8>> {
        if input.get(key).is_some() {
            return Some(hex_bytes(&input[key]));
        }
        let g = &input["generator"];
        if g.get("transform").is_some() {
            return None;
        }
        let mut state = word(&g["seed"]);
        let len = g["length"].as_u64().unwrap() as usize;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out.truncate(len);
        Some(out)
    }

    fn hex_bytes(s: &serde_json::Value) -> Vec<u8> {
        let s = s.as_str().unwrap();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn word(s: &serde_json::Value) -> u64 {
        u64::from_str_radix(s.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    #[test]
    fn the_oracle_agrees_with_every_committed_hash_vector() {
        let mut checked = 0;
        for v in vectors() {
            let input = &v["input"];
            let bytes = |key| input_bytes(input, key);
            let got = match v["algorithm"].as_str().unwrap() {
                "lean.byte_array_hash" => murmur64a(&bytes("hex").unwrap(), LEAN_SEED),
                "murmur64a" => murmur64a(&bytes("hex").unwrap(), word(&input["seed"])),
                "lean.mix_hash" => mix(word(&input["a"]), word(&input["b"])),
                "lake.of_string" => mix(NIL, murmur64a(&bytes("hex").unwrap(), LEAN_SEED)),
                "lake.of_text" => match bytes("normalized_hex") {
                    Some(b) => mix(NIL, murmur64a(&b, LEAN_SEED)),
                    None => continue,
                },
                _ => continue,
            };
            assert_eq!(format!("{got:016x}"), v["expected"]["hex"], "{}", v["name"]);
            checked += 1;
        }
        assert!(checked >= 170, "only {checked} vectors checked");
    }

    #[test]
    fn a_cache_is_judged_by_its_bytes_and_its_outputs() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path();
        std::fs::create_dir_all(cache.join("artifacts")).unwrap();
        std::fs::create_dir_all(cache.join("outputs/pkg")).unwrap();
        let good = format!("{}.olean", names_for(b"module")[0]);
        let text = format!("{}.c", names_for(b"int x;\n")[1]);
        std::fs::write(cache.join("artifacts").join(&good), b"module").unwrap();
        std::fs::write(cache.join("artifacts").join(&text), b"int x;\n").unwrap();
        let entry = format!(
            r#"{{"schemaVersion":"2026-02-25","service":null,"data":{{"o":["{good}","{text}"]}}}}"#
        );
        std::fs::write(cache.join("outputs/pkg/0000000000000001.json"), entry).unwrap();
        assert_eq!(cache_problems(cache), Vec::<String>::new());

        // A torn write under the final name, and an entry naming a missing artifact.
        std::fs::write(cache.join("artifacts").join(&good), b"modu").unwrap();
        std::fs::write(
            cache.join("outputs/pkg/0000000000000002.json"),
            r#""00000000000000ab.olean""#,
        )
        .unwrap();
        std::fs::write(cache.join("outputs/pkg/0000000000000003.json"), "{").unwrap();
        let problems = cache_problems(cache);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems
            .iter()
            .any(|p| p.starts_with(&format!("artifacts/{good}"))));
        assert!(problems
            .iter()
            .any(|p| p.contains("names 00000000000000ab.olean")));
        assert!(problems
            .iter()
            .any(|p| p.contains("0000000000000003.json: not JSON")));
    }
}

//! Every vector in `tests/data/lean-hash-vectors.json` (copied from the shared test data,
//! cross-checked there against Lean's runtime C code) must reproduce exactly.

use serde_json::Value;
use tarn_core::{mix_hash, murmur64a, Hash, StreamingHasher};

fn u64_of(v: &Value) -> u64 {
    match v {
        Value::String(s) => {
            let s = s.trim_start_matches("0x");
            u64::from_str_radix(s, 16).expect("hex u64")
        }
        Value::Number(n) => n.as_u64().expect("u64"),
        other => panic!("not a u64: {other}"),
    }
}

fn splitmix64(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn input_bytes(input: &Value) -> Vec<u8> {
    if let Some(h) = input.get("hex") {
        return hex::decode(h.as_str().unwrap()).unwrap();
    }
    let g = &input["generator"];
    assert_eq!(g["prng"], "splitmix64");
    let bytes = splitmix64(u64_of(&g["seed"]), g["length"].as_u64().unwrap() as usize);
    match g.get("transform").and_then(Value::as_str) {
        None => bytes,
        Some("byte x -> 0x0A if x % 7 == 0 else 0x20 + x % 95; then every 0x0A -> 0x0D 0x0A") => {
            let mut out = Vec::with_capacity(bytes.len() * 2);
            for x in bytes {
                if x % 7 == 0 {
                    out.extend_from_slice(b"\r\n");
                } else {
                    out.push(0x20 + x % 95);
                }
            }
            out
        }
        Some(other) => panic!("unknown transform {other}"),
    }
}

#[test]
fn all_vectors_pass() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lean-hash-vectors.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        splitmix64(0, 8),
        0xe220a8397b1dcdafu64.to_le_bytes(),
        "PRNG sanity value"
    );
    let vectors = doc["vectors"].as_array().unwrap();
    let mut checked = 0;
    let skipped: Vec<String> = Vec::new();
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let input = &v["input"];
        let expected = v["expected"]["hex"].as_str().unwrap();
        let got: Option<Hash> = match v["algorithm"].as_str().unwrap() {
            "lean.byte_array_hash" => {
                let bytes = input_bytes(input);
                let whole = Hash::of_bytes(&bytes);
                let mut s = StreamingHasher::new(bytes.len() as u64);
                for piece in bytes.chunks(4093) {
                    s.update(piece);
                }
                assert_eq!(s.finish(), Some(whole), "{name}: streaming differs");
                Some(whole)
            }
            "murmur64a" => Some(Hash(murmur64a(&input_bytes(input), u64_of(&input["seed"])))),
            "lean.mix_hash" => Some(Hash(mix_hash(u64_of(&input["a"]), u64_of(&input["b"])))),
            "lake.mix_fold" => Some(Hash::fold(
                input["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| Hash(u64_of(x))),
            )),
            "lake.of_string" => {
                let bytes = input_bytes(input);
                Some(Hash::of_string(std::str::from_utf8(&bytes).unwrap()))
            }
            "lake.of_text" => {
                let bytes = input_bytes(input);
                if let Some(sha) = input.get("sha256").and_then(Value::as_str) {
                    assert_eq!(
                        tarn_core::sigv4::sha256_hex(&bytes),
                        sha,
                        "{name}: generator"
                    );
                }
                Some(Hash::of_text(std::str::from_utf8(&bytes).unwrap()))
            }
            "lake.array_of_strings" => Some(Hash::fold(
                input["strings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| Hash::of_string(s.as_str().unwrap())),
            )),
            "lake.of_bool" => Some(Hash::of_bool(input["bool"].as_bool().unwrap())),
            "lake.hex" => Some(Hash(u64_of(&input["u64"]))),
            "lake.constant" => Some(Hash::NIL),
            other => panic!("{name}: unknown algorithm {other}"),
        };
        if let Some(got) = got {
            assert_eq!(got.hex(), expected, "vector {name}");
            assert_eq!(
                got.0.to_string(),
                v["expected"]["dec"].as_str().unwrap(),
                "vector {name} (decimal)"
            );
            checked += 1;
        }
    }
    assert_eq!(checked + skipped.len(), vectors.len());
    assert!(skipped.is_empty(), "skipped {skipped:?}");
    eprintln!("{checked} vectors checked, skipped {skipped:?}");
}

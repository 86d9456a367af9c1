//! Lake's 64-bit hashes: MurmurHash64A (seed 11) for content, `mixHash` for traces.
//!
//! Every function here reproduces Lean's runtime bit for bit (`hash.cpp`'s `MurmurHash64A`,
//! `lean.h`'s `lean_uint64_mix_hash`) and Lake's compositions in `Lake/Build/Trace.lean`.
//! The 198 vectors in `tests/data/lean-hash-vectors.json` pin them down.

use std::fmt;
use std::str::FromStr;

const M: u64 = 0xc6a4a7935bd1e995;
const R: u32 = 47;

/// The seed Lean passes to `hash_str` for `ByteArray.hash` and `String.hash`.
pub const LEAN_SEED: u64 = 11;

/// MurmurHash64A (Austin Appleby's 64-bit MurmurHash2) of `data` with `seed`.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    let mut state = MurmurState::new(data.len() as u64, seed);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        state.block(u64::from_le_bytes(block.try_into().expect("8-byte block")));
    }
    state.finish(blocks.remainder())
}

/// Lean's `mixHash` (`lean_uint64_mix_hash`). Not commutative: `h` is the accumulator.
pub fn mix_hash(h: u64, k: u64) -> u64 {
    let mut k = k.wrapping_mul(M);
    k ^= k >> R;
    k ^= M; // an xor, not a second multiply: Lean's runtime does exactly this
    (h ^ k).wrapping_mul(M)
}

#[derive(Clone, Copy)]
struct MurmurState {
    h: u64,
}

impl MurmurState {
    fn new(len: u64, seed: u64) -> Self {
        MurmurState {
            h: seed ^ len.wrapping_mul(M),
        }
    }

    #[inline(always)]
    fn block(&mut self, mut k: u64) {
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        self.h ^= k;
        self.h = self.h.wrapping_mul(M);
    }

    fn finish(mut self, tail: &[u8]) -> u64 {
        debug_assert!(tail.len() < 8);
        if !tail.is_empty() {
            let mut v = 0u64;
            for (i, b) in tail.iter().enumerate() {
                v |= (*b as u64) << (8 * i);
            }
            self.h ^= v;
            self.h = self.h.wrapping_mul(M);
        }
        let mut h = self.h;
        h ^= h >> R;
        h = h.wrapping_mul(M);
        h ^= h >> R;
        h
    }
}

/// A Lake hash (`structure Hash where val : UInt64`).
///
/// Displayed as Lake prints it: 16 lowercase hex digits, zero-padded.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub u64);

impl Hash {
    /// `Hash.nil` = 1723, the start of every fold.
    pub const NIL: Hash = Hash(1723);

    /// `Hash.ofByteArray`: the content hash of a binary artifact.
    pub fn of_bytes(bytes: &[u8]) -> Hash {
        Hash(murmur64a(bytes, LEAN_SEED))
    }

    /// `Hash.ofString`: `mix nil (String.hash s)`.
    pub fn of_string(s: &str) -> Hash {
        Hash::NIL.mix(Hash(murmur64a(s.as_bytes(), LEAN_SEED)))
    }

    /// `Hash.ofText`: CR LF → LF in one left-to-right pass, then `ofString`.
    pub fn of_text(s: &str) -> Hash {
        Hash::of_string(&crlf_to_lf(s))
    }

    /// `Hash.ofBool` (Lean's `Hashable Bool`: true → 11, false → 13). Public only for the
    /// hash-vector test (`tests/hash_vectors.rs`), which checks it against Lake's values.
    pub fn of_bool(b: bool) -> Hash {
        Hash(if b { 11 } else { 13 })
    }

    /// `Hash.mix`.
    pub(crate) fn mix(self, other: Hash) -> Hash {
        Hash(mix_hash(self.0, other.0))
    }

    /// Left fold of `mix` over `hashes`, starting from `Hash.nil` (`mixTraceArray`).
    pub fn fold<I: IntoIterator<Item = Hash>>(hashes: I) -> Hash {
        hashes.into_iter().fold(Hash::NIL, Hash::mix)
    }

    /// The 16-digit lowercase hex form (`Hash.hex`).
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// `Hash.ofHex?`: exactly 16 hex digits, either case.
    pub fn from_hex(s: &str) -> Option<Hash> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(Hash)
    }

    /// `Hash.fromJson?`: a 16-digit hex string, or (legacy) a JSON natural number below 2^64.
    pub fn from_json(v: &serde_json::Value) -> Option<Hash> {
        match v {
            serde_json::Value::String(s) => Hash::from_hex(s),
            serde_json::Value::Number(n) => n.as_u64().map(Hash),
            _ => None,
        }
    }
}

/// Lean's `String.crlfToLf`: replace each `\r\n` with `\n` in a single pass.
pub(crate) fn crlf_to_lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({:016x})", self.0)
    }
}

/// Error for a string that is not a 16-digit hex hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Lake hash (expected 16 hex digits): {0:?}")]
pub struct ParseHashError(pub String);

impl FromStr for Hash {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s).ok_or_else(|| ParseHashError(s.to_string()))
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Hash::from_json(&v).ok_or_else(|| serde::de::Error::custom(format!("not a Lake hash: {v}")))
    }
}

/// Incremental MurmurHash64A for data that arrives in pieces (a download, a file read in
/// chunks). The total length must be known up front: MurmurHash64A mixes it into the
/// initial state.
#[derive(Clone)]
pub struct StreamingHasher {
    state: MurmurState,
    expected_len: u64,
    seen: u64,
    carry: [u8; 8],
    carry_len: usize,
}

impl StreamingHasher {
    /// A hasher for exactly `len` bytes with Lean's seed.
    pub fn new(len: u64) -> Self {
        StreamingHasher {
            state: MurmurState::new(len, LEAN_SEED),
            expected_len: len,
            seen: 0,
            carry: [0; 8],
            carry_len: 0,
        }
    }

    /// Feeds the next piece of the data.
    pub fn update(&mut self, mut data: &[u8]) {
        self.seen += data.len() as u64;
        if self.carry_len > 0 {
            let need = 8 - self.carry_len;
            let take = need.min(data.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            self.carry_len += take;
            data = &data[take..];
            if self.carry_len < 8 {
                return;
            }
            self.state.block(u64::from_le_bytes(self.carry));
            self.carry_len = 0;
        }
        let mut blocks = data.chunks_exact(8);
        for block in &mut blocks {
            self.state
                .block(u64::from_le_bytes(block.try_into().expect("8-byte block")));
        }
        let rest = blocks.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
    }

    /// Bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// The hash, or `None` when the number of bytes fed differs from the announced length
    /// (the result would then be meaningless).
    pub fn finish(self) -> Option<Hash> {
        if self.seen != self.expected_len {
            return None;
        }
        Some(Hash(self.state.finish(&self.carry[..self.carry_len])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_values_from_the_spec() {
        assert_eq!(Hash::of_bytes(b"").hex(), "89133354f2041b41");
        assert_eq!(Hash::of_bytes(b"hello").hex(), "884e46be8ed9fafd");
        assert_eq!(Hash::of_string("hello").hex(), "693262ffc8f4b68a");
        assert_eq!(format!("{:016x}", mix_hash(0, 0)), "35a98f4d286a90b9");
        assert_eq!(format!("{:016x}", mix_hash(1, 2)), "e62129c84f35c59c");
        assert_eq!(format!("{:016x}", mix_hash(2, 1)), "8a1c9d906dbb7fa7");
        assert_eq!(Hash::fold([]).hex(), "00000000000006bb");
    }

    #[test]
    fn streaming_matches_one_shot_for_every_split() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let whole = Hash::of_bytes(&data);
        for split in [0, 1, 3, 7, 8, 9, 15, 16, 17, 500, 999, 1000] {
            let mut s = StreamingHasher::new(data.len() as u64);
            s.update(&data[..split]);
            for piece in data[split..].chunks(5) {
                s.update(piece);
            }
            assert_eq!(s.finish(), Some(whole), "split at {split}");
        }
    }

    #[test]
    fn streaming_rejects_a_wrong_length() {
        let mut s = StreamingHasher::new(10);
        s.update(b"short");
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn parses_hex_and_legacy_decimal() {
        assert_eq!(Hash::from_hex("00000000000006BB"), Some(Hash(1723)));
        assert_eq!(Hash::from_hex("6bb"), None);
        assert_eq!(Hash::from_hex("00000000000006bg"), None);
        assert_eq!(Hash::from_json(&serde_json::json!(1723)), Some(Hash(1723)));
        assert_eq!(Hash::from_json(&serde_json::json!(-1)), None);
        assert_eq!(Hash::from_json(&serde_json::json!(1.5)), None);
    }
}

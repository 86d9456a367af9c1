//! Real MurmurHash64A collisions, as an attacker makes them: chosen content, padded to a
//! whole 8-byte block, plus one computed 8-byte block that makes Lake's artifact hash
//! (MurmurHash64A, seed 11, `Hash.ofByteArray`) equal any target. No search: the last
//! block step and the finaliser are both invertible (docs/trust.md, "The threat").

use tarn_core::{murmur64a, Hash, LEAN_SEED};

const M: u64 = 0xc6a4a7935bd1e995;
const R: u32 = 47;

/// The inverse of `M` modulo 2^64 (Newton's iteration; `M` is odd).
fn m_inverse() -> u64 {
    let mut inv = M;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(M.wrapping_mul(inv)));
    }
    debug_assert_eq!(M.wrapping_mul(inv), 1);
    inv
}

/// `x ^= x >> 47` is its own inverse (47 ≥ 32).
fn unshift(x: u64) -> u64 {
    x ^ (x >> R)
}

/// `content`, zero-padded to a multiple of 8 bytes, then 8 computed bytes: the result's Lake
/// content hash is `target`.
pub fn forge_collision(target: Hash, content: &[u8]) -> Vec<u8> {
    forge_collision_sized(target, content, content.len().div_ceil(8) * 8 + 8)
}

/// [`forge_collision`] of exactly `size` bytes (the size of the artifact it impersonates):
/// `content` zero-padded, 8 computed bytes, then `size % 8` zero bytes. Panics when
/// `content` and the 8 bytes do not fit in `size`.
pub fn forge_collision_sized(target: Hash, content: &[u8], size: usize) -> Vec<u8> {
    let inv = m_inverse();
    let tail = size % 8;
    assert!(
        size >= 8 + tail && content.len() <= size - 8 - tail,
        "{} bytes of content and 8 computed bytes do not fit in {size}",
        content.len()
    );
    let mut out = content.to_vec();
    out.resize(size - 8 - tail, 0);
    let len = size as u64;
    // The state after the chosen blocks, for a message of the final length.
    let mut h = LEAN_SEED ^ len.wrapping_mul(M);
    for block in out.chunks_exact(8) {
        let mut k = u64::from_le_bytes(block.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    // Undo the finaliser: the state before it.
    let mut want = unshift(unshift(target.0).wrapping_mul(inv));
    // Undo the tail step `h = (h ^ tail) * M` (the tail is zeros): the state the last block
    // must leave.
    if tail > 0 {
        want = want.wrapping_mul(inv);
    }
    // Undo the last block step: h' = (h ^ mix(k)) * M.
    let mixed = want.wrapping_mul(inv) ^ h;
    let k = unshift(mixed.wrapping_mul(inv)).wrapping_mul(inv);
    out.extend_from_slice(&k.to_le_bytes());
    out.resize(size, 0);
    debug_assert_eq!(murmur64a(&out, LEAN_SEED), target.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_content_hashes_to_any_target() {
        for (i, target) in [0u64, 1, 0x884e46be8ed9fafd, u64::MAX, 0x0123456789abcdef]
            .into_iter()
            .enumerate()
        {
            let content = format!("malicious olean {i}").into_bytes();
            let forged = forge_collision(Hash(target), &content);
            assert!(forged.starts_with(&content));
            assert_eq!(Hash::of_bytes(&forged), Hash(target));
            for size in [32, 33, 39, 1000, 4099] {
                let forged = forge_collision_sized(Hash(target), &content, size);
                assert_eq!(forged.len(), size);
                assert!(forged.starts_with(&content));
                assert_eq!(Hash::of_bytes(&forged), Hash(target), "size {size}");
            }
        }
    }
}

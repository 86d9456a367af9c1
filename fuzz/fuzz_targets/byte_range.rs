//! HTTP `Range` headers resolved against an object length (the first 8 bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tarn_core::byte_range::{resolve, Resolved};

fuzz_target!(|data: &[u8]| {
    let (len, header) = if data.len() >= 8 {
        let (l, h) = data.split_at(8);
        // Mostly small lengths, where the edge cases are; sometimes any u64.
        let n = u64::from_le_bytes(l.try_into().unwrap());
        (if n & 1 == 0 { n % 4096 } else { n }, h)
    } else {
        (10, data)
    };
    let header = String::from_utf8_lossy(header);
    if let Resolved::Range { first, last } = resolve(&header, len) {
        assert!(first <= last && last < len, "{header:?} on {len}: {first}-{last}");
    }
});

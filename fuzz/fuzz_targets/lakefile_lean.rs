//! `lakefile.lean` package-field extraction.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data);
    let _ = tarn_core::parse_lakefile_lean(&t, "lakefile.lean");
});

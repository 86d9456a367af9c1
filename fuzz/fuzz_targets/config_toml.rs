//! The system configuration and `lakefile.toml`, and `lake-manifest.json`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data);
    let _ = tarn_core::SystemConfig::parse(&t);
    let _ = tarn_core::PackageConfig::parse_toml(&t);
    let _ = tarn_core::Manifest::parse(data, "lake-manifest.json");
});

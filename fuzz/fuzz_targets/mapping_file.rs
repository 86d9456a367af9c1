//! Mapping files (`outputs.jsonl`, revision files): parse, list artifacts, round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = tarn_core::MappingFile::parse(data) {
        let _ = p.file.artifacts();
        let again = tarn_core::MappingFile::parse(&p.file.to_bytes()).expect("round trip");
        assert_eq!(again.file.entries.len(), p.file.entries.len());
    }
    let _ = tarn_core::output::CacheOutput::parse(data);
    let _ = tarn_core::reservoir::parse_bulk_request(data);
    let _ = tarn_core::reservoir::parse_bulk_reply(data, 3);
});

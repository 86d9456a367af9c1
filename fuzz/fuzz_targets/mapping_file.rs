//! Mapping files (`outputs.jsonl`, revision files): parse, list artifacts, round-trip;
//! `outputs/*.json` wrappers, Reservoir bulk bodies and batch API bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = tarn_core::MappingFile::parse(data) {
        let _ = p.file.artifacts();
        let again = tarn_core::MappingFile::parse(&p.file.to_bytes()).expect("round trip");
        assert_eq!(again.file.entries.len(), p.file.entries.len());
    }
    let _ = tarn_core::CacheOutput::parse(data);
    let _ = tarn_core::reservoir::parse_bulk_request(data);
    let _ = tarn_core::reservoir::parse_bulk_reply(data, 3);
    let _ = tarn_core::batch::parse_request(data);
    let asked: std::collections::HashSet<tarn_core::Hash> =
        [tarn_core::Hash(1), tarn_core::Hash(0xfedc_ba98_7654_3210)].into();
    if let Some(missing) = tarn_core::batch::parse_reply(data, &asked) {
        assert!(missing.is_subset(&asked));
    }
});

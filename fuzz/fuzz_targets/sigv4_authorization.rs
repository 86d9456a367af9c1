//! SigV4: the Authorization header, canonical URI and query, dates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tarn_core::sigv4;

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data);
    let _ = sigv4::ParsedAuthorization::parse(&t);
    let _ = sigv4::canonical_uri(&t);
    let canonical = sigv4::canonical_query(&t);
    if let Some(curl) = sigv4::canonical_query_curl_788(&t) {
        // Same pairs, only some `=` dropped.
        assert_eq!(curl.split('&').count(), canonical.split('&').count());
        assert!(curl.len() <= canonical.len());
    }
    let _ = sigv4::percent_decode(&t);
    let _ = sigv4::AmzDate(t.to_string()).to_unix();
    let _ = tarn_core::object_key::scope_of_key(&t, "r0");
    let _ = tarn_core::Scope::repo(&t);
});

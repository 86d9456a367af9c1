//! `tarn serve`'s request target: path split and decoded, component rules, query
//! parameters and the S3 listing query.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tarn_core::request_target::{check_components, has_param, param, split_path, valid_component};
use tarn_core::s3_listing::{ListQuery, MAX_KEYS};

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data);
    let (path, query) = match t.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*t, None),
    };
    let parts = split_path(path);
    assert!(parts.comps.iter().all(|c| !c.is_empty()));
    if check_components(&parts.comps).is_ok() {
        assert!(parts.comps.iter().all(|c| valid_component(c)));
    }
    for name in ["prefix", "list-type", "x", ""] {
        if param(query, name).is_some() {
            assert!(has_param(query, name));
        }
    }
    let q = ListQuery::parse(query);
    assert!(q.max_keys <= MAX_KEYS);
});

//! ListObjectsV2 XML replies (read by `tarn serve`'s S3 backend) and their timestamps.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tarn_core::s3_listing::{parse_iso_time, parse_page};

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data);
    if let Ok(page) = parse_page(&t) {
        for e in &page.entries {
            let _ = parse_iso_time(&e.last_modified);
        }
    }
    let _ = parse_iso_time(&t);
});

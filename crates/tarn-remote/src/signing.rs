//! SigV4 header signing for reqwest requests (the maths lives in `tarn_core::sigv4`).

use std::time::{SystemTime, UNIX_EPOCH};

use tarn_core::sigv4::{self, AmzDate, Credentials, SimpleRequest};

/// Signs requests with one key for one region (service `s3`).
#[derive(Debug, Clone)]
pub struct Signer {
    /// The key (`LAKE_CACHE_KEY`).
    pub creds: Credentials,
    /// The SigV4 region: `auto` by default (what Lake passes to curl), `us-east-1` for AWS
    /// and most self-hosted servers.
    pub region: String,
}

/// The region Lake signs with.
pub const DEFAULT_REGION: &str = "auto";

impl Signer {
    /// A signer for `creds` in `region`.
    pub fn new(creds: Credentials, region: impl Into<String>) -> Signer {
        Signer {
            creds,
            region: region.into(),
        }
    }

    /// The headers to add to a request: `x-amz-date`, `x-amz-content-sha256` and
    /// `authorization` (the signature also covers `host`, which reqwest sends from the URL).
    /// `payload_hash` is the hex SHA-256 of the body, or
    /// [`tarn_core::sigv4::UNSIGNED_PAYLOAD`].
    pub fn headers(
        &self,
        method: &str,
        url: &reqwest::Url,
        payload_hash: &str,
    ) -> Vec<(&'static str, String)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.headers_at(method, url, payload_hash, &AmzDate::from_unix(now))
    }

    /// [`Signer::headers`] at a given time.
    pub(crate) fn headers_at(
        &self,
        method: &str,
        url: &reqwest::Url,
        payload_hash: &str,
        date: &AmzDate,
    ) -> Vec<(&'static str, String)> {
        let host = host_header(url);
        SimpleRequest {
            method,
            host: &host,
            path: url.path(),
            query: url.query().unwrap_or(""),
            payload_hash,
        }
        .sign(&self.creds, &self.region, date)
        .to_vec()
    }
}

/// The `Host` header an HTTP client sends for `url`: the host, plus `:port` when the port
/// is not the scheme's default.
pub(crate) fn host_header(url: &reqwest::Url) -> String {
    sigv4::host_header(url.host_str().unwrap_or(""), url.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_keeps_non_default_ports() {
        let u = reqwest::Url::parse("http://127.0.0.1:9000/b/k").unwrap();
        assert_eq!(host_header(&u), "127.0.0.1:9000");
        let u = reqwest::Url::parse("https://x.r2.dev:443/b").unwrap();
        assert_eq!(host_header(&u), "x.r2.dev");
    }

    #[test]
    fn signature_covers_path_and_payload() {
        let s = Signer::new(Credentials::parse("id:secret").unwrap(), "auto");
        let d = AmzDate::from_unix(1_700_000_000);
        let u = reqwest::Url::parse("http://h:1/a0/%21/x.art").unwrap();
        let a = s.headers_at("PUT", &u, "UNSIGNED-PAYLOAD", &d);
        let b = s.headers_at("PUT", &u, sigv4::EMPTY_SHA256, &d);
        assert_eq!(a[0].1, "20231114T221320Z");
        assert!(a[2].1.starts_with(
            "AWS4-HMAC-SHA256 Credential=id/20231114/auto/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
        ));
        assert_ne!(a[2].1, b[2].1);
    }
}

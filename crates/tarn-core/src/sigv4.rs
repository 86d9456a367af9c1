//! AWS Signature Version 4 for S3 header authentication: signing (the client, as
//! `curl --aws-sigv4 aws:amz:auto:s3` does for Lake) and checking (`tarn serve`).
//!
//! Pure functions: callers supply the clock as a [`AmzDate`] and the request parts.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name in the `Authorization` header.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload-hash value that leaves the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string, the payload hash of a bodiless request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An access key: `LAKE_CACHE_KEY` holds `id:secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id (public).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:***)", self.access_key_id)
    }
}

impl Credentials {
    /// Parses `id:secret` (surrounding white space trimmed, as Lake does).
    pub fn parse(key: &str) -> Option<Credentials> {
        let (id, secret) = key.trim().split_once(':')?;
        if id.is_empty() || secret.is_empty() {
            return None;
        }
        Some(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
        })
    }
}

/// A request time in SigV4's `YYYYMMDDTHHMMSSZ` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmzDate(pub String);

impl AmzDate {
    /// From seconds since the Unix epoch (UTC).
    pub fn from_unix(secs: u64) -> AmzDate {
        let [y, mo, d, h, mi, s] = utc_fields(secs);
        AmzDate(format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"))
    }

    /// Parses `YYYYMMDDTHHMMSSZ` back to Unix seconds.
    pub fn to_unix(&self) -> Option<u64> {
        let s = self.0.as_bytes();
        if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' {
            return None;
        }
        let num = |a: usize, b: usize| -> Option<i64> {
            std::str::from_utf8(&s[a..b]).ok()?.parse().ok()
        };
        let (y, mo, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
        let (h, mi, se) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
    }

    /// The `YYYYMMDD` part used in the credential scope.
    pub fn date(&self) -> &str {
        &self.0[..8.min(self.0.len())]
    }
}

/// Seconds since the Unix epoch as an ISO 8601 UTC time: `2026-12-02T00:01:00Z`.
pub fn iso8601(secs: u64) -> String {
    let [y, mo, d, h, mi, s] = utc_fields(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Seconds since the Unix epoch the way S3 writes times in its XML (`LastModified`,
/// `CreationDate`): ISO 8601 UTC with milliseconds, always `.000`, e.g.
/// `2026-12-02T00:01:00.000Z`. [`crate::s3_listing::parse_iso_time`] reads it back.
pub fn iso8601_s3(secs: u64) -> String {
    let mut t = iso8601(secs);
    t.insert_str(t.len() - 1, ".000");
    t
}

/// Year, month, day, hour, minute and second (UTC) of a Unix time.
fn utc_fields(secs: u64) -> [u64; 6] {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    [
        y as u64,
        u64::from(m),
        u64::from(d),
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
    ]
}

// Howard Hinnant's civil calendar conversions (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The parts of a request that enter the signature.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The path as sent on the wire (already percent-encoded), e.g. `/a0/%21/x/0123.art`.
    pub path: &'a str,
    /// The raw query string without `?` (may be empty).
    pub query: &'a str,
    /// Every header to sign, as (name, value); names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The `x-amz-content-sha256` value: a hex SHA-256 or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// Where a signature is valid: date, region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope<'a> {
    /// `YYYYMMDD`.
    pub date: &'a str,
    /// e.g. `auto` (R2, Lake's default) or `us-east-1`.
    pub region: &'a str,
    /// `s3`.
    pub service: &'a str,
}

impl Scope<'_> {
    fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// S3's canonical URI: every path segment decoded then encoded once (RFC 3986, upper-case
/// hex), `/` kept. Lake already sends paths in that form, so for it this is the identity.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    path.split('/')
        .map(|seg| crate::scope::uri_encode(&percent_decode(seg)))
        .collect::<Vec<_>>()
        .join("/")
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are); lossy on invalid UTF-8.
pub fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s)).into_owned()
}

/// The bytes `%XX` escapes in `s` stand for (a `%` not followed by two hex digits is kept).
pub(crate) fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The canonical query string: pairs decoded, re-encoded, sorted by name then value.
pub fn canonical_query(query: &str) -> String {
    // `+` is a space in a query; decoded then re-encoded as `%20`.
    let part = |s: &str| {
        let decoded = if s.contains('+') {
            percent_decode(&s.replace('+', "%20"))
        } else {
            percent_decode(s)
        };
        crate::scope::uri_encode(&decoded)
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (part(k), part(v))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + pairs.len());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The canonical query as curl 7.88 writes it: a parameter given without a value
/// (`?tarn-missing`) appears as `tarn-missing`, not `tarn-missing=`. `None` when the query
/// has no such bare name (then curl's form is [`canonical_query`]'s).
///
/// Linear in the query (after [`canonical_query`]'s sort): the bare names are looked up in a
/// hash set, so a query of many bare names costs no more than one of many `name=value` pairs.
pub fn canonical_query_curl_788(query: &str) -> Option<String> {
    let bare: std::collections::HashSet<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.contains('='))
        .map(|b| crate::scope::uri_encode(&percent_decode(b)))
        .collect();
    if bare.is_empty() {
        return None;
    }
    let canonical = canonical_query(query);
    let mut out = String::with_capacity(canonical.len());
    for (i, kv) in canonical.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match kv.strip_suffix('=') {
            Some(k) if bare.contains(k) => out.push_str(k),
            _ => out.push_str(kv),
        }
    }
    Some(out)
}

fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    hs.sort();
    let mut canonical = String::new();
    let mut names = Vec::with_capacity(hs.len());
    for (n, v) in &hs {
        canonical.push_str(n);
        canonical.push(':');
        canonical.push_str(v);
        canonical.push('\n');
        if names.last() != Some(n) {
            names.push(n.clone());
        }
    }
    (canonical, names.join(";"))
}

/// The canonical request and the signed-headers list.
pub fn canonical_request(req: &RequestParts<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(req.headers);
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        signed,
        req.payload_hash
    );
    (text, signed)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The hex signature of a request.
pub fn signature(
    secret: &str,
    amz_date: &str,
    scope: &Scope<'_>,
    req: &RequestParts<'_>,
) -> String {
    let (canonical, _) = canonical_request(req);
    sign_canonical(secret, amz_date, scope, &canonical)
}

/// The hex signature of a canonical request text (see [`canonical_request`]): the string to
/// sign and the key derivation, the one place both are written. Verifiers that must try
/// variants of a canonical request (client quirks) sign each variant with this.
pub fn sign_canonical(secret: &str, amz_date: &str, scope: &Scope<'_>, canonical: &str) -> String {
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.credential_scope(),
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The `Host` header an HTTP client sends (and signs) for a URL's host and explicit port:
/// `host:port` when the URL names a port that is not the scheme's default (URL parsers
/// report none then), else `host`.
pub fn host_header(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// A request as tarn's clients sign it: the headers covered are exactly `host`,
/// `x-amz-content-sha256` and `x-amz-date`.
#[derive(Debug, Clone)]
pub struct SimpleRequest<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The `Host` header the client will send (`host[:port]`).
    pub host: &'a str,
    /// The path as sent on the wire (already percent-encoded).
    pub path: &'a str,
    /// The raw query string without `?` (may be empty).
    pub query: &'a str,
    /// The hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

impl SimpleRequest<'_> {
    /// The headers to add: `x-amz-date`, `x-amz-content-sha256` and `authorization`, in
    /// that order.
    pub fn sign(
        &self,
        creds: &Credentials,
        region: &str,
        date: &AmzDate,
    ) -> [(&'static str, String); 3] {
        let headers = [
            ("host", self.host),
            ("x-amz-content-sha256", self.payload_hash),
            ("x-amz-date", date.0.as_str()),
        ];
        let parts = RequestParts {
            method: self.method,
            path: self.path,
            query: self.query,
            headers: &headers,
            payload_hash: self.payload_hash,
        };
        [
            ("x-amz-date", date.0.clone()),
            ("x-amz-content-sha256", self.payload_hash.to_string()),
            (
                "authorization",
                authorization(creds, date, region, "s3", &parts),
            ),
        ]
    }
}

/// The `Authorization` header value for a request. `req.headers` must hold every header to
/// sign, including `host`, `x-amz-date` and `x-amz-content-sha256`.
pub fn authorization(
    creds: &Credentials,
    amz_date: &AmzDate,
    region: &str,
    service: &str,
    req: &RequestParts<'_>,
) -> String {
    let scope = Scope {
        date: amz_date.date(),
        region,
        service,
    };
    let (_, signed) = canonical_request(req);
    let sig = signature(&creds.secret_access_key, &amz_date.0, &scope, req);
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={sig}",
        creds.access_key_id,
        scope.credential_scope()
    )
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The key id the client claims.
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope.
    pub service: String,
    /// Lower-case names of the signed headers, in order.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// Why an `Authorization` header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SigV4 Authorization header: {0}")]
pub struct AuthorizationError(pub String);

impl ParsedAuthorization {
    /// Parses the header value.
    pub fn parse(value: &str) -> Result<ParsedAuthorization, AuthorizationError> {
        let err = |m: &str| AuthorizationError(m.to_string());
        let rest = value
            .trim()
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| err("expected the AWS4-HMAC-SHA256 algorithm"))?;
        let (mut credential, mut signed, mut sig) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                sig = Some(v);
            }
        }
        let credential = credential.ok_or_else(|| err("no Credential"))?;
        let mut c = credential.split('/');
        let (Some(id), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
            (c.next(), c.next(), c.next(), c.next(), c.next(), c.next())
        else {
            return Err(err(
                "Credential must be id/date/region/service/aws4_request",
            ));
        };
        Ok(ParsedAuthorization {
            access_key_id: id.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers: signed
                .ok_or_else(|| err("no SignedHeaders"))?
                .split(';')
                .map(str::to_string)
                .collect(),
            signature: sig.ok_or_else(|| err("no Signature"))?.to_string(),
        })
    }
}

/// Compares two signatures in constant time.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let d = AmzDate::from_unix(1_440_938_160);
        assert_eq!(d.0, "20150830T123600Z");
        assert_eq!(d.to_unix(), Some(1_440_938_160));
        assert_eq!(AmzDate::from_unix(0).0, "19700101T000000Z");
        assert_eq!(AmzDate("2015083OT123600Z".into()).to_unix(), None);
    }

    /// Leap days (2000 and 2400 are leap years, 2100 is not), the 2038 32-bit boundary and
    /// a year's last second, each written both ways and read back.
    #[test]
    fn iso8601_across_leap_years_and_century_boundaries() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_704_067_199, "2023-12-31T23:59:59Z"),
            (1_709_208_000, "2024-02-29T12:00:00Z"),
            (2_147_483_648, "2038-01-19T03:14:08Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (13_574_563_200, "2400-02-29T00:00:00Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(iso8601(secs), want, "{secs}");
            let s3 = iso8601_s3(secs);
            assert_eq!(s3, want.replace('Z', ".000Z"), "{secs}");
            assert_eq!(crate::s3_listing::parse_iso_time(&s3), Some(secs), "{s3}");
            let compact: String = want.chars().filter(|c| !"-:".contains(*c)).collect();
            assert_eq!(AmzDate::from_unix(secs).0, compact, "{secs}");
            assert_eq!(AmzDate::from_unix(secs).to_unix(), Some(secs), "{secs}");
        }
    }

    /// AWS's documented example: GET /test.txt with a Range header (S3 "Example: GET Object").
    #[test]
    fn matches_the_aws_s3_get_object_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        let date = AmzDate("20130524T000000Z".into());
        let headers = [
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let req = RequestParts {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let auth = authorization(&creds, &date, "us-east-1", "s3", &req);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let parsed = ParsedAuthorization::parse(&auth).unwrap();
        assert_eq!(parsed.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(parsed.region, "us-east-1");
        assert_eq!(parsed.signed_headers.len(), 4);
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_uri("/a0/%21/test/x.art"), "/a0/%21/test/x.art");
        assert_eq!(canonical_uri("/a0/!/test"), "/a0/%21/test");
        assert_eq!(
            canonical_query("b=2&a=1&list-type=2"),
            "a=1&b=2&list-type=2"
        );
        assert_eq!(canonical_query("prefix=a%2fb&x"), "prefix=a%2Fb&x=");
        assert!(
            Credentials::parse(" id:se:cret \n").is_some_and(|c| c.secret_access_key == "se:cret")
        );
        assert!(Credentials::parse("nocolon").is_none());
        assert!(signatures_equal("abc", "abc") && !signatures_equal("abc", "abd"));
    }

    #[test]
    fn curl_788_writes_bare_names_without_equals() {
        assert_eq!(canonical_query_curl_788("a=1&b=2"), None);
        assert_eq!(canonical_query_curl_788(""), None);
        assert_eq!(
            canonical_query_curl_788("tarn-missing").as_deref(),
            Some("tarn-missing")
        );
        // Only the bare names lose their `=`; an explicit empty value keeps it.
        assert_eq!(
            canonical_query_curl_788("z&y=&x=1&w%21").as_deref(),
            Some("w%21&x=1&y=&z")
        );
    }

    /// Runs `f` on another thread and fails if it takes longer than `limit` (a quadratic
    /// implementation would run for hours on the inputs below).
    fn within<T: Send + 'static>(
        limit: std::time::Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(limit)
            .unwrap_or_else(|_| panic!("not finished within {limit:?}: super-linear time?"))
    }

    /// 300,000 bare names: the look-up of each canonical pair among the bare names was a
    /// linear scan (O(n²), hours for this query); now a hash set.
    #[test]
    fn curl_788_form_of_300000_bare_names_is_fast() {
        const N: usize = 300_000;
        // Zero-padded, so the query is already in canonical order and is its own curl form.
        let query = (0..N)
            .map(|i| format!("n{i:06}"))
            .collect::<Vec<_>>()
            .join("&");
        let q = query.clone();
        // Generous for a loaded machine (well under a second alone); the quadratic form took
        // hours.
        let got = within(std::time::Duration::from_secs(120), move || {
            canonical_query_curl_788(&q).unwrap()
        });
        assert_eq!(got, query);
    }
}

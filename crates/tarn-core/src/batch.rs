//! tarn's batch existence API, version 1 (docs/server-api.md): the one owner of its wire
//! format, used by the client (`tarn put`) and the server (`tarn serve`) alike.
//!
//! `POST {artifactEndpoint}{scope}/?tarn-missing` with a JSON array of hex hashes (or
//! `{"hashes": [...]}`), answered by `{"version":1,"missing":[...]}`: the hashes with no
//! `<hash>.art` in the scope, each once, in request order.
//!
//! ```
//! use tarn_core::batch;
//! use tarn_core::Hash;
//! let body = batch::encode_request(&[Hash(1), Hash(2)]);
//! assert_eq!(batch::parse_request(&body).unwrap(), vec![Hash(1), Hash(2)]);
//! let reply = batch::encode_reply(&[Hash(2)]);
//! assert_eq!(reply, br#"{"missing":["0000000000000002"],"version":1}"#);
//! ```

use std::collections::HashSet;

use crate::Hash;

/// The query parameter that selects the API on an artifact scope URL.
pub const QUERY: &str = "tarn-missing";
/// The reply's `version` field.
pub const VERSION: u32 = 1;
/// Most hashes in one request; more are refused (413).
pub const MAX_HASHES: usize = 10_000;
/// Largest request body, in bytes; larger ones are refused (413).
pub const MAX_BODY: usize = 1 << 20;

/// Why a request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body does not parse as JSON.
    #[error("body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but neither an array nor `{"hashes": [...]}`.
    #[error("expected a JSON array or {{\"hashes\": [...]}}")]
    NotAList,
    /// More than [`MAX_HASHES`] hashes.
    #[error("at most {MAX_HASHES} hashes per request")]
    TooMany,
    /// An element that is not a 16-digit hex hash (shown as JSON).
    #[error("not a 16-digit hex hash: {0}")]
    NotAHash(String),
}

/// The request body for `hashes`: a JSON array of lowercase hex hashes.
pub fn encode_request(hashes: &[Hash]) -> Vec<u8> {
    let list: Vec<String> = hashes.iter().map(|h| h.hex()).collect();
    serde_json::to_vec(&list).expect("strings serialise")
}

/// Parses a request body: the hashes asked about, each once, in request order.
pub fn parse_request(body: &[u8]) -> Result<Vec<Hash>, RequestError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(RequestError::NotJson)?;
    let list = match v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) => match o.remove("hashes") {
            Some(serde_json::Value::Array(a)) => a,
            _ => return Err(RequestError::NotAList),
        },
        _ => return Err(RequestError::NotAList),
    };
    if list.len() > MAX_HASHES {
        return Err(RequestError::TooMany);
    }
    let mut seen = HashSet::with_capacity(list.len());
    let mut out = Vec::with_capacity(list.len());
    for v in list {
        let h = v
            .as_str()
            .and_then(Hash::from_hex)
            .ok_or_else(|| RequestError::NotAHash(v.to_string()))?;
        if seen.insert(h) {
            out.push(h);
        }
    }
    Ok(out)
}

/// The reply body: `{"version":1,"missing":[...]}`.
pub fn encode_reply(missing: &[Hash]) -> Vec<u8> {
    let list: Vec<String> = missing.iter().map(|h| h.hex()).collect();
    serde_json::json!({"version": VERSION, "missing": list})
        .to_string()
        .into_bytes()
}

/// Parses a reply (the v1 object or a bare array); `None` if it is malformed or names a hash
/// not in `asked` — for a client, both mean "the API is not offered".
pub fn parse_reply(body: &[u8], asked: &HashSet<Hash>) -> Option<HashSet<Hash>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let list = v.get("missing").cloned().unwrap_or(v);
    let list: Vec<String> = serde_json::from_value(list).ok()?;
    let mut missing = HashSet::new();
    for h in list {
        let h = Hash::from_hex(&h)?;
        if !asked.contains(&h) {
            return None;
        }
        missing.insert(h);
    }
    Some(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_forms() {
        let a = parse_request(br#"["0123456789abcdef","0123456789ABCDEF"]"#).unwrap();
        assert_eq!(a.len(), 1);
        let b = parse_request(br#"{"hashes":["0000000000000001"]}"#).unwrap();
        assert_eq!(b, vec![Hash(1)]);
        assert!(matches!(
            parse_request(br#"["xyz"]"#),
            Err(RequestError::NotAHash(v)) if v == "\"xyz\""
        ));
        assert!(matches!(parse_request(b"3"), Err(RequestError::NotAList)));
        assert!(matches!(parse_request(b"{"), Err(RequestError::NotJson(_))));
        let many = encode_request(&vec![Hash(7); MAX_HASHES + 1]);
        assert!(matches!(parse_request(&many), Err(RequestError::TooMany)));
        let max = encode_request(&vec![Hash(7); MAX_HASHES]);
        assert_eq!(parse_request(&max).unwrap(), vec![Hash(7)]);
    }

    #[test]
    fn reply_forms() {
        let asked: HashSet<Hash> = [Hash(0xfedcba9876543210), Hash(1)].into_iter().collect();
        let one: HashSet<Hash> = [Hash(0xfedcba9876543210)].into_iter().collect();
        assert_eq!(
            parse_reply(br#"{"version":1,"missing":["fedcba9876543210"]}"#, &asked),
            Some(one.clone())
        );
        assert_eq!(parse_reply(br#"["FEDCBA9876543210"]"#, &asked), Some(one));
        assert_eq!(
            parse_reply(br#"{"version":1,"missing":[]}"#, &asked),
            Some(HashSet::new())
        );
        assert_eq!(parse_reply(br#"["1111111111111111"]"#, &asked), None);
        assert_eq!(parse_reply(b"<Error/>", &asked), None);
        assert_eq!(parse_reply(br#"{"missing":"x"}"#, &asked), None);
        let round = parse_reply(&encode_reply(&[Hash(1)]), &asked).unwrap();
        assert_eq!(round, [Hash(1)].into_iter().collect());
    }
}

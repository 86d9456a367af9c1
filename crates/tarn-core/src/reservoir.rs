//! The Reservoir API's JSON bodies that Lake's `reservoir` service kind uses: the bulk
//! artifact-URL request and reply (`POST {api}/…/<scope…>/artifacts`) and the error object.
//! The URLs themselves are built in [`crate::Service`]. One owner for client and server.
//!
//! ```
//! use tarn_core::{reservoir, Hash};
//! assert_eq!(reservoir::encode_bulk_request(&[Hash(1)]), br#"["0000000000000001"]"#);
//! let reply = reservoir::encode_bulk_reply(&["https://h/a0/x/0000000000000001.art".into()]);
//! assert_eq!(reservoir::parse_bulk_reply(&reply, 1).unwrap().len(), 1);
//! ```

use crate::Hash;

/// Why a bulk reply was not a list of URLs.
#[derive(Debug, thiserror::Error)]
pub enum BulkReplyError {
    /// Not JSON, or not a list of strings.
    #[error("unexpected response: {0}")]
    Unexpected(#[source] serde_json::Error),
    /// The service answered with its error object.
    #[error("(status code: {status}) Reservoir error: {message}")]
    Service {
        /// The `status` field, as JSON text (empty when absent).
        status: String,
        /// The `message` field.
        message: String,
    },
    /// A list of the wrong length.
    #[error("Incorrect number of results: expected {expected}, got {got}")]
    Count {
        /// How many hashes were asked about.
        expected: usize,
        /// How many URLs came back.
        got: usize,
    },
}

/// The bulk request body: a JSON array of hex hashes.
pub fn encode_bulk_request(hashes: &[Hash]) -> Vec<u8> {
    let list: Vec<String> = hashes.iter().map(|h| h.hex()).collect();
    serde_json::to_vec(&list).expect("strings serialise")
}

/// Why a bulk request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BulkRequestError {
    /// Not a JSON array.
    #[error("expected a JSON array: {0}")]
    NotAList(#[source] serde_json::Error),
    /// An element that is not a hash (shown as JSON).
    #[error("not a hash: {0}")]
    NotAHash(String),
}

/// Parses a bulk request body: hashes as hex strings or (Lake's legacy form) JSON numbers.
pub fn parse_bulk_request(body: &[u8]) -> Result<Vec<Hash>, BulkRequestError> {
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(BulkRequestError::NotAList)?;
    list.into_iter()
        .map(|v| {
            Hash::from_json(&v)
                .or_else(|| v.as_str().and_then(Hash::from_hex))
                .ok_or_else(|| BulkRequestError::NotAHash(v.to_string()))
        })
        .collect()
}

/// The bulk reply body: `{"data":[urls]}`.
pub fn encode_bulk_reply(urls: &[String]) -> Vec<u8> {
    serde_json::json!({ "data": urls }).to_string().into_bytes()
}

/// The most of a Reservoir error message kept (made one printable line: see
/// [`crate::printable_line`]).
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Parses a bulk reply: `{"data":[...]}`, a bare array, or `{"error":{...}}`; exactly
/// `expected` URLs. An error's status and message are made printable and bounded.
pub fn parse_bulk_reply(body: &[u8], expected: usize) -> Result<Vec<String>, BulkReplyError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(BulkReplyError::Unexpected)?;
    if let Some(err) = v.get("error") {
        return Err(BulkReplyError::Service {
            status: crate::printable_line(
                &err.get("status").map(|s| s.to_string()).unwrap_or_default(),
                40,
            ),
            message: crate::printable_line(
                err.get("message").and_then(|m| m.as_str()).unwrap_or(""),
                MAX_MESSAGE_CHARS,
            ),
        });
    }
    let data = v.get("data").cloned().unwrap_or(v);
    let urls: Vec<String> = serde_json::from_value(data).map_err(BulkReplyError::Unexpected)?;
    if urls.len() != expected {
        return Err(BulkReplyError::Count {
            expected,
            got: urls.len(),
        });
    }
    Ok(urls)
}

/// The API's error body: `{"error":{"status":N,"message":"…"}}`.
pub fn encode_error(status: u16, message: &str) -> Vec<u8> {
    serde_json::json!({"error": {"status": status, "message": message}})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_reply_forms() {
        assert_eq!(
            parse_bulk_reply(br#"{"data":["a","b"]}"#, 2).unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(parse_bulk_reply(br#"["a"]"#, 1).unwrap(), vec!["a"]);
        let e = parse_bulk_reply(br#"["a"]"#, 2).unwrap_err().to_string();
        assert!(e.contains("Incorrect number of results"));
        let e = parse_bulk_reply(br#"{"error":{"status":400,"message":"no"}}"#, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Reservoir error: no"));
        assert_eq!(e, "(status code: 400) Reservoir error: no");
        assert!(parse_bulk_reply(b"<html>", 1)
            .unwrap_err()
            .to_string()
            .contains("unexpected response"));
        let err = encode_error(404, "gone");
        assert!(matches!(
            parse_bulk_reply(&err, 1).unwrap_err(),
            BulkReplyError::Service { status, message } if status == "404" && message == "gone"
        ));
    }

    #[test]
    fn bulk_request_forms() {
        let body = encode_bulk_request(&[Hash(1), Hash(0xab)]);
        assert_eq!(
            parse_bulk_request(&body).unwrap(),
            vec![Hash(1), Hash(0xab)]
        );
        assert_eq!(parse_bulk_request(b"[171]").unwrap(), vec![Hash(171)]);
        assert!(matches!(
            parse_bulk_request(b"{}"),
            Err(BulkRequestError::NotAList(_))
        ));
        assert!(matches!(
            parse_bulk_request(br#"["zz"]"#),
            Err(BulkRequestError::NotAHash(v)) if v == "\"zz\""
        ));
    }

    #[test]
    fn an_error_message_is_one_printable_bounded_line() {
        let body = serde_json::json!({"error": {"status": 500, "message":
            format!("\u{1b}[2Jbad\nerror: forged{}", "x".repeat(10_000))}})
        .to_string();
        match parse_bulk_reply(body.as_bytes(), 1).unwrap_err() {
            BulkReplyError::Service { message, .. } => {
                assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
                assert!(
                    message.chars().count() <= MAX_MESSAGE_CHARS + 16,
                    "{message}"
                );
            }
            e => panic!("{e:?}"),
        }
    }
}

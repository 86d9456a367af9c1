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
///
/// Memory: the hashes (8 bytes each) and nothing per element beside them, so a body of `n`
/// bytes (at least 2 bytes per element) costs at most `4n` bytes more while it is parsed.
/// A refused element is shown as JSON, strings cut at 80 characters.
pub fn parse_bulk_request(body: &[u8]) -> Result<Vec<Hash>, BulkRequestError> {
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut refused = None;
    let hashes = (&mut de)
        .deserialize_seq(HashList {
            refused: &mut refused,
        })
        .and_then(|h| de.end().map(|()| h))
        .map_err(BulkRequestError::NotAList)?;
    match refused {
        Some(shown) => Err(BulkRequestError::NotAHash(shown)),
        None => Ok(hashes),
    }
}

/// The most characters of a refused string element shown in [`BulkRequestError::NotAHash`].
pub(crate) const MAX_SHOWN_ELEMENT_CHARS: usize = 80;

/// Collects a JSON array's hashes, remembering the first element that is not one.
struct HashList<'a> {
    refused: &'a mut Option<String>,
}

impl<'de> serde::de::Visitor<'de> for HashList<'_> {
    type Value = Vec<Hash>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of hashes")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Hash>, A::Error> {
        let mut out = Vec::new();
        while let Some(element) = seq.next_element::<Element>()? {
            match element {
                Element::Hash(h) if self.refused.is_none() => out.push(h),
                Element::Hash(_) => {}
                Element::Other(shown) => {
                    self.refused.get_or_insert(shown);
                }
            }
        }
        Ok(out)
    }
}

/// One element of a bulk request: a hash, or how the element that is not one looks.
enum Element {
    Hash(Hash),
    Other(String),
}

impl<'de> serde::Deserialize<'de> for Element {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Element, D::Error> {
        d.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> serde::de::Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a hash")
    }

    fn visit_u64<E>(self, v: u64) -> Result<Element, E> {
        Ok(Element::Hash(Hash(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Element, E> {
        Ok(Element::Other(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Element, E> {
        Ok(Element::Other(serde_json::json!(v).to_string()))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Element, E> {
        Ok(Element::Other(v.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Element, E> {
        Ok(Element::Other("null".into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Element, E> {
        Ok(match Hash::from_hex(v) {
            Some(h) => Element::Hash(h),
            None => {
                let mut shown: String = v.chars().take(MAX_SHOWN_ELEMENT_CHARS).collect();
                if shown.len() < v.len() {
                    shown.push('…');
                }
                Element::Other(serde_json::json!(shown).to_string())
            }
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Element::Other("[…]".into()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Element::Other("{…}".into()))
    }
}

/// The bulk reply body: `{"data":[urls]}`.
pub fn encode_bulk_reply(urls: &[String]) -> Vec<u8> {
    serde_json::json!({ "data": urls }).to_string().into_bytes()
}

const REPLY_OPEN: &[u8] = b"{\"data\":[";
const REPLY_CLOSE: &[u8] = b"]}";

/// The bulk reply for hashes whose URLs share one prefix (`<prefix>/<hash>.art`), produced
/// piece by piece: the pieces joined are [`encode_bulk_reply`] of those URLs, byte for byte,
/// and no piece is much longer than asked, so a server never holds the whole reply (a URL per
/// hash can make it many times the request).
///
/// ```
/// use tarn_core::{reservoir::{self, BulkReplyEncoder}, Hash};
/// let mut enc = BulkReplyEncoder::new("http://h/a0/x", vec![Hash(1), Hash(2)]);
/// let mut whole = Vec::new();
/// while let Some(piece) = enc.next_piece(40) {
///     whole.extend(piece);
/// }
/// let urls = reservoir::parse_bulk_reply(&whole, 2).unwrap();
/// assert_eq!(urls[1], "http://h/a0/x/0000000000000002.art");
/// assert_eq!(BulkReplyEncoder::new("http://h/a0/x", vec![Hash(1), Hash(2)]).total_len(), whole.len() as u64);
/// ```
#[derive(Debug)]
pub struct BulkReplyEncoder {
    /// `"`, then the JSON-escaped prefix and `/`: every URL's opening.
    url_head: Vec<u8>,
    hashes: Vec<Hash>,
    /// URLs written so far.
    written: usize,
    opened: bool,
    closed: bool,
}

impl BulkReplyEncoder {
    /// The reply for `hashes`, each URL `<prefix>/<hash>.art`.
    pub fn new(prefix: &str, hashes: Vec<Hash>) -> BulkReplyEncoder {
        let mut url_head = serde_json::to_vec(&format!("{prefix}/")).expect("a string serialises");
        url_head.pop();
        BulkReplyEncoder {
            url_head,
            hashes,
            written: 0,
            opened: false,
            closed: false,
        }
    }

    /// The whole reply's length in bytes (for `Content-Length`).
    pub fn total_len(&self) -> u64 {
        let n = self.hashes.len() as u64;
        let url =
            (self.url_head.len() + crate::object_key::artifact_file(Hash(0)).len() + 1) as u64;
        (REPLY_OPEN.len() + REPLY_CLOSE.len()) as u64 + n * url + n.saturating_sub(1)
    }

    /// The next piece of the reply: whole URLs, at least one, up to about `max` bytes;
    /// `None` once the whole reply has been returned.
    pub fn next_piece(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.closed {
            return None;
        }
        let mut out =
            Vec::with_capacity(max.min(self.total_len() as usize) + self.url_head.len() + 32);
        if !self.opened {
            out.extend_from_slice(REPLY_OPEN);
            self.opened = true;
        }
        while self.written < self.hashes.len() && (out.is_empty() || out.len() < max) {
            if self.written > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.url_head);
            out.extend_from_slice(
                crate::object_key::artifact_file(self.hashes[self.written]).as_bytes(),
            );
            out.push(b'"');
            self.written += 1;
        }
        if self.written == self.hashes.len() && out.len() < max.max(1) {
            out.extend_from_slice(REPLY_CLOSE);
            self.closed = true;
        }
        Some(out)
    }
}

/// The most of a Reservoir error message kept (made one printable line: see
/// [`crate::printable_line`]).
pub(crate) const MAX_MESSAGE_CHARS: usize = 500;

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
    fn bulk_request_elements_that_are_not_hashes_are_shown_bounded() {
        let long = format!("[\"{}\"]", "z".repeat(10_000));
        match parse_bulk_request(long.as_bytes()) {
            Err(BulkRequestError::NotAHash(v)) => {
                assert!(v.chars().count() <= MAX_SHOWN_ELEMENT_CHARS + 3, "{v}")
            }
            r => panic!("{r:?}"),
        }
        for (body, shown) in [
            (&br#"[1,-2]"#[..], "-2"),
            (b"[1.5]", "1.5"),
            (b"[null]", "null"),
            (b"[true]", "true"),
            (br#"["0000000000000001",[1,[2]],{"a":1}]"#, "[…]"),
            (br#"[{"a":[1]}]"#, "{…}"),
        ] {
            assert!(
                matches!(parse_bulk_request(body), Err(BulkRequestError::NotAHash(ref v)) if v == shown),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            parse_bulk_request(b"[1] x"),
            Err(BulkRequestError::NotAList(_))
        ));
        assert!(matches!(
            parse_bulk_request(b"[1,"),
            Err(BulkRequestError::NotAList(_))
        ));
        assert_eq!(parse_bulk_request(b" [ ] ").unwrap(), vec![]);
    }

    #[test]
    fn the_bulk_reply_in_pieces_is_the_whole_reply() {
        for n in [0usize, 1, 2, 3, 100, 1000] {
            for prefix in ["http://h:1/a0/x", "https://c.example/a0/a%20b/\"q\""] {
                let hashes: Vec<Hash> = (0..n as u64).map(|i| Hash(i * 0x9E37_79B9)).collect();
                let urls: Vec<String> = hashes
                    .iter()
                    .map(|h| format!("{prefix}/{}", crate::object_key::artifact_file(*h)))
                    .collect();
                let whole = encode_bulk_reply(&urls);
                for max in [0usize, 1, 50, 4096] {
                    let mut enc = BulkReplyEncoder::new(prefix, hashes.clone());
                    assert_eq!(enc.total_len(), whole.len() as u64, "{n} {prefix}");
                    let mut joined = Vec::new();
                    let mut pieces = 0;
                    while let Some(p) = enc.next_piece(max) {
                        assert!(!p.is_empty());
                        assert!(p.len() <= max.max(1) + 200, "{} > {max}", p.len());
                        joined.extend(p);
                        pieces += 1;
                        assert!(pieces <= n + 3);
                    }
                    assert_eq!(joined, whole, "{n} {prefix} {max}");
                }
            }
        }
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

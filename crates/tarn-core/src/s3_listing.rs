//! S3 object listings (ListObjects and ListObjectsV2), both directions `tarn serve` meets
//! them: the query of a listing request it answers ([`ListQuery`]), and the XML reply of a
//! bucket it stores objects in ([`parse_page`]). Pure functions of the text, bounded by it.
//!
//! ```
//! use tarn_core::s3_listing::{parse_page, ListQuery};
//! let q = ListQuery::parse(Some("list-type=2&prefix=x%2F&max-keys=5000"));
//! assert!(q.v2);
//! assert_eq!((q.prefix.as_str(), q.max_keys), ("x/", 1000));
//! let page = parse_page("<ListBucketResult><IsTruncated>false</IsTruncated>\
//!     <Contents><Key>a0/x/0000000000000001.art</Key><Size>5</Size></Contents></ListBucketResult>").unwrap();
//! assert_eq!(page.entries[0].key, "a0/x/0000000000000001.art");
//! assert_eq!(page.entries[0].size, 5);
//! ```

use crate::request_target::{has_param, param};
use crate::sigv4::AmzDate;

/// Most keys one listing reply holds (S3's limit, and the default).
pub const MAX_KEYS: usize = 1000;

/// The parameters of a ListObjects / ListObjectsV2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// `list-type=2` (ListObjectsV2).
    pub v2: bool,
    /// `prefix` (decoded; `""` when absent).
    pub prefix: String,
    /// `delimiter`, when present and not empty.
    pub delimiter: Option<String>,
    /// `max-keys`, capped at [`MAX_KEYS`] (the default when absent or not a number).
    pub max_keys: usize,
    /// `encoding-type=url`: keys in the reply are URL-encoded.
    pub url_encode: bool,
    /// Where the listing starts (exclusive): V2's `continuation-token`, else its
    /// `start-after`; V1's `marker`.
    pub start_after: Option<String>,
    /// V2's `continuation-token`, echoed in the reply.
    pub continuation_token: Option<String>,
    /// `location` (GetBucketLocation, not a listing).
    pub location: bool,
}

impl ListQuery {
    /// Reads the raw query string of a bucket-level GET.
    pub fn parse(query: Option<&str>) -> ListQuery {
        let v2 = param(query, "list-type").as_deref() == Some("2");
        let continuation_token = if v2 {
            param(query, "continuation-token")
        } else {
            None
        };
        let start_after = if v2 {
            continuation_token
                .clone()
                .or_else(|| param(query, "start-after"))
        } else {
            param(query, "marker")
        };
        ListQuery {
            v2,
            prefix: param(query, "prefix").unwrap_or_default(),
            delimiter: param(query, "delimiter").filter(|d| !d.is_empty()),
            max_keys: param(query, "max-keys")
                .and_then(|m| m.parse().ok())
                .unwrap_or(MAX_KEYS)
                .min(MAX_KEYS),
            url_encode: param(query, "encoding-type").as_deref() == Some("url"),
            start_after,
            continuation_token,
            location: has_param(query, "location"),
        }
    }
}

/// One object of a listing reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The object's key (unescaped).
    pub key: String,
    /// `Size` (0 when missing or not a number).
    pub size: u64,
    /// `LastModified` as sent (ISO 8601); see [`parse_iso_time`].
    pub last_modified: String,
}

/// One page of a ListObjectsV2 reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects, in the reply's order.
    pub entries: Vec<ListEntry>,
    /// `NextContinuationToken`.
    pub next_token: Option<String>,
    /// `IsTruncated` is `true`.
    pub truncated: bool,
}

/// A listing reply that is not well-formed XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3 listing reply is not well-formed XML: {0}")]
pub struct ListingError(String);

/// Parses a ListObjectsV2 reply. Unknown elements are skipped; `Contents` elements give
/// [`ListEntry`]s; only XML that does not parse is an error.
pub fn parse_page(xml: &str) -> Result<ListPage, ListingError> {
    use quick_xml::events::Event;
    let err = |e: &dyn std::fmt::Display| ListingError(e.to_string());
    let mut r = quick_xml::Reader::from_str(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut page = ListPage::default();
    let mut entry = ListEntry {
        key: String::new(),
        size: 0,
        last_modified: String::new(),
    };
    loop {
        match r.read_event().map_err(|e| err(&e))? {
            Event::Start(e) => path.push(e.local_name().as_ref().to_vec()),
            Event::End(e) => {
                if e.local_name().as_ref() == b"Contents" {
                    page.entries.push(std::mem::replace(
                        &mut entry,
                        ListEntry {
                            key: String::new(),
                            size: 0,
                            last_modified: String::new(),
                        },
                    ));
                }
                path.pop();
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| err(&e))?;
                let parent = path.len().checked_sub(2).map(|i| path[i].as_slice());
                match (parent, path.last().map(Vec::as_slice)) {
                    (Some(b"Contents"), Some(b"Key")) => entry.key.push_str(&text),
                    (Some(b"Contents"), Some(b"Size")) => {
                        entry.size = text.trim().parse().unwrap_or(0)
                    }
                    (Some(b"Contents"), Some(b"LastModified")) => {
                        entry.last_modified = text.into_owned()
                    }
                    (_, Some(b"NextContinuationToken")) => page.next_token = Some(text.into()),
                    (_, Some(b"IsTruncated")) => page.truncated = text.trim() == "true",
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(page)
}

/// `2026-11-25T10:01:10.000Z` → seconds since the Unix epoch (`None` if it is not that shape).
pub fn parse_iso_time(s: &str) -> Option<u64> {
    let compact: String = s
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches('Z')
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    AmzDate(format!("{compact}Z")).to_unix()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listing_page() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a0/x/0123456789abcdef.art</Key><LastModified>2026-11-25T10:01:10.000Z</LastModified><Size>5</Size></Contents><Contents><Key>a&amp;b</Key></Contents><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"#;
        let p = parse_page(xml).unwrap();
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].key, "a0/x/0123456789abcdef.art");
        assert_eq!(p.entries[0].size, 5);
        assert_eq!(p.entries[1].key, "a&b");
        assert_eq!(p.entries[1].size, 0);
        assert!(p.truncated);
        assert_eq!(p.next_token.as_deref(), Some("tok"));
        assert_eq!(
            parse_iso_time(&p.entries[0].last_modified),
            AmzDate("20261125T100110Z".into()).to_unix()
        );
        assert!(parse_page("<a><b></a>").is_err());
        assert_eq!(parse_iso_time("yesterday"), None);
    }

    #[test]
    fn listing_queries() {
        let q = ListQuery::parse(Some("marker=m&max-keys=x&delimiter=&encoding-type=url"));
        assert!(!q.v2 && q.url_encode && !q.location);
        assert_eq!(q.start_after.as_deref(), Some("m"));
        assert_eq!((q.max_keys, q.delimiter), (MAX_KEYS, None));
        let q = ListQuery::parse(Some("list-type=2&start-after=s&max-keys=7&delimiter=%2F"));
        assert_eq!(q.start_after.as_deref(), Some("s"));
        assert_eq!(q.continuation_token, None);
        assert_eq!((q.max_keys, q.delimiter.as_deref()), (7, Some("/")));
        let q = ListQuery::parse(Some("list-type=2&start-after=s&continuation-token=t"));
        assert_eq!(q.start_after.as_deref(), Some("t"));
        assert!(ListQuery::parse(Some("location")).location);
        assert_eq!(ListQuery::parse(None).max_keys, MAX_KEYS);
    }
}

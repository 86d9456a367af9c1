//! The request target of an S3-style request, as `tarn serve` reads it: the path split into
//! percent-decoded components, the query string's parameters, and the rules a component must
//! follow before it names anything on disk or in a bucket. Pure functions of the raw text, so
//! the fuzz harness reaches them without a server.
//!
//! ```
//! use tarn_core::request_target::{check_components, param, split_path};
//! let p = split_path("/a0/team%20one/0123456789abcdef.art");
//! assert_eq!(p.comps, ["a0", "team one", "0123456789abcdef.art"]);
//! assert!(check_components(&p.comps).is_ok());
//! assert_eq!(param(Some("prefix=a%2Fb&list-type=2"), "prefix").as_deref(), Some("a/b"));
//! ```

use crate::sigv4::{percent_decode, percent_decode_bytes};

/// Longest path component accepted (a file name on common file systems).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Longest object key accepted (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// Longest `Host` a reply's URLs are built from: a DNS name (at most 255 bytes), `:` and a
/// port of at most 5 digits.
pub const MAX_HOST_BYTES: usize = 255 + 1 + 5;

/// Whether `s` is a `host[:port]` that URLs may be built from (a request's `Host` header, or
/// the authority of an HTTP/2 request): a DNS name or IPv4 address (ASCII letters, digits,
/// `-`, `.`, `_`), or an IPv6 address in brackets (hex digits, `:`, `.`), then optionally `:`
/// and a port of 1 to 5 digits no larger than 65535; at most [`MAX_HOST_BYTES`] in all.
pub fn valid_host(s: &str) -> bool {
    if s.len() > MAX_HOST_BYTES {
        return false;
    }
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let Some((addr, rest)) = v6.split_once(']') else {
                return false;
            };
            let addr_ok = !addr.is_empty()
                && addr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            match rest {
                "" => (addr_ok, None),
                _ => match rest.strip_prefix(':') {
                    Some(port) => (addr_ok, Some(port)),
                    None => return false,
                },
            }
        }
        None => {
            let (host, port) = match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            };
            let ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    host_ok && port_ok
}

/// A path split into components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathParts {
    /// Percent-decoded components (empty ones dropped).
    pub comps: Vec<String>,
    /// The raw path ended with `/` (and was not just `/`).
    pub trailing_slash: bool,
    /// A component's percent-escapes decode to bytes that are not UTF-8 (`%FF`): such a
    /// component names nothing (decoded leniently it would clash with `%EF%BF%BD`, U+FFFD).
    pub invalid_utf8: bool,
}

/// Splits a raw path on `/` and percent-decodes each component.
pub fn split_path(raw: &str) -> PathParts {
    let trailing_slash = raw.len() > 1 && raw.ends_with('/');
    let mut invalid_utf8 = false;
    let comps = raw
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains('%') {
                String::from_utf8(percent_decode_bytes(s)).unwrap_or_else(|e| {
                    invalid_utf8 = true;
                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                })
            } else {
                s.to_string()
            }
        })
        .collect();
    PathParts {
        comps,
        trailing_slash,
        invalid_utf8,
    }
}

/// Whether the raw query string has parameter `name` (with or without a value).
pub fn has_param(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == name || p.split_once('=').is_some_and(|(k, _)| k == name))
    })
}

/// The decoded value of the first query parameter `name` (`+` is a space; no value is `""`).
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| percent_decode(&v.replace('+', "%20")))
    })
}

/// Whether `c` may be a component of a stored key: not empty, `.` or `..`, not starting
/// with `.tarn` (the server's own files), no `/` or `\\`, no control character (NUL, a line
/// break, a terminal escape: such names would reach logs, reports and terminals), at most
/// [`MAX_COMPONENT_BYTES`].
pub fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c != "."
        && c != ".."
        && !c.starts_with(".tarn")
        && !c.contains(['/', '\\'])
        && !c.chars().any(char::is_control)
        && c.len() <= MAX_COMPONENT_BYTES
}

/// Why [`check_components`] refused a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ComponentError {
    /// A component is over [`MAX_COMPONENT_BYTES`] or the key over [`MAX_KEY_BYTES`].
    #[error("a path component is longer than {MAX_COMPONENT_BYTES} bytes or the key longer than {MAX_KEY_BYTES}")]
    TooLong,
    /// A component breaks [`valid_component`].
    #[error("a path component is empty, '.', '..', starts with '.tarn' or holds '/', '\\' or a control character")]
    Invalid,
}

/// Checks every component of a key: lengths first (file systems refuse names over 255
/// bytes, S3 keys over 1024), then [`valid_component`].
pub fn check_components(comps: &[String]) -> Result<(), ComponentError> {
    if comps.iter().any(|c| c.len() > MAX_COMPONENT_BYTES)
        || comps.iter().map(|c| c.len() + 1).sum::<usize>() > MAX_KEY_BYTES
    {
        return Err(ComponentError::TooLong);
    }
    if comps.iter().all(|c| valid_component(c)) {
        Ok(())
    } else {
        Err(ComponentError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_decodes() {
        let p = split_path("//a0/x%2Fy/");
        assert_eq!(p.comps, ["a0", "x/y"]);
        assert!(p.trailing_slash);
        assert!(!split_path("/").trailing_slash);
        assert!(split_path("").comps.is_empty());
        assert!(!split_path("/a0/x%2Fy").invalid_utf8);
    }

    #[test]
    fn a_component_that_is_not_utf8_once_decoded_is_marked() {
        assert!(split_path("/a0/%FF/0123456789abcdef.art").invalid_utf8);
        assert!(!split_path("/a0/%EF%BF%BD/0123456789abcdef.art").invalid_utf8);
        assert!(!split_path("/a0/%C3%A9/x").invalid_utf8);
    }

    #[test]
    fn query_parameters() {
        let q = Some("uploads&prefix=a+b%21&x=");
        assert!(has_param(q, "uploads"));
        assert!(has_param(q, "x"));
        assert!(!has_param(q, "upload"));
        assert!(!has_param(None, "x"));
        assert_eq!(param(q, "prefix").as_deref(), Some("a b!"));
        assert_eq!(param(q, "uploads").as_deref(), Some(""));
        assert_eq!(param(q, "nope"), None);
    }

    #[test]
    fn hosts_urls_may_be_built_from() {
        for ok in [
            "x",
            "127.0.0.1:7070",
            "cache.example.org",
            "[::1]",
            "[::1]:8080",
            "a_b-c.d:65535",
            &format!("{}:12345", "a".repeat(255)),
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "x:",
            "x:0x1",
            "x:65536",
            "x:123456",
            "x:1:2",
            "a b",
            "a/b",
            "a@b",
            "a\"b",
            "h\r\nX: y",
            "[]",
            "[::1",
            "[::1]x",
            "[::g]",
            "évil",
            &"a".repeat(MAX_HOST_BYTES + 1),
            &format!("{}:1", "a".repeat(10_000)),
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
    }

    #[test]
    fn component_rules() {
        let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(check_components(&s(&["a", "b"])), Ok(()));
        for bad in [
            "",
            ".",
            "..",
            ".tarn-spool",
            "a\\b",
            "a/b",
            "a\0",
            "a\u{1b}[2J",
            "a\nb",
            "a\rb",
            "a\u{9b}b",
            "a\u{7f}",
        ] {
            assert_eq!(
                check_components(&s(&["x", bad])),
                Err(ComponentError::Invalid),
                "{bad:?}"
            );
        }
        let long = "x".repeat(256);
        assert_eq!(check_components(&s(&[&long])), Err(ComponentError::TooLong));
        let many: Vec<String> = (0..200).map(|_| "abcdef".to_string()).collect();
        assert_eq!(check_components(&many), Err(ComponentError::TooLong));
    }
}

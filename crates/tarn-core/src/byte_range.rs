//! HTTP `Range` request headers (RFC 9110 §14.1.2) as `tarn serve` answers them: one
//! `bytes=` range, resolved against the object's length. Several ranges, other units and
//! anything unparsable are ignored (the whole object is sent, as RFC 9110 allows).
//!
//! ```
//! use tarn_core::byte_range::{resolve, Resolved};
//! assert_eq!(resolve("bytes=2-", 10), Resolved::Range { first: 2, last: 9 });
//! assert_eq!(resolve("bytes=-3", 10), Resolved::Range { first: 7, last: 9 });
//! assert_eq!(resolve("bytes=10-", 10), Resolved::Unsatisfiable);
//! assert_eq!(resolve("bytes=1-2,4-5", 10), Resolved::Ignored);
//! ```

/// What a `Range` header asks of an object of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Send bytes `first..=last` (206).
    Range {
        /// First byte sent.
        first: u64,
        /// Last byte sent (inclusive), below the object's length.
        last: u64,
    },
    /// The range starts past the end or asks for no bytes (416).
    Unsatisfiable,
    /// Not a single `bytes=` range tarn understands, or an empty object: send the whole
    /// object (200).
    Ignored,
}

/// Resolves the value of a `Range` header against an object of `len` bytes.
pub fn resolve(header: &str, len: u64) -> Resolved {
    let Some(spec) = header.strip_prefix("bytes=") else {
        return Resolved::Ignored;
    };
    if spec.contains(',') {
        return Resolved::Ignored;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Resolved::Ignored;
    };
    let digits = |s: &str| -> Option<u64> {
        // `u64::from_str` takes a leading `+`; a range never has one.
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let Some(last_byte) = len.checked_sub(1) else {
        // An empty object is sent whole (an empty 200), whatever was asked.
        return Resolved::Ignored;
    };
    let (first, last) = if a.is_empty() {
        // A suffix: the last `n` bytes.
        let Some(n) = digits(b) else {
            return Resolved::Ignored;
        };
        if n == 0 {
            return Resolved::Unsatisfiable;
        }
        (len.saturating_sub(n), last_byte)
    } else {
        let Some(first) = digits(a) else {
            return Resolved::Ignored;
        };
        let last = if b.is_empty() {
            last_byte
        } else {
            match digits(b) {
                Some(e) => e.min(last_byte),
                None => return Resolved::Ignored,
            }
        };
        (first, last)
    };
    if first > last_byte || first > last {
        return Resolved::Unsatisfiable;
    }
    Resolved::Range { first, last }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(
            resolve("bytes=0-0", 5),
            Resolved::Range { first: 0, last: 0 }
        );
        assert_eq!(
            resolve("bytes=1-100", 5),
            Resolved::Range { first: 1, last: 4 }
        );
        assert_eq!(
            resolve("bytes=-100", 5),
            Resolved::Range { first: 0, last: 4 }
        );
        assert_eq!(resolve("bytes=-0", 5), Resolved::Unsatisfiable);
        assert_eq!(resolve("bytes=3-2", 5), Resolved::Unsatisfiable);
        assert_eq!(resolve("bytes=5-", 5), Resolved::Unsatisfiable);
        assert_eq!(resolve("bytes=0-", 0), Resolved::Ignored);
        assert_eq!(resolve("bytes=-1", 0), Resolved::Ignored);
    }

    #[test]
    fn what_is_ignored() {
        for h in [
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=0-1,3-4",
            "bytes=18446744073709551616-",
            "bytes= 1-2",
        ] {
            assert_eq!(resolve(h, 10), Resolved::Ignored, "{h}");
            assert_eq!(resolve(h, 0), Resolved::Ignored, "{h} on an empty object");
        }
    }
}

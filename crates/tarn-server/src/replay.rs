//! Signed requests seen recently, so a captured one cannot be replayed (issue 18, item 6).
//!
//! SigV4 has no nonce: a request is valid for `max_clock_skew_secs` either side of its
//! `x-amz-date`, and within that window a copy of it is indistinguishable from the
//! original. A `DELETE`, and a revision (or signature) `PUT` whose signature does not cover
//! its body (`UNSIGNED-PAYLOAD`, curl 7.88's empty-body hash: a copy may carry any body),
//! whose signature held is recorded here by the signature's first 128 bits (an HMAC:
//! distinct requests do not collide in practice) until its `x-amz-date` plus the skew has
//! passed; the same signature again is refused. A `PUT` whose body is signed can only be
//! replayed with the same body, and an artifact `PUT` changes nothing when replayed (its
//! body must hash to its name, a stored artifact is never replaced); neither is recorded,
//! so re-running an upload is never refused. A request that did not take
//! effect for the server's reasons (`5xx`, `408`, `429`) or whose signature did not hold
//! after all (`403`) is forgotten, so a client may send it again as it was; any other
//! answer (a `409` too) keeps it, so the same request signed in the same second is refused
//! (clients sign again). At most [`MAX_SEEN`] signatures are kept (about 15 MB); past that
//! the oldest recorded is forgotten early.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The most signatures remembered at once.
pub(crate) const MAX_SEEN: usize = 1 << 18;

/// Signatures of recent signed writes, each with the unix time it stops being valid.
#[derive(Debug, Default)]
pub(crate) struct SeenSignatures {
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<u128, u64>,
    /// In the order recorded, for expiry and for the bound.
    order: VecDeque<(u64, u128)>,
}

/// A signature recorded by [`SeenSignatures::claim`], until the request's outcome says
/// whether it stays.
#[derive(Debug)]
pub(crate) struct Claim {
    seen: Arc<SeenSignatures>,
    key: u128,
}

impl Claim {
    /// Keeps the signature, unless `status` says the request did not take effect for a
    /// reason a retry of the same request may overcome.
    pub(crate) fn settle(self, status: u16) {
        if status >= 500 || matches!(status, 403 | 408 | 429) {
            let mut seen = self.seen.lock();
            seen.until.remove(&self.key);
        }
    }
}

impl SeenSignatures {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `signature` (hex) as seen until `valid_until` (unix seconds); `None` if it
    /// was already seen and is still valid (a replay). A signature that is not hex is not
    /// recorded (it never verified).
    pub(crate) fn claim(
        self: &Arc<Self>,
        signature: &str,
        valid_until: u64,
        now: u64,
    ) -> Option<Option<Claim>> {
        let Some(key) = signature
            .get(..32)
            .and_then(|h| u128::from_str_radix(h, 16).ok())
        else {
            return Some(None);
        };
        let mut seen = self.lock();
        while let Some(&(until, k)) = seen.order.front() {
            if until >= now && seen.order.len() < MAX_SEEN {
                break;
            }
            seen.order.pop_front();
            if seen.until.get(&k) == Some(&until) {
                seen.until.remove(&k);
            }
        }
        if seen.until.get(&key).is_some_and(|&until| until >= now) {
            return None;
        }
        seen.until.insert(key, valid_until);
        seen.order.push_back((valid_until, key));
        Some(Some(Claim {
            seen: self.clone(),
            key,
        }))
    }
}

/// Whether the request declares its body's SHA-256 (`x-amz-content-sha256` as 64 hex
/// digits): the signature covers it and the server checks the body against it, so a copy
/// can only carry the same body.
pub(crate) fn body_is_signed(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Records the signature of a signed write whose headers authenticated (`headers` carry its
/// `Authorization` and `x-amz-date`): `403` if it is a replay, else the claim to settle with
/// the request's outcome (`None` for an unsigned request).
pub(crate) fn claim_write(
    app: &crate::App,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Claim>, crate::error::S3Error> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signature) = text("authorization")
        .and_then(|a| a.rsplit_once("Signature="))
        .map(|(_, s)| s.trim())
    else {
        return Ok(None);
    };
    let Some(signed_at) =
        text("x-amz-date").and_then(|d| tarn_core::sigv4::AmzDate(d.to_string()).to_unix())
    else {
        return Ok(None);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let valid_until = signed_at.saturating_add(app.cfg.max_clock_skew_secs);
    app.seen_signatures
        .claim(signature, valid_until, now)
        .ok_or_else(|| {
            crate::error::S3Error::new(
                axum::http::StatusCode::FORBIDDEN,
                "RequestReplayed",
                "this signed request was already received (a replay); sign the request again",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_is_refused_again_until_it_expires_unless_forgotten() {
        let seen = Arc::new(SeenSignatures::default());
        let c = seen.claim(SIG, 100, 10).unwrap().unwrap();
        c.settle(200);
        assert!(seen.claim(SIG, 100, 50).is_none(), "a replay");
        // Past its validity it is forgotten (the request itself is refused as too old).
        let c = seen.claim(SIG, 300, 101).unwrap().unwrap();
        // A request that failed for the server's reasons may be retried as it was.
        c.settle(503);
        assert!(seen.claim(SIG, 300, 102).unwrap().is_some());
        assert!(seen.claim("not hex", 300, 102).unwrap().is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let seen = Arc::new(SeenSignatures::default());
        for i in 0..(MAX_SEEN as u128 + 10) {
            let sig = format!("{i:032x}");
            seen.claim(&sig, 1000, 1).unwrap().unwrap().settle(200);
        }
        let s = seen.lock();
        assert!(s.order.len() <= MAX_SEEN && s.until.len() <= MAX_SEEN);
    }
}

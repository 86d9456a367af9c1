//! Resource limits on everything tarn reads from outside: their defaults, the environment
//! variables that override them, and parsing of those values. The limits themselves are
//! enforced where the bytes are read (tarn-store, tarn-remote, tarn-server); RELIABILITY.md
//! lists them all.
//!
//! ```
//! use tarn_core::Limits;
//! let l = Limits::from_lookup(|k| (k == "TARN_MAX_ARTIFACT_BYTES").then(|| "1M".to_string()));
//! assert_eq!(l.max_artifact_bytes, 1 << 20);
//! assert_eq!(l.max_mappings_bytes, Limits::default().max_mappings_bytes);
//! ```

use std::time::Duration;

/// Environment variable: largest mapping file (`outputs.jsonl`, revision file) read.
pub const MAX_MAPPINGS_ENV: &str = "TARN_MAX_MAPPINGS_BYTES";
/// Environment variable: largest artifact downloaded.
pub const MAX_ARTIFACT_ENV: &str = "TARN_MAX_ARTIFACT_BYTES";
/// Environment variable: largest reply read into memory (revision files, Reservoir and
/// batch-API replies). Error bodies are cut at 64 KiB regardless.
pub const MAX_REPLY_ENV: &str = "TARN_MAX_REPLY_BYTES";
/// Environment variable: longest time one transfer (one attempt) may take, in seconds.
pub(crate) const TRANSFER_DEADLINE_ENV: &str = "TARN_TRANSFER_DEADLINE_SECS";
/// Environment variable: slowest average rate (bytes per second) tolerated once a transfer
/// has run for the stall timeout (`--timeout`): bytes received for a download, body bytes
/// taken by the server for an upload.
pub(crate) const MIN_RATE_ENV: &str = "TARN_MIN_RATE_BYTES";

/// Environment variable: most bytes one `tarn get` may write to disk (artifacts kept and
/// temp files in flight together); unset, the bound is taken from the free space of the
/// cache's file system ([`default_get_bytes`]).
pub const MAX_GET_ENV: &str = "TARN_MAX_GET_BYTES";

/// Environment variable: age (seconds) after which a temp file of a dead process is removed.
pub const TEMP_GRACE_ENV: &str = "TARN_TEMP_GRACE_SECS";

/// Largest page of an S3 ListObjectsV2 reply the server's S3 storage backend reads (a page
/// holds at most 1000 keys, a few hundred kB).
pub const MAX_S3_LISTING_PAGE_BYTES: u64 = 16 << 20;
/// Largest error body read from a peer or bucket (the rest is not read).
pub const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// Largest configuration file read: the server's `--config` and Lake's system configuration
/// (`LAKE_CONFIG`); read by `tarn_store::read_config_file`.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// The limits in force. Defaults are generous for real Lake caches (Mathlib's mapping file
/// is about 1 MB, its largest artifact about 100 MB) and small enough that a hostile peer
/// cannot exhaust memory or disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest mapping file read into memory (bytes).
    pub max_mappings_bytes: u64,
    /// Largest artifact downloaded (bytes); a longer body is abandoned and its temp file
    /// removed.
    pub max_artifact_bytes: u64,
    /// Largest reply read into memory: revision files, Reservoir and batch-API replies.
    pub max_reply_bytes: u64,
    /// Longest one attempt of one transfer may take, however the bytes trickle.
    pub transfer_deadline: Duration,
    /// Slowest average rate tolerated (bytes per second) once a transfer has run for the
    /// stall timeout: a peer trickling a byte now and then, or reading an upload just often
    /// enough to dodge the stall timeout, cannot hold a transfer open.
    pub min_rate: u64,
    /// Age after which a temp file whose owner is dead is removed by a later run.
    pub temp_grace: Duration,
    /// Most bytes one `tarn get` may write to disk, when [`MAX_GET_ENV`] sets it; `None`:
    /// [`default_get_bytes`] of the free space at the start.
    pub max_get_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_mappings_bytes: 16 << 20,
            max_artifact_bytes: 4 << 30,
            max_reply_bytes: 16 << 20,
            transfer_deadline: Duration::from_secs(30 * 60),
            min_rate: 1024,
            temp_grace: Duration::from_secs(600),
            max_get_bytes: None,
        }
    }
}

impl Limits {
    /// The defaults, overridden by whichever variables `lookup` returns (a value that does
    /// not parse is ignored, with the default kept).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Limits {
        let mut l = Limits::default();
        let size = |k: &str, v: &mut u64| {
            if let Some(n) = lookup(k).as_deref().and_then(parse_size) {
                *v = n;
            }
        };
        size(MAX_MAPPINGS_ENV, &mut l.max_mappings_bytes);
        size(MAX_ARTIFACT_ENV, &mut l.max_artifact_bytes);
        size(MAX_REPLY_ENV, &mut l.max_reply_bytes);
        size(MIN_RATE_ENV, &mut l.min_rate);
        l.max_get_bytes = lookup(MAX_GET_ENV).as_deref().and_then(parse_size);
        if let Some(s) = lookup(TRANSFER_DEADLINE_ENV)
            .as_deref()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            l.transfer_deadline = Duration::from_secs(s.max(1));
        }
        if let Some(s) = lookup(TEMP_GRACE_ENV)
            .as_deref()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            l.temp_grace = Duration::from_secs(s);
        }
        l
    }
}

/// Space left free on the cache's file system by a `tarn get` whose bound is not set: a
/// tenth of what was free at the start, and at least 1 GiB.
pub const MIN_FREE_AFTER_GET: u64 = 1 << 30;

/// The default bound on the bytes one `tarn get` may write, given `free` bytes available on
/// the cache's file system at the start: all of it but a tenth, and never closer than
/// [`MIN_FREE_AFTER_GET`] to a full disk. A hostile service listing endless valid artifacts
/// fills the disk no further than that.
pub fn default_get_bytes(free: u64) -> u64 {
    free.saturating_sub((free / 10).max(MIN_FREE_AFTER_GET))
}

/// Parses a byte count: a plain number or one with a binary suffix `K`, `M`, `G`
/// (`64M` = 64 MiB). `None` for anything else.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, shift) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 10),
        b'm' | b'M' => (&v[..v.len() - 1], 20),
        b'g' | b'G' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("3G"), Some(3 << 30));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn the_default_get_bound_leaves_a_tenth_and_at_least_a_gib_free() {
        assert_eq!(default_get_bytes(100 << 30), 90 << 30);
        assert_eq!(default_get_bytes(5 << 30), 4 << 30);
        assert_eq!(default_get_bytes(512 << 20), 0);
        let l = Limits::from_lookup(|k| (k == MAX_GET_ENV).then(|| "64M".to_string()));
        assert_eq!(l.max_get_bytes, Some(64 << 20));
        assert_eq!(Limits::default().max_get_bytes, None);
    }

    #[test]
    fn overrides() {
        let l = Limits::from_lookup(|k| match k {
            TRANSFER_DEADLINE_ENV => Some("5".into()),
            MIN_RATE_ENV => Some("junk".into()),
            _ => None,
        });
        assert_eq!(l.transfer_deadline, Duration::from_secs(5));
        assert_eq!(l.min_rate, Limits::default().min_rate);
    }
}

//! Ed25519 keys in OpenSSH's encodings: public keys as one `ssh-ed25519 AAAA… comment`
//! line, private keys as an unencrypted `-----BEGIN OPENSSH PRIVATE KEY-----` block, key ids
//! as `ssh-keygen -l`'s `SHA256:…` fingerprints, and trusted-key lists in the
//! `authorized_keys` line format with an optional `expiry-time="YYYYMMDD[HHMM[SS]]"`.
//! Pure: the caller supplies the random seed and reads and writes the files.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

const KEY_TYPE: &str = "ssh-ed25519";
const PRIVATE_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const PRIVATE_END: &str = "-----END OPENSSH PRIVATE KEY-----";
const PRIVATE_MAGIC: &[u8] = b"openssh-key-v1\0";

/// What is wrong with a key or a trusted-key line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A public key line is not `ssh-ed25519 <base64> [comment]`.
    #[error("not an ssh-ed25519 public key line: {0}")]
    PublicKey(&'static str),
    /// A private key is not an unencrypted OpenSSH ed25519 key.
    #[error("not an unencrypted OpenSSH ed25519 private key: {0}")]
    PrivateKey(&'static str),
    /// A trusted-key line has an option tarn does not know or a malformed expiry.
    #[error("line {line}: {message}")]
    TrustedLine {
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// An Ed25519 public key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// The 32 raw bytes.
    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The SSH wire blob: `string "ssh-ed25519"`, `string key`.
    fn blob(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(51);
        put_string(&mut b, KEY_TYPE.as_bytes());
        put_string(&mut b, &self.bytes);
        b
    }

    /// The key id: the SHA-256 fingerprint `ssh-keygen -l` prints (`SHA256:` and the
    /// unpadded base64 of the SHA-256 of the wire blob).
    pub fn key_id(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(self.blob()))
        )
    }

    /// The `authorized_keys` line: `ssh-ed25519 <base64> <comment>` (no comment when empty).
    pub fn to_line(&self, comment: &str) -> String {
        let b64 = STANDARD.encode(self.blob());
        if comment.is_empty() {
            format!("{KEY_TYPE} {b64}")
        } else {
            format!("{KEY_TYPE} {b64} {comment}")
        }
    }

    /// Parses `ssh-ed25519 <base64> [comment]` (what `ssh-keygen` writes to `FILE.pub`).
    pub(crate) fn parse_line(line: &str) -> Result<PublicKey, KeyError> {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(KEY_TYPE) {
            return Err(KeyError::PublicKey("the key type must be ssh-ed25519"));
        }
        let b64 = words
            .next()
            .ok_or(KeyError::PublicKey("the base64 key is missing"))?;
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| KeyError::PublicKey("the key is not base64"))?;
        let mut r = Reader(&blob);
        let err = KeyError::PublicKey("the key blob is not an ssh-ed25519 key");
        if r.string().ok_or(err.clone())? != KEY_TYPE.as_bytes() {
            return Err(err);
        }
        let key: [u8; 32] = r
            .string()
            .and_then(|k| k.try_into().ok())
            .ok_or(err.clone())?;
        if !r.0.is_empty() {
            return Err(err);
        }
        Ok(PublicKey { bytes: key })
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }
}

/// An Ed25519 private key (its 32-byte seed) with its public key and comment. Never
/// printed: `Debug` shows the key id only.
pub struct SecretKey {
    seed: [u8; 32],
    public: PublicKey,
    comment: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public.key_id())
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // Best effort: this copy of the seed is wiped (moves may have left others).
        self.seed.fill(0);
        std::hint::black_box(&self.seed);
    }
}

impl SecretKey {
    /// The key for a 32-byte seed (from a cryptographic random source).
    pub fn from_seed(seed: [u8; 32], comment: &str) -> SecretKey {
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .expect("any 32 bytes are an Ed25519 seed");
        let public = public_of(&pair);
        SecretKey {
            seed,
            public,
            comment: comment.to_string(),
        }
    }

    /// The public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The comment stored with the key.
    #[cfg(test)]
    pub(crate) fn comment(&self) -> &str {
        &self.comment
    }

    /// The Ed25519 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&self.seed)
            .expect("any 32 bytes are an Ed25519 seed");
        pair.sign(message)
            .as_ref()
            .try_into()
            .expect("an Ed25519 signature is 64 bytes")
    }

    /// The unencrypted OpenSSH private key file (`ssh-keygen -t ed25519 -N ''` writes the
    /// same format). `check` is the random 32-bit check value the format repeats twice.
    pub fn to_openssh(&self, check: u32) -> String {
        let mut private = Vec::new();
        private.extend_from_slice(&check.to_be_bytes());
        private.extend_from_slice(&check.to_be_bytes());
        put_string(&mut private, KEY_TYPE.as_bytes());
        put_string(&mut private, &self.public.bytes);
        let mut both = [0u8; 64];
        both[..32].copy_from_slice(&self.seed);
        both[32..].copy_from_slice(&self.public.bytes);
        put_string(&mut private, &both);
        both.fill(0);
        put_string(&mut private, self.comment.as_bytes());
        let mut pad = 1u8;
        while !private.len().is_multiple_of(8) {
            private.push(pad);
            pad += 1;
        }
        let mut body = PRIVATE_MAGIC.to_vec();
        put_string(&mut body, b"none");
        put_string(&mut body, b"none");
        put_string(&mut body, b"");
        body.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut body, &self.public.blob());
        put_string(&mut body, &private);
        private.fill(0);
        let b64 = STANDARD.encode(&body);
        body.fill(0);
        let mut out = String::from(PRIVATE_BEGIN);
        out.push('\n');
        for chunk in b64.as_bytes().chunks(70) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(PRIVATE_END);
        out.push('\n');
        out
    }

    /// Parses an unencrypted OpenSSH ed25519 private key file. An encrypted key (a
    /// passphrase) is refused: tarn signs unattended, from a CI secret.
    pub fn parse_openssh(text: &str) -> Result<SecretKey, KeyError> {
        let e = KeyError::PrivateKey;
        let text = text.trim();
        let inner = text
            .strip_prefix(PRIVATE_BEGIN)
            .and_then(|t| t.strip_suffix(PRIVATE_END))
            .ok_or(e("missing the BEGIN/END OPENSSH PRIVATE KEY lines"))?;
        let b64: String = inner.split_ascii_whitespace().collect();
        let body = STANDARD
            .decode(b64)
            .map_err(|_| e("the key body is not base64"))?;
        let mut r = Reader(
            body.strip_prefix(PRIVATE_MAGIC)
                .ok_or(e("not an openssh-key-v1 key"))?,
        );
        let malformed = || e("the key is truncated or malformed");
        if r.string().ok_or_else(malformed)? != b"none"
            || r.string().ok_or_else(malformed)? != b"none"
        {
            return Err(e(
                "the key is encrypted (a passphrase); tarn needs an unencrypted key",
            ));
        }
        r.string().ok_or_else(malformed)?;
        if r.u32().ok_or_else(malformed)? != 1 {
            return Err(e("the file must hold exactly one key"));
        }
        r.string().ok_or_else(malformed)?;
        let mut p = Reader(r.string().ok_or_else(malformed)?);
        if p.u32().ok_or_else(malformed)? != p.u32().ok_or_else(malformed)? {
            return Err(malformed());
        }
        if p.string().ok_or_else(malformed)? != KEY_TYPE.as_bytes() {
            return Err(e("the key type must be ssh-ed25519"));
        }
        let public: [u8; 32] = p
            .string()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(malformed)?;
        let both = p.string().filter(|b| b.len() == 64).ok_or_else(malformed)?;
        let seed: [u8; 32] = both[..32].try_into().expect("64 bytes");
        if both[32..] != public {
            return Err(malformed());
        }
        let comment = String::from_utf8_lossy(p.string().ok_or_else(malformed)?).into_owned();
        let key = SecretKey::from_seed(seed, &comment);
        if key.public.bytes != public {
            return Err(e("the public key does not belong to the private key"));
        }
        Ok(key)
    }
}

fn public_of(pair: &ring::signature::Ed25519KeyPair) -> PublicKey {
    use ring::signature::KeyPair;
    PublicKey {
        bytes: pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("an Ed25519 public key is 32 bytes"),
    }
}

/// One trusted key, optionally valid only until a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key.
    pub key: PublicKey,
    /// The comment after the key, if any.
    pub comment: String,
    /// Seconds since the Unix epoch (UTC) after which the key is no longer trusted.
    pub expires: Option<u64>,
    /// The scopes the key is trusted for (patterns as in [`crate::scope_matches`]: `*`
    /// matches anything, `org/*` also matches `org`); empty means every scope.
    pub scopes: Vec<String>,
}

impl TrustedKey {
    /// Whether the key is still trusted at `now` (Unix seconds).
    pub(crate) fn valid_at(&self, now: u64) -> bool {
        self.expires.is_none_or(|t| now < t)
    }

    /// Whether the key is trusted for revisions of `scope`.
    pub fn covers_scope(&self, scope: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|p| crate::scope_matches(p, scope))
    }
}

/// Parses a trusted-keys file: one key a line in the `authorized_keys` form
/// `[options] ssh-ed25519 <base64> [comment]`, blank lines and `#` comments ignored. The
/// options are `name="value"` pairs separated by commas (or spaces): `expiry-time="YYYYMMDD[HHMM[SS]]"`
/// (UTC; at most once) and `scope="PATTERN"` (repeatable; the key is then trusted only for
/// matching scopes). Any other line or option is an error naming its line.
pub fn parse_trusted_keys(text: &str) -> Result<Vec<TrustedKey>, KeyError> {
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: String| KeyError::TrustedLine {
            line: i + 1,
            message,
        };
        let (options, rest) = split_options(line).map_err(bad)?;
        let mut expires = None;
        let mut scopes = Vec::new();
        for (name, value) in options {
            match name {
                "expiry-time" if expires.is_some() => {
                    return Err(bad("expiry-time is given twice".into()))
                }
                "expiry-time" => {
                    expires = Some(parse_expiry(value).ok_or_else(|| {
                        bad(format!(
                            "expiry-time {value:?} is not YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS (UTC)"
                        ))
                    })?)
                }
                "scope" if value.is_empty() || value.chars().any(|c| c.is_whitespace()) => {
                    return Err(bad(format!("scope {value:?} is empty or holds a space")))
                }
                "scope" => scopes.push(value.to_string()),
                other => {
                    return Err(bad(format!(
                        "unknown option {other:?} (expected expiry-time or scope)"
                    )))
                }
            }
        }
        if !rest.starts_with(KEY_TYPE) {
            return Err(bad(
                "expected [expiry-time=\"YYYYMMDD\",scope=\"org/*\"] ssh-ed25519 <key> [comment]"
                    .into(),
            ));
        }
        let key = PublicKey::parse_line(rest).map_err(|e| bad(e.to_string()))?;
        let comment = rest
            .split_ascii_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ");
        keys.push(TrustedKey {
            key,
            comment,
            expires,
            scopes,
        });
    }
    Ok(keys)
}

/// A trusted-keys line's options, `(name, value)` in order.
type KeyOptions<'a> = Vec<(&'a str, &'a str)>;

/// Splits the leading `name="value"` options (separated by commas or spaces) off a
/// trusted-keys line; returns them and the rest, which starts with the key type.
fn split_options(line: &str) -> Result<(KeyOptions<'_>, &str), String> {
    let mut options = Vec::new();
    let mut rest = line;
    while !rest.starts_with(KEY_TYPE) {
        let Some((name, after)) = rest.split_once("=\"") else {
            break;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            break;
        }
        let (value, after) = after
            .split_once('"')
            .ok_or_else(|| format!("{name} has no closing quote"))?;
        options.push((name, value));
        rest = after.strip_prefix(',').unwrap_or(after).trim_start();
    }
    Ok((options, rest))
}

/// `YYYYMMDD[HHMM[SS]]` (optionally ending in `Z`), UTC, as Unix seconds.
pub(crate) fn parse_expiry(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    if !matches!(s.len(), 8 | 12 | 14) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u64>().ok());
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let hh = if s.len() >= 12 { n(8..10)? } else { 0 };
    let mm = if s.len() >= 12 { n(10..12)? } else { 0 };
    let ss = if s.len() == 14 { n(12..14)? } else { 0 };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || d < 1
        || d > days_in_month(y, m)
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (proleptic Gregorian, year ≥ 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// A cursor over SSH wire data.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 section 7.1, test 1.
    const SEED1: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUB1: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIG1: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn seed1() -> [u8; 32] {
        hex::decode(SEED1).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc8032_vector() {
        let key = SecretKey::from_seed(seed1(), "");
        assert_eq!(hex::encode(key.public().as_bytes()), PUB1);
        let sig = key.sign(b"");
        assert_eq!(hex::encode(sig), SIG1);
        assert!(key.public().verifies(b"", &sig));
        assert!(!key.public().verifies(b"x", &sig));
    }

    #[test]
    fn public_line_round_trips_and_rejects_junk() {
        let key = SecretKey::from_seed(seed1(), "ci@example");
        let line = key.public().to_line("ci@example");
        assert!(line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert_eq!(&PublicKey::parse_line(&line).unwrap(), key.public());
        assert!(PublicKey::parse_line("ssh-rsa AAAA").is_err());
        assert!(PublicKey::parse_line("ssh-ed25519 !!!").is_err());
        let short = &line[..line.len() - 20];
        assert!(PublicKey::parse_line(short).is_err());
    }

    #[test]
    fn private_key_round_trips() {
        let key = SecretKey::from_seed(seed1(), "me");
        let text = key.to_openssh(0x01020304);
        let back = SecretKey::parse_openssh(&text).unwrap();
        assert_eq!(back.public(), key.public());
        assert_eq!(back.comment(), "me");
        assert_eq!(back.sign(b"m"), key.sign(b"m"));
        assert!(!format!("{back:?}").contains(&SEED1[..8]));
        assert!(SecretKey::parse_openssh("nonsense").is_err());
        let cut = &text[..text.len() / 2];
        assert!(SecretKey::parse_openssh(&format!("{cut}\n{PRIVATE_END}")).is_err());
    }

    #[test]
    fn trusted_keys_with_expiry() {
        let a = SecretKey::from_seed([1; 32], "");
        let b = SecretKey::from_seed([2; 32], "");
        let text = format!(
            "# project keys\n\n{}\nexpiry-time=\"20270101\" {}\n",
            a.public().to_line("ci 2026"),
            b.public().to_line("")
        );
        let keys = parse_trusted_keys(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].comment, "ci 2026");
        assert_eq!(keys[0].expires, None);
        assert_eq!(keys[1].expires, Some(1_798_761_600));
        assert!(keys[1].valid_at(1_798_761_599));
        assert!(!keys[1].valid_at(1_798_761_600));
        let err = parse_trusted_keys("\nexpiry-time=\"2027\" ssh-ed25519 AAAA\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: expiry-time"), "{err}");
        assert!(parse_trusted_keys("ssh-rsa AAAA\n").is_err());
    }

    #[test]
    fn trusted_keys_for_scopes() {
        let a = SecretKey::from_seed([1; 32], "");
        let text = format!(
            "scope=\"leanprover-community/*\",scope=\"org/dep\",expiry-time=\"20270101\" {}\n{}\n",
            a.public().to_line("dep ci"),
            a.public().to_line("")
        );
        let keys = parse_trusted_keys(&text).unwrap();
        assert_eq!(keys[0].scopes, ["leanprover-community/*", "org/dep"]);
        assert_eq!(keys[0].expires, Some(1_798_761_600));
        assert!(keys[0].covers_scope("leanprover-community/mathlib"));
        assert!(keys[0].covers_scope("org/dep"));
        assert!(!keys[0].covers_scope("org/app"));
        assert!(
            keys[1].covers_scope("org/app"),
            "no scope option: every scope"
        );
        for (line, why) in [
            ("scope=\"\" ssh-ed25519 AAAA", "line 1: scope \"\""),
            ("scope=\"a b\" ssh-ed25519 AAAA", "line 1: scope \"a b\""),
            (
                "scopes=\"a\" ssh-ed25519 AAAA",
                "line 1: unknown option \"scopes\"",
            ),
            (
                "scope=\"a ssh-ed25519 AAAA",
                "line 1: scope has no closing quote",
            ),
            (
                "expiry-time=\"20270101\",expiry-time=\"20280101\" ssh-ed25519 AAAA",
                "line 1: expiry-time is given twice",
            ),
        ] {
            let err = parse_trusted_keys(line).unwrap_err().to_string();
            assert!(err.starts_with(why), "{line}: {err}");
        }
    }

    #[test]
    fn expiry_dates() {
        assert_eq!(parse_expiry("19700101"), Some(0));
        assert_eq!(parse_expiry("20000301"), Some(951_868_800));
        assert_eq!(parse_expiry("202402291230"), Some(1_709_209_800));
        assert_eq!(parse_expiry("20240229123005Z"), Some(1_709_209_805));
        assert_eq!(parse_expiry("20230229"), None);
        assert_eq!(parse_expiry("2023010"), None);
        assert_eq!(parse_expiry("20231301"), None);
    }
}

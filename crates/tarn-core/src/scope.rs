//! Remote scopes, platforms, toolchains and the URL encoding Lake applies to them.

use std::fmt;

/// Where a package's outputs live on a remote service (`CacheServiceScope`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `--scope`: a verbatim prefix for a custom endpoint.
    Str(String),
    /// `--repo owner/name`: a GitHub repository, with platform and toolchain parts.
    Repo(String),
}

/// Why a `--repo`, `--platform` or `--toolchain` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Not `owner/name` with safe characters and GitHub's length limits.
    #[error("invalid repository {0:?}: expected 'owner/name' (letters, digits, '-', '_', '.'; owner at most 39 characters, name at most 100)")]
    BadRepo(String),
    /// A platform longer than Lake allows.
    #[error("platform is too long (at most 100 characters): {0:?}")]
    PlatformTooLong(String),
    /// A toolchain longer than Lake allows.
    #[error("toolchain is too long (at most 256 characters): {0:?}")]
    ToolchainTooLong(String),
    /// An empty scope.
    #[error("the scope must not be empty")]
    EmptyScope,
}

impl Scope {
    /// A verbatim scope (`--scope`).
    pub fn verbatim(s: &str) -> Result<Scope, ScopeError> {
        if s.is_empty() {
            return Err(ScopeError::EmptyScope);
        }
        Ok(Scope::Str(s.to_string()))
    }

    /// A repository scope (`--repo`), validated like Lake: only ASCII letters, digits and
    /// `-_./`, exactly one `/`, owner ≤ 39 and name ≤ 100 characters, neither empty.
    pub fn repo(s: &str) -> Result<Scope, ScopeError> {
        let bad = || ScopeError::BadRepo(s.to_string());
        let (owner, name) = s.split_once('/').ok_or_else(bad)?;
        let ok_part = |p: &str, max: usize| {
            !p.is_empty()
                && p.len() <= max
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !ok_part(owner, 39) || !ok_part(name, 100) {
            return Err(bad());
        }
        Ok(Scope::Repo(s.to_string()))
    }

    /// The scope text (the verbatim string or `owner/name`).
    pub fn as_str(&self) -> &str {
        match self {
            Scope::Str(s) | Scope::Repo(s) => s,
        }
    }

    /// Whether this is a repository scope.
    pub fn is_repo(&self) -> bool {
        matches!(self, Scope::Repo(_))
    }

    /// Lake's `appendScope`: for each `/`-separated component, `/` + `uri_encode(component)`.
    pub fn url_path(&self) -> String {
        let mut out = String::new();
        for part in self.as_str().split('/') {
            out.push('/');
            out.push_str(&uri_encode(part));
        }
        out
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3986 encoding as Lake's `uriEncode` does it: ASCII letters, digits and `-_.~` stay;
/// every other UTF-8 byte becomes `%XX` with upper-case hex.
pub fn uri_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            // No allocation per byte: this runs on every signed request's path and query.
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// Checks a `--platform` value (≤ 100 characters). Empty means "none".
pub fn check_platform(p: &str) -> Result<Option<String>, ScopeError> {
    if p.len() > 100 {
        return Err(ScopeError::PlatformTooLong(p.to_string()));
    }
    Ok((!p.is_empty()).then(|| p.to_string()))
}

/// Checks and normalises a `--toolchain` value (≤ 256 characters). Empty means "none".
pub fn check_toolchain(t: &str) -> Result<Option<String>, ScopeError> {
    if t.is_empty() {
        return Ok(None);
    }
    let normalized = normalize_toolchain(t);
    if normalized.len() > 256 {
        return Err(ScopeError::ToolchainTooLong(t.to_string()));
    }
    Ok(Some(normalized))
}

const LEAN4: &str = "leanprover/lean4";
const LEAN4_NIGHTLY: &str = "leanprover/lean4-nightly";
const LEAN4_PR_RELEASES: &str = "leanprover/lean4-pr-releases";

/// Lake's `normalizeToolchain` (`ToolchainVer.ofString s |>.toString`). The tag after the
/// first `:` picks one rule by its prefix (`v`, `nightly-`, `pr-release-`); when that rule
/// or its origin check fails, the input is kept verbatim. A bare `X.Y.Z[-suffix]` with no
/// origin is a release too. Release numbers are printed in decimal (leading zeros drop).
pub(crate) fn normalize_toolchain(t: &str) -> String {
    let (origin, tag) = match t.split_once(':') {
        Some((o, n)) => (o, n),
        None => ("", t),
    };
    let normalized = if let Some(rest) = tag.strip_prefix('v') {
        release_version(rest)
            .filter(|_| matches!(origin, "" | LEAN4))
            .map(|v| format!("{LEAN4}:v{v}"))
    } else if tag.starts_with("nightly-") {
        (matches!(origin, "" | LEAN4 | LEAN4_NIGHTLY) && is_nightly(tag))
            .then(|| format!("{LEAN4}:{tag}"))
    } else if let Some(n) = tag.strip_prefix("pr-release-") {
        (matches!(origin, "" | LEAN4_PR_RELEASES)
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| {
            format!(
                "{LEAN4_PR_RELEASES}:pr-release-{}",
                n.trim_start_matches('0').max_or_zero()
            )
        })
    } else if origin.is_empty() {
        release_version(t).map(|v| format!("{LEAN4}:v{v}"))
    } else {
        None
    };
    normalized.unwrap_or_else(|| t.to_string())
}

trait MaxOrZero {
    fn max_or_zero(&self) -> &str;
}
impl MaxOrZero for str {
    fn max_or_zero(&self) -> &str {
        if self.is_empty() {
            "0"
        } else {
            self
        }
    }
}

/// `X.Y.Z[-suffix]` → `X.Y.Z[-suffix]` with each number in plain decimal.
fn release_version(s: &str) -> Option<String> {
    let (core, suffix) = match s.split_once('-') {
        Some((c, x)) => (c, Some(x)),
        None => (s, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || suffix.is_some_and(str::is_empty) {
        return None;
    }
    let mut nums = Vec::with_capacity(3);
    for p in parts {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nums.push(p.parse::<u64>().ok()?);
    }
    let mut out = format!("{}.{}.{}", nums[0], nums[1], nums[2]);
    if let Some(x) = suffix {
        out.push('-');
        out.push_str(x);
    }
    Some(out)
}

/// `nightly-YYYY-MM-DD[-revK]` with a plausible date.
fn is_nightly(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("nightly-") else {
        return false;
    };
    let date = rest.get(..10).unwrap_or("");
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let date_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && (1..=12).contains(&date[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&date[8..10].parse::<u32>().unwrap_or(0));
    let tail = &rest[date.len()..];
    date_ok
        && (tail.is_empty()
            || tail
                .strip_prefix("-rev")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())))
}

/// Elan's toolchain directory name: `/` → `--`, `:` → `---`
/// (`leanprover/lean4:v4.22.0` → `leanprover--lean4---v4.22.0`).
pub fn toolchain_dir(toolchain: &str) -> String {
    toolchain.replace('/', "--").replace(':', "---")
}

/// Matches a scope against a pattern: `*` matches any run of characters (including `/`);
/// a pattern ending in `/*` also matches the bare prefix (`forks/*` matches `forks`).
pub fn scope_matches(pattern: &str, scope: &str) -> bool {
    if let Some(base) = pattern.strip_suffix("/*") {
        if scope == base {
            return true;
        }
    }
    glob(pattern.as_bytes(), scope.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_lake() {
        assert_eq!(uri_encode("!"), "%21");
        assert_eq!(uri_encode("a b/ü~._-"), "a%20b%2F%C3%BC~._-");
        // Every ASCII character and a multi-byte one against the rule spelled out directly.
        let all: String = (0u8..128).map(char::from).chain(['ÿ', '€', '😀']).collect();
        let expected: String = all
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        assert_eq!(uri_encode(&all), expected);
        assert_eq!(Scope::verbatim("!/test").unwrap().url_path(), "/%21/test");
        assert_eq!(
            Scope::repo("leanprover/lean4").unwrap().url_path(),
            "/leanprover/lean4"
        );
    }

    #[test]
    fn validates_repositories() {
        assert!(Scope::repo("leanprover-community/mathlib4").is_ok());
        for bad in [
            "mathlib4",
            "a/b/c",
            "/x",
            "x/",
            "a b/c",
            "a/b%",
            &format!("{}/x", "o".repeat(40)),
        ] {
            assert!(Scope::repo(bad).is_err(), "{bad} accepted");
        }
        assert!(Scope::repo(&format!("o/{}", "n".repeat(100))).is_ok());
        assert!(Scope::repo(&format!("o/{}", "n".repeat(101))).is_err());
    }

    #[test]
    fn normalizes_toolchains() {
        assert_eq!(normalize_toolchain("v4.22.0"), "leanprover/lean4:v4.22.0");
        assert_eq!(normalize_toolchain("4.22.0"), "leanprover/lean4:v4.22.0");
        assert_eq!(
            normalize_toolchain("leanprover/lean4:v4.22.0-rc1"),
            "leanprover/lean4:v4.22.0-rc1"
        );
        assert_eq!(
            normalize_toolchain("nightly-2025-01-01"),
            "leanprover/lean4:nightly-2025-01-01"
        );
        assert_eq!(
            normalize_toolchain("leanprover/lean4-nightly:nightly-2025-01-01-rev2"),
            "leanprover/lean4:nightly-2025-01-01-rev2"
        );
        assert_eq!(
            normalize_toolchain("pr-release-123"),
            "leanprover/lean4-pr-releases:pr-release-123"
        );
        assert_eq!(normalize_toolchain("bar"), "bar");
        assert_eq!(normalize_toolchain("v04.022.0"), "leanprover/lean4:v4.22.0");
        assert_eq!(
            normalize_toolchain("leanprover/lean4:4.22.0"),
            "leanprover/lean4:4.22.0"
        );
        assert_eq!(normalize_toolchain("v4.22"), "v4.22");
        assert_eq!(
            normalize_toolchain("nightly-2025-13-01"),
            "nightly-2025-13-01"
        );
        assert_eq!(normalize_toolchain("4.22.0 "), "4.22.0 ");
        assert_eq!(normalize_toolchain("other/x:v4.22.0"), "other/x:v4.22.0");
        assert_eq!(normalize_toolchain("my/fork:v1"), "my/fork:v1");
    }

    #[test]
    fn mangles_toolchain_dirs() {
        assert_eq!(
            toolchain_dir("leanprover/lean4:v4.22.0"),
            "leanprover--lean4---v4.22.0"
        );
    }
}

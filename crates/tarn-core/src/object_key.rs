//! Object keys of a cache service (spec §6.3): the one owner of the layout that client URLs
//! ([`crate::Service`]) and `tarn serve`'s routing, listing and GC all follow.
//!
//! * artifacts: `<artifact prefix>/<scope…>/<hash>.art`;
//! * revisions: `<revision prefix>/<scope…>[/pt/<platform>][/tc/<toolchainDir>]/<rev>.jsonl`,
//!   the `pt`/`tc` parts only for repository scopes;
//! * revision signatures (tarn's, docs/trust.md): the revision's key and `.sig`.
//!
//! Keys here are plain (decoded) `/`-joined components; URLs encode each component.
//!
//! ```
//! use tarn_core::{object_key, Hash};
//! let key = object_key::artifact_key("a0", &["mathlib4", "master"], Hash(1));
//! assert_eq!(key, "a0/mathlib4/master/0000000000000001.art");
//! assert_eq!(object_key::parse_artifact_file("0000000000000001.art"), Some(Hash(1)));
//! assert_eq!(object_key::scope_of_key(&key, "r0").as_deref(), Some("mathlib4/master"));
//! ```

use crate::artifact::remote_artifact_name;
use crate::scope::toolchain_dir;
use crate::Hash;

/// Extension of a revision (mapping) file.
pub(crate) const REVISION_EXT: &str = ".jsonl";

/// An artifact's object name: `<hash>.art`.
pub fn artifact_file(hash: Hash) -> String {
    remote_artifact_name(hash)
}

/// Parses an artifact's object name: exactly 16 hex digits, then `.art`.
pub fn parse_artifact_file(name: &str) -> Option<Hash> {
    let hex = name.strip_suffix(".art")?;
    if hex.len() != 16 {
        return None;
    }
    Hash::from_hex(hex)
}

/// A revision file's object name: `<rev>.jsonl`.
pub fn revision_file(rev: &str) -> String {
    format!("{rev}{REVISION_EXT}")
}

/// Whether `name` is a revision file's object name (`<something>.jsonl`).
pub fn is_revision_file(name: &str) -> bool {
    name.len() > REVISION_EXT.len() && name.ends_with(REVISION_EXT)
}

/// The revision of a signature object name (`<rev>.jsonl.sig` → `<rev>`), if it is one.
pub fn parse_signature_file(name: &str) -> Option<&str> {
    name.strip_suffix(crate::trust::SIGNATURE_SUFFIX)?
        .strip_suffix(REVISION_EXT)
        .filter(|rev| !rev.is_empty())
}

/// The components between a repository scope and the revision file: `pt/<platform>` and
/// `tc/<toolchainDir>`, each only when given and not empty.
pub fn revision_dir_suffix(platform: Option<&str>, toolchain: Option<&str>) -> Vec<String> {
    let mut comps = Vec::new();
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        comps.push("pt".to_string());
        comps.push(p.to_string());
    }
    if let Some(t) = toolchain.filter(|t| !t.is_empty()) {
        comps.push("tc".to_string());
        comps.push(toolchain_dir(t));
    }
    comps
}

/// The scope part of a revision key's directory components: the components less a trailing
/// `pt/<p>` and `tc/<t>` (in that order, each optional).
pub fn revision_scope<S: AsRef<str>>(comps: &[S]) -> &[S] {
    let mut n = comps.len();
    if n >= 3 && comps[n - 2].as_ref() == "tc" {
        n -= 2;
    }
    if n >= 3 && comps[n - 2].as_ref() == "pt" {
        n -= 2;
    }
    &comps[..n]
}

/// An artifact's key: `<prefix>/<scope…>/<hash>.art`.
pub fn artifact_key<S: AsRef<str>>(prefix: &str, scope: &[S], hash: Hash) -> String {
    let mut key = prefix.to_string();
    for c in scope {
        key.push('/');
        key.push_str(c.as_ref());
    }
    key.push('/');
    key.push_str(&artifact_file(hash));
    key
}

/// The scope an object key belongs to (`a0/x/y/<hash>.art` → `x/y`; a key under
/// `revision_prefix` loses its `pt`/`tc` parts); `None` for a key with no scope.
pub fn scope_of_key(key: &str, revision_prefix: &str) -> Option<String> {
    let comps: Vec<&str> = key.split('/').collect();
    if comps.len() < 3 {
        return None;
    }
    let inner = &comps[1..comps.len() - 1];
    if comps[0] == revision_prefix {
        Some(revision_scope(inner).join("/"))
    } else {
        Some(inner.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names() {
        assert_eq!(
            parse_artifact_file("884e46be8ed9fafd.art"),
            Some(Hash(0x884e46be8ed9fafd))
        );
        assert_eq!(
            parse_artifact_file("884E46BE8ED9FAFD.art").map(Hash::hex),
            Some("884e46be8ed9fafd".into())
        );
        assert_eq!(parse_artifact_file("884e46be8ed9faf.art"), None);
        assert_eq!(parse_artifact_file("884e46be8ed9fafd.olean"), None);
        assert_eq!(artifact_file(Hash(1)), "0000000000000001.art");
    }

    #[test]
    fn revision_layout() {
        assert!(is_revision_file("abc.jsonl"));
        assert!(!is_revision_file(".jsonl"));
        assert!(!is_revision_file("abc.json"));
        assert!(!is_revision_file("abc.jsonl.sig"));
        assert_eq!(parse_signature_file("abc.jsonl.sig"), Some("abc"));
        assert_eq!(parse_signature_file(".jsonl.sig"), None);
        assert_eq!(parse_signature_file("abc.jsonl"), None);
        assert_eq!(
            revision_dir_suffix(
                Some("x86_64-unknown-linux-gnu"),
                Some("leanprover/lean4:v4.22.0")
            ),
            [
                "pt",
                "x86_64-unknown-linux-gnu",
                "tc",
                "leanprover--lean4---v4.22.0"
            ]
        );
        assert!(revision_dir_suffix(Some(""), None).is_empty());
        let comps = ["o", "r", "pt", "p", "tc", "t"];
        assert_eq!(revision_scope(&comps), ["o", "r"]);
        assert_eq!(revision_scope(&["o", "r", "tc", "t"]), ["o", "r"]);
        assert_eq!(
            revision_scope(&["tc", "t"]),
            ["tc", "t"],
            "a scope named tc stays"
        );
        assert_eq!(
            scope_of_key("r0/o/r/pt/p/tc/t/abc.jsonl", "r0").as_deref(),
            Some("o/r")
        );
        assert_eq!(scope_of_key("a0/x.art", "r0"), None);
    }
}

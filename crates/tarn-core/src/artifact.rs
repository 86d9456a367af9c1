//! Artifact file names: `<hash16>[.<ext>]` locally, `<hash16>.art` remotely.

use std::fmt;

use crate::hash::Hash;

/// The extension Lake gives an artifact described only by a hash (`ArtifactDescr.ext`'s
/// default) and the suffix of every remote artifact object.
pub(crate) const DEFAULT_EXT: &str = "art";

/// One artifact as a mapping file describes it: a content hash and a local extension.
///
/// The extension may contain dots (`olean.server`) or be empty (a Unix executable).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactName {
    /// Content hash (`Hash.ofByteArray` of the bytes).
    pub hash: Hash,
    /// Local extension without the leading dot; may be empty.
    pub ext: String,
}

/// Why a string is not an acceptable artifact file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactNameError {
    /// The part before the first dot is not 16 hex digits.
    #[error("{name:?}: the part before the first '.' must be 16 hex digits")]
    BadHash {
        /// The name as given.
        name: String,
    },
    /// Strict form only: upper-case hex, which Lake never writes.
    #[error("{name:?}: the hash must be lower-case hex, as Lake writes it")]
    UpperCaseHash {
        /// The name as given.
        name: String,
    },
    /// The extension is empty after a dot, or holds a character that is unsafe in a path.
    #[error("{name:?}: bad extension (allowed: letters, digits, '_', '-', and '.' between parts)")]
    BadExtension {
        /// The name as given.
        name: String,
    },
}

impl ArtifactName {
    /// An artifact name from its parts.
    pub fn new(hash: Hash, ext: impl Into<String>) -> Self {
        ArtifactName {
            hash,
            ext: ext.into(),
        }
    }

    /// Lake's `ArtifactDescr.ofFilePath?`: hash = text before the first `.` (16 hex digits,
    /// either case), ext = everything after it. Extensions are also checked to be safe as
    /// part of a file name, since the names come from files other tools wrote.
    pub fn parse(name: &str) -> Result<Self, ArtifactNameError> {
        let (hash_part, ext) = match name.split_once('.') {
            Some((h, e)) => (h, Some(e)),
            None => (name, None),
        };
        let hash = Hash::from_hex(hash_part).ok_or_else(|| ArtifactNameError::BadHash {
            name: name.to_string(),
        })?;
        let ext = match ext {
            None => String::new(),
            Some(e) if is_safe_extension(e) => e.to_string(),
            Some(_) => {
                return Err(ArtifactNameError::BadExtension {
                    name: name.to_string(),
                })
            }
        };
        Ok(ArtifactName { hash, ext })
    }

    /// The strict form used for files from an untrusted staging directory: like
    /// [`ArtifactName::parse`], and the name must be exactly what Lake would write
    /// (lower-case hex), so that it round-trips to the same path.
    pub fn parse_strict(name: &str) -> Result<Self, ArtifactNameError> {
        let parsed = ArtifactName::parse(name)?;
        if parsed.file_name() != name {
            return Err(ArtifactNameError::UpperCaseHash {
                name: name.to_string(),
            });
        }
        Ok(parsed)
    }

    /// The local file name: `<hash>.<ext>`, or `<hash>` when the extension is empty.
    pub fn file_name(&self) -> String {
        if self.ext.is_empty() {
            self.hash.hex()
        } else {
            format!("{}.{}", self.hash, self.ext)
        }
    }
}

/// The remote object name of an artifact with content hash `hash`: `<hash>.art`.
pub(crate) fn remote_artifact_name(hash: Hash) -> String {
    format!("{hash}.{DEFAULT_EXT}")
}

fn is_safe_extension(ext: &str) -> bool {
    !ext.is_empty()
        && ext.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

impl fmt::Debug for ArtifactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactName({})", self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lake_names() {
        let a = ArtifactName::parse("884e46be8ed9fafd.olean.server").unwrap();
        assert_eq!(a.hash.hex(), "884e46be8ed9fafd");
        assert_eq!(a.ext, "olean.server");
        assert_eq!(a.file_name(), "884e46be8ed9fafd.olean.server");
        assert_eq!(remote_artifact_name(a.hash), "884e46be8ed9fafd.art");
        let exe = ArtifactName::parse("884e46be8ed9fafd").unwrap();
        assert_eq!(exe.ext, "");
        assert_eq!(exe.file_name(), "884e46be8ed9fafd");
    }

    #[test]
    fn rejects_unsafe_names() {
        for bad in [
            "884e46be8ed9fafd.",
            "884e46be8ed9fafd..x",
            "884e46be8ed9fafd./x",
            "884e46be8ed9fafd.a/b",
            "884e46be8ed9fafd.a\\b",
            "884e46be8ed9faf.o",
            "../884e46be8ed9fafd",
            "884e46be8ed9fafdd.o",
            "",
            "outputs.jsonl",
        ] {
            assert!(ArtifactName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn strict_form_wants_lower_case() {
        assert!(ArtifactName::parse("884E46BE8ED9FAFD.o").is_ok());
        assert!(matches!(
            ArtifactName::parse_strict("884E46BE8ED9FAFD.o"),
            Err(ArtifactNameError::UpperCaseHash { .. })
        ));
        assert!(ArtifactName::parse_strict("884e46be8ed9fafd.o").is_ok());
    }
}

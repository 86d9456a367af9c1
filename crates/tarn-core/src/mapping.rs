//! Mapping files (JSON Lines): the output of `lake build -o`, remote revision files and a
//! staging directory's `outputs.jsonl`. One format serves all three.
//!
//! ```text
//! "2026-03-17"
//! ["9f86d081884c7d65",{"c":"2c26b46b68ffc68f.c","i":"fcde2b2edba56bf4.ilean","o":["b5bb9d8014a0f9b1.olean"]}]
//! ["3f79bb7b435b0532","7b8c9d0e1f2a3b4c.o"]
//! ```
//!
//! Reading follows Lake's `CacheMap.load`: the first line must be a schema version; a bad
//! later line is a warning naming the line, and is skipped; the last duplicate wins.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::artifact::{ArtifactName, ArtifactNameError, DEFAULT_EXT};
use crate::hash::Hash;

/// Schema version of the mapping files of Lake G1 (Sept 2025 – Feb 2026).
pub const SCHEMA_G1: &str = "2025-09-10";
/// Schema version of the mapping files of Lake G3 (Mar 2026 on); tarn writes it by default.
pub const SCHEMA_G3: &str = "2026-03-17";

/// A parsed mapping file: input hash → outputs JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingFile {
    /// The schema version from line 1 (`"2026-03-17"`, `"2025-09-10"`, or something newer).
    pub schema: String,
    /// Entries by input hash (the last line wins for a repeated hash).
    pub entries: BTreeMap<Hash, Value>,
}

/// A problem with one line that Lake also only warns about; the line is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineWarning {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for LineWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A mapping file that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The file is empty or its first line is blank.
    #[error("expected schema version on line 1 (the file is empty or starts with a blank line)")]
    MissingHeader,
    /// The file is not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// The result of parsing: the file plus the warnings for skipped lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The usable content.
    pub file: MappingFile,
    /// One warning per skipped or suspicious line.
    pub warnings: Vec<LineWarning>,
}

impl MappingFile {
    /// An empty mapping file with the given schema version.
    pub fn new(schema: impl Into<String>) -> Self {
        MappingFile {
            schema: schema.into(),
            entries: BTreeMap::new(),
        }
    }

    /// Parses mapping-file bytes (`CacheMap.load`).
    pub fn parse(bytes: &[u8]) -> Result<Parsed, MappingError> {
        let text = std::str::from_utf8(bytes).map_err(|_| MappingError::NotUtf8)?;
        let mut lines = text.split('\n');
        // Lake's `CacheMap.load` fails only when there is no first line at all (an empty
        // file); any other header that is not the current schema version is a warning.
        if bytes.is_empty() {
            return Err(MappingError::MissingHeader);
        }
        let header = lines.next().unwrap_or("").trim_end_matches('\r');
        let mut warnings = Vec::new();
        let schema = match serde_json::from_str::<Value>(header) {
            Ok(Value::String(s)) => {
                if s == SCHEMA_G1 {
                    warnings.push(LineWarning {
                        line: 1,
                        message: format!(
                            "older schema version {s:?} (current: {SCHEMA_G3:?}); reading it anyway"
                        ),
                    });
                } else if s != SCHEMA_G3 {
                    warnings.push(LineWarning {
                        line: 1,
                        message: format!("unknown schema version {s:?}; reading it anyway"),
                    });
                }
                s
            }
            _ => {
                warnings.push(LineWarning {
                    line: 1,
                    message: format!("invalid schema version {header:?}; reading it anyway"),
                });
                header.to_string()
            }
        };
        let mut entries = BTreeMap::new();
        let body: Vec<&str> = lines.collect();
        // A final newline leaves one empty piece at the end; that is not a line.
        let count = body.len() - usize::from(body.last() == Some(&""));
        for (index, raw) in body[..count].iter().enumerate() {
            let line = index + 2;
            let raw = raw.trim_end_matches('\r');
            if raw.trim().is_empty() {
                warnings.push(LineWarning {
                    line,
                    message: "invalid JSON (blank line)".to_string(),
                });
                continue;
            }
            match parse_entry(raw) {
                Ok((input, outputs)) => {
                    entries.insert(input, outputs);
                }
                Err(message) => warnings.push(LineWarning { line, message }),
            }
        }
        Ok(Parsed {
            file: MappingFile { schema, entries },
            warnings,
        })
    }

    /// Every artifact the entries describe, deduplicated and sorted, or the first entry whose
    /// outputs cannot be read.
    pub fn artifacts(&self) -> Result<Vec<ArtifactName>, EntryError> {
        let mut all = BTreeSet::new();
        for (input, outputs) in &self.entries {
            collect_artifacts(outputs, &mut all).map_err(|error| EntryError {
                input: *input,
                error,
            })?;
        }
        Ok(all.into_iter().collect())
    }

    /// Serialises the file in Lake's form: the header line, then one `Json.compress`ed array
    /// per entry (Lean's printer: keys ascending, Lean's escapes), every line
    /// newline-terminated, sorted by input hash so output is reproducible (Lake writes its
    /// hash map's order).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.entries.len() * 128);
        out.push_str(&crate::lean_json::render_string(&self.schema));
        out.push('\n');
        for (input, outputs) in &self.entries {
            out.push_str("[\"");
            out.push_str(&input.hex());
            out.push_str("\",");
            crate::lean_json::compress_into(&mut out, outputs);
            out.push_str("]\n");
        }
        out.into_bytes()
    }
}

/// Why an outputs value does not name artifacts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputsError {
    /// A number that is not a 64-bit hash (Lake's legacy decimal form).
    #[error("invalid legacy artifact hash {0}")]
    LegacyHash(String),
    /// A string that is not an artifact file name.
    #[error(transparent)]
    Name(#[from] ArtifactNameError),
}

/// A mapping-file entry whose outputs cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {input}: {error}")]
pub struct EntryError {
    /// The entry's input hash.
    pub input: Hash,
    /// What is wrong with its outputs.
    #[source]
    pub error: OutputsError,
}

fn parse_entry(raw: &str) -> Result<(Hash, Value), String> {
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("invalid JSON ({e})"))?;
    let Value::Array(mut items) = value else {
        return Err("expected a JSON array [inputHash, outputs]".to_string());
    };
    if items.len() < 2 {
        return Err("expected a JSON array of at least 2 elements [inputHash, outputs]".into());
    }
    let input =
        Hash::from_json(&items[0]).ok_or_else(|| format!("invalid input hash {}", items[0]))?;
    let outputs = items.swap_remove(1);
    Ok((input, outputs))
}

/// Walks an outputs JSON value the way Lake's `collectOutputDescrs` does and adds every
/// artifact it names to `into`.
///
/// `null` and booleans name nothing; a string is an artifact file name; a number is a legacy
/// decimal hash with the default extension `art`; arrays and objects are walked.
pub fn collect_artifacts(
    value: &Value,
    into: &mut BTreeSet<ArtifactName>,
) -> Result<(), OutputsError> {
    match value {
        Value::Null | Value::Bool(_) => Ok(()),
        Value::Number(n) => {
            let hash = n
                .as_u64()
                .ok_or_else(|| OutputsError::LegacyHash(n.to_string()))?;
            into.insert(ArtifactName::new(Hash(hash), DEFAULT_EXT));
            Ok(())
        }
        Value::String(s) => {
            let name = ArtifactName::parse(s)?;
            into.insert(name);
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| collect_artifacts(v, into)),
        Value::Object(map) => map.values().try_for_each(|v| collect_artifacts(v, into)),
    }
}

/// The artifacts named by one outputs JSON value, sorted and deduplicated.
pub fn artifacts_of(value: &Value) -> Result<Vec<ArtifactName>, OutputsError> {
    let mut set = BTreeSet::new();
    collect_artifacts(value, &mut set)?;
    Ok(set.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const G3: &str = concat!(
        "\"2026-03-17\"\n",
        "[\"9f86d081884c7d65\",{\"c\":\"2c26b46b68ffc68f.c\",\"i\":\"fcde2b2edba56bf4.ilean\",\"m\":false,\"o\":[\"b5bb9d8014a0f9b1.olean\"]}]\n",
        "[\"3f79bb7b435b0532\",\"7b8c9d0e1f2a3b4c.o\"]\n",
    );

    #[test]
    fn reads_the_spec_example_and_writes_it_back_sorted() {
        let parsed = MappingFile::parse(G3.as_bytes()).unwrap();
        assert!(parsed.warnings.is_empty());
        assert_eq!(parsed.file.schema, SCHEMA_G3);
        assert_eq!(parsed.file.entries.len(), 2);
        let names: Vec<String> = parsed
            .file
            .artifacts()
            .unwrap()
            .iter()
            .map(|a| a.file_name())
            .collect();
        assert_eq!(
            names,
            [
                "2c26b46b68ffc68f.c",
                "7b8c9d0e1f2a3b4c.o",
                "b5bb9d8014a0f9b1.olean",
                "fcde2b2edba56bf4.ilean"
            ]
        );
        let written = String::from_utf8(parsed.file.to_bytes()).unwrap();
        let mut lines: Vec<&str> = G3.lines().collect();
        lines[1..].sort();
        assert_eq!(written, lines.join("\n") + "\n");
    }

    #[test]
    fn every_output_shape_is_understood() {
        let text = concat!(
            "\"2025-09-10\"\n",
            "[\"0000000000000001\",\"00000000000000aa.olean.server\"]\n",
            "[\"0000000000000002\",\"00000000000000bb\"]\n",
            "[\"0000000000000003\",187]\n",
            "[\"0000000000000004\",{\"o\":[\"00000000000000dd\"],\"i\":\"00000000000000ee\",\"c\":\"00000000000000ff\",\"bc\":\"0000000000000100\"}]\n",
            "[\"0000000000000005\",null]\n",
            "[\"0000000000000006\",true]\n",
            "[6,\"0000000000000101.ltar\"]\n",
        );
        let parsed = MappingFile::parse(text.as_bytes()).unwrap();
        // The only warning is Lake's for an older schema version.
        let lines: Vec<usize> = parsed.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [1], "{:?}", parsed.warnings);
        assert_eq!(parsed.file.entries.len(), 6, "decimal 6 replaced the hex 6");
        let names: Vec<String> = parsed
            .file
            .artifacts()
            .unwrap()
            .iter()
            .map(|a| a.file_name())
            .collect();
        assert!(names.contains(&"00000000000000aa.olean.server".to_string()));
        assert!(names.contains(&"00000000000000bb".to_string()));
        assert!(names.contains(&"00000000000000bb.art".to_string()));
        assert!(names.contains(&"0000000000000101.ltar".to_string()));
    }

    #[test]
    fn bad_lines_are_warnings_with_line_numbers() {
        let text = "\"2026-03-17\"\nnot json\n[\"0000000000000001\"]\n{\"a\":1}\n[\"zz\",null]\n\n[\"0000000000000002\",null]";
        let parsed = MappingFile::parse(text.as_bytes()).unwrap();
        let lines: Vec<usize> = parsed.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        assert_eq!(parsed.file.entries.len(), 1);
    }

    #[test]
    fn only_an_empty_file_is_an_error_other_headers_warn() {
        assert_eq!(
            MappingFile::parse(b"").unwrap_err(),
            MappingError::MissingHeader
        );
        // A blank or unparsable first line, or an older version: a warning on line 1, and the
        // entries are still read (Lake's `checkSchemaVersion`).
        for text in [
            "\n[\"0000000000000001\",null]\n",
            "not json\n[\"0000000000000001\",null]\n",
            "\"2025-09-10\"\n[\"0000000000000001\",null]\n",
        ] {
            let parsed = MappingFile::parse(text.as_bytes()).unwrap();
            assert_eq!(parsed.warnings.len(), 1, "{text:?}");
            assert_eq!(parsed.warnings[0].line, 1, "{text:?}");
            assert_eq!(parsed.file.entries.len(), 1, "{text:?}");
        }
        let parsed = MappingFile::parse(b"\"2026-03-17\"\n").unwrap();
        assert!(parsed.warnings.is_empty());
        assert_eq!(
            MappingFile::parse(b"\xff\xfe").unwrap_err(),
            MappingError::NotUtf8
        );
    }

    #[test]
    fn unknown_schema_only_warns() {
        let parsed = MappingFile::parse(b"\"2099-01-01\"\n").unwrap();
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.file.schema, "2099-01-01");
    }

    #[test]
    fn bad_artifact_names_are_reported_with_their_entry() {
        let mut f = MappingFile::new(SCHEMA_G3);
        f.entries.insert(Hash(7), json!({"o": ["../etc/passwd"]}));
        let e = f.artifacts().unwrap_err();
        let (input, msg) = (e.input, e.error.to_string());
        assert_eq!(input, Hash(7));
        assert!(msg.contains("16 hex digits"), "{msg}");
        assert!(matches!(e.error, OutputsError::Name(_)));
        assert!(e.to_string().starts_with("entry 0000000000000007: "), "{e}");
    }
}

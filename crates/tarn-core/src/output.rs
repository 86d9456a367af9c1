//! `outputs/<scope>/<inputHash>.json`: one input's outputs, wrapped with where to fetch
//! missing artifacts from (Lake's `CacheOutput`).

use serde_json::{Map, Value};

use crate::scope::Scope;

/// The `schemaVersion` Lake G2/G3 writes into `outputs/` files.
pub(crate) const CACHE_OUTPUT_SCHEMA: &str = "2026-02-25";

/// One `outputs/` file.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheOutput {
    /// The outputs JSON exactly as the mapping file gave it.
    pub data: Value,
    /// The service to download missing artifacts from on demand (`null` when none).
    pub service: Option<String>,
    /// The remote scope on that service (`repo` or `scope` key), if any.
    pub scope: Option<Scope>,
}

/// An `outputs/` file that is not JSON.
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON: {0}")]
pub struct OutputParseError(#[source] pub serde_json::Error);

impl CacheOutput {
    /// Reads any generation: a wrapper object with `schemaVersion`, or (G1) the bare
    /// outputs JSON.
    pub(crate) fn from_json(value: Value) -> CacheOutput {
        match value {
            Value::Object(mut map) if map.contains_key("schemaVersion") => {
                let data = map.remove("data").unwrap_or(Value::Null);
                let service = match map.remove("service") {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                };
                let scope = match (map.remove("repo"), map.remove("scope")) {
                    (Some(Value::String(r)), _) => Some(Scope::Repo(r)),
                    (_, Some(Value::String(s))) => Some(Scope::Str(s)),
                    _ => None,
                };
                CacheOutput {
                    data,
                    service,
                    scope,
                }
            }
            bare => CacheOutput {
                data: bare,
                service: None,
                scope: None,
            },
        }
    }

    /// Parses file bytes.
    pub fn parse(bytes: &[u8]) -> Result<CacheOutput, OutputParseError> {
        let value: Value = serde_json::from_slice(bytes).map_err(OutputParseError)?;
        Ok(CacheOutput::from_json(value))
    }

    /// The G3 wrapper: keys sorted, `service` always present (`null` when none), `repo` or
    /// `scope` only when there is a remote scope.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("data".into(), self.data.clone());
        match &self.scope {
            Some(Scope::Repo(r)) => {
                map.insert("repo".into(), Value::String(r.clone()));
            }
            Some(Scope::Str(s)) => {
                map.insert("scope".into(), Value::String(s.clone()));
            }
            None => {}
        }
        map.insert(
            "schemaVersion".into(),
            Value::String(CACHE_OUTPUT_SCHEMA.into()),
        );
        map.insert(
            "service".into(),
            self.service
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        Value::Object(map)
    }

    /// File bytes exactly as G3 Lake writes them: `IO.FS.writeFile file (toJson out).pretty`,
    /// i.e. Lean's `Json.pretty` (keys descending, width 80) with no final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::lean_json::pretty(&self.to_json()).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_sorted_keys_with_null_service() {
        let o = CacheOutput {
            data: json!("0000000000000001.o"),
            service: None,
            scope: None,
        };
        let text = serde_json::to_string(&o.to_json()).unwrap();
        assert_eq!(
            text,
            r#"{"data":"0000000000000001.o","schemaVersion":"2026-02-25","service":null}"#
        );
    }

    #[test]
    fn file_bytes_are_leans_pretty_form() {
        let ltar = CacheOutput {
            data: json!("0123456789abcdef.ltar"),
            service: None,
            scope: None,
        };
        assert_eq!(
            String::from_utf8(ltar.to_bytes()).unwrap(),
            "{\"service\": null,\n \"schemaVersion\": \"2026-02-25\",\n \"data\": \"0123456789abcdef.ltar\"}"
        );
        let scoped = CacheOutput {
            data: json!({"o": ["0000000000000001.olean"], "i": "0000000000000002.ilean", "c": "0000000000000003.c"}),
            service: Some("reservoir".into()),
            scope: Some(Scope::Str("leanprover-community/batteries".into())),
        };
        assert_eq!(
            String::from_utf8(scoped.to_bytes()).unwrap(),
            "{\"service\": \"reservoir\",\n \"scope\": \"leanprover-community/batteries\",\n \"schemaVersion\": \"2026-02-25\",\n \"data\":\n {\"o\": [\"0000000000000001.olean\"],\n  \"i\": \"0000000000000002.ilean\",\n  \"c\": \"0000000000000003.c\"}}"
        );
    }

    #[test]
    fn round_trips_every_generation() {
        let wrapped = CacheOutput {
            data: json!({"o": ["0000000000000001.olean"]}),
            service: Some("cdn".into()),
            scope: Some(Scope::Repo("a/b".into())),
        };
        assert_eq!(CacheOutput::parse(&wrapped.to_bytes()).unwrap(), wrapped);
        let g2 = br#"{"data":"0000000000000001.o","scope":"x","schemaVersion":"2026-01-22","service":"s"}"#;
        let o = CacheOutput::parse(g2).unwrap();
        assert_eq!(o.scope, Some(Scope::Str("x".into())));
        assert_eq!(o.service.as_deref(), Some("s"));
        let g1 = br#"{"o":["0000000000000001.olean"],"i":"0000000000000002.ilean","c":"0000000000000003.c"}"#;
        let o = CacheOutput::parse(g1).unwrap();
        assert_eq!(o.service, None);
        assert_eq!(o.data["i"], json!("0000000000000002.ilean"));
        assert!(CacheOutput::parse(b"{")
            .unwrap_err()
            .to_string()
            .contains("invalid JSON"));
    }
}

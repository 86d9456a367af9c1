//! CONTRIBUTING.md's output conventions as checks every crate's tests share: JSON keys are
//! `snake_case`, except keys that repeat Lake's configuration names verbatim.

/// Keys that echo Lake's configuration file verbatim (`~/.lake/config.toml`).
const LAKE_CONFIG_KEYS: [&str; 6] = [
    "defaultService",
    "defaultUploadService",
    "artifactEndpoint",
    "revisionEndpoint",
    "apiEndpoint",
    "revDiscovery",
];

/// Every key of `v` (at any depth) that is neither `snake_case` nor one of Lake's own
/// configuration keys, as a path below `path` (`/api/status.scopes[0].newKey`).
pub fn json_keys_not_snake_case(v: &serde_json::Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    collect(v, path, &mut out);
    out
}

fn collect(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let snake = k.starts_with(|c: char| c.is_ascii_lowercase())
                    && k.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !snake && !LAKE_CONFIG_KEYS.contains(&k.as_str()) {
                    out.push(format!("{path}.{k}"));
                }
                collect(v, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                collect(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

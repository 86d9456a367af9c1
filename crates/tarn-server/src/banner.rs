//! What `tarn serve` tells its operator on start-up: where it listens, a complete
//! `~/.lake/config.toml` for Lake and tarn (default services included), two commands that
//! upload and download through it, and the upload key.

use std::fmt::Write as _;
use std::path::Path;

use crate::config::{KeyConfig, ServerConfig, StorageKind};

/// The banner of a server reachable at `base` (`http(s)://host:port`, no trailing `/`);
/// `generated` is the admin key kept in the data directory, if one was generated.
pub(crate) fn banner(cfg: &ServerConfig, base: &str, generated: Option<&KeyConfig>) -> String {
    let storage = match cfg.storage.kind {
        StorageKind::Local => format!("local {}", display(cfg.data.as_deref())),
        StorageKind::S3 => format!(
            "s3 {} bucket {}",
            cfg.storage.endpoint.as_deref().unwrap_or_default(),
            cfg.storage.bucket.as_deref().unwrap_or_default()
        ),
    };
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        o,
        "\
tarn serve: listening on {base} (storage: {storage})
Lake configuration (~/.lake/config.toml):

  [cache]
  defaultService = \"tarn\"
  defaultUploadService = \"tarn\"

  [[cache.service]]
  name = \"tarn\"
  kind = \"s3\"
  artifactEndpoint = \"{base}/{art}\"
  revisionEndpoint = \"{base}/{rev}\"

  [[cache.service]]
  name = \"tarn-reservoir\"
  kind = \"reservoir\"
  apiEndpoint = \"{base}/{api}\"

Then, with that saved as ~/.lake/config.toml (or named by LAKE_CONFIG) and the LAKE_CACHE_KEY
below exported, in a Lake package after `lake build -o outputs.jsonl` (a git repository: the
upload is for its HEAD commit):
  lake cache put outputs.jsonl --scope=myproj   # or: tarn put outputs.jsonl --scope myproj
  lake cache get --scope=myproj                 # or: tarn get --scope myproj
No Lake package at hand? `tarn demo` makes a whole round trip on a generated one.

",
        art = cfg.artifact_prefix,
        rev = cfg.revision_prefix,
        api = cfg.reservoir_prefix,
    );
    match generated {
        Some(k) => {
            let kept = cfg.data.as_deref().map(crate::admin_key::key_path);
            let _ = writeln!(
                o,
                "Uploads: export LAKE_CACHE_KEY={}:{}  (admin key kept in {})",
                k.id,
                k.secret,
                display(kept.as_deref())
            );
        }
        None => o.push_str("Uploads: LAKE_CACHE_KEY=<id>:<secret> of a configured key\n"),
    }
    o
}

fn display(p: Option<&Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_is_a_complete_lake_config_with_the_generated_key() {
        let cfg = ServerConfig {
            data: Some("/srv/tarn".into()),
            ..ServerConfig::default()
        };
        let key = KeyConfig {
            id: "tarn".into(),
            secret: "s3cret".into(),
            read: vec![],
            write: vec![],
            admin: vec!["*".into()],
        };
        let b = banner(&cfg, "http://127.0.0.1:7070", Some(&key));
        assert!(b.starts_with(
            "tarn serve: listening on http://127.0.0.1:7070 (storage: local /srv/tarn)\n"
        ));
        for line in [
            "  defaultService = \"tarn\"\n",
            "  defaultUploadService = \"tarn\"\n",
            "  artifactEndpoint = \"http://127.0.0.1:7070/a0\"\n",
            "  revisionEndpoint = \"http://127.0.0.1:7070/r0\"\n",
            "  apiEndpoint = \"http://127.0.0.1:7070/api/v1\"\n",
        ] {
            assert!(b.contains(line), "{line:?} missing from\n{b}");
        }
        assert!(b.ends_with(
            "Uploads: export LAKE_CACHE_KEY=tarn:s3cret  (admin key kept in /srv/tarn/.tarn-serve-key)\n"
        ));
        let configured = banner(&cfg, "http://x", None);
        assert!(configured.ends_with("Uploads: LAKE_CACHE_KEY=<id>:<secret> of a configured key\n"));
    }
}

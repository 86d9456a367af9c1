//! The admin key of a zero-configuration server: generated once, kept in
//! `<data>/.tarn-serve-key` (mode 600, `ID:SECRET`), so that `lake cache put` works out of
//! the box and the key survives a restart.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::KeyConfig;
use crate::error::StartError;

/// The key file's name inside the data directory.
pub(crate) const KEY_FILE: &str = ".tarn-serve-key";

/// The id of a generated key (the part before `:` in `LAKE_CACHE_KEY`).
const KEY_ID: &str = "tarn";

/// A key file is one short line; anything longer is not one.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The key file inside `data`.
pub(crate) fn key_path(data: &Path) -> PathBuf {
    data.join(KEY_FILE)
}

/// Reads the admin key kept in `data`, or generates and keeps a new one (creating `data`).
pub(crate) fn load_or_create(data: &Path) -> Result<KeyConfig, StartError> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StartError::File { path, source }
    };
    std::fs::create_dir_all(data).map_err(file_err(data))?;
    let path = key_path(data);
    let text = match read_bounded(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(data, &path)?,
        Err(e) => return Err(file_err(&path)(e)),
    };
    let (id, secret) = text
        .trim()
        .split_once(':')
        .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
        .ok_or(StartError::KeyFile { path })?;
    Ok(KeyConfig {
        id: id.to_string(),
        secret: secret.to_string(),
        read: vec![],
        write: vec![],
        admin: vec!["*".into()],
    })
}

/// Reads the key file through the one bounded, non-blocking reader: a FIFO or device put in
/// its place is refused (naming it) instead of hanging or filling memory at start-up.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    let limit = tarn_store::ReadLimit {
        bytes: MAX_KEY_FILE_BYTES,
        what: "a key file",
        env: None,
    };
    tarn_store::read_local_text(path, tarn_store::Links::Follow, &limit)
}

/// Writes a new key file (private from its first byte, published without replacing a key
/// another server wrote meanwhile) and returns the text now in place.
fn create(data: &Path, path: &Path) -> Result<String, StartError> {
    let mut bytes = [0u8; 20];
    // The operating system's generator (getrandom(2), SecRandomCopyBytes, BCryptGenRandom).
    getrandom::getrandom(&mut bytes).map_err(|e| StartError::File {
        path: "(the system random generator)".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let text = format!("{KEY_ID}:{}\n", hex::encode(bytes));
    let io = |source| StartError::File {
        path: path.to_path_buf(),
        source,
    };
    let store = |e: tarn_store::StoreError| StartError::Store(Box::new(e));
    let mut temp = tarn_store::TempFile::new_in(data).map_err(store)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.file_mut()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    temp.file_mut().write_all(text.as_bytes()).map_err(io)?;
    temp.file_mut().sync_all().map_err(io)?;
    temp.publish_no_clobber(path).map_err(store)?;
    // Another server starting at the same moment may have won: use what is in place.
    read_bounded(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_generated_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let k = load_or_create(&data).unwrap();
        assert_eq!(k.id, KEY_ID);
        assert_eq!(k.secret.len(), 40);
        assert_eq!(k.admin, vec!["*".to_string()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&data))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = load_or_create(&data).unwrap();
        assert_eq!(again.secret, k.secret);
        let names: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![KEY_FILE.to_string()], "no temp file left");
    }

    #[test]
    fn a_key_file_without_a_colon_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(key_path(dir.path()), "garbage\n").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, StartError::KeyFile { .. }), "{e:?}");
        assert!(e.to_string().contains(KEY_FILE), "{e}");
    }
}

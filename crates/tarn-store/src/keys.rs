//! Key files for signed revisions (docs/trust.md): `tarn key generate` (a private key
//! written atomically with mode 0600, never replacing a file, and its one-line `.pub`),
//! reading a private key, and reading trusted-key lists. The formats are
//! [`tarn_core::trust`]'s (OpenSSH's); this module only does the I/O.

use std::io::Write;
use std::path::{Path, PathBuf};

use tarn_core::trust::{parse_trusted_keys, KeyError, PublicKey, SecretKey, TrustedKey};

use crate::cache::TempFile;
use crate::local_file::{read_local_text, Links, ReadLimit};

/// The largest key file read (an OpenSSH ed25519 key is about 400 bytes).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
/// The largest trusted-keys file read.
const MAX_TRUSTED_KEYS_BYTES: u64 = 1024 * 1024;

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// An I/O error on the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `key generate` never replaces a file.
    #[error("{}: already exists; tarn key generate never replaces a key (remove it first)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a key or key list.
    #[error("{}: {source}", path.display())]
    Format {
        /// The file (or the environment variable holding the key).
        path: PathBuf,
        /// What is wrong.
        source: KeyError,
    },
    /// The operating system's random source failed.
    #[error("no random bytes from the operating system")]
    Random,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The public key file beside a private key file: `FILE.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_os_string();
    s.push(".pub");
    PathBuf::from(s)
}

/// Generates a key pair: the private key in OpenSSH's format to `path` (mode 0600, written
/// to a temp file in the same directory and linked into place, never replacing an existing
/// file) and the public key line to `path.pub`. Returns the public key.
pub fn generate_key(path: &Path, comment: &str) -> Result<PublicKey, KeyFileError> {
    use ring::rand::SecureRandom;
    let pub_path = public_key_path(path);
    for p in [path, pub_path.as_path()] {
        if p.symlink_metadata().is_ok() {
            return Err(KeyFileError::Exists {
                path: p.to_path_buf(),
            });
        }
    }
    let rng = ring::rand::SystemRandom::new();
    let mut seed = [0u8; 32];
    let mut check = [0u8; 4];
    rng.fill(&mut seed).map_err(|_| KeyFileError::Random)?;
    rng.fill(&mut check).map_err(|_| KeyFileError::Random)?;
    let key = SecretKey::from_seed(seed, comment);
    seed.fill(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut temp = TempFile::new_in(dir).map_err(|e| KeyFileError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(temp.path()))?;
    }
    let text = key.to_openssh(u32::from_ne_bytes(check));
    temp.file_mut()
        .write_all(text.as_bytes())
        .and_then(|()| temp.file_mut().sync_all())
        .map_err(io_error(path))?;
    drop(text);
    match temp.publish_no_clobber(path) {
        Ok(crate::Inserted::New) => {}
        Ok(crate::Inserted::AlreadyPresent) => {
            return Err(KeyFileError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(KeyFileError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })
        }
    }
    let line = format!("{}\n", key.public().to_line(comment));
    crate::write_atomic(&pub_path, line.as_bytes()).map_err(|e| KeyFileError::Io {
        path: pub_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(key.public().clone())
}

/// Reads a private key file (unencrypted OpenSSH ed25519, as `tarn key generate` or
/// `ssh-keygen -t ed25519 -N ''` writes it).
pub fn read_secret_key(path: &Path) -> Result<SecretKey, KeyFileError> {
    let limit = ReadLimit {
        bytes: MAX_KEY_FILE_BYTES,
        what: "a private key file",
        env: None,
    };
    let text = read_local_text(path, Links::Follow, &limit).map_err(io_error(path))?;
    SecretKey::parse_openssh(&text).map_err(|source| KeyFileError::Format {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a trusted-keys file ([`parse_trusted_keys`]: `authorized_keys` lines with an
/// optional `expiry-time`), or a single `FILE.pub`.
pub fn read_trusted_keys(path: &Path) -> Result<Vec<TrustedKey>, KeyFileError> {
    let limit = ReadLimit {
        bytes: MAX_TRUSTED_KEYS_BYTES,
        what: "a trusted-keys file",
        env: None,
    };
    let text = read_local_text(path, Links::Follow, &limit).map_err(io_error(path))?;
    parse_trusted_keys(&text).map_err(|source| KeyFileError::Format {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_private_key_only_its_owner_reads_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key");
        let public = generate_key(&path, "ci").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = read_secret_key(&path).unwrap();
        assert_eq!(key.public(), &public);
        let trusted = read_trusted_keys(&public_key_path(&path)).unwrap();
        assert_eq!(trusted[0].key, public);
        assert_eq!(trusted[0].comment, "ci");
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            generate_key(&path, "again"),
            Err(KeyFileError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }
}

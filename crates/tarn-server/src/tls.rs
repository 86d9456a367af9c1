//! Optional TLS (rustls with the ring provider) from PEM files.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;

use crate::error::StartError;

/// The most bytes of a PEM file read (a certificate chain or key is a few kB).
const PEM_LIMIT: tarn_store::ReadLimit<'static> = tarn_store::ReadLimit {
    bytes: 1 << 20,
    what: "a PEM file",
    env: None,
};

/// A TLS acceptor for a PEM certificate chain and private key.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    // Read whole through the one bounded, non-blocking reader: a FIFO or device given as a
    // PEM file is refused at once, naming it.
    let open = |p: &Path| {
        tarn_store::read_local_file(p, tarn_store::Links::Follow, &PEM_LIMIT).map_err(|source| {
            StartError::File {
                path: p.to_path_buf(),
                source,
            }
        })
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut open(cert)?.as_slice())
        .collect::<std::result::Result<_, _>>()
        .map_err(|source| StartError::File {
            path: cert.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(StartError::NoPem {
            path: cert.to_path_buf(),
            what: "certificate",
        });
    }
    let key_der = rustls_pemfile::private_key(&mut open(key)?.as_slice())
        .map_err(|source| StartError::File {
            path: key.to_path_buf(),
            source,
        })?
        .ok_or_else(|| StartError::NoPem {
            path: key.to_path_buf(),
            what: "private key",
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(StartError::TlsProtocols)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(StartError::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

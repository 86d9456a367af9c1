//! Optional TLS (rustls with the ring provider) from PEM files.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;

use crate::error::StartError;

/// A TLS acceptor for a PEM certificate chain and private key.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(BufReader::new)
            .map_err(|source| StartError::File {
                path: p.to_path_buf(),
                source,
            })
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut open(cert)?)
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
    let key_der = rustls_pemfile::private_key(&mut open(key)?)
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

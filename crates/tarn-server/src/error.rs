//! The crate's errors: [`S3Error`], an S3-style answer (a status code plus an XML body
//! `<Error><Code>…</Code><Message>…</Message><Resource>…</Resource></Error>`), and
//! [`StartError`], why the server could not start.

use axum::body::Body;
use axum::http::{header, Response, StatusCode};

/// An error answer.
#[derive(Debug, Clone)]
pub(crate) struct S3Error {
    /// HTTP status.
    pub status: StatusCode,
    /// S3 error code, e.g. `AccessDenied`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Extra XML elements (already escaped), e.g. the list of missing artifacts.
    pub extra: String,
}

/// Escapes text for XML, and for HTML content and attribute values (the status page).
pub(crate) fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// The most bytes of a message or of the request's path an error answer repeats (the
/// path and some messages come from the request: an answer never grows with them).
pub(crate) const MAX_ECHO_BYTES: usize = 1024;

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub(crate) fn cut(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end]).into()
}

impl S3Error {
    /// A new error.
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
            extra: String::new(),
        }
    }

    /// 400 with a code.
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 403 `AccessDenied`.
    pub(crate) fn denied(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// 404 `NoSuchKey`.
    pub(crate) fn no_such_key() -> S3Error {
        S3Error::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }

    /// 500 `InternalError`.
    pub(crate) fn internal(e: impl std::fmt::Display) -> S3Error {
        tracing::error!("internal error: {e}");
        S3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    /// The XML answer (no body for HEAD).
    pub(crate) fn into_response(self, resource: &str, head: bool) -> Response<Body> {
        let body = if head {
            Body::empty()
        } else {
            Body::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource>{}</Error>\n",
                self.code,
                xml_escape(&cut(&self.message, MAX_ECHO_BYTES)),
                xml_escape(&cut(resource, MAX_ECHO_BYTES)),
                self.extra
            ))
        };
        Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/xml")
            .body(body)
            .expect("valid response")
    }
}

/// Why the server could not start (configuration, storage, TLS material, listener).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// A required setting is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// A file or directory could not be used.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The S3 backend could not be set up.
    #[error("s3 storage: {0}")]
    S3(#[source] std::io::Error),
    /// A PEM file holds no certificate or no private key.
    #[error("{}: no {what} found", path.display())]
    NoPem {
        /// The file.
        path: std::path::PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// rustls refused the protocol versions.
    #[error("{0}")]
    TlsProtocols(#[source] tokio_rustls::rustls::Error),
    /// rustls refused the certificate and key.
    #[error("TLS: {0}")]
    Tls(#[source] tokio_rustls::rustls::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The admin key file holds no `ID:SECRET`.
    #[error("{}: expected ID:SECRET", path.display())]
    KeyFile {
        /// The key file.
        path: std::path::PathBuf,
    },
    /// A file could not be written atomically.
    #[error(transparent)]
    Store(Box<tarn_store::StoreError>),
}

impl StartError {
    /// Whether another process already listens on the address (the operator picks another
    /// port, or port 0 for a free one).
    pub fn is_addr_in_use(&self) -> bool {
        matches!(self, StartError::Listen { source, .. }
            if source.kind() == std::io::ErrorKind::AddrInUse)
    }
}

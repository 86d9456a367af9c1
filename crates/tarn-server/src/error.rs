//! S3-style errors: a status code plus an XML body
//! `<Error><Code>…</Code><Message>…</Message><Resource>…</Resource></Error>`.

use axum::body::Body;
use axum::http::{header, Response, StatusCode};

/// An error answer.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// HTTP status.
    pub status: StatusCode,
    /// S3 error code, e.g. `AccessDenied`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Extra XML elements (already escaped), e.g. the list of missing artifacts.
    pub extra: String,
}

/// Escapes text for XML.
pub fn xml_escape(s: &str) -> String {
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

impl S3Error {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
            extra: String::new(),
        }
    }

    /// 400 with a code.
    pub fn bad(code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 403 `AccessDenied`.
    pub fn denied(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// 404 `NoSuchKey`.
    pub fn no_such_key() -> S3Error {
        S3Error::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }

    /// 500 `InternalError`.
    pub fn internal(e: impl std::fmt::Display) -> S3Error {
        tracing::error!("internal error: {e}");
        S3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    /// The XML answer (no body for HEAD).
    pub fn into_response(self, resource: &str, head: bool) -> Response<Body> {
        let body = if head {
            Body::empty()
        } else {
            Body::from(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource>{}</Error>\n",
                self.code,
                xml_escape(&self.message),
                xml_escape(resource),
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

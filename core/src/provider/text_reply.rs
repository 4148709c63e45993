//! Replies shared by the upstreams that take a plain-text acknowledgement (the seed-001 gateway,
//! QFPay, weidoufu), and the error of an API an upstream does not document.

use bytes::Bytes;
use http::{Response, StatusCode};

use super::{ProviderError, ProviderErrorKind};

/// `body` as `text/plain` with `status`.
pub(crate) fn text_response(status: StatusCode, body: &'static str) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

/// A failure reply: `body` with `status`, never a 2xx (which the upstream would take for
/// "received" and stop retrying).
pub(crate) fn text_failure(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let status = if status.is_success() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    text_response(status, body)
}

/// The error of a query or close an upstream documents no API for: the engine's status route
/// then answers from the store, and reconciliation leaves the order to the callback.
pub(crate) fn unsupported(message: String) -> ProviderError {
    ProviderError {
        kind: ProviderErrorKind::Local,
        upstream_code: Some("UNSUPPORTED".to_owned()),
        message,
        may_have_taken_effect: false,
    }
}

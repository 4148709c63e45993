//! JSON replies of the engine's own routes.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde::Serialize;

use crate::provider::ProviderError;

/// The error body of every engine route: `{"code": "UPPER_SNAKE", "message": "…"}`, plus the
/// upstream's code and message when an upstream failed, and the field when one was invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// A stable machine-readable code.
    pub code: String,
    /// A human explanation.
    pub message: String,
    /// The request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// The upstream's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_code: Option<String>,
    /// The upstream's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_message: Option<String>,
}

pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Bytes::from(bytes))
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Bytes> {
    json(
        status,
        &ErrorBody {
            code: code.to_owned(),
            message: message.into(),
            field: None,
            upstream_code: None,
            upstream_message: None,
        },
    )
}

/// A checkout policy's refusal, with the field at fault when it names one.
pub(crate) fn rejection(rejection: super::CheckoutRejection) -> Response<Bytes> {
    json(
        rejection.status,
        &ErrorBody {
            code: rejection.code,
            message: rejection.message,
            field: rejection.field,
            upstream_code: None,
            upstream_message: None,
        },
    )
}

pub(crate) fn field_error(error: &crate::fields::FieldError) -> Response<Bytes> {
    json(
        StatusCode::BAD_REQUEST,
        &ErrorBody {
            code: "INVALID_FIELD".to_owned(),
            message: error.to_string(),
            field: Some(error.field),
            upstream_code: None,
            upstream_message: None,
        },
    )
}

pub(crate) fn upstream_error(provider: &str, error: &ProviderError) -> Response<Bytes> {
    use crate::provider::ProviderErrorKind as Kind;
    let (status, code) = match error.kind {
        Kind::Rejected => (StatusCode::BAD_GATEWAY, "UPSTREAM_REJECTED"),
        Kind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
        Kind::Unavailable | Kind::Transport => (StatusCode::BAD_GATEWAY, "UPSTREAM_UNAVAILABLE"),
        Kind::BadResponse => (StatusCode::BAD_GATEWAY, "UPSTREAM_BAD_RESPONSE"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "UPSTREAM_ERROR"),
    };
    let message = match &error.upstream_code {
        Some(upstream) => format!(
            "{provider} refused the payment: {upstream}: {}",
            error.message
        ),
        None => format!("{provider} failed: {}", error.message),
    };
    json(
        status,
        &ErrorBody {
            code: code.to_owned(),
            message,
            field: None,
            upstream_code: error.upstream_code.clone(),
            upstream_message: Some(error.message.clone()),
        },
    )
}

pub(crate) fn store_unavailable() -> Response<Bytes> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "STORE_UNAVAILABLE",
        "the order store is unavailable; try again",
    )
}

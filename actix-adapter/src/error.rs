//! [`WxPayError`]: the errors of the routes and extractors, as actix-web responses.

use std::fmt;

use actix_web::http::StatusCode as ActixStatusCode;
use actix_web::{HttpResponse, ResponseError};
use bytes::Bytes;
use http::{StatusCode, header};
use wxpay_core::engine::{Engine, Route};
use wxpay_core::provider::{NotificationRejection, RejectionKind};

use crate::convert::{actix_status, to_actix_response};

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No [`Engine`] in `app_data`: neither [`configure`](crate::configure) nor
    /// `App::app_data(engine)` covers the handler (500 `WXPAY_ENGINE_MISSING`).
    EngineMissing,
    /// The body is larger than the route's limit (413; for notifications in the provider's
    /// failure shape).
    TooLarge,
    /// The body could not be read (400 `BODY_READ_FAILED`).
    BodyRead,
    /// The body did not arrive within the engine's body read timeout (408; for notifications
    /// in the provider's failure shape).
    TimedOut,
    /// The provider refused a notification: the reply is the provider's exact failure reply.
    Rejected(RejectionKind),
}

/// An error of the wxpay routes and extractors. As a [`ResponseError`] it answers with the
/// exact reply the engine or the provider gives for it; [`WxPayError::reply`] shows it.
///
/// `From<NotificationRejection>` lets a handler use `?` on [`Engine::verify_notification`].
pub struct WxPayError(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    reply: http::Response<Bytes>,
    rejection: Option<NotificationRejection>,
}

impl WxPayError {
    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The reply this error answers with (engine types: `http` 1.x).
    pub fn reply(&self) -> &http::Response<Bytes> {
        &self.0.reply
    }

    /// The provider's rejection, for [`ErrorKind::Rejected`] and notification bodies over the
    /// limit reported by the provider.
    pub fn rejection(&self) -> Option<&NotificationRejection> {
        self.0.rejection.as_ref()
    }

    /// The reply as an owned `http` 1.x response.
    pub fn into_reply(self) -> http::Response<Bytes> {
        self.0.reply
    }

    pub(crate) fn engine_missing() -> Self {
        Self(Box::new(Inner {
            kind: ErrorKind::EngineMissing,
            message: "no wxpay engine in app_data: mount wxpay_actix::configure(engine) or add \
                      App::app_data(engine)"
                .to_owned(),
            reply: json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "WXPAY_ENGINE_MISSING",
                "the payment engine is not mounted on this route",
            ),
            rejection: None,
        }))
    }

    /// 413 for `route` with the effective `limit` (the engine's own reply when the limit is
    /// the engine's).
    pub(crate) fn too_large(engine: &Engine, route: Route, limit: usize) -> Self {
        let message = format!("request body exceeds {limit} bytes");
        let reply = if limit == engine.body_limit(route) {
            engine.payload_too_large(route)
        } else if route == Route::Notify {
            engine
                .provider()
                .failure_reply(StatusCode::PAYLOAD_TOO_LARGE, &message)
        } else {
            json_error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", &message)
        };
        Self(Box::new(Inner {
            kind: ErrorKind::TooLarge,
            message,
            reply,
            rejection: None,
        }))
    }

    pub(crate) fn timed_out(engine: &Engine, route: Route) -> Self {
        Self(Box::new(Inner {
            kind: ErrorKind::TimedOut,
            message: "the request body did not arrive in time".to_owned(),
            reply: engine.body_read_timed_out(route),
            rejection: None,
        }))
    }

    pub(crate) fn body_read(error: &dyn fmt::Display) -> Self {
        Self(Box::new(Inner {
            kind: ErrorKind::BodyRead,
            message: format!("the request body could not be read: {error}"),
            reply: json_error(
                StatusCode::BAD_REQUEST,
                "BODY_READ_FAILED",
                "the request body could not be read",
            ),
            rejection: None,
        }))
    }
}

impl From<NotificationRejection> for WxPayError {
    fn from(rejection: NotificationRejection) -> Self {
        let kind = match rejection.kind {
            RejectionKind::TooLarge => ErrorKind::TooLarge,
            other => ErrorKind::Rejected(other),
        };
        Self(Box::new(Inner {
            kind,
            message: rejection.to_string(),
            reply: rejection.clone().into_response(),
            rejection: Some(rejection),
        }))
    }
}

impl fmt::Debug for WxPayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WxPayError")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("status", &self.0.reply.status())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for WxPayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for WxPayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .rejection
            .as_ref()
            .map(|r| r as &(dyn std::error::Error + 'static))
    }
}

impl ResponseError for WxPayError {
    fn status_code(&self) -> ActixStatusCode {
        actix_status(self.0.reply.status())
    }

    fn error_response(&self) -> HttpResponse {
        to_actix_response(&self.0.reply)
    }
}

/// A JSON error reply `{"code", "message"}`, as the engine's own.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> http::Response<Bytes> {
    let body = serde_json::json!({ "code": code, "message": message });
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

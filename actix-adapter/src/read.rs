//! Bounded reading of request bodies.

use actix_web::HttpRequest;
use actix_web::body::{BodyStream, to_bytes_limited};
use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_LENGTH;
use bytes::Bytes;
use wxpay_core::engine::{Engine, Route};

use crate::config::WxPayConfig;
use crate::error::WxPayError;

/// Whether the `Content-Length` header announces more than `limit` bytes.
fn announced_too_large(request: &HttpRequest, limit: usize) -> bool {
    request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX))
}

/// Reads the body of a request to `route` within the effective limit ([`WxPayConfig`] in
/// `app_data`, capped by the engine's): a `Content-Length` over it fails before a byte is
/// read, a body streaming past it fails as soon as it does, a body not complete within
/// [`Engine::body_read_timeout`] fails then (408).
pub(crate) async fn read_body(
    request: &HttpRequest,
    engine: &Engine,
    route: Route,
    payload: Payload,
) -> Result<Bytes, WxPayError> {
    let limit = WxPayConfig::limit_for(request, engine, route);
    if announced_too_large(request, limit) {
        return Err(WxPayError::too_large(engine, route, limit));
    }
    let read = tokio::time::timeout(
        engine.body_read_timeout(),
        to_bytes_limited(BodyStream::new(payload), limit),
    )
    .await
    .map_err(|_| WxPayError::timed_out(engine, route))?;
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(WxPayError::body_read(&error)),
        Err(_) => Err(WxPayError::too_large(engine, route, limit)),
    }
}

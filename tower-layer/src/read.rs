//! Bounded reading of the body of the engine's routes.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use wxpay_core::engine::{Engine, Route};

/// Why the body of a request to one of the engine's routes could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyReadError {
    /// The body is larger than the route's limit (by `Content-Length` or as it streamed in).
    TooLarge,
    /// The body stream failed (the client went away, a malformed chunk).
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// The body did not arrive within [`Engine::body_read_timeout`] (a slow or stalled client).
    TimedOut,
}

impl fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("the request body is larger than the route's limit"),
            Self::Failed(e) => write!(f, "the request body could not be read: {e}"),
            Self::TimedOut => f.write_str("the request body did not arrive in time"),
        }
    }
}

impl std::error::Error for BodyReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::TooLarge | Self::TimedOut => None,
            Self::Failed(e) => Some(e.as_ref()),
        }
    }
}

impl BodyReadError {
    /// The reply: the engine's `413` for [`BodyReadError::TooLarge`], its `408` for
    /// [`BodyReadError::TimedOut`], a JSON `400` `{"code":"BODY_READ_FAILED",…}` otherwise.
    pub fn into_response(self, engine: &Engine, route: Route) -> Response<Bytes> {
        match self {
            Self::TooLarge => engine.payload_too_large(route),
            Self::TimedOut => engine.body_read_timed_out(route),
            Self::Failed(_) => json_error(
                StatusCode::BAD_REQUEST,
                "BODY_READ_FAILED",
                "the request body could not be read",
            ),
        }
    }
}

/// Whether the `Content-Length` header announces more than `limit` bytes.
fn announced_too_large(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX))
}

/// Reads the whole body of a request to `route`, at most [`Engine::body_limit`] bytes.
///
/// A `Content-Length` over the limit fails at once, before any byte is read; a body that
/// streams past the limit fails as soon as it does; a body not complete within
/// [`Engine::body_read_timeout`] fails then.
pub async fn read_route_body<B>(
    engine: &Engine,
    route: Route,
    headers: &HeaderMap,
    body: B,
) -> Result<Bytes, BodyReadError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = engine.body_limit(route);
    if announced_too_large(headers, limit) {
        return Err(BodyReadError::TooLarge);
    }
    let collected = tokio::time::timeout(
        engine.body_read_timeout(),
        Limited::new(body, limit).collect(),
    )
    .await
    .map_err(|_| BodyReadError::TimedOut)?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(BodyReadError::TooLarge),
        Err(e) => Err(BodyReadError::Failed(e)),
    }
}

/// A JSON error reply `{"code", "message"}`, as the engine's own.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "code": code, "message": message });
    let mut response = Response::new(Bytes::from(body.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_over_the_limit_is_announced_too_large() {
        let mut headers = HeaderMap::new();
        assert!(!announced_too_large(&headers, 10));
        headers.insert(header::CONTENT_LENGTH, "10".parse().unwrap());
        assert!(!announced_too_large(&headers, 10));
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        assert!(announced_too_large(&headers, 10));
        headers.insert(
            header::CONTENT_LENGTH,
            "99999999999999999999999".parse().unwrap(),
        );
        // Unparsable lengths are left to the streaming limit.
        assert!(!announced_too_large(&headers, 10));
    }
}

//! One bounded, deadline-limited GET of a JSON answer, for the identity upstreams.

use std::time::Duration;

use serde_json::Value;

use crate::transport::{self, TransportError};

use super::OpenidError;

const USER_AGENT: &str = concat!("wxpay-rs/", env!("CARGO_PKG_VERSION"));

/// An HTTP client for identity calls: no redirects followed (an API answer is never a
/// redirect), a connect timeout; the total deadline is applied per call.
pub(super) fn client(timeout: Duration) -> Result<reqwest::Client, OpenidError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .build()
        .map_err(|e| OpenidError::Config(format!("cannot build the HTTP client: {e}")))
}

/// A base URL: http(s), no query or fragment, without its trailing `/`.
pub(super) fn base_url(url: &str, what: &str) -> Result<String, OpenidError> {
    let trimmed = url.trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|e| OpenidError::Config(format!("invalid {what} {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(OpenidError::Config(format!(
            "{what} must be http(s) without a query: {url:?}"
        )));
    }
    Ok(trimmed.to_owned())
}

/// GETs `url` (with `headers`) and parses its body as a JSON object, within `timeout` and
/// `limit` bytes. Secrets travel in the query: errors never include the URL.
pub(super) async fn get_json(
    http: &reqwest::Client,
    url: reqwest::Url,
    headers: &[(&'static str, String)],
    timeout: Duration,
    limit: usize,
) -> Result<serde_json::Map<String, Value>, OpenidError> {
    let mut request = http
        .get(url)
        .header(http::header::ACCEPT, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let answer = tokio::time::timeout(timeout, transport::exchange(request, limit))
        .await
        .map_err(|_| OpenidError::Timeout)?
        .map_err(|error| match error {
            TransportError::Failed { source, .. } if source.is_timeout() => OpenidError::Timeout,
            TransportError::Failed { source, .. } => {
                OpenidError::Transport(source.without_url().to_string())
            }
            TransportError::TooLarge(limit) => {
                OpenidError::BadResponse(format!("the answer exceeds {limit} bytes"))
            }
        })?;
    if !answer.status.is_success() {
        return Err(OpenidError::BadResponse(format!(
            "HTTP {}",
            answer.status.as_u16()
        )));
    }
    // WeChat answers these calls with JSON under `text/plain` at times: the type is not checked.
    match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(OpenidError::BadResponse(
            "the answer is not a JSON object".to_owned(),
        )),
    }
}

/// A string field of an answer, or a bad-response error naming it.
pub(super) fn text_field(
    fields: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<String, OpenidError> {
    match fields.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Err(OpenidError::BadResponse(format!("no {name} in the answer"))),
    }
}

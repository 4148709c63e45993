//! Plumbing shared by the upstream HTTP clients (v3, v2, gateway, QFPay, weidoufu): their base
//! URL and HTTP client, bounded response bodies, and what a failed send says about whether the
//! upstream may have acted on the request.

use bytes::Bytes;

/// The `User-Agent` of every upstream call.
const USER_AGENT: &str = concat!("wxpay-rs/", env!("CARGO_PKG_VERSION"));

/// `value` without its trailing `/`, if it is an http(s) URL without a query or fragment; the
/// error names `setting` (the variable or field the URL came from).
pub(crate) fn base_url(value: &str, setting: &str) -> Result<String, String> {
    let base = value.trim_end_matches('/');
    let parsed =
        reqwest::Url::parse(base).map_err(|e| format!("invalid {setting} {base:?}: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(format!(
            "{setting} must be http(s) without a query: {base:?}"
        ));
    }
    Ok(base.to_owned())
}

/// `http` when the app gave one, else a client with our `User-Agent`.
pub(crate) fn http_client(http: Option<reqwest::Client>) -> Result<reqwest::Client, String> {
    match http {
        Some(http) => Ok(http),
        None => client_builder()
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}")),
    }
}

/// A client builder with our `User-Agent`, for clients that need more (a TLS identity).
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    // An upstream never redirects a signed call; following one would send it (and, for v3,
    // its Authorization) somewhere nobody checked.
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
}

/// Why an exchange with an upstream failed below the protocol.
pub(crate) enum TransportError {
    /// Sending, or reading the answer, failed.
    Failed {
        source: reqwest::Error,
        /// Whether the upstream may have received the request.
        request_may_have_been_sent: bool,
    },
    /// The answer is longer than the limit (announced or streamed).
    TooLarge(usize),
}

/// An upstream's answer, its body read within the limit.
pub(crate) struct Answer {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

/// Sends `request` and reads the answer's body up to `limit` bytes.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<Answer, TransportError> {
    let mut response = request.send().await.map_err(|source| {
        let request_may_have_been_sent = may_have_been_sent(&source);
        TransportError::Failed {
            source,
            request_may_have_been_sent,
        }
    })?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let body = read_limited(response, limit).await?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Whether a request whose send failed with `error` may have reached the upstream: anything but
/// a failure to connect or to build the request. A write that may have arrived must be queried,
/// never re-created with other parameters.
fn may_have_been_sent(error: &reqwest::Error) -> bool {
    !(error.is_connect() || error.is_builder() || refused_our_certificate(error))
}

/// Whether the server ended the TLS handshake, refusing our client certificate (API v2's
/// certificate calls). In TLS 1.3 the client may already have written its request when that
/// alert arrives, but a server reads no application data before it has checked the client's
/// certificate, so such a request was never acted on.
fn refused_our_certificate(error: &reqwest::Error) -> bool {
    /// The alerts a server sends when it refuses the client's certificate, and the
    /// handshake-only ones (a handshake signature did not verify, nothing agreed).
    const REFUSALS: [&str; 10] = [
        "BadCertificate",
        "UnsupportedCertificate",
        "CertificateRevoked",
        "CertificateExpired",
        "CertificateUnknown",
        "UnknownCA",
        "CertificateRequired",
        "AccessDenied",
        "DecryptError",
        "HandshakeFailure",
    ];
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        let alert = match current.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::AlertReceived(alert)) => Some(format!("{alert:?}")),
            // tokio-rustls hands the alert up as an I/O error carrying rustls' message.
            _ => current
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| {
                    inner
                        .to_string()
                        .strip_prefix("received fatal alert: ")
                        .map(str::to_owned)
                }),
        };
        if let Some(alert) = alert {
            return REFUSALS.contains(&alert.as_str());
        }
        next = current.source();
    }
    false
}

/// Reads a body up to `limit` bytes, refusing anything larger without buffering it.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, TransportError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(TransportError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| TransportError::Failed {
            source,
            request_may_have_been_sent: true,
        })?
    {
        if body.len() + chunk.len() > limit {
            return Err(TransportError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

//! Plumbing shared by the upstream HTTP clients (v3, v2, gateway): bounded response bodies, and
//! what a failed send says about whether the upstream may have acted on the request.

use bytes::Bytes;

/// Why a response body could not be read.
pub(crate) enum BodyError {
    /// It is longer than the limit (announced or streamed).
    TooLarge,
    /// The connection failed while reading; the request was sent.
    Transport(reqwest::Error),
}

/// Whether a request whose send failed with `error` may have reached the upstream: anything but
/// a failure to connect or to build the request. A write that may have arrived must be queried,
/// never re-created with other parameters.
pub(crate) fn may_have_been_sent(error: &reqwest::Error) -> bool {
    !(error.is_connect() || error.is_builder())
}

/// Reads a body up to `limit` bytes, refusing anything larger without buffering it.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

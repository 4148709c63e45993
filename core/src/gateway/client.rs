//! The gateway's precreate call (seed 001): `POST {gateway}/open/trade/wx/jsapi/precreate`
//! with a JSON body, answered with ready JSAPI parameters or a Spring-style error
//! `{timestamp, status, error, message, path}` — which the seed shows with HTTP 200.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::fields::NotifyUrl;
use crate::provider::ClientParams;
use crate::transport;

use super::sign::AppKey;

/// The path of precreate under the gateway URL (seed 001).
pub const PRECREATE_PATH: &str = "/open/trade/wx/jsapi/precreate";

/// The default total deadline of one call (within the 5 s a WeChat page waits for precreate).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// The largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// What the gateway provider is configured with (the env contract).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `WXPAY_GATEWAY_URL`: the gateway's base URL (precreate is under it).
    pub url: String,
    /// `WXPAY_GATEWAY_BIZ_ID`: the `biz_id` the gateway assigned to this app.
    pub biz_id: String,
    /// `WXPAY_GATEWAY_APP_KEY`: the key paired with `biz_id`, which signs callbacks.
    pub app_key: AppKey,
    /// `WXPAY_NOTIFY_URL`: where the gateway posts callbacks.
    pub notify_url: NotifyUrl,
    /// The `ip` field: "调用方应用所在服务器的ip" (this server's IP; required by seed 001).
    pub ip: IpAddr,
}

/// A failed gateway call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The request could not be sent or the answer not received.
    #[error("transport error talking to the gateway: {source}")]
    Transport {
        /// What failed.
        #[source]
        source: reqwest::Error,
        /// Whether the gateway may have received the request.
        request_may_have_been_sent: bool,
    },
    /// No answer within the deadline.
    #[error("no answer from the gateway within {0:?}")]
    Deadline(Duration),
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    #[error("gateway response exceeds {0} bytes")]
    ResponseTooLarge(usize),
    /// The gateway answered with its error shape (whatever the HTTP status).
    #[error("gateway error {status}: {message}")]
    Gateway {
        /// The HTTP status of the answer.
        http_status: StatusCode,
        /// `status` from the body (`500` in the seed's example), or the HTTP status.
        status: u16,
        /// `error` (`Internal Server Error`).
        error: String,
        /// `message`: the human explanation (e.g. `…无效的openid`).
        message: String,
    },
    /// A non-2xx answer without the error shape.
    #[error("the gateway answered HTTP {0}")]
    Http(StatusCode),
    /// An answer that is neither parameters nor the error shape.
    #[error("unexpected answer from the gateway: {0}")]
    Malformed(String),
    /// The request could not be built.
    #[error("{0}")]
    Local(String),
}

impl GatewayError {
    /// Whether the precreate may have created the order upstream anyway.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Transport {
                request_may_have_been_sent,
                ..
            } => *request_may_have_been_sent,
            Self::Gateway { status, .. } => *status >= 500,
            Self::Http(status) => status.is_server_error(),
            Self::Deadline(_) | Self::ResponseTooLarge(_) | Self::Malformed(_) => true,
            Self::Local(_) => false,
        }
    }
}

/// The precreate body, with seed 001's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrecreateRequest {
    /// `ucid` (optional): the app's id of the person paying; returned as `uid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucid: Option<String>,
    /// `ip` (required): this server's IP.
    pub ip: String,
    /// `openid` (required).
    pub openid: String,
    /// `biz_order_id` (required): our `out_trade_no`, unique in the app.
    pub biz_order_id: String,
    /// `pay_amount` (required): fen.
    pub pay_amount: u64,
    /// `title` (required): what the payer sees.
    pub title: String,
    /// `notify_url` (required).
    pub notify_url: String,
    /// `biz_id` (required).
    pub biz_id: String,
    /// `extra` (optional): passed through to the callback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// The gateway client. Cheap to clone.
#[derive(Clone)]
pub struct GatewayClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: GatewayConfig,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayClient")
            .field("config", &self.inner.config)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl GatewayClient {
    /// A client with the default deadline and system clock.
    pub fn new(config: GatewayConfig) -> Result<Self, GatewayError> {
        Self::with_options(config, DEFAULT_TIMEOUT, crate::clock::system(), None)
    }

    /// A client with a deadline, a clock (tests) and optionally a preconfigured reqwest client.
    pub fn with_options(
        mut config: GatewayConfig,
        timeout: Duration,
        clock: Arc<dyn Clock>,
        http: Option<reqwest::Client>,
    ) -> Result<Self, GatewayError> {
        let url =
            transport::base_url(&config.url, "WXPAY_GATEWAY_URL").map_err(GatewayError::Local)?;
        if config.biz_id.trim().is_empty() {
            return Err(GatewayError::Local(
                "WXPAY_GATEWAY_BIZ_ID must not be empty".into(),
            ));
        }
        config.url = url;
        let http = transport::http_client(http).map_err(GatewayError::Local)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                timeout,
                clock,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// `POST {url}/open/trade/wx/jsapi/precreate`: the JSAPI parameters the gateway signed.
    pub async fn precreate(
        &self,
        request: &PrecreateRequest,
    ) -> Result<ClientParams, GatewayError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| GatewayError::Local(format!("cannot serialise request: {e}")))?;
        let deadline = self.inner.timeout;
        let (status, bytes) = tokio::time::timeout(deadline, self.post(body))
            .await
            .unwrap_or(Err(GatewayError::Deadline(deadline)))?;
        interpret(status, &bytes)
    }

    async fn post(&self, body: Vec<u8>) -> Result<(StatusCode, bytes::Bytes), GatewayError> {
        let url = format!("{}{}", self.inner.config.url, PRECREATE_PATH);
        let request = self
            .inner
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(body);
        let answer = transport::exchange(request, MAX_RESPONSE_BYTES)
            .await
            .map_err(transport_error)?;
        Ok((answer.status, answer.body))
    }
}

fn field(object: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a precreate answer: parameters on success, the error shape as
/// [`GatewayError::Gateway`] whatever the HTTP status (seed 001 shows it with 200).
pub fn interpret(status: StatusCode, body: &[u8]) -> Result<ClientParams, GatewayError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let Some(Value::Object(object)) = parsed else {
        return Err(if status.is_success() {
            GatewayError::Malformed("not a JSON object".into())
        } else {
            GatewayError::Http(status)
        });
    };
    if object.contains_key("paySign") || object.contains_key("package") {
        if !status.is_success() {
            return Err(GatewayError::Http(status));
        }
        let get = |key: &str| {
            field(&object, key)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| GatewayError::Malformed(format!("parameters without {key}")))
        };
        return Ok(ClientParams {
            app_id: get("appId")?,
            time_stamp: get("timeStamp")?,
            nonce_str: get("nonceStr")?,
            package: get("package")?,
            sign_type: get("signType")?,
            pay_sign: get("paySign")?,
        });
    }
    if object.contains_key("message") || object.contains_key("error") {
        let body_status = object
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(status.as_u16());
        let error = field(&object, "error").unwrap_or_default();
        let message = field(&object, "message")
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| error.clone());
        return Err(GatewayError::Gateway {
            http_status: status,
            status: body_status,
            error,
            message,
        });
    }
    Err(if status.is_success() {
        GatewayError::Malformed("neither JSAPI parameters nor an error".into())
    } else {
        GatewayError::Http(status)
    })
}

/// Maps a transport failure onto this client's errors.
fn transport_error(error: transport::TransportError) -> GatewayError {
    match error {
        transport::TransportError::Failed {
            source,
            request_may_have_been_sent,
        } => GatewayError::Transport {
            source,
            request_may_have_been_sent,
        },
        transport::TransportError::TooLarge(limit) => GatewayError::ResponseTooLarge(limit),
    }
}

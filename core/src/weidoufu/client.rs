//! weidoufu's mini-program payment call (seed 004): `POST {base}/pay/miniapp`, signed with the
//! `secret_key`, answered with `{code, message, data: {mch_trade_no, out_order_no, jsapi}}`.
//!
//! The request is a JSON object (`Content-Type: application/json`), as the public clients of the
//! live service send it (seed 004 names no content type): the integers `pay_type`,
//! `total_fee` and `refund_fee` as JSON numbers, the rest as strings, signed over their decimal
//! and plain text ([`super::sign`]). Fields are checked here against seed 004's table before
//! anything is sent, so a bad order never costs a round trip.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::fields::NotifyUrl;
use crate::provider::{AlipayParams, ClientParams, PaymentParams};
use crate::transport;

use super::sign::{Params, SecretKey, sign_params};

/// The path of the mini-program payment under the base URL (seed 004:
/// `https://open.weidoufu.com/pay/miniapp`).
pub const MINIAPP_PATH: &str = "/pay/miniapp";

/// The path of a refund under the base URL. Seed 004 documents no refund; the path and the
/// fields (`access_key`, `out_order_no`, `refund_fee` in fen, `sign`; `code` `1` = success) are
/// those of the one public weidoufu client that refunds (a JSON post). **Our choice**: it is
/// signed like [`MINIAPP_PATH`]'s (that client's own refund signature leaves the secret out,
/// which nothing shows to work), so the two calls follow one wire format.
pub const REFUND_PATH: &str = "/pay/refund";

/// weidoufu's production base URL (seed 004).
pub const PRODUCTION_URL: &str = "https://open.weidoufu.com";

/// The default total deadline of one call (within the 5 s a mini program waits for precreate).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// The largest response body read: an answer is a few hundred bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Shortest `out_order_no` (seed 004: "字母、数字,至少 18 位长度").
pub const OUT_ORDER_NO_MIN_LEN: usize = 18;

/// Longest `out_order_no` (seed 004: `string(32)`).
pub const OUT_ORDER_NO_MAX_LEN: usize = 32;

/// Longest `body` sent, in characters (seed 004: `string(32)`).
///
/// The order's description may be longer (WeChat allows 127 characters), and it is display text
/// only, so a longer one is **cut to its first 32 characters** (on a character boundary, never
/// inside a UTF-8 sequence) rather than refused: our choice.
pub const BODY_MAX_CHARS: usize = 32;

/// Longest `attach`, in characters (seed 004: `string(128)`); a longer one is refused.
pub const ATTACH_MAX_CHARS: usize = 128;

/// Longest `openid` / `buyer_id`, in characters (seed 004: `string(32)`; WeChat openids are 28,
/// Alipay buyer ids 16).
pub const PAYER_ID_MAX_CHARS: usize = 32;

/// Longest `access_key` (seed 004: `string(32)`).
pub const ACCESS_KEY_MAX_LEN: usize = 32;

/// Longest `notify_url` (seed 004: `string(128)`).
pub const NOTIFY_URL_MAX_LEN: usize = 128;

/// Largest `total_fee` in fen (seed 004: `int(9)`, nine digits).
pub const TOTAL_FEE_MAX: u64 = 999_999_999;

/// Which wallet pays (seed 004's `pay_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PayType {
    /// `1`: WeChat; the payer is an `openid`, the answer WeChat JSAPI parameters.
    #[default]
    Wechat = 1,
    /// `2`: Alipay; the payer is a `buyer_id`, the answer an Alipay `trade_no`.
    Alipay = 2,
}

impl PayType {
    /// The wire value: `1` or `2`.
    pub fn code(self) -> u8 {
        match self {
            PayType::Wechat => 1,
            PayType::Alipay => 2,
        }
    }

    /// The pay type of a wire value.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "1" => Some(PayType::Wechat),
            "2" => Some(PayType::Alipay),
            _ => None,
        }
    }

    /// The name of the payer field: `openid` (WeChat) or `buyer_id` (Alipay).
    pub fn payer_field(self) -> &'static str {
        match self {
            PayType::Wechat => "openid",
            PayType::Alipay => "buyer_id",
        }
    }
}

/// A pay type that is neither WeChat nor Alipay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown weidoufu pay type {0:?} (expected wechat or alipay)")]
pub struct UnknownPayType(pub String);

impl FromStr for PayType {
    type Err = UnknownPayType;

    /// `wechat` or `alipay` (ASCII case-insensitive, for `WXPAY_WEIDOUFU_PAY_TYPE`), or the wire
    /// values `1` and `2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("wechat") || s == "1" {
            Ok(PayType::Wechat)
        } else if s.eq_ignore_ascii_case("alipay") || s == "2" {
            Ok(PayType::Alipay)
        } else {
            Err(UnknownPayType(s.to_owned()))
        }
    }
}

/// What a weidoufu application is configured with (the `WXPAY_WEIDOUFU_*` variables).
#[derive(Debug, Clone)]
pub struct WeidoufuConfig {
    /// `WXPAY_WEIDOUFU_URL`: the base URL ([`PRODUCTION_URL`]; http(s), no query; a trailing `/`
    /// is removed).
    pub base_url: String,
    /// `WXPAY_WEIDOUFU_ACCESS_KEY`: the application's AK, sent as `access_key`.
    pub access_key: String,
    /// `WXPAY_WEIDOUFU_SECRET_KEY`: the SK, which signs requests and callbacks.
    pub secret_key: SecretKey,
    /// `WXPAY_NOTIFY_URL`: where weidoufu posts payment callbacks (at most 128 bytes).
    pub notify_url: NotifyUrl,
    /// `WXPAY_WEIDOUFU_PAY_TYPE`: the wallet the provider collects with (default WeChat).
    pub pay_type: PayType,
}

impl WeidoufuConfig {
    /// A configuration collecting through WeChat.
    pub fn new(
        base_url: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: SecretKey,
        notify_url: NotifyUrl,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            access_key: access_key.into(),
            secret_key,
            notify_url,
            pay_type: PayType::Wechat,
        }
    }
}

/// One mini-program payment to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniappPayRequest {
    /// `out_order_no`: the merchant's order number, 18..=32 ASCII letters and digits.
    pub out_order_no: String,
    /// `body`: what the payer sees; cut to [`BODY_MAX_CHARS`] characters.
    pub body: String,
    /// `total_fee`: fen, 1..=[`TOTAL_FEE_MAX`].
    pub total_fee: u64,
    /// `pay_type`: which wallet pays.
    pub pay_type: PayType,
    /// The payer: sent as `openid` (WeChat) or `buyer_id` (Alipay), at most
    /// [`PAYER_ID_MAX_CHARS`] characters.
    pub payer_id: String,
    /// `attach`: returned as is in the callback, at most [`ATTACH_MAX_CHARS`] characters.
    pub attach: Option<String>,
}

/// A payment weidoufu created (`data` of a `code: 1` answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniappPayment {
    /// `mch_trade_no`: weidoufu's order number, reported again in the callback.
    pub mch_trade_no: String,
    /// `out_order_no`: ours, echoed.
    pub out_order_no: String,
    /// `jsapi`: WeChat's JSAPI parameters (`pay_type` 1) or Alipay's `trade_no` (`pay_type` 2).
    pub jsapi: PaymentParams,
}

impl MiniappPayment {
    /// The upstream reference of the payment: the WeChat `prepay_id` inside `package`, or the
    /// Alipay `trade_no`.
    pub fn prepay_id(&self) -> &str {
        match &self.jsapi {
            PaymentParams::Wechat(params) => params
                .package
                .strip_prefix("prepay_id=")
                .unwrap_or(&params.package),
            PaymentParams::Alipay(params) => &params.trade_no,
        }
    }
}

/// A refund of a paid order. weidoufu numbers no refund: the request names the order and the
/// amount only, so a repeat cannot be told from a second refund upstream — never resend one
/// whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// `out_order_no` of the paid order.
    pub out_order_no: String,
    /// `refund_fee`: fen, 1..=[`TOTAL_FEE_MAX`].
    pub refund_fee: u64,
}

/// A refund weidoufu took (`code: 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct RefundAnswer {
    /// weidoufu's number of the refund, when the answer carries one (`data.refund_no`).
    pub refund_no: Option<String>,
    /// The whole answer.
    pub raw: Value,
}

/// A failed weidoufu call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeidoufuError {
    /// The request could not be sent or the answer not received.
    #[error("transport error talking to weidoufu: {source}")]
    Transport {
        /// What failed.
        #[source]
        source: reqwest::Error,
        /// Whether weidoufu may have received the request.
        request_may_have_been_sent: bool,
    },
    /// No answer within the deadline.
    #[error("no answer from weidoufu within {0:?}")]
    Deadline(Duration),
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    #[error("weidoufu response exceeds {0} bytes")]
    ResponseTooLarge(usize),
    /// weidoufu answered `code: 0` (e.g. `签名错误`, `订单号重复`).
    #[error("weidoufu refused the request: {message}")]
    Rejected {
        /// The HTTP status of the answer.
        http_status: StatusCode,
        /// `message`: weidoufu's explanation.
        message: String,
        /// `data.mch_trade_no`, when the failure carries one.
        mch_trade_no: Option<String>,
    },
    /// A non-2xx answer without weidoufu's `code: 0` envelope (or any 5xx).
    #[error("weidoufu answered HTTP {0}")]
    Http(StatusCode),
    /// An answer that is neither a payment nor a refusal.
    #[error("unexpected answer from weidoufu: {0}")]
    Malformed(String),
    /// The request breaks one of seed 004's field rules; nothing was sent.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The wire name of the field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The client could not be built or the request not encoded.
    #[error("{0}")]
    Local(String),
}

impl WeidoufuError {
    /// Whether the payment may have been created upstream anyway (then retry with identical
    /// parameters, which weidoufu answers with the same `mch_trade_no`; never change them).
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Transport {
                request_may_have_been_sent,
                ..
            } => *request_may_have_been_sent,
            Self::Http(status) => status.is_server_error(),
            Self::Deadline(_) | Self::ResponseTooLarge(_) | Self::Malformed(_) => true,
            Self::Rejected { .. } | Self::InvalidRequest { .. } | Self::Local(_) => false,
        }
    }
}

/// Builds a [`WeidoufuClient`].
#[derive(Debug)]
pub struct WeidoufuClientBuilder {
    config: WeidoufuConfig,
    timeout: Duration,
    clock: Option<Arc<dyn Clock>>,
    http: Option<reqwest::Client>,
}

impl WeidoufuClientBuilder {
    /// Sets the total deadline of one call (sending and reading the answer).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses a preconfigured reqwest client.
    #[must_use]
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client, checking the configuration against seed 004's limits.
    pub fn build(mut self) -> Result<WeidoufuClient, WeidoufuError> {
        let url = transport::base_url(&self.config.base_url, "WXPAY_WEIDOUFU_URL")
            .map_err(WeidoufuError::Local)?;
        let access_key = &self.config.access_key;
        if access_key.is_empty()
            || access_key.len() > ACCESS_KEY_MAX_LEN
            || !access_key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(WeidoufuError::Local(format!(
                "WXPAY_WEIDOUFU_ACCESS_KEY must be 1 to {ACCESS_KEY_MAX_LEN} printable ASCII characters"
            )));
        }
        if self.config.notify_url.as_str().len() > NOTIFY_URL_MAX_LEN {
            return Err(WeidoufuError::Local(format!(
                "the notify_url must be at most {NOTIFY_URL_MAX_LEN} bytes for weidoufu"
            )));
        }
        self.config.base_url = url;
        let http = transport::http_client(self.http).map_err(WeidoufuError::Local)?;
        Ok(WeidoufuClient {
            inner: Arc::new(Inner {
                http,
                config: self.config,
                timeout: self.timeout,
                clock: self.clock.unwrap_or_else(crate::clock::system),
            }),
        })
    }
}

/// The weidoufu client. Cheap to clone.
#[derive(Clone)]
pub struct WeidoufuClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: WeidoufuConfig,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for WeidoufuClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeidoufuClient")
            .field("config", &self.inner.config)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl WeidoufuClient {
    /// Starts building a client.
    pub fn builder(config: WeidoufuConfig) -> WeidoufuClientBuilder {
        WeidoufuClientBuilder {
            config,
            timeout: DEFAULT_TIMEOUT,
            clock: None,
            http: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WeidoufuConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The signed parameters [`Self::pay`] posts for `request`, after seed 004's field checks
    /// (`body` cut to [`BODY_MAX_CHARS`] characters).
    pub fn miniapp_params(&self, request: &MiniappPayRequest) -> Result<Params, WeidoufuError> {
        check_out_order_no(&request.out_order_no).map_err(|reason| {
            WeidoufuError::InvalidRequest {
                field: "out_order_no",
                reason,
            }
        })?;
        let body = truncate_chars(&request.body, BODY_MAX_CHARS);
        if body.trim().is_empty() || body.chars().any(char::is_control) {
            return Err(invalid(
                "body",
                "must be non-empty text without control characters",
            ));
        }
        if !(1..=TOTAL_FEE_MAX).contains(&request.total_fee) {
            return Err(invalid(
                "total_fee",
                format!(
                    "must be 1 to {TOTAL_FEE_MAX} fen, got {}",
                    request.total_fee
                ),
            ));
        }
        let payer_field = request.pay_type.payer_field();
        let payer_chars = request.payer_id.chars().count();
        if request.payer_id.trim().is_empty() || payer_chars > PAYER_ID_MAX_CHARS {
            return Err(invalid(
                payer_field,
                format!("must be 1 to {PAYER_ID_MAX_CHARS} characters, got {payer_chars}"),
            ));
        }
        let config = &self.inner.config;
        let mut params = Params::new();
        params.insert("access_key".into(), config.access_key.clone());
        params.insert("body".into(), body.to_owned());
        params.insert("out_order_no".into(), request.out_order_no.clone());
        params.insert("pay_type".into(), request.pay_type.code().to_string());
        params.insert("total_fee".into(), request.total_fee.to_string());
        params.insert(payer_field.into(), request.payer_id.clone());
        params.insert("notify_url".into(), config.notify_url.as_str().to_owned());
        if let Some(attach) = request.attach.as_deref().filter(|a| !a.is_empty()) {
            let chars = attach.chars().count();
            if chars > ATTACH_MAX_CHARS {
                return Err(invalid(
                    "attach",
                    format!("must be at most {ATTACH_MAX_CHARS} characters, got {chars}"),
                ));
            }
            params.insert("attach".into(), attach.to_owned());
        }
        let signature = sign_params(&params, &config.secret_key);
        params.insert("sign".into(), signature);
        Ok(params)
    }

    /// `POST {base}/pay/miniapp`: creates the payment and returns what the mini program pays
    /// with. Idempotent upstream for identical parameters (same `mch_trade_no`).
    pub async fn pay(&self, request: &MiniappPayRequest) -> Result<MiniappPayment, WeidoufuError> {
        let params = self.miniapp_params(request)?;
        let (status, bytes) = self.call(MINIAPP_PATH, &params).await?;
        interpret(status, &bytes, request.pay_type, &request.out_order_no)
    }

    /// The signed parameters [`Self::refund`] posts.
    pub fn refund_params(&self, request: &RefundRequest) -> Result<Params, WeidoufuError> {
        check_out_order_no(&request.out_order_no).map_err(|reason| {
            WeidoufuError::InvalidRequest {
                field: "out_order_no",
                reason,
            }
        })?;
        if !(1..=TOTAL_FEE_MAX).contains(&request.refund_fee) {
            return Err(invalid(
                "refund_fee",
                format!(
                    "must be 1 to {TOTAL_FEE_MAX} fen, got {}",
                    request.refund_fee
                ),
            ));
        }
        let config = &self.inner.config;
        let mut params = Params::new();
        params.insert("access_key".into(), config.access_key.clone());
        params.insert("out_order_no".into(), request.out_order_no.clone());
        params.insert("refund_fee".into(), request.refund_fee.to_string());
        let signature = sign_params(&params, &config.secret_key);
        params.insert("sign".into(), signature);
        Ok(params)
    }

    /// `POST {base}/pay/refund`: refunds `refund_fee` of the paid order. `code: 0` is
    /// [`WeidoufuError::Rejected`]; a 5xx, a timeout or a lost answer may have refunded.
    pub async fn refund(&self, request: &RefundRequest) -> Result<RefundAnswer, WeidoufuError> {
        let params = self.refund_params(request)?;
        let (status, bytes) = self.call(REFUND_PATH, &params).await?;
        interpret_refund(status, &bytes, &request.out_order_no)
    }

    /// Posts the signed `params` to `path` as JSON, within the deadline.
    async fn call(
        &self,
        path: &str,
        params: &Params,
    ) -> Result<(StatusCode, bytes::Bytes), WeidoufuError> {
        let body = json_body(params).to_string();
        let deadline = self.inner.timeout;
        tokio::time::timeout(deadline, self.post(path, body))
            .await
            .unwrap_or(Err(WeidoufuError::Deadline(deadline)))
    }

    async fn post(
        &self,
        path: &str,
        body: String,
    ) -> Result<(StatusCode, bytes::Bytes), WeidoufuError> {
        let url = format!("{}{}", self.inner.config.base_url, path);
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

/// The fields weidoufu types as integers, sent as JSON numbers.
const INTEGER_FIELDS: [&str; 3] = ["pay_type", "total_fee", "refund_fee"];

/// The signed `params` as the JSON object posted: integers as numbers, the rest as strings.
pub fn json_body(params: &Params) -> Value {
    let object = params
        .iter()
        .map(|(name, value)| {
            let number = INTEGER_FIELDS
                .contains(&name.as_str())
                .then(|| value.parse::<u64>().ok())
                .flatten();
            let value = number.map_or_else(|| Value::String(value.clone()), Value::from);
            (name.clone(), value)
        })
        .collect();
    Value::Object(object)
}

fn invalid(field: &'static str, reason: impl Into<String>) -> WeidoufuError {
    WeidoufuError::InvalidRequest {
        field,
        reason: reason.into(),
    }
}

/// Seed 004's rule for `out_order_no`: ASCII letters and digits only, 18..=32 long. The reason
/// in words when it is broken.
pub fn check_out_order_no(value: &str) -> Result<(), String> {
    let len = value.len();
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!(
            "weidoufu takes only ASCII letters and digits, found {bad:?}"
        ));
    }
    if !(OUT_ORDER_NO_MIN_LEN..=OUT_ORDER_NO_MAX_LEN).contains(&len) {
        return Err(format!(
            "weidoufu takes {OUT_ORDER_NO_MIN_LEN} to {OUT_ORDER_NO_MAX_LEN} characters, got {len}"
        ));
    }
    Ok(())
}

/// The first `max` characters of `text` (cut on a character boundary).
fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A string or a number, as text (weidoufu writes `timestamp` as a string; a number is read too).
fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a `/pay/miniapp` answer for a request of `pay_type` and `out_order_no`.
///
/// - any 5xx → [`WeidoufuError::Http`] (weidoufu failed; the payment may exist);
/// - `code: 0` → [`WeidoufuError::Rejected`] with `message`, whatever the (non-5xx) status;
/// - `code: 1` with HTTP 2xx → the payment, whose `jsapi` must be the block of `pay_type` and
///   whose `out_order_no` must be ours;
/// - anything else → [`WeidoufuError::Http`] for a non-2xx, else [`WeidoufuError::Malformed`].
pub fn interpret(
    status: StatusCode,
    body: &[u8],
    pay_type: PayType,
    out_order_no: &str,
) -> Result<MiniappPayment, WeidoufuError> {
    let answer = envelope(status, body)?;
    let data =
        data_of(&answer).ok_or_else(|| WeidoufuError::Malformed("code 1 without data".into()))?;
    payment(data, pay_type, out_order_no)
}

/// Reads a `/pay/refund` answer like [`interpret`]: `code: 1` with HTTP 2xx is a refund taken
/// (an echoed `out_order_no` must be ours).
fn interpret_refund(
    status: StatusCode,
    body: &[u8],
    out_order_no: &str,
) -> Result<RefundAnswer, WeidoufuError> {
    let answer = envelope(status, body)?;
    let data = data_of(&answer);
    if let Some(echoed) = data
        .and_then(|d| text(d, "out_order_no"))
        .filter(|e| !e.is_empty())
        && echoed != out_order_no
    {
        return Err(WeidoufuError::Malformed(format!(
            "refund answer for out_order_no {echoed:?}, not {out_order_no:?}"
        )));
    }
    Ok(RefundAnswer {
        refund_no: data
            .and_then(|d| text(d, "refund_no"))
            .filter(|n| !n.is_empty()),
        raw: Value::Object(answer),
    })
}

/// weidoufu's answer envelope `{code, message, data}`: the whole answer for `code: 1` with HTTP
/// 2xx; any 5xx → [`WeidoufuError::Http`] (the request may have taken effect); `code: 0` →
/// [`WeidoufuError::Rejected`] with `message`, whatever the (non-5xx) status; anything else →
/// [`WeidoufuError::Http`] for a non-2xx, else [`WeidoufuError::Malformed`].
fn envelope(status: StatusCode, body: &[u8]) -> Result<Map<String, Value>, WeidoufuError> {
    if status.is_server_error() {
        return Err(WeidoufuError::Http(status));
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let Some(Value::Object(object)) = parsed else {
        return Err(if status.is_success() {
            WeidoufuError::Malformed("not a JSON object".into())
        } else {
            WeidoufuError::Http(status)
        });
    };
    match text(&object, "code").as_deref() {
        Some("0") => Err(WeidoufuError::Rejected {
            http_status: status,
            message: text(&object, "message")
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "失败 (no message)".to_owned()),
            mch_trade_no: data_of(&object)
                .and_then(|d| text(d, "mch_trade_no"))
                .filter(|m| !m.is_empty()),
        }),
        Some("1") if status.is_success() => Ok(object),
        _ if !status.is_success() => Err(WeidoufuError::Http(status)),
        other => Err(WeidoufuError::Malformed(format!(
            "code {other:?} is neither 1 nor 0"
        ))),
    }
}

/// The `data` object of an answer, when it is one.
fn data_of(answer: &Map<String, Value>) -> Option<&Map<String, Value>> {
    match answer.get("data") {
        Some(Value::Object(data)) => Some(data),
        _ => None,
    }
}

fn payment(
    data: &Map<String, Value>,
    pay_type: PayType,
    out_order_no: &str,
) -> Result<MiniappPayment, WeidoufuError> {
    let required = |object: &Map<String, Value>, key: &str| {
        text(object, key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| WeidoufuError::Malformed(format!("payment without {key}")))
    };
    let mch_trade_no = required(data, "mch_trade_no")?;
    let echoed = required(data, "out_order_no")?;
    if echoed != out_order_no {
        return Err(WeidoufuError::Malformed(format!(
            "answer for out_order_no {echoed:?}, not {out_order_no:?}"
        )));
    }
    let Some(Value::Object(jsapi)) = data.get("jsapi") else {
        return Err(WeidoufuError::Malformed(
            "payment without a jsapi object".into(),
        ));
    };
    let jsapi = match pay_type {
        PayType::Wechat => PaymentParams::Wechat(ClientParams {
            app_id: required(jsapi, "app_id")?,
            time_stamp: required(jsapi, "timestamp")?,
            nonce_str: required(jsapi, "nonce_str")?,
            package: required(jsapi, "package")?,
            sign_type: required(jsapi, "sign_type")?,
            pay_sign: required(jsapi, "pay_sign")?,
        }),
        PayType::Alipay => PaymentParams::Alipay(AlipayParams {
            trade_no: required(jsapi, "trade_no")?,
        }),
    };
    Ok(MiniappPayment {
        mch_trade_no,
        out_order_no: echoed,
        jsapi,
    })
}

/// Maps a transport failure onto this client's errors.
fn transport_error(error: transport::TransportError) -> WeidoufuError {
    match error {
        transport::TransportError::Failed {
            source,
            request_may_have_been_sent,
        } => WeidoufuError::Transport {
            source,
            request_may_have_been_sent,
        },
        transport::TransportError::TooLarge(limit) => WeidoufuError::ResponseTooLarge(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_on_character_boundaries() {
        assert_eq!(truncate_chars("abc", 32), "abc");
        let long = "云".repeat(40);
        assert_eq!(truncate_chars(&long, 32).chars().count(), 32);
        assert_eq!(truncate_chars(&long, 32), "云".repeat(32));
    }

    #[test]
    fn out_order_no_rule() {
        assert!(check_out_order_no("180901620895069445").is_ok());
        assert!(check_out_order_no(&"a".repeat(32)).is_ok());
        assert!(check_out_order_no("18090162089506944").is_err());
        assert!(check_out_order_no(&"a".repeat(33)).is_err());
        assert!(check_out_order_no("1809016208950694_5").is_err());
        assert!(check_out_order_no("１８0901620895069445").is_err());
    }

    #[test]
    fn integers_go_as_json_numbers_and_the_rest_as_strings() {
        let params: Params = [
            ("access_key", "ak"),
            ("pay_type", "1"),
            ("total_fee", "83601"),
            ("refund_fee", "5"),
            ("out_order_no", "180901620895069445"),
            ("sign", "ABC"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            json_body(&params),
            serde_json::json!({
                "access_key": "ak",
                "pay_type": 1,
                "total_fee": 83601,
                "refund_fee": 5,
                "out_order_no": "180901620895069445",
                "sign": "ABC",
            })
        );
    }

    #[test]
    fn pay_types() {
        assert_eq!("WeChat".parse::<PayType>(), Ok(PayType::Wechat));
        assert_eq!("alipay".parse::<PayType>(), Ok(PayType::Alipay));
        assert_eq!("2".parse::<PayType>(), Ok(PayType::Alipay));
        assert!("unionpay".parse::<PayType>().is_err());
        assert_eq!(PayType::Alipay.code(), 2);
        assert_eq!(PayType::from_code("1"), Some(PayType::Wechat));
        assert_eq!(PayType::Alipay.payer_field(), "buyer_id");
    }
}

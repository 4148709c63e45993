//! The QFPay HTTP client: payment (`pay_type` 800207, WeChat JSAPI), transaction enquiry,
//! close, refund, and the openid flow (`get_weixin_oauth_code` / `get_weixin_openid`).
//!
//! Every call carries the parameters signed by the rule of [`super::sign`] in the header
//! `X-QF-SIGN`, with `X-QF-APPCODE: app_code` (<https://sdk.qfapi.com/docs/api-reference/request-format>).
//! Writes are `application/x-www-form-urlencoded` bodies; `get_weixin_openid` is a GET with the
//! parameters in the query string (seed 002). Parameters with an empty value are neither signed
//! nor sent, so what is signed is exactly what is sent.
//!
//! Answers are JSON read up to [`MAX_RESPONSE_BYTES`]; `respcd` `"0000"` is success and every
//! other code is sorted into a [`RespcdClass`] from QFPay's status code table
//! (<https://sdk.qfapi.com/docs/api-reference/status-codes>). There are no automatic retries:
//! every call has one total deadline (default 4 s, within the 5 s a WeChat page waits for
//! precreate), and a repeated payment sends identical parameters (see [`PaymentRequest`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset};

use crate::clock::Clock;
use crate::fields::{Currency, NotifyUrl};
use crate::provider::ClientParams;
use crate::transport;

use super::local_time::{self, DEFAULT_UTC_OFFSET};
use super::sign::{ClientKey, sign};

/// `POST`: create the payment (<https://sdk.qfapi.com/docs/preparation/paycode>).
pub const PAYMENT_PATH: &str = "/trade/v1/payment";
/// `POST`: transaction enquiry (<https://sdk.qfapi.com/docs/common-api/transaction-enquiry>).
pub const QUERY_PATH: &str = "/trade/v1/query";
/// `POST`: close an unpaid order (<https://sdk.qfapi.com/docs/common-api/reversal>, "Reversal vs
/// Close"). That page lists the method as `GET`, but every other trade endpoint, QFPay's own
/// code samples for the trade endpoints and the older API reference post a form body; **our
/// choice** is `POST` with the form body, like payment and enquiry.
pub const CLOSE_PATH: &str = "/trade/v1/close";
/// `POST`: refund a paid transaction, in full or in part
/// (<https://sdk.qfapi.com/docs/common-api/refund>).
pub const REFUND_PATH: &str = "/trade/v1/refund";
/// `GET`: the page the payer's browser is sent to for a WeChat `oauth_code` (seed 002).
pub const OAUTH_CODE_PATH: &str = "/tool/v1/get_weixin_oauth_code";
/// `GET`: exchanges an `oauth_code` for the payer's openid (seed 002).
pub const OPENID_PATH: &str = "/tool/v1/get_weixin_openid";

/// `pay_type` of WeChat JSAPI (公众号) payments (seed 002).
pub const PAY_TYPE_WECHAT_JSAPI: &str = "800207";

/// The header carrying the signature.
pub const SIGN_HEADER: &str = "X-QF-SIGN";
/// The header carrying the `app_code`.
pub const APPCODE_HEADER: &str = "X-QF-APPCODE";

/// The default total deadline of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// The largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The longest `goods_name` sent: QFPay's request format says a goods name "cannot exceed 20
/// alphanumeric characters or contain special characters".
pub const GOODS_NAME_MAX_CHARS: usize = 20;

/// What a QFPay merchant is configured with (the `WXPAY_QFPAY_*` variables of the env contract).
#[derive(Debug, Clone)]
pub struct QfpayConfig {
    /// `WXPAY_QFPAY_URL`: the API host, e.g. `https://openapi-hk.qfapi.com` (http(s), no query; a
    /// trailing `/` is removed).
    pub base_url: String,
    /// `WXPAY_QFPAY_APP_CODE`: sent in `X-QF-APPCODE`.
    pub app_code: String,
    /// `WXPAY_QFPAY_CLIENT_KEY`: keys every signature.
    pub client_key: ClientKey,
    /// `WXPAY_QFPAY_MCHID`: sent as `mchid` only when QFPay assigned one ("If `mchid` is not
    /// assigned, it must not be included in the request").
    pub mchid: Option<String>,
    /// `WXPAY_QFPAY_CURRENCY`: the `txcurrcd` of orders (default `CNY`).
    pub currency: Currency,
    /// The `notify_url` sent with each payment. QFPay normally binds the notification URL to the
    /// `app_code` by email; the payment API also accepts one per request. `None`: not sent.
    pub notify_url: Option<NotifyUrl>,
    /// The UTC offset of QFPay's date-times (`txdtm`, `sysdtm`, `paydtm`); default UTC+08:00,
    /// see [`super::local_time`].
    pub utc_offset: UtcOffset,
}

impl QfpayConfig {
    /// A configuration in CNY, without `mchid` or `notify_url`, at UTC+08:00.
    pub fn new(
        base_url: impl Into<String>,
        app_code: impl Into<String>,
        client_key: ClientKey,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            app_code: app_code.into(),
            client_key,
            mchid: None,
            currency: Currency::cny(),
            notify_url: None,
            utc_offset: DEFAULT_UTC_OFFSET,
        }
    }
}

/// How QFPay's status code table classes a `respcd`
/// (<https://sdk.qfapi.com/docs/api-reference/status-codes>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RespcdClass {
    /// `0000`: the request succeeded.
    Success,
    /// Still processing or unknown: `1143` (not paid yet, the payer is entering the password),
    /// `1145` (processing), `1295` / `1296` / `1298` (the connection is slow, waiting for a
    /// network response; "in case you have already paid, do not repeat the payment"). The
    /// request may have taken effect: query, and retry only with identical parameters.
    InProgress,
    /// QFPay or the bank failed: `1100` (maintenance), `1252` (system error when making the
    /// order request), `1254` (a problem occurred), `1297` (the banking system is busy). Retry
    /// later with identical parameters.
    SystemError,
    /// Every other code: the request was refused (`1108` signature error, `1104` parameter
    /// error, `1260` already paid, …).
    Rejected,
}

/// `respcd` of success.
const RESPCD_SUCCESS: &str = "0000";

/// The class of `respcd`.
pub fn classify(respcd: &str) -> RespcdClass {
    match respcd {
        "0000" => RespcdClass::Success,
        "1143" | "1145" | "1295" | "1296" | "1298" => RespcdClass::InProgress,
        "1100" | "1252" | "1254" | "1297" => RespcdClass::SystemError,
        _ => RespcdClass::Rejected,
    }
}

/// A failed QFPay call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QfpayError {
    /// The request could not be sent or the answer not received.
    #[error("transport error talking to QFPay: {source}")]
    Transport {
        /// What failed.
        #[source]
        source: reqwest::Error,
        /// Whether QFPay may have received the request.
        request_may_have_been_sent: bool,
    },
    /// No answer within the deadline.
    #[error("no answer from QFPay within {0:?}")]
    Deadline(Duration),
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    #[error("QFPay response exceeds {0} bytes")]
    ResponseTooLarge(usize),
    /// A non-2xx HTTP status without a QFPay answer in the body.
    #[error("QFPay answered HTTP {0}")]
    Http(StatusCode),
    /// QFPay answered with a `respcd` other than `0000`.
    #[error("QFPay answered {respcd}: {message}")]
    Upstream {
        /// `respcd`.
        respcd: String,
        /// `resperr` and/or `respmsg` (whichever QFPay filled in).
        message: String,
        /// What the code means for the caller.
        class: RespcdClass,
    },
    /// An answer that is not what QFPay documents.
    #[error("unexpected answer from QFPay: {0}")]
    Malformed(String),
    /// The request could not be built (configuration or arguments).
    #[error("{0}")]
    Local(String),
}

impl QfpayError {
    /// Whether a write (payment, close) may still have taken effect: then query (or repeat with
    /// identical parameters), never create the order again with other ones.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Transport {
                request_may_have_been_sent,
                ..
            } => *request_may_have_been_sent,
            Self::Http(status) => status.is_server_error(),
            Self::Upstream { class, .. } => {
                matches!(class, RespcdClass::InProgress | RespcdClass::SystemError)
            }
            Self::Deadline(_) | Self::ResponseTooLarge(_) | Self::Malformed(_) => true,
            Self::Local(_) => false,
        }
    }

    /// The upstream's `respcd`, when it answered with one.
    pub fn respcd(&self) -> Option<&str> {
        match self {
            Self::Upstream { respcd, .. } => Some(respcd),
            _ => None,
        }
    }
}

/// The business fields of a WeChat JSAPI payment; the client adds `pay_type` (800207),
/// `mchid` and `notify_url` from its configuration.
///
/// Everything here must come from the stored order, never from the moment of the call: the
/// engine repeats a payment whose outcome is unknown, and QFPay answers a repeat with the same
/// `syssn` and prepay only when the parameters are identical. So `txdtm` is the order's creation
/// time, not "now".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// `out_trade_no`: the merchant's order number.
    pub out_trade_no: String,
    /// `txamt`: the amount in the currency's minor unit (fen for CNY).
    pub txamt: u64,
    /// `txcurrcd`: e.g. `CNY`, `HKD`, `THB`.
    pub txcurrcd: String,
    /// `txdtm`: when the order was created; written at the configured UTC offset.
    pub txdtm: OffsetDateTime,
    /// `sub_openid`: the payer's openid.
    pub sub_openid: String,
    /// `goods_name`: sent only when non-empty.
    pub goods_name: Option<String>,
}

/// A successful payment: QFPay's transaction number and WeChat's JSAPI parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentResponse {
    /// `syssn`: QFPay's transaction number.
    pub syssn: String,
    /// `out_trade_no` as QFPay echoed it.
    pub out_trade_no: String,
    /// `pay_params`, mapped 1:1 to WeChat's names.
    pub pay_params: ClientParams,
    /// The whole answer, for callers that want more fields (`sysdtm`, `txcurrcd`, …).
    pub raw: Value,
}

impl PaymentResponse {
    /// The `prepay_id` inside `pay_params.package` (`prepay_id=…`).
    pub fn prepay_id(&self) -> &str {
        self.pay_params
            .package
            .strip_prefix("prepay_id=")
            .unwrap_or(&self.pay_params.package)
    }
}

/// One transaction of an enquiry's `data` array.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// `syssn`: QFPay's transaction number.
    pub syssn: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `txamt`, when it is a whole number.
    pub txamt: Option<u64>,
    /// `txcurrcd`.
    pub txcurrcd: Option<String>,
    /// `pay_type`.
    pub pay_type: Option<String>,
    /// `respcd` of the transaction: `0000` paid, `1143` / `1145` not paid yet, others failed.
    pub respcd: String,
    /// `errmsg` (or `respmsg` / `resperr`): the explanation of `respcd`.
    pub message: Option<String>,
    /// `cancel`: `0` not cancelled, `1` reversed or refunded (CPM), `2` cancelled (MPM),
    /// `3` refunded, `4` Alipay pre-authorisation finished, `5` partially refunded
    /// (<https://sdk.qfapi.com/docs/common-api/async-notifications>).
    pub cancel: Option<String>,
    /// `order_type`: `payment` or `refund`.
    pub order_type: Option<String>,
    /// `txdtm`.
    pub txdtm: Option<String>,
    /// `sysdtm`.
    pub sysdtm: Option<String>,
    /// `paydtm`, when given.
    pub paydtm: Option<String>,
    /// `chnlsn`: the wallet's transaction number (WeChat's `transaction_id`).
    pub chnlsn: Option<String>,
    /// `orig_syssn`: for a refund, the `syssn` of the refunded payment.
    pub orig_syssn: Option<String>,
    /// The whole entry.
    pub raw: Value,
}

impl Transaction {
    /// Whether this entry is the payment itself (not a refund of it).
    pub fn is_payment(&self) -> bool {
        self.order_type.as_deref().is_none_or(|t| t == "payment")
    }

    /// Whether this entry is a refund.
    pub fn is_refund(&self) -> bool {
        self.order_type.as_deref() == Some("refund")
    }
}

/// A refund of a paid transaction (QFPay "Refund API").
///
/// Like [`PaymentRequest`], a function of stored data only: the reconciler submits a refund
/// again when QFPay has no record of it, and the second request must be the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// `syssn`: QFPay's transaction number of the **payment** being refunded.
    pub syssn: String,
    /// `out_trade_no`: the merchant's number of the **refund**, unique across every payment and
    /// refund of the merchant.
    pub out_trade_no: String,
    /// `txamt`: the amount to give back, in minor units.
    pub txamt: u64,
    /// `txdtm`: when the refund was asked for (the stored refund's creation time).
    pub txdtm: OffsetDateTime,
}

/// QFPay's answer to a refund it took: done (`0000`) or still processing (`1143` / `1145`).
#[derive(Debug, Clone, PartialEq)]
pub struct RefundResponse {
    /// `respcd`: `0000` when the refund is done.
    pub respcd: String,
    /// Whether QFPay is still processing it (query it later, or wait for the notification).
    pub in_progress: bool,
    /// `syssn`: QFPay's number of the refund transaction, when given.
    pub syssn: Option<String>,
    /// `orig_syssn`: the refunded payment's `syssn`, when given.
    pub orig_syssn: Option<String>,
    /// `txamt`: the refunded amount, when given as a whole number.
    pub txamt: Option<u64>,
    /// `sysdtm`: QFPay's time of the refund (local time at the configured offset).
    pub sysdtm: Option<String>,
    /// The whole answer.
    pub raw: Value,
}

/// The close of an unpaid order (QFPay requires the amount and the original `txdtm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// `out_trade_no` of the payment.
    pub out_trade_no: String,
    /// `txamt` of the payment.
    pub txamt: u64,
    /// `txdtm` of the payment (the order's creation time).
    pub txdtm: OffsetDateTime,
}

/// Builds a [`QfpayClient`].
#[derive(Debug)]
pub struct QfpayClientBuilder {
    config: QfpayConfig,
    timeout: Duration,
    clock: Option<Arc<dyn Clock>>,
    http: Option<reqwest::Client>,
}

impl QfpayClientBuilder {
    /// Sets the total deadline of one call.
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

    /// Builds the client; the base URL must be http(s) without a query, `app_code` and `mchid`
    /// non-empty without spaces.
    pub fn build(mut self) -> Result<QfpayClient, QfpayError> {
        let base = transport::base_url(&self.config.base_url, "WXPAY_QFPAY_URL")
            .map_err(QfpayError::Local)?;
        let app_code = &self.config.app_code;
        if app_code.is_empty() || app_code.chars().any(char::is_whitespace) {
            return Err(QfpayError::Local(
                "WXPAY_QFPAY_APP_CODE must be non-empty without spaces".into(),
            ));
        }
        if let Some(mchid) = &self.config.mchid
            && (mchid.is_empty() || mchid.chars().any(char::is_whitespace))
        {
            return Err(QfpayError::Local(
                "WXPAY_QFPAY_MCHID must be non-empty without spaces when set".into(),
            ));
        }
        self.config.base_url = base;
        let http = transport::http_client(self.http).map_err(QfpayError::Local)?;
        Ok(QfpayClient {
            inner: Arc::new(Inner {
                http,
                config: self.config,
                timeout: self.timeout,
                clock: self.clock.unwrap_or_else(crate::clock::system),
            }),
        })
    }
}

/// The QFPay client. Cheap to clone.
#[derive(Clone)]
pub struct QfpayClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: QfpayConfig,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for QfpayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QfpayClient")
            .field("config", &self.inner.config)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Request parameters: (name, value) pairs, sorted by name when signed and sent.
pub type Params = Vec<(&'static str, String)>;

impl QfpayClient {
    /// Starts building a client (default deadline [`DEFAULT_TIMEOUT`], system clock).
    pub fn builder(config: QfpayConfig) -> QfpayClientBuilder {
        QfpayClientBuilder {
            config,
            timeout: DEFAULT_TIMEOUT,
            clock: None,
            http: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &QfpayConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// `at` as a QFPay date-time at the configured offset.
    pub fn local_time(&self, at: OffsetDateTime) -> String {
        local_time::format(at, self.inner.config.utc_offset)
    }

    /// The parameters [`Self::payment`] signs and posts: a function of `request` and the
    /// configuration only, sorted by name, empty values left out.
    pub fn payment_params(&self, request: &PaymentRequest) -> Params {
        let config = &self.inner.config;
        let mut params: Params = vec![
            ("txamt", request.txamt.to_string()),
            ("txcurrcd", request.txcurrcd.clone()),
            ("pay_type", PAY_TYPE_WECHAT_JSAPI.to_owned()),
            ("out_trade_no", request.out_trade_no.clone()),
            ("txdtm", self.local_time(request.txdtm)),
            ("sub_openid", request.sub_openid.clone()),
        ];
        if let Some(goods_name) = &request.goods_name {
            params.push(("goods_name", goods_name.clone()));
        }
        if let Some(notify_url) = &config.notify_url {
            params.push(("notify_url", notify_url.as_str().to_owned()));
        }
        self.finish(params)
    }

    /// `POST {base}/trade/v1/payment`: creates the WeChat JSAPI payment and returns WeChat's
    /// parameters as QFPay signed them.
    pub async fn payment(&self, request: &PaymentRequest) -> Result<PaymentResponse, QfpayError> {
        let params = self.payment_params(request);
        let answer = self.call(Method::POST, PAYMENT_PATH, &params).await?;
        let syssn = required_text(&answer, "syssn")?;
        let out_trade_no =
            text(&answer, "out_trade_no").unwrap_or_else(|| request.out_trade_no.clone());
        if out_trade_no != request.out_trade_no {
            return Err(QfpayError::Malformed(format!(
                "the answer is for another out_trade_no: {out_trade_no:?}"
            )));
        }
        if let Some(txamt) = answer.get("txamt").and_then(whole_number)
            && txamt != request.txamt
        {
            return Err(QfpayError::Malformed(format!(
                "the answer is for another amount: {txamt}"
            )));
        }
        let Some(Value::Object(pay_params)) = answer.get("pay_params") else {
            return Err(QfpayError::Malformed("no pay_params object".into()));
        };
        let get = |key: &str| {
            text(pay_params, key)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| QfpayError::Malformed(format!("pay_params without {key}")))
        };
        let pay_params = ClientParams {
            app_id: get("appId")?,
            time_stamp: get("timeStamp")?,
            nonce_str: get("nonceStr")?,
            package: get("package")?,
            sign_type: get("signType")?,
            pay_sign: get("paySign")?,
        };
        if pay_params
            .package
            .strip_prefix("prepay_id=")
            .is_none_or(str::is_empty)
        {
            return Err(QfpayError::Malformed(
                "pay_params.package is not prepay_id=…".into(),
            ));
        }
        Ok(PaymentResponse {
            syssn,
            out_trade_no,
            pay_params,
            raw: Value::Object(answer),
        })
    }

    /// The parameters [`Self::query`] signs and posts.
    pub fn query_params(&self, out_trade_no: &str, created_at: Option<OffsetDateTime>) -> Params {
        let mut params: Params = vec![("out_trade_no", out_trade_no.to_owned())];
        // QFPay: start_time / end_time are "required for cross-month queries"; the default
        // window is the current month. Sent only when the order was created in an earlier
        // month (local time), so that the common case stays the plain documented call.
        if let Some(created_at) = created_at {
            let offset = self.inner.config.utc_offset;
            let now = self.inner.clock.now().to_offset(offset);
            let created = created_at.to_offset(offset);
            if (created.year(), created.month()) != (now.year(), now.month()) && created < now {
                params.push(("start_time", self.local_time(created_at)));
                params.push(("end_time", self.local_time(self.inner.clock.now())));
            }
        }
        self.finish(params)
    }

    /// `POST {base}/trade/v1/query` by `out_trade_no`: every transaction QFPay has under it
    /// (the payment, and refunds of it when their `out_trade_no` matches).
    pub async fn query(&self, out_trade_no: &str) -> Result<Vec<Transaction>, QfpayError> {
        self.query_since(out_trade_no, None).await
    }

    /// Like [`Self::query`], for an order created at `created_at`: adds the time window QFPay
    /// requires when that was in an earlier month.
    pub async fn query_since(
        &self,
        out_trade_no: &str,
        created_at: Option<OffsetDateTime>,
    ) -> Result<Vec<Transaction>, QfpayError> {
        let params = self.query_params(out_trade_no, created_at);
        let answer = self.call(Method::POST, QUERY_PATH, &params).await?;
        let entries = match answer.get("data") {
            Some(Value::Array(entries)) => entries,
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(_) => return Err(QfpayError::Malformed("data is not an array".into())),
        };
        entries.iter().map(transaction).collect()
    }

    /// The parameters [`Self::close`] signs and posts.
    pub fn close_params(&self, request: &CloseRequest) -> Params {
        self.finish(vec![
            ("out_trade_no", request.out_trade_no.clone()),
            ("txamt", request.txamt.to_string()),
            ("txdtm", self.local_time(request.txdtm)),
        ])
    }

    /// `POST {base}/trade/v1/close`: closes an unpaid order. `1143` / `1145` ("cancel in
    /// progress") come back as [`RespcdClass::InProgress`] errors.
    pub async fn close(&self, request: &CloseRequest) -> Result<Value, QfpayError> {
        let params = self.close_params(request);
        self.call(Method::POST, CLOSE_PATH, &params)
            .await
            .map(Value::Object)
    }

    /// The parameters [`Self::refund`] signs and posts: a function of `request` and the
    /// configuration only.
    pub fn refund_params(&self, request: &RefundRequest) -> Params {
        self.finish(vec![
            ("syssn", request.syssn.clone()),
            ("out_trade_no", request.out_trade_no.clone()),
            ("txamt", request.txamt.to_string()),
            ("txdtm", self.local_time(request.txdtm)),
        ])
    }

    /// `POST {base}/trade/v1/refund`: refunds `txamt` of the payment `syssn`. `0000` and the
    /// in-progress codes (`1143`, `1145`, …) are answers ([`RefundResponse::in_progress`]);
    /// every other code is an [`QfpayError::Upstream`] error. An answer about another refund
    /// or another amount is [`QfpayError::Malformed`].
    pub async fn refund(&self, request: &RefundRequest) -> Result<RefundResponse, QfpayError> {
        let params = self.refund_params(request);
        let deadline = self.inner.timeout;
        let (status, bytes) =
            tokio::time::timeout(deadline, self.send(Method::POST, REFUND_PATH, &params))
                .await
                .unwrap_or(Err(QfpayError::Deadline(deadline)))?;
        let (answer, respcd, in_progress) = match interpret(status, &bytes) {
            Ok(answer) => (answer, RESPCD_SUCCESS.to_owned(), false),
            Err(QfpayError::Upstream {
                respcd,
                class: RespcdClass::InProgress,
                ..
            }) if status.is_success() => {
                let answer = match serde_json::from_slice(&bytes) {
                    Ok(Value::Object(answer)) => answer,
                    _ => Map::new(),
                };
                (answer, respcd, true)
            }
            Err(error) => return Err(error),
        };
        if let Some(no) = text(&answer, "out_trade_no").filter(|no| !no.is_empty())
            && no != request.out_trade_no
        {
            return Err(QfpayError::Malformed(format!(
                "the refund answer is for another out_trade_no: {no:?}"
            )));
        }
        let txamt = answer.get("txamt").and_then(whole_number);
        if txamt.is_some_and(|txamt| txamt != request.txamt) {
            return Err(QfpayError::Malformed(format!(
                "the refund answer is for another amount: {txamt:?}"
            )));
        }
        let optional = |key: &str| text(&answer, key).filter(|v| !v.is_empty());
        Ok(RefundResponse {
            in_progress,
            syssn: optional("syssn"),
            orig_syssn: optional("orig_syssn"),
            txamt,
            sysdtm: optional("sysdtm"),
            respcd,
            raw: Value::Object(answer),
        })
    }

    /// The URL of QFPay's `get_weixin_oauth_code` page, signed: the payer's browser (inside
    /// WeChat) goes there and comes back to `redirect_uri` with `code=…` (seed 002).
    ///
    /// `app_code` and `sign` are query parameters here, not headers (seed 002: "`app_code` 和
    /// `sign` 都必须作为参数提交，而不是在 http 标头中提交"). The signature covers `app_code`,
    /// `redirect_uri` and `mchid` (when configured) with their plain values; the URL carries
    /// them percent-encoded.
    pub fn oauth_code_url(&self, redirect_uri: &str) -> String {
        let config = &self.inner.config;
        let mut params: Params = vec![
            ("app_code", config.app_code.clone()),
            ("redirect_uri", redirect_uri.to_owned()),
        ];
        if let Some(mchid) = &config.mchid {
            params.push(("mchid", mchid.clone()));
        }
        let signature = self.sign(&params);
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &params {
            query.append_pair(name, value);
        }
        query.append_pair("sign", &signature);
        format!("{}{}?{}", config.base_url, OAUTH_CODE_PATH, query.finish())
    }

    /// `GET {base}/tool/v1/get_weixin_openid?code=…`, signed in the headers: the payer's openid
    /// for an `oauth_code` (single use). A refused code is an [`QfpayError::Upstream`] error.
    pub async fn openid(&self, code: &str) -> Result<String, QfpayError> {
        if code.is_empty() || code.len() > 512 || code.chars().any(|c| c.is_control()) {
            return Err(QfpayError::Local(
                "the oauth code is empty or malformed".into(),
            ));
        }
        let params = self.finish(vec![("code", code.to_owned())]);
        let answer = self.call(Method::GET, OPENID_PATH, &params).await?;
        let openid = required_text(&answer, "openid")?;
        crate::fields::OpenId::try_from(openid.as_str())
            .map_err(|e| QfpayError::Malformed(format!("the openid is not valid: {e}")))?;
        Ok(openid)
    }

    /// The `X-QF-SIGN` of `params` with this client's key.
    pub fn sign(&self, params: &Params) -> String {
        sign(
            params.iter().map(|(k, v)| (*k, v.as_str())),
            self.inner.config.client_key.expose(),
        )
    }

    /// Adds `mchid` when configured, drops empty values, sorts by name.
    fn finish(&self, mut params: Params) -> Params {
        if let Some(mchid) = &self.inner.config.mchid {
            params.push(("mchid", mchid.clone()));
        }
        params.retain(|(_, value)| !value.is_empty());
        params.sort_unstable_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(&b.1)));
        params
    }

    /// Sends `params` signed, within the deadline, and reads a `respcd` `0000` answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        params: &Params,
    ) -> Result<Map<String, Value>, QfpayError> {
        let deadline = self.inner.timeout;
        let (status, bytes) = tokio::time::timeout(deadline, self.send(method, path, params))
            .await
            .unwrap_or(Err(QfpayError::Deadline(deadline)))?;
        interpret(status, &bytes)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        params: &Params,
    ) -> Result<(StatusCode, bytes::Bytes), QfpayError> {
        let config = &self.inner.config;
        let encoded = form_encode(params);
        let mut url = format!("{}{}", config.base_url, path);
        let request = if method == Method::GET {
            if !encoded.is_empty() {
                url.push('?');
                url.push_str(&encoded);
            }
            self.inner.http.get(url)
        } else {
            self.inner
                .http
                .request(method, url)
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(encoded)
        };
        let request = request
            .header(http::header::ACCEPT, "application/json")
            .header(APPCODE_HEADER, &config.app_code)
            .header(SIGN_HEADER, self.sign(params));
        let answer = transport::exchange(request, MAX_RESPONSE_BYTES)
            .await
            .map_err(transport_error)?;
        Ok((answer.status, answer.body))
    }
}

/// `params` as `application/x-www-form-urlencoded` text, in their order.
fn form_encode(params: &Params) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    form.finish()
}

/// Reads an answer: the JSON object when `respcd` is `0000`, else the matching error.
fn interpret(status: StatusCode, body: &[u8]) -> Result<Map<String, Value>, QfpayError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let Some(Value::Object(answer)) = parsed else {
        return Err(if status.is_success() {
            QfpayError::Malformed("not a JSON object".into())
        } else {
            QfpayError::Http(status)
        });
    };
    let Some(respcd) = answer.get("respcd").and_then(respcd_text) else {
        return Err(if status.is_success() {
            QfpayError::Malformed("no respcd".into())
        } else {
            QfpayError::Http(status)
        });
    };
    match classify(&respcd) {
        RespcdClass::Success if status.is_success() => Ok(answer),
        RespcdClass::Success => Err(QfpayError::Http(status)),
        class => Err(QfpayError::Upstream {
            message: message(&answer, &respcd),
            respcd,
            class,
        }),
    }
}

/// `respcd` as text; QFPay's openid example shows it as a bare number, so a number is read
/// as the four-digit code it stands for.
fn respcd_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| format!("{n:04}")),
        _ => None,
    }
}

/// The human explanation of an error answer: `resperr`, then `respmsg` (QFPay fills in either
/// or both), then `errmsg`.
fn message(answer: &Map<String, Value>, respcd: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for key in ["resperr", "respmsg", "errmsg"] {
        if let Some(text) = text(answer, key).filter(|t| !t.trim().is_empty())
            && !parts.contains(&text)
        {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        format!("respcd {respcd} without a message")
    } else {
        parts.join("; ")
    }
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required_text(object: &Map<String, Value>, key: &str) -> Result<String, QfpayError> {
    text(object, key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| QfpayError::Malformed(format!("the answer has no {key}")))
}

/// An amount in minor units, written as a JSON number or as decimal digits.
pub(crate) fn whole_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s)
            if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

fn transaction(entry: &Value) -> Result<Transaction, QfpayError> {
    let Value::Object(object) = entry else {
        return Err(QfpayError::Malformed(
            "a data entry is not an object".into(),
        ));
    };
    let optional = |key: &str| text(object, key).filter(|v| !v.is_empty());
    Ok(Transaction {
        syssn: required_text(object, "syssn")?,
        out_trade_no: required_text(object, "out_trade_no")?,
        txamt: object.get("txamt").and_then(whole_number),
        txcurrcd: optional("txcurrcd"),
        pay_type: optional("pay_type"),
        respcd: object
            .get("respcd")
            .and_then(respcd_text)
            .ok_or_else(|| QfpayError::Malformed("a data entry has no respcd".into()))?,
        message: optional("errmsg")
            .or_else(|| optional("resperr"))
            .or_else(|| optional("respmsg")),
        cancel: optional("cancel"),
        order_type: optional("order_type"),
        txdtm: optional("txdtm"),
        sysdtm: optional("sysdtm"),
        paydtm: optional("paydtm"),
        chnlsn: optional("chnlsn"),
        orig_syssn: optional("orig_syssn").or_else(|| optional("origssn")),
        raw: entry.clone(),
    })
}

/// Maps a transport failure onto this client's errors.
fn transport_error(error: transport::TransportError) -> QfpayError {
    match error {
        transport::TransportError::Failed {
            source,
            request_may_have_been_sent,
        } => QfpayError::Transport {
            // The URL of get_weixin_openid carries the payer's one-time code: keep it out of
            // every message.
            source: source.without_url(),
            request_may_have_been_sent,
        },
        transport::TransportError::TooLarge(limit) => QfpayError::ResponseTooLarge(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respcd_classes_follow_the_status_code_table() {
        assert_eq!(classify("0000"), RespcdClass::Success);
        for code in ["1143", "1145", "1298"] {
            assert_eq!(classify(code), RespcdClass::InProgress, "{code}");
        }
        for code in ["1100", "1297"] {
            assert_eq!(classify(code), RespcdClass::SystemError, "{code}");
        }
        for code in ["1108", "1104", "1260", "9999", ""] {
            assert_eq!(classify(code), RespcdClass::Rejected, "{code}");
        }
    }

    #[test]
    fn answers_are_read_strictly() {
        let ok = interpret(StatusCode::OK, br#"{"respcd":"0000","x":1}"#).unwrap();
        assert_eq!(ok["x"], 1);
        // QFPay's openid example writes respcd as a bare number.
        assert!(interpret(StatusCode::OK, br#"{"respcd":0,"openid":"o"}"#).is_ok());
        let error = interpret(
            StatusCode::OK,
            r#"{"respcd":"1108","respmsg":"","resperr":"签名错误"}"#.as_bytes(),
        )
        .unwrap_err();
        assert_eq!(error.respcd(), Some("1108"));
        assert_eq!(error.to_string(), "QFPay answered 1108: 签名错误");
        assert!(!error.may_have_taken_effect());
        assert!(matches!(
            interpret(StatusCode::BAD_GATEWAY, b"<html>"),
            Err(QfpayError::Http(StatusCode::BAD_GATEWAY))
        ));
        assert!(matches!(
            interpret(StatusCode::OK, b"[]"),
            Err(QfpayError::Malformed(_))
        ));
        assert!(matches!(
            interpret(StatusCode::OK, br#"{"syssn":"1"}"#),
            Err(QfpayError::Malformed(_))
        ));
        assert!(matches!(
            interpret(StatusCode::INTERNAL_SERVER_ERROR, br#"{"respcd":"0000"}"#),
            Err(QfpayError::Http(_))
        ));
    }

    #[test]
    fn amounts_are_whole_numbers() {
        assert_eq!(whole_number(&Value::from(10)), Some(10));
        assert_eq!(whole_number(&Value::from("10")), Some(10));
        for bad in [
            Value::from(1.5),
            Value::from(-1),
            Value::from("1.5"),
            Value::from(""),
        ] {
            assert_eq!(whole_number(&bad), None, "{bad}");
        }
    }
}

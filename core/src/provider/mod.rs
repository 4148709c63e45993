//! Upstream payment providers: what the engine needs from WeChat Pay API v3 or a gateway.
//!
//! A [`Provider`] creates the upstream order (prepay) and the signed client parameters,
//! verifies notifications from raw headers and bytes, knows the exact reply its upstream
//! expects, and queries and closes orders. The engine does everything else (validation, storage,
//! idempotency) once, for every provider.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::order::Order;

pub mod gateway;
pub mod qfpay;
mod text_reply;
pub mod v2;
pub mod v3;
pub mod weidoufu;

/// Signed parameters for `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` and
/// `wx.requestPayment(…)`, with WeChat's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    /// `appId`.
    #[serde(rename = "appId")]
    pub app_id: String,
    /// `timeStamp`: seconds, as a string.
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// `nonceStr`.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `package`: `prepay_id=…`.
    pub package: String,
    /// `signType`: `RSA` (API v3) or `MD5` / `HMAC-SHA256` (API v2 and gateways).
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// `paySign`.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

/// Parameters for Alipay's `my.tradePay({ tradeNO })`, for upstreams that also collect through
/// Alipay mini programs (weidoufu `pay_type` 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlipayParams {
    /// `tradeNO`: Alipay's trade number.
    #[serde(rename = "tradeNO")]
    pub trade_no: String,
}

/// What the payer's client needs to pay, as the precreate route answers it (flattened next to
/// `out_trade_no`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PaymentParams {
    /// WeChat's JSAPI parameters (every upstream but weidoufu's Alipay path).
    Wechat(ClientParams),
    /// Alipay's trade number.
    Alipay(AlipayParams),
}

impl From<ClientParams> for PaymentParams {
    fn from(params: ClientParams) -> Self {
        PaymentParams::Wechat(params)
    }
}

impl PaymentParams {
    /// The WeChat parameters, when these are.
    pub fn wechat(&self) -> Option<&ClientParams> {
        match self {
            PaymentParams::Wechat(params) => Some(params),
            PaymentParams::Alipay(_) => None,
        }
    }
}

/// The merchant identity an upstream reports in notifications, for cross-checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantIdentity {
    /// The appid, when the upstream reports one.
    pub appid: Option<String>,
    /// The merchant id, when the upstream reports one.
    pub mchid: Option<String>,
}

/// A successful prepay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepay {
    /// The upstream's reference for the payment (the `prepay_id` for WeChat Pay).
    pub prepay_id: String,
    /// Until when the client parameters can be used.
    pub expires_at: OffsetDateTime,
    /// What the client needs to pay: usually WeChat's signed JSAPI parameters.
    pub params: PaymentParams,
}

/// Where a payment stands upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    /// Paid.
    Paid,
    /// Not paid yet (or the payer is paying).
    NotPaid,
    /// Closed or revoked without payment.
    Closed,
    /// The payment failed.
    Failed(String),
    /// Refunded.
    Refunded,
    /// A state the engine does not act on.
    Other(String),
}

/// What an upstream says about one payment, from a notification or a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReport {
    /// The merchant's order number, as the upstream wrote it.
    pub out_trade_no: String,
    /// The state.
    pub state: PaymentState,
    /// The upstream's transaction id.
    pub transaction_id: Option<String>,
    /// The order total in fen.
    pub amount_total: Option<u64>,
    /// The currency.
    pub currency: Option<String>,
    /// The appid.
    pub appid: Option<String>,
    /// The merchant id.
    pub mchid: Option<String>,
    /// The payer's id (openid).
    pub payer: Option<String>,
    /// When the payment succeeded.
    pub paid_at: Option<OffsetDateTime>,
}

/// What an upstream says about one refund, from the refund call, a query or a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReport {
    /// The merchant's refund number, as the upstream wrote it.
    pub out_refund_no: String,
    /// The refunded order's number, when the upstream says.
    pub out_trade_no: Option<String>,
    /// The upstream's transaction id of the refunded payment, when it says.
    pub transaction_id: Option<String>,
    /// The upstream's refund id.
    pub refund_id: Option<String>,
    /// Where the refund stands.
    pub status: crate::refund::RefundStatus,
    /// The refund's amount in fen, when the upstream says.
    pub amount: Option<u64>,
    /// The order's total in fen, when the upstream says.
    pub total: Option<u64>,
    /// The merchant id, when the upstream reports one.
    pub mchid: Option<String>,
    /// When the money reached the payer.
    pub succeeded_at: Option<OffsetDateTime>,
    /// Where the money went (`user_received_account`), when the upstream says.
    pub user_received_account: Option<String>,
    /// For a refused, closed or abnormal refund: the upstream's code and message.
    pub failure: Option<String>,
}

impl RefundReport {
    /// A report of `status` for `out_refund_no` with nothing else known.
    pub fn new(out_refund_no: impl Into<String>, status: crate::refund::RefundStatus) -> Self {
        Self {
            out_refund_no: out_refund_no.into(),
            out_trade_no: None,
            transaction_id: None,
            refund_id: None,
            status,
            amount: None,
            total: None,
            mchid: None,
            succeeded_at: None,
            user_received_account: None,
            failure: None,
        }
    }
}

/// A notification whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotification {
    /// The notification id, the same across the upstream's retries; the inbox dedupes on it.
    pub event_id: String,
    /// What it reports about the payment. For a refund notification: the refunded order's
    /// number, transaction id and total as far as the notification tells them (an empty
    /// `out_trade_no` when it names only the refund, as QFPay's does), with state
    /// [`PaymentState::Refunded`]; the engine never marks an order paid from one.
    pub report: PaymentReport,
    /// Set when the notification is about a refund (v3 `REFUND.*`, v2's refund notification,
    /// QFPay's `notify_type` `refund`, …): what it reports about the refund.
    pub refund: Option<RefundReport>,
    /// The decrypted resource as the upstream sent it, for apps that want more fields.
    pub details: serde_json::Value,
}

/// Why a notification was refused, with the exact failure reply its upstream expects (a
/// non-2xx status, so that it retries).
#[derive(Debug, Clone)]
pub struct NotificationRejection {
    /// What went wrong.
    pub kind: RejectionKind,
    /// A human explanation (never a key or a full signature).
    pub message: String,
    response: Response<Bytes>,
}

/// The class of a refused notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The body is larger than the limit.
    TooLarge,
    /// The signature did not verify.
    BadSignature,
    /// A deliberate signature probe (WeChat Pay's `WECHATPAY/SIGNTEST/`).
    Probe,
    /// The body verified but is not understood.
    Malformed,
    /// Verification could not be done now (e.g. no trusted key could be fetched).
    Unavailable,
}

impl NotificationRejection {
    /// A rejection answered with `response`.
    pub fn new(kind: RejectionKind, message: impl Into<String>, response: Response<Bytes>) -> Self {
        Self {
            kind,
            message: message.into(),
            response,
        }
    }

    /// The reply to send to the upstream.
    pub fn into_response(self) -> Response<Bytes> {
        self.response
    }
}

impl fmt::Display for NotificationRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "notification refused ({:?}): {}",
            self.kind, self.message
        )
    }
}

impl std::error::Error for NotificationRejection {}

/// A failed call to the upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// What kind of failure.
    pub kind: ProviderErrorKind,
    /// The upstream's error code, when it answered with one (`PARAM_ERROR`, `ORDERPAID`, …).
    pub upstream_code: Option<String>,
    /// The upstream's message, or a description of the failure.
    pub message: String,
    /// Whether a write may have taken effect upstream (query before trying anything else).
    pub may_have_taken_effect: bool,
}

/// The class of a [`ProviderError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderErrorKind {
    /// The upstream refused the request (4xx-like).
    Rejected,
    /// The upstream failed (5xx-like).
    Unavailable,
    /// No answer in time.
    Timeout,
    /// The answer could not be trusted or understood.
    BadResponse,
    /// The request could not be sent.
    Transport,
    /// A local problem (configuration, request building).
    Local,
    /// This upstream has no such operation (e.g. refunds on the seed-001 gateway).
    Unsupported,
    /// The upstream has no record of what was asked about (an unknown order or refund).
    NotFound,
}

impl ProviderError {
    /// Upstream codes that mean "no such order or refund": v3, v2, QFPay.
    const NOT_FOUND_CODES: [&'static str; 4] = [
        "RESOURCE_NOT_EXISTS",
        "REFUNDNOTEXIST",
        "ORDERNOTEXIST",
        "ORDER_NOT_EXIST",
    ];

    /// Whether the upstream answered that it has no record of what was asked about.
    pub fn is_not_found(&self) -> bool {
        self.kind == ProviderErrorKind::NotFound
            || (self.kind == ProviderErrorKind::Rejected
                && self
                    .upstream_code
                    .as_deref()
                    .is_some_and(|code| Self::NOT_FOUND_CODES.contains(&code)))
    }

    /// The error of an operation `what` this upstream does not have.
    pub fn unsupported(provider: &str, what: &str) -> Self {
        Self {
            kind: ProviderErrorKind::Unsupported,
            upstream_code: None,
            message: format!("the {provider} upstream does not support {what}"),
            may_have_taken_effect: false,
        }
    }
}

/// An upstream payment system.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// A short name stored with each order (`v3`, `v2`, `gateway`, …).
    fn name(&self) -> &'static str;

    /// The merchant identity notifications are cross-checked against.
    fn merchant(&self) -> MerchantIdentity;

    /// The currency orders are created in (default `CNY`; QFPay merchants settle in others).
    fn currency(&self) -> crate::fields::Currency {
        crate::fields::Currency::cny()
    }

    /// Refuses, before anything is stored or sent, an order this upstream would refuse for its
    /// own field rules (weidoufu: `out_order_no` of at least 18 letters and digits). The
    /// precreate route answers the error as a 400 naming the field.
    fn check_order(&self, order: &crate::order::NewOrder) -> Result<(), crate::fields::FieldError> {
        let _ = order;
        Ok(())
    }

    /// Creates the upstream order for `order` and signs the client parameters. Must be
    /// idempotent for identical orders: the engine calls it again after a failure whose effect
    /// is unknown.
    async fn prepay(
        &self,
        order: &Order,
        client_ip: Option<IpAddr>,
    ) -> Result<Prepay, ProviderError>;

    /// Fresh client parameters for an order whose `prepay_id` is still valid, without an
    /// upstream call; `None` when this provider cannot sign them locally (the engine then calls
    /// [`Provider::prepay`] again).
    fn client_params(&self, order: &Order, prepay_id: &str) -> Option<PaymentParams>;

    /// Verifies a notification from its raw headers and body.
    async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection>;

    /// The reply that tells the upstream a notification was received and stored.
    fn acknowledge(&self) -> Response<Bytes>;

    /// A failure reply that makes the upstream retry later.
    fn failure_reply(&self, status: StatusCode, message: &str) -> Response<Bytes>;

    /// Where the payment of `order` stands upstream.
    async fn query(&self, order: &Order) -> Result<PaymentReport, ProviderError>;

    /// Closes the unpaid upstream order.
    async fn close(&self, order: &Order) -> Result<(), ProviderError>;

    /// Whether [`Provider::query`] (and [`Provider::close`]) exist upstream. Reconciliation
    /// never asks an upstream without them, and closes its orders locally once their prepay
    /// expired (the seed-001 gateway and weidoufu document no query).
    fn can_query(&self) -> bool {
        true
    }

    /// Whether this upstream can refund ([`Provider::refund`] is implemented). The engine
    /// refuses refunds up front, before reserving anything, when it cannot.
    fn refunds_supported(&self) -> bool {
        false
    }

    /// Asks the upstream to refund `refund` of the paid `order`. Must be idempotent for the
    /// same `out_refund_no` (the engine asks again after a failure whose effect is unknown).
    /// A definite refusal is [`ProviderErrorKind::Rejected`] with the upstream's code; an
    /// accepted refund is reported `PROCESSING` (or `SUCCESS` when the upstream is done).
    /// The default: [`ProviderErrorKind::Unsupported`].
    async fn refund(
        &self,
        order: &Order,
        refund: &crate::refund::Refund,
    ) -> Result<RefundReport, ProviderError> {
        let _ = (order, refund);
        Err(ProviderError::unsupported(self.name(), "refunds"))
    }

    /// Where `refund` of `order` stands upstream. A refund the upstream never recorded is
    /// [`ProviderErrorKind::Rejected`] with its "not found" code. The default:
    /// [`ProviderErrorKind::Unsupported`].
    async fn query_refund(
        &self,
        order: &Order,
        refund: &crate::refund::Refund,
    ) -> Result<RefundReport, ProviderError> {
        let _ = (order, refund);
        Err(ProviderError::unsupported(self.name(), "refund queries"))
    }
}

//! QFPay's asynchronous notifications (<https://sdk.qfapi.com/docs/common-api/async-notifications>):
//! `POST` with a JSON body, signed in the `X-QF-SIGN` header with the upper-case hex MD5 of
//! the raw body followed by the `client_key`. QFPay notifies successful payments
//! (`notify_type` `payment`) and successful refunds (`notify_type` `refund`), and retries
//! (2 min, 10 min, 10 min, 1 h, 2 h, 6 h, 15 h) until it gets HTTP 200 with the body `SUCCESS`.
//!
//! The signature is checked over the raw bytes, in constant time, before a single byte is
//! parsed; then the JSON is read leniently (QFPay warns that fields are added over time, and
//! amounts may come as numbers or as text).

use http::HeaderMap;
use serde_json::{Map, Value};

use super::client::whole_number;
use super::sign::{ClientKey, sign_body, signature_matches};

/// The header carrying the notification's signature.
pub const SIGN_HEADER: &str = "X-QF-SIGN";

/// The largest notification body verified. QFPay's notifications are well under 2 KiB; the
/// limit leaves room for the fields it may add.
pub const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;

/// What a notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyType {
    /// `payment`: a successful payment.
    Payment,
    /// `refund`: a successful refund (its `syssn` and `out_trade_no` are the refund's own).
    Refund,
    /// Any other value, kept as sent.
    Other(String),
}

/// A notification whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct QfpayNotification {
    /// `notify_type`.
    pub notify_type: NotifyType,
    /// `status`: `1` = payment success.
    pub status: Option<String>,
    /// `respcd`: `0000` in a notification of success.
    pub respcd: Option<String>,
    /// `syssn`: QFPay's transaction number (of the payment, or of the refund).
    pub syssn: String,
    /// `out_trade_no`: the merchant's number of the payment (or of the refund request).
    pub out_trade_no: String,
    /// `txamt` in minor units (fen).
    pub txamt: u64,
    /// `txcurrcd`.
    pub txcurrcd: Option<String>,
    /// `pay_type`.
    pub pay_type: Option<String>,
    /// `txdtm`: the order's time as the merchant sent it.
    pub txdtm: Option<String>,
    /// `sysdtm`: when QFPay created the transaction.
    pub sysdtm: Option<String>,
    /// `paydtm`: when the payer paid.
    pub paydtm: Option<String>,
    /// `cancel`: `0` not cancelled (see [`super::Transaction::cancel`]).
    pub cancel: Option<String>,
    /// `chnlsn`: the wallet's transaction number (WeChat's `transaction_id`).
    pub chnlsn: Option<String>,
    /// `orig_syssn`: in a refund notification, the refunded payment's `syssn` (when QFPay
    /// sends it).
    pub orig_syssn: Option<String>,
    /// `mchid` (only returned to agents).
    pub mchid: Option<String>,
    /// `goods_name`.
    pub goods_name: Option<String>,
    /// Every field as sent, unknown ones included.
    pub fields: Value,
}

impl QfpayNotification {
    /// Whether this reports a successful payment: `notify_type` `payment`, `status` `1` and
    /// `respcd` `0000`.
    pub fn is_paid(&self) -> bool {
        self.notify_type == NotifyType::Payment
            && self.status.as_deref() == Some("1")
            && self.respcd.as_deref() == Some("0000")
    }
}

/// A notification that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QfpayNotificationError {
    /// The body is larger than [`MAX_NOTIFICATION_BYTES`].
    #[error("the notification body exceeds {0} bytes")]
    TooLarge(usize),
    /// There is no `X-QF-SIGN` header.
    #[error("the notification has no X-QF-SIGN header")]
    MissingSignature,
    /// The signature does not match the body.
    #[error("the notification signature does not match")]
    BadSignature,
    /// The body verified but is not a notification we understand.
    #[error("malformed notification: {0}")]
    Malformed(String),
}

/// Verifies a notification from its raw headers and body with `client_key`, then reads it.
pub fn verify_notification(
    headers: &HeaderMap,
    body: &[u8],
    client_key: &ClientKey,
) -> Result<QfpayNotification, QfpayNotificationError> {
    if body.len() > MAX_NOTIFICATION_BYTES {
        return Err(QfpayNotificationError::TooLarge(MAX_NOTIFICATION_BYTES));
    }
    let presented = headers
        .get(SIGN_HEADER)
        .ok_or(QfpayNotificationError::MissingSignature)?
        .to_str()
        .map_err(|_| QfpayNotificationError::BadSignature)?;
    let expected = sign_body(body, client_key.expose());
    if !signature_matches(&expected, presented) {
        return Err(QfpayNotificationError::BadSignature);
    }
    parse(body)
}

fn parse(body: &[u8]) -> Result<QfpayNotification, QfpayNotificationError> {
    let malformed = |message: String| QfpayNotificationError::Malformed(message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let Value::Object(object) = &value else {
        return Err(malformed("not a JSON object".into()));
    };
    let required = |key: &str| {
        text(object, key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| malformed(format!("no {key}")))
    };
    let notify_type = match required("notify_type")?.as_str() {
        "payment" => NotifyType::Payment,
        "refund" => NotifyType::Refund,
        other => NotifyType::Other(other.to_owned()),
    };
    let txamt = object
        .get("txamt")
        .and_then(whole_number)
        .ok_or_else(|| malformed("no whole txamt in minor units".into()))?;
    let optional = |key: &str| text(object, key).filter(|v| !v.is_empty());
    Ok(QfpayNotification {
        notify_type,
        status: optional("status"),
        respcd: optional("respcd"),
        syssn: required("syssn")?,
        out_trade_no: required("out_trade_no")?,
        txamt,
        txcurrcd: optional("txcurrcd"),
        pay_type: optional("pay_type"),
        txdtm: optional("txdtm"),
        sysdtm: optional("sysdtm"),
        paydtm: optional("paydtm"),
        cancel: optional("cancel"),
        chnlsn: optional("chnlsn"),
        orig_syssn: optional("orig_syssn").or_else(|| optional("origssn")),
        mchid: optional("mchid"),
        goods_name: optional("goods_name"),
        fields: value.clone(),
    })
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

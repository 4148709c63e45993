//! weidoufu's payment callback, as the live service sends it.
//!
//! Seed 004 says nothing about it. The public .NET client of `open.weidoufu.com`
//! (`hudingwen/MyDotnet`, `Domain/Dto/Ns/OrderNotifyMsg.cs` and `PayController.cs`) shows a
//! JSON body `{"sign": "…", "content": {…}}` posted to the `notify_url`, where `content` has
//! `mch_trade_no`, `out_order_no`, `transaction_id` (the wallet's number: WeChat's transaction
//! id or Alipay's trade number), `total_fee` (fen), `attach`, `trade_type` (9 = mini program),
//! `pay_type` (1 WeChat, 2 Alipay), `bank_type`, `pay_time` (`YYYY-MM-DD hh:mm:ss`, China time),
//! `status` (1 pending, **2 paid**, 3 closed) and `nonce_str`. `sign` is described in
//! [`super::sign`]. It names no `access_key`: the HMAC with the secret key is what ties it to
//! this application.
//!
//! [`verify_callback`] checks the `sign` over the content's raw bytes before it reads any
//! field, so nothing unsigned is ever acted on. The acknowledgement the service expects is not
//! established by any source (that client answers HTTP 200 with a JSON envelope of its own);
//! the provider answers HTTP 200 `SUCCESS`, and anything else is retried.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::client::PayType;
use super::sign::{SecretKey, callback_signature_matches};

/// `content.status` of a payment still waiting.
pub const STATUS_PENDING: u64 = 1;
/// `content.status` of a paid order.
pub const STATUS_PAID: u64 = 2;
/// `content.status` of a closed order.
pub const STATUS_CLOSED: u64 = 3;

/// A callback that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The body is not UTF-8 text.
    #[error("the callback body is not UTF-8")]
    NotUtf8,
    /// There is no `sign`, or it is empty.
    #[error("the callback has no sign")]
    MissingSign,
    /// The signature does not match.
    #[error("the callback sign does not match")]
    BadSignature,
    /// The body is not `{"sign", "content"}`, or it verified but its content is not understood.
    #[error("malformed callback: {0}")]
    Malformed(String),
}

/// A callback whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct WeidoufuCallback {
    /// The content's fields, as sent.
    pub content: Map<String, Value>,
    /// `out_order_no`: our order number.
    pub out_order_no: String,
    /// `mch_trade_no`: weidoufu's order number, as `/pay/miniapp` returned it.
    pub mch_trade_no: String,
    /// `transaction_id`: the WeChat transaction id or the Alipay trade number (present when
    /// paid).
    pub transaction_id: Option<String>,
    /// `pay_type`.
    pub pay_type: PayType,
    /// `total_fee`, in fen.
    pub total_fee: u64,
    /// `attach`, as sent with the payment.
    pub attach: Option<String>,
    /// `status`: [`STATUS_PAID`] when paid.
    pub status: u64,
    /// `pay_time` as written (`YYYY-MM-DD hh:mm:ss`).
    pub pay_time: Option<String>,
}

impl WeidoufuCallback {
    /// Whether the callback reports a payment.
    pub fn is_paid(&self) -> bool {
        self.status == STATUS_PAID
    }

    /// `pay_time` read as Beijing time (UTC+08:00): weidoufu writes no zone and runs on China
    /// time.
    pub fn paid_at(&self) -> Option<OffsetDateTime> {
        const FORMAT: &[FormatItem<'static>] =
            format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let text = self.pay_time.as_deref()?;
        PrimitiveDateTime::parse(text, FORMAT)
            .ok()
            .map(|t| t.assume_offset(offset!(+8)))
    }
}

/// The envelope, with `content` kept as the bytes that were signed.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    sign: Option<String>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// Verifies a callback body: the `sign` over the content as received (constant time), and
/// only then reads the fields.
pub fn verify_callback(
    raw_body: &[u8],
    secret_key: &SecretKey,
) -> Result<WeidoufuCallback, CallbackError> {
    let body = std::str::from_utf8(raw_body).map_err(|_| CallbackError::NotUtf8)?;
    let envelope: Envelope<'_> = serde_json::from_str(body).map_err(|e| {
        CallbackError::Malformed(format!("expected {{\"sign\", \"content\"}} JSON: {e}"))
    })?;
    let signature = envelope
        .sign
        .filter(|s| !s.is_empty())
        .ok_or(CallbackError::MissingSign)?;
    let raw = envelope
        .content
        .ok_or_else(|| CallbackError::Malformed("no content".into()))?;
    // An object is hashed as its JSON text; a content sent as a JSON string, as its value.
    let as_string: Option<String> = serde_json::from_str(raw.get()).ok();
    let signed = as_string.as_deref().unwrap_or(raw.get());
    if !callback_signature_matches(signed.as_bytes(), &signature, secret_key) {
        return Err(CallbackError::BadSignature);
    }
    let content: Map<String, Value> = serde_json::from_str(signed)
        .map_err(|e| CallbackError::Malformed(format!("content is not a JSON object: {e}")))?;
    read_content(content)
}

/// A text field (strings as they are, numbers in decimal).
fn text(content: &Map<String, Value>, key: &str) -> Option<String> {
    match content.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A whole number sent as a JSON number or as a string of digits.
fn whole(content: &Map<String, Value>, key: &str) -> Result<u64, CallbackError> {
    let bad = || CallbackError::Malformed(format!("{key} is not a whole number"));
    match content.get(key) {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| bad())
        }
        None | Some(Value::Null) => Err(CallbackError::Malformed(format!("no {key}"))),
        Some(_) => Err(bad()),
    }
}

fn read_content(content: Map<String, Value>) -> Result<WeidoufuCallback, CallbackError> {
    let required = |key: &str| {
        text(&content, key).ok_or_else(|| CallbackError::Malformed(format!("no {key}")))
    };
    let pay_type_code = whole(&content, "pay_type")?;
    let pay_type = PayType::from_code(&pay_type_code.to_string())
        .ok_or_else(|| CallbackError::Malformed(format!("unknown pay_type {pay_type_code}")))?;
    let total_fee = whole(&content, "total_fee")?;
    let status = whole(&content, "status")?;
    let transaction_id = text(&content, "transaction_id");
    if status == STATUS_PAID && transaction_id.is_none() {
        return Err(CallbackError::Malformed(
            "a payment without transaction_id".into(),
        ));
    }
    Ok(WeidoufuCallback {
        out_order_no: required("out_order_no")?,
        mch_trade_no: required("mch_trade_no")?,
        transaction_id,
        pay_type,
        total_fee,
        attach: text(&content, "attach"),
        status,
        pay_time: text(&content, "pay_time"),
        content,
    })
}

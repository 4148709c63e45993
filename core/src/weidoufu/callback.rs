//! weidoufu's payment callback.
//!
//! Seed 004 says nothing about it. **Our choice** (issue-8 contract B): weidoufu posts
//! `application/x-www-form-urlencoded` to the `notify_url` with `access_key`, `out_order_no`,
//! `mch_trade_no`, `trade_no` (the WeChat transaction id or Alipay trade number), `pay_type`,
//! `total_fee`, `openid` or `buyer_id`, `attach` (if any), `trade_status` (`SUCCESS` = paid),
//! `pay_time` (`YYYY-MM-DD hh:mm:ss`, Beijing time), `nonce_str` and `sign`, signed with the rule of
//! [`super::sign`] over the decoded values; the shop answers HTTP 200 `SUCCESS`.
//!
//! [`verify_callback`] checks the `sign` before it reads any field, so nothing unsigned is ever
//! acted on.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::client::PayType;
use super::sign::{Params, SIGN_FIELD, SecretKey, signature_matches};

/// The `trade_status` of a paid order.
pub const TRADE_STATUS_SUCCESS: &str = "SUCCESS";

/// A callback that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The body is not UTF-8 text, or a value is not UTF-8 once decoded.
    #[error("the callback body is not UTF-8")]
    NotUtf8,
    /// There is no `sign`, or it is empty.
    #[error("the callback has no sign")]
    MissingSign,
    /// The signature does not match.
    #[error("the callback sign does not match")]
    BadSignature,
    /// The callback verified but names another application's `access_key`.
    #[error("the callback is for another access_key")]
    WrongAccessKey,
    /// The body is not a form, or it verified but its content is not understood.
    #[error("malformed callback: {0}")]
    Malformed(String),
}

/// A callback whose signature and `access_key` verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeidoufuCallback {
    /// Every field but `sign`, decoded.
    pub fields: BTreeMap<String, String>,
    /// `access_key` (the configured one).
    pub access_key: String,
    /// `out_order_no`: our order number.
    pub out_order_no: String,
    /// `mch_trade_no`: weidoufu's order number, as `/pay/miniapp` returned it.
    pub mch_trade_no: String,
    /// `trade_no`: the WeChat transaction id or the Alipay trade number (always present when
    /// paid).
    pub trade_no: Option<String>,
    /// `pay_type`.
    pub pay_type: PayType,
    /// `total_fee`, in fen.
    pub total_fee: u64,
    /// `openid` (WeChat) or `buyer_id` (Alipay).
    pub payer_id: Option<String>,
    /// `attach`, as sent with the payment.
    pub attach: Option<String>,
    /// `trade_status`: [`TRADE_STATUS_SUCCESS`] when paid.
    pub trade_status: String,
    /// `pay_time` as written (`YYYY-MM-DD hh:mm:ss`).
    pub pay_time: Option<String>,
}

impl WeidoufuCallback {
    /// Whether the callback reports a payment.
    pub fn is_paid(&self) -> bool {
        self.trade_status == TRADE_STATUS_SUCCESS
    }

    /// `pay_time` read as Beijing time (UTC+08:00): weidoufu writes no zone and runs on China time
    /// (our choice, contract B).
    pub fn paid_at(&self) -> Option<OffsetDateTime> {
        const FORMAT: &[FormatItem<'static>] =
            format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let text = self.pay_time.as_deref()?;
        PrimitiveDateTime::parse(text, FORMAT)
            .ok()
            .map(|t| t.assume_offset(offset!(+8)))
    }
}

/// Form decoding (`+` is a space, `%XX` a byte), strict: invalid UTF-8 is an error rather than a
/// replacement character that could alias another value.
fn form_decode(raw: &str) -> Result<String, CallbackError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| CallbackError::NotUtf8)
}

/// The form's fields, decoded. A name given twice is refused: which of the two was signed would
/// be a guess.
fn parse_form(body: &str) -> Result<Params, CallbackError> {
    let mut fields = Params::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_decode(name)?;
        let value = form_decode(value)?;
        if fields.contains_key(&name) {
            return Err(CallbackError::Malformed(format!("{name:?} given twice")));
        }
        fields.insert(name, value);
    }
    Ok(fields)
}

/// Verifies a callback body: the `sign` with `secret_key` (constant time), then the
/// `access_key` against `expected_access_key`, and only then reads the fields.
pub fn verify_callback(
    raw_body: &[u8],
    secret_key: &SecretKey,
    expected_access_key: &str,
) -> Result<WeidoufuCallback, CallbackError> {
    let body = std::str::from_utf8(raw_body).map_err(|_| CallbackError::NotUtf8)?;
    let mut fields = parse_form(body)?;
    let signature = fields
        .remove(SIGN_FIELD)
        .filter(|s| !s.is_empty())
        .ok_or(CallbackError::MissingSign)?;
    if !signature_matches(&fields, &signature, secret_key) {
        return Err(CallbackError::BadSignature);
    }
    // The access key is public (it is sent with every payment), so a plain comparison is fine.
    if fields.get("access_key").map(String::as_str) != Some(expected_access_key) {
        return Err(CallbackError::WrongAccessKey);
    }
    read_fields(fields, expected_access_key)
}

fn read_fields(
    fields: BTreeMap<String, String>,
    access_key: &str,
) -> Result<WeidoufuCallback, CallbackError> {
    let optional = |key: &str| fields.get(key).filter(|v| !v.is_empty()).cloned();
    let required =
        |key: &str| optional(key).ok_or_else(|| CallbackError::Malformed(format!("no {key}")));
    let pay_type_text = required("pay_type")?;
    let pay_type = PayType::from_code(&pay_type_text)
        .ok_or_else(|| CallbackError::Malformed(format!("unknown pay_type {pay_type_text:?}")))?;
    let fee_text = required("total_fee")?;
    let total_fee = Some(fee_text.as_str())
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| CallbackError::Malformed("total_fee is not a whole number of fen".into()))?;
    let trade_status = required("trade_status")?;
    let trade_no = optional("trade_no");
    if trade_status == TRADE_STATUS_SUCCESS && trade_no.is_none() {
        return Err(CallbackError::Malformed(
            "a payment without trade_no".into(),
        ));
    }
    Ok(WeidoufuCallback {
        access_key: access_key.to_owned(),
        out_order_no: required("out_order_no")?,
        mch_trade_no: required("mch_trade_no")?,
        trade_no,
        pay_type,
        total_fee,
        payer_id: optional(pay_type.payer_field()),
        attach: optional("attach"),
        trade_status,
        pay_time: optional("pay_time"),
        fields,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn form_decoding_is_strict() {
        assert_eq!(form_decode("a+b%20c%E4%B8%AD").unwrap(), "a b c中");
        assert_eq!(form_decode("%2B").unwrap(), "+");
        assert!(form_decode("%E4%B8").is_err());
        let fields = parse_form("a=1&&b=&c").unwrap();
        assert_eq!(fields.get("a").unwrap(), "1");
        assert_eq!(fields.get("b").unwrap(), "");
        assert_eq!(fields.get("c").unwrap(), "");
        assert!(matches!(
            parse_form("a=1&a=2"),
            Err(CallbackError::Malformed(_))
        ));
    }
}

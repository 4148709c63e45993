//! The gateway's payment callback (seed 001): a form body posted to our `notify_url`, verified
//! with [`check_open_sign`], whose `biz_content` carries the payment as JSON.

use std::collections::BTreeMap;

use form_urlencoded::parse as parse_form;
use serde_json::Value;
use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::sign::{AppKey, check_open_sign, signed_fields};

/// A callback that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The body is not UTF-8 text.
    #[error("the callback body is not UTF-8")]
    NotUtf8,
    /// There is no `sign`.
    #[error("the callback has no sign")]
    MissingSign,
    /// The signature does not match.
    #[error("the callback sign does not match")]
    BadSignature,
    /// It verified but its content is not understood.
    #[error("malformed callback: {0}")]
    Malformed(String),
}

/// What `biz_content` says (seed 001's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BizContent {
    /// `uid`: the `ucid` we sent, if any.
    pub uid: Option<String>,
    /// `trade_id`: the gateway's id of the payment.
    pub trade_id: String,
    /// `total_amount`, in fen.
    pub total_amount: u64,
    /// `trade_pay_time` (`yyyy-MM-dd HH:mm:ss`) as written.
    pub trade_pay_time: Option<String>,
    /// `trade_status`: `SUCCESS` when paid.
    pub trade_status: String,
    /// `pay_type`: `113` for JSAPI.
    pub pay_type: Option<String>,
    /// `callback_content`: WeChat's raw XML notification to the gateway.
    pub callback_content: Option<String>,
    /// `title`, as we sent it.
    pub title: Option<String>,
    /// `biz_order_id`: our `out_trade_no`.
    pub biz_order_id: String,
}

impl BizContent {
    /// `trade_pay_time` read as Beijing time (UTC+8): seed 001 gives no zone, and the gateway
    /// and WeChat Pay run on China time (our choice, documented here).
    pub fn paid_at(&self) -> Option<OffsetDateTime> {
        const FORMAT: &[FormatItem<'static>] =
            format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let text = self.trade_pay_time.as_deref()?;
        PrimitiveDateTime::parse(text, FORMAT)
            .ok()
            .map(|t| t.assume_offset(offset!(+8)))
    }
}

/// A callback whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCallback {
    /// The signed fields, URL-decoded (`biz_id`, `client_id`, `nonce_str`, `sign_type`,
    /// `version`, `timestamp`, `biz_content`, …).
    pub fields: BTreeMap<String, String>,
    /// `biz_content`, parsed.
    pub biz_content: BizContent,
    /// `biz_content` as the JSON it was.
    pub biz_content_json: Value,
}

/// URL-decoding as Java's `URLDecoder` does it (`+` is a space, `%XX` a byte, the bytes UTF-8),
/// but strict: a malformed escape or invalid UTF-8 is an error rather than a guess.
pub fn url_decode(raw: &str) -> Result<String, CallbackError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| CallbackError::Malformed("bad %-escape".to_owned()))?;
                out.push(hex);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| CallbackError::Malformed("not UTF-8 once decoded".into()))
}

/// Verifies a callback body exactly as seed 001's `checkOpenSign` does, then reads the fields
/// **that were signed** (so nothing unsigned is ever acted on).
///
/// The `sign` compared is the body's first `sign` parameter, URL-decoded, which is what a
/// servlet's `getParameter("sign")` hands the listing's caller.
pub fn verify_callback(raw_body: &[u8], key: &AppKey) -> Result<VerifiedCallback, CallbackError> {
    let body = std::str::from_utf8(raw_body).map_err(|_| CallbackError::NotUtf8)?;
    let sign = parse_form(raw_body)
        .find(|(k, _)| k == "sign")
        .map(|(_, v)| v.into_owned())
        .ok_or(CallbackError::MissingSign)?;
    if !check_open_sign(key, &sign, body) {
        return Err(CallbackError::BadSignature);
    }
    let mut fields = BTreeMap::new();
    for (k, v) in signed_fields(body) {
        fields.insert(url_decode(k)?, url_decode(v)?);
    }
    let raw_content = fields
        .get("biz_content")
        .ok_or_else(|| CallbackError::Malformed("no biz_content".into()))?;
    let json = parse_biz_content(raw_content)?;
    let biz_content = biz_content(&json)?;
    Ok(VerifiedCallback {
        fields,
        biz_content,
        biz_content_json: json,
    })
}

/// `biz_content` is JSON in seed 001's example (and DESIGN §6); the seed's table also calls it
/// `key=value&…` with raw values, so that form is read too, into a JSON object of strings.
fn parse_biz_content(text: &str) -> Result<Value, CallbackError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| CallbackError::Malformed(format!("biz_content is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(CallbackError::Malformed(
                "biz_content is not an object".into(),
            ));
        }
        return Ok(value);
    }
    let mut object = serde_json::Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        object.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(Value::Object(object))
}

fn text(json: &Value, key: &str) -> Option<String> {
    match json.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required(json: &Value, key: &str) -> Result<String, CallbackError> {
    text(json, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CallbackError::Malformed(format!("biz_content has no {key}")))
}

fn biz_content(json: &Value) -> Result<BizContent, CallbackError> {
    let total_amount = match json.get("total_amount") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
    .ok_or_else(|| {
        CallbackError::Malformed("biz_content has no whole total_amount in fen".into())
    })?;
    Ok(BizContent {
        uid: text(json, "uid"),
        trade_id: required(json, "trade_id")?,
        total_amount,
        trade_pay_time: text(json, "trade_pay_time"),
        trade_status: required(json, "trade_status")?,
        pay_type: text(json, "pay_type"),
        callback_content: text(json, "callback_content"),
        title: text(json, "title"),
        biz_order_id: required(json, "biz_order_id")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn url_decode_is_strict() {
        assert_eq!(url_decode("a+b%20c%E4%B8%AD").unwrap(), "a b c中");
        assert!(url_decode("%E4%B8").is_err());
        assert!(url_decode("%zz").is_err());
        assert!(url_decode("%4").is_err());
    }

    #[test]
    fn biz_content_in_both_forms() {
        let json = parse_biz_content(r#"{"trade_id":1501822040,"total_amount":"83601","trade_status":"SUCCESS","biz_order_id":"21-364535"}"#).unwrap();
        let content = biz_content(&json).unwrap();
        assert_eq!(content.trade_id, "1501822040");
        assert_eq!(content.total_amount, 83601);
        let form = parse_biz_content(
            "trade_id=9&total_amount=5&trade_status=SUCCESS&biz_order_id=x&title=a=b",
        )
        .unwrap();
        let content = biz_content(&form).unwrap();
        assert_eq!(content.total_amount, 5);
        assert_eq!(content.title.as_deref(), Some("a=b"));
        for bad in [
            r#"{"trade_id":"1","total_amount":1.5,"trade_status":"SUCCESS","biz_order_id":"x"}"#,
            r#"{"trade_id":"1","total_amount":-1,"trade_status":"SUCCESS","biz_order_id":"x"}"#,
            r#"{"total_amount":1,"trade_status":"SUCCESS","biz_order_id":"x"}"#,
            "[1]",
            "{",
        ] {
            assert!(
                parse_biz_content(bad)
                    .and_then(|j| biz_content(&j))
                    .is_err(),
                "{bad}"
            );
        }
    }
}

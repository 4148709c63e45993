//! API v2 payment notifications (official docs, 支付结果通知 `chapter=9_7`) and refund
//! notifications (退款结果通知 `chapter=9_16`), which come to the same `notify_url` when the
//! refund names it.
//!
//! A refund notification carries no `sign`: its refund fields are sealed in `req_info` with a
//! key derived from the API key ([`super::refund`]), and decrypting them is what proves it came
//! from WeChat Pay. [`read_notification`] tells the two apart by `req_info`.
//!
//! WeChat Pay posts XML to the `notify_url`; the merchant verifies its `sign` (every field but
//! `sign` takes part, unknown ones included, so the map is verified as received) and answers
//! [`ACK_XML`]. Any other answer (a non-2xx status, or `return_code` `FAIL`) makes WeChat Pay
//! retry, at 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h.

use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::sign::{self, ApiKey, Params, SignError, SignType};
use super::xml::{self, XmlError};

/// The acknowledgement WeChat Pay expects, byte for byte (official docs).
pub const ACK_XML: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// A notification that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum V2NotificationError {
    /// Not a flat API v2 XML message.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// `return_code` is not `SUCCESS`: such a message carries no signature.
    #[error("notification with return_code {0:?}")]
    NotSuccess(String),
    /// The signature did not verify.
    #[error("notification signature: {0}")]
    Signature(#[from] SignError),
    /// The `req_info` of a refund notification did not decrypt with the API key, or is not
    /// its XML.
    #[error("refund notification: {0}")]
    RefundInfo(String),
}

/// A verified notification: a payment's (signed) or a refund's (sealed `req_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum V2Notification {
    /// 支付结果通知.
    Payment(VerifiedV2Notification),
    /// 退款结果通知.
    Refund(DecryptedV2Refund),
}

/// A refund notification whose `req_info` decrypted with the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedV2Refund {
    /// The outer fields (`return_code`, `appid`, `mch_id`, `nonce_str`, `req_info`).
    pub envelope: Params,
    /// The decrypted refund fields (`out_refund_no`, `refund_id`, `refund_status`, …).
    pub info: Params,
}

/// Reads a notification body: a refund notification when it carries `req_info` (decrypted
/// with `key`), else a payment notification (its `sign` verified with `key`).
pub fn read_notification(body: &[u8], key: &ApiKey) -> Result<V2Notification, V2NotificationError> {
    let params = xml::parse(body)?;
    let return_code = params.get("return_code").map(String::as_str).unwrap_or("");
    if return_code != "SUCCESS" {
        return Err(V2NotificationError::NotSuccess(return_code.to_owned()));
    }
    let Some(req_info) = params.get("req_info") else {
        let sign_type = sign::verify(&params, key)?;
        return Ok(V2Notification::Payment(VerifiedV2Notification {
            params,
            sign_type,
        }));
    };
    let plaintext = super::refund::decrypt_refund_req_info(req_info, key)
        .map_err(|e| V2NotificationError::RefundInfo(e.to_string()))?;
    let info = xml::parse(plaintext.as_bytes())
        .map_err(|e| V2NotificationError::RefundInfo(e.to_string()))?;
    Ok(V2Notification::Refund(DecryptedV2Refund {
        envelope: params,
        info,
    }))
}

/// A notification whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedV2Notification {
    /// Every field as received (`sign` included).
    pub params: Params,
    /// The algorithm it was signed with.
    pub sign_type: SignType,
}

/// Parses and verifies a notification body; the algorithm is detected from the message
/// (`sign_type`, else the length of `sign`), and the comparison is constant-time.
pub fn verify_notification(
    body: &[u8],
    key: &ApiKey,
) -> Result<VerifiedV2Notification, V2NotificationError> {
    let params = xml::parse(body)?;
    let return_code = params.get("return_code").map(String::as_str).unwrap_or("");
    if return_code != "SUCCESS" {
        return Err(V2NotificationError::NotSuccess(return_code.to_owned()));
    }
    let sign_type = sign::verify(&params, key)?;
    Ok(VerifiedV2Notification { params, sign_type })
}

/// A failure reply: `return_code` `FAIL` with `message` (in CDATA), which WeChat Pay retries.
pub fn fail_xml(message: &str) -> String {
    let mut out = String::from("<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>");
    super::xml::push_cdata(&mut out, message);
    out.push_str("</return_msg></xml>");
    out
}

const TIME_END: &[FormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second]");

/// Reads `time_end` (`yyyyMMddHHmmss`, Beijing time, UTC+8).
pub fn parse_time_end(value: &str) -> Option<OffsetDateTime> {
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    PrimitiveDateTime::parse(value, TIME_END)
        .ok()
        .map(|t| t.assume_offset(offset!(+8)))
}

const SPACED_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Reads the refunds' `success_time` / `refund_success_time_$n` (`yyyy-MM-dd HH:mm:ss`,
/// Beijing time).
pub fn parse_refund_time(value: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(value, SPACED_TIME)
        .ok()
        .map(|t| t.assume_offset(offset!(+8)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn time_end_is_beijing_time() {
        let t = parse_time_end("20250308084835").unwrap();
        assert_eq!(t.unix_timestamp(), 1_741_394_915);
        assert!(parse_time_end("2025030808483").is_none());
        assert!(parse_time_end("2025-03-08 08:48").is_none());
        assert!(parse_time_end("20251308084835").is_none());
        let t = parse_refund_time("2025-03-08 08:48:35").unwrap();
        assert_eq!(t.unix_timestamp(), 1_741_394_915);
        assert!(parse_refund_time("20250308084835").is_none());
    }

    #[test]
    fn fail_reply_escapes_cdata() {
        assert_eq!(
            fail_xml("a]]>b"),
            "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[a]]]]><![CDATA[>b]]></return_msg></xml>"
        );
    }
}

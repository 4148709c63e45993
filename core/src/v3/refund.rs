//! Typed API v3 refund messages: the domestic refund request (申请退款), the refund record the
//! refund and query APIs answer (查询单笔退款), and the resource of `REFUND.*` notifications.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::fields::{Currency, NotifyUrl, OutRefundNo, OutTradeNo, RefundReason};
use crate::refund::RefundStatus;

/// `POST /v3/refund/domestic/refunds`.
///
/// WeChat Pay takes the payment by `transaction_id` or by `out_trade_no`, one of the two; a
/// repeat with the same `out_refund_no` and the same parameters is the same refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomesticRefundRequest {
    /// WeChat Pay's transaction id of the payment, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The merchant's order number, when the transaction id is not sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<OutTradeNo>,
    /// The merchant's refund number (≤ 64).
    pub out_refund_no: OutRefundNo,
    /// Shown to the payer (≤ 80 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefundReason>,
    /// Where the `REFUND.*` notifications go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<NotifyUrl>,
    /// How much of how much.
    pub amount: RefundAmountRequest,
}

/// The amount of a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundAmountRequest {
    /// The refund in fen.
    pub refund: u64,
    /// The order's total in fen, as paid.
    pub total: u64,
    /// `CNY`.
    pub currency: Currency,
}

/// A refund's status as WeChat Pay writes it. Unknown spellings are kept, not refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamRefundStatus {
    /// One of the four statuses the engine knows.
    Known(RefundStatus),
    /// A status WeChat Pay added later.
    Unknown(String),
}

impl<'de> Deserialize<'de> for UpstreamRefundStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(match value.parse() {
            Ok(status) => UpstreamRefundStatus::Known(status),
            Err(_) => UpstreamRefundStatus::Unknown(value),
        })
    }
}

impl Serialize for UpstreamRefundStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            UpstreamRefundStatus::Known(status) => serializer.serialize_str(status.as_str()),
            UpstreamRefundStatus::Unknown(other) => serializer.serialize_str(other),
        }
    }
}

/// The amounts of a refund record or notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    /// The order's total in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The refund in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<u64>,
    /// What the payer paid in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<u64>,
    /// What goes back to the payer in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_refund: Option<u64>,
    /// The currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// A refund as the refund and query APIs answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// The refunded payment's transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The refunded order's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// `ORIGINAL`, `BALANCE`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Where the money goes, e.g. `招商银行信用卡0403`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    /// When the money reached the payer (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    /// When the refund was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// The status.
    pub status: UpstreamRefundStatus,
    /// The amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<RefundAmount>,
}

/// The decrypted resource of a `REFUND.SUCCESS`, `REFUND.ABNORMAL` or `REFUND.CLOSED`
/// notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundNotice {
    /// The merchant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mchid: Option<String>,
    /// The refunded order's number.
    pub out_trade_no: String,
    /// The refunded payment's transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat Pay's refund id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The status.
    pub refund_status: UpstreamRefundStatus,
    /// When the money reached the payer (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    /// Where the money went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    /// The amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<RefundAmount>,
}

/// Parses WeChat Pay's RFC 3339 times, `None` for an absent or malformed one.
pub(crate) fn parse_time(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|text| {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Currency;

    #[test]
    fn request_sends_one_payment_reference() {
        let request = DomesticRefundRequest {
            transaction_id: Some("4200000001".into()),
            out_trade_no: None,
            out_refund_no: "R1217752501201407033233368018".try_into().unwrap(),
            reason: Some("商品已售完".try_into().unwrap()),
            notify_url: None,
            amount: RefundAmountRequest {
                refund: 888,
                total: 888,
                currency: Currency::cny(),
            },
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["transaction_id"], "4200000001");
        assert!(json.get("out_trade_no").is_none());
        assert!(json.get("notify_url").is_none());
        assert_eq!(json["amount"]["refund"], 888);
        assert_eq!(json["amount"]["currency"], "CNY");
        assert_eq!(json["reason"], "商品已售完");
    }

    #[test]
    fn record_parses_with_open_statuses() {
        let record: RefundRecord = serde_json::from_str(
            r#"{"refund_id":"50000000382019052709732678859","out_refund_no":"1217752501201407033233368018",
                "transaction_id":"1217752501201407033233368018","out_trade_no":"1217752501201407033233368018",
                "channel":"ORIGINAL","user_received_account":"招商银行信用卡0403",
                "success_time":"2020-12-01T16:18:12+08:00","create_time":"2020-12-01T16:18:12+08:00",
                "status":"SUCCESS","funds_account":"UNSETTLED",
                "amount":{"total":100,"refund":100,"payer_total":90,"payer_refund":90,"currency":"CNY"}}"#,
        )
        .unwrap();
        assert_eq!(
            record.status,
            UpstreamRefundStatus::Known(RefundStatus::Success)
        );
        assert_eq!(record.amount.unwrap().refund, Some(100));
        assert!(parse_time(record.success_time.as_deref()).is_some());
        let status: UpstreamRefundStatus = serde_json::from_str("\"LATER\"").unwrap();
        assert_eq!(status, UpstreamRefundStatus::Unknown("LATER".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"LATER\"");
    }
}

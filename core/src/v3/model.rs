//! Typed API v3 messages: JSAPI prepay, transactions, notifications, certificates and errors.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, UtcOffset};

use crate::fields::{Amount, Attach, Currency, Description, NotifyUrl, OpenId, OutTradeNo};

use super::aead::EncryptedResource;

/// `POST /v3/pay/transactions/jsapi`: the JSAPI prepay (下单) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsapiPrepayRequest {
    /// The appid the payer's openid belongs to.
    pub appid: String,
    /// The merchant id.
    pub mchid: String,
    /// What the payer sees (≤ 127 characters).
    pub description: Description,
    /// The merchant's order number.
    pub out_trade_no: OutTradeNo,
    /// When the order stops being payable.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_wechat_time_opt"
    )]
    pub time_expire: Option<OffsetDateTime>,
    /// Merchant data returned in the notification (≤ 128 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<Attach>,
    /// Where the payment notification goes.
    pub notify_url: NotifyUrl,
    /// How much.
    pub amount: PrepayAmount,
    /// Who pays.
    pub payer: PrepayPayer,
    /// The payer's terminal, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene_info: Option<SceneInfo>,
}

/// The amount of a prepay request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayAmount {
    /// Total in fen.
    pub total: Amount,
    /// Currency, `CNY`.
    pub currency: Currency,
}

/// The payer of a prepay request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayPayer {
    /// The payer's openid under `appid`.
    pub openid: OpenId,
}

/// Where the payment is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneInfo {
    /// The payer's IP address.
    pub payer_client_ip: String,
}

/// The JSAPI prepay response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayResponse {
    /// The prepay id, valid for two hours.
    pub prepay_id: String,
}

/// A transaction's state (`trade_state`). Unknown states are kept, not refused, so a state WeChat
/// Pay adds later does not break the parsing of everything else.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TradeState {
    /// Paid.
    Success,
    /// Refunded (in part or whole).
    Refund,
    /// Not paid yet.
    NotPay,
    /// Closed.
    Closed,
    /// Revoked (payment code only).
    Revoked,
    /// The payer is entering the password.
    UserPaying,
    /// Payment failed.
    PayError,
    /// Accepted, being processed.
    Accept,
    /// A state this version does not know.
    Unknown(String),
}

impl TradeState {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Refund => "REFUND",
            Self::NotPay => "NOTPAY",
            Self::Closed => "CLOSED",
            Self::Revoked => "REVOKED",
            Self::UserPaying => "USERPAYING",
            Self::PayError => "PAYERROR",
            Self::Accept => "ACCEPT",
            Self::Unknown(other) => other,
        }
    }

    /// Parses a wire name.
    pub fn parse(value: &str) -> Self {
        match value {
            "SUCCESS" => Self::Success,
            "REFUND" => Self::Refund,
            "NOTPAY" => Self::NotPay,
            "CLOSED" => Self::Closed,
            "REVOKED" => Self::Revoked,
            "USERPAYING" => Self::UserPaying,
            "PAYERROR" => Self::PayError,
            "ACCEPT" => Self::Accept,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for TradeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TradeState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TradeState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(Self::parse(&value))
    }
}

/// A transaction, as returned by the query APIs and carried (encrypted) by payment
/// notifications. Field types are lenient where WeChat Pay's are open: this describes what
/// WeChat said, and the engine cross-checks it against the stored order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The appid.
    pub appid: String,
    /// The merchant id.
    pub mchid: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// WeChat Pay's transaction id, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// `JSAPI`, `NATIVE`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_type: Option<String>,
    /// The state.
    pub trade_state: TradeState,
    /// A description of the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_state_desc: Option<String>,
    /// The payer's bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_type: Option<String>,
    /// The merchant data given at prepay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// When the payment succeeded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    /// Who paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<TransactionPayer>,
    /// How much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<TransactionAmount>,
}

impl Transaction {
    /// `success_time` parsed, when present and well-formed.
    pub fn success_time(&self) -> Option<OffsetDateTime> {
        self.success_time.as_deref().and_then(|text| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        })
    }
}

/// The payer of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionPayer {
    /// The payer's openid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

/// The amount of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionAmount {
    /// Order total in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// What the payer paid in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<u64>,
    /// Order currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Payer currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_currency: Option<String>,
}

/// The envelope of a notification (回调通知): its resource is still encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEnvelope {
    /// The notification id: the same across retries of one notification.
    pub id: String,
    /// When it was created.
    #[serde(default)]
    pub create_time: Option<String>,
    /// `TRANSACTION.SUCCESS`, ….
    pub event_type: String,
    /// `encrypt-resource`.
    #[serde(default)]
    pub resource_type: Option<String>,
    /// A human summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// The encrypted payload.
    pub resource: EncryptedResource,
}

/// `GET /v3/certificates`: the platform certificates, each encrypted with the API v3 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateList {
    /// The certificates.
    pub data: Vec<EncryptedCertificate>,
}

/// One entry of [`CertificateList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedCertificate {
    /// The certificate's serial.
    pub serial_no: String,
    /// Start of validity (RFC 3339).
    pub effective_time: String,
    /// End of validity (RFC 3339).
    pub expire_time: String,
    /// The PEM certificate, encrypted.
    pub encrypt_certificate: EncryptedResource,
}

/// The error envelope of every API v3 failure. Codes are open strings (`PARAM_ERROR`,
/// `SIGN_ERROR`, `SYSTEM_ERROR`, `ORDERPAID`, …): new ones appear without notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error code.
    pub code: String,
    /// A human message (often Chinese).
    pub message: String,
    /// More detail, in a shape that depends on the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// `POST /v3/pay/transactions/out-trade-no/{no}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CloseRequest<'a> {
    pub(crate) mchid: &'a str,
}

const CHINA_STANDARD_TIME: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// Formats a time the way WeChat Pay writes it: `2018-06-08T10:34:56+08:00`.
pub fn format_wechat_time(when: OffsetDateTime) -> String {
    let local = when.to_offset(CHINA_STANDARD_TIME);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+08:00",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

fn serialize_wechat_time_opt<S: Serializer>(
    value: &Option<OffsetDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(when) => serializer.serialize_str(&format_wechat_time(*when)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_state_keeps_unknown_values() {
        let state: TradeState = serde_json::from_str("\"SUCCESS\"").unwrap();
        assert_eq!(state, TradeState::Success);
        let state: TradeState = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(state, TradeState::Unknown("SOMETHING_NEW".into()));
        assert_eq!(serde_json::to_string(&state).unwrap(), "\"SOMETHING_NEW\"");
    }

    #[test]
    fn wechat_time_is_china_standard_time() {
        let when = OffsetDateTime::from_unix_timestamp(1_528_425_296).unwrap();
        assert_eq!(format_wechat_time(when), "2018-06-08T10:34:56+08:00");
    }

    #[test]
    fn prepay_request_serialises_as_wechat_expects() {
        let request = JsapiPrepayRequest {
            appid: "wxd678efh567hg6787".into(),
            mchid: "1230000109".into(),
            description: "Image形象店-深圳腾大-QQ公仔".try_into().unwrap(),
            out_trade_no: "1217752501201407033233368018".try_into().unwrap(),
            time_expire: None,
            attach: None,
            notify_url: "https://www.weixin.qq.com/wxpay/pay.php"
                .try_into()
                .unwrap(),
            amount: PrepayAmount {
                total: Amount::from_fen(100).unwrap(),
                currency: Currency::cny(),
            },
            payer: PrepayPayer {
                openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".try_into().unwrap(),
            },
            scene_info: None,
        };
        let json: serde_json::Value = serde_json::to_value(&request).unwrap();
        assert_eq!(json["amount"]["total"], 100);
        assert_eq!(json["amount"]["currency"], "CNY");
        assert_eq!(json["payer"]["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
        assert!(json.get("time_expire").is_none());
        assert!(json.get("attach").is_none());
    }

    #[test]
    fn error_envelope_with_open_codes() {
        let envelope: ErrorEnvelope =
            serde_json::from_str(r#"{"code":"NEW_CODE","message":"m","detail":{"field":"x"}}"#)
                .unwrap();
        assert_eq!(envelope.code, "NEW_CODE");
        assert!(envelope.detail.is_some());
    }
}

//! weidoufu's payment callback, as the live service sends it: JSON `{"sign", "content": {…}}`
//! posted to the order's `notify_url`, `content` compact JSON in the live field order
//! (`mch_trade_no`, `out_order_no`, `transaction_id` (WeChat's transaction id or the Alipay trade
//! number), `total_fee`, `attach`, `trade_type` 9, `pay_type`, `bank_type`, `pay_time`
//! (`YYYY-MM-DD hh:mm:ss`, +08:00), `status` 2, `nonce_str`), `sign` over its text (see the
//! module docs). The shop acknowledges with HTTP 200 and the body `SUCCESS` (surrounding
//! whitespace ignored).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::callback_sign;
use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::state::{Order, Shared, WeidoufuPayment, WeidoufuTrade};
use crate::timefmt;

fn acknowledged(status: u16, body: &[u8]) -> bool {
    status == 200 && body.trim_ascii() == b"SUCCESS"
}

/// `fields` as compact JSON in their order (the live order, which a plain `serde_json` map
/// would sort).
fn compact_object(fields: &[(&str, Value)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::from(*name)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// The body: `content`'s text, signed with `key`, byte for byte what was signed.
fn envelope(content: &str, key: &str) -> String {
    let sign = callback_sign(content.as_bytes(), key);
    format!(r#"{{"sign":"{sign}","content":{content}}}"#)
}

/// The callback of a paid weidoufu `order`.
pub(crate) fn payment_success(
    shared: &Arc<Shared>,
    order: &Order,
    trade: &WeidoufuTrade,
) -> Result<Notification, SandboxError> {
    let (pay_type, transaction_id) = match &trade.payment {
        WeidoufuPayment::Wechat => (1, order.transaction_id.clone().unwrap_or_default()),
        WeidoufuPayment::Alipay { trade_no, .. } => (2, trade_no.clone()),
    };
    let content = compact_object(&[
        ("mch_trade_no", Value::from(trade.mch_trade_no.clone())),
        ("out_order_no", Value::from(trade.out_order_no.clone())),
        ("transaction_id", Value::from(transaction_id)),
        ("total_fee", Value::from(order.total)),
        (
            "attach",
            order.attach.clone().map_or(Value::Null, Value::from),
        ),
        ("trade_type", Value::from(9)),
        ("pay_type", Value::from(pay_type)),
        ("bank_type", Value::from("OTHERS")),
        (
            "pay_time",
            Value::from(
                order
                    .success_time
                    .map(timefmt::spaced_cst)
                    .unwrap_or_default(),
            ),
        ),
        ("status", Value::from(2)),
        ("nonce_str", Value::from(crypto::random_alnum(32)?)),
    ]);
    let body = envelope(&content, &shared.weidoufu.secret_key);
    let forged = envelope(&content, &crypto::random_alnum(32)?);
    Ok(Notification {
        id: crypto::random_uuid()?,
        out_trade_no: trade.out_order_no.clone(),
        url: order.notify_url.clone(),
        content_type: "application/json",
        body: Bytes::from(body),
        probe_body: Some(Bytes::from(forged)),
        sign: Arc::new(|_body: &[u8], _probe: bool| Ok(Vec::new())),
        ack: acknowledged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The content is written in the live order, compact, as the signature vector has it.
    #[test]
    fn content_is_compact_json_in_the_live_order() {
        let text = compact_object(&[
            ("mch_trade_no", Value::from("202105135513716648486662")),
            ("out_order_no", Value::from("180901620895069445")),
            ("transaction_id", Value::from("4200001234567890")),
            ("total_fee", Value::from(1)),
            ("attach", Value::Null),
            ("trade_type", Value::from(9)),
            ("pay_type", Value::from(1)),
            ("bank_type", Value::from("OTHERS")),
            ("pay_time", Value::from("2021-05-11 11:31:08")),
            ("status", Value::from(2)),
            ("nonce_str", Value::from("82aafec92844bd7b7575e5d642911ac9")),
        ]);
        assert_eq!(
            text,
            r#"{"mch_trade_no":"202105135513716648486662","out_order_no":"180901620895069445","transaction_id":"4200001234567890","total_fee":1,"attach":null,"trade_type":9,"pay_type":1,"bank_type":"OTHERS","pay_time":"2021-05-11 11:31:08","status":2,"nonce_str":"82aafec92844bd7b7575e5d642911ac9"}"#
        );
        let body = envelope(&text, "sk_test_0123456789");
        assert!(body.starts_with(r#"{"sign":"92305F2C278B12B0ECE8B87AF9B958EE","content":{"#));
    }
}

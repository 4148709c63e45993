//! weidoufu's payment callback (OUR CHOICE, the seed is silent): a form body
//! (`application/x-www-form-urlencoded`) posted to the order's `notify_url` with `access_key`,
//! `out_order_no`, `mch_trade_no`, `trade_no` (the WeChat transaction id or the Alipay trade
//! number), `pay_type`, `total_fee`, `openid` or `buyer_id`, `attach` (if any),
//! `trade_status` `SUCCESS`, `pay_time` (`YYYY-MM-DD hh:mm:ss`, +08:00), `nonce_str` and `sign`
//! (the module's rule over the plain values). The shop acknowledges with HTTP 200 and the body
//! `SUCCESS` (surrounding whitespace ignored).

use std::sync::Arc;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::sign;
use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::state::{Order, Shared, WeidoufuPayment, WeidoufuTrade};
use crate::timefmt;

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn acknowledged(status: u16, body: &[u8]) -> bool {
    status == 200 && body.trim_ascii() == b"SUCCESS"
}

/// The form body: `pairs` (empty values left out) and `sign` computed with `key`.
fn form(pairs: &[(&str, String)], key: &str) -> String {
    let present: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let signature = sign(present.iter().copied(), key);
    present
        .iter()
        .copied()
        .chain(std::iter::once(("sign", signature.as_str())))
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, ENCODE)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The callback of a paid weidoufu `order`.
pub(crate) fn payment_success(
    shared: &Arc<Shared>,
    order: &Order,
    trade: &WeidoufuTrade,
) -> Result<Notification, SandboxError> {
    let (pay_type, payer_field, payer, trade_no) = match &trade.payment {
        WeidoufuPayment::Wechat => (
            "1",
            "openid",
            order.openid.clone(),
            order.transaction_id.clone().unwrap_or_default(),
        ),
        WeidoufuPayment::Alipay { buyer_id, trade_no } => {
            ("2", "buyer_id", buyer_id.clone(), trade_no.clone())
        }
    };
    let pairs: Vec<(&str, String)> = vec![
        ("access_key", shared.weidoufu.access_key.clone()),
        ("out_order_no", trade.out_order_no.clone()),
        ("mch_trade_no", trade.mch_trade_no.clone()),
        ("trade_no", trade_no),
        ("pay_type", pay_type.into()),
        ("total_fee", order.total.to_string()),
        (payer_field, payer),
        ("attach", order.attach.clone().unwrap_or_default()),
        ("trade_status", "SUCCESS".into()),
        (
            "pay_time",
            order
                .success_time
                .map(timefmt::spaced_cst)
                .unwrap_or_default(),
        ),
        ("nonce_str", crypto::random_alnum(32)?),
    ];
    let body = form(&pairs, &shared.weidoufu.secret_key);
    let forged = form(&pairs, &crypto::random_alnum(32)?);
    Ok(Notification {
        id: crypto::random_uuid()?,
        out_trade_no: trade.out_order_no.clone(),
        url: order.notify_url.clone(),
        content_type: "application/x-www-form-urlencoded",
        body: Bytes::from(body),
        probe_body: Some(Bytes::from(forged)),
        sign: Arc::new(|_body: &[u8], _probe: bool| Ok(Vec::new())),
        ack: acknowledged,
    })
}

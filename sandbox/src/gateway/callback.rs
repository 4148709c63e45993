//! The gateway's payment callback: a form body (`application/x-www-form-urlencoded`) whose
//! values are URL-encoded, signed per the seed's `checkOpenSign` over the encoded values.

use std::sync::Arc;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{CALLBACK_RECEIVED, PAY_TYPE_JSAPI, VERSION, open_sign};
use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::state::{GatewayTrade, Order, Shared};
use crate::timefmt;
use crate::v2::{self, SignType};

/// Everything but RFC 3986's unreserved characters is encoded: the seed's example shows a
/// space as `%20` (not `+`) and `-` left as is.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

fn received(status: u16, _body: &[u8]) -> bool {
    CALLBACK_RECEIVED.contains(&status)
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// `biz_content`: the JSON object in the seed's key order (`total_amount` a number of fen).
fn biz_content(order: &Order, trade: &GatewayTrade, callback_content: &str) -> String {
    format!(
        "{{\"uid\":{},\"trade_id\":{},\"total_amount\":{},\"trade_pay_time\":{},\
         \"trade_status\":\"SUCCESS\",\"pay_type\":{},\"callback_content\":{},\"title\":{},\
         \"biz_order_id\":{}}}",
        json_str(trade.ucid.as_deref().unwrap_or_default()),
        json_str(&trade.trade_id),
        order.total,
        json_str(
            &order
                .success_time
                .map(timefmt::spaced_cst)
                .unwrap_or_default()
        ),
        json_str(PAY_TYPE_JSAPI),
        json_str(callback_content),
        json_str(&trade.title),
        json_str(&trade.biz_order_id),
    )
}

/// The form body with `sign` computed by `key`: pairs in the seed example's order.
fn form(pairs: &[(&str, String)], key: &str) -> String {
    let signed = pairs
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (*k, v.as_str()));
    let sign = open_sign(key, signed);
    let mut out = Vec::with_capacity(pairs.len() + 1);
    for (k, v) in pairs {
        out.push(format!("{k}={v}"));
        if *k == "nonce_str" {
            out.push(format!("sign={sign}"));
        }
    }
    out.join("&")
}

/// Builds the callback for a paid gateway `order` (its WeChat notification, as the gateway
/// received it, goes into `callback_content`).
pub(crate) fn payment_success(
    shared: &Arc<Shared>,
    order: &Order,
    trade: &GatewayTrade,
) -> Result<Notification, SandboxError> {
    let wechat = v2::notification_pairs(order, &shared.gateway_wechat_key, SignType::Md5)?;
    let callback_content = v2::to_xml(wechat.iter().map(|(k, v)| (*k, v.as_str())));
    let g = &shared.gateway;
    let pairs: Vec<(&str, String)> = vec![
        (
            "biz_content",
            encode(&biz_content(order, trade, &callback_content)),
        ),
        ("nonce_str", crypto::random_from(b"0123456789abcdef", 32)?),
        ("biz_id", encode(&trade.biz_id)),
        ("sign_type", "MD5".into()),
        ("version", encode(VERSION)),
        ("client_id", encode(&g.client_id)),
        ("timestamp", timefmt::now_unix_millis().to_string()),
    ];
    let body = form(&pairs, &g.app_key);
    let forged = form(&pairs, &crypto::random_alnum(32)?);
    Ok(Notification {
        id: crypto::random_uuid()?,
        out_trade_no: trade.biz_order_id.clone(),
        url: order.notify_url.clone(),
        content_type: "application/x-www-form-urlencoded",
        body: Bytes::from(body),
        probe_body: Some(Bytes::from(forged)),
        sign: Arc::new(|_body: &[u8], _probe: bool| Ok(Vec::new())),
        ack: received,
    })
}

//! QFPay's asynchronous payment notification (QFPay "Asynchronous Notifications",
//! <https://sdk.qfapi.com/docs/common-api/async-notifications>): JSON posted to the merchant,
//! `X-QF-SIGN` = upper-case hex MD5 of the raw body followed by the `client_key`. Only
//! successful payments are notified; the merchant acknowledges with HTTP 200 and the body
//! `SUCCESS`, anything else is retried (QFPay: after 2m, 10m, 10m, 60m, 2h, 6h, 15h; the sandbox
//! uses its configured retry schedule, [`crate::RetrySchedule::qfpay`] for QFPay's).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::query::order_respcd;
use super::{PAY_TYPE_WECHAT_JSAPI, body_sign, cst};
use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::state::{Order, QfpayTrade, Shared};

/// The merchant acknowledged: HTTP 200 and a body of `SUCCESS` (surrounding whitespace ignored).
fn acknowledged(status: u16, body: &[u8]) -> bool {
    status == 200 && body.trim_ascii() == b"SUCCESS"
}

/// The notification body (a JSON object of strings, keys in QFPay's documented order).
fn body(order: &Order, trade: &QfpayTrade) -> Vec<u8> {
    let mut m = Map::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), Value::String(v));
    };
    put("status", "1".into());
    put("notify_type", "payment".into());
    put("pay_type", PAY_TYPE_WECHAT_JSAPI.into());
    put("syssn", trade.syssn.clone());
    put("out_trade_no", trade.out_trade_no.clone());
    put("txamt", order.total.to_string());
    put("txcurrcd", trade.txcurrcd.clone());
    put("txdtm", trade.txdtm.clone());
    put("sysdtm", cst(trade.sysdtm));
    if let Some(paid) = order.success_time {
        put("paydtm", cst(paid));
    }
    put("respcd", order_respcd(order.state).into());
    put("cancel", "0".into());
    put("chnlsn", order.transaction_id.clone().unwrap_or_default());
    if let Some(mchid) = &trade.mchid {
        put("mchid", mchid.clone());
    }
    if let Some(goods_name) = &trade.goods_name {
        put("goods_name", goods_name.clone());
    }
    serde_json::to_vec(&m).unwrap_or_default()
}

/// The notification of a paid QFPay `order`, or `None` when its payment request named no
/// `notify_url` (sandbox choice: QFPay configures the URL per `app_code`, the sandbox takes it
/// from the request).
pub(crate) fn payment_success(
    shared: &Arc<Shared>,
    order: &Order,
    trade: &QfpayTrade,
) -> Result<Option<Notification>, SandboxError> {
    let Some(url) = trade.notify_url.clone() else {
        return Ok(None);
    };
    let client_key = shared.qfpay.client_key.clone();
    let wrong_key = crypto::random_upper_hex(32)?;
    Ok(Some(Notification {
        id: crypto::random_uuid()?,
        out_trade_no: trade.out_trade_no.clone(),
        url,
        content_type: "application/json",
        body: Bytes::from(body(order, trade)),
        probe_body: None,
        // A probe is the same body signed with a wrong key.
        sign: Arc::new(move |body: &[u8], probe: bool| {
            let key = if probe { &wrong_key } else { &client_key };
            Ok(vec![("X-QF-SIGN", body_sign(body, key))])
        }),
        ack: acknowledged,
    }))
}

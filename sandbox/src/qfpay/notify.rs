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
use crate::refunds::{Refund, RefundState};
use crate::state::{Order, Protocol, QfpayTrade, Shared};

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

/// The signed notification of `body` to `url`.
fn signed(
    shared: &Arc<Shared>,
    url: String,
    out_trade_no: String,
    body: Vec<u8>,
) -> Result<Notification, SandboxError> {
    let client_key = shared.qfpay.client_key.clone();
    let wrong_key = crypto::random_upper_hex(32)?;
    Ok(Notification {
        id: crypto::random_uuid()?,
        out_trade_no,
        url,
        content_type: "application/json",
        body: Bytes::from(body),
        probe_body: None,
        // A probe is the same body signed with a wrong key.
        sign: Arc::new(move |body: &[u8], probe: bool| {
            let key = if probe { &wrong_key } else { &client_key };
            Ok(vec![("X-QF-SIGN", body_sign(body, key))])
        }),
        ack: acknowledged,
    })
}

/// The notification of a successful refund (`notify_type` `refund`; QFPay notifies only
/// successful refunds): `syssn` and `out_trade_no` are the refund's own, `orig_syssn` the
/// payment's, `txamt` the refunded amount. `None` for any other state or without a
/// `notify_url`.
pub(crate) fn refund_success(
    shared: &Arc<Shared>,
    order: &Order,
    refund: &Refund,
) -> Result<Option<Notification>, SandboxError> {
    let (Protocol::Qfpay(trade), Some(url), RefundState::Success) =
        (&order.protocol, refund.notify_url.clone(), refund.state)
    else {
        return Ok(None);
    };
    let mut m = Map::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), Value::String(v));
    };
    put("status", "1".into());
    put("notify_type", "refund".into());
    put("pay_type", PAY_TYPE_WECHAT_JSAPI.into());
    put("syssn", refund.refund_id.clone());
    put("orig_syssn", trade.syssn.clone());
    put("out_trade_no", refund.out_refund_no.clone());
    put("txamt", refund.amount.to_string());
    put("txcurrcd", trade.txcurrcd.clone());
    put("sysdtm", cst(refund.created_at));
    if let Some(done) = refund.success_time {
        put("paydtm", cst(done));
    }
    put("respcd", "0000".into());
    put("cancel", "0".into());
    if let Some(mchid) = &trade.mchid {
        put("mchid", mchid.clone());
    }
    let body = serde_json::to_vec(&m).unwrap_or_default();
    signed(shared, url, trade.out_trade_no.clone(), body).map(Some)
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
    signed(shared, url, trade.out_trade_no.clone(), body(order, trade)).map(Some)
}

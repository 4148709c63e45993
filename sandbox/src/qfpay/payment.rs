//! `POST /trade/v1/payment` with `pay_type` 800207 (QFPay "WeChat JSAPI payment", seed 002):
//! registers the payment and returns `pay_params` for QFPay's own WeChat merchant.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{
    PAY_TYPE_WECHAT_JSAPI, Params, QFPAY_WECHAT_MCHID, RESPCD_ORDER_CLOSED,
    RESPCD_ORDER_NUMBER_REUSED, RESPCD_ORDER_PAID, RESPCD_PARAMETER_ERROR, RESPCD_SUCCESS,
    authenticate, cst, parse_txamt, refuse, reply, valid_txdtm,
};
use crate::crypto;
use crate::state::{Order, Protocol, QfpayTrade, Shared, TradeState, lock};
use crate::timefmt;
use crate::v2::{self, SignType};

/// `out_trade_no` is `String(128)` (QFPay "Public Payment Parameters").
const MAX_OUT_TRADE_NO_LEN: usize = 128;
/// `goods_name` is `String(64)`.
const MAX_GOODS_NAME_CHARS: usize = 64;
/// `sub_openid` is an openid: `String(64)` as in `get_weixin_openid`.
const MAX_OPENID_LEN: usize = 64;
/// `notify_url` is `String(255)` (QFPay "WAP payment" request parameters).
const MAX_NOTIFY_URL_LEN: usize = 255;

/// The validated payment request.
struct Payment {
    txamt: i64,
    txcurrcd: String,
    out_trade_no: String,
    txdtm: String,
    sub_openid: String,
    goods_name: Option<String>,
    mchid: Option<String>,
    notify_url: Option<String>,
}

fn validate(shared: &Shared, p: &Params) -> Result<Payment, String> {
    let require = |k: &str| p.get(k).ok_or_else(|| format!("{k} is required"));
    let pay_type = require("pay_type")?;
    if pay_type != PAY_TYPE_WECHAT_JSAPI {
        return Err(format!(
            "pay_type {pay_type} is not supported: the sandbox emulates {PAY_TYPE_WECHAT_JSAPI} (WeChat JSAPI) only"
        ));
    }
    let txamt =
        parse_txamt(require("txamt")?).ok_or("txamt must be a positive integer amount in cents")?;
    let txcurrcd = require("txcurrcd")?;
    if !(txcurrcd.len() == 3 && txcurrcd.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err("txcurrcd must be a 3-letter currency code such as CNY or HKD".into());
    }
    let out_trade_no = require("out_trade_no")?;
    if out_trade_no.len() > MAX_OUT_TRADE_NO_LEN {
        return Err("out_trade_no is longer than 128 characters".into());
    }
    let txdtm = require("txdtm")?;
    if !valid_txdtm(txdtm) {
        return Err("txdtm must be YYYY-MM-DD hh:mm:ss".into());
    }
    let sub_openid = require("sub_openid")?;
    if sub_openid.len() > MAX_OPENID_LEN {
        return Err("sub_openid is longer than 64 characters".into());
    }
    let goods_name = p.get("goods_name");
    if goods_name.is_some_and(|g| g.chars().count() > MAX_GOODS_NAME_CHARS) {
        return Err("goods_name is longer than 64 characters".into());
    }
    let notify_url = p.get("notify_url");
    if let Some(url) = notify_url {
        let allowed = url.starts_with("https://")
            || (shared.config.allow_http_notify_url && url.starts_with("http://"));
        if url.len() > MAX_NOTIFY_URL_LEN
            || !allowed
            || !url
                .parse::<http::Uri>()
                .is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()))
        {
            return Err(if shared.config.allow_http_notify_url {
                "notify_url must be an http(s) URL of at most 255 characters".into()
            } else {
                "notify_url must be an https URL of at most 255 characters".into()
            });
        }
    }
    Ok(Payment {
        txamt,
        txcurrcd: txcurrcd.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        txdtm: txdtm.to_owned(),
        sub_openid: sub_openid.to_owned(),
        goods_name: goods_name.map(str::to_owned),
        mchid: p.get("mchid").map(str::to_owned),
        notify_url: notify_url.map(str::to_owned),
    })
}

/// `pay_params` for `prepay_id`, signed v2-MD5 with QFPay's WeChat merchant key.
fn pay_params(shared: &Shared, prepay_id: &str) -> Result<Value, crypto::CryptoError> {
    let time_stamp = timefmt::now_unix().to_string();
    let nonce = crypto::random_alnum(32)?;
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = v2::pay_sign(
        &shared.merchant.appid,
        &time_stamp,
        &nonce,
        &package,
        SignType::Md5,
        &shared.qfpay.wechat_key,
    );
    Ok(json!({
        "appId": shared.merchant.appid,
        "timeStamp": time_stamp,
        "nonceStr": nonce,
        "package": package,
        "signType": SignType::Md5.as_str(),
        "paySign": pay_sign,
    }))
}

/// The success reply for `order`'s current prepay.
fn answer(shared: &Shared, order: &Order, trade: &QfpayTrade) -> Response {
    let Ok(params) = pay_params(shared, &order.prepay_id) else {
        return refuse(super::RESPCD_TRY_AGAIN, "system error, try again");
    };
    reply(&json!({
        "respcd": RESPCD_SUCCESS,
        "respmsg": "",
        "resperr": "",
        "syssn": trade.syssn,
        "out_trade_no": trade.out_trade_no,
        "txamt": order.total.to_string(),
        "txcurrcd": trade.txcurrcd,
        "txdtm": trade.txdtm,
        "sysdtm": cst(trade.sysdtm),
        "pay_type": PAY_TYPE_WECHAT_JSAPI,
        "pay_params": params,
    }))
}

/// A new `syssn`: the date and 18 digits, 26 characters like QFPay's examples.
fn new_syssn() -> Result<String, crypto::CryptoError> {
    let date = timefmt::compact_cst(OffsetDateTime::now_utc());
    Ok(format!(
        "{}{}",
        date.get(..8).unwrap_or("19700101"),
        crypto::random_digits(18)?
    ))
}

/// `POST /trade/v1/payment`.
pub(super) async fn payment(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = match authenticate(&shared, &headers, query.as_deref(), &body) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let p = match validate(&shared, &params) {
        Ok(p) => p,
        Err(message) => return refuse(RESPCD_PARAMETER_ERROR, &message),
    };
    let request = serde_json::to_value(params.all()).unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::try_from(shared.config.prepay_ttl).unwrap_or(time::Duration::MAX);
    let mut orders = lock(&shared.orders);
    let existing = orders
        .by_qfpay_out_trade_no
        .get(&p.out_trade_no)
        .and_then(|no| orders.by_out_trade_no.get(no));
    if let Some(existing) = existing {
        if existing.request != request {
            return refuse(
                RESPCD_ORDER_NUMBER_REUSED,
                "out_trade_no was already used with other parameters",
            );
        }
        match existing.state {
            TradeState::Success => return refuse(RESPCD_ORDER_PAID, "the order is already paid"),
            TradeState::Closed => return refuse(RESPCD_ORDER_CLOSED, "the order is closed"),
            TradeState::NotPay | TradeState::PayError => {}
        }
        if let Protocol::Qfpay(trade) = &existing.protocol
            && existing.prepay_expires_at > now
        {
            return answer(&shared, existing, trade);
        }
    }
    let (trade, state) = match existing.map(|o| (&o.protocol, o.state)) {
        Some((Protocol::Qfpay(trade), state)) => ((**trade).clone(), state),
        _ => {
            let Ok(syssn) = new_syssn() else {
                return refuse(super::RESPCD_TRY_AGAIN, "system error, try again");
            };
            let trade = QfpayTrade {
                out_trade_no: p.out_trade_no.clone(),
                syssn,
                txcurrcd: p.txcurrcd,
                txdtm: p.txdtm,
                sysdtm: now,
                goods_name: p.goods_name,
                mchid: p.mchid,
                notify_url: p.notify_url,
            };
            (trade, TradeState::NotPay)
        }
    };
    let Ok(prepay_id) = v2::new_prepay_id() else {
        return refuse(super::RESPCD_TRY_AGAIN, "system error, try again");
    };
    let own_no = format!("QF{}", trade.syssn);
    let order = Order {
        appid: shared.merchant.appid.clone(),
        mchid: QFPAY_WECHAT_MCHID.into(),
        out_trade_no: own_no.clone(),
        description: trade.goods_name.clone().unwrap_or_default(),
        attach: None,
        notify_url: trade.notify_url.clone().unwrap_or_default(),
        time_expire: None,
        total: p.txamt,
        currency: trade.txcurrcd.clone(),
        openid: p.sub_openid,
        request,
        prepay_id: prepay_id.clone(),
        prepay_expires_at: now + ttl,
        state,
        transaction_id: None,
        success_time: None,
        protocol: Protocol::Qfpay(Box::new(trade.clone())),
    };
    let response = answer(&shared, &order, &trade);
    orders.by_prepay_id.insert(prepay_id, own_no.clone());
    orders
        .by_qfpay_out_trade_no
        .insert(trade.out_trade_no.clone(), own_no.clone());
    orders.by_qfpay_syssn.insert(trade.syssn, own_no.clone());
    orders.by_out_trade_no.insert(own_no, order);
    response
}

//! `POST /pay/miniapp` (seed 004, 小程序支付).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::WEIDOUFU_WECHAT_MCHID;
use crate::crypto;
use crate::state::{Order, Protocol, Shared, TradeState, WeidoufuPayment, WeidoufuTrade, lock};
use crate::timefmt;
use crate::v2::{self, SignType};

/// `body` is `string(32)`.
const MAX_BODY_CHARS: usize = 32;
/// `out_order_no`: letters and digits, at least 18 (seed), at most 32 (`string(32)`).
const OUT_ORDER_NO_LEN: std::ops::RangeInclusive<usize> = 18..=32;
/// `total_fee` is `int(9)`.
const MAX_TOTAL_FEE: i64 = 999_999_999;
/// `notify_url` is `string(128)`.
const MAX_NOTIFY_URL_LEN: usize = 128;
/// `attach` is `string(128)`.
const MAX_ATTACH_CHARS: usize = 128;
/// `ledger` is `string(512)`.
const MAX_LEDGER_CHARS: usize = 512;
/// The longest `openid`/`buyer_id` accepted (see the module docs).
const MAX_PAYER_ID_LEN: usize = 64;

/// The seed's success shape.
fn success(mch_trade_no: &str, out_order_no: &str, jsapi: &Value) -> Response {
    crate::v3::json_response(
        StatusCode::OK,
        &json!({
            "code": 1,
            "message": "成功",
            "data": { "mch_trade_no": mch_trade_no, "out_order_no": out_order_no, "jsapi": jsapi },
        }),
    )
}

/// The seed's failure shape, with a fresh `mch_trade_no` as in its example.
fn failure(out_order_no: &str, message: &str) -> Response {
    let mch_trade_no = new_number(16).unwrap_or_default();
    crate::v3::json_response(
        StatusCode::OK,
        &json!({
            "code": 0,
            "message": message,
            "data": { "mch_trade_no": mch_trade_no, "out_order_no": out_order_no, "jsapi": "" },
        }),
    )
}

/// Today's date (`YYYYMMDD`, +08:00) followed by `digits` random digits.
pub(super) fn new_number(digits: usize) -> Result<String, crypto::CryptoError> {
    let date = timefmt::compact_cst(OffsetDateTime::now_utc());
    Ok(format!(
        "{}{}",
        date.get(..8).unwrap_or("19700101"),
        crypto::random_digits(digits)?
    ))
}

/// The validated request.
struct Miniapp {
    body: String,
    out_order_no: String,
    total_fee: i64,
    payer: Payer,
    notify_url: String,
    attach: Option<String>,
}

enum Payer {
    Wechat(String),
    Alipay(String),
}

fn validate(shared: &Shared, p: &BTreeMap<String, String>) -> Result<Miniapp, String> {
    let get = |k: &str| p.get(k).map(String::as_str);
    let require = |k: &str| get(k).ok_or_else(|| format!("{k}不能为空"));
    let body = require("body")?;
    if body.chars().count() > MAX_BODY_CHARS {
        return Err("body长度不能超过32个字符".into());
    }
    let out_order_no = require("out_order_no")?;
    if !(OUT_ORDER_NO_LEN.contains(&out_order_no.len())
        && out_order_no.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err("out_order_no格式错误：只能是字母、数字，长度18至32位".into());
    }
    let fee = require("total_fee")?;
    let total_fee = fee
        .parse::<i64>()
        .ok()
        .filter(|_| fee.bytes().all(|b| b.is_ascii_digit()))
        .filter(|f| (1..=MAX_TOTAL_FEE).contains(f))
        .ok_or("total_fee必须是大于0的整数（单位：分）")?;
    let payer = match require("pay_type")? {
        "1" => Payer::Wechat(
            get("openid")
                .ok_or("pay_type为1（微信）时openid必传")?
                .to_owned(),
        ),
        "2" => Payer::Alipay(
            get("buyer_id")
                .ok_or("pay_type为2（支付宝）时buyer_id必传")?
                .to_owned(),
        ),
        _ => return Err("pay_type错误：1-微信，2-支付宝".into()),
    };
    let (Payer::Wechat(id) | Payer::Alipay(id)) = &payer;
    if id.len() > MAX_PAYER_ID_LEN {
        return Err("openid/buyer_id长度有误".into());
    }
    let notify_url = require("notify_url")?;
    let allowed = notify_url.starts_with("https://")
        || (shared.config.allow_http_notify_url && notify_url.starts_with("http://"));
    if notify_url.len() > MAX_NOTIFY_URL_LEN
        || !allowed
        || !notify_url
            .parse::<http::Uri>()
            .is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()))
    {
        return Err(if shared.config.allow_http_notify_url {
            "notify_url格式错误：须为http(s)地址，不超过128个字符".into()
        } else {
            "notify_url格式错误：须为https地址，不超过128个字符".into()
        });
    }
    let attach = get("attach");
    if attach.is_some_and(|a| a.chars().count() > MAX_ATTACH_CHARS) {
        return Err("attach长度不能超过128个字符".into());
    }
    if get("ledger").is_some_and(|l| l.chars().count() > MAX_LEDGER_CHARS) {
        return Err("ledger长度不能超过512个字符".into());
    }
    Ok(Miniapp {
        body: body.to_owned(),
        out_order_no: out_order_no.to_owned(),
        total_fee,
        payer,
        notify_url: notify_url.to_owned(),
        attach: attach.map(str::to_owned),
    })
}

/// `jsapi` for a WeChat order: the JSAPI parameters in the seed's snake_case names, `pay_sign`
/// MD5 with weidoufu's WeChat merchant key.
fn wechat_jsapi(shared: &Shared, prepay_id: &str) -> Result<Value, crypto::CryptoError> {
    let timestamp = timefmt::now_unix().to_string();
    let nonce = crypto::random_from(b"0123456789abcdef", 32)?;
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = v2::pay_sign(
        &shared.merchant.appid,
        &timestamp,
        &nonce,
        &package,
        SignType::Md5,
        &shared.weidoufu.wechat_key,
    );
    Ok(json!({
        "app_id": shared.merchant.appid,
        "timestamp": timestamp,
        "nonce_str": nonce,
        "package": package,
        "sign_type": SignType::Md5.as_str(),
        "pay_sign": pay_sign,
    }))
}

/// The success reply for `order`.
fn answer(shared: &Shared, order: &Order, trade: &WeidoufuTrade) -> Response {
    let jsapi = match &trade.payment {
        WeidoufuPayment::Wechat => match wechat_jsapi(shared, &order.prepay_id) {
            Ok(j) => j,
            Err(_) => return failure(&trade.out_order_no, "系统错误"),
        },
        WeidoufuPayment::Alipay { trade_no, .. } => json!({ "trade_no": trade_no }),
    };
    success(&trade.mch_trade_no, &trade.out_order_no, &jsapi)
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /pay/miniapp`.
pub(super) async fn miniapp(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = match super::authenticate(&shared, &headers, &body) {
        Ok(params) => params,
        Err((out_order_no, message)) => return failure(&out_order_no, &message),
    };
    let out_order_no = params.get("out_order_no").cloned().unwrap_or_default();
    let m = match validate(&shared, &params) {
        Ok(m) => m,
        Err(message) => return failure(&out_order_no, &message),
    };
    params.remove("sign");
    let request = serde_json::to_value(&params).unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::try_from(shared.config.prepay_ttl).unwrap_or(time::Duration::MAX);
    let mut orders = lock(&shared.orders);
    let existing = orders
        .by_weidoufu_out_order_no
        .get(&m.out_order_no)
        .and_then(|no| orders.by_out_trade_no.get(no));
    if let Some(existing) = existing {
        if existing.request != request {
            return failure(&m.out_order_no, "订单号重复");
        }
        match existing.state {
            TradeState::Success => return failure(&m.out_order_no, "订单已支付"),
            TradeState::Closed => return failure(&m.out_order_no, "订单已关闭"),
            TradeState::NotPay | TradeState::PayError => {}
        }
        if let Protocol::Weidoufu(trade) = &existing.protocol
            && (existing.prepay_expires_at > now
                || matches!(trade.payment, WeidoufuPayment::Alipay { .. }))
        {
            return answer(&shared, existing, trade);
        }
    }
    let (trade, state) = match existing.map(|o| (&o.protocol, o.state)) {
        Some((Protocol::Weidoufu(trade), state)) => ((**trade).clone(), state),
        _ => {
            let numbers = new_number(16).and_then(|mch| Ok((mch, new_number(21)?)));
            let Ok((mch_trade_no, alipay_trade_no)) = numbers else {
                return failure(&m.out_order_no, "系统错误");
            };
            let payment = match &m.payer {
                Payer::Wechat(_) => WeidoufuPayment::Wechat,
                Payer::Alipay(buyer_id) => WeidoufuPayment::Alipay {
                    buyer_id: buyer_id.clone(),
                    trade_no: alipay_trade_no,
                },
            };
            let trade = WeidoufuTrade {
                out_order_no: m.out_order_no.clone(),
                mch_trade_no,
                payment,
            };
            (trade, TradeState::NotPay)
        }
    };
    let prepay_id = match &trade.payment {
        WeidoufuPayment::Wechat => match v2::new_prepay_id() {
            Ok(id) => id,
            Err(_) => return failure(&m.out_order_no, "系统错误"),
        },
        // An Alipay trade has no WeChat prepay.
        WeidoufuPayment::Alipay { .. } => String::new(),
    };
    let own_no = format!("WDF{}", trade.mch_trade_no);
    let order = Order {
        appid: shared.merchant.appid.clone(),
        mchid: WEIDOUFU_WECHAT_MCHID.into(),
        out_trade_no: own_no.clone(),
        description: m.body,
        attach: m.attach,
        notify_url: m.notify_url,
        time_expire: None,
        total: m.total_fee,
        currency: "CNY".into(),
        openid: match m.payer {
            Payer::Wechat(openid) => openid,
            Payer::Alipay(_) => String::new(),
        },
        request,
        prepay_id: prepay_id.clone(),
        prepay_expires_at: now + ttl,
        state,
        transaction_id: None,
        success_time: None,
        protocol: Protocol::Weidoufu(Box::new(trade.clone())),
    };
    let response = answer(&shared, &order, &trade);
    match &trade.payment {
        WeidoufuPayment::Wechat => {
            orders.by_prepay_id.insert(prepay_id, own_no.clone());
        }
        WeidoufuPayment::Alipay { trade_no, .. } => {
            orders
                .by_alipay_trade_no
                .insert(trade_no.clone(), own_no.clone());
        }
    }
    orders
        .by_weidoufu_out_order_no
        .insert(trade.out_order_no, own_no.clone());
    orders.by_out_trade_no.insert(own_no, order);
    response
}

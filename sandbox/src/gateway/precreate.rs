//! `POST /open/trade/wx/jsapi/precreate`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::GATEWAY_MCHID;
use crate::crypto;
use crate::state::{GatewayTrade, Order, Protocol, Shared, TradeState, lock};
use crate::timefmt;
use crate::v2::{self, SignType};
use crate::v3::json_response;

/// The route.
pub(super) const PATH: &str = "/open/trade/wx/jsapi/precreate";

/// The seed's failure shape, answered with HTTP **200**: a Spring Boot error body with
/// `status` 500 and the upstream's message after `第三方返回失败, errorMsg = `.
fn failure(reason: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "timestamp": timefmt::spring_utc(OffsetDateTime::now_utc()),
            "status": 500,
            "error": "Internal Server Error",
            "message": format!("第三方返回失败, errorMsg = {reason}"),
            "path": PATH,
        }),
    )
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("无效的{key}")),
    }
}

fn req_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    opt_str(obj, key)?.ok_or_else(|| format!("{key}不能为空"))
}

/// The validated request.
struct Precreate {
    ucid: Option<String>,
    openid: String,
    biz_order_id: String,
    pay_amount: i64,
    title: String,
    notify_url: String,
    extra: Option<String>,
}

fn validate(shared: &Shared, v: &Value) -> Result<Precreate, String> {
    let obj = v.as_object().ok_or("请求体必须是JSON对象")?;
    let biz_id = req_str(obj, "biz_id")?;
    if biz_id != shared.gateway.biz_id {
        return Err("无效的biz_id".into());
    }
    let ip = req_str(obj, "ip")?;
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err("无效的ip".into());
    }
    let openid = req_str(obj, "openid")?;
    if openid.len() > 128 {
        return Err("无效的openid".into());
    }
    // Sandbox choice: the gateway derives its own out_trade_no, so allow up to 64 characters.
    let biz_order_id = req_str(obj, "biz_order_id")?;
    if biz_order_id.chars().count() > 64 {
        return Err("无效的biz_order_id".into());
    }
    let pay_amount = match obj.get("pay_amount") {
        None | Some(Value::Null) => return Err("pay_amount不能为空".into()),
        Some(Value::Number(n)) => n.as_i64(),
        Some(_) => None,
    }
    .filter(|a| (1..=i64::from(i32::MAX)).contains(a))
    .ok_or("无效的pay_amount")?;
    let title = req_str(obj, "title")?;
    if title.chars().count() > 128 {
        return Err("无效的title".into());
    }
    let notify_url = req_str(obj, "notify_url")?;
    let scheme_ok = notify_url.starts_with("http://") || notify_url.starts_with("https://");
    if !scheme_ok
        || !notify_url
            .parse::<http::Uri>()
            .is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()))
    {
        return Err("无效的notify_url".into());
    }
    let extra = opt_str(obj, "extra")?;
    if extra.is_some_and(|e| e.chars().count() > 127) {
        return Err("无效的extra".into());
    }
    Ok(Precreate {
        ucid: opt_str(obj, "ucid")?.map(str::to_owned),
        openid: openid.to_owned(),
        biz_order_id: biz_order_id.to_owned(),
        pay_amount,
        title: title.to_owned(),
        notify_url: notify_url.to_owned(),
        extra: extra.map(str::to_owned),
    })
}

/// The JSAPI parameters for `prepay_id`, signed v2-MD5 with the gateway merchant's key.
fn client_params(shared: &Shared, prepay_id: &str) -> Result<Value, crypto::CryptoError> {
    let time_stamp = timefmt::now_unix().to_string();
    let nonce = crypto::random_alnum(32)?;
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = v2::pay_sign(
        &shared.merchant.appid,
        &time_stamp,
        &nonce,
        &package,
        SignType::Md5,
        &shared.gateway_wechat_key,
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

fn answer(shared: &Shared, prepay_id: &str) -> Response {
    match client_params(shared, prepay_id) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(_) => failure("系统错误"),
    }
}

/// `POST /open/trade/wx/jsapi/precreate`.
pub(super) async fn precreate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        // Sandbox choice: the seed shows one failure shape; malformed JSON gets it too.
        return failure("请求体不是合法的JSON");
    };
    let p = match validate(&shared, &value) {
        Ok(p) => p,
        Err(reason) => return failure(&reason),
    };
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::try_from(shared.config.prepay_ttl).unwrap_or(time::Duration::MAX);
    let mut orders = lock(&shared.orders);
    let existing = orders
        .by_biz_order_id
        .get(&p.biz_order_id)
        .and_then(|no| orders.by_out_trade_no.get(no));
    if let Some(existing) = existing {
        // Sandbox choice: the seed documents no repeat semantics; WeChat's are used.
        match existing.state {
            TradeState::Success => return failure("订单已支付"),
            TradeState::Closed => return failure("订单已关闭"),
            TradeState::NotPay | TradeState::PayError => {}
        }
        if existing.request != value {
            return failure("biz_order_id重复");
        }
        if existing.prepay_expires_at > now {
            let prepay_id = existing.prepay_id.clone();
            drop(orders);
            return answer(&shared, &prepay_id);
        }
    }
    let (out_trade_no, trade_id, state) = match existing {
        Some(o) => {
            let Protocol::Gateway(g) = &o.protocol else {
                return failure("系统错误");
            };
            (o.out_trade_no.clone(), g.trade_id.clone(), o.state)
        }
        None => {
            let Ok(trade_id) = crypto::random_from(b"123456789", 1)
                .and_then(|first| Ok(first + &crypto::random_digits(9)?))
            else {
                return failure("系统错误");
            };
            (format!("GW{trade_id}"), trade_id, TradeState::NotPay)
        }
    };
    let Ok(prepay_id) = v2::new_prepay_id() else {
        return failure("系统错误");
    };
    let order = Order {
        appid: shared.merchant.appid.clone(),
        mchid: GATEWAY_MCHID.into(),
        out_trade_no: out_trade_no.clone(),
        description: p.title.clone(),
        attach: p.extra,
        notify_url: p.notify_url,
        time_expire: None,
        total: p.pay_amount,
        currency: "CNY".into(),
        openid: p.openid,
        request: value,
        prepay_id: prepay_id.clone(),
        prepay_expires_at: now + ttl,
        state,
        transaction_id: None,
        success_time: None,
        protocol: Protocol::Gateway(Box::new(GatewayTrade {
            biz_id: shared.gateway.biz_id.clone(),
            biz_order_id: p.biz_order_id.clone(),
            ucid: p.ucid,
            trade_id,
            title: p.title,
        })),
    };
    orders
        .by_prepay_id
        .insert(prepay_id.clone(), out_trade_no.clone());
    orders
        .by_biz_order_id
        .insert(p.biz_order_id, out_trade_no.clone());
    orders.by_out_trade_no.insert(out_trade_no, order);
    drop(orders);
    answer(&shared, &prepay_id)
}

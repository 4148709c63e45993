//! JSAPI prepay, query and close.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{ApiError, error, json_response};
use crate::crypto;
use crate::state::{Order, Protocol, Shared, TradeState, lock};
use crate::timefmt;

fn param_error(message: impl AsRef<str>) -> ApiError {
    // The field is named in the message; WeChat's detail gives the location.
    super::param_error_response(message.as_ref(), None, None).into()
}

/// A `PARAM_ERROR` about the field at the JSON pointer `field`, with the value sent.
fn field_error(message: impl AsRef<str>, field: &str, value: Option<&Value>) -> ApiError {
    super::param_error_response(message.as_ref(), Some(field), value).into()
}

/// The Transaction JSON of `GET …/out-trade-no/{no}` and of the notification resource.
pub(crate) fn transaction_json(o: &Order) -> Value {
    let unpaid = o.state == TradeState::NotPay;
    let mut amount = Map::new();
    amount.insert("total".into(), json!(o.total));
    if !unpaid {
        amount.insert("currency".into(), json!(o.currency));
    }
    amount.insert("payer_currency".into(), json!(o.currency));
    let mut v = Map::new();
    v.insert("appid".into(), json!(o.appid));
    v.insert("mchid".into(), json!(o.mchid));
    v.insert("out_trade_no".into(), json!(o.out_trade_no));
    v.insert("trade_state".into(), json!(o.state.as_str()));
    v.insert("trade_state_desc".into(), json!(o.state.desc()));
    v.insert("promotion_detail".into(), json!([]));
    // WeChat's NOTPAY answer has neither the payer nor the attach; the scene info comes back
    // when the prepay sent one.
    if !unpaid {
        v.insert("payer".into(), json!({ "openid": o.openid }));
        if let Some(attach) = &o.attach {
            v.insert("attach".into(), json!(attach));
        }
    }
    if let Some(scene) = o.request.get("scene_info").filter(|s| s.is_object()) {
        let device_id = scene.get("device_id").cloned().unwrap_or_else(|| json!(""));
        v.insert("scene_info".into(), json!({ "device_id": device_id }));
    }
    if o.state != TradeState::NotPay {
        v.insert("trade_type".into(), json!("JSAPI"));
    }
    if o.state == TradeState::Success {
        amount.insert("payer_total".into(), json!(o.total));
        v.insert("bank_type".into(), json!("OTHERS"));
        if let Some(id) = &o.transaction_id {
            v.insert("transaction_id".into(), json!(id));
        }
        if let Some(t) = o.success_time {
            v.insert("success_time".into(), json!(timefmt::rfc3339_cst(t)));
        }
    }
    v.insert("amount".into(), Value::Object(amount));
    Value::Object(v)
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Whether `s` is a valid `out_trade_no`: 6..=32 of `[0-9A-Za-z_-|*]`.
pub(crate) fn valid_out_trade_no(s: &str) -> bool {
    (6..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
}

fn get_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(param_error(format!("字段{key}类型错误，应为字符串"))),
    }
}

fn require_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    get_str(obj, key)?.ok_or_else(|| param_error(format!("{key}为必填参数")))
}

fn validate_notify_url(url: &str, allow_http: bool) -> Result<(), ApiError> {
    if url.len() > 255 {
        return Err(param_error("notify_url长度不能超过255"));
    }
    let ok_scheme = url.starts_with("https://") || (allow_http && url.starts_with("http://"));
    if !ok_scheme {
        return Err(param_error(if allow_http {
            "notify_url必须以http://或https://开头"
        } else {
            "notify_url必须是https地址"
        }));
    }
    if url.contains('?') || url.contains('#') {
        return Err(param_error("notify_url不能携带参数"));
    }
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(param_error("notify_url格式错误")),
    }
}

/// The validated fields of a prepay request.
struct Prepay {
    description: String,
    out_trade_no: String,
    attach: Option<String>,
    notify_url: String,
    time_expire: Option<OffsetDateTime>,
    total: i64,
    currency: String,
    openid: String,
}

fn validate_prepay(shared: &Shared, v: &Value) -> Result<Prepay, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(param_error("请求体必须是JSON对象"));
    };
    let appid = require_str(obj, "appid")?;
    let mchid = require_str(obj, "mchid")?;
    if mchid != shared.merchant.mchid {
        return Err(param_error("mchid与请求头Authorization中的mchid不一致"));
    }
    if appid != shared.merchant.appid {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "APPID_MCHID_NOT_MATCH",
            "appid和mch_id不匹配",
        )
        .into());
    }
    let description = require_str(obj, "description")?;
    if !(1..=127).contains(&char_len(description)) {
        return Err(param_error("description长度应为1到127个字符"));
    }
    let out_trade_no = require_str(obj, "out_trade_no")?;
    if !valid_out_trade_no(out_trade_no) {
        return Err(param_error(
            "out_trade_no应为6到32个字符，只能是数字、大小写字母或_-|*",
        ));
    }
    let attach = get_str(obj, "attach")?;
    if attach.is_some_and(|a| char_len(a) > 128) {
        return Err(param_error("attach长度不能超过128个字符"));
    }
    let notify_url = require_str(obj, "notify_url")?;
    validate_notify_url(notify_url, shared.config.allow_http_notify_url)?;
    let time_expire = match get_str(obj, "time_expire")? {
        None => None,
        Some(s) => {
            let t = timefmt::parse_rfc3339(s)
                .ok_or_else(|| param_error("time_expire格式错误，应为RFC3339格式"))?;
            if t <= OffsetDateTime::now_utc() {
                return Err(param_error("time_expire必须晚于当前时间"));
            }
            Some(t)
        }
    };
    if let Some(tag) = get_str(obj, "goods_tag")?
        && char_len(tag) > 32
    {
        return Err(param_error("goods_tag长度不能超过32个字符"));
    }
    let Some(amount) = obj.get("amount").and_then(Value::as_object) else {
        return Err(param_error("amount为必填参数"));
    };
    let total = match amount.get("total") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_i64(),
        Some(_) => return Err(param_error("amount.total必须是整数")),
        None => return Err(param_error("amount.total为必填参数")),
    };
    let total = match total {
        Some(t) if (1..=i64::from(i32::MAX)).contains(&t) => t,
        _ => {
            return Err(field_error(
                "amount.total必须大于0且不超过2147483647",
                "/amount/total",
                amount.get("total"),
            ));
        }
    };
    let currency = get_str(amount, "currency")?.unwrap_or("CNY");
    if currency != "CNY" {
        return Err(param_error("amount.currency只支持CNY"));
    }
    let Some(payer) = obj.get("payer").and_then(Value::as_object) else {
        return Err(param_error("payer为必填参数"));
    };
    let openid = require_str(payer, "openid")?;
    if openid.is_empty() || openid.len() > 128 {
        return Err(param_error("payer.openid长度应为1到128个字符"));
    }
    Ok(Prepay {
        description: description.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        attach: attach.map(str::to_owned),
        notify_url: notify_url.to_owned(),
        time_expire,
        total,
        currency: currency.to_owned(),
        openid: openid.to_owned(),
    })
}

fn new_prepay_id() -> Result<String, crypto::CryptoError> {
    Ok(format!(
        "wx{}{}",
        timefmt::compact_cst(OffsetDateTime::now_utc()),
        crypto::random_from(b"0123456789abcdef", 20)?
    ))
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sandbox internal error");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "SYSTEM_ERROR",
        "系统错误",
    )
}

/// `POST /v3/pay/transactions/jsapi`.
pub(crate) async fn jsapi(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return param_error("请求体不是合法的JSON").into_response();
    };
    let p = match validate_prepay(&shared, &value) {
        Ok(p) => p,
        Err(resp) => return resp.into_response(),
    };
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::try_from(shared.config.prepay_ttl).unwrap_or(time::Duration::MAX);
    let mut orders = lock(&shared.orders);
    if let Some(existing) = orders.by_out_trade_no.get(&p.out_trade_no) {
        match existing.state {
            TradeState::Success => {
                return error(StatusCode::FORBIDDEN, "ORDERPAID", "该订单已支付");
            }
            TradeState::Closed => {
                return error(StatusCode::BAD_REQUEST, "ORDER_CLOSED", "订单已关闭");
            }
            TradeState::NotPay | TradeState::PayError => {}
        }
        if existing.request != value {
            return error(StatusCode::FORBIDDEN, "OUT_TRADE_NO_USED", "商户订单号重复");
        }
        if existing.prepay_expires_at > now {
            return json_response(StatusCode::OK, &json!({ "prepay_id": existing.prepay_id }));
        }
    }
    let prepay_id = match new_prepay_id() {
        Ok(id) => id,
        Err(e) => return internal(&e),
    };
    let state = orders
        .by_out_trade_no
        .get(&p.out_trade_no)
        .map_or(TradeState::NotPay, |o| o.state);
    let order = Order {
        appid: shared.merchant.appid.clone(),
        mchid: shared.merchant.mchid.clone(),
        out_trade_no: p.out_trade_no.clone(),
        description: p.description,
        attach: p.attach,
        notify_url: p.notify_url,
        time_expire: p.time_expire,
        total: p.total,
        currency: p.currency,
        openid: p.openid,
        request: value,
        prepay_id: prepay_id.clone(),
        prepay_expires_at: now + ttl,
        state,
        transaction_id: None,
        success_time: None,
        protocol: Protocol::V3,
    };
    orders
        .by_prepay_id
        .insert(prepay_id.clone(), p.out_trade_no.clone());
    orders.by_out_trade_no.insert(p.out_trade_no, order);
    json_response(StatusCode::OK, &json!({ "prepay_id": prepay_id }))
}

fn check_query_mchid(
    shared: &Shared,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<(), ApiError> {
    let Ok(Query(q)) = query else {
        return Err(param_error("查询参数格式错误"));
    };
    match q.get("mchid") {
        None => Err(param_error(
            "输入源“/querystring/mchid”映射到字段“直连商户号”必填性规则校验失败，此字段为必填项",
        )),
        Some(m) if *m != shared.merchant.mchid => {
            Err(param_error("mchid与请求头Authorization中的mchid不一致"))
        }
        Some(_) => Ok(()),
    }
}

fn order_not_exist() -> Response {
    error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在")
}

/// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…`.
pub(crate) async fn query_by_out_trade_no(
    State(shared): State<Arc<Shared>>,
    Path(out_trade_no): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    if let Err(resp) = check_query_mchid(&shared, query) {
        return resp.into_response();
    }
    let orders = lock(&shared.orders);
    match orders.by_out_trade_no.get(&out_trade_no) {
        Some(o) => json_response(StatusCode::OK, &transaction_json(o)),
        None => order_not_exist(),
    }
}

/// `GET /v3/pay/transactions/id/{transaction_id}?mchid=…`.
pub(crate) async fn query_by_transaction_id(
    State(shared): State<Arc<Shared>>,
    Path(transaction_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    if let Err(resp) = check_query_mchid(&shared, query) {
        return resp.into_response();
    }
    let orders = lock(&shared.orders);
    match orders
        .by_transaction_id
        .get(&transaction_id)
        .and_then(|no| orders.by_out_trade_no.get(no))
    {
        Some(o) => json_response(StatusCode::OK, &transaction_json(o)),
        None => order_not_exist(),
    }
}

/// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` with `{"mchid": …}` → 204.
pub(crate) async fn close(
    State(shared): State<Arc<Shared>>,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return param_error("请求体不是合法的JSON").into_response();
    };
    match value.get("mchid").and_then(Value::as_str) {
        None => return param_error("mchid为必填参数").into_response(),
        Some(m) if m != shared.merchant.mchid => {
            return param_error("mchid与请求头Authorization中的mchid不一致").into_response();
        }
        Some(_) => {}
    }
    let mut orders = lock(&shared.orders);
    let Some(order) = orders.by_out_trade_no.get_mut(&out_trade_no) else {
        return order_not_exist();
    };
    match order.state {
        TradeState::Success => error(StatusCode::BAD_REQUEST, "ORDERPAID", "订单已支付"),
        TradeState::NotPay | TradeState::PayError | TradeState::Closed => {
            order.state = TradeState::Closed;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

//! WeChat Pay API v2 (the legacy XML API): `POST /pay/unifiedorder`, `/pay/orderquery`,
//! `/pay/closeorder`, JSAPI `paySign` checks and XML payment notifications; refunds
//! (`/secapi/pay/refund` over a client-certificate TLS connection, `/pay/refundquery`, encrypted
//! refund notifications).
//!
//! Written from seed 003 (JSAPI flow, `key`) and WeChat Pay's public v2 documentation
//! (`pay.weixin.qq.com/wiki/doc/api/jsapi.php`, chapters 4 (rules, signature), 9_1 (unified
//! order), 9_2 (query), 9_3 (close), 9_7 (notification), 7_7 (JSAPI `paySign`)), independently
//! of wxpay-core. Where the docs are silent, the choice is marked "sandbox choice".
//!
//! Replies follow v2's two levels: `return_code` `FAIL` with a `return_msg` when the request
//! itself is refused (XML, signature, parameter format — "签名失败、参数格式校验错误" per
//! the docs), unsigned; otherwise `return_code` `SUCCESS`, signed, with `result_code`
//! `SUCCESS` or `FAIL` + `err_code`/`err_code_des` for business errors.

mod notify;
mod refund;
mod sign;
mod xml;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{StatusCode, header};
use time::OffsetDateTime;

pub(crate) use notify::{notification_pairs, payment_success};
pub use sign::{SignType, sign, string_to_sign, verify};
pub(crate) use sign::{ct_eq, hex_upper};
pub use xml::{XmlError, parse as parse_xml, to_xml};

use crate::crypto;
use crate::state::{Order, Protocol, Shared, TradeState, lock};
use crate::timefmt;

/// The API v2 routes.
pub(crate) fn router(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/pay/unifiedorder",
            crate::prepay_faults::applied(shared, post(unified_order)),
        )
        .route("/pay/orderquery", post(order_query))
        .route("/pay/closeorder", post(close_order))
        .route("/pay/refundquery", post(refund::refund_query))
        .route("/secapi/pay/refund", post(refund::refund))
}

/// An XML reply (`text/xml`).
fn xml_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A request-level refusal: `return_code` `FAIL`, unsigned.
fn fail(message: &str) -> Response {
    xml_response(to_xml([("return_code", "FAIL"), ("return_msg", message)]))
}

/// A signed `return_code` `SUCCESS` reply carrying `fields` after the common ones.
fn signed_reply(shared: &Shared, sign_type: SignType, fields: &[(&str, String)]) -> Response {
    let nonce = match crypto::random_alnum(32) {
        Ok(n) => n,
        Err(_) => return fail("系统错误"),
    };
    let mut pairs: Vec<(&str, &str)> = vec![
        ("return_code", "SUCCESS"),
        ("return_msg", "OK"),
        ("appid", &shared.merchant.appid),
        ("mch_id", &shared.merchant.mchid),
        ("nonce_str", &nonce),
    ];
    pairs.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
    let signature = sign(pairs.iter().copied(), &shared.v2_api_key, sign_type);
    pairs.push(("sign", &signature));
    xml_response(to_xml(pairs))
}

/// A signed business error: `result_code` `FAIL` with `err_code` and `err_code_des`.
fn business_error(shared: &Shared, sign_type: SignType, code: &str, des: &str) -> Response {
    signed_reply(
        shared,
        sign_type,
        &[
            ("result_code", "FAIL".into()),
            ("err_code", code.into()),
            ("err_code_des", des.into()),
        ],
    )
}

/// A parsed, authenticated request.
struct Authed {
    params: BTreeMap<String, String>,
    sign_type: SignType,
}

impl Authed {
    fn get(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Parses the XML, checks `appid`/`mch_id`/`nonce_str`/`sign_type` and verifies `sign` with the
/// API key.
fn authenticate(shared: &Shared, body: &[u8]) -> Result<Authed, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("post数据为空".to_owned());
    }
    let params = match xml::parse(body) {
        Ok(p) => p,
        Err(XmlError::Doctype) => return Err("XML格式错误：不允许DOCTYPE".to_owned()),
        Err(XmlError::Malformed(_)) => return Err("XML格式错误".to_owned()),
    };
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    if get("appid").is_empty() {
        return Err("缺少参数appid".to_owned());
    }
    if get("mch_id").is_empty() {
        return Err("缺少参数mch_id".to_owned());
    }
    if get("mch_id") != shared.merchant.mchid {
        return Err("mch_id参数错误：商户号不存在".to_owned());
    }
    if get("appid") != shared.merchant.appid {
        return Err("appid和mch_id不匹配".to_owned());
    }
    let nonce = get("nonce_str");
    if nonce.is_empty() || nonce.len() > 32 {
        return Err("nonce_str参数长度有误".to_owned());
    }
    let sign_type = match params.get("sign_type").map(String::as_str) {
        None | Some("") => SignType::Md5,
        Some(s) => SignType::parse(s).ok_or_else(|| "sign_type参数格式错误".to_owned())?,
    };
    if sign_type != shared.config.v2_sign_type {
        // Sandbox choice: the merchant is configured for one signature type.
        return Err("sign_type与商户配置的签名类型不一致".to_owned());
    }
    if !sign::verify(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &shared.v2_api_key,
        sign_type,
    ) {
        return Err("签名错误".to_owned());
    }
    Ok(Authed { params, sign_type })
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `out_trade_no`: String(32) of digits, letters and `_-|*` (v2 docs).
fn valid_out_trade_no(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
}

fn validate_notify_url(url: &str, allow_http: bool) -> Result<(), &'static str> {
    if url.len() > 256 {
        return Err("notify_url长度不能超过256");
    }
    if !(url.starts_with("https://") || (allow_http && url.starts_with("http://"))) {
        return Err(if allow_http {
            "notify_url必须以http://或https://开头"
        } else {
            "notify_url必须是https地址"
        });
    }
    if url.contains('?') || url.contains('#') {
        return Err("notify_url不能携带参数");
    }
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err("notify_url格式错误"),
    }
}

/// The validated fields of a unified order.
struct Unified {
    body: String,
    out_trade_no: String,
    attach: Option<String>,
    total_fee: i64,
    notify_url: String,
    openid: String,
    time_expire: Option<OffsetDateTime>,
}

fn validate_unified(shared: &Shared, r: &Authed) -> Result<Unified, String> {
    let require = |k: &str| r.get(k).ok_or_else(|| format!("缺少参数{k}"));
    let body = require("body")?;
    if char_len(body) > 128 {
        return Err("body参数长度有误".to_owned());
    }
    let out_trade_no = require("out_trade_no")?;
    if !valid_out_trade_no(out_trade_no) {
        return Err("out_trade_no参数格式错误".to_owned());
    }
    let total = require("total_fee")?;
    let total_fee = total
        .parse::<i64>()
        .ok()
        .filter(|_| total.bytes().all(|b| b.is_ascii_digit()))
        .filter(|t| (1..=i64::from(i32::MAX)).contains(t))
        .ok_or_else(|| "total_fee参数格式错误：应为大于0的整数（单位分）".to_owned())?;
    if let Some(fee_type) = r.get("fee_type")
        && fee_type != "CNY"
    {
        return Err("fee_type参数错误：只支持CNY".to_owned());
    }
    let ip = require("spbill_create_ip")?;
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err("spbill_create_ip参数格式错误".to_owned());
    }
    let notify_url = require("notify_url")?;
    validate_notify_url(notify_url, shared.config.allow_http_notify_url).map_err(str::to_owned)?;
    let trade_type = require("trade_type")?;
    if trade_type != "JSAPI" {
        // Sandbox choice: only JSAPI is emulated.
        return Err("trade_type参数错误：沙箱只支持JSAPI".to_owned());
    }
    let openid = r
        .get("openid")
        .ok_or_else(|| "trade_type=JSAPI时（即JSAPI支付），必须传openid".to_owned())?;
    if openid.len() > 128 {
        return Err("openid参数长度有误".to_owned());
    }
    let attach = r.get("attach");
    if attach.is_some_and(|a| char_len(a) > 127) {
        return Err("attach参数长度有误".to_owned());
    }
    let time_expire = match r.get("time_expire") {
        None => None,
        Some(s) => {
            let t = timefmt::parse_compact_cst(s)
                .ok_or_else(|| "time_expire参数格式错误，应为yyyyMMddHHmmss".to_owned())?;
            if t <= OffsetDateTime::now_utc() {
                return Err("time_expire时间过短".to_owned());
            }
            Some(t)
        }
    };
    Ok(Unified {
        body: body.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        attach: attach.map(str::to_owned),
        total_fee,
        notify_url: notify_url.to_owned(),
        openid: openid.to_owned(),
        time_expire,
    })
}

/// The parameters that define "the same order": everything but `sign` and `nonce_str`.
fn identity(params: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        params
            .iter()
            .filter(|(k, v)| !v.is_empty() && *k != "sign" && *k != "nonce_str")
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// A new `prepay_id`: `wx` + time + 20 hex digits, as v3's.
pub(crate) fn new_prepay_id() -> Result<String, crypto::CryptoError> {
    Ok(format!(
        "wx{}{}",
        timefmt::compact_cst(OffsetDateTime::now_utc()),
        crypto::random_from(b"0123456789abcdef", 20)?
    ))
}

/// `POST /pay/unifiedorder`.
async fn unified_order(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let r = match authenticate(&shared, &body) {
        Ok(r) => r,
        Err(message) => return fail(&message),
    };
    let u = match validate_unified(&shared, &r) {
        Ok(u) => u,
        Err(message) => return fail(&message),
    };
    let request = identity(&r.params);
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::try_from(shared.config.prepay_ttl).unwrap_or(time::Duration::MAX);
    let mut orders = lock(&shared.orders);
    let existing = orders.by_out_trade_no.get(&u.out_trade_no);
    if let Some(existing) = existing {
        match existing.state {
            TradeState::Success => {
                return business_error(&shared, r.sign_type, "ORDERPAID", "该订单已支付");
            }
            TradeState::Closed => {
                return business_error(&shared, r.sign_type, "ORDERCLOSED", "该订单已关闭");
            }
            TradeState::NotPay | TradeState::PayError => {}
        }
        if existing.request != request {
            return business_error(
                &shared,
                r.sign_type,
                "INVALID_REQUEST",
                "201 商户订单号重复",
            );
        }
        if existing.prepay_expires_at > now {
            let prepay_id = existing.prepay_id.clone();
            drop(orders);
            return prepay_reply(&shared, r.sign_type, prepay_id);
        }
    }
    let state = existing.map_or(TradeState::NotPay, |o| o.state);
    let prepay_id = match new_prepay_id() {
        Ok(id) => id,
        Err(_) => return business_error(&shared, r.sign_type, "SYSTEMERROR", "系统错误"),
    };
    let order = Order {
        appid: shared.merchant.appid.clone(),
        mchid: shared.merchant.mchid.clone(),
        out_trade_no: u.out_trade_no.clone(),
        description: u.body,
        attach: u.attach,
        notify_url: u.notify_url,
        time_expire: u.time_expire,
        total: u.total_fee,
        currency: "CNY".into(),
        openid: u.openid,
        request,
        prepay_id: prepay_id.clone(),
        prepay_expires_at: now + ttl,
        state,
        transaction_id: None,
        success_time: None,
        protocol: Protocol::V2 {
            sign_type: r.sign_type,
        },
    };
    orders
        .by_prepay_id
        .insert(prepay_id.clone(), u.out_trade_no.clone());
    orders.by_out_trade_no.insert(u.out_trade_no, order);
    drop(orders);
    prepay_reply(&shared, r.sign_type, prepay_id)
}

fn prepay_reply(shared: &Shared, sign_type: SignType, prepay_id: String) -> Response {
    signed_reply(
        shared,
        sign_type,
        &[
            ("result_code", "SUCCESS".into()),
            ("prepay_id", prepay_id),
            ("trade_type", "JSAPI".into()),
        ],
    )
}

/// Finds the merchant's order by `out_trade_no` or `transaction_id` (gateway orders belong to
/// another merchant and are invisible here).
fn find<'a>(shared: &'a Shared, orders: &'a crate::state::Orders, r: &Authed) -> Option<&'a Order> {
    let no = match (r.get("transaction_id"), r.get("out_trade_no")) {
        (Some(id), _) => orders.by_transaction_id.get(id)?,
        (None, Some(no)) => no,
        (None, None) => return None,
    };
    orders
        .by_out_trade_no
        .get(no)
        .filter(|o| o.mchid == shared.merchant.mchid)
}

/// `POST /pay/orderquery`.
async fn order_query(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let r = match authenticate(&shared, &body) {
        Ok(r) => r,
        Err(message) => return fail(&message),
    };
    if r.get("transaction_id").is_none() && r.get("out_trade_no").is_none() {
        return fail("out_trade_no、transaction_id至少填一个");
    }
    let orders = lock(&shared.orders);
    let Some(o) = find(&shared, &orders, &r) else {
        drop(orders);
        return business_error(&shared, r.sign_type, "ORDERNOTEXIST", "此交易订单号不存在");
    };
    let mut fields: Vec<(&str, String)> = vec![("result_code", "SUCCESS".into())];
    // v2 docs: unless trade_state is SUCCESS, only out_trade_no and attach (besides
    // trade_state and trade_state_desc) are returned.
    if o.state == TradeState::Success {
        fields.extend([
            ("openid", o.openid.clone()),
            ("is_subscribe", "N".into()),
            ("trade_type", "JSAPI".into()),
            ("bank_type", "OTHERS".into()),
            ("total_fee", o.total.to_string()),
            ("fee_type", o.currency.clone()),
            ("cash_fee", o.total.to_string()),
            (
                "transaction_id",
                o.transaction_id.clone().unwrap_or_default(),
            ),
            (
                "time_end",
                o.success_time.map(timefmt::compact_cst).unwrap_or_default(),
            ),
        ]);
    }
    fields.extend([
        ("out_trade_no", o.out_trade_no.clone()),
        ("attach", o.attach.clone().unwrap_or_default()),
        ("trade_state", o.state.as_str().into()),
        ("trade_state_desc", o.state.desc().into()),
    ]);
    fields.retain(|(_, v)| !v.is_empty());
    drop(orders);
    signed_reply(&shared, r.sign_type, &fields)
}

/// `POST /pay/closeorder`.
async fn close_order(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let r = match authenticate(&shared, &body) {
        Ok(r) => r,
        Err(message) => return fail(&message),
    };
    let Some(no) = r.get("out_trade_no") else {
        return fail("缺少参数out_trade_no");
    };
    let mut orders = lock(&shared.orders);
    let Some(order) = orders
        .by_out_trade_no
        .get_mut(no)
        .filter(|o| o.mchid == shared.merchant.mchid)
    else {
        drop(orders);
        // Sandbox choice: the close docs list no code for an unknown order; query's is used.
        return business_error(&shared, r.sign_type, "ORDERNOTEXIST", "此交易订单号不存在");
    };
    let outcome = match order.state {
        TradeState::Success => Err(("ORDERPAID", "订单已支付，不能发起关单")),
        TradeState::Closed => Err(("ORDERCLOSED", "订单已关闭，无法重复关闭")),
        TradeState::NotPay | TradeState::PayError => {
            order.state = TradeState::Closed;
            Ok(())
        }
    };
    drop(orders);
    match outcome {
        Ok(()) => signed_reply(
            &shared,
            r.sign_type,
            &[
                ("result_code", "SUCCESS".into()),
                ("result_msg", "OK".into()),
            ],
        ),
        Err((code, des)) => business_error(&shared, r.sign_type, code, des),
    }
}

/// The JSAPI `paySign` of v2 (docs chapter 7_7): the v2 signature over `appId`, `nonceStr`,
/// `package`, `signType` and `timeStamp`.
pub fn pay_sign(
    app_id: &str,
    time_stamp: &str,
    nonce_str: &str,
    package: &str,
    sign_type: SignType,
    api_key: &str,
) -> String {
    sign(
        [
            ("appId", app_id),
            ("nonceStr", nonce_str),
            ("package", package),
            ("signType", sign_type.as_str()),
            ("timeStamp", time_stamp),
        ],
        api_key,
        sign_type,
    )
}

//! The sandbox's own endpoints (`/sandbox/…`): simulate the payer's WeChat client, inspect the
//! notification log, tune faults, and serve the browser shim.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::config::NotifyFaults;
use crate::crypto;
use crate::delivery;
use crate::error::SandboxError;
use crate::gateway;
use crate::qfpay;
use crate::state::{Protocol, Shared, TradeState, lock};
use crate::v2::{self, SignType};
use crate::v3;
use crate::weidoufu;

/// What the simulated payer does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SimulatedOutcome {
    /// The payment succeeds: the trade becomes `SUCCESS` and the notification is delivered.
    #[default]
    Success,
    /// The payment fails: the trade becomes `PAYERROR` (no notification, as for real JSAPI).
    #[serde(rename = "PAYERROR")]
    PayError,
    /// The payer never finishes: the trade stays `NOTPAY`.
    Expire,
}

/// The parameters a page passes to `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` or
/// `wx.requestPayment`, plus the outcome to simulate. JSON field names are WeChat's
/// (`appId`, `timeStamp`, `nonceStr`, `package`, `signType`, `paySign`, `outcome`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PayRequest {
    /// `appId`: must be the sandbox's app id.
    #[serde(rename = "appId", default)]
    pub app_id: String,
    /// `timeStamp`: decimal seconds, as a string.
    #[serde(rename = "timeStamp", default)]
    pub time_stamp: String,
    /// `nonceStr`.
    #[serde(rename = "nonceStr", default)]
    pub nonce_str: String,
    /// `package`: `prepay_id=…`.
    #[serde(default)]
    pub package: String,
    /// `signType`: `RSA` for an API v3 prepay; `MD5` or `HMAC-SHA256` (the unified order's)
    /// for an API v2 prepay; `MD5` for a gateway, QFPay or weidoufu prepay.
    #[serde(rename = "signType", default)]
    pub sign_type: String,
    /// `paySign`: API v3: base64 RSA-SHA256 over `appId\ntimeStamp\nnonceStr\npackage\n`;
    /// API v2, the gateway, QFPay and weidoufu: the v2 signature (upper-case hex) over `appId`,
    /// `nonceStr`, `package`, `signType`, `timeStamp` with `&key=`.
    #[serde(rename = "paySign", default)]
    pub pay_sign: String,
    /// What to simulate (default success).
    #[serde(default)]
    pub outcome: Option<SimulatedOutcome>,
    /// Pays an Alipay trade instead of a WeChat prepay: the `trade_no` weidoufu returned for
    /// `pay_type` 2 (JSON `alipay_trade_no`). When set, the WeChat fields are ignored (an Alipay
    /// mini program pays with the `trade_no` alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alipay_trade_no: Option<String>,
}

/// The result of a simulated payment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct PayOutcome {
    /// The order paid (the shop's number: for the gateway, its `biz_order_id`; for weidoufu,
    /// its `out_order_no`).
    pub out_trade_no: String,
    /// The prepay id from the package (empty for an Alipay trade).
    pub prepay_id: String,
    /// What was simulated.
    pub outcome: SimulatedOutcome,
    /// The trade's `trade_state` afterwards.
    pub trade_state: String,
    /// The transaction id, on success: the upstream's own trade number the shop is told about
    /// (WeChat's `transaction_id`; the gateway's `trade_id`; QFPay's `syssn`; weidoufu's
    /// `mch_trade_no`).
    pub transaction_id: Option<String>,
    /// The id of the notification being delivered, on success (none for a QFPay payment
    /// requested without `notify_url`).
    pub notification_id: Option<String>,
}

fn refuse(code: &str, message: &str) -> SandboxError {
    SandboxError::Pay {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// The message of a JSAPI `paySign`: `appId\ntimeStamp\nnonceStr\npackage\n`.
pub fn pay_sign_message(app_id: &str, time_stamp: &str, nonce_str: &str, package: &str) -> String {
    format!("{app_id}\n{time_stamp}\n{nonce_str}\n{package}\n")
}

/// How a `prepay_id` must be paid.
enum PayAuth {
    /// API v3: RSA `paySign` with the merchant key.
    Rsa,
    /// API v2, the gateway, QFPay or weidoufu: a v2 `paySign` of this type with this key.
    V2(SignType, String),
}

/// Checks the client parameters as the WeChat client does and applies the outcome.
///
/// `signType` `RSA` pays an API v3 prepay; `MD5`/`HMAC-SHA256` pay an API v2 prepay (the type
/// must be the one of its unified order, per the v2 JSAPI docs) or a gateway, QFPay or weidoufu
/// prepay (`MD5`, signed with that upstream's WeChat merchant key). `alipay_trade_no` pays a
/// weidoufu Alipay trade instead.
pub(crate) fn pay(shared: &Arc<Shared>, req: &PayRequest) -> Result<PayOutcome, SandboxError> {
    if let Some(trade_no) = &req.alipay_trade_no {
        return pay_alipay(shared, trade_no, req.outcome.unwrap_or_default());
    }
    let declared = match req.sign_type.as_str() {
        "RSA" => None,
        other => Some(SignType::parse(other).ok_or_else(|| {
            refuse(
                "INVALID_SIGN_TYPE",
                "signType must be \"RSA\" (API v3) or \"MD5\"/\"HMAC-SHA256\" (API v2, gateway)",
            )
        })?),
    };
    if req.app_id != shared.merchant.appid {
        return Err(refuse(
            "APPID_MISMATCH",
            "appId is not the merchant's app id",
        ));
    }
    if req.time_stamp.is_empty()
        || req.time_stamp.len() > 18
        || !req.time_stamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(refuse(
            "INVALID_TIMESTAMP",
            "timeStamp must be decimal seconds as a string",
        ));
    }
    if req.nonce_str.is_empty() || req.nonce_str.len() > 32 {
        return Err(refuse(
            "INVALID_NONCE",
            "nonceStr must be 1 to 32 characters",
        ));
    }
    let Some(prepay_id) = req.package.strip_prefix("prepay_id=") else {
        return Err(refuse("INVALID_PACKAGE", "package must be \"prepay_id=…\""));
    };
    let auth = {
        let orders = lock(&shared.orders);
        orders
            .by_prepay_id
            .get(prepay_id)
            .and_then(|no| orders.by_out_trade_no.get(no))
            .map(|o| match &o.protocol {
                Protocol::V3 => PayAuth::Rsa,
                Protocol::V2 { sign_type } => PayAuth::V2(*sign_type, shared.v2_api_key.clone()),
                Protocol::Gateway(_) => {
                    PayAuth::V2(SignType::Md5, shared.gateway_wechat_key.clone())
                }
                Protocol::Qfpay(_) => PayAuth::V2(SignType::Md5, shared.qfpay.wechat_key.clone()),
                Protocol::Weidoufu(_) => {
                    PayAuth::V2(SignType::Md5, shared.weidoufu.wechat_key.clone())
                }
            })
    };
    match (declared, auth) {
        (None, Some(PayAuth::Rsa) | None) => {
            let message =
                pay_sign_message(&req.app_id, &req.time_stamp, &req.nonce_str, &req.package);
            if shared
                .merchant_verifier
                .verify_base64(message.as_bytes(), &req.pay_sign)
                .is_err()
            {
                return Err(refuse(
                    "PAY_SIGN_ERROR",
                    "paySign does not verify with the merchant public key over appId\\ntimeStamp\\nnonceStr\\npackage\\n",
                ));
            }
        }
        (None, Some(PayAuth::V2(..))) => {
            return Err(refuse(
                "INVALID_SIGN_TYPE",
                "this prepay_id comes from API v2 or the gateway: signType must be MD5 or HMAC-SHA256",
            ));
        }
        (Some(_), Some(PayAuth::Rsa)) => {
            return Err(refuse(
                "INVALID_SIGN_TYPE",
                "signType must be \"RSA\" for API v3",
            ));
        }
        (Some(declared), Some(PayAuth::V2(expected, key))) => {
            if declared != expected {
                return Err(refuse(
                    "INVALID_SIGN_TYPE",
                    "signType must be the sign type of the unified order",
                ));
            }
            let want = v2::pay_sign(
                &req.app_id,
                &req.time_stamp,
                &req.nonce_str,
                &req.package,
                declared,
                &key,
            );
            if !v2::ct_eq(&want, &req.pay_sign.to_ascii_uppercase()) {
                return Err(refuse(
                    "PAY_SIGN_ERROR",
                    "paySign is not the v2 signature over appId, nonceStr, package, signType, timeStamp with &key=",
                ));
            }
        }
        (Some(_), None) => {}
    }
    let outcome = req.outcome.unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let mut orders = lock(&shared.orders);
    let Some(no) = orders.by_prepay_id.get(prepay_id).cloned() else {
        return Err(refuse("PREPAY_ID_NOT_FOUND", "no such prepay_id"));
    };
    let Some(order) = orders.by_out_trade_no.get_mut(&no) else {
        return Err(refuse("PREPAY_ID_NOT_FOUND", "no such prepay_id"));
    };
    if order.prepay_id != prepay_id || order.prepay_expires_at <= now {
        return Err(refuse(
            "PREPAY_ID_EXPIRED",
            "the prepay_id has expired (valid 2 hours)",
        ));
    }
    if order.appid != req.app_id {
        return Err(refuse(
            "APPID_MISMATCH",
            "appId differs from the order's appid",
        ));
    }
    match order.state {
        TradeState::Success => return Err(refuse("ORDERPAID", "the order is already paid")),
        TradeState::Closed => return Err(refuse("ORDER_CLOSED", "the order is closed")),
        TradeState::NotPay | TradeState::PayError => {}
    }
    if order.time_expire.is_some_and(|t| t <= now) {
        return Err(refuse(
            "ORDER_EXPIRED",
            "the order's time_expire has passed",
        ));
    }
    let mut result = PayOutcome {
        out_trade_no: order.shop_order_no().to_owned(),
        prepay_id: prepay_id.to_owned(),
        outcome,
        trade_state: order.state.as_str().to_owned(),
        transaction_id: None,
        notification_id: None,
    };
    match outcome {
        SimulatedOutcome::Expire => return Ok(result),
        SimulatedOutcome::PayError => {
            order.state = TradeState::PayError;
            result.trade_state = order.state.as_str().to_owned();
            return Ok(result);
        }
        SimulatedOutcome::Success => {}
    }
    let transaction_id = format!("42000{}", crypto::random_digits(23)?);
    order.state = TradeState::Success;
    order.transaction_id = Some(transaction_id.clone());
    order.success_time = Some(now);
    let notification = match &order.protocol {
        Protocol::V3 => Some(v3::notify::payment_success(shared, order)?),
        Protocol::V2 { sign_type } => Some(v2::payment_success(shared, order, *sign_type)?),
        Protocol::Gateway(trade) => {
            // The shop sees the gateway's trade id, not WeChat's transaction id.
            result.transaction_id = Some(trade.trade_id.clone());
            Some(gateway::payment_success(shared, order, trade)?)
        }
        Protocol::Qfpay(trade) => {
            result.transaction_id = Some(trade.syssn.clone());
            qfpay::payment_success(shared, order, trade)?
        }
        Protocol::Weidoufu(trade) => {
            result.transaction_id = Some(trade.mch_trade_no.clone());
            Some(weidoufu::payment_success(shared, order, trade)?)
        }
    };
    orders.by_transaction_id.insert(transaction_id.clone(), no);
    drop(orders);
    result.trade_state = TradeState::Success.as_str().to_owned();
    result.transaction_id.get_or_insert(transaction_id);
    if let Some(notification) = notification {
        result.notification_id = Some(notification.id.clone());
        start_delivery(shared, notification);
    }
    Ok(result)
}

/// Delivers `notification` in the background with the current faults and retry schedule.
pub(crate) fn start_delivery(shared: &Arc<Shared>, notification: delivery::Notification) {
    let faults = lock(&shared.faults).clone();
    let schedule = shared.config.notify_retry_schedule.clone();
    shared.spawn(delivery::deliver(
        Arc::clone(shared),
        notification,
        schedule,
        faults,
    ));
}

/// Pays (or fails) the weidoufu Alipay trade `trade_no`, as the payer's Alipay app would, and
/// starts weidoufu's callback on success.
fn pay_alipay(
    shared: &Arc<Shared>,
    trade_no: &str,
    outcome: SimulatedOutcome,
) -> Result<PayOutcome, SandboxError> {
    let now = OffsetDateTime::now_utc();
    let mut orders = lock(&shared.orders);
    let Some(no) = orders.by_alipay_trade_no.get(trade_no).cloned() else {
        return Err(refuse("TRADE_NOT_EXIST", "no such Alipay trade_no"));
    };
    let Some(order) = orders.by_out_trade_no.get_mut(&no) else {
        return Err(refuse("TRADE_NOT_EXIST", "no such Alipay trade_no"));
    };
    let Protocol::Weidoufu(trade) = &order.protocol else {
        return Err(refuse("TRADE_NOT_EXIST", "no such Alipay trade_no"));
    };
    let trade = (**trade).clone();
    if order.prepay_expires_at <= now {
        return Err(refuse(
            "TRADE_EXPIRED",
            "the Alipay trade has expired (valid as long as a prepay_id)",
        ));
    }
    match order.state {
        TradeState::Success => return Err(refuse("ORDERPAID", "the order is already paid")),
        TradeState::Closed => return Err(refuse("ORDER_CLOSED", "the order is closed")),
        TradeState::NotPay | TradeState::PayError => {}
    }
    let mut result = PayOutcome {
        out_trade_no: trade.out_order_no.clone(),
        prepay_id: String::new(),
        outcome,
        trade_state: order.state.as_str().to_owned(),
        transaction_id: None,
        notification_id: None,
    };
    match outcome {
        SimulatedOutcome::Expire => return Ok(result),
        SimulatedOutcome::PayError => {
            order.state = TradeState::PayError;
            result.trade_state = order.state.as_str().to_owned();
            return Ok(result);
        }
        SimulatedOutcome::Success => {}
    }
    order.state = TradeState::Success;
    order.transaction_id = Some(trade_no.to_owned());
    order.success_time = Some(now);
    let notification = weidoufu::payment_success(shared, order, &trade)?;
    drop(orders);
    result.trade_state = TradeState::Success.as_str().to_owned();
    result.transaction_id = Some(trade.mch_trade_no);
    result.notification_id = Some(notification.id.clone());
    start_delivery(shared, notification);
    Ok(result)
}

fn error_json(status: StatusCode, code: &str, message: &str) -> Response {
    v3::json_response(status, &json!({ "code": code, "message": message }))
}

async fn pay_handler(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: PayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_json(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.to_string());
        }
    };
    match pay(&shared, &req) {
        Ok(outcome) => v3::json_response(
            StatusCode::OK,
            &serde_json::to_value(&outcome).unwrap_or_default(),
        ),
        Err(SandboxError::Pay { code, message }) => {
            error_json(StatusCode::BAD_REQUEST, &code, &message)
        }
        Err(e) => error_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            &e.to_string(),
        ),
    }
}

async fn prepay_info(State(shared): State<Arc<Shared>>, Path(prepay_id): Path<String>) -> Response {
    let orders = lock(&shared.orders);
    let Some(order) = orders
        .by_prepay_id
        .get(&prepay_id)
        .and_then(|no| orders.by_out_trade_no.get(no))
    else {
        return error_json(
            StatusCode::NOT_FOUND,
            "PREPAY_ID_NOT_FOUND",
            "no such prepay_id",
        );
    };
    let current = order.prepay_id == prepay_id;
    v3::json_response(
        StatusCode::OK,
        &json!({
            "prepay_id": prepay_id,
            "appid": order.appid,
            "mchid": order.mchid,
            "out_trade_no": order.shop_order_no(),
            "description": order.description,
            "amount": { "total": order.total, "currency": order.currency },
            "trade_state": order.state.as_str(),
            "expired": !current || order.prepay_expires_at <= OffsetDateTime::now_utc(),
            "expires_at": crate::timefmt::rfc3339_cst(order.prepay_expires_at),
        }),
    )
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    out_trade_no: Option<String>,
}

async fn deliveries(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<DeliveriesQuery>,
) -> Response {
    let mut records = shared.deliveries.snapshot();
    if let Some(no) = q.out_trade_no {
        records.retain(|r| r.out_trade_no == no);
    }
    v3::json_response(
        StatusCode::OK,
        &serde_json::to_value(&records).unwrap_or_default(),
    )
}

#[derive(Deserialize)]
struct FaultsBody {
    #[serde(default)]
    duplicates: u32,
    #[serde(default)]
    concurrent_duplicates: u32,
    #[serde(default)]
    signtest_probe: bool,
    #[serde(default)]
    delay_ms: u64,
    /// Alias of `signtest_probe`, the name that fits API v2 and the gateway.
    #[serde(default)]
    forged_sign: bool,
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let f: FaultsBody = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error_json(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.to_string()),
    };
    *lock(&shared.faults) = NotifyFaults {
        duplicates: f.duplicates,
        concurrent_duplicates: f.concurrent_duplicates,
        signtest_probe: f.signtest_probe || f.forged_sign,
        delay: Duration::from_millis(f.delay_ms),
    };
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct RefundBehaviourBody {
    #[serde(default)]
    outcome: crate::refunds::RefundOutcome,
    #[serde(default = "default_refund_delay_ms")]
    delay_ms: u64,
    #[serde(default)]
    refuse_next: u32,
    #[serde(default)]
    lose_answer_next: u32,
}

fn default_refund_delay_ms() -> u64 {
    50
}

async fn set_refund_behaviour(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: RefundBehaviourBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error_json(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.to_string()),
    };
    *lock(&shared.refund_behaviour) = crate::refunds::RefundBehaviour {
        outcome: b.outcome,
        delay: Duration::from_millis(b.delay_ms),
        refuse_next: b.refuse_next,
        lose_answer_next: b.lose_answer_next,
    };
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct PrepayFaultsBody {
    #[serde(default)]
    fail_next: u32,
    #[serde(default)]
    slow_next: u32,
    #[serde(default)]
    slow_delay_ms: u64,
}

async fn set_prepay_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: PrepayFaultsBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error_json(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.to_string()),
    };
    *lock(&shared.prepay_faults) = crate::prepay_faults::PrepayFaults {
        fail_next: b.fail_next,
        slow_next: b.slow_next,
        slow_delay: Duration::from_millis(b.slow_delay_ms),
    };
    StatusCode::NO_CONTENT.into_response()
}

async fn list_refunds(State(shared): State<Arc<Shared>>) -> Response {
    v3::json_response(
        StatusCode::OK,
        &serde_json::to_value(crate::refunds::all(&shared)).unwrap_or_default(),
    )
}

#[derive(Deserialize)]
struct SettleBody {
    status: String,
}

async fn settle_refund(
    State(shared): State<Arc<Shared>>,
    Path(out_refund_no): Path<String>,
    body: Bytes,
) -> Response {
    use crate::refunds::RefundState;
    let state = match serde_json::from_slice::<SettleBody>(&body)
        .map(|b| b.status)
        .as_deref()
    {
        Ok("SUCCESS") => RefundState::Success,
        Ok("ABNORMAL") => RefundState::Abnormal,
        Ok("CLOSED") => RefundState::Closed,
        _ => {
            return error_json(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "body must be {\"status\": \"SUCCESS\" | \"ABNORMAL\" | \"CLOSED\"}",
            );
        }
    };
    match crate::refunds::settle(&shared, &out_refund_no, state) {
        Ok(view) => v3::json_response(
            StatusCode::OK,
            &serde_json::to_value(view).unwrap_or_default(),
        ),
        Err(SandboxError::Refund { code, message }) => {
            let status = if code == "REFUND_NOT_FOUND" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::CONFLICT
            };
            error_json(status, &code, &message)
        }
        Err(e) => error_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            &e.to_string(),
        ),
    }
}

/// Public facts a frontend or a shop needs (never the merchant private key).
async fn info(State(shared): State<Arc<Shared>>) -> Response {
    let p = &shared.platform_material;
    v3::json_response(
        StatusCode::OK,
        &json!({
            "mchid": shared.merchant.mchid,
            "appid": shared.merchant.appid,
            "merchant_serial": shared.merchant.serial,
            "platform_mode": format!("{:?}", p.mode),
            "platform_public_key_id": p.public_key_id,
            "platform_public_key_pem": p.public_key_pem,
            "platform_certificate_serial": p.certificate_serial,
            "platform_certificate_pem": p.certificate_pem,
        }),
    )
}

async fn jsbridge() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        crate::jsbridge::SCRIPT,
    )
        .into_response()
}

/// Lets pages on other origins call the sandbox endpoints.
async fn cors(req: Request, next: Next) -> Response {
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    resp
}

/// The `/sandbox/…` routes.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/pay", post(pay_handler))
        .route("/sandbox/prepay/{prepay_id}", get(prepay_info))
        .route("/sandbox/deliveries", get(deliveries))
        .route("/sandbox/faults", post(set_faults))
        .route("/sandbox/refund-behaviour", post(set_refund_behaviour))
        .route("/sandbox/prepay-faults", post(set_prepay_faults))
        .route("/sandbox/refunds", get(list_refunds))
        .route(
            "/sandbox/refunds/{out_refund_no}/settle",
            post(settle_refund),
        )
        .route("/sandbox/info", get(info))
        .route("/sandbox/jsbridge.js", get(jsbridge))
        .layer(middleware::from_fn(cors))
}

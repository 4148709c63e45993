//! `POST /v3/refund/domestic/refunds`, `GET /v3/refund/domestic/refunds/{out_refund_no}` and
//! the `REFUND.*` notifications.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::{error, json_response, notify};
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::refunds::{self, Refund, RefundAsk, RefundState, Refusal};
use crate::state::{Order, Protocol, Shared, lock};
use crate::timefmt;

fn param_error(message: &str) -> Response {
    super::param_error_response(message, None, None)
}

/// The refund JSON of the refund and query answers.
fn refund_json(refund: &Refund, order: &Order) -> Value {
    let mut v = Map::new();
    v.insert("refund_id".into(), json!(refund.refund_id));
    v.insert("out_refund_no".into(), json!(refund.out_refund_no));
    if let Some(id) = &order.transaction_id {
        v.insert("transaction_id".into(), json!(id));
    }
    v.insert("out_trade_no".into(), json!(order.out_trade_no));
    v.insert("channel".into(), json!("ORIGINAL"));
    v.insert(
        "user_received_account".into(),
        json!(
            refund
                .user_received_account
                .as_deref()
                .unwrap_or("支付用户零钱")
        ),
    );
    if let Some(t) = refund.success_time {
        v.insert("success_time".into(), json!(timefmt::rfc3339_cst(t)));
    }
    v.insert(
        "create_time".into(),
        json!(timefmt::rfc3339_cst(refund.created_at)),
    );
    v.insert("status".into(), json!(refund.state.as_str()));
    v.insert("funds_account".into(), json!("AVAILABLE"));
    v.insert("amount".into(), amount_json(refund, order));
    v.insert("promotion_detail".into(), json!([]));
    Value::Object(v)
}

fn amount_json(refund: &Refund, order: &Order) -> Value {
    json!({
        "total": order.total,
        "refund": refund.amount,
        "payer_total": order.total,
        "payer_refund": refund.amount,
        "settlement_refund": refund.amount,
        "settlement_total": order.total,
        "discount_refund": 0,
        "currency": order.currency,
    })
}

/// `POST /v3/refund/domestic/refunds`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return param_error("请求体不是合法的JSON");
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(out_refund_no) = text("out_refund_no") else {
        return param_error("out_refund_no为必填参数");
    };
    if out_refund_no.is_empty() || out_refund_no.len() > 64 {
        return param_error("out_refund_no长度须为1到64");
    }
    if text("reason").is_some_and(|r| r.chars().count() > 80) {
        return param_error("reason长度不能超过80个字符");
    }
    let order_key = {
        let orders = lock(&shared.orders);
        match (text("transaction_id"), text("out_trade_no")) {
            (Some(id), _) => orders.by_transaction_id.get(&id).cloned(),
            (None, Some(no)) => Some(no),
            (None, None) => return param_error("transaction_id和out_trade_no必须二选一"),
        }
    };
    let amount = value.get("amount");
    let number = |key: &str| amount.and_then(|a| a.get(key)).and_then(Value::as_i64);
    let (Some(refund), Some(total)) = (number("refund"), number("total")) else {
        return param_error("amount.refund和amount.total为必填参数");
    };
    if amount
        .and_then(|a| a.get("currency"))
        .and_then(Value::as_str)
        != Some("CNY")
    {
        return param_error("amount.currency必须为CNY");
    }
    let v3_order = order_key.as_ref().is_some_and(|key| {
        lock(&shared.orders)
            .by_out_trade_no
            .get(key)
            .is_some_and(|o| matches!(o.protocol, Protocol::V3))
    });
    if !v3_order {
        return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在");
    }
    let ask = RefundAsk {
        order_key: order_key.unwrap_or_default(),
        out_refund_no,
        amount: refund,
        total: Some(total),
        reason: text("reason"),
        notify_url: text("notify_url"),
    };
    match refunds::accept(&shared, ask, notification) {
        Ok(accepted) if accepted.lose_answer => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            "系统超时，请稍后重试",
        ),
        Ok(accepted) => json_response(
            StatusCode::OK,
            &refund_json(&accepted.refund, &accepted.order),
        ),
        Err(Refusal::OrderNotFound) => {
            error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在")
        }
        Err(Refusal::NotPaid) => {
            error(StatusCode::FORBIDDEN, "TRADE_ERROR", "订单未支付，不能退款")
        }
        Err(Refusal::InvalidAmount(why)) => param_error(why),
        Err(Refusal::ExceedsRefundable { refundable }) => error(
            StatusCode::FORBIDDEN,
            "NOT_ENOUGH",
            &format!("申请退款金额超过订单可退金额（剩余可退 {refundable} 分）"),
        ),
        Err(Refusal::NumberReused) => error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "out_refund_no已用于另一笔退款",
        ),
        Err(Refusal::Injected) => error(
            StatusCode::FORBIDDEN,
            "NOT_ENOUGH",
            "基本账户余额不足，请充值后重新发起",
        ),
    }
}

/// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
pub(crate) async fn query(
    State(shared): State<Arc<Shared>>,
    Path(out_refund_no): Path<String>,
) -> Response {
    match refunds::find(&shared, &out_refund_no) {
        Some((refund, order)) if matches!(order.protocol, Protocol::V3) => {
            json_response(StatusCode::OK, &refund_json(&refund, &order))
        }
        _ => error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在"),
    }
}

/// The `REFUND.SUCCESS` / `REFUND.ABNORMAL` / `REFUND.CLOSED` notification of a settled refund.
fn notification(
    shared: &Arc<Shared>,
    order: &Order,
    refund: &Refund,
) -> Result<Option<Notification>, SandboxError> {
    let Some(url) = refund.notify_url.clone() else {
        return Ok(None);
    };
    let (event_type, summary) = match refund.state {
        RefundState::Success => ("REFUND.SUCCESS", "退款成功"),
        RefundState::Abnormal => ("REFUND.ABNORMAL", "退款异常"),
        RefundState::Closed => ("REFUND.CLOSED", "退款关闭"),
        RefundState::Processing => return Ok(None),
    };
    let mut resource = json!({
        "mchid": order.mchid,
        "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": refund.state.as_str(),
        "user_received_account": refund.user_received_account.as_deref().unwrap_or("支付用户零钱"),
        "amount": {
            "total": order.total,
            "refund": refund.amount,
            "payer_total": order.total,
            "payer_refund": refund.amount,
        },
    });
    if let Some(t) = refund.success_time {
        resource["success_time"] = json!(timefmt::rfc3339_cst(t));
    }
    notify::encrypted(
        shared,
        event_type,
        summary,
        "refund",
        &resource,
        url,
        order.out_trade_no.clone(),
    )
    .map(Some)
}

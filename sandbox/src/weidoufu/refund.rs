//! `POST /pay/refund`: a refund of a paid weidoufu order. Seed 004 documents no refund; the
//! fields follow the one public weidoufu client that refunds (an admin page posting
//! `access_key`, `out_order_no` and `refund_fee` with a `sign`, and reading `code` `1` as
//! success), signed and encoded like `/pay/miniapp`.
//!
//! Sandbox choices: weidoufu numbers no refund, so the sandbox keys each one by a fresh
//! `WDFR…` number (returned as `data.refund_no`); `code` `1` means the refund was taken (there is
//! no refund query or refund callback to tell the shop more); over-refunds, unpaid orders and
//! injected refusals are `code` `0` with a message; a lost answer (the refund stands) is HTTP
//! 502 without a body.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::miniapp::new_number;
use crate::refunds::{self, RefundAsk, Refusal};
use crate::state::{Protocol, Shared, lock};

fn refused(out_order_no: &str, message: &str) -> Response {
    crate::v3::json_response(
        StatusCode::OK,
        &json!({ "code": 0, "message": message, "data": { "out_order_no": out_order_no } }),
    )
}

/// `POST /pay/refund`.
pub(super) async fn refund(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match super::authenticate(&shared, &headers, &body) {
        Ok(params) => params,
        Err((out_order_no, message)) => return refused(&out_order_no, &message),
    };
    let out_order_no = params.get("out_order_no").cloned().unwrap_or_default();
    let Some(refund_fee) = params
        .get("refund_fee")
        .filter(|f| !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|f| f.parse::<i64>().ok())
        .filter(|f| *f > 0)
    else {
        return refused(&out_order_no, "refund_fee须为正整数（分）");
    };
    let order_key = {
        let orders = lock(&shared.orders);
        orders
            .by_weidoufu_out_order_no
            .get(&out_order_no)
            .filter(|key| {
                orders
                    .by_out_trade_no
                    .get(*key)
                    .is_some_and(|o| matches!(o.protocol, Protocol::Weidoufu(_)))
            })
            .cloned()
    };
    let Some(order_key) = order_key else {
        return refused(&out_order_no, "订单不存在");
    };
    let Ok(refund_no) = new_number(16).map(|n| format!("WDFR{n}")) else {
        return refused(&out_order_no, "系统错误");
    };
    let ask = RefundAsk {
        order_key,
        out_refund_no: refund_no,
        amount: refund_fee,
        total: None,
        reason: None,
        notify_url: None,
    };
    match refunds::accept(&shared, ask, |_, _, _| Ok(None)) {
        Ok(accepted) if accepted.lose_answer => StatusCode::BAD_GATEWAY.into_response(),
        Ok(accepted) => crate::v3::json_response(
            StatusCode::OK,
            &json!({
                "code": 1,
                "message": "成功",
                "data": {
                    "out_order_no": out_order_no,
                    "refund_no": accepted.refund.out_refund_no,
                    "refund_fee": accepted.refund.amount,
                },
            }),
        ),
        Err(Refusal::OrderNotFound) => refused(&out_order_no, "订单不存在"),
        Err(Refusal::NotPaid) => refused(&out_order_no, "订单未支付"),
        Err(Refusal::InvalidAmount(why)) => refused(&out_order_no, why),
        Err(Refusal::ExceedsRefundable { refundable }) => refused(
            &out_order_no,
            &format!("退款金额超过可退金额（剩余可退 {refundable} 分）"),
        ),
        Err(Refusal::NumberReused) => refused(&out_order_no, "退款单号重复"),
        Err(Refusal::Injected) => refused(&out_order_no, "退款失败"),
    }
}

//! `POST /trade/v1/query` (QFPay "Transaction Enquiry"): the payments and refunds named by
//! `syssn` and/or `out_trade_no` (each may be a comma-separated list).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

use super::refund::refund_fields;
use super::{
    PAY_TYPE_WECHAT_JSAPI, RESPCD_NOT_PAID, RESPCD_ORDER_CLOSED, RESPCD_PARAMETER_ERROR,
    RESPCD_SUCCESS, RESPCD_WECHAT_ERROR, authenticate, cst, refuse, reply,
};
use crate::refunds::RefundState;
use crate::state::{Order, Orders, Protocol, Shared, TradeState, lock};

/// The `respcd` a query reports for an order in `state`.
pub(super) fn order_respcd(state: TradeState) -> &'static str {
    match state {
        TradeState::Success => RESPCD_SUCCESS,
        TradeState::NotPay => RESPCD_NOT_PAID,
        TradeState::Closed => RESPCD_ORDER_CLOSED,
        TradeState::PayError => RESPCD_WECHAT_ERROR,
    }
}

/// `cancel` of a paid order with `refunded` of its `total` refunded: `5` partly, `3` fully.
fn refund_cancel(refunded: i64, total: i64) -> &'static str {
    match refunded {
        0 => "0",
        r if r >= total => "3",
        _ => "5",
    }
}

/// One payment entry of `data`; `refunded` is what its refunds (not closed) hold.
fn entry(order: &Order, refunded: i64) -> Option<Value> {
    let Protocol::Qfpay(trade) = &order.protocol else {
        return None;
    };
    let respcd = order_respcd(order.state);
    let mut v = json!({
        "syssn": trade.syssn,
        "out_trade_no": trade.out_trade_no,
        "txamt": order.total.to_string(),
        "txcurrcd": trade.txcurrcd,
        "pay_type": PAY_TYPE_WECHAT_JSAPI,
        "respcd": respcd,
        "errmsg": if order.state == TradeState::Success { "" } else { order.state.desc() },
        "cancel": match order.state {
            TradeState::Closed => "1",
            TradeState::Success => refund_cancel(refunded, order.total),
            _ => "0",
        },
        "order_type": "payment",
        "txdtm": trade.txdtm,
        "sysdtm": cst(trade.sysdtm),
    });
    if let (Some(obj), Some(paid)) = (v.as_object_mut(), order.success_time) {
        obj.insert("paydtm".into(), cst(paid).into());
        obj.insert(
            "chnlsn".into(),
            order.transaction_id.clone().unwrap_or_default().into(),
        );
    }
    if let (Some(obj), Some(mchid)) = (v.as_object_mut(), &trade.mchid) {
        obj.insert("mchid".into(), mchid.clone().into());
    }
    Some(v)
}

/// The internal order numbers named by `syssn` and `out_trade_no` lists, without repeats.
pub(super) fn find(
    orders: &Orders,
    syssn: Option<&str>,
    out_trade_no: Option<&str>,
) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let lists = [
        (syssn, &orders.by_qfpay_syssn),
        (out_trade_no, &orders.by_qfpay_out_trade_no),
    ];
    for (list, index) in lists {
        for key in list.unwrap_or_default().split(',').map(str::trim) {
            if let Some(no) = index.get(key)
                && !found.contains(no)
            {
                found.push(no.clone());
            }
        }
    }
    found
}

/// `POST /trade/v1/query`.
pub(super) async fn query(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let params = match authenticate(&shared, &headers, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let (syssn, out_trade_no) = (params.get("syssn"), params.get("out_trade_no"));
    if syssn.is_none() && out_trade_no.is_none() {
        // Sandbox choice: time-range listings are not emulated.
        return refuse(RESPCD_PARAMETER_ERROR, "syssn or out_trade_no is required");
    }
    let orders = lock(&shared.orders);
    let refunded = |key: &str| -> i64 {
        orders
            .refunds
            .values()
            .filter(|r| r.order_key == key && r.state != RefundState::Closed)
            .map(|r| r.amount)
            .sum()
    };
    let mut data: Vec<Value> = find(&orders, syssn, out_trade_no)
        .iter()
        .filter_map(|no| orders.by_out_trade_no.get(no))
        .filter_map(|order| entry(order, refunded(&order.out_trade_no)))
        .collect();
    let named = |list: Option<&str>, value: &str| {
        list.unwrap_or_default()
            .split(',')
            .any(|key| key.trim() == value)
    };
    let mut matching: Vec<&crate::refunds::Refund> = orders
        .refunds
        .values()
        .filter(|r| named(syssn, &r.refund_id) || named(out_trade_no, &r.out_refund_no))
        .collect();
    matching.sort_by_key(|r| r.created_at);
    for refund in matching {
        if let Some(order) = orders.by_out_trade_no.get(&refund.order_key)
            && matches!(order.protocol, Protocol::Qfpay(_))
        {
            let mut v = refund_fields(refund, order);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("order_type".into(), "refund".into());
                obj.insert("pay_type".into(), PAY_TYPE_WECHAT_JSAPI.into());
                obj.insert("cancel".into(), "0".into());
                obj.insert("errmsg".into(), "".into());
            }
            data.push(v);
        }
    }
    drop(orders);
    reply(&json!({
        "respcd": RESPCD_SUCCESS,
        "respmsg": "",
        "resperr": "",
        "page": 1,
        "page_size": 10,
        "data": data,
    }))
}

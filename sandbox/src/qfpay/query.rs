//! `POST /trade/v1/query` (QFPay "Transaction Enquiry"): the payments named by `syssn` and/or
//! `out_trade_no` (each may be a comma-separated list).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

use super::{
    PAY_TYPE_WECHAT_JSAPI, RESPCD_NOT_PAID, RESPCD_ORDER_CLOSED, RESPCD_PARAMETER_ERROR,
    RESPCD_SUCCESS, RESPCD_WECHAT_ERROR, authenticate, cst, refuse, reply,
};
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

/// One entry of `data`.
fn entry(order: &Order) -> Option<Value> {
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
        "cancel": if order.state == TradeState::Closed { "1" } else { "0" },
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
    let data: Vec<Value> = find(&orders, syssn, out_trade_no)
        .iter()
        .filter_map(|no| orders.by_out_trade_no.get(no))
        .filter_map(entry)
        .collect();
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

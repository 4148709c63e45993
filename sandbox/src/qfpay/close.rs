//! `POST /trade/v1/close` and `POST /trade/v1/reversal`: close an unpaid payment so it can no
//! longer be paid. QFPay documents the reversal ("Reversal API Guide": `syssn` or
//! `out_trade_no`, `txamt`, `txdtm`; only for transactions not completed) and refers other
//! wallets to a close API it does not detail; the sandbox serves both paths the same way.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::json;
use time::OffsetDateTime;

use super::query::find;
use super::{
    RESPCD_NO_SUCH_TRANSACTION, RESPCD_ORDER_PAID, RESPCD_PARAMETER_ERROR, RESPCD_SUCCESS,
    authenticate, cst, parse_txamt, refuse, reply, valid_txdtm,
};
use crate::state::{Protocol, Shared, TradeState, lock};

/// `POST /trade/v1/close` | `/trade/v1/reversal`.
pub(super) async fn close(
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
        return refuse(RESPCD_PARAMETER_ERROR, "syssn or out_trade_no is required");
    }
    if syssn.is_some_and(|s| s.contains(',')) || out_trade_no.is_some_and(|s| s.contains(',')) {
        return refuse(RESPCD_PARAMETER_ERROR, "close one transaction at a time");
    }
    let txamt = match params.get("txamt").map(parse_txamt) {
        None => None,
        Some(Some(a)) => Some(a),
        Some(None) => {
            return refuse(
                RESPCD_PARAMETER_ERROR,
                "txamt must be a positive integer amount in cents",
            );
        }
    };
    let txdtm = params.get("txdtm");
    if txdtm.is_some_and(|t| !valid_txdtm(t)) {
        return refuse(RESPCD_PARAMETER_ERROR, "txdtm must be YYYY-MM-DD hh:mm:ss");
    }
    let mut orders = lock(&shared.orders);
    let found = find(&orders, syssn, out_trade_no);
    let [no] = found.as_slice() else {
        // None found, or syssn and out_trade_no name two different payments.
        return refuse(
            RESPCD_NO_SUCH_TRANSACTION,
            "the transaction does not exist or is not operational",
        );
    };
    let Some(order) = orders.by_out_trade_no.get_mut(no) else {
        return refuse(RESPCD_NO_SUCH_TRANSACTION, "the transaction does not exist");
    };
    let Protocol::Qfpay(trade) = &order.protocol else {
        return refuse(RESPCD_NO_SUCH_TRANSACTION, "the transaction does not exist");
    };
    if txamt.is_some_and(|a| a != order.total) {
        return refuse(RESPCD_PARAMETER_ERROR, "txamt is not the payment's amount");
    }
    if txdtm.is_some_and(|t| t != trade.txdtm) {
        return refuse(RESPCD_PARAMETER_ERROR, "txdtm is not the payment's txdtm");
    }
    match order.state {
        TradeState::Success => {
            return refuse(
                RESPCD_ORDER_PAID,
                "the order is paid: it can no longer be closed (refund it instead)",
            );
        }
        // Closing twice is a success (idempotent), as WeChat's close is.
        TradeState::Closed | TradeState::NotPay | TradeState::PayError => {}
    }
    order.state = TradeState::Closed;
    let answer = json!({
        "respcd": RESPCD_SUCCESS,
        "respmsg": "",
        "resperr": "",
        "orig_syssn": trade.syssn,
        "out_trade_no": trade.out_trade_no,
        "txamt": order.total.to_string(),
        "txcurrcd": trade.txcurrcd,
        "txdtm": trade.txdtm,
        "sysdtm": cst(OffsetDateTime::now_utc()),
    });
    drop(orders);
    reply(&answer)
}

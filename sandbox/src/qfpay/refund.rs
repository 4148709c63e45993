//! `POST /trade/v1/refund` (QFPay "Refund API", <https://sdk.qfapi.com/docs/common-api/refund>):
//! `syssn` of the paid transaction, the refund's own `out_trade_no`, `txamt` in minor units and
//! `txdtm`; answered with the refund's `syssn`, `orig_syssn`, `txamt`, `sysdtm` and `respcd`.
//!
//! Sandbox choices (QFPay's docs are silent):
//! - While the refund is processing the answer is `1145` ("please wait while processing", which
//!   the refund API documents as "processing"), once it settled `0000`; the settlement follows
//!   the shared [`refund behaviour`](crate::RefundBehaviour). QFPay has no `ABNORMAL`: such a
//!   refund reads as processing until it is settled.
//! - The same `out_trade_no` with the same payment and amount is the same refund (its current
//!   answer); with another payment or amount it is refused with `2011`.
//! - A lost answer (the refund stands) is HTTP 502 without a body.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{
    RESPCD_NO_SUCH_TRANSACTION, RESPCD_ORDER_NUMBER_REUSED, RESPCD_PARAMETER_ERROR, RESPCD_SUCCESS,
    authenticate, cst, parse_txamt, refuse, reply, valid_txdtm,
};
use crate::refunds::{self, Refund, RefundAsk, RefundState, Refusal};
use crate::state::{Order, Protocol, Shared, lock};

/// "Please wait while processing": a refund accepted and not settled yet.
pub const RESPCD_PROCESSING: &str = "1145";
/// "Refund request denied": the refusal the test injected.
pub const RESPCD_REFUND_DENIED: &str = "1155";
/// "The order has not been paid".
pub const RESPCD_ORDER_NOT_PAID: &str = "1261";
/// "Refund amount exceeds the refundable amount".
pub const RESPCD_EXCEEDS_REFUNDABLE: &str = "1272";

/// The `respcd` of a refund in `state`: settled successfully, refused, or still processing.
pub(super) fn refund_respcd(state: RefundState) -> &'static str {
    match state {
        RefundState::Success => RESPCD_SUCCESS,
        RefundState::Closed => RESPCD_REFUND_DENIED,
        RefundState::Processing | RefundState::Abnormal => RESPCD_PROCESSING,
    }
}

/// The refund's fields, as the refund answer and the enquiry write them.
pub(super) fn refund_fields(refund: &Refund, order: &Order) -> Value {
    let Protocol::Qfpay(trade) = &order.protocol else {
        return Value::Null;
    };
    let respcd = refund_respcd(refund.state);
    let mut v = json!({
        "syssn": refund.refund_id,
        "orig_syssn": trade.syssn,
        "out_trade_no": refund.out_refund_no,
        "txamt": refund.amount.to_string(),
        "txcurrcd": trade.txcurrcd,
        "sysdtm": cst(refund.created_at),
        "respcd": respcd,
        "cash_refund_fee": refund.amount.to_string(),
        "cash_refund_fee_type": trade.txcurrcd,
    });
    if let (Some(obj), Some(done)) = (v.as_object_mut(), refund.success_time) {
        obj.insert("paydtm".into(), cst(done).into());
    }
    if let (Some(obj), Some(mchid)) = (v.as_object_mut(), &trade.mchid) {
        obj.insert("mchid".into(), mchid.clone().into());
    }
    v
}

/// `POST /trade/v1/refund`.
pub(super) async fn refund(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let params = match authenticate(&shared, &headers, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let (Some(syssn), Some(out_refund_no), Some(txamt), Some(txdtm)) = (
        params.get("syssn"),
        params.get("out_trade_no"),
        params.get("txamt"),
        params.get("txdtm"),
    ) else {
        return refuse(
            RESPCD_PARAMETER_ERROR,
            "syssn, out_trade_no, txamt and txdtm are required",
        );
    };
    if out_refund_no.len() > 128 {
        return refuse(RESPCD_PARAMETER_ERROR, "out_trade_no is longer than 128");
    }
    let Some(amount) = parse_txamt(txamt) else {
        return refuse(
            RESPCD_PARAMETER_ERROR,
            "txamt must be a positive whole number",
        );
    };
    if !valid_txdtm(txdtm) {
        return refuse(RESPCD_PARAMETER_ERROR, "txdtm must be YYYY-MM-DD hh:mm:ss");
    }
    let (order_key, notify_url) = {
        let orders = lock(&shared.orders);
        let found = orders.by_qfpay_syssn.get(syssn).and_then(|key| {
            let order = orders.by_out_trade_no.get(key)?;
            match &order.protocol {
                Protocol::Qfpay(trade) => Some((key.clone(), trade.notify_url.clone())),
                _ => None,
            }
        });
        if orders.by_qfpay_out_trade_no.contains_key(out_refund_no) {
            return refuse(
                RESPCD_ORDER_NUMBER_REUSED,
                "out_trade_no is already the number of a payment",
            );
        }
        match found {
            Some(found) => found,
            None => {
                return refuse(
                    RESPCD_NO_SUCH_TRANSACTION,
                    "the transaction does not exist or is not operational",
                );
            }
        }
    };
    let ask = RefundAsk {
        order_key,
        out_refund_no: out_refund_no.to_owned(),
        amount,
        total: None,
        reason: None,
        notify_url,
    };
    match refunds::accept(&shared, ask, super::notify::refund_success) {
        Ok(accepted) if accepted.lose_answer => StatusCode::BAD_GATEWAY.into_response(),
        Ok(accepted) => {
            let mut answer = refund_fields(&accepted.refund, &accepted.order);
            if let Some(obj) = answer.as_object_mut() {
                let message = if accepted.refund.state == RefundState::Success {
                    ""
                } else {
                    "refund processing"
                };
                obj.insert("resperr".into(), message.into());
                obj.insert("respmsg".into(), message.into());
            }
            reply(&answer)
        }
        Err(Refusal::OrderNotFound) => refuse(
            RESPCD_NO_SUCH_TRANSACTION,
            "the transaction does not exist or is not operational",
        ),
        Err(Refusal::NotPaid) => refuse(RESPCD_ORDER_NOT_PAID, "the order has not been paid"),
        Err(Refusal::InvalidAmount(why)) => refuse(RESPCD_PARAMETER_ERROR, why),
        Err(Refusal::ExceedsRefundable { refundable }) => refuse(
            RESPCD_EXCEEDS_REFUNDABLE,
            &format!("refund amount exceeds the refundable amount ({refundable} left)"),
        ),
        Err(Refusal::NumberReused) => refuse(
            RESPCD_ORDER_NUMBER_REUSED,
            "transaction serial number repeats",
        ),
        Err(Refusal::Injected) => refuse(RESPCD_REFUND_DENIED, "refund request denied"),
    }
}

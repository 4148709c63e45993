//! `GET {prefix}/orders/{out_trade_no}`: the order's status, asking the upstream about a
//! `PENDING` order when configured to, at most once per order per
//! [`status_query_interval`](super::EngineBuilder::status_query_interval), whoever asks.
//!
//! What it tells depends on who asks, so that a stranger learns nothing about someone else's
//! order:
//! - the operator (`Authorization: Bearer <admin token>`): everything, including the payer's
//!   openid, the description, the times and the refunded amounts;
//! - the payer (a valid openid token for the order's openid, presented as for a precreate):
//!   `out_trade_no`, `status`, `amount`, `transaction_id`, `paid_at`;
//! - anyone else, in body mode: only `{out_trade_no, status}` — what a page polling its own
//!   order needs. In token mode anyone else is answered 401 without a token, and 404, as for an
//!   unknown order, with another payer's.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;
use time::OffsetDateTime;

use crate::fields::OutTradeNo;
use crate::order::{Order, OrderStatus};
use crate::provider::PaymentState;

use super::{Inner, notify, openid, reply};

/// The orders whose upstream was asked recently, so that polling cannot turn into one
/// upstream query per request.
#[derive(Debug, Default)]
pub(crate) struct QueryThrottle {
    last: std::sync::Mutex<HashMap<OutTradeNo, OffsetDateTime>>,
}

impl QueryThrottle {
    /// Past this many remembered orders, the ones outside the interval are forgotten.
    const PRUNE_ABOVE: usize = 4096;

    /// Whether the upstream may be asked about `order` at `now`; records the query if so.
    pub(crate) fn admit(
        &self,
        order: &OutTradeNo,
        now: OffsetDateTime,
        interval: Duration,
    ) -> bool {
        let interval = time::Duration::try_from(interval).unwrap_or(time::Duration::MAX);
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.get(order).is_some_and(|at| now - *at < interval) {
            return false;
        }
        if last.len() >= Self::PRUNE_ABOVE {
            last.retain(|_, at| now - *at < interval);
        }
        last.insert(order.clone(), now);
        true
    }
}

/// How much of an order a status request may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Only `out_trade_no` and `status`.
    Public,
    /// The payer's view.
    Payer,
    /// Everything.
    Operator,
}

/// The status reply; each field beyond `out_trade_no` and `status` is present only in the
/// views that may see it.
#[derive(Debug, Serialize)]
struct StatusReply<'a> {
    out_trade_no: &'a str,
    status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_at: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    operator: Option<OperatorFields<'a>>,
}

/// What only the operator sees.
#[derive(Debug, Serialize)]
struct OperatorFields<'a> {
    openid: &'a str,
    description: &'a str,
    provider: &'a str,
    currency: &'a str,
    refunded_fen: u64,
    refund_held_fen: u64,
    refund_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

fn rfc3339(at: OffsetDateTime) -> Option<String> {
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Who asks, before the order is read. The payer's openid is checked against the order
/// afterwards.
enum Caller {
    Operator,
    Payer(crate::fields::OpenId),
    Anyone,
    /// Token mode without a valid token: answered 401 before the order is read.
    NeedsToken(Option<crate::openid::TokenError>),
}

fn caller(inner: &Inner, headers: &HeaderMap) -> Caller {
    if inner
        .admin_token
        .as_ref()
        .is_some_and(|token| token.authorizes(headers))
    {
        return Caller::Operator;
    }
    let Some(settings) = &inner.openid else {
        return Caller::Anyone;
    };
    match openid::status_viewer(inner, settings, headers) {
        openid::StatusViewer::Payer(openid) => Caller::Payer(openid),
        openid::StatusViewer::Anyone => Caller::Anyone,
        openid::StatusViewer::Required(reason) => Caller::NeedsToken(reason),
    }
}

fn not_found(out_trade_no: &OutTradeNo) -> Response<Bytes> {
    reply::error(
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
        format!("no order {out_trade_no}"),
    )
}

pub(super) async fn handle(inner: &Inner, number: &str, headers: &HeaderMap) -> Response<Bytes> {
    let caller = caller(inner, headers);
    if let Caller::NeedsToken(reason) = caller {
        return openid::status_token_required(reason, &inner.settings.prefix);
    }
    // The number arrives as a path segment: `|` and `*`, which order numbers may contain, are
    // often percent-encoded by clients.
    let decoded = percent_encoding::percent_decode_str(number).decode_utf8_lossy();
    let out_trade_no = match OutTradeNo::try_from(decoded.as_ref()) {
        Ok(no) => no,
        Err(error) => return reply::field_error(&error),
    };
    let mut order = match inner.store.get(&out_trade_no).await {
        Ok(Some(order)) => order,
        Ok(None) => return not_found(&out_trade_no),
        Err(error) => {
            tracing::error!(%error, "reading the order failed");
            return reply::store_unavailable();
        }
    };
    let view = match &caller {
        Caller::Operator => View::Operator,
        Caller::Payer(openid) if *openid == order.openid => View::Payer,
        // Another payer's order is answered like an unknown one, in either mode: the token
        // proves who asks, and this order is not theirs.
        Caller::Payer(_) => return not_found(&out_trade_no),
        Caller::Anyone | Caller::NeedsToken(_) => View::Public,
    };
    if order.status == OrderStatus::Pending
        && inner.settings.query_upstream_on_status
        && inner.status_queries.admit(
            &order.out_trade_no,
            inner.clock.now(),
            inner.settings.status_query_interval,
        )
        && let Some(updated) = refresh_from_upstream(inner, &order).await
    {
        order = updated;
    }
    let mut response = reply::json(StatusCode::OK, &status_reply(&order, view));
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// The operator's view of `order`, as the status route gives it to the admin token.
pub(super) fn operator_json(order: &Order) -> serde_json::Value {
    serde_json::to_value(status_reply(order, View::Operator)).unwrap_or(serde_json::Value::Null)
}

fn status_reply(order: &Order, view: View) -> StatusReply<'_> {
    let private = view != View::Public;
    StatusReply {
        out_trade_no: order.out_trade_no.as_str(),
        status: order.status,
        amount: private.then(|| order.amount.fen()),
        transaction_id: order.transaction_id.as_deref().filter(|_| private),
        paid_at: order.paid_at.filter(|_| private).and_then(rfc3339),
        operator: (view == View::Operator).then(|| OperatorFields {
            openid: order.openid.as_str(),
            description: order.description.as_str(),
            provider: order.provider.as_str(),
            currency: order.currency.as_str(),
            refunded_fen: order.refunded_fen,
            refund_held_fen: order.refund_held_fen,
            refund_count: order.refund_count,
            failure_reason: order.failure_reason.as_deref(),
            created_at: rfc3339(order.created_at).unwrap_or_default(),
            updated_at: rfc3339(order.updated_at).unwrap_or_default(),
        }),
    }
}

/// Asks the upstream; a payment it reports is applied exactly as a notification would be.
async fn refresh_from_upstream(inner: &Inner, order: &Order) -> Option<Order> {
    let report = match inner
        .metrics
        .upstream("query", inner.provider.query(order))
        .await
    {
        Ok(report) => report,
        Err(error) => {
            tracing::debug!(%error, "status query failed; answering from the store");
            return None;
        }
    };
    if report.state != PaymentState::Paid {
        return None;
    }
    let response = notify::apply_report(inner, order, &report, None).await;
    if !response.status().is_success() {
        return None;
    }
    inner.store.get(&order.out_trade_no).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_upstream_query_per_order_per_interval() {
        let throttle = QueryThrottle::default();
        let a = OutTradeNo::try_from("THROTTLE0001").unwrap_or_else(|_| unreachable!());
        let b = OutTradeNo::try_from("THROTTLE0002").unwrap_or_else(|_| unreachable!());
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let every = Duration::from_secs(2);
        assert!(throttle.admit(&a, t0, every));
        assert!(!throttle.admit(&a, t0 + time::Duration::seconds(1), every));
        assert!(
            throttle.admit(&b, t0 + time::Duration::seconds(1), every),
            "per order"
        );
        assert!(throttle.admit(&a, t0 + time::Duration::seconds(2), every));
        assert!(throttle.admit(&a, t0 + time::Duration::seconds(2), Duration::ZERO));
    }
}

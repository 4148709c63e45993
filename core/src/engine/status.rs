//! `GET {prefix}/orders/{out_trade_no}`: the order's status, asking the upstream about a
//! `PENDING` order when configured to, at most once per order per
//! [`status_query_interval`](super::EngineBuilder::status_query_interval).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Serialize;
use time::OffsetDateTime;

use crate::fields::OutTradeNo;
use crate::order::{Order, OrderStatus};
use crate::provider::PaymentState;

use super::{Inner, notify, reply};

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

/// The status reply.
#[derive(Debug, Serialize)]
struct StatusReply<'a> {
    out_trade_no: &'a str,
    status: OrderStatus,
    amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_at: Option<String>,
}

pub(super) async fn handle(inner: &Inner, number: &str) -> Response<Bytes> {
    // The number arrives as a path segment: `|` and `*`, which order numbers may contain, are
    // often percent-encoded by clients.
    let decoded = percent_encoding::percent_decode_str(number).decode_utf8_lossy();
    let out_trade_no = match OutTradeNo::try_from(decoded.as_ref()) {
        Ok(no) => no,
        Err(error) => return reply::field_error(&error),
    };
    let mut order = match inner.store.get(&out_trade_no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            return reply::error(
                StatusCode::NOT_FOUND,
                "ORDER_NOT_FOUND",
                format!("no order {out_trade_no}"),
            );
        }
        Err(error) => {
            tracing::error!(%error, "reading the order failed");
            return reply::store_unavailable();
        }
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
    reply::json(StatusCode::OK, &status_reply(&order))
}

fn status_reply(order: &Order) -> StatusReply<'_> {
    StatusReply {
        out_trade_no: order.out_trade_no.as_str(),
        status: order.status,
        amount: order.amount.fen(),
        transaction_id: order.transaction_id.as_deref(),
        paid_at: order.paid_at.and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }),
    }
}

/// Asks the upstream; a payment it reports is applied exactly as a notification would be.
async fn refresh_from_upstream(inner: &Inner, order: &Order) -> Option<Order> {
    let report = match inner.provider.query(order).await {
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

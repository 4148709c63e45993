//! Reconciliation: `PENDING` orders that no notification settled are queried upstream; paid ones
//! are applied, expired ones closed upstream and locally.

use crate::order::{OrderStatus, Transition};
use crate::provider::PaymentState;

use super::{Inner, notify};

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Orders queried.
    pub checked: usize,
    /// Orders found paid and marked `PAID`.
    pub paid: usize,
    /// Orders closed (expired unpaid, or closed upstream).
    pub closed: usize,
    /// Orders that could not be settled this time (query or store failure).
    pub failed: usize,
    /// What the pass did with `PROCESSING` refunds.
    pub refunds: super::RefundReconcileReport,
}

const BATCH: u32 = 100;

pub(super) async fn run(inner: &Inner) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    let cutoff = inner.clock.now()
        - time::Duration::try_from(inner.settings.reconcile_after)
            .unwrap_or(time::Duration::minutes(5));
    let orders = match inner
        .store
        .list_stale(OrderStatus::Pending, cutoff, BATCH)
        .await
    {
        Ok(orders) => orders,
        Err(error) => {
            tracing::warn!(%error, "listing pending orders failed");
            report.failed += 1;
            return report;
        }
    };
    for order in orders {
        report.checked += 1;
        let upstream = match inner.provider.query(&order).await {
            Ok(upstream) => upstream,
            Err(error) => {
                if error.upstream_code.as_deref() == Some("UNSUPPORTED") {
                    // An upstream with no query API (the gateway, weidoufu): the order settles
                    // through the callback; nothing to warn about on every pass.
                    tracing::debug!(%error, out_trade_no = %order.out_trade_no, "no upstream query");
                } else {
                    tracing::warn!(%error, out_trade_no = %order.out_trade_no, "reconcile query failed");
                }
                report.failed += 1;
                continue;
            }
        };
        match upstream.state {
            PaymentState::Paid => {
                let response = notify::apply_report(inner, &order, &upstream, None).await;
                // A success reply also covers a report that was recorded as a mismatch and left
                // the order unpaid: count what the store now says.
                let paid = response.status().is_success()
                    && matches!(
                        inner.store.get(&order.out_trade_no).await,
                        Ok(Some(current))
                            if matches!(current.status, OrderStatus::Paid | OrderStatus::Refunded)
                    );
                if paid {
                    report.paid += 1;
                } else {
                    report.failed += 1;
                }
            }
            PaymentState::Closed => close_locally(inner, &order, &mut report).await,
            PaymentState::NotPaid
                if order
                    .prepay_expires_at
                    .is_some_and(|expiry| expiry <= inner.clock.now()) =>
            {
                match inner.provider.close(&order).await {
                    Ok(()) => close_locally(inner, &order, &mut report).await,
                    Err(error) => {
                        tracing::warn!(%error, out_trade_no = %order.out_trade_no, "closing an expired order failed");
                        report.failed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    report
}

async fn close_locally(inner: &Inner, order: &crate::order::Order, report: &mut ReconcileReport) {
    match inner
        .store
        .transition(
            &order.out_trade_no,
            OrderStatus::Pending,
            Transition::Closed,
        )
        .await
    {
        Ok(_) => report.closed += 1,
        Err(error) => {
            tracing::warn!(%error, out_trade_no = %order.out_trade_no, "closing an order locally failed");
            report.failed += 1;
        }
    }
}

//! Reconciliation: `PENDING` orders that no notification settled, and `CREATED` orders whose
//! prepay failed or timed out, are queried upstream and brought to a final state, however many
//! of them wait.
//!
//! Each pass walks the stale `CREATED`, then the stale `PENDING` orders, oldest first with a
//! cursor each
//! ([`OrderStore::list_stale_after`](crate::store::OrderStore::list_stale_after)) and resumes
//! where the previous pass stopped, wrapping around at the end, so no set of orders can keep
//! another from being looked at. A pass asks the upstream at most
//! [`reconcile_budget`](super::EngineBuilder::reconcile_budget) times. An order the upstream
//! says is still open is asked again only after a back-off that grows with each answer
//! ([`reconcile_backoff`](super::EngineBuilder::reconcile_backoff), default 1 min, 5 min,
//! 30 min, then hourly); a failed query is retried on the next pass.
//!
//! Every upstream state has a destination: `SUCCESS` → PAID (exactly as a notification);
//! `REFUND` → PAID, with a mismatch recorded (paid, then refunded outside this engine);
//! `PAYERROR` → FAILED; `CLOSED` / `REVOKED` → CLOSED; `NOTPAY` / `USERPAYING` keep waiting
//! until the prepay expires, then the order is closed upstream and locally. An upstream with no
//! query ([`Provider::can_query`](crate::provider::Provider::can_query): the seed-001 gateway,
//! weidoufu) is never asked; its orders close locally once their prepay expired (a payment
//! notified later still marks them paid: `CLOSED → PAID` is a valid transition).
//!
//! A stale `CREATED` order never reached a payer (its precreate answered an error; a retry
//! would have made it `PENDING`), so it does not wait for an expiry: unknown upstream
//! (`ORDER_NOT_EXIST`: the prepay created nothing) → CLOSED; `NOTPAY` (the prepay took effect
//! but its answer was lost) → closed upstream and locally; paid after all → PAID, as a
//! notification of a `CREATED` order is.
//!
//! The back-off is kept in memory: a restart asks every waiting order once more, which is
//! harmless.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use crate::fields::OutTradeNo;
use crate::order::{Order, OrderStatus, Transition};
use crate::provider::PaymentState;
use crate::store::OrderCursor;

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
    /// Orders whose payment failed upstream, marked `FAILED`.
    pub payment_failed: usize,
    /// Orders that could not be settled this time (query or store failure).
    pub failed: usize,
    /// Orders skipped because the upstream was asked about them recently (back-off).
    pub deferred: usize,
    /// Whether the pass stopped at its budget with orders left to look at.
    pub budget_exhausted: bool,
    /// What the pass did with `PROCESSING` refunds.
    pub refunds: super::RefundReconcileReport,
    /// What the pass pruned (at most once per [`PRUNE_EVERY`]; zero otherwise).
    pub pruned: crate::store::PruneReport,
    /// Whether another instance on the same store holds the reconciler's lease
    /// ([`EngineBuilder::reconcile_lease`](super::EngineBuilder::reconcile_lease)), so this
    /// pass did nothing (or stopped when the lease was taken over).
    pub lease_held_elsewhere: bool,
}

/// How long bookkeeping rows are kept ([`EngineBuilder::retention`](super::EngineBuilder::retention)).
/// Orders and refunds are kept for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Inbox entries (the dedupe of notifications; WeChat Pay repeats one for 24 h). Default
    /// 30 days.
    pub inbox: Duration,
    /// Events delivered to the app's hook. Default 30 days.
    pub delivered_events: Duration,
    /// Mismatches between an upstream's report and the stored order. Default 90 days.
    pub mismatches: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            inbox: Duration::from_secs(30 * DAY),
            delivered_events: Duration::from_secs(30 * DAY),
            mismatches: Duration::from_secs(90 * DAY),
        }
    }
}

/// Reconciliation prunes at most this often.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Prunes what is older than the retention, unless this engine did within [`PRUNE_EVERY`].
pub(super) async fn prune(inner: &Inner) -> crate::store::PruneReport {
    let now = inner.clock.now();
    {
        let mut last = inner
            .last_prune
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let every = time::Duration::try_from(PRUNE_EVERY).unwrap_or(time::Duration::HOUR);
        if last.is_some_and(|at| now - at < every) {
            return crate::store::PruneReport::default();
        }
        *last = Some(now);
    }
    let retention = inner.settings.retention;
    let ago = |kept: Duration| now - time::Duration::try_from(kept).unwrap_or(time::Duration::MAX);
    let before = crate::store::PruneBefore {
        inbox: ago(retention.inbox),
        delivered_events: ago(retention.delivered_events),
        mismatches: ago(retention.mismatches),
    };
    match inner.store.prune(&before).await {
        Ok(report) => {
            if report != crate::store::PruneReport::default() {
                tracing::info!(
                    inbox = report.inbox,
                    delivered_events = report.delivered_events,
                    mismatches = report.mismatches,
                    "pruned bookkeeping rows past their retention"
                );
            }
            report
        }
        Err(error) => {
            tracing::warn!(%error, "pruning failed; retried at the next interval");
            crate::store::PruneReport::default()
        }
    }
}

/// The default per-pass budget of upstream queries.
pub const DEFAULT_RECONCILE_BUDGET: u32 = 200;

/// The default back-off between queries of an order the upstream says is still open; the last
/// step repeats.
pub const DEFAULT_RECONCILE_BACKOFF: [Duration; 4] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
];

/// Orders read per page of the walk.
const PAGE: u32 = 100;

/// Past this many remembered orders, the back-off is forgotten (each order is asked once more).
const MAX_REMEMBERED: usize = 100_000;

/// When an order may be asked again, and how often it has been.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    answers: u32,
    next_at: OffsetDateTime,
}

/// The statuses the reconciler walks, in this order: `CREATED` orders are the rare ones whose
/// prepay failed or timed out (and may exist upstream), so they go first and cannot be starved
/// by a long queue of `PENDING` ones.
const WALKED: [OrderStatus; 2] = [OrderStatus::Created, OrderStatus::Pending];

/// The walks' positions (one per walked status) and the back-off of the orders they asked
/// about.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    cursors: Mutex<HashMap<OrderStatus, OrderCursor>>,
    backoff: Mutex<HashMap<OutTradeNo, Backoff>>,
}

impl Walk {
    fn backoff(&self) -> std::sync::MutexGuard<'_, HashMap<OutTradeNo, Backoff>> {
        self.backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cursor(&self, status: OrderStatus) -> Option<OrderCursor> {
        self.cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&status)
            .cloned()
    }

    fn set_cursor(&self, status: OrderStatus, cursor: Option<OrderCursor>) {
        let mut cursors = self
            .cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match cursor {
            Some(cursor) => cursors.insert(status, cursor),
            None => cursors.remove(&status),
        };
    }

    fn is_due(&self, order: &OutTradeNo, now: OffsetDateTime) -> bool {
        self.backoff()
            .get(order)
            .is_none_or(|backoff| backoff.next_at <= now)
    }

    /// Records that the upstream said `order` is still open at `now`.
    fn wait(&self, order: &OutTradeNo, now: OffsetDateTime, steps: &[Duration]) {
        let mut backoff = self.backoff();
        if backoff.len() >= MAX_REMEMBERED {
            backoff.clear();
        }
        let answers = backoff.get(order).map_or(0, |b| b.answers);
        let index = usize::try_from(answers).unwrap_or(usize::MAX);
        let step = steps
            .get(index)
            .or_else(|| steps.last())
            .copied()
            .unwrap_or(Duration::ZERO);
        backoff.insert(
            order.clone(),
            Backoff {
                answers: answers.saturating_add(1),
                next_at: now + time::Duration::try_from(step).unwrap_or(time::Duration::MAX),
            },
        );
    }

    fn forget(&self, order: &OutTradeNo) {
        self.backoff().remove(order);
    }
}

/// What became of one order.
enum Outcome {
    Paid,
    Closed,
    PaymentFailed,
    /// Still open upstream: back off.
    Waiting,
    /// The query or the store failed: retry next pass.
    Failed,
}

/// One pass of the reconciler, on the instance that holds its lease: pending orders, then
/// processing refunds, then pruning. Another instance's pass does nothing, so two never ask
/// the upstream about the same order at once.
pub(super) async fn pass(inner: &Inner) -> ReconcileReport {
    let ttl = super::lease::reconcile_ttl(inner);
    match super::lease::hold(inner, &inner.settings.reconcile_lease, ttl).await {
        Ok(true) => {}
        Ok(false) => {
            return ReconcileReport {
                lease_held_elsewhere: true,
                ..ReconcileReport::default()
            };
        }
        Err(()) => {
            return ReconcileReport {
                failed: 1,
                ..ReconcileReport::default()
            };
        }
    }
    let mut report = run(inner, ttl).await;
    if report.lease_held_elsewhere {
        return report;
    }
    report.refunds = super::refund::reconcile(inner).await;
    report.pruned = prune(inner).await;
    report
}

/// The walks over stale `CREATED` and `PENDING` orders, sharing one budget of queries.
async fn run(inner: &Inner, ttl: std::time::Duration) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    let mut walked = WalkState {
        budget: inner.settings.reconcile_budget,
        // The pass took the lease just before the first page; renew it before each later one.
        renew: false,
        listing_failed: false,
    };
    for status in WALKED {
        walk_stale(inner, status, ttl, &mut walked, &mut report).await;
        // A store that cannot list one status will not list the next: one failure to report.
        if report.lease_held_elsewhere || report.budget_exhausted || walked.listing_failed {
            break;
        }
    }
    report
}

/// What the walks of one pass share.
struct WalkState {
    /// Upstream queries left.
    budget: u32,
    /// Whether the lease must be renewed before the next page.
    renew: bool,
    /// Whether the store failed to list stale orders.
    listing_failed: bool,
}

/// The walk over the stale orders in `status`, from where the last pass stopped; it renews the
/// lease (`ttl`) before each page after the pass's first and stops if another instance took it
/// meanwhile.
async fn walk_stale(
    inner: &Inner,
    status: OrderStatus,
    ttl: std::time::Duration,
    walked: &mut WalkState,
    report: &mut ReconcileReport,
) {
    let now = inner.clock.now();
    let cutoff = now
        - time::Duration::try_from(inner.settings.reconcile_after)
            .unwrap_or(time::Duration::minutes(5));
    let walk = &inner.reconcile_walk;
    let start = walk.cursor(status);
    let mut cursor = start.clone();
    let mut wrapped = cursor.is_none();
    'walk: loop {
        if walked.renew
            && !matches!(
                super::lease::hold(inner, &inner.settings.reconcile_lease, ttl).await,
                Ok(true)
            )
        {
            report.lease_held_elsewhere = true;
            break;
        }
        walked.renew = true;
        let page = match inner
            .store
            .list_stale_after(status, cutoff, cursor.as_ref(), PAGE)
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, %status, "listing stale orders failed");
                report.failed += 1;
                walked.listing_failed = true;
                break;
            }
        };
        if page.is_empty() {
            // The end: start again from the oldest once, for the orders before the cursor.
            cursor = None;
            if wrapped {
                break;
            }
            wrapped = true;
            continue;
        }
        for order in page {
            if wrapped && start.as_ref().is_some_and(|start| past(&order, start)) {
                // Back where this pass began: every stale order was looked at once.
                cursor = start.clone();
                break 'walk;
            }
            if !walk.is_due(&order.out_trade_no, now) {
                report.deferred += 1;
                cursor = Some(OrderCursor::of(&order));
                continue;
            }
            if inner.provider.can_query() && walked.budget == 0 {
                report.budget_exhausted = true;
                break 'walk;
            }
            cursor = Some(OrderCursor::of(&order));
            let outcome = if inner.provider.can_query() {
                walked.budget -= 1;
                report.checked += 1;
                settle(inner, &order, now).await
            } else {
                settle_without_query(inner, &order, now).await
            };
            match outcome {
                Outcome::Paid => report.paid += 1,
                Outcome::Closed => report.closed += 1,
                Outcome::PaymentFailed => report.payment_failed += 1,
                // A failed query or write is retried on the next pass, without back-off.
                Outcome::Failed => report.failed += 1,
                Outcome::Waiting => {
                    walk.wait(&order.out_trade_no, now, &inner.settings.reconcile_backoff);
                }
            }
            if matches!(
                outcome,
                Outcome::Paid | Outcome::Closed | Outcome::PaymentFailed
            ) {
                walk.forget(&order.out_trade_no);
            }
        }
    }
    walk.set_cursor(status, cursor);
}

/// Whether `order` comes after `cursor` in the walk.
fn past(order: &Order, cursor: &OrderCursor) -> bool {
    (order.updated_at, &order.out_trade_no) > (cursor.updated_at, &cursor.out_trade_no)
}

fn expired(order: &Order, now: OffsetDateTime) -> bool {
    order.prepay_expires_at.is_some_and(|expiry| expiry <= now)
}

/// Whether no payer can hold a prepay of `order`: it expired, or it never reached one (a stale
/// `CREATED` order is one whose precreate failed or timed out; its client got an error, and a
/// retry would have moved it to `PENDING`).
fn unpayable(order: &Order, now: OffsetDateTime) -> bool {
    order.status == OrderStatus::Created || expired(order, now)
}

/// An upstream without a query: only the clock can say the payer can no longer pay.
async fn settle_without_query(inner: &Inner, order: &Order, now: OffsetDateTime) -> Outcome {
    if unpayable(order, now) {
        close_locally(inner, order).await
    } else {
        Outcome::Waiting
    }
}

/// Asks the upstream about `order` and moves it where the answer says.
async fn settle(inner: &Inner, order: &Order, now: OffsetDateTime) -> Outcome {
    let upstream = match inner
        .metrics
        .upstream("query", inner.provider.query(order))
        .await
    {
        Ok(upstream) => upstream,
        // A prepay that failed before the upstream created anything: nothing to close there.
        Err(error) if error.is_not_found() && order.status == OrderStatus::Created => {
            return close_locally(inner, order).await;
        }
        Err(error) => {
            tracing::warn!(%error, out_trade_no = %order.out_trade_no, "reconcile query failed");
            return Outcome::Failed;
        }
    };
    match &upstream.state {
        PaymentState::Paid => mark_paid(inner, order, &upstream).await,
        PaymentState::Refunded => {
            // Paid, then refunded where this engine did not see it (e.g. the merchant
            // platform): record the payment, and tell the operator.
            let detail = "the upstream reports the order paid and refunded outside this engine";
            tracing::warn!(out_trade_no = %order.out_trade_no, detail, "reconcile");
            match inner
                .store
                .record_mismatch(&order.out_trade_no, detail)
                .await
            {
                Ok(()) => super::alerts::raise(
                    inner,
                    super::Alert::Mismatch {
                        out_trade_no: order.out_trade_no.as_str().to_owned(),
                        detail: detail.to_owned(),
                    },
                ),
                Err(error) => tracing::warn!(%error, "recording a mismatch failed"),
            }
            let mut paid = upstream.clone();
            paid.state = PaymentState::Paid;
            mark_paid(inner, order, &paid).await
        }
        PaymentState::Closed => close_locally(inner, order).await,
        PaymentState::Failed(reason) => {
            let transition = Transition::Failed {
                reason: format!("the upstream reports the payment failed: {reason}"),
            };
            match inner
                .store
                .transition(&order.out_trade_no, order.status, transition)
                .await
            {
                Ok(_) => Outcome::PaymentFailed,
                Err(error) => {
                    tracing::warn!(%error, out_trade_no = %order.out_trade_no, "marking a failed payment failed");
                    Outcome::Failed
                }
            }
        }
        // Closed upstream first, so a payment cannot start between the two writes.
        PaymentState::NotPaid if unpayable(order, now) => match inner
            .metrics
            .upstream("close", inner.provider.close(order))
            .await
        {
            Ok(()) => close_locally(inner, order).await,
            Err(error) => {
                tracing::warn!(%error, out_trade_no = %order.out_trade_no, "closing an expired order failed");
                Outcome::Failed
            }
        },
        PaymentState::NotPaid => Outcome::Waiting,
        PaymentState::Other(state) => {
            tracing::info!(out_trade_no = %order.out_trade_no, %state, "upstream state not acted on; the order keeps waiting");
            Outcome::Waiting
        }
    }
}

/// Applies a payment exactly as a notification would.
async fn mark_paid(
    inner: &Inner,
    order: &Order,
    upstream: &crate::provider::PaymentReport,
) -> Outcome {
    let response = notify::apply_report(inner, order, upstream, None).await;
    // A success reply also covers a report that was recorded as a mismatch and left the order
    // unpaid: count what the store now says.
    let paid = response.status().is_success()
        && matches!(
            inner.store.get(&order.out_trade_no).await,
            Ok(Some(current)) if matches!(current.status, OrderStatus::Paid | OrderStatus::Refunded)
        );
    if paid { Outcome::Paid } else { Outcome::Failed }
}

async fn close_locally(inner: &Inner, order: &Order) -> Outcome {
    match inner
        .store
        .transition(&order.out_trade_no, order.status, Transition::Closed)
        .await
    {
        Ok(_) => Outcome::Closed,
        Err(error) => {
            tracing::warn!(%error, out_trade_no = %order.out_trade_no, "closing an order locally failed");
            Outcome::Failed
        }
    }
}

//! Refunds: reserve in the store, then ask the upstream; settle from its answer, its
//! notification or the reconciler's query.
//!
//! The order of the steps is what keeps money safe. The refund is reserved (`PROCESSING`, its
//! amount held against the order by the store's conditional write) *before* the upstream is
//! asked, so a crash in between leaves a record the reconciler finishes, never a refund the
//! store does not know of. Only a definite refusal releases the amount (`CLOSED`); a timeout or
//! an upstream failure leaves it `PROCESSING`, because the upstream may have taken it.

use crate::fields::{Amount, FieldError, OutRefundNo, OutTradeNo, RefundReason};
use crate::order::Order;
use crate::provider::{ProviderError, ProviderErrorKind, RefundReport};
use crate::refund::{NewRefund, Refund, RefundStatus, RefundUpdate};
use crate::store::{RefundReservation, StoreError};

use super::Inner;

/// What [`Engine::refund`](super::Engine::refund) is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// How much to give back, in fen.
    pub amount: Amount,
    /// Why, shown to the payer.
    pub reason: Option<RefundReason>,
    /// The merchant's refund number; generated when `None`. Asking again with the same number
    /// is the same refund.
    pub out_refund_no: Option<OutRefundNo>,
}

impl RefundRequest {
    /// A refund of `amount` fen with a generated number and no reason.
    pub fn new(amount: Amount) -> Self {
        Self {
            amount,
            reason: None,
            out_refund_no: None,
        }
    }
}

/// What [`Engine::refund`](super::Engine::refund) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    /// The refund as stored after the call: `PROCESSING` (accepted, or the upstream's answer
    /// is not known yet), `SUCCESS`, or `CLOSED` when the upstream refused it.
    pub refund: Refund,
    /// Whether this call created it (false: a refund with this number existed already).
    pub created: bool,
}

/// Why a refund could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefundError {
    /// No such order.
    #[error("order {0} not found")]
    OrderNotFound(OutTradeNo),
    /// The order is not paid.
    #[error("order {out_trade_no} is {status}, not PAID")]
    OrderNotPaid {
        /// The order.
        out_trade_no: OutTradeNo,
        /// Its status.
        status: crate::order::OrderStatus,
    },
    /// The refunds would exceed the paid amount.
    #[error(
        "refund of {requested} fen exceeds the {refundable} fen still refundable of {paid} fen paid"
    )]
    ExceedsPaid {
        /// The order's amount.
        paid: u64,
        /// What can still be refunded.
        refundable: u64,
        /// What was asked.
        requested: u64,
    },
    /// The order has the most refunds it can have.
    #[error("the order already has {0} refunds")]
    TooManyRefunds(u32),
    /// The refund number belongs to a refund of another order.
    #[error("refund number {0} belongs to another order")]
    NumberTaken(OutRefundNo),
    /// The refund number is this order's refund of another amount: asking again with a number
    /// repeats that refund, it cannot change it.
    #[error("refund {} is of {} fen, not {requested} fen", .existing.out_refund_no, .existing.amount.fen())]
    NumberReused {
        /// The stored refund.
        existing: Box<Refund>,
        /// The amount asked for now.
        requested: u64,
    },
    /// A request field is invalid.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The upstream has no refund API (the seed-001 gateway).
    #[error("{0}")]
    NotSupported(String),
    /// The upstream refused the refund; it is stored `CLOSED` with the upstream's reason.
    #[error("the upstream refused the refund: {}", .error.message)]
    Refused {
        /// The closed refund.
        refund: Box<Refund>,
        /// The upstream's answer.
        error: ProviderError,
    },
    /// The store failed; nothing was reserved, or the reservation stands for the reconciler.
    #[error("store failed: {0}")]
    Store(#[source] StoreError),
}

impl From<StoreError> for RefundError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { out_trade_no } => RefundError::OrderNotFound(out_trade_no),
            StoreError::OrderNotPaid {
                out_trade_no,
                status,
            } => RefundError::OrderNotPaid {
                out_trade_no,
                status,
            },
            StoreError::RefundExceedsPaid {
                paid,
                held,
                requested,
                ..
            } => RefundError::ExceedsPaid {
                paid,
                refundable: paid.saturating_sub(held),
                requested,
            },
            StoreError::TooManyRefunds { limit, .. } => RefundError::TooManyRefunds(limit),
            StoreError::RefundNumberTaken { out_refund_no, .. } => {
                RefundError::NumberTaken(out_refund_no)
            }
            other => RefundError::Store(other),
        }
    }
}

pub(super) async fn refund(
    inner: &Inner,
    out_trade_no: &OutTradeNo,
    request: RefundRequest,
) -> Result<RefundOutcome, RefundError> {
    let provider = &inner.provider;
    if !provider.refunds_supported() {
        return Err(RefundError::NotSupported(format!(
            "the {} upstream has no refund API",
            provider.name()
        )));
    }
    let new = NewRefund {
        out_refund_no: request
            .out_refund_no
            .clone()
            .unwrap_or_else(OutRefundNo::generate),
        out_trade_no: out_trade_no.clone(),
        amount: request.amount,
        reason: request.reason.clone(),
    };
    let refund = match inner.store.reserve_refund(new).await? {
        RefundReservation::Existing(refund) if refund.amount == request.amount => {
            return Ok(RefundOutcome {
                refund,
                created: false,
            });
        }
        RefundReservation::Existing(refund) => {
            return Err(RefundError::NumberReused {
                existing: Box::new(refund),
                requested: request.amount.fen(),
            });
        }
        RefundReservation::Reserved(refund) => refund,
    };
    let order = inner
        .store
        .get(out_trade_no)
        .await?
        .ok_or_else(|| RefundError::OrderNotFound(out_trade_no.clone()))?;
    tracing::info!(
        out_trade_no = %out_trade_no,
        out_refund_no = %refund.out_refund_no,
        amount = refund.amount.fen(),
        "refund reserved"
    );
    let refund = submit(inner, &order, refund).await?;
    Ok(RefundOutcome {
        refund,
        created: true,
    })
}

/// Asks the upstream for a reserved refund and records its answer. A definite refusal closes
/// the refund and is returned as [`RefundError::Refused`]; an unknown outcome keeps it
/// `PROCESSING`.
pub(super) async fn submit(
    inner: &Inner,
    order: &Order,
    refund: Refund,
) -> Result<Refund, RefundError> {
    match inner
        .metrics
        .upstream("refund", inner.provider.refund(order, &refund))
        .await
    {
        Ok(report) => Ok(record_report(inner, order, &refund, &report, None)
            .await?
            .unwrap_or(refund)),
        Err(error) if is_definite_refusal(&error) => {
            let mut closed = RefundUpdate::to(RefundStatus::Closed);
            closed.failure = Some(failure_text(&error));
            let closed = inner
                .store
                .update_refund(&refund.out_refund_no, closed, None)
                .await?
                .refund()
                .clone();
            tracing::warn!(
                out_refund_no = %refund.out_refund_no,
                upstream_code = error.upstream_code.as_deref().unwrap_or(""),
                "the upstream refused the refund; closed, amount released"
            );
            inner.paid_signal.notify_one();
            Err(RefundError::Refused {
                refund: Box::new(closed),
                error,
            })
        }
        Err(error) => {
            tracing::warn!(
                %error,
                out_refund_no = %refund.out_refund_no,
                "refund outcome unknown; left PROCESSING for the reconciler"
            );
            Ok(refund)
        }
    }
}

/// Whether the upstream certainly did not take the refund, so its amount can be released.
fn is_definite_refusal(error: &ProviderError) -> bool {
    match error.kind {
        ProviderErrorKind::Rejected
        | ProviderErrorKind::Local
        | ProviderErrorKind::Unsupported
        | ProviderErrorKind::NotFound => true,
        ProviderErrorKind::Transport => !error.may_have_taken_effect,
        _ => false,
    }
}

fn failure_text(error: &ProviderError) -> String {
    match &error.upstream_code {
        Some(code) => format!("{code}: {}", error.message),
        None => error.message.clone(),
    }
}

/// Why `report` cannot be about `refund` of `order`, if it cannot.
pub(super) fn cross_check(
    order: &Order,
    refund: &Refund,
    report: &RefundReport,
    merchant: &crate::provider::MerchantIdentity,
) -> Option<String> {
    if report.out_refund_no != refund.out_refund_no.as_str() {
        return Some(format!(
            "refund report for {:?} applied to refund {}",
            report.out_refund_no, refund.out_refund_no
        ));
    }
    if let Some(no) = &report.out_trade_no
        && no != order.out_trade_no.as_str()
    {
        return Some(format!(
            "refund {} reported for order {no:?}, stored for {}",
            refund.out_refund_no, order.out_trade_no
        ));
    }
    if let Some(amount) = report.amount
        && amount != refund.amount.fen()
    {
        return Some(format!(
            "refund {} reported as {amount} fen, stored as {} fen",
            refund.out_refund_no,
            refund.amount.fen()
        ));
    }
    if let Some(total) = report.total
        && total != order.amount.fen()
    {
        return Some(format!(
            "refund {} reports an order total of {total} fen, the order has {} fen",
            refund.out_refund_no,
            order.amount.fen()
        ));
    }
    let mchid = order.mchid.as_deref().or(merchant.mchid.as_deref());
    if let (Some(expected), Some(reported)) = (mchid, report.mchid.as_deref())
        && expected != reported
    {
        return Some(format!("refund reported for mchid {reported:?}"));
    }
    if let (Some(stored), Some(transaction_id)) = (
        order.transaction_id.as_deref(),
        report.transaction_id.as_deref(),
    ) && stored != transaction_id
    {
        return Some(format!(
            "refund reported for transaction {transaction_id:?}, the order was paid by {stored:?}"
        ));
    }
    None
}

/// Records what the upstream reported about `refund` (from its answer, a query or the
/// notification `event_id`): a disagreement is recorded as a mismatch and changes nothing; a
/// move the refund cannot make (`SUCCESS → CLOSED`) likewise. `Ok(None)` when nothing was
/// applied; the caller acknowledges either way once this returns `Ok`.
pub(super) async fn record_report(
    inner: &Inner,
    order: &Order,
    refund: &Refund,
    report: &RefundReport,
    event_id: Option<&str>,
) -> Result<Option<Refund>, StoreError> {
    if let Some(mismatch) = cross_check(order, refund, report, &inner.provider.merchant()) {
        tracing::error!(out_trade_no = %order.out_trade_no, %mismatch, "refund report does not match the refund");
        inner
            .store
            .record_mismatch(&order.out_trade_no, &mismatch)
            .await?;
        if let Some(id) = event_id {
            inner
                .store
                .record_notification(id, Some(&order.out_trade_no))
                .await?;
        }
        super::alerts::raise(
            inner,
            super::Alert::Mismatch {
                out_trade_no: order.out_trade_no.as_str().to_owned(),
                detail: mismatch,
            },
        );
        return Ok(None);
    }
    let update = RefundUpdate {
        status: report.status,
        refund_id: report.refund_id.clone(),
        user_received_account: report.user_received_account.clone(),
        failure: report.failure.clone(),
        succeeded_at: report.succeeded_at,
    };
    match inner
        .store
        .update_refund(&refund.out_refund_no, update, event_id)
        .await
    {
        Ok(outcome) => {
            if outcome.is_applied() {
                let refund = outcome.refund();
                tracing::info!(
                    out_trade_no = %order.out_trade_no,
                    out_refund_no = %refund.out_refund_no,
                    status = %refund.status,
                    "refund updated"
                );
                if refund.status == crate::refund::RefundStatus::Abnormal {
                    super::alerts::raise(
                        inner,
                        super::Alert::RefundAbnormal {
                            out_trade_no: order.out_trade_no.as_str().to_owned(),
                            out_refund_no: refund.out_refund_no.as_str().to_owned(),
                        },
                    );
                }
                inner.paid_signal.notify_one();
            }
            Ok(Some(outcome.refund().clone()))
        }
        Err(error @ StoreError::RefundImpossible { .. }) => {
            let detail = format!("refund report not applicable: {error}");
            tracing::error!(out_trade_no = %order.out_trade_no, %detail);
            inner
                .store
                .record_mismatch(&order.out_trade_no, &detail)
                .await?;
            if let Some(id) = event_id {
                inner
                    .store
                    .record_notification(id, Some(&order.out_trade_no))
                    .await?;
            }
            super::alerts::raise(
                inner,
                super::Alert::Mismatch {
                    out_trade_no: order.out_trade_no.as_str().to_owned(),
                    detail,
                },
            );
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// What one reconciliation pass did with `PROCESSING` refunds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundReconcileReport {
    /// Refunds queried.
    pub checked: usize,
    /// Refunds that reached a final or abnormal status.
    pub settled: usize,
    /// Refunds the upstream had no record of, submitted again.
    pub resubmitted: usize,
    /// Refunds that could not be settled this time.
    pub failed: usize,
}

const BATCH: u32 = 100;

/// Queries `PROCESSING` refunds older than the reconcile age and records what the upstream
/// says; a refund the upstream never recorded (a crash between the reservation and the call)
/// is submitted again with the same number, which the upstream treats as the same refund.
pub(super) async fn reconcile(inner: &Inner) -> RefundReconcileReport {
    let mut report = RefundReconcileReport::default();
    if !inner.provider.refunds_supported() {
        return report;
    }
    let cutoff = inner.clock.now()
        - time::Duration::try_from(inner.settings.reconcile_after)
            .unwrap_or(time::Duration::minutes(5));
    let refunds = match inner
        .store
        .list_stale_refunds(RefundStatus::Processing, cutoff, BATCH)
        .await
    {
        Ok(refunds) => refunds,
        Err(error) => {
            tracing::warn!(%error, "listing processing refunds failed");
            report.failed += 1;
            return report;
        }
    };
    for refund in refunds {
        report.checked += 1;
        let order = match inner.store.get(&refund.out_trade_no).await {
            Ok(Some(order)) => order,
            other => {
                tracing::warn!(out_refund_no = %refund.out_refund_no, ?other, "refund's order unreadable");
                report.failed += 1;
                continue;
            }
        };
        match inner
            .metrics
            .upstream("query_refund", inner.provider.query_refund(&order, &refund))
            .await
        {
            Ok(upstream) => match record_report(inner, &order, &refund, &upstream, None).await {
                Ok(Some(after)) if after.status != RefundStatus::Processing => report.settled += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, out_refund_no = %refund.out_refund_no, "recording a refund query failed");
                    report.failed += 1;
                }
            },
            Err(error) if error.is_not_found() => {
                report.resubmitted += 1;
                match submit(inner, &order, refund.clone()).await {
                    Ok(after) if after.status != RefundStatus::Processing => report.settled += 1,
                    Ok(_) => {}
                    Err(RefundError::Refused { .. }) => report.settled += 1,
                    Err(error) => {
                        tracing::warn!(%error, out_refund_no = %refund.out_refund_no, "resubmitting a refund failed");
                        report.failed += 1;
                    }
                }
            }
            Err(error) if error.kind == ProviderErrorKind::Unsupported => {
                // One provider serves the engine: no other refund can be queried either, so
                // stop rather than spend the pass listing them (weidoufu).
                tracing::debug!(%error, "no refund query upstream: the refund settles by its answer or notification, or by an operator");
                break;
            }
            Err(error) => {
                tracing::warn!(%error, out_refund_no = %refund.out_refund_no, "refund query failed");
                report.failed += 1;
            }
        }
    }
    report
}

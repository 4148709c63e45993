//! Alerts: what an operator must look at, logged at `error` (target `wxpay::alert`) with the
//! order number and handed to the app's [`EventHook::on_alert`](super::EventHook::on_alert),
//! so that an app can page someone.
//!
//! An alert is a signal, not a record: the record is the store's mismatch row (or the refund's
//! status), written before the alert is raised. The hook gets each alert once, in the
//! background, and what it returns changes nothing.

use serde::Serialize;

use super::Inner;

/// How the mismatch rows of a double payment and of an unknown order begin (their kind is read
/// back from these for the console's "needs attention" list).
const DOUBLE_PAYMENT_DETAIL: &str = "a second payment was reported for a paid order";
const UNKNOWN_ORDER_PAID_DETAIL: &str =
    "a payment was notified for an order this store does not have";
const UNKNOWN_ORDER_DETAIL: &str = "notification for an order this store does not have";

/// The kind of a recorded mismatch row: `DOUBLE_PAYMENT`, `UNKNOWN_ORDER` (a payment or
/// notification for an order the store does not have) or `MISMATCH` (anything else).
pub(super) fn mismatch_kind(detail: &str) -> &'static str {
    if detail.starts_with(DOUBLE_PAYMENT_DETAIL) {
        "DOUBLE_PAYMENT"
    } else if detail.starts_with(UNKNOWN_ORDER_PAID_DETAIL)
        || detail.starts_with(UNKNOWN_ORDER_DETAIL)
    {
        "UNKNOWN_ORDER"
    } else {
        "MISMATCH"
    }
}

/// Something that needs an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Alert {
    /// An upstream's verified report disagrees with the stored order or refund (amount,
    /// merchant, currency, transaction); it was recorded as a mismatch and applied to nothing.
    Mismatch {
        /// The order.
        out_trade_no: String,
        /// What disagrees.
        detail: String,
    },
    /// A second payment was reported for an order already paid under another transaction: the
    /// payer may have paid twice, and one payment should be refunded.
    DoublePayment {
        /// The order.
        out_trade_no: String,
        /// The second payment's transaction id, when the upstream gave it.
        transaction_id: Option<String>,
    },
    /// A verified notification for an order this store does not have (another shop's number,
    /// or an order lost from the store).
    UnknownOrder {
        /// The number the upstream reported.
        out_trade_no: String,
        /// Whether it reports a payment.
        paid: bool,
        /// The upstream's transaction id, when it gave one.
        transaction_id: Option<String>,
    },
    /// A verified refund notification for a refund this store does not have.
    UnknownRefund {
        /// The refund number the upstream reported.
        out_refund_no: String,
    },
    /// A refund went `ABNORMAL`: the payer's account could not take the money; resolve it in
    /// the merchant platform.
    RefundAbnormal {
        /// The order.
        out_trade_no: String,
        /// The refund.
        out_refund_no: String,
    },
    /// Events have waited for the app's hook longer than [`OUTBOX_BACKLOG_AGE`]: the hook keeps
    /// failing, so the app has not learnt of payments or refunds. Raised at most once per that
    /// age while it lasts.
    OutboxBacklog {
        /// The order of the oldest undelivered event.
        out_trade_no: String,
        /// The oldest undelivered event.
        event_id: String,
        /// How long it has waited, in seconds.
        oldest_age_seconds: i64,
        /// How many events failed in the delivery pass that found it.
        failed_in_pass: usize,
    },
}

/// How long an event may wait for the hook before it needs an operator (and shows in the
/// console's "needs attention" list).
pub const OUTBOX_BACKLOG_AGE: time::Duration = time::Duration::minutes(10);

impl Alert {
    /// The order it is about, when it names one.
    pub fn out_trade_no(&self) -> Option<&str> {
        match self {
            Alert::Mismatch { out_trade_no, .. }
            | Alert::DoublePayment { out_trade_no, .. }
            | Alert::UnknownOrder { out_trade_no, .. }
            | Alert::RefundAbnormal { out_trade_no, .. }
            | Alert::OutboxBacklog { out_trade_no, .. } => Some(out_trade_no),
            Alert::UnknownRefund { .. } => None,
        }
    }

    /// The words recorded as the order's mismatch.
    pub fn detail(&self) -> String {
        match self {
            Alert::Mismatch { detail, .. } => detail.clone(),
            Alert::DoublePayment { transaction_id, .. } => format!(
                "{DOUBLE_PAYMENT_DETAIL} (transaction {})",
                transaction_id.as_deref().unwrap_or("unknown")
            ),
            Alert::UnknownOrder { paid: true, .. } => UNKNOWN_ORDER_PAID_DETAIL.to_owned(),
            Alert::UnknownOrder { paid: false, .. } => UNKNOWN_ORDER_DETAIL.to_owned(),
            Alert::UnknownRefund { out_refund_no } => {
                format!("refund notification for unknown refund {out_refund_no:?}")
            }
            Alert::RefundAbnormal { out_refund_no, .. } => {
                format!("refund {out_refund_no} is ABNORMAL: resolve it in the merchant platform")
            }
            Alert::OutboxBacklog {
                event_id,
                oldest_age_seconds,
                failed_in_pass,
                ..
            } => format!(
                "event {event_id} has waited {oldest_age_seconds} s for the event hook \
                 ({failed_in_pass} deliveries failed in the last pass)"
            ),
        }
    }
}

/// Logs `alert` and hands it to the app's hook in the background.
pub(super) fn raise(inner: &Inner, alert: Alert) {
    tracing::error!(
        target: "wxpay::alert",
        out_trade_no = alert.out_trade_no().unwrap_or(""),
        alert = ?alert,
        "{}",
        alert.detail()
    );
    if let Some(hook) = inner.hook.clone()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn(async move { hook.on_alert(&alert).await });
    }
}

//! Orders and their status machine.
//!
//! An [`Order`] moves through the statuses of [`OrderStatus`]:
//!
//! ```text
//! CREATED ──Prepared──▶ PENDING ──Paid──▶ PAID ──Refunded──▶ REFUNDED
//!    │                  │  ▲  │
//!    │                  │  └──┘ Prepared (a fresh prepay_id replaces an expired one)
//!    │                  ├──Closed──▶ CLOSED ──Paid──▶ PAID   (a payment that raced the close)
//!    │                  └──Failed──▶ FAILED ──Paid──▶ PAID   (a payment reported after a failure)
//!    ├──Closed──▶ CLOSED   (an order whose prepay never succeeded is abandoned)
//!    └──Failed──▶ FAILED   (the upstream refused the prepay for good)
//! ```
//!
//! Each move is a [`Transition`] that carries the data it sets. Every store applies it as a
//! compare-and-set: the caller names the status it expects the order to be in, and the store
//! decides with the one pure function [`Order::decide`], so all stores agree on what is allowed:
//!
//! - a transition that already happened (e.g. `Paid` again with the same `transaction_id`) is
//!   [`Decision::AlreadyApplied`]: a success, never an error, so duplicate notifications are
//!   harmless;
//! - an order that is not in the expected status is a [`StoreError::Conflict`] carrying the actual
//!   status, so the caller can re-read and decide again;
//! - a transition the machine does not have (e.g. `CREATED → PAID`, `PAID → CLOSED`) is a
//!   [`StoreError::Impossible`].
//!
//! **Why `CLOSED → PAID` and `FAILED → PAID`.** A verified payment notification is a fact about
//! money that has been taken from the payer. WeChat Pay can report a payment that raced our close
//! (the payer confirmed in the last second), so refusing it would lose the record of a real payment
//! and make WeChat retry the notification for a day. The store records it (and emits the paid
//! event); what to do next (deliver, refund) is the app's decision. `CREATED → PAID` stays
//! impossible: no payment can exist for an order that never got a `prepay_id`, so
//! `Paid` also requires that the order has (or had) one.
//!
//! Timestamps are kept in UTC at millisecond precision everywhere (see [`to_millis`]), so an order
//! reads back identically from every store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};

use crate::fields::{Amount, Attach, Currency, Description, OpenId, OutTradeNo};
use crate::store::StoreError;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Stored, no `prepay_id` yet.
    Created,
    /// A `prepay_id` was issued; the payer may pay.
    Pending,
    /// A verified payment was recorded. Final except for a refund.
    Paid,
    /// Closed without a payment (by us, or because the prepay expired).
    Closed,
    /// The payment or the prepay failed for good.
    Failed,
    /// The payment was refunded.
    Refunded,
}

impl OrderStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Created,
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Closed,
        OrderStatus::Failed,
        OrderStatus::Refunded,
    ];

    /// The wire and database spelling: `CREATED`, `PENDING`, `PAID`, `CLOSED`, `FAILED`,
    /// `REFUNDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "CREATED",
            OrderStatus::Pending => "PENDING",
            OrderStatus::Paid => "PAID",
            OrderStatus::Closed => "CLOSED",
            OrderStatus::Failed => "FAILED",
            OrderStatus::Refunded => "REFUNDED",
        }
    }

    /// Whether the status machine has an edge from `self` to `to`.
    ///
    /// `PENDING → PENDING` is an edge (a fresh `prepay_id` replacing an expired one); no other
    /// status goes to itself.
    pub fn can_move_to(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Created, Pending | Closed | Failed)
                | (Pending, Pending | Paid | Closed | Failed)
                | (Closed | Failed, Paid)
                | (Paid, Refunded)
        )
    }

    /// Whether no transition leaves this status.
    pub fn is_final(self) -> bool {
        self == OrderStatus::Refunded
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`OrderStatus`]'s spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A move of the status machine, with the data it sets on the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The upstream issued a `prepay_id`: `CREATED → PENDING`, or `PENDING → PENDING` to replace
    /// an expired `prepay_id` with a fresh one. Sets `prepay_id` and `prepay_expires_at`.
    /// Applying it again with the same `prepay_id` is [`Decision::AlreadyApplied`].
    Prepared {
        /// The upstream's prepay id.
        prepay_id: String,
        /// When the prepay id stops being payable (WeChat Pay: 2 hours after it was issued).
        expires_at: OffsetDateTime,
    },
    /// A verified payment: `PENDING | CLOSED | FAILED → PAID` (the order must have a
    /// `prepay_id`). Sets `transaction_id`, `paid_at`, `payer`, and writes the paid event to the
    /// outbox in the same database transaction. Applying it again with the same
    /// `transaction_id` (even after a refund) is [`Decision::AlreadyApplied`].
    Paid {
        /// The upstream's transaction id.
        transaction_id: String,
        /// When the payer paid, as the upstream reports it.
        paid_at: OffsetDateTime,
        /// The payer's openid as the notification reports it, when it does.
        payer: Option<String>,
    },
    /// A verified payment of an order still `CREATED`: its prepay was issued upstream but never
    /// recorded here (the store failed after the upstream answered), and the payer paid it.
    /// `CREATED → PAID`, with the same fields and outbox event as [`Transition::Paid`]. Kept
    /// apart so that an ordinary `Paid` of an order with no prepay stays impossible: only the
    /// notify path takes this one, and it records a mismatch for the operator.
    PaidUnprepared {
        /// The upstream's transaction id.
        transaction_id: String,
        /// When the payer paid, as the upstream reports it.
        paid_at: OffsetDateTime,
        /// The payer's openid as the notification reports it, when it does.
        payer: Option<String>,
    },
    /// Closed without payment: `CREATED | PENDING → CLOSED`.
    Closed,
    /// Failed for good: `CREATED | PENDING → FAILED`. Sets `failure_reason`.
    Failed {
        /// Why, in words for an operator (e.g. the upstream's code and message).
        reason: String,
    },
    /// Refunded: `PAID → REFUNDED`.
    Refunded,
}

impl Transition {
    /// The status the order is in after this transition.
    pub fn target(&self) -> OrderStatus {
        match self {
            Transition::Prepared { .. } => OrderStatus::Pending,
            Transition::Paid { .. } | Transition::PaidUnprepared { .. } => OrderStatus::Paid,
            Transition::Closed => OrderStatus::Closed,
            Transition::Failed { .. } => OrderStatus::Failed,
            Transition::Refunded => OrderStatus::Refunded,
        }
    }

    /// The transition's name: `Prepared`, `Paid`, `PaidUnprepared`, `Closed`, `Failed` or
    /// `Refunded`.
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Prepared { .. } => "Prepared",
            Transition::Paid { .. } => "Paid",
            Transition::PaidUnprepared { .. } => "PaidUnprepared",
            Transition::Closed => "Closed",
            Transition::Failed { .. } => "Failed",
            Transition::Refunded => "Refunded",
        }
    }
}

/// What [`Order::decide`] says a store must do with a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Apply it: write [`Order::applied`] if the order is still unchanged.
    Apply,
    /// It already happened: change nothing and report success.
    AlreadyApplied,
}

/// The data of a new order, before the store gives it a status and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The merchant's order number, unique in the store.
    pub out_trade_no: OutTradeNo,
    /// Which upstream the order is paid through, e.g. `"v3"` for WeChat Pay API v3.
    pub provider: String,
    /// The appid the order is paid under, when the provider has one.
    pub appid: Option<String>,
    /// The merchant id the order is paid to, when the provider has one.
    pub mchid: Option<String>,
    /// The payer's openid under `appid`.
    pub openid: OpenId,
    /// What the payer pays, in fen.
    pub amount: Amount,
    /// The currency of `amount`.
    pub currency: Currency,
    /// What the payer sees.
    pub description: Description,
    /// Merchant data passed through the payment.
    pub attach: Option<Attach>,
}

impl NewOrder {
    /// A WeChat Pay API v3 order (`provider` `"v3"`) in CNY, without appid, mchid or attach.
    pub fn new(
        out_trade_no: OutTradeNo,
        openid: OpenId,
        amount: Amount,
        description: Description,
    ) -> Self {
        Self {
            out_trade_no,
            provider: "v3".to_owned(),
            appid: None,
            mchid: None,
            openid,
            amount,
            currency: Currency::cny(),
            description,
            attach: None,
        }
    }

    /// The stored order: status `CREATED`, created and updated at `now`.
    pub fn into_order(self, now: OffsetDateTime) -> Order {
        let now = truncate_to_millis(now);
        Order {
            out_trade_no: self.out_trade_no,
            provider: self.provider,
            appid: self.appid,
            mchid: self.mchid,
            openid: self.openid,
            amount: self.amount,
            currency: self.currency,
            description: self.description,
            attach: self.attach,
            status: OrderStatus::Created,
            prepay_id: None,
            prepay_expires_at: None,
            transaction_id: None,
            paid_at: None,
            payer: None,
            failure_reason: None,
            refund_held_fen: 0,
            refunded_fen: 0,
            refund_count: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The merchant's order number: the order's key.
    pub out_trade_no: OutTradeNo,
    /// Which upstream the order is paid through, e.g. `"v3"` for WeChat Pay API v3.
    pub provider: String,
    /// The appid the order is paid under, when the provider has one; notifications are
    /// cross-checked against it.
    pub appid: Option<String>,
    /// The merchant id the order is paid to, when the provider has one; notifications are
    /// cross-checked against it.
    pub mchid: Option<String>,
    /// The payer's openid under `appid`, as the order was created for.
    pub openid: OpenId,
    /// What the payer pays, in fen.
    pub amount: Amount,
    /// The currency of `amount`.
    pub currency: Currency,
    /// What the payer sees.
    pub description: Description,
    /// Merchant data passed through the payment.
    pub attach: Option<Attach>,
    /// Where the order is in its life.
    pub status: OrderStatus,
    /// The upstream's prepay id, set by [`Transition::Prepared`].
    pub prepay_id: Option<String>,
    /// When `prepay_id` stops being payable.
    pub prepay_expires_at: Option<OffsetDateTime>,
    /// The upstream's transaction id, set by [`Transition::Paid`].
    pub transaction_id: Option<String>,
    /// When the payer paid, as the upstream reported it.
    pub paid_at: Option<OffsetDateTime>,
    /// The payer's openid as the payment notification reported it.
    pub payer: Option<String>,
    /// Why the order failed, set by [`Transition::Failed`].
    pub failure_reason: Option<String>,
    /// Fen held by the order's refunds that are not `CLOSED` (processing, succeeded or
    /// abnormal): never more than `amount`, which the store enforces atomically.
    pub refund_held_fen: u64,
    /// Fen refunded to the payer (refunds that reached `SUCCESS`).
    pub refunded_fen: u64,
    /// How many refunds the order has, closed ones included (at most
    /// [`MAX_REFUNDS_PER_ORDER`](crate::refund::MAX_REFUNDS_PER_ORDER)).
    pub refund_count: u32,
    /// When the order was stored (UTC, millisecond precision).
    pub created_at: OffsetDateTime,
    /// When the order last changed (UTC, millisecond precision).
    pub updated_at: OffsetDateTime,
}

impl Order {
    /// Fen that can still be refunded: the amount less what refunds already hold.
    pub fn refundable_fen(&self) -> u64 {
        self.amount.fen().saturating_sub(self.refund_held_fen)
    }

    /// Whether refunds that succeeded give back the whole amount.
    pub fn is_fully_refunded(&self) -> bool {
        self.refunded_fen >= self.amount.fen()
    }

    /// Whether `transition` has already been applied to this order, so that applying it again
    /// must change nothing.
    pub fn has_applied(&self, transition: &Transition) -> bool {
        match transition {
            Transition::Prepared { prepay_id, .. } => {
                self.status == OrderStatus::Pending
                    && self.prepay_id.as_deref() == Some(prepay_id.as_str())
            }
            Transition::Paid { transaction_id, .. }
            | Transition::PaidUnprepared { transaction_id, .. } => {
                matches!(self.status, OrderStatus::Paid | OrderStatus::Refunded)
                    && self.transaction_id.as_deref() == Some(transaction_id.as_str())
            }
            Transition::Closed => self.status == OrderStatus::Closed,
            Transition::Failed { .. } => self.status == OrderStatus::Failed,
            Transition::Refunded => self.status == OrderStatus::Refunded,
        }
    }

    /// The compare-and-set rule every store applies: what to do with `transition` when the caller
    /// expects the order to be in `expected`.
    ///
    /// 1. Already applied ([`Order::has_applied`]) → [`Decision::AlreadyApplied`], whatever
    ///    `expected` says.
    /// 2. The machine has no edge from `expected` for this transition (or `Paid` on an order
    ///    that never had a `prepay_id`) → [`StoreError::Impossible`].
    /// 3. The order is not in `expected` → [`StoreError::Conflict`] with the actual status.
    /// 4. Otherwise → [`Decision::Apply`].
    pub fn decide(
        &self,
        expected: OrderStatus,
        transition: &Transition,
    ) -> Result<Decision, StoreError> {
        if self.has_applied(transition) {
            return Ok(Decision::AlreadyApplied);
        }
        if matches!(transition, Transition::PaidUnprepared { .. }) {
            if expected != OrderStatus::Created {
                return Err(StoreError::Impossible {
                    out_trade_no: self.out_trade_no.clone(),
                    from: expected,
                    transition: transition.name(),
                });
            }
            if self.status != expected {
                return Err(StoreError::Conflict {
                    out_trade_no: self.out_trade_no.clone(),
                    expected,
                    actual: self.status,
                });
            }
            return Ok(Decision::Apply);
        }
        let target = transition.target();
        let never_prepared =
            matches!(transition, Transition::Paid { .. }) && self.prepay_id.is_none();
        if !expected.can_move_to(target) || (never_prepared && self.status == expected) {
            return Err(StoreError::Impossible {
                out_trade_no: self.out_trade_no.clone(),
                from: expected,
                transition: transition.name(),
            });
        }
        if self.status != expected {
            return Err(StoreError::Conflict {
                out_trade_no: self.out_trade_no.clone(),
                expected,
                actual: self.status,
            });
        }
        Ok(Decision::Apply)
    }

    /// This order after `transition`, changed at `now`. Does not check that the transition is
    /// allowed: call [`Order::decide`] first.
    pub fn applied(&self, transition: &Transition, now: OffsetDateTime) -> Order {
        let mut order = self.clone();
        order.status = transition.target();
        order.updated_at = truncate_to_millis(now);
        match transition {
            Transition::Prepared {
                prepay_id,
                expires_at,
            } => {
                order.prepay_id = Some(prepay_id.clone());
                order.prepay_expires_at = Some(truncate_to_millis(*expires_at));
            }
            Transition::Paid {
                transaction_id,
                paid_at,
                payer,
            }
            | Transition::PaidUnprepared {
                transaction_id,
                paid_at,
                payer,
            } => {
                order.transaction_id = Some(transaction_id.clone());
                order.paid_at = Some(truncate_to_millis(*paid_at));
                order.payer.clone_from(payer);
            }
            Transition::Failed { reason } => order.failure_reason = Some(reason.clone()),
            Transition::Closed | Transition::Refunded => {}
        }
        order
    }
}

/// `time` in UTC, cut to whole milliseconds: the precision every store keeps.
pub fn truncate_to_millis(time: OffsetDateTime) -> OffsetDateTime {
    from_millis(to_millis(time)).unwrap_or(time)
}

/// Milliseconds since the Unix epoch (negative before it), saturating outside `i64`.
pub fn to_millis(time: OffsetDateTime) -> i64 {
    let millis = time.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// The UTC time `millis` milliseconds after the Unix epoch, or `None` outside `time`'s range.
pub fn from_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .map(|t| t.to_offset(UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn order(status: OrderStatus) -> Order {
        let mut order = NewOrder::new(
            OutTradeNo::try_from("ORDER123456").unwrap(),
            OpenId::try_from("openid_1").unwrap(),
            Amount::from_fen(100).unwrap(),
            Description::try_from("coffee").unwrap(),
        )
        .into_order(datetime!(2024-05-01 10:00:00 UTC));
        order.status = status;
        if status != OrderStatus::Created {
            order.prepay_id = Some("wx_prepay_1".to_owned());
        }
        if matches!(status, OrderStatus::Paid | OrderStatus::Refunded) {
            order.transaction_id = Some("tx_1".to_owned());
        }
        order
    }

    fn prepared(id: &str) -> Transition {
        Transition::Prepared {
            prepay_id: id.to_owned(),
            expires_at: datetime!(2024-05-01 12:00:00 UTC),
        }
    }

    fn paid(tx: &str) -> Transition {
        Transition::Paid {
            transaction_id: tx.to_owned(),
            paid_at: datetime!(2024-05-01 10:05:00.123456 UTC),
            payer: Some("payer_1".to_owned()),
        }
    }

    fn all_transitions() -> Vec<Transition> {
        vec![
            prepared("wx_prepay_2"),
            paid("tx_2"),
            Transition::Closed,
            Transition::Failed {
                reason: "x".to_owned(),
            },
            Transition::Refunded,
        ]
    }

    #[test]
    fn status_spellings_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
        assert!("paid".parse::<OrderStatus>().is_err());
        assert!("".parse::<OrderStatus>().is_err());
    }

    #[test]
    fn the_machine_has_exactly_the_documented_edges() {
        use OrderStatus::*;
        let edges = [
            (Created, Pending),
            (Created, Closed),
            (Created, Failed),
            (Pending, Pending),
            (Pending, Paid),
            (Pending, Closed),
            (Pending, Failed),
            (Closed, Paid),
            (Failed, Paid),
            (Paid, Refunded),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    edges.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert!(Refunded.is_final());
        assert!(!Paid.is_final());
    }

    #[test]
    fn allowed_transitions_apply_from_their_status() {
        use OrderStatus::*;
        let cases = [
            (Created, prepared("p")),
            (Pending, prepared("wx_prepay_2")),
            (Pending, paid("tx")),
            (Closed, paid("tx")),
            (Failed, paid("tx")),
            (Created, Transition::Closed),
            (Pending, Transition::Closed),
            (
                Pending,
                Transition::Failed {
                    reason: "r".to_owned(),
                },
            ),
            (Paid, Transition::Refunded),
        ];
        for (from, t) in cases {
            assert_eq!(
                order(from).decide(from, &t).unwrap(),
                Decision::Apply,
                "{from} {t:?}"
            );
        }
    }

    #[test]
    fn impossible_transitions_are_refused() {
        use OrderStatus::*;
        for from in OrderStatus::ALL {
            for t in all_transitions() {
                let o = order(from);
                if o.has_applied(&t) {
                    continue;
                }
                let allowed = from.can_move_to(t.target());
                match o.decide(from, &t) {
                    Ok(Decision::Apply) => assert!(allowed, "{from} {t:?} applied"),
                    Err(StoreError::Impossible {
                        from: f,
                        transition,
                        ..
                    }) => {
                        assert!(!allowed, "{from} {t:?} refused");
                        assert_eq!(f, from);
                        assert_eq!(transition, t.name());
                    }
                    other => panic!("{from} {t:?}: {other:?}"),
                }
            }
        }
        // CREATED -> PAID is not an edge.
        assert!(matches!(
            order(Created).decide(Created, &paid("tx")),
            Err(StoreError::Impossible { from: Created, .. })
        ));
        // A closed order that never had a prepay_id cannot have been paid.
        let mut closed = order(Closed);
        closed.prepay_id = None;
        assert!(matches!(
            closed.decide(Closed, &paid("tx")),
            Err(StoreError::Impossible { from: Closed, .. })
        ));
    }

    #[test]
    fn repeated_transitions_are_already_applied() {
        use OrderStatus::*;
        let now = datetime!(2024-05-01 10:10:00 UTC);
        for (from, t) in [
            (Created, prepared("p")),
            (Pending, paid("tx")),
            (Closed, paid("tx")),
            (Pending, Transition::Closed),
            (
                Pending,
                Transition::Failed {
                    reason: "r".to_owned(),
                },
            ),
            (Paid, Transition::Refunded),
        ] {
            let after = order(from).applied(&t, now);
            assert_eq!(after.status, t.target());
            // Whatever the caller expected, a repeat is a success that changes nothing.
            for expected in OrderStatus::ALL {
                assert_eq!(
                    after.decide(expected, &t).unwrap(),
                    Decision::AlreadyApplied,
                    "{from} {t:?} expecting {expected}"
                );
            }
        }
        // A notification arriving after the refund is still a duplicate, not an error.
        let refunded = order(Refunded);
        assert_eq!(
            refunded.decide(Pending, &paid("tx_1")).unwrap(),
            Decision::AlreadyApplied
        );
    }

    #[test]
    fn a_different_payment_of_a_paid_order_is_a_conflict() {
        let paid_order = order(OrderStatus::Paid);
        let err = paid_order
            .decide(OrderStatus::Pending, &paid("tx_other"))
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::Conflict {
                expected: OrderStatus::Pending,
                actual: OrderStatus::Paid,
                ..
            }
        ));
        // A different prepay_id on an order someone else already prepared: conflict.
        let pending = order(OrderStatus::Pending);
        assert!(matches!(
            pending.decide(OrderStatus::Created, &prepared("other")),
            Err(StoreError::Conflict {
                actual: OrderStatus::Pending,
                ..
            })
        ));
    }

    #[test]
    fn applied_sets_the_transition_data_at_millisecond_precision() {
        let now = datetime!(2024-05-01 10:10:00.987654321 UTC);
        let pending = order(OrderStatus::Created).applied(&prepared("p9"), now);
        assert_eq!(pending.status, OrderStatus::Pending);
        assert_eq!(pending.prepay_id.as_deref(), Some("p9"));
        assert_eq!(
            pending.prepay_expires_at,
            Some(datetime!(2024-05-01 12:00:00 UTC))
        );
        assert_eq!(pending.updated_at, datetime!(2024-05-01 10:10:00.987 UTC));
        let paid_order = pending.applied(&paid("tx9"), now);
        assert_eq!(paid_order.transaction_id.as_deref(), Some("tx9"));
        assert_eq!(
            paid_order.paid_at,
            Some(datetime!(2024-05-01 10:05:00.123 UTC))
        );
        assert_eq!(paid_order.payer.as_deref(), Some("payer_1"));
        let failed = order(OrderStatus::Pending).applied(
            &Transition::Failed {
                reason: "PAYERROR".to_owned(),
            },
            now,
        );
        assert_eq!(failed.failure_reason.as_deref(), Some("PAYERROR"));
    }

    #[test]
    fn millis_round_trip() {
        let t = datetime!(2024-05-01 10:10:00.987654321 +08:00);
        let back = from_millis(to_millis(t)).unwrap();
        assert_eq!(back, datetime!(2024-05-01 02:10:00.987 UTC));
        assert_eq!(back.offset(), UtcOffset::UTC);
        let before_epoch = datetime!(1969-12-31 23:59:59.9995 UTC);
        assert_eq!(
            from_millis(to_millis(before_epoch)).unwrap(),
            datetime!(1969-12-31 23:59:59.999 UTC)
        );
        assert_eq!(truncate_to_millis(t), back);
        assert!(from_millis(i64::MAX).is_none());
    }
}

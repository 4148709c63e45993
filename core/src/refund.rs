//! Refunds: their own records beside the order, and their status machine.
//!
//! A [`Refund`] gives back part or all of a paid order's amount. It is reserved in the store
//! *before* the upstream is asked ([`OrderStore::reserve_refund`](crate::store::OrderStore::reserve_refund)),
//! so a crash between the two can never lose it, and its amount counts against the order at
//! once: the sum of an order's refunds that are not [`RefundStatus::Closed`] never exceeds the
//! amount paid, which every store enforces with one conditional write.
//!
//! ```text
//! PROCESSING ──▶ SUCCESS    (money back with the payer: final)
//!     │  ▲ └───▶ CLOSED     (refused or given up upstream: the amount is released, final)
//!     │  │
//!     └──┴───▶ ABNORMAL ──▶ SUCCESS | CLOSED   (the payer's account could not take it; an
//!                                              operator resolves it upstream)
//! ```
//!
//! A `PROCESSING → PROCESSING` update records the upstream's `refund_id` once it is known.
//! Each move is a [`RefundUpdate`], decided by [`Refund::decide`] in every store alike.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::fields::{Amount, OutRefundNo, OutTradeNo, RefundReason};
use crate::order::truncate_to_millis;
use crate::store::StoreError;

/// Most refunds one order can have (WeChat Pay's limit of partial refunds per payment).
pub const MAX_REFUNDS_PER_ORDER: u32 = 50;

/// Where a refund is in its life, with WeChat Pay's spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Reserved in the store and asked of (or about to be asked of) the upstream.
    Processing,
    /// The money is back with the payer. Final.
    Success,
    /// Refused or closed upstream; its amount no longer counts against the order. Final.
    Closed,
    /// The upstream could not pay the money back (e.g. the payer's card was cancelled); it
    /// still counts against the order until an operator resolves it.
    Abnormal,
}

impl RefundStatus {
    /// Every status.
    pub const ALL: [RefundStatus; 4] = [
        RefundStatus::Processing,
        RefundStatus::Success,
        RefundStatus::Closed,
        RefundStatus::Abnormal,
    ];

    /// The spelling stored and shown: `PROCESSING`, `SUCCESS`, `CLOSED`, `ABNORMAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Closed => "CLOSED",
            RefundStatus::Abnormal => "ABNORMAL",
        }
    }

    /// Whether nothing can change it any more.
    pub fn is_final(self) -> bool {
        matches!(self, RefundStatus::Success | RefundStatus::Closed)
    }

    /// Whether the machine has a move from `self` to `to` (a repeat is decided apart).
    pub fn can_move_to(self, to: RefundStatus) -> bool {
        use RefundStatus::*;
        matches!(
            (self, to),
            (Processing, Processing | Success | Closed | Abnormal) | (Abnormal, Success | Closed)
        )
    }

    /// Whether a refund in this status counts against the order's paid amount.
    pub fn holds_amount(self) -> bool {
        self != RefundStatus::Closed
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refund status spelling that is not one of [`RefundStatus`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown refund status {0:?}")]
pub struct UnknownRefundStatus(pub String);

impl std::str::FromStr for RefundStatus {
    type Err = UnknownRefundStatus;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        RefundStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| UnknownRefundStatus(value.to_owned()))
    }
}

/// A refund to reserve: [`OrderStore::reserve_refund`](crate::store::OrderStore::reserve_refund).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// The merchant's refund number; the same number again is the same refund.
    pub out_refund_no: OutRefundNo,
    /// The paid order it gives money back from.
    pub out_trade_no: OutTradeNo,
    /// How much, in fen.
    pub amount: Amount,
    /// Why, shown to the payer.
    pub reason: Option<RefundReason>,
}

impl NewRefund {
    /// The stored refund, `PROCESSING`, created at `now`.
    pub fn into_refund(self, now: OffsetDateTime) -> Refund {
        let now = truncate_to_millis(now);
        Refund {
            out_refund_no: self.out_refund_no,
            out_trade_no: self.out_trade_no,
            amount: self.amount,
            reason: self.reason,
            status: RefundStatus::Processing,
            refund_id: None,
            user_received_account: None,
            failure: None,
            created_at: now,
            updated_at: now,
            succeeded_at: None,
        }
    }
}

/// A refund as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    /// The merchant's refund number: the refund's key.
    pub out_refund_no: OutRefundNo,
    /// The order it gives money back from.
    pub out_trade_no: OutTradeNo,
    /// How much, in fen.
    pub amount: Amount,
    /// Why, shown to the payer.
    pub reason: Option<RefundReason>,
    /// Where it is.
    pub status: RefundStatus,
    /// The upstream's refund id, once it gave one.
    pub refund_id: Option<String>,
    /// Where the money went (e.g. `支付用户零钱`), when the upstream said.
    pub user_received_account: Option<String>,
    /// For `CLOSED` or `ABNORMAL`: the upstream's code and message, or why it was closed.
    pub failure: Option<String>,
    /// When it was reserved (UTC, millisecond precision).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the money reached the payer, as the upstream reported it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub succeeded_at: Option<OffsetDateTime>,
}

/// A change of a refund: [`OrderStore::update_refund`](crate::store::OrderStore::update_refund).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundUpdate {
    /// The status it moves to.
    pub status: RefundStatus,
    /// The upstream's refund id, when known (kept when `None`).
    pub refund_id: Option<String>,
    /// Where the money went, when known (kept when `None`).
    pub user_received_account: Option<String>,
    /// The upstream's code and message for `CLOSED` / `ABNORMAL` (kept when `None`).
    pub failure: Option<String>,
    /// When the money reached the payer (for `SUCCESS`; the update's time when `None`).
    pub succeeded_at: Option<OffsetDateTime>,
}

impl RefundUpdate {
    /// A move to `status` with nothing else known.
    pub fn to(status: RefundStatus) -> Self {
        Self {
            status,
            refund_id: None,
            user_received_account: None,
            failure: None,
            succeeded_at: None,
        }
    }
}

/// What a store does with a [`RefundUpdate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundDecision {
    /// Write it.
    Apply,
    /// It changes nothing: a success that writes nothing.
    AlreadyApplied,
}

impl Refund {
    /// The rule every store applies to `update`:
    ///
    /// 1. The same final status again, or a non-final status again with nothing new
    ///    (no new `refund_id`) → [`RefundDecision::AlreadyApplied`].
    /// 2. A move the machine lacks (`SUCCESS → CLOSED`, `CLOSED → SUCCESS`, `ABNORMAL →
    ///    PROCESSING`, …) → [`StoreError::RefundImpossible`].
    /// 3. Otherwise → [`RefundDecision::Apply`].
    pub fn decide(&self, update: &RefundUpdate) -> Result<RefundDecision, StoreError> {
        let repeat = update.status == self.status;
        let news = update
            .refund_id
            .as_deref()
            .is_some_and(|id| self.refund_id.as_deref() != Some(id));
        if repeat && (self.status.is_final() || !news) {
            return Ok(RefundDecision::AlreadyApplied);
        }
        if !self.status.can_move_to(update.status) {
            return Err(StoreError::RefundImpossible {
                out_refund_no: self.out_refund_no.clone(),
                from: self.status,
                to: update.status,
            });
        }
        Ok(RefundDecision::Apply)
    }

    /// This refund after `update` at `now`; call [`Refund::decide`] first.
    pub fn applied(&self, update: &RefundUpdate, now: OffsetDateTime) -> Refund {
        let now = truncate_to_millis(now);
        let mut refund = self.clone();
        refund.status = update.status;
        refund.updated_at = now;
        if update.refund_id.is_some() {
            refund.refund_id.clone_from(&update.refund_id);
        }
        if update.user_received_account.is_some() {
            refund
                .user_received_account
                .clone_from(&update.user_received_account);
        }
        if update.failure.is_some() {
            refund.failure.clone_from(&update.failure);
        }
        if update.status == RefundStatus::Success {
            refund.succeeded_at = Some(update.succeeded_at.map_or(now, truncate_to_millis));
        }
        refund
    }

    /// How `update` changes the order's totals: (change of the amount held by refunds that are
    /// not closed, change of the amount refunded), in fen.
    pub fn order_effect(&self, update: &RefundUpdate) -> (i64, i64) {
        let fen = i64::try_from(self.amount.fen()).unwrap_or(i64::MAX);
        let held = match (self.status.holds_amount(), update.status.holds_amount()) {
            (true, false) => -fen,
            (false, true) => fen,
            _ => 0,
        };
        let refunded = match (
            self.status == RefundStatus::Success,
            update.status == RefundStatus::Success,
        ) {
            (false, true) => fen,
            (true, false) => -fen,
            _ => 0,
        };
        (held, refunded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn refund(status: RefundStatus) -> Refund {
        let mut refund = NewRefund {
            out_refund_no: OutRefundNo::try_from("R1").unwrap(),
            out_trade_no: OutTradeNo::try_from("ORDER123456").unwrap(),
            amount: Amount::from_fen(30).unwrap(),
            reason: None,
        }
        .into_refund(datetime!(2024-05-01 10:00:00 UTC));
        refund.status = status;
        refund
    }

    #[test]
    fn spellings_round_trip() {
        for status in RefundStatus::ALL {
            assert_eq!(status.as_str().parse::<RefundStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert!("success".parse::<RefundStatus>().is_err());
    }

    #[test]
    fn the_machine_has_the_documented_moves() {
        use RefundStatus::*;
        for from in RefundStatus::ALL {
            for to in RefundStatus::ALL {
                let update = RefundUpdate::to(to);
                let decided = refund(from).decide(&update);
                let expected_apply = matches!(
                    (from, to),
                    (Processing, Success | Closed | Abnormal) | (Abnormal, Success | Closed)
                );
                match decided {
                    Ok(RefundDecision::Apply) => assert!(expected_apply, "{from} -> {to}"),
                    Ok(RefundDecision::AlreadyApplied) => assert_eq!(from, to),
                    Err(StoreError::RefundImpossible { .. }) => {
                        assert!(!expected_apply && from != to, "{from} -> {to}");
                    }
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_new_refund_id_on_processing_is_applied_once() {
        let processing = refund(RefundStatus::Processing);
        let mut update = RefundUpdate::to(RefundStatus::Processing);
        update.refund_id = Some("5030".to_owned());
        assert_eq!(processing.decide(&update).unwrap(), RefundDecision::Apply);
        let after = processing.applied(&update, datetime!(2024-05-01 10:00:01 UTC));
        assert_eq!(after.refund_id.as_deref(), Some("5030"));
        assert_eq!(
            after.decide(&update).unwrap(),
            RefundDecision::AlreadyApplied
        );
    }

    #[test]
    fn order_effects_release_and_count() {
        use RefundStatus::*;
        let p = refund(Processing);
        assert_eq!(p.order_effect(&RefundUpdate::to(Closed)), (-30, 0));
        assert_eq!(p.order_effect(&RefundUpdate::to(Success)), (0, 30));
        assert_eq!(p.order_effect(&RefundUpdate::to(Abnormal)), (0, 0));
        assert_eq!(
            refund(Abnormal).order_effect(&RefundUpdate::to(Success)),
            (0, 30)
        );
        let done = p.applied(
            &RefundUpdate::to(Success),
            datetime!(2024-05-01 10:00:02.5 UTC),
        );
        assert_eq!(
            done.succeeded_at,
            Some(datetime!(2024-05-01 10:00:02.5 UTC))
        );
    }
}

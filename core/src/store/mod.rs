//! Order storage: the [`OrderStore`] trait and its stores.
//!
//! - [`MemoryStore`]: in process, for tests and demos.
//! - `SqlxStore` (features `sqlite`, `postgres`, `mysql`): SQLite (bundled, WAL: the embedded
//!   default), PostgreSQL and MySQL/MariaDB, chosen at run time from the URL, with embedded
//!   migrations run on connect. Its tables are prefixed `wxpay_` so they live beside the app's.
//! - `testing` (feature `testing`): the conformance suite every store passes; run it on your own
//!   store too.
//!
//! # What a store guarantees
//!
//! - **Orders**: [`OrderStore::insert_if_absent`] never overwrites; `out_trade_no` is unique.
//! - **Transitions** are compare-and-set with the status machine's rule
//!   ([`Order::decide`](crate::order::Order::decide)): of any number of concurrent identical
//!   transitions exactly one is [`TransitionOutcome::Applied`], the others
//!   [`TransitionOutcome::AlreadyApplied`]. Transient database errors (deadlock, serialization
//!   failure, SQLite busy) are retried inside the store and do not leak.
//! - **Outbox**: the `PAID` transition writes a [`PaidEvent`] in the same database transaction,
//!   so a paid order always has exactly one event, delivered to the app at least once
//!   ([`OrderStore::undelivered_events`], [`OrderStore::mark_delivered`]).
//! - **Inbox** of notification ids. An id is recorded only once the notification's effect is
//!   durable: either atomically with the transition it caused
//!   ([`OrderStore::transition_with_notification`]), or by
//!   [`OrderStore::record_notification`] after the caller has finished handling it. So a
//!   notification whose handling failed is never taken for a duplicate when the upstream retries
//!   it, and one that was acknowledged is never lost. Concurrent duplicates are both handled;
//!   the transition's idempotency makes that harmless.

use std::error::Error as StdError;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::fields::{Amount, Attach, Currency, OutTradeNo};
use crate::order::{NewOrder, Order, OrderStatus, Transition};

mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use memory::MemoryStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use sql::{SqlxStore, SqlxStoreOptions};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No order has this `out_trade_no`.
    #[error("order {out_trade_no} not found")]
    NotFound {
        /// The order number asked for.
        out_trade_no: OutTradeNo,
    },
    /// The compare-and-set failed: the order is not in the expected status (and the transition
    /// has not already been applied). Re-read the order and decide again.
    #[error("order {out_trade_no} is {actual}, not {expected}")]
    Conflict {
        /// The order.
        out_trade_no: OutTradeNo,
        /// The status the caller expected.
        expected: OrderStatus,
        /// The status the order is in.
        actual: OrderStatus,
    },
    /// The status machine has no such move, e.g. `CREATED → PAID` or `PAID → CLOSED`.
    #[error("order {out_trade_no}: no {transition} transition from {from}")]
    Impossible {
        /// The order.
        out_trade_no: OutTradeNo,
        /// The status the transition was attempted from.
        from: OrderStatus,
        /// The transition's name ([`Transition::name`]).
        transition: &'static str,
    },
    /// No paid event has this id.
    #[error("paid event {event_id} not found")]
    EventNotFound {
        /// The event id asked for.
        event_id: String,
    },
    /// The store URL names a backend this build does not have, or cannot be parsed.
    #[error("unsupported store URL: {0}")]
    UnsupportedUrl(String),
    /// A stored value is not valid (edited by hand, or written by an incompatible version).
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
}

/// What [`OrderStore::insert_if_absent`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The order was stored, as returned.
    Inserted(Order),
    /// An order with this `out_trade_no` already existed; it is returned unchanged.
    Existing(Order),
}

impl InsertOutcome {
    /// The stored order, new or existing.
    pub fn order(&self) -> &Order {
        match self {
            InsertOutcome::Inserted(order) | InsertOutcome::Existing(order) => order,
        }
    }

    /// The stored order, new or existing.
    pub fn into_order(self) -> Order {
        match self {
            InsertOutcome::Inserted(order) | InsertOutcome::Existing(order) => order,
        }
    }
}

/// What a successful [`OrderStore::transition`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionOutcome {
    /// This call applied the transition; the order as it now is.
    Applied(Order),
    /// The transition had already been applied (by an earlier or concurrent call); nothing
    /// changed. The order as it is.
    AlreadyApplied(Order),
}

impl TransitionOutcome {
    /// The order after the call.
    pub fn order(&self) -> &Order {
        match self {
            TransitionOutcome::Applied(order) | TransitionOutcome::AlreadyApplied(order) => order,
        }
    }

    /// The order after the call.
    pub fn into_order(self) -> Order {
        match self {
            TransitionOutcome::Applied(order) | TransitionOutcome::AlreadyApplied(order) => order,
        }
    }

    /// Whether this call applied the transition.
    pub fn is_applied(&self) -> bool {
        matches!(self, TransitionOutcome::Applied(_))
    }
}

/// What [`OrderStore::record_notification`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOutcome {
    /// First time this notification id was recorded.
    New,
    /// The id was recorded before.
    Duplicate,
}

/// The outbox's record that an order was paid, for the app. Written in the same database
/// transaction as the `PAID` transition and delivered at least once: dedupe on `event_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidEvent {
    /// Unique id of the event: [`PaidEvent::id_for`] the order (`paid-{out_trade_no}`).
    pub event_id: String,
    /// The paid order.
    pub out_trade_no: OutTradeNo,
    /// The upstream's transaction id.
    pub transaction_id: String,
    /// The order's amount, in fen.
    pub amount: Amount,
    /// The order's currency.
    pub currency: Currency,
    /// The payer's openid as the notification reported it.
    pub payer: Option<String>,
    /// The order's merchant data.
    pub attach: Option<Attach>,
    /// When the payer paid, as the upstream reported it.
    pub paid_at: OffsetDateTime,
    /// When the event was written (the `PAID` transition's time).
    pub created_at: OffsetDateTime,
    /// When the app confirmed delivery ([`OrderStore::mark_delivered`]), if it did.
    pub delivered_at: Option<OffsetDateTime>,
}

impl PaidEvent {
    /// The id of the paid event of an order: `paid-{out_trade_no}`.
    pub fn id_for(out_trade_no: &OutTradeNo) -> String {
        format!("paid-{out_trade_no}")
    }

    /// The event for `order`, which has just become `PAID` at `now`.
    pub fn for_paid_order(order: &Order, now: OffsetDateTime) -> Result<Self, StoreError> {
        let missing = |what: &str| {
            StoreError::Corrupt(format!("paid order {} has no {what}", order.out_trade_no))
        };
        Ok(Self {
            event_id: Self::id_for(&order.out_trade_no),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id: order
                .transaction_id
                .clone()
                .ok_or_else(|| missing("transaction_id"))?,
            amount: order.amount,
            currency: order.currency.clone(),
            payer: order.payer.clone(),
            attach: order.attach.clone(),
            paid_at: order.paid_at.ok_or_else(|| missing("paid_at"))?,
            created_at: crate::order::truncate_to_millis(now),
            delivered_at: None,
        })
    }
}

/// A recorded disagreement between a notification (or query) and the stored order, e.g. a
/// different amount, appid or mchid. Kept for an operator; the order is not changed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The order the disagreement is about (it need not exist in the store).
    pub out_trade_no: OutTradeNo,
    /// What disagreed, in words for an operator.
    pub detail: String,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
}

/// Where orders, notification ids and paid events are kept.
///
/// Object-safe with `Send` futures: use it as `Arc<dyn OrderStore>`. See the
/// [module docs](self) for the guarantees every implementation gives; the conformance suite
/// (feature `testing`) checks them.
#[async_trait]
pub trait OrderStore: Send + Sync + std::fmt::Debug {
    /// Stores a new order in status `CREATED`, unless one with its `out_trade_no` exists: then
    /// that one is returned unchanged. Concurrent inserts of one number: exactly one inserts.
    async fn insert_if_absent(&self, order: NewOrder) -> Result<InsertOutcome, StoreError>;

    /// The order with this number, if any.
    async fn get(&self, out_trade_no: &OutTradeNo) -> Result<Option<Order>, StoreError>;

    /// Applies `transition` if the order is in `expected` (compare-and-set), by the rule of
    /// [`Order::decide`](crate::order::Order::decide). A `Paid` transition writes the order's
    /// [`PaidEvent`] in the same database transaction.
    ///
    /// Errors: [`StoreError::NotFound`], [`StoreError::Conflict`] (not in `expected`; nothing
    /// changed), [`StoreError::Impossible`].
    async fn transition(
        &self,
        out_trade_no: &OutTradeNo,
        expected: OrderStatus,
        transition: Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        self.transition_with_notification(out_trade_no, expected, transition, None)
            .await
    }

    /// [`OrderStore::transition`] that also records `notification_id` in the inbox in the same
    /// database transaction when the transition succeeds (applied or already applied), and
    /// records nothing when it fails, so the upstream's retry is handled again.
    async fn transition_with_notification(
        &self,
        out_trade_no: &OutTradeNo,
        expected: OrderStatus,
        transition: Transition,
        notification_id: Option<&str>,
    ) -> Result<TransitionOutcome, StoreError>;

    /// Records that the notification `event_id` (about `out_trade_no`, when known) has been
    /// handled. Call it only once the notification's effect is durable. The first call for an
    /// id is [`InboxOutcome::New`], every later or concurrent one [`InboxOutcome::Duplicate`].
    async fn record_notification(
        &self,
        event_id: &str,
        out_trade_no: Option<&OutTradeNo>,
    ) -> Result<InboxOutcome, StoreError>;

    /// Whether the notification `event_id` has been recorded as handled.
    async fn has_notification(&self, event_id: &str) -> Result<bool, StoreError>;

    /// Up to `limit` paid events not yet marked delivered, oldest first.
    async fn undelivered_events(&self, limit: u32) -> Result<Vec<PaidEvent>, StoreError>;

    /// The paid events of an order, delivered or not (at most one: the order is paid once).
    async fn events_for_order(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Vec<PaidEvent>, StoreError>;

    /// Marks a paid event delivered. Marking it again is a success that keeps the first
    /// delivery time; an unknown id is [`StoreError::EventNotFound`].
    async fn mark_delivered(&self, event_id: &str) -> Result<(), StoreError>;

    /// Up to `limit` orders in `status` last changed strictly before `updated_before`, least
    /// recently changed first: for reconciliation (e.g. `PENDING` orders whose payment state
    /// should be queried upstream, or closed).
    async fn list_stale(
        &self,
        status: OrderStatus,
        updated_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError>;

    /// Records a disagreement between what an upstream reported and the stored order. Does not
    /// change the order.
    async fn record_mismatch(
        &self,
        out_trade_no: &OutTradeNo,
        detail: &str,
    ) -> Result<(), StoreError>;

    /// The disagreements recorded about an order, oldest first.
    async fn mismatches(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Mismatch>, StoreError>;
}

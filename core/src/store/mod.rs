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
//! - **Outbox** of [`Event`]s: the `PAID` transition writes a [`PaidEvent`] in the same database
//!   transaction, so a paid order always has exactly one paid event, delivered to the app at least once
//!   ([`OrderStore::undelivered_events`], [`OrderStore::mark_delivered`]).
//! - **Refunds** are their own records ([`Refund`]). [`OrderStore::reserve_refund`] holds a
//!   refund's amount against its `PAID` order in one conditional write, so the refunds that are
//!   not `CLOSED` never exceed the amount paid, however many run at once;
//!   [`OrderStore::update_refund`] moves it by [`Refund::decide`] with the order's totals and its
//!   [`RefundEvent`] in one transaction.
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

use crate::fields::{OutRefundNo, OutTradeNo};
use crate::order::{NewOrder, Order, OrderStatus, Transition};
use crate::refund::{MAX_REFUNDS_PER_ORDER, NewRefund, Refund, RefundStatus, RefundUpdate};

mod event;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use event::{Event, PaidEvent, RefundEvent};
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
    /// The order is not `PAID`, so nothing can be refunded from it.
    #[error("order {out_trade_no} is {status}, not PAID: nothing to refund")]
    OrderNotPaid {
        /// The order.
        out_trade_no: OutTradeNo,
        /// Its status.
        status: OrderStatus,
    },
    /// The refund would take the order's refunds (those not `CLOSED`) over its paid amount.
    #[error(
        "refund of {requested} fen exceeds order {out_trade_no}: paid {paid} fen, {held} fen already held by refunds"
    )]
    RefundExceedsPaid {
        /// The order.
        out_trade_no: OutTradeNo,
        /// The order's amount, in fen.
        paid: u64,
        /// Fen its refunds that are not closed already hold.
        held: u64,
        /// Fen asked for.
        requested: u64,
    },
    /// The order has [`MAX_REFUNDS_PER_ORDER`] refunds.
    #[error("order {out_trade_no} already has {limit} refunds")]
    TooManyRefunds {
        /// The order.
        out_trade_no: OutTradeNo,
        /// The limit.
        limit: u32,
    },
    /// The refund number is taken by a refund of another order.
    #[error("refund number {out_refund_no} belongs to order {out_trade_no}")]
    RefundNumberTaken {
        /// The refund number.
        out_refund_no: OutRefundNo,
        /// The order whose refund has it.
        out_trade_no: OutTradeNo,
    },
    /// No refund has this number.
    #[error("refund {out_refund_no} not found")]
    RefundNotFound {
        /// The refund number asked for.
        out_refund_no: OutRefundNo,
    },
    /// The refund status machine has no such move (e.g. `SUCCESS → CLOSED`).
    #[error("refund {out_refund_no}: no move from {from} to {to}")]
    RefundImpossible {
        /// The refund.
        out_refund_no: OutRefundNo,
        /// Its status.
        from: RefundStatus,
        /// The status asked for.
        to: RefundStatus,
    },
    /// No event has this id.
    #[error("event {event_id} not found")]
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

/// What [`OrderStore::reserve_refund`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundReservation {
    /// The refund is stored `PROCESSING` and its amount held against the order.
    Reserved(Refund),
    /// A refund with this number existed for this order; it is returned unchanged and nothing
    /// more is held.
    Existing(Refund),
}

impl RefundReservation {
    /// The stored refund, new or existing.
    pub fn refund(&self) -> &Refund {
        match self {
            RefundReservation::Reserved(refund) | RefundReservation::Existing(refund) => refund,
        }
    }

    /// The stored refund, new or existing.
    pub fn into_refund(self) -> Refund {
        match self {
            RefundReservation::Reserved(refund) | RefundReservation::Existing(refund) => refund,
        }
    }
}

/// What a successful [`OrderStore::update_refund`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundUpdateOutcome {
    /// This call changed the refund; the refund as it now is.
    Applied(Refund),
    /// The change had already been made; nothing changed. The refund as it is.
    AlreadyApplied(Refund),
}

impl RefundUpdateOutcome {
    /// The refund after the call.
    pub fn refund(&self) -> &Refund {
        match self {
            RefundUpdateOutcome::Applied(refund) | RefundUpdateOutcome::AlreadyApplied(refund) => {
                refund
            }
        }
    }

    /// Whether this call made the change.
    pub fn is_applied(&self) -> bool {
        matches!(self, RefundUpdateOutcome::Applied(_))
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

/// Which orders [`OrderStore::list_orders`] lists; every field narrows, `None` does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only orders created at or after this.
    pub created_from: Option<OffsetDateTime>,
    /// Only orders created strictly before this.
    pub created_before: Option<OffsetDateTime>,
    /// Only orders whose number starts with this (compared as the database compares text).
    pub number_prefix: Option<String>,
}

/// A position in [`OrderStore::list_orders`]: the `(created_at, out_trade_no)` of the last
/// order of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    /// The order's creation time (whole milliseconds, as stored).
    pub created_at: OffsetDateTime,
    /// The order's number.
    pub out_trade_no: OutTradeNo,
}

impl ListCursor {
    /// The position just after `order` (older orders come next).
    pub fn of(order: &Order) -> Self {
        Self {
            created_at: order.created_at,
            out_trade_no: order.out_trade_no.clone(),
        }
    }
}

/// The cut-off times of [`OrderStore::prune`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneBefore {
    /// Inbox entries received before this are deleted.
    pub inbox: OffsetDateTime,
    /// Outbox events delivered before this are deleted.
    pub delivered_events: OffsetDateTime,
    /// Mismatches recorded before this are deleted.
    pub mismatches: OffsetDateTime,
}

/// What [`OrderStore::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Inbox entries.
    pub inbox: u64,
    /// Delivered outbox events.
    pub delivered_events: u64,
    /// Mismatches.
    pub mismatches: u64,
}

/// A position in the walk of [`OrderStore::list_stale_after`]: the `(updated_at,
/// out_trade_no)` of the last order seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCursor {
    /// The order's last change (whole milliseconds, as stored).
    pub updated_at: OffsetDateTime,
    /// The order's number, which breaks ties between orders changed in the same millisecond.
    pub out_trade_no: OutTradeNo,
}

impl OrderCursor {
    /// The position just after `order`.
    pub fn of(order: &Order) -> Self {
        Self {
            updated_at: order.updated_at,
            out_trade_no: order.out_trade_no.clone(),
        }
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

/// A notification recorded in the inbox: handled once, never again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The notification's id (the upstream's, or one derived from its content).
    pub event_id: String,
    /// The order it was about, when the notification named one the caller knew.
    pub out_trade_no: Option<OutTradeNo>,
    /// When it was first recorded.
    pub received_at: OffsetDateTime,
}

/// The reservation answer for a refund number already stored: the same refund again for the
/// same order, a taken number for another.
/// When a claim or lease taken at `now` for `ttl` expires (far in the future for a huge `ttl`).
pub(crate) fn later(now: OffsetDateTime, ttl: std::time::Duration) -> OffsetDateTime {
    time::Duration::try_from(ttl)
        .ok()
        .and_then(|ttl| now.checked_add(ttl))
        .unwrap_or(OffsetDateTime::new_utc(
            time::Date::MAX,
            time::Time::MIDNIGHT,
        ))
}

pub(crate) fn existing_refund(
    existing: &Refund,
    out_trade_no: &OutTradeNo,
) -> Result<RefundReservation, StoreError> {
    if &existing.out_trade_no == out_trade_no {
        Ok(RefundReservation::Existing(existing.clone()))
    } else {
        Err(StoreError::RefundNumberTaken {
            out_refund_no: existing.out_refund_no.clone(),
            out_trade_no: existing.out_trade_no.clone(),
        })
    }
}

/// Why `order` cannot hold `fen` more of refunds, if it cannot.
pub(crate) fn check_refundable(order: &Order, fen: u64) -> Result<(), StoreError> {
    if order.status != OrderStatus::Paid {
        return Err(StoreError::OrderNotPaid {
            out_trade_no: order.out_trade_no.clone(),
            status: order.status,
        });
    }
    if order.refund_count >= MAX_REFUNDS_PER_ORDER {
        return Err(StoreError::TooManyRefunds {
            out_trade_no: order.out_trade_no.clone(),
            limit: MAX_REFUNDS_PER_ORDER,
        });
    }
    if order.refund_held_fen.saturating_add(fen) > order.amount.fen() {
        return Err(StoreError::RefundExceedsPaid {
            out_trade_no: order.out_trade_no.clone(),
            paid: order.amount.fen(),
            held: order.refund_held_fen,
            requested: fen,
        });
    }
    Ok(())
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

    /// Up to `limit` events not yet marked delivered, oldest first.
    async fn undelivered_events(&self, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// The events of an order, delivered or not, oldest first: at most one paid event (the
    /// order is paid once) and one per refund reaching each of its statuses.
    async fn events_for_order(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Event>, StoreError>;

    /// Marks an event delivered. Marking it again is a success that keeps the first
    /// delivery time; an unknown id is [`StoreError::EventNotFound`].
    async fn mark_delivered(&self, event_id: &str) -> Result<(), StoreError>;

    /// Claims for `holder`, until `ttl` from now, up to `limit` undelivered events, oldest
    /// first: events nobody claimed, whose claim expired, or that `holder` claimed before. An
    /// event claimed by one holder is not returned to another until the claim expires, so
    /// several engine instances on one store each deliver different events. Each claim is a
    /// conditional write: of two concurrent claimers, one gets the event.
    async fn claim_undelivered_events(
        &self,
        holder: &str,
        ttl: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// Takes or renews the lease `name` for `holder`, valid `ttl` from now, unless another
    /// holder's lease on `name` is still valid. True when `holder` holds it now. Of several
    /// instances asking at once, one gets it: the reconciler runs on one instance at a time.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease `name`, so another holder may take it at once; nothing when
    /// the lease is not `holder`'s.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Up to `limit` orders in `status` last changed strictly before `updated_before`, least
    /// recently changed first: for reconciliation (e.g. `PENDING` orders whose payment state
    /// should be queried upstream, or closed). The first page of [`Self::list_stale_after`].
    async fn list_stale(
        &self,
        status: OrderStatus,
        updated_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        self.list_stale_after(status, updated_before, None, limit)
            .await
    }

    /// One page of a walk over the orders of [`Self::list_stale`]: ordered by `(updated_at,
    /// out_trade_no)` and, with a cursor, only those strictly after it. Passing the cursor of
    /// each page's last order ([`OrderCursor::of`]) visits every such order once, however many
    /// there are, so that a reconciler can resume where its budget stopped it.
    async fn list_stale_after(
        &self,
        status: OrderStatus,
        updated_before: OffsetDateTime,
        after: Option<&OrderCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError>;

    /// Up to `limit` orders matching `filter`, newest first (by `created_at`, then
    /// `out_trade_no`, both descending), only those strictly after `before` in that order when
    /// given: the operator's paged order list ([`ListCursor::of`] the last order of a page
    /// gives the next).
    async fn list_orders(
        &self,
        filter: &OrderFilter,
        before: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError>;

    /// Deletes the bookkeeping rows older than `before`: inbox entries received before
    /// `before.inbox`, outbox events delivered before `before.delivered_events` (undelivered
    /// ones are never deleted), mismatches recorded before `before.mismatches`. Orders and
    /// refunds are never deleted. A pruned inbox entry only means a very late repeat of that
    /// notification is processed again, which its transition answers as already applied.
    async fn prune(&self, before: &PruneBefore) -> Result<PruneReport, StoreError>;

    /// Records a disagreement between what an upstream reported and the stored order. Does not
    /// change the order.
    async fn record_mismatch(
        &self,
        out_trade_no: &OutTradeNo,
        detail: &str,
    ) -> Result<(), StoreError>;

    /// The disagreements recorded about an order, oldest first.
    async fn mismatches(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Mismatch>, StoreError>;

    /// Up to `limit` disagreements about any order, most recently recorded first: the
    /// operator's "needs attention" list.
    async fn recent_mismatches(&self, limit: u32) -> Result<Vec<Mismatch>, StoreError>;

    /// The notifications recorded about an order, oldest first (ties by id).
    async fn notifications_for_order(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Vec<InboxEntry>, StoreError>;

    /// How many orders are in each status, every status of [`OrderStatus::ALL`] once (in that
    /// order, zeros included): for metrics and the console.
    async fn count_orders_by_status(&self) -> Result<Vec<(OrderStatus, u64)>, StoreError>;

    /// Reserves a refund: stores it `PROCESSING` and adds its amount to the order's
    /// [`refund_held_fen`](Order::refund_held_fen), in one conditional write that holds only
    /// while the order is `PAID`, the held total stays within the order's amount, and the order
    /// has fewer than [`MAX_REFUNDS_PER_ORDER`] refunds.
    /// Of any number of concurrent reservations, exactly those that fit succeed.
    ///
    /// A refund number already stored for the same order is [`RefundReservation::Existing`]
    /// (nothing more is held), for another order [`StoreError::RefundNumberTaken`].
    ///
    /// Errors: [`StoreError::NotFound`], [`StoreError::OrderNotPaid`],
    /// [`StoreError::RefundExceedsPaid`], [`StoreError::TooManyRefunds`].
    async fn reserve_refund(&self, refund: NewRefund) -> Result<RefundReservation, StoreError>;

    /// Moves a refund as `update` says, by the rule of [`Refund::decide`], in one database
    /// transaction with the order's totals (`CLOSED` releases the held amount, `SUCCESS` adds
    /// to [`refunded_fen`](Order::refunded_fen)), its [`RefundEvent`] (for `SUCCESS`, `CLOSED`
    /// and `ABNORMAL`) and, when given, `notification_id` in the inbox (also when the update was
    /// already applied).
    ///
    /// Errors: [`StoreError::RefundNotFound`], [`StoreError::RefundImpossible`].
    async fn update_refund(
        &self,
        out_refund_no: &OutRefundNo,
        update: RefundUpdate,
        notification_id: Option<&str>,
    ) -> Result<RefundUpdateOutcome, StoreError>;

    /// The refund with this number, if any.
    async fn get_refund(&self, out_refund_no: &OutRefundNo) -> Result<Option<Refund>, StoreError>;

    /// The refunds of an order, oldest first.
    async fn refunds_for_order(&self, out_trade_no: &OutTradeNo)
    -> Result<Vec<Refund>, StoreError>;

    /// Up to `limit` refunds in `status` last changed strictly before `updated_before`, least
    /// recently changed first: for reconciliation of `PROCESSING` refunds.
    async fn list_stale_refunds(
        &self,
        status: RefundStatus,
        updated_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError>;
}

//! The outbox's events: what the app's hook receives, at least once each.
//!
//! One typed stream: an order was paid ([`PaidEvent`]), or one of its refunds succeeded, was
//! closed or went abnormal ([`RefundEvent`]). Each is written in the same database
//! transaction as the change it reports, so none is lost and none is invented.

use time::OffsetDateTime;

use super::StoreError;
use crate::fields::{Amount, Attach, Currency, OutRefundNo, OutTradeNo};
use crate::order::Order;
use crate::refund::{Refund, RefundStatus};

/// An event of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An order was paid.
    Paid(PaidEvent),
    /// A refund reached `SUCCESS`, `CLOSED` or `ABNORMAL`.
    Refund(RefundEvent),
}

impl Event {
    /// The event's unique id: dedupe on it.
    pub fn event_id(&self) -> &str {
        match self {
            Event::Paid(event) => &event.event_id,
            Event::Refund(event) => &event.event_id,
        }
    }

    /// The order the event is about.
    pub fn out_trade_no(&self) -> &OutTradeNo {
        match self {
            Event::Paid(event) => &event.out_trade_no,
            Event::Refund(event) => &event.out_trade_no,
        }
    }

    /// When the event was written (with the change it reports).
    pub fn created_at(&self) -> OffsetDateTime {
        match self {
            Event::Paid(event) => event.created_at,
            Event::Refund(event) => event.created_at,
        }
    }

    /// When the app confirmed delivery, if it did.
    pub fn delivered_at(&self) -> Option<OffsetDateTime> {
        match self {
            Event::Paid(event) => event.delivered_at,
            Event::Refund(event) => event.delivered_at,
        }
    }

    /// The paid event, when this is one.
    pub fn as_paid(&self) -> Option<&PaidEvent> {
        match self {
            Event::Paid(event) => Some(event),
            Event::Refund(_) => None,
        }
    }

    /// The refund event, when this is one.
    pub fn as_refund(&self) -> Option<&RefundEvent> {
        match self {
            Event::Refund(event) => Some(event),
            Event::Paid(_) => None,
        }
    }
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
    /// When the app confirmed delivery ([`OrderStore::mark_delivered`](super::OrderStore::mark_delivered)), if it did.
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

/// The outbox's record that a refund reached `SUCCESS`, `CLOSED` or `ABNORMAL`. Written in the
/// same database transaction as that change; delivered at least once: dedupe on `event_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundEvent {
    /// Unique id: [`RefundEvent::id_for`] (`refund-{out_refund_no}-{STATUS}`).
    pub event_id: String,
    /// The refunded order.
    pub out_trade_no: OutTradeNo,
    /// The refund.
    pub out_refund_no: OutRefundNo,
    /// The order's upstream transaction id.
    pub transaction_id: String,
    /// The upstream's refund id, when it gave one.
    pub refund_id: Option<String>,
    /// The refund's amount, in fen.
    pub amount: Amount,
    /// The order's currency.
    pub currency: Currency,
    /// The status the refund reached.
    pub status: RefundStatus,
    /// When the event was written.
    pub created_at: OffsetDateTime,
    /// When the app confirmed delivery, if it did.
    pub delivered_at: Option<OffsetDateTime>,
}

impl RefundEvent {
    /// The id of the event of `out_refund_no` reaching `status`.
    pub fn id_for(out_refund_no: &OutRefundNo, status: RefundStatus) -> String {
        format!("refund-{out_refund_no}-{status}")
    }

    /// The event for `refund` of `order`, which has just reached its status at `now`; `None`
    /// for a status the app is not told of (`PROCESSING`).
    pub fn for_refund(
        order: &Order,
        refund: &Refund,
        now: OffsetDateTime,
    ) -> Result<Option<Self>, StoreError> {
        if refund.status == RefundStatus::Processing {
            return Ok(None);
        }
        let transaction_id = order.transaction_id.clone().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "refunded order {} has no transaction_id",
                order.out_trade_no
            ))
        })?;
        Ok(Some(Self {
            event_id: Self::id_for(&refund.out_refund_no, refund.status),
            out_trade_no: order.out_trade_no.clone(),
            out_refund_no: refund.out_refund_no.clone(),
            transaction_id,
            refund_id: refund.refund_id.clone(),
            amount: refund.amount,
            currency: order.currency.clone(),
            status: refund.status,
            created_at: crate::order::truncate_to_millis(now),
            delivered_at: None,
        }))
    }
}

//! The in-process store.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    Event, InboxEntry, InboxOutcome, InsertOutcome, ListCursor, Mismatch, OrderCursor, OrderFilter,
    OrderStore, PaidEvent, PruneBefore, PruneReport, RefundEvent, RefundReservation,
    RefundUpdateOutcome, StoreError, TransitionOutcome,
};
use crate::clock::Clock;
use crate::fields::{OutRefundNo, OutTradeNo};
use crate::order::{Decision, NewOrder, Order, OrderStatus, Transition, truncate_to_millis};
use crate::refund::{NewRefund, Refund, RefundDecision, RefundStatus, RefundUpdate};

/// An [`OrderStore`] in memory, behind one mutex: for tests, demos and the sandbox.
///
/// Clones share the same data, so a clone is a "reopened" store; nothing survives the process.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct State {
    orders: HashMap<OutTradeNo, Order>,
    /// Notifications by id, with their order and when each was first received.
    inbox: HashMap<String, InboxEntry>,
    outbox: Vec<Event>,
    mismatches: Vec<Mismatch>,
    /// Refunds in the order they were reserved.
    refunds: Vec<Refund>,
    /// Who claimed each outbox event, and until when.
    claims: HashMap<String, Claim>,
    /// Named leases and their holders.
    leases: HashMap<String, Claim>,
}

/// A holder's claim on an event, or lease on a name, valid until a time.
struct Claim {
    holder: String,
    until: OffsetDateTime,
}

impl Claim {
    fn lets(&self, holder: &str, now: OffsetDateTime) -> bool {
        self.holder == holder || self.until < now
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(crate::clock::system())
    }

    /// An empty store that stamps times from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every change is
        // computed first and written with infallible operations, so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> OffsetDateTime {
        truncate_to_millis(self.clock.now())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("orders", &state.orders.len())
            .field("inbox", &state.inbox.len())
            .field("outbox", &state.outbox.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl OrderStore for MemoryStore {
    async fn insert_if_absent(&self, order: NewOrder) -> Result<InsertOutcome, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        if let Some(existing) = state.orders.get(&order.out_trade_no) {
            return Ok(InsertOutcome::Existing(existing.clone()));
        }
        let order = order.into_order(now);
        state
            .orders
            .insert(order.out_trade_no.clone(), order.clone());
        Ok(InsertOutcome::Inserted(order))
    }

    async fn get(&self, out_trade_no: &OutTradeNo) -> Result<Option<Order>, StoreError> {
        Ok(self.lock().orders.get(out_trade_no).cloned())
    }

    async fn transition_with_notification(
        &self,
        out_trade_no: &OutTradeNo,
        expected: OrderStatus,
        transition: Transition,
        notification_id: Option<&str>,
    ) -> Result<TransitionOutcome, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let current = state
            .orders
            .get(out_trade_no)
            .ok_or_else(|| StoreError::NotFound {
                out_trade_no: out_trade_no.clone(),
            })?;
        let outcome = match current.decide(expected, &transition)? {
            Decision::AlreadyApplied => TransitionOutcome::AlreadyApplied(current.clone()),
            Decision::Apply => {
                let next = current.applied(&transition, now);
                let event = match transition {
                    Transition::Paid { .. } | Transition::PaidUnprepared { .. } => {
                        Some(PaidEvent::for_paid_order(&next, now)?)
                    }
                    _ => None,
                };
                if let Some(event) = event {
                    state.outbox.push(Event::Paid(event));
                }
                state.orders.insert(out_trade_no.clone(), next.clone());
                TransitionOutcome::Applied(next)
            }
        };
        if let Some(id) = notification_id {
            record_inbox(&mut state, id, Some(out_trade_no), now);
        }
        Ok(outcome)
    }

    async fn record_notification(
        &self,
        event_id: &str,
        out_trade_no: Option<&OutTradeNo>,
    ) -> Result<InboxOutcome, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        Ok(if record_inbox(&mut state, event_id, out_trade_no, now) {
            InboxOutcome::New
        } else {
            InboxOutcome::Duplicate
        })
    }

    async fn has_notification(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().inbox.contains_key(event_id))
    }

    async fn undelivered_events(&self, limit: u32) -> Result<Vec<Event>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .lock()
            .outbox
            .iter()
            .filter(|event| event.delivered_at().is_none())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn events_for_order(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .lock()
            .outbox
            .iter()
            .filter(|event| event.out_trade_no() == out_trade_no)
            .cloned()
            .collect())
    }

    async fn mark_delivered(&self, event_id: &str) -> Result<(), StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let event = state
            .outbox
            .iter_mut()
            .find(|event| event.event_id() == event_id)
            .ok_or_else(|| StoreError::EventNotFound {
                event_id: event_id.to_owned(),
            })?;
        match event {
            Event::Paid(event) => event.delivered_at.get_or_insert(now),
            Event::Refund(event) => event.delivered_at.get_or_insert(now),
        };
        state.claims.remove(event_id);
        Ok(())
    }

    async fn claim_undelivered_events(
        &self,
        holder: &str,
        ttl: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let now = self.now();
        let until = super::later(now, ttl);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut state = self.lock();
        let State { outbox, claims, .. } = &mut *state;
        let claimed: Vec<Event> = outbox
            .iter()
            .filter(|event| event.delivered_at().is_none())
            .filter(|event| {
                claims
                    .get(event.event_id())
                    .is_none_or(|claim| claim.lets(holder, now))
            })
            .take(limit)
            .cloned()
            .collect();
        for event in &claimed {
            claims.insert(
                event.event_id().to_owned(),
                Claim {
                    holder: holder.to_owned(),
                    until,
                },
            );
        }
        Ok(claimed)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        if state
            .leases
            .get(name)
            .is_some_and(|lease| !lease.lets(holder, now))
        {
            return Ok(false);
        }
        state.leases.insert(
            name.to_owned(),
            Claim {
                holder: holder.to_owned(),
                until: super::later(now, ttl),
            },
        );
        Ok(true)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .leases
            .get(name)
            .is_some_and(|lease| lease.holder == holder)
        {
            state.leases.remove(name);
        }
        Ok(())
    }

    async fn list_stale_after(
        &self,
        status: OrderStatus,
        updated_before: OffsetDateTime,
        after: Option<&OrderCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let past_cursor = |order: &Order| {
            after.is_none_or(|cursor| {
                (order.updated_at, &order.out_trade_no) > (cursor.updated_at, &cursor.out_trade_no)
            })
        };
        let mut found: Vec<Order> = self
            .lock()
            .orders
            .values()
            .filter(|order| {
                order.status == status && order.updated_at < updated_before && past_cursor(order)
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.updated_at, &a.out_trade_no).cmp(&(b.updated_at, &b.out_trade_no)));
        found.truncate(limit);
        Ok(found)
    }

    async fn list_orders(
        &self,
        filter: &OrderFilter,
        before: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let matches = |order: &Order| {
            filter.status.is_none_or(|status| order.status == status)
                && filter
                    .created_from
                    .is_none_or(|from| order.created_at >= from)
                && filter
                    .created_before
                    .is_none_or(|before| order.created_at < before)
                && filter
                    .number_prefix
                    .as_deref()
                    .is_none_or(|prefix| order.out_trade_no.as_str().starts_with(prefix))
                && before.is_none_or(|cursor| {
                    (order.created_at, &order.out_trade_no)
                        < (cursor.created_at, &cursor.out_trade_no)
                })
        };
        let mut found: Vec<Order> = self
            .lock()
            .orders
            .values()
            .filter(|order| matches(order))
            .cloned()
            .collect();
        found.sort_by(|a, b| (b.created_at, &b.out_trade_no).cmp(&(a.created_at, &a.out_trade_no)));
        found.truncate(limit);
        Ok(found)
    }

    async fn prune(&self, before: &PruneBefore) -> Result<PruneReport, StoreError> {
        let mut state = self.lock();
        let count = |before: usize, after: usize| u64::try_from(before - after).unwrap_or(u64::MAX);
        let inbox = state.inbox.len();
        state
            .inbox
            .retain(|_, entry| entry.received_at >= before.inbox);
        let outbox = state.outbox.len();
        state.outbox.retain(|event| {
            event
                .delivered_at()
                .is_none_or(|delivered| delivered >= before.delivered_events)
        });
        let mismatches = state.mismatches.len();
        state
            .mismatches
            .retain(|mismatch| mismatch.recorded_at >= before.mismatches);
        Ok(PruneReport {
            inbox: count(inbox, state.inbox.len()),
            delivered_events: count(outbox, state.outbox.len()),
            mismatches: count(mismatches, state.mismatches.len()),
        })
    }

    async fn record_mismatch(
        &self,
        out_trade_no: &OutTradeNo,
        detail: &str,
    ) -> Result<(), StoreError> {
        let recorded_at = self.now();
        self.lock().mismatches.push(Mismatch {
            out_trade_no: out_trade_no.clone(),
            detail: detail.to_owned(),
            recorded_at,
        });
        Ok(())
    }

    async fn mismatches(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Mismatch>, StoreError> {
        Ok(self
            .lock()
            .mismatches
            .iter()
            .filter(|m| &m.out_trade_no == out_trade_no)
            .cloned()
            .collect())
    }

    async fn recent_mismatches(&self, limit: u32) -> Result<Vec<Mismatch>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // Recorded in order, so the newest are last.
        Ok(self
            .lock()
            .mismatches
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn notifications_for_order(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let mut found: Vec<InboxEntry> = self
            .lock()
            .inbox
            .values()
            .filter(|entry| entry.out_trade_no.as_ref() == Some(out_trade_no))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.received_at, &a.event_id).cmp(&(b.received_at, &b.event_id)));
        Ok(found)
    }

    async fn count_orders_by_status(&self) -> Result<Vec<(OrderStatus, u64)>, StoreError> {
        let state = self.lock();
        Ok(OrderStatus::ALL
            .iter()
            .map(|&status| {
                let n = state.orders.values().filter(|o| o.status == status).count();
                (status, u64::try_from(n).unwrap_or(u64::MAX))
            })
            .collect())
    }

    async fn reserve_refund(&self, refund: NewRefund) -> Result<RefundReservation, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        if let Some(existing) = state
            .refunds
            .iter()
            .find(|r| r.out_refund_no == refund.out_refund_no)
        {
            return super::existing_refund(existing, &refund.out_trade_no);
        }
        let order =
            state
                .orders
                .get_mut(&refund.out_trade_no)
                .ok_or_else(|| StoreError::NotFound {
                    out_trade_no: refund.out_trade_no.clone(),
                })?;
        super::check_refundable(order, refund.amount.fen())?;
        order.refund_held_fen += refund.amount.fen();
        order.refund_count += 1;
        order.updated_at = now;
        let refund = refund.into_refund(now);
        state.refunds.push(refund.clone());
        Ok(RefundReservation::Reserved(refund))
    }

    async fn update_refund(
        &self,
        out_refund_no: &OutRefundNo,
        update: RefundUpdate,
        notification_id: Option<&str>,
    ) -> Result<RefundUpdateOutcome, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let state = &mut *state;
        let index = state
            .refunds
            .iter()
            .position(|r| &r.out_refund_no == out_refund_no)
            .ok_or_else(|| StoreError::RefundNotFound {
                out_refund_no: out_refund_no.clone(),
            })?;
        let current = &state.refunds[index];
        let outcome = match current.decide(&update)? {
            RefundDecision::AlreadyApplied => RefundUpdateOutcome::AlreadyApplied(current.clone()),
            RefundDecision::Apply => {
                let next = current.applied(&update, now);
                let (held, refunded) = current.order_effect(&update);
                let order = state.orders.get(&next.out_trade_no).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "refund {out_refund_no} of missing order {}",
                        next.out_trade_no
                    ))
                })?;
                let mut order = order.clone();
                order.refund_held_fen = add_fen(order.refund_held_fen, held)?;
                order.refunded_fen = add_fen(order.refunded_fen, refunded)?;
                order.updated_at = now;
                let event = if next.status == current.status {
                    None
                } else {
                    RefundEvent::for_refund(&order, &next, now)?
                };
                if let Some(event) = event {
                    state.outbox.push(Event::Refund(event));
                }
                state.orders.insert(order.out_trade_no.clone(), order);
                state.refunds[index] = next.clone();
                RefundUpdateOutcome::Applied(next)
            }
        };
        if let Some(id) = notification_id {
            let out_trade_no = state.refunds[index].out_trade_no.clone();
            record_inbox(state, id, Some(&out_trade_no), now);
        }
        Ok(outcome)
    }

    async fn get_refund(&self, out_refund_no: &OutRefundNo) -> Result<Option<Refund>, StoreError> {
        Ok(self
            .lock()
            .refunds
            .iter()
            .find(|r| &r.out_refund_no == out_refund_no)
            .cloned())
    }

    async fn refunds_for_order(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Vec<Refund>, StoreError> {
        Ok(self
            .lock()
            .refunds
            .iter()
            .filter(|r| &r.out_trade_no == out_trade_no)
            .cloned()
            .collect())
    }

    async fn list_stale_refunds(
        &self,
        status: RefundStatus,
        updated_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut found: Vec<Refund> = self
            .lock()
            .refunds
            .iter()
            .filter(|r| r.status == status && r.updated_at < updated_before)
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            (a.updated_at, &a.out_refund_no).cmp(&(b.updated_at, &b.out_refund_no))
        });
        found.truncate(limit);
        Ok(found)
    }
}

fn add_fen(total: u64, change: i64) -> Result<u64, StoreError> {
    total
        .checked_add_signed(change)
        .ok_or_else(|| StoreError::Corrupt(format!("refund total {total} {change:+} fen")))
}

/// Records `event_id` unless it is there already; whether it was new.
fn record_inbox(
    state: &mut State,
    event_id: &str,
    out_trade_no: Option<&OutTradeNo>,
    now: OffsetDateTime,
) -> bool {
    if state.inbox.contains_key(event_id) {
        return false;
    }
    state.inbox.insert(
        event_id.to_owned(),
        InboxEntry {
            event_id: event_id.to_owned(),
            out_trade_no: out_trade_no.cloned(),
            received_at: now,
        },
    );
    true
}

//! The conformance suite on [`MemoryStore`].
#![cfg(feature = "testing")]

use std::sync::Arc;

use wxpay_core::store::testing::{OpenStore, WithClock};
use wxpay_core::store::{MemoryStore, OrderStore};

/// Every call opens the same store: clones share their data.
fn opener() -> Option<impl OpenStore> {
    let store = MemoryStore::new();
    Some(WithClock {
        open: move || {
            let store = store.clone();
            async move { Arc::new(store) as Arc<dyn OrderStore> }
        },
        // A store of its own: the retention case needs only its own rows.
        open_with_clock: |clock: Arc<dyn wxpay_core::clock::Clock>| async move {
            Arc::new(MemoryStore::with_clock(clock)) as Arc<dyn OrderStore>
        },
    })
}

wxpay_core::store_conformance_tests!(opener());

#[tokio::test]
async fn run_all_runs_every_case() {
    let open = opener().expect("memory store");
    wxpay_core::store::testing::run_all(&open).await;
    assert_eq!(wxpay_core::store::testing::CASES.len(), 34);
}

/// The suite has teeth: a store that checks the status and then writes without holding a lock
/// (a check-then-act race) fails the concurrency case.
mod racy {
    use std::sync::Arc;

    use async_trait::async_trait;
    use time::OffsetDateTime;
    use wxpay_core::fields::{OutRefundNo, OutTradeNo};
    use wxpay_core::order::{Decision, NewOrder, Order, OrderStatus, Transition};
    use wxpay_core::refund::{NewRefund, Refund, RefundStatus, RefundUpdate};
    use wxpay_core::store::{
        Event, InboxOutcome, InsertOutcome, MemoryStore, Mismatch, OrderStore, RefundReservation,
        RefundUpdateOutcome, StoreError, TransitionOutcome,
    };

    /// Reports `Applied` whenever its (stale) read said so.
    #[derive(Debug, Clone, Default)]
    struct RacyStore(MemoryStore);

    #[async_trait]
    impl OrderStore for RacyStore {
        async fn insert_if_absent(&self, order: NewOrder) -> Result<InsertOutcome, StoreError> {
            self.0.insert_if_absent(order).await
        }
        async fn get(&self, no: &OutTradeNo) -> Result<Option<Order>, StoreError> {
            self.0.get(no).await
        }
        async fn transition_with_notification(
            &self,
            no: &OutTradeNo,
            expected: OrderStatus,
            transition: Transition,
            notification_id: Option<&str>,
        ) -> Result<TransitionOutcome, StoreError> {
            let before = self.0.get(no).await?.expect("order");
            let decision = before.decide(expected, &transition)?;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let after = self
                .0
                .transition_with_notification(no, expected, transition, notification_id)
                .await?
                .into_order();
            Ok(match decision {
                Decision::Apply => TransitionOutcome::Applied(after),
                Decision::AlreadyApplied => TransitionOutcome::AlreadyApplied(after),
            })
        }
        async fn record_notification(
            &self,
            id: &str,
            no: Option<&OutTradeNo>,
        ) -> Result<InboxOutcome, StoreError> {
            self.0.record_notification(id, no).await
        }
        async fn has_notification(&self, id: &str) -> Result<bool, StoreError> {
            self.0.has_notification(id).await
        }
        async fn undelivered_events(&self, limit: u32) -> Result<Vec<Event>, StoreError> {
            self.0.undelivered_events(limit).await
        }
        async fn events_for_order(&self, no: &OutTradeNo) -> Result<Vec<Event>, StoreError> {
            self.0.events_for_order(no).await
        }
        async fn mark_delivered(&self, id: &str) -> Result<(), StoreError> {
            self.0.mark_delivered(id).await
        }
        async fn claim_undelivered_events(
            &self,
            holder: &str,
            ttl: std::time::Duration,
            limit: u32,
        ) -> Result<Vec<Event>, StoreError> {
            self.0.claim_undelivered_events(holder, ttl, limit).await
        }
        async fn acquire_lease(
            &self,
            name: &str,
            holder: &str,
            ttl: std::time::Duration,
        ) -> Result<bool, StoreError> {
            self.0.acquire_lease(name, holder, ttl).await
        }
        async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
            self.0.release_lease(name, holder).await
        }
        async fn list_orders(
            &self,
            filter: &wxpay_core::store::OrderFilter,
            before: Option<&wxpay_core::store::ListCursor>,
            limit: u32,
        ) -> Result<Vec<Order>, StoreError> {
            self.0.list_orders(filter, before, limit).await
        }
        async fn prune(
            &self,
            before: &wxpay_core::store::PruneBefore,
        ) -> Result<wxpay_core::store::PruneReport, StoreError> {
            self.0.prune(before).await
        }
        async fn list_stale_after(
            &self,
            status: OrderStatus,
            before: OffsetDateTime,
            after: Option<&wxpay_core::store::OrderCursor>,
            limit: u32,
        ) -> Result<Vec<Order>, StoreError> {
            self.0.list_stale_after(status, before, after, limit).await
        }
        async fn record_mismatch(&self, no: &OutTradeNo, detail: &str) -> Result<(), StoreError> {
            self.0.record_mismatch(no, detail).await
        }
        async fn mismatches(&self, no: &OutTradeNo) -> Result<Vec<Mismatch>, StoreError> {
            self.0.mismatches(no).await
        }
        async fn recent_mismatches(&self, limit: u32) -> Result<Vec<Mismatch>, StoreError> {
            self.0.recent_mismatches(limit).await
        }
        async fn notifications_for_order(
            &self,
            no: &OutTradeNo,
        ) -> Result<Vec<wxpay_core::store::InboxEntry>, StoreError> {
            self.0.notifications_for_order(no).await
        }
        async fn count_orders_by_status(
            &self,
        ) -> Result<Vec<(wxpay_core::order::OrderStatus, u64)>, StoreError> {
            self.0.count_orders_by_status().await
        }
        async fn reserve_refund(&self, refund: NewRefund) -> Result<RefundReservation, StoreError> {
            self.0.reserve_refund(refund).await
        }
        async fn update_refund(
            &self,
            no: &OutRefundNo,
            update: RefundUpdate,
            notification_id: Option<&str>,
        ) -> Result<RefundUpdateOutcome, StoreError> {
            self.0.update_refund(no, update, notification_id).await
        }
        async fn get_refund(&self, no: &OutRefundNo) -> Result<Option<Refund>, StoreError> {
            self.0.get_refund(no).await
        }
        async fn refunds_for_order(&self, no: &OutTradeNo) -> Result<Vec<Refund>, StoreError> {
            self.0.refunds_for_order(no).await
        }
        async fn list_stale_refunds(
            &self,
            status: RefundStatus,
            before: OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<Refund>, StoreError> {
            self.0.list_stale_refunds(status, before, limit).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[should_panic(expected = "assertion `left == right` failed")]
    async fn the_concurrency_case_catches_a_check_then_act_store() {
        let store = RacyStore::default();
        let open = move || {
            let store = store.clone();
            async move { Arc::new(store) as Arc<dyn OrderStore> }
        };
        wxpay_core::store::testing::concurrent_payments_have_one_winner(&open).await;
    }
}

//! The [`OrderStore`] conformance suite (feature `testing`).
//!
//! Every store of this crate passes it, and you can run it on your own store. Each case is a
//! `pub async fn` taking an [`OpenStore`]: something that opens the store under test, where
//! every call opens the **same** data (the second call of [`data_survives_reopening`] is a
//! reopen). Cases use fresh order numbers ([`OutTradeNo::generate`]) and never delete anything,
//! so they can share a database with each other, with earlier runs and with other tables; they
//! mark the paid events they create delivered and leave no order `PENDING`.
//!
//! The quickest way is the [`store_conformance_tests!`](crate::store_conformance_tests) macro,
//! which expands to one `#[tokio::test]` per case (your crate needs `tokio` with the `macros`
//! and `rt-multi-thread` features):
//!
//! ```ignore
//! use std::sync::Arc;
//! use wxpay_core::store::{MemoryStore, OrderStore};
//!
//! fn opener() -> Option<impl wxpay_core::store::testing::OpenStore> {
//!     let store = MemoryStore::new();
//!     Some(move || {
//!         let store = store.clone();
//!         async move { Arc::new(store) as Arc<dyn OrderStore> }
//!     })
//! }
//!
//! wxpay_core::store_conformance_tests!(opener());
//! ```
//!
//! The argument is evaluated once per test; `None` skips the test (e.g. when the database URL is
//! not configured). Or call [`run_all`].
//!
//! The cases panic on failure, like any test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{
    Event, InboxOutcome, InsertOutcome, ListCursor, OrderCursor, OrderFilter, OrderStore,
    PaidEvent, PruneBefore, RefundEvent, RefundReservation, RefundUpdateOutcome, StoreError,
    TransitionOutcome,
};
use crate::clock::{Clock, ManualClock};
use crate::fields::{
    Amount, Attach, Currency, Description, OpenId, OutRefundNo, OutTradeNo, RefundReason,
};
use crate::order::{NewOrder, Order, OrderStatus, Transition, truncate_to_millis};
use crate::refund::{NewRefund, Refund, RefundStatus, RefundUpdate};

/// The future of [`OpenStore::open_with_clock`].
pub type MaybeOpening<'a> = Pin<Box<dyn Future<Output = Option<Arc<dyn OrderStore>>> + Send + 'a>>;

/// Opens the store under test. Every call must open the same underlying data.
///
/// Implemented for every `Fn() -> impl Future<Output = Arc<dyn OrderStore>>`.
pub trait OpenStore: Send + Sync {
    /// Opens (or reopens) the store.
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn OrderStore>> + Send + '_>>;

    /// Opens the same data stamping times from `clock`, for the retention case, which needs
    /// rows from the past so that pruning them cannot touch other tests' rows in a shared
    /// database. `None` (the default, and what a plain closure gives) when the store cannot:
    /// the case then checks only that pruning keeps recent rows. See [`WithClock`].
    fn open_with_clock(&self, clock: Arc<dyn Clock>) -> MaybeOpening<'_> {
        let _ = clock;
        Box::pin(std::future::ready(None))
    }
}

/// An [`OpenStore`] from two functions: one that opens the store, one that opens it on a given
/// clock ([`OpenStore::open_with_clock`]).
pub struct WithClock<F, G> {
    /// Opens the store.
    pub open: F,
    /// Opens the store stamping times from the clock.
    pub open_with_clock: G,
}

impl<F, Fut, G, GFut> OpenStore for WithClock<F, G>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Arc<dyn OrderStore>> + Send + 'static,
    G: Fn(Arc<dyn Clock>) -> GFut + Send + Sync,
    GFut: Future<Output = Arc<dyn OrderStore>> + Send + 'static,
{
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn OrderStore>> + Send + '_>> {
        Box::pin((self.open)())
    }

    fn open_with_clock(&self, clock: Arc<dyn Clock>) -> MaybeOpening<'_> {
        let opening = (self.open_with_clock)(clock);
        Box::pin(async move { Some(opening.await) })
    }
}

impl<F, Fut> OpenStore for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Arc<dyn OrderStore>> + Send + 'static,
{
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn OrderStore>> + Send + '_>> {
        Box::pin(self())
    }
}

/// The names of all cases, in the order [`run_all`] runs them.
pub const CASES: &[&str] = &[
    "insert_and_get",
    "insert_if_absent_keeps_existing",
    "concurrent_inserts_have_one_winner",
    "lifecycle_to_paid_and_refunded",
    "repeated_transitions_are_already_applied",
    "impossible_transitions_are_refused",
    "a_created_order_is_paid_only_as_unprepared",
    "compare_and_set_conflict",
    "prepay_id_can_be_replaced",
    "payment_after_close_is_recorded",
    "concurrent_payments_have_one_winner",
    "concurrent_close_and_pay_have_one_winner",
    "inbox_dedupes",
    "inbox_dedupes_concurrently",
    "notification_recorded_with_transition",
    "outbox_delivery",
    "events_are_claimed_by_one_holder_at_a_time",
    "a_lease_has_one_holder_until_it_expires",
    "list_stale_orders",
    "stale_order_pages_visit_each_order_once",
    "pruning_deletes_old_bookkeeping_only",
    "orders_are_listed_newest_first_with_filters",
    "mismatches_are_recorded",
    "recent_mismatches_are_newest_first",
    "notifications_are_listed_per_order",
    "orders_are_counted_by_status",
    "data_survives_reopening",
    "refund_lifecycle",
    "abnormal_refund_holds_its_amount",
    "refund_number_is_idempotent",
    "refund_of_unpaid_order_is_refused",
    "concurrent_refunds_never_exceed_paid",
    "refunds_per_order_are_limited",
    "list_stale_refunds",
];

/// Runs every case, in order.
pub async fn run_all(open: &dyn OpenStore) {
    insert_and_get(open).await;
    insert_if_absent_keeps_existing(open).await;
    concurrent_inserts_have_one_winner(open).await;
    lifecycle_to_paid_and_refunded(open).await;
    repeated_transitions_are_already_applied(open).await;
    impossible_transitions_are_refused(open).await;
    a_created_order_is_paid_only_as_unprepared(open).await;
    compare_and_set_conflict(open).await;
    prepay_id_can_be_replaced(open).await;
    payment_after_close_is_recorded(open).await;
    concurrent_payments_have_one_winner(open).await;
    concurrent_close_and_pay_have_one_winner(open).await;
    inbox_dedupes(open).await;
    inbox_dedupes_concurrently(open).await;
    notification_recorded_with_transition(open).await;
    outbox_delivery(open).await;
    events_are_claimed_by_one_holder_at_a_time(open).await;
    a_lease_has_one_holder_until_it_expires(open).await;
    list_stale_orders(open).await;
    stale_order_pages_visit_each_order_once(open).await;
    pruning_deletes_old_bookkeeping_only(open).await;
    orders_are_listed_newest_first_with_filters(open).await;
    mismatches_are_recorded(open).await;
    recent_mismatches_are_newest_first(open).await;
    notifications_are_listed_per_order(open).await;
    orders_are_counted_by_status(open).await;
    data_survives_reopening(open).await;
    refund_lifecycle(open).await;
    abnormal_refund_holds_its_amount(open).await;
    refund_number_is_idempotent(open).await;
    refund_of_unpaid_order_is_refused(open).await;
    concurrent_refunds_never_exceed_paid(open).await;
    refunds_per_order_are_limited(open).await;
    list_stale_refunds(open).await;
}

/// Expands to one `#[tokio::test]` per conformance case, each running it on the store that
/// `$opener` (an expression of type `Option<impl OpenStore>`, evaluated per test; `None` skips)
/// opens. See [`store::testing`](crate::store::testing).
#[macro_export]
macro_rules! store_conformance_tests {
    ($opener:expr) => {
        $crate::store_conformance_tests!(@cases $opener;
            insert_and_get,
            insert_if_absent_keeps_existing,
            concurrent_inserts_have_one_winner,
            lifecycle_to_paid_and_refunded,
            repeated_transitions_are_already_applied,
            impossible_transitions_are_refused,
            a_created_order_is_paid_only_as_unprepared,
            compare_and_set_conflict,
            prepay_id_can_be_replaced,
            payment_after_close_is_recorded,
            concurrent_payments_have_one_winner,
            concurrent_close_and_pay_have_one_winner,
            inbox_dedupes,
            inbox_dedupes_concurrently,
            notification_recorded_with_transition,
            outbox_delivery,
            events_are_claimed_by_one_holder_at_a_time,
            a_lease_has_one_holder_until_it_expires,
            list_stale_orders,
            stale_order_pages_visit_each_order_once,
            pruning_deletes_old_bookkeeping_only,
            orders_are_listed_newest_first_with_filters,
            mismatches_are_recorded,
            recent_mismatches_are_newest_first,
            notifications_are_listed_per_order,
            orders_are_counted_by_status,
            data_survives_reopening,
            refund_lifecycle,
            abnormal_refund_holds_its_amount,
            refund_number_is_idempotent,
            refund_of_unpaid_order_is_refused,
            concurrent_refunds_never_exceed_paid,
            refunds_per_order_are_limited,
            list_stale_refunds,
        );
    };
    (@cases $opener:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                if let ::std::option::Option::Some(opener) = $opener {
                    $crate::store::testing::$case(&opener).await;
                }
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A new order with a fresh number and every optional field set (a non-ASCII description, an
/// attach), so round trips are checked on all columns.
pub fn sample_order() -> NewOrder {
    NewOrder {
        out_trade_no: OutTradeNo::generate(),
        provider: "v3".to_owned(),
        appid: Some("wxd678efh567hg6787".to_owned()),
        mchid: Some("1230000109".to_owned()),
        openid: OpenId::try_from("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").unwrap(),
        amount: Amount::from_fen(1999).unwrap(),
        currency: Currency::cny(),
        description: Description::try_from("Image形象店-深圳腾大-QQ公仔").unwrap(),
        attach: Some(Attach::try_from("cart=42&note=测试").unwrap()),
    }
}

fn prepared(prepay_id: &str) -> Transition {
    Transition::Prepared {
        prepay_id: prepay_id.to_owned(),
        // Sub-millisecond digits are dropped by every store.
        expires_at: OffsetDateTime::now_utc() + Duration::hours(2) + Duration::nanoseconds(7),
    }
}

fn paid(transaction_id: &str) -> Transition {
    Transition::Paid {
        transaction_id: transaction_id.to_owned(),
        paid_at: OffsetDateTime::now_utc() - Duration::seconds(3) + Duration::microseconds(5),
        payer: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".to_owned()),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", OutTradeNo::generate())
}

async fn insert(store: &dyn OrderStore) -> Order {
    match store.insert_if_absent(sample_order()).await.unwrap() {
        InsertOutcome::Inserted(order) => order,
        InsertOutcome::Existing(order) => panic!("fresh order already existed: {order:?}"),
    }
}

async fn get(store: &dyn OrderStore, no: &OutTradeNo) -> Order {
    store.get(no).await.unwrap().expect("order exists")
}

async fn apply(
    store: &dyn OrderStore,
    no: &OutTradeNo,
    expected: OrderStatus,
    transition: Transition,
) -> Order {
    match store.transition(no, expected, transition).await.unwrap() {
        TransitionOutcome::Applied(order) => {
            assert_eq!(get(store, no).await, order, "get returns the applied order");
            order
        }
        TransitionOutcome::AlreadyApplied(order) => panic!("expected Applied, got {order:?}"),
    }
}

/// A `PENDING` order.
async fn pending(store: &dyn OrderStore) -> Order {
    let order = insert(store).await;
    apply(
        store,
        &order.out_trade_no,
        OrderStatus::Created,
        prepared(&unique("wx")),
    )
    .await
}

/// `count` fresh `PAID` orders, each with its paid event undelivered.
async fn paid_orders(store: &dyn OrderStore, count: usize) -> Vec<OutTradeNo> {
    let mut numbers = Vec::new();
    for _ in 0..count {
        let pending = pending(store).await;
        apply(
            store,
            &pending.out_trade_no,
            OrderStatus::Pending,
            paid(&unique("4200")),
        )
        .await;
        numbers.push(pending.out_trade_no);
    }
    numbers
}

/// The ids among `events` that are in `ids` (the case's own, in a shared database), in order.
fn ours(events: &[Event], ids: &[String]) -> Vec<String> {
    events
        .iter()
        .filter(|e| ids.iter().any(|id| id == e.event_id()))
        .map(|e| e.event_id().to_owned())
        .collect()
}

async fn deliver_all(store: &dyn OrderStore, no: &OutTradeNo) {
    for event in store.events_for_order(no).await.unwrap() {
        store.mark_delivered(event.event_id()).await.unwrap();
    }
}

fn assert_recent(time: OffsetDateTime, what: &str) {
    let now = OffsetDateTime::now_utc();
    assert!(
        (now - time).abs() < Duration::minutes(5),
        "{what} {time} is not close to now {now}"
    );
    assert_eq!(
        time,
        truncate_to_millis(time),
        "{what} has sub-millisecond digits"
    );
}

// ---------------------------------------------------------------------------------------------
// Cases

/// A new order is stored `CREATED` with every field, and reads back identically.
pub async fn insert_and_get(open: &dyn OpenStore) {
    let store = open.open().await;
    let new = sample_order();
    let no = new.out_trade_no.clone();
    assert_eq!(store.get(&no).await.unwrap(), None);
    let order = match store.insert_if_absent(new.clone()).await.unwrap() {
        InsertOutcome::Inserted(order) => order,
        other => panic!("{other:?}"),
    };
    assert_eq!(order.status, OrderStatus::Created);
    assert_eq!(order.out_trade_no, new.out_trade_no);
    assert_eq!(order.provider, new.provider);
    assert_eq!(order.appid, new.appid);
    assert_eq!(order.mchid, new.mchid);
    assert_eq!(order.openid, new.openid);
    assert_eq!(order.amount, new.amount);
    assert_eq!(order.currency, new.currency);
    assert_eq!(order.description, new.description);
    assert_eq!(order.attach, new.attach);
    assert_eq!(order.prepay_id, None);
    assert_eq!(order.prepay_expires_at, None);
    assert_eq!(order.transaction_id, None);
    assert_eq!(order.paid_at, None);
    assert_eq!(order.payer, None);
    assert_eq!(order.failure_reason, None);
    assert_eq!(order.created_at, order.updated_at);
    assert_recent(order.created_at, "created_at");
    assert_eq!(get(&*store, &no).await, order);

    // Minimal order: no optional fields, the largest amount.
    let mut minimal = NewOrder::new(
        OutTradeNo::generate(),
        OpenId::try_from("o").unwrap(),
        Amount::from_fen(Amount::MAX_FEN).unwrap(),
        Description::try_from("x").unwrap(),
    );
    minimal.provider = "gateway".to_owned();
    let order = store
        .insert_if_absent(minimal.clone())
        .await
        .unwrap()
        .into_order();
    assert_eq!(order.amount.fen(), Amount::MAX_FEN);
    assert_eq!(order.attach, None);
    assert_eq!(order.appid, None);
    assert_eq!(get(&*store, &minimal.out_trade_no).await, order);
    store
        .transition(
            &minimal.out_trade_no,
            OrderStatus::Created,
            Transition::Closed,
        )
        .await
        .unwrap();

    // Order numbers are case-sensitive.
    let lower = OutTradeNo::try_from(no.as_str().to_ascii_lowercase()).unwrap();
    if lower != no {
        assert_eq!(store.get(&lower).await.unwrap(), None);
    }
    store
        .transition(&no, OrderStatus::Created, Transition::Closed)
        .await
        .unwrap();
}

/// A second insert of a number returns the stored order and changes nothing.
pub async fn insert_if_absent_keeps_existing(open: &dyn OpenStore) {
    let store = open.open().await;
    let first = insert(&*store).await;
    let mut again = sample_order();
    again.out_trade_no = first.out_trade_no.clone();
    again.amount = Amount::from_fen(1).unwrap();
    again.description = Description::try_from("other").unwrap();
    match store.insert_if_absent(again).await.unwrap() {
        InsertOutcome::Existing(existing) => assert_eq!(existing, first),
        other => panic!("{other:?}"),
    }
    assert_eq!(get(&*store, &first.out_trade_no).await, first);
    store
        .transition(
            &first.out_trade_no,
            OrderStatus::Created,
            Transition::Closed,
        )
        .await
        .unwrap();
}

/// 16 concurrent inserts of one number: exactly one inserts, all return the same order.
pub async fn concurrent_inserts_have_one_winner(open: &dyn OpenStore) {
    let store = open.open().await;
    let new = sample_order();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            let new = new.clone();
            tokio::spawn(async move { store.insert_if_absent(new).await })
        })
        .collect();
    let mut inserted = 0;
    let mut orders = Vec::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        if matches!(outcome, InsertOutcome::Inserted(_)) {
            inserted += 1;
        }
        orders.push(outcome.into_order());
    }
    assert_eq!(inserted, 1, "exactly one insert wins");
    let stored = get(&*store, &new.out_trade_no).await;
    assert!(orders.iter().all(|o| *o == stored));
    store
        .transition(&new.out_trade_no, OrderStatus::Created, Transition::Closed)
        .await
        .unwrap();
}

/// CREATED → PENDING → PAID → REFUNDED, each setting its data, with one paid event.
pub async fn lifecycle_to_paid_and_refunded(open: &dyn OpenStore) {
    let store = open.open().await;
    let created = insert(&*store).await;
    let no = created.out_trade_no.clone();
    let prepay_id = unique("wx");
    let prepare = prepared(&prepay_id);
    let Transition::Prepared { expires_at, .. } = prepare.clone() else {
        unreachable!()
    };
    let pending = apply(&*store, &no, OrderStatus::Created, prepare).await;
    assert_eq!(pending.status, OrderStatus::Pending);
    assert_eq!(pending.prepay_id.as_deref(), Some(prepay_id.as_str()));
    assert_eq!(
        pending.prepay_expires_at,
        Some(truncate_to_millis(expires_at))
    );
    assert_eq!(pending.created_at, created.created_at);
    assert!(pending.updated_at >= created.updated_at);
    assert_eq!(
        Order {
            status: OrderStatus::Created,
            prepay_id: None,
            prepay_expires_at: None,
            updated_at: created.updated_at,
            ..pending.clone()
        },
        created,
        "Prepared changes nothing else"
    );
    assert!(store.events_for_order(&no).await.unwrap().is_empty());

    let transaction_id = unique("4200");
    let pay = paid(&transaction_id);
    let Transition::Paid { paid_at, payer, .. } = pay.clone() else {
        unreachable!()
    };
    let paid_order = apply(&*store, &no, OrderStatus::Pending, pay).await;
    assert_eq!(paid_order.status, OrderStatus::Paid);
    assert_eq!(
        paid_order.transaction_id.as_deref(),
        Some(transaction_id.as_str())
    );
    assert_eq!(paid_order.paid_at, Some(truncate_to_millis(paid_at)));
    assert_eq!(paid_order.payer, payer);
    assert_eq!(paid_order.prepay_id, pending.prepay_id);
    assert_recent(paid_order.updated_at, "updated_at");

    let events = store.events_for_order(&no).await.unwrap();
    assert_eq!(events.len(), 1, "one paid event: {events:?}");
    let event = events[0].as_paid().expect("a paid event");
    assert_eq!(event.event_id, PaidEvent::id_for(&no));
    assert_eq!(event.out_trade_no, no);
    assert_eq!(event.transaction_id, transaction_id);
    assert_eq!(event.amount, created.amount);
    assert_eq!(event.currency, created.currency);
    assert_eq!(event.payer, payer);
    assert_eq!(event.attach, created.attach);
    assert_eq!(event.paid_at, truncate_to_millis(paid_at));
    assert_eq!(event.delivered_at, None);
    assert_recent(event.created_at, "event created_at");

    let refunded = apply(&*store, &no, OrderStatus::Paid, Transition::Refunded).await;
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert_eq!(refunded.transaction_id, paid_order.transaction_id);
    assert_eq!(store.events_for_order(&no).await.unwrap().len(), 1);
    deliver_all(&*store, &no).await;
}

/// Every transition applied again is `AlreadyApplied` with the unchanged order, and writes no
/// second paid event.
pub async fn repeated_transitions_are_already_applied(open: &dyn OpenStore) {
    let store = open.open().await;
    let created = insert(&*store).await;
    let no = created.out_trade_no.clone();
    let prepare = prepared(&unique("wx"));
    let pending = apply(&*store, &no, OrderStatus::Created, prepare.clone()).await;
    for expected in [OrderStatus::Created, OrderStatus::Pending] {
        let again = store
            .transition(&no, expected, prepare.clone())
            .await
            .unwrap();
        assert_eq!(again, TransitionOutcome::AlreadyApplied(pending.clone()));
    }
    let pay = paid(&unique("4200"));
    let paid_order = apply(&*store, &no, OrderStatus::Pending, pay.clone()).await;
    // A duplicate notification: same transaction, with a later paid_at even.
    let mut duplicate = pay.clone();
    if let Transition::Paid { paid_at, .. } = &mut duplicate {
        *paid_at += Duration::seconds(1);
    }
    for transition in [pay.clone(), duplicate] {
        let again = store
            .transition(&no, OrderStatus::Pending, transition)
            .await
            .unwrap();
        assert_eq!(again, TransitionOutcome::AlreadyApplied(paid_order.clone()));
    }
    assert_eq!(store.events_for_order(&no).await.unwrap().len(), 1);
    let refunded = apply(&*store, &no, OrderStatus::Paid, Transition::Refunded).await;
    let again = store
        .transition(&no, OrderStatus::Paid, Transition::Refunded)
        .await
        .unwrap();
    assert_eq!(again, TransitionOutcome::AlreadyApplied(refunded.clone()));
    // The payment notification arriving after the refund is still just a duplicate.
    let late = store
        .transition(&no, OrderStatus::Pending, pay)
        .await
        .unwrap();
    assert_eq!(late, TransitionOutcome::AlreadyApplied(refunded.clone()));
    assert_eq!(get(&*store, &no).await, refunded);

    // Closed and Failed repeat too.
    let a = pending_order_number(&*store).await;
    let closed = apply(&*store, &a, OrderStatus::Pending, Transition::Closed).await;
    let again = store
        .transition(&a, OrderStatus::Pending, Transition::Closed)
        .await
        .unwrap();
    assert_eq!(again, TransitionOutcome::AlreadyApplied(closed));
    let b = pending_order_number(&*store).await;
    let failed = Transition::Failed {
        reason: "PAYERROR: 支付失败".to_owned(),
    };
    let failed_order = apply(&*store, &b, OrderStatus::Pending, failed.clone()).await;
    assert_eq!(
        failed_order.failure_reason.as_deref(),
        Some("PAYERROR: 支付失败")
    );
    let again = store
        .transition(&b, OrderStatus::Pending, failed)
        .await
        .unwrap();
    assert_eq!(again, TransitionOutcome::AlreadyApplied(failed_order));
    deliver_all(&*store, &no).await;
}

async fn pending_order_number(store: &dyn OrderStore) -> OutTradeNo {
    pending(store).await.out_trade_no
}

/// Transitions the machine does not have are refused and change nothing; an unknown order is
/// `NotFound`.
pub async fn impossible_transitions_are_refused(open: &dyn OpenStore) {
    let store = open.open().await;
    let created = insert(&*store).await;
    let no = created.out_trade_no.clone();
    for (expected, transition) in [
        (OrderStatus::Created, paid(&unique("4200"))),
        (OrderStatus::Created, Transition::Refunded),
        (OrderStatus::Paid, Transition::Closed),
        (OrderStatus::Refunded, prepared("p")),
    ] {
        let err = store
            .transition(&no, expected, transition.clone())
            .await
            .unwrap_err();
        match err {
            StoreError::Impossible {
                out_trade_no,
                from,
                transition: name,
            } => {
                assert_eq!(out_trade_no, no);
                assert_eq!(from, expected);
                assert_eq!(name, transition.name());
            }
            other => panic!("{expected} {transition:?}: {other:?}"),
        }
    }
    assert_eq!(get(&*store, &no).await, created, "refusals change nothing");
    assert!(store.events_for_order(&no).await.unwrap().is_empty());

    // Paid → Closed is refused on a paid order too.
    let pending = pending(&*store).await;
    let paid_order = apply(
        &*store,
        &pending.out_trade_no,
        OrderStatus::Pending,
        paid(&unique("4200")),
    )
    .await;
    let err = store
        .transition(&pending.out_trade_no, OrderStatus::Paid, Transition::Closed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Impossible { .. }), "{err:?}");
    assert_eq!(get(&*store, &pending.out_trade_no).await, paid_order);
    deliver_all(&*store, &pending.out_trade_no).await;

    let unknown = OutTradeNo::generate();
    let err = store
        .transition(&unknown, OrderStatus::Created, Transition::Closed)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { out_trade_no } if *out_trade_no == unknown),
        "{err:?}"
    );
    store
        .transition(&no, OrderStatus::Created, Transition::Closed)
        .await
        .unwrap();
}

/// `PaidUnprepared` pays an order still `CREATED` (its prepay never recorded) with its paid
/// event, once; it is impossible from any other expected status and a conflict on an order
/// that moved on. An ordinary `Paid` from `CREATED` stays impossible.
pub async fn a_created_order_is_paid_only_as_unprepared(open: &dyn OpenStore) {
    let store = open.open().await;
    let created = insert(&*store).await;
    let no = created.out_trade_no.clone();
    let transaction_id = unique("4200");
    let Transition::Paid { paid_at, payer, .. } = paid(&transaction_id) else {
        unreachable!()
    };
    let unprepared = Transition::PaidUnprepared {
        transaction_id: transaction_id.clone(),
        paid_at,
        payer: payer.clone(),
    };
    assert!(matches!(
        store
            .transition(&no, OrderStatus::Created, paid(&transaction_id))
            .await,
        Err(StoreError::Impossible { .. })
    ));
    assert!(matches!(
        store
            .transition(&no, OrderStatus::Pending, unprepared.clone())
            .await,
        Err(StoreError::Impossible { .. })
    ));
    let order = apply(&*store, &no, OrderStatus::Created, unprepared.clone()).await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(
        order.transaction_id.as_deref(),
        Some(transaction_id.as_str())
    );
    assert_eq!(order.paid_at, Some(truncate_to_millis(paid_at)));
    assert_eq!(order.payer, payer);
    assert_eq!(order.prepay_id, None);
    let events = store.events_for_order(&no).await.unwrap();
    assert_eq!(events.len(), 1, "one paid event");
    assert_eq!(
        events[0].as_paid().map(|e| e.transaction_id.as_str()),
        Some(transaction_id.as_str())
    );
    // Again: already applied, nothing more written.
    let again = store
        .transition(&no, OrderStatus::Created, unprepared)
        .await
        .unwrap();
    assert!(!again.is_applied());
    assert_eq!(store.events_for_order(&no).await.unwrap().len(), 1);
    // On an order that moved on (PENDING): a conflict naming its status.
    let pending = pending(&*store).await;
    let other = Transition::PaidUnprepared {
        transaction_id: unique("4200"),
        paid_at,
        payer: None,
    };
    assert!(matches!(
        store
            .transition(&pending.out_trade_no, OrderStatus::Created, other)
            .await,
        Err(StoreError::Conflict {
            actual: OrderStatus::Pending,
            ..
        })
    ));
    deliver_all(&*store, &no).await;
    apply(
        &*store,
        &pending.out_trade_no,
        OrderStatus::Pending,
        Transition::Closed,
    )
    .await;
}

/// A transition from a status the order is not in is a `Conflict` carrying the actual status.
pub async fn compare_and_set_conflict(open: &dyn OpenStore) {
    let store = open.open().await;
    let pending = pending(&*store).await;
    let no = pending.out_trade_no.clone();
    // Someone else prepared it with another prepay_id.
    let err = store
        .transition(&no, OrderStatus::Created, prepared(&unique("wx")))
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            out_trade_no,
            expected,
            actual,
        } => {
            assert_eq!(out_trade_no, no);
            assert_eq!(expected, OrderStatus::Created);
            assert_eq!(actual, OrderStatus::Pending);
        }
        other => panic!("{other:?}"),
    }
    // Closing a CREATED order that is in fact PENDING.
    let err = store
        .transition(&no, OrderStatus::Created, Transition::Closed)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: OrderStatus::Pending,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(get(&*store, &no).await, pending);
    let closed = apply(&*store, &no, OrderStatus::Pending, Transition::Closed).await;
    // A payment with another transaction of an order paid by someone else: conflict.
    let paid_order = apply(&*store, &no, OrderStatus::Closed, paid(&unique("4200"))).await;
    let err = store
        .transition(&no, OrderStatus::Closed, paid(&unique("4200")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: OrderStatus::Paid,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(get(&*store, &no).await, paid_order);
    assert_ne!(closed, paid_order);
    assert_eq!(store.events_for_order(&no).await.unwrap().len(), 1);
    deliver_all(&*store, &no).await;
}

/// `PENDING → PENDING` replaces an expired prepay id.
pub async fn prepay_id_can_be_replaced(open: &dyn OpenStore) {
    let store = open.open().await;
    let first = pending(&*store).await;
    let no = first.out_trade_no.clone();
    let fresh = unique("wx");
    let replaced = apply(&*store, &no, OrderStatus::Pending, prepared(&fresh)).await;
    assert_eq!(replaced.status, OrderStatus::Pending);
    assert_eq!(replaced.prepay_id.as_deref(), Some(fresh.as_str()));
    assert_ne!(replaced.prepay_id, first.prepay_id);
    apply(&*store, &no, OrderStatus::Pending, Transition::Closed).await;
}

/// A payment reported after the order was closed (it raced the close) is recorded: `CLOSED →
/// PAID` with its paid event. So is one reported after a failure.
pub async fn payment_after_close_is_recorded(open: &dyn OpenStore) {
    let store = open.open().await;
    for end in [
        Transition::Closed,
        Transition::Failed {
            reason: "USERPAYING timeout".to_owned(),
        },
    ] {
        let pending = pending(&*store).await;
        let no = pending.out_trade_no.clone();
        let ended = apply(&*store, &no, OrderStatus::Pending, end).await;
        let transaction_id = unique("4200");
        let paid_order = apply(&*store, &no, ended.status, paid(&transaction_id)).await;
        assert_eq!(paid_order.status, OrderStatus::Paid);
        let events = store.events_for_order(&no).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].as_paid().unwrap().transaction_id, transaction_id);
        deliver_all(&*store, &no).await;
    }
    // But a CLOSED order that never had a prepay id cannot have been paid.
    let created = insert(&*store).await;
    let no = created.out_trade_no.clone();
    apply(&*store, &no, OrderStatus::Created, Transition::Closed).await;
    let err = store
        .transition(&no, OrderStatus::Closed, paid(&unique("4200")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Impossible { .. }), "{err:?}");
    assert!(store.events_for_order(&no).await.unwrap().is_empty());
}

/// 64 concurrent `PENDING → PAID` transitions of one order: exactly one `Applied`, 63
/// `AlreadyApplied`, exactly one paid event.
pub async fn concurrent_payments_have_one_winner(open: &dyn OpenStore) {
    let store = open.open().await;
    let pending = pending(&*store).await;
    let no = pending.out_trade_no.clone();
    let pay = paid(&unique("4200"));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            let no = no.clone();
            let pay = pay.clone();
            tokio::spawn(async move {
                let notification = format!("notify-{no}-{i}");
                store
                    .transition_with_notification(
                        &no,
                        OrderStatus::Pending,
                        pay,
                        Some(notification.as_str()),
                    )
                    .await
            })
        })
        .collect();
    let mut applied = 0;
    let mut already = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(TransitionOutcome::Applied(order)) => {
                applied += 1;
                assert_eq!(order.status, OrderStatus::Paid);
            }
            Ok(TransitionOutcome::AlreadyApplied(order)) => {
                already += 1;
                assert_eq!(order.status, OrderStatus::Paid);
            }
            Err(err) => panic!("a concurrent payment failed: {err:?}"),
        }
    }
    assert_eq!((applied, already), (1, 63));
    let events = store.events_for_order(&no).await.unwrap();
    assert_eq!(events.len(), 1, "exactly one paid event: {events:?}");
    for i in 0..64 {
        let id = format!("notify-{no}-{i}");
        assert!(store.has_notification(&id).await.unwrap(), "{id} recorded");
    }
    assert_eq!(get(&*store, &no).await.status, OrderStatus::Paid);
    deliver_all(&*store, &no).await;
}

/// 32 concurrent closes and 32 concurrent payments of one `PENDING` order: exactly one call
/// applies; the others are `AlreadyApplied` (same transition) or `Conflict` (the other one won).
pub async fn concurrent_close_and_pay_have_one_winner(open: &dyn OpenStore) {
    let store = open.open().await;
    let pending = pending(&*store).await;
    let no = pending.out_trade_no.clone();
    let pay = paid(&unique("4200"));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            let no = no.clone();
            let transition = if i % 2 == 0 {
                pay.clone()
            } else {
                Transition::Closed
            };
            tokio::spawn(async move {
                store
                    .transition(&no, OrderStatus::Pending, transition)
                    .await
            })
        })
        .collect();
    let mut applied = Vec::new();
    let mut others = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(TransitionOutcome::Applied(order)) => applied.push(order),
            Ok(TransitionOutcome::AlreadyApplied(_)) | Err(StoreError::Conflict { .. }) => {
                others += 1;
            }
            Err(err) => panic!("unexpected error: {err:?}"),
        }
    }
    assert_eq!(applied.len(), 1, "exactly one winner: {applied:?}");
    assert_eq!(others, 63);
    let winner = &applied[0];
    assert_eq!(get(&*store, &no).await, *winner);
    let events = store.events_for_order(&no).await.unwrap();
    match winner.status {
        OrderStatus::Paid => assert_eq!(events.len(), 1),
        OrderStatus::Closed => assert!(events.is_empty()),
        other => panic!("winner is {other}"),
    }
    deliver_all(&*store, &no).await;
}

/// The second record of a notification id is a duplicate.
pub async fn inbox_dedupes(open: &dyn OpenStore) {
    let store = open.open().await;
    let id = unique("EV");
    let no = OutTradeNo::generate();
    assert!(!store.has_notification(&id).await.unwrap());
    assert_eq!(
        store.record_notification(&id, Some(&no)).await.unwrap(),
        InboxOutcome::New
    );
    assert!(store.has_notification(&id).await.unwrap());
    assert_eq!(
        store.record_notification(&id, Some(&no)).await.unwrap(),
        InboxOutcome::Duplicate
    );
    assert_eq!(
        store.record_notification(&id, None).await.unwrap(),
        InboxOutcome::Duplicate
    );
    // Without an order number, and a long id.
    let other = format!("{}-{}", unique("EV"), "x".repeat(100));
    assert_eq!(
        store.record_notification(&other, None).await.unwrap(),
        InboxOutcome::New
    );
    assert_eq!(
        store.record_notification(&other, None).await.unwrap(),
        InboxOutcome::Duplicate
    );
    // Ids are case-sensitive.
    let upper = id.to_uppercase();
    if upper != id {
        assert!(!store.has_notification(&upper).await.unwrap());
    }
}

/// 64 concurrent records of one notification id: exactly one `New`.
pub async fn inbox_dedupes_concurrently(open: &dyn OpenStore) {
    let store = open.open().await;
    let id = unique("EV");
    let no = OutTradeNo::generate();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let store = Arc::clone(&store);
            let id = id.clone();
            let no = no.clone();
            tokio::spawn(async move { store.record_notification(&id, Some(&no)).await })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(InboxOutcome::New) => new += 1,
            Ok(InboxOutcome::Duplicate) => {}
            Err(err) => panic!("a concurrent record failed: {err:?}"),
        }
    }
    assert_eq!(new, 1, "exactly one New");
}

/// `transition_with_notification` records the id with a successful transition (applied or
/// already applied) and not with a refused one, so the upstream's retry is not taken for a
/// duplicate.
pub async fn notification_recorded_with_transition(open: &dyn OpenStore) {
    let store = open.open().await;
    let created = insert(&*store).await;
    let no = created.out_trade_no.clone();
    let refused = unique("EV");
    let err = store
        .transition_with_notification(
            &no,
            OrderStatus::Pending,
            paid(&unique("4200")),
            Some(&refused),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(!store.has_notification(&refused).await.unwrap());
    let unknown = unique("EV");
    let err = store
        .transition_with_notification(
            &OutTradeNo::generate(),
            OrderStatus::Pending,
            paid(&unique("4200")),
            Some(&unknown),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(!store.has_notification(&unknown).await.unwrap());

    apply(&*store, &no, OrderStatus::Created, prepared(&unique("wx"))).await;
    let pay = paid(&unique("4200"));
    let first = store
        .transition_with_notification(&no, OrderStatus::Pending, pay.clone(), Some(&refused))
        .await
        .unwrap();
    assert!(first.is_applied());
    assert!(store.has_notification(&refused).await.unwrap());
    assert_eq!(
        store
            .record_notification(&refused, Some(&no))
            .await
            .unwrap(),
        InboxOutcome::Duplicate
    );
    // A second notification of the same payment: already applied, recorded too.
    let second = unique("EV");
    let again = store
        .transition_with_notification(&no, OrderStatus::Pending, pay, Some(&second))
        .await
        .unwrap();
    assert_eq!(again, TransitionOutcome::AlreadyApplied(first.into_order()));
    assert!(store.has_notification(&second).await.unwrap());
    deliver_all(&*store, &no).await;
}

/// Paid events are listed until marked delivered, oldest first; marking is idempotent.
pub async fn outbox_delivery(open: &dyn OpenStore) {
    let store = open.open().await;
    let numbers = paid_orders(&*store, 3).await;
    let ids: Vec<String> = numbers.iter().map(PaidEvent::id_for).collect();
    let ours = |events: &[Event]| ours(events, &ids);
    let undelivered = store.undelivered_events(10_000).await.unwrap();
    assert_eq!(ours(&undelivered), ids, "ours, oldest first");
    assert!(undelivered.iter().all(|e| e.delivered_at().is_none()));
    assert!(store.undelivered_events(1).await.unwrap().len() <= 1);
    assert!(store.undelivered_events(0).await.unwrap().is_empty());

    store.mark_delivered(&ids[0]).await.unwrap();
    let undelivered = store.undelivered_events(10_000).await.unwrap();
    assert_eq!(ours(&undelivered), ids[1..].to_vec());
    let delivered = store.events_for_order(&numbers[0]).await.unwrap();
    let delivered_at = delivered[0].delivered_at().expect("delivered_at set");
    assert_recent(delivered_at, "delivered_at");
    store.mark_delivered(&ids[0]).await.unwrap();
    assert_eq!(
        store.events_for_order(&numbers[0]).await.unwrap()[0].delivered_at(),
        Some(delivered_at),
        "marking again keeps the first time"
    );
    let err = store.mark_delivered(&unique("paid")).await.unwrap_err();
    assert!(matches!(err, StoreError::EventNotFound { .. }), "{err:?}");
    for no in &numbers[1..] {
        deliver_all(&*store, no).await;
    }
    let undelivered = store.undelivered_events(10_000).await.unwrap();
    assert!(ours(&undelivered).is_empty());
}

/// An undelivered event is claimed by one holder at a time: others see it again only once the
/// claim expired; of concurrent claimers each event goes to one; delivered events are never
/// claimed. (Claims of other cases' events in a shared database last seconds at most.)
pub async fn events_are_claimed_by_one_holder_at_a_time(open: &dyn OpenStore) {
    const HELD: std::time::Duration = std::time::Duration::from_secs(10);
    const EXPIRED: std::time::Duration = std::time::Duration::ZERO;
    let store = open.open().await;
    let numbers = paid_orders(&*store, 2).await;
    let ids: Vec<String> = numbers.iter().map(PaidEvent::id_for).collect();
    let ours = |events: &[Event]| ours(events, &ids);
    let (a, b, c) = (unique("holder-a"), unique("holder-b"), unique("holder-c"));

    let claimed = store
        .claim_undelivered_events(&a, HELD, 10_000)
        .await
        .unwrap();
    assert_eq!(ours(&claimed), ids, "ours, oldest first");
    let claimed = store
        .claim_undelivered_events(&b, HELD, 10_000)
        .await
        .unwrap();
    assert!(ours(&claimed).is_empty(), "held by a: {claimed:?}");
    let claimed = store
        .claim_undelivered_events(&a, HELD, 10_000)
        .await
        .unwrap();
    assert_eq!(ours(&claimed), ids, "a claims its own again");
    assert!(
        store
            .claim_undelivered_events(&a, HELD, 0)
            .await
            .unwrap()
            .is_empty(),
        "limit 0"
    );

    // a's claim runs out; b and c race for the events: each goes to exactly one.
    let claimed = store
        .claim_undelivered_events(&a, EXPIRED, 10_000)
        .await
        .unwrap();
    assert_eq!(ours(&claimed), ids);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (by_b, by_c) = tokio::join!(
        store.claim_undelivered_events(&b, HELD, 10_000),
        store.claim_undelivered_events(&c, HELD, 10_000),
    );
    let (by_b, by_c) = (ours(&by_b.unwrap()), ours(&by_c.unwrap()));
    let mut both: Vec<String> = by_b.iter().chain(&by_c).cloned().collect();
    both.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        both, expected,
        "each event to one claimer: b {by_b:?}, c {by_c:?}"
    );
    let winner = if by_b.contains(&ids[0]) { &b } else { &c };

    store.mark_delivered(&ids[0]).await.unwrap();
    let claimed = store
        .claim_undelivered_events(winner, HELD, 10_000)
        .await
        .unwrap();
    assert!(!ours(&claimed).contains(&ids[0]), "delivered: {claimed:?}");
    let undelivered = store.undelivered_events(10_000).await.unwrap();
    assert_eq!(ours(&undelivered), ids[1..].to_vec(), "claims hide nothing");
    for no in &numbers {
        deliver_all(&*store, no).await;
    }
    for holder in [&a, &b, &c] {
        let claimed = store
            .claim_undelivered_events(holder, EXPIRED, 10_000)
            .await
            .unwrap();
        assert!(ours(&claimed).is_empty(), "all delivered: {claimed:?}");
    }
}

/// A lease has one holder: others are refused until it expires or is released; the holder
/// renews it; of concurrent takers of a free lease one gets it.
pub async fn a_lease_has_one_holder_until_it_expires(open: &dyn OpenStore) {
    const HELD: std::time::Duration = std::time::Duration::from_secs(60);
    const EXPIRED: std::time::Duration = std::time::Duration::ZERO;
    let store = open.open().await;
    let name = unique("lease");
    let (a, b, c) = (unique("holder-a"), unique("holder-b"), unique("holder-c"));

    assert!(store.acquire_lease(&name, &a, HELD).await.unwrap(), "free");
    assert!(
        !store.acquire_lease(&name, &b, HELD).await.unwrap(),
        "held by a"
    );
    assert!(
        store.acquire_lease(&name, &a, HELD).await.unwrap(),
        "renewed"
    );
    assert!(
        store.acquire_lease(&name, &a, HELD).await.unwrap(),
        "renewed at once"
    );
    store.release_lease(&name, &b).await.unwrap();
    assert!(
        !store.acquire_lease(&name, &c, HELD).await.unwrap(),
        "b cannot release a's"
    );

    assert!(store.acquire_lease(&name, &a, EXPIRED).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(
        store.acquire_lease(&name, &b, HELD).await.unwrap(),
        "a's expired"
    );
    assert!(
        !store.acquire_lease(&name, &a, HELD).await.unwrap(),
        "now b's"
    );
    store.release_lease(&name, &b).await.unwrap();
    assert!(
        store.acquire_lease(&name, &a, HELD).await.unwrap(),
        "released by b"
    );
    store.release_lease(&name, &a).await.unwrap();

    let race = unique("lease");
    let takers: Vec<String> = (0..8).map(|i| unique(&format!("taker-{i}"))).collect();
    let won = futures_join_all(takers.into_iter().map(|taker| {
        let (store, race) = (store.clone(), race.clone());
        tokio::spawn(async move { store.acquire_lease(&race, &taker, HELD).await })
    }))
    .await;
    let winners = won.into_iter().filter(|won| *won.as_ref().unwrap()).count();
    assert_eq!(winners, 1, "one of concurrent takers holds a free lease");
}

/// `list_stale` finds orders of a status last changed before a cutoff, oldest first.
pub async fn list_stale_orders(open: &dyn OpenStore) {
    let store = open.open().await;
    let a = pending(&*store).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = pending(&*store).await;
    let c = insert(&*store).await;
    let numbers = |orders: &[Order]| -> Vec<OutTradeNo> {
        orders
            .iter()
            .filter(|o| {
                [&a, &b, &c]
                    .iter()
                    .any(|x| x.out_trade_no == o.out_trade_no)
            })
            .map(|o| o.out_trade_no.clone())
            .collect()
    };
    let after_b = b.updated_at + Duration::milliseconds(1);
    let stale = store
        .list_stale(OrderStatus::Pending, after_b, 10_000)
        .await
        .unwrap();
    assert_eq!(
        numbers(&stale),
        vec![a.out_trade_no.clone(), b.out_trade_no.clone()]
    );
    assert!(
        stale
            .iter()
            .all(|o| o.status == OrderStatus::Pending && o.updated_at < after_b)
    );
    assert!(stale.windows(2).all(|w| w[0].updated_at <= w[1].updated_at));
    let found_a = stale
        .iter()
        .find(|o| o.out_trade_no == a.out_trade_no)
        .unwrap();
    assert_eq!(*found_a, a);
    // Strictly before: b itself is not stale at its own update time.
    let stale = store
        .list_stale(OrderStatus::Pending, b.updated_at, 10_000)
        .await
        .unwrap();
    assert_eq!(numbers(&stale), vec![a.out_trade_no.clone()]);
    let created = store
        .list_stale(
            OrderStatus::Created,
            c.updated_at + Duration::milliseconds(1),
            10_000,
        )
        .await
        .unwrap();
    assert_eq!(numbers(&created), vec![c.out_trade_no.clone()]);
    assert!(
        store
            .list_stale(OrderStatus::Pending, after_b, 1)
            .await
            .unwrap()
            .len()
            <= 1
    );
    assert!(
        store
            .list_stale(OrderStatus::Pending, after_b, 0)
            .await
            .unwrap()
            .is_empty()
    );
    for order in [&a, &b] {
        apply(
            &*store,
            &order.out_trade_no,
            OrderStatus::Pending,
            Transition::Closed,
        )
        .await;
    }
    apply(
        &*store,
        &c.out_trade_no,
        OrderStatus::Created,
        Transition::Closed,
    )
    .await;
    let stale = store
        .list_stale(OrderStatus::Pending, after_b, 10_000)
        .await
        .unwrap();
    assert!(numbers(&stale).is_empty());
}

/// `list_stale_after` pages through the stale orders with a cursor: small pages visit every
/// order exactly once, in `(updated_at, out_trade_no)` order (orders changed in the same
/// millisecond included), and a cursor past the last order yields nothing.
pub async fn stale_order_pages_visit_each_order_once(open: &dyn OpenStore) {
    let store = open.open().await;
    let mut ours = Vec::new();
    for _ in 0..7 {
        ours.push(pending(&*store).await.out_trade_no);
    }
    let cutoff = OffsetDateTime::now_utc() + Duration::seconds(1);
    let mut seen: Vec<Order> = Vec::new();
    let mut cursor: Option<OrderCursor> = None;
    loop {
        let page = store
            .list_stale_after(OrderStatus::Pending, cutoff, cursor.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        cursor = Some(OrderCursor::of(last));
        seen.extend(page);
        assert!(seen.len() < 100_000, "the walk must end");
    }
    for no in &ours {
        let visits = seen.iter().filter(|o| &o.out_trade_no == no).count();
        assert_eq!(visits, 1, "{no} visited {visits} times");
    }
    assert!(seen.windows(2).all(|w| w[0].updated_at <= w[1].updated_at));
    assert!(seen.iter().all(|o| o.status == OrderStatus::Pending));
    // Past the last of ours, none of ours.
    let last_of_ours = seen
        .iter()
        .rev()
        .find(|o| ours.contains(&o.out_trade_no))
        .unwrap();
    let rest = store
        .list_stale_after(
            OrderStatus::Pending,
            cutoff,
            Some(&OrderCursor::of(last_of_ours)),
            10_000,
        )
        .await
        .unwrap();
    assert!(rest.iter().all(|o| !ours.contains(&o.out_trade_no)));
    // Leave no order PENDING (the suite's promise to shared databases).
    for no in &ours {
        apply(&*store, no, OrderStatus::Pending, Transition::Closed).await;
    }
}

/// `prune` deletes inbox entries, delivered events and mismatches older than its cut-offs,
/// and nothing else: not undelivered events, not orders, not refunds, not recent rows.
pub async fn pruning_deletes_old_bookkeeping_only(open: &dyn OpenStore) {
    let store = open.open().await;
    // Recent rows survive a prune whose cut-offs are in the past.
    let recent = pending(&*store).await;
    let recent_id = unique("inbox");
    store
        .record_notification(&recent_id, Some(&recent.out_trade_no))
        .await
        .unwrap();
    store
        .record_mismatch(&recent.out_trade_no, "recent")
        .await
        .unwrap();
    let an_hour_ago = OffsetDateTime::now_utc() - Duration::hours(1);
    store
        .prune(&PruneBefore {
            inbox: an_hour_ago,
            delivered_events: an_hour_ago,
            mismatches: an_hour_ago,
        })
        .await
        .unwrap();
    assert!(store.has_notification(&recent_id).await.unwrap());
    assert_eq!(
        store.mismatches(&recent.out_trade_no).await.unwrap().len(),
        1
    );
    apply(
        &*store,
        &recent.out_trade_no,
        OrderStatus::Pending,
        Transition::Closed,
    )
    .await;

    // Rows stamped in 2001 are older than a 2002 cut-off, which no other test's rows are.
    let clock = Arc::new(ManualClock::at(978_307_200)); // 2001-01-01
    let Some(past) = open.open_with_clock(clock.clone()).await else {
        return;
    };
    let order = pending(&*past).await;
    let no = order.out_trade_no.clone();
    let old_id = unique("inbox");
    past.record_notification(&old_id, Some(&no)).await.unwrap();
    past.record_mismatch(&no, "old").await.unwrap();
    let paid_order = apply(&*past, &no, OrderStatus::Pending, paid(&unique("tx"))).await;
    let events = past.events_for_order(&no).await.unwrap();
    assert_eq!(events.len(), 1);
    past.mark_delivered(events[0].event_id()).await.unwrap();
    // A second order whose paid event stays undelivered.
    let undelivered = pending(&*past).await;
    apply(
        &*past,
        &undelivered.out_trade_no,
        OrderStatus::Pending,
        paid(&unique("tx")),
    )
    .await;
    let cut = OffsetDateTime::from_unix_timestamp(1_009_843_200).unwrap(); // 2002-01-01
    let report = past
        .prune(&PruneBefore {
            inbox: cut,
            delivered_events: cut,
            mismatches: cut,
        })
        .await
        .unwrap();
    assert!(report.inbox >= 1, "{report:?}");
    assert!(report.delivered_events >= 1, "{report:?}");
    assert!(report.mismatches >= 1, "{report:?}");
    assert!(!past.has_notification(&old_id).await.unwrap());
    assert!(past.mismatches(&no).await.unwrap().is_empty());
    assert!(past.events_for_order(&no).await.unwrap().is_empty());
    assert_eq!(
        past.events_for_order(&undelivered.out_trade_no)
            .await
            .unwrap()
            .len(),
        1,
        "an undelivered event is never pruned"
    );
    assert_eq!(
        past.get(&no).await.unwrap().unwrap(),
        paid_order,
        "orders stay"
    );
    deliver_all(&*past, &undelivered.out_trade_no).await;
    // And the recent rows are still there.
    assert!(store.has_notification(&recent_id).await.unwrap());
}

/// `list_orders` pages newest first and narrows by status, creation time and number prefix.
pub async fn orders_are_listed_newest_first_with_filters(open: &dyn OpenStore) {
    let store = open.open().await;
    // Orders of 2003 under one prefix of their own: no other test's orders match both.
    let clock = Arc::new(ManualClock::at(1_041_379_200)); // 2003-01-01
    let store = match open.open_with_clock(clock.clone()).await {
        Some(past) => past,
        None => store,
    };
    // The random end of a fresh number: unique across runs on a shared database.
    let fresh = OutTradeNo::generate();
    let fresh = fresh.as_str();
    let prefix = format!("L{}", &fresh[fresh.len().saturating_sub(12)..]);
    let mut numbers = Vec::new();
    for i in 0..5 {
        let no = OutTradeNo::try_from(format!("{prefix}{i}").as_str()).unwrap();
        let new = NewOrder::new(
            no.clone(),
            OpenId::try_from("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").unwrap(),
            Amount::from_fen(100).unwrap(),
            Description::try_from("listed").unwrap(),
        );
        store.insert_if_absent(new).await.unwrap();
        numbers.push(no);
        clock.advance(1);
    }
    // Two of them paid, so that the status filter has something to tell apart.
    for no in &numbers[..2] {
        apply(&*store, no, OrderStatus::Created, prepared(&unique("wx"))).await;
        apply(&*store, no, OrderStatus::Pending, paid(&unique("tx"))).await;
        deliver_all(&*store, no).await;
    }
    let mine = OrderFilter {
        number_prefix: Some(prefix.clone()),
        ..OrderFilter::default()
    };
    let all = store.list_orders(&mine, None, 100).await.unwrap();
    let listed: Vec<_> = all.iter().map(|o| o.out_trade_no.clone()).collect();
    let mut newest_first = numbers.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    // Pages of two, each after the last of the one before.
    let mut paged = Vec::new();
    let mut cursor: Option<ListCursor> = None;
    loop {
        let page = store.list_orders(&mine, cursor.as_ref(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(ListCursor::of(last));
        paged.extend(page.into_iter().map(|o| o.out_trade_no));
    }
    assert_eq!(paged, newest_first);
    let paid_only = OrderFilter {
        status: Some(OrderStatus::Paid),
        ..mine.clone()
    };
    let paid_numbers: Vec<_> = store
        .list_orders(&paid_only, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.out_trade_no)
        .collect();
    assert_eq!(paid_numbers, vec![numbers[1].clone(), numbers[0].clone()]);
    // A time window: the middle three by creation time.
    let first = &all[4];
    let window = OrderFilter {
        created_from: Some(first.created_at + Duration::seconds(1)),
        created_before: Some(first.created_at + Duration::seconds(4)),
        ..mine.clone()
    };
    let windowed = store.list_orders(&window, None, 100).await.unwrap();
    assert_eq!(windowed.len(), 3, "{windowed:?}");
    assert!(
        store
            .list_orders(
                &OrderFilter {
                    number_prefix: Some(format!("{prefix}X")),
                    ..OrderFilter::default()
                },
                None,
                100
            )
            .await
            .unwrap()
            .is_empty()
    );
    // Leave nothing CREATED behind but closed.
    for no in &numbers[2..] {
        apply(&*store, no, OrderStatus::Created, Transition::Closed).await;
    }
}

/// Mismatches are recorded per order, oldest first, and change nothing.
pub async fn mismatches_are_recorded(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = pending(&*store).await;
    let no = order.out_trade_no.clone();
    assert!(store.mismatches(&no).await.unwrap().is_empty());
    store
        .record_mismatch(&no, "amount.total 1 != 1999")
        .await
        .unwrap();
    store.record_mismatch(&no, "appid 不一致").await.unwrap();
    let found = store.mismatches(&no).await.unwrap();
    assert_eq!(
        found.iter().map(|m| m.detail.as_str()).collect::<Vec<_>>(),
        ["amount.total 1 != 1999", "appid 不一致"]
    );
    assert!(found.iter().all(|m| m.out_trade_no == no));
    assert_recent(found[0].recorded_at, "recorded_at");
    assert_eq!(get(&*store, &no).await, order);
    // About an order the store does not have.
    let unknown = OutTradeNo::generate();
    store
        .record_mismatch(&unknown, "unknown order")
        .await
        .unwrap();
    assert_eq!(store.mismatches(&unknown).await.unwrap().len(), 1);
    apply(&*store, &no, OrderStatus::Pending, Transition::Closed).await;
}

/// The recent mismatches of every order come newest first, and the limit is kept.
pub async fn recent_mismatches_are_newest_first(open: &dyn OpenStore) {
    let store = open.open().await;
    let no = OutTradeNo::generate();
    for detail in ["first", "second", "third"] {
        store.record_mismatch(&no, detail).await.unwrap();
    }
    // Other cases may record mismatches meanwhile on a shared database: look at this order's.
    let recent = store.recent_mismatches(1000).await.unwrap();
    let ours: Vec<&str> = recent
        .iter()
        .filter(|m| m.out_trade_no == no)
        .map(|m| m.detail.as_str())
        .collect();
    assert_eq!(ours, ["third", "second", "first"]);
    assert!(
        recent
            .windows(2)
            .all(|pair| pair[0].recorded_at >= pair[1].recorded_at),
        "newest first"
    );
    assert_eq!(store.recent_mismatches(2).await.unwrap().len(), 2);
}

/// An order's notifications are listed with it, whichever way they were recorded; those of
/// other orders and those without an order are not.
pub async fn notifications_are_listed_per_order(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = pending(&*store).await;
    let no = order.out_trade_no.clone();
    assert!(store.notifications_for_order(&no).await.unwrap().is_empty());
    let recorded = unique("EV-recorded");
    store
        .record_notification(&recorded, Some(&no))
        .await
        .unwrap();
    let with_payment = unique("EV-paid");
    store
        .transition_with_notification(
            &no,
            OrderStatus::Pending,
            paid(&unique("4200")),
            Some(&with_payment),
        )
        .await
        .unwrap();
    store
        .record_notification(&unique("EV-other"), Some(&OutTradeNo::generate()))
        .await
        .unwrap();
    store
        .record_notification(&unique("EV-none"), None)
        .await
        .unwrap();
    let listed = store.notifications_for_order(&no).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|n| n.event_id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![recorded.as_str(), with_payment.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(listed.iter().all(|n| n.out_trade_no.as_ref() == Some(&no)));
    assert!(
        listed.windows(2).all(|pair| {
            (pair[0].received_at, &pair[0].event_id) <= (pair[1].received_at, &pair[1].event_id)
        }),
        "oldest first"
    );
    for entry in &listed {
        assert_recent(entry.received_at, "received_at");
    }
    deliver_all(&*store, &no).await;
}

/// Orders are counted per status, every status once in `OrderStatus::ALL` order; exactly on a
/// store of its own, and at least this case's orders on a shared database.
pub async fn orders_are_counted_by_status(open: &dyn OpenStore) {
    let store = open.open().await;
    let total = |counts: &[(OrderStatus, u64)]| counts.iter().map(|(_, n)| n).sum::<u64>();
    let before = store.count_orders_by_status().await.unwrap();
    assert_eq!(
        before.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        OrderStatus::ALL
    );
    let created = insert(&*store).await;
    let open_order = pending(&*store).await;
    let paid_order = pending(&*store).await;
    apply(
        &*store,
        &paid_order.out_trade_no,
        OrderStatus::Pending,
        paid(&unique("4200")),
    )
    .await;
    let after = store.count_orders_by_status().await.unwrap();
    assert_eq!(
        after.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        OrderStatus::ALL
    );
    assert!(
        total(&after) >= total(&before) + 3,
        "{before:?} → {after:?}"
    );
    if total(&before) == 0 {
        let count = |status| after.iter().find(|(s, _)| *s == status).map(|(_, n)| *n);
        assert_eq!(count(OrderStatus::Created), Some(1));
        assert_eq!(count(OrderStatus::Pending), Some(1));
        assert_eq!(count(OrderStatus::Paid), Some(1));
        assert_eq!(total(&after), 3);
    }
    apply(
        &*store,
        &created.out_trade_no,
        OrderStatus::Created,
        Transition::Closed,
    )
    .await;
    apply(
        &*store,
        &open_order.out_trade_no,
        OrderStatus::Pending,
        Transition::Closed,
    )
    .await;
    deliver_all(&*store, &paid_order.out_trade_no).await;
}

/// Orders, notification ids, paid events and mismatches survive closing and reopening the store.
pub async fn data_survives_reopening(open: &dyn OpenStore) {
    let store = open.open().await;
    let paid_order = {
        let pending = pending(&*store).await;
        store
            .transition_with_notification(
                &pending.out_trade_no,
                OrderStatus::Pending,
                paid(&unique("4200")),
                Some(&format!("EV-{}", pending.out_trade_no)),
            )
            .await
            .unwrap()
            .into_order()
    };
    let created = insert(&*store).await;
    let notification = unique("EV");
    store
        .record_notification(&notification, None)
        .await
        .unwrap();
    store
        .record_mismatch(&created.out_trade_no, "detail")
        .await
        .unwrap();
    let events = store
        .events_for_order(&paid_order.out_trade_no)
        .await
        .unwrap();
    drop(store);

    let store = open.open().await;
    assert_eq!(get(&*store, &paid_order.out_trade_no).await, paid_order);
    assert_eq!(get(&*store, &created.out_trade_no).await, created);
    assert_eq!(
        store
            .record_notification(&notification, None)
            .await
            .unwrap(),
        InboxOutcome::Duplicate
    );
    assert!(
        store
            .has_notification(&format!("EV-{}", paid_order.out_trade_no))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .events_for_order(&paid_order.out_trade_no)
            .await
            .unwrap(),
        events
    );
    assert_eq!(
        store.mismatches(&created.out_trade_no).await.unwrap().len(),
        1
    );
    // And it still works after reopening.
    let again = store
        .transition(
            &paid_order.out_trade_no,
            OrderStatus::Pending,
            paid("other"),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict { .. }), "{again:?}");
    apply(
        &*store,
        &created.out_trade_no,
        OrderStatus::Created,
        Transition::Closed,
    )
    .await;
    deliver_all(&*store, &paid_order.out_trade_no).await;
}

// ---------------------------------------------------------------------------------------------
// Refunds

/// A `PAID` order of `fen`, its paid event delivered.
async fn paid_order_of(store: &dyn OrderStore, fen: u64) -> Order {
    let mut new = sample_order();
    new.amount = Amount::from_fen(fen).unwrap();
    let order = match store.insert_if_absent(new).await.unwrap() {
        InsertOutcome::Inserted(order) => order,
        InsertOutcome::Existing(order) => panic!("fresh order already existed: {order:?}"),
    };
    let no = order.out_trade_no.clone();
    apply(store, &no, OrderStatus::Created, prepared(&unique("wx"))).await;
    let paid_order = apply(store, &no, OrderStatus::Pending, paid(&unique("4200"))).await;
    deliver_all(store, &no).await;
    paid_order
}

fn new_refund(order: &Order, fen: u64) -> NewRefund {
    NewRefund {
        out_refund_no: OutRefundNo::generate(),
        out_trade_no: order.out_trade_no.clone(),
        amount: Amount::from_fen(fen).unwrap(),
        reason: Some(RefundReason::try_from("商品已售完").unwrap()),
    }
}

async fn reserve(store: &dyn OrderStore, refund: NewRefund) -> Refund {
    match store.reserve_refund(refund).await.unwrap() {
        RefundReservation::Reserved(refund) => refund,
        RefundReservation::Existing(refund) => panic!("fresh refund already existed: {refund:?}"),
    }
}

async fn update(
    store: &dyn OrderStore,
    refund: &Refund,
    update: RefundUpdate,
    notification_id: Option<&str>,
) -> Refund {
    match store
        .update_refund(&refund.out_refund_no, update, notification_id)
        .await
        .unwrap()
    {
        RefundUpdateOutcome::Applied(after) => {
            let stored = store.get_refund(&refund.out_refund_no).await.unwrap();
            assert_eq!(
                stored.as_ref(),
                Some(&after),
                "get_refund returns the update"
            );
            after
        }
        RefundUpdateOutcome::AlreadyApplied(after) => panic!("expected Applied, got {after:?}"),
    }
}

fn refund_events(events: &[Event]) -> Vec<(String, RefundStatus)> {
    events
        .iter()
        .filter_map(Event::as_refund)
        .map(|e| (e.out_refund_no.to_string(), e.status))
        .collect()
}

/// A refund is reserved `PROCESSING` with its amount held, learns its refund id, succeeds with
/// an event and the order's refunded total; a closed one releases its amount; repeats change
/// nothing and impossible moves are refused.
pub async fn refund_lifecycle(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = paid_order_of(&*store, 1999).await;
    let no = order.out_trade_no.clone();
    assert_eq!(
        (
            order.refund_held_fen,
            order.refunded_fen,
            order.refund_count
        ),
        (0, 0, 0)
    );
    assert_eq!(order.refundable_fen(), 1999);

    let first = new_refund(&order, 500);
    let reserved = reserve(&*store, first.clone()).await;
    assert_eq!(reserved.status, RefundStatus::Processing);
    assert_eq!(reserved.out_refund_no, first.out_refund_no);
    assert_eq!(reserved.out_trade_no, no);
    assert_eq!(reserved.amount, first.amount);
    assert_eq!(reserved.reason, first.reason);
    assert_eq!(
        (reserved.refund_id.as_ref(), reserved.succeeded_at),
        (None, None)
    );
    assert_recent(reserved.created_at, "refund created_at");
    assert_eq!(
        store.get_refund(&first.out_refund_no).await.unwrap(),
        Some(reserved.clone())
    );
    let held = get(&*store, &no).await;
    assert_eq!(
        (
            held.status,
            held.refund_held_fen,
            held.refunded_fen,
            held.refund_count
        ),
        (OrderStatus::Paid, 500, 0, 1)
    );

    // The upstream accepted it: its refund id is recorded, once.
    let mut accepted = RefundUpdate::to(RefundStatus::Processing);
    accepted.refund_id = Some(unique("5030"));
    let processing = update(&*store, &reserved, accepted.clone(), None).await;
    assert_eq!(processing.refund_id, accepted.refund_id);
    assert!(
        !store
            .update_refund(&reserved.out_refund_no, accepted, None)
            .await
            .unwrap()
            .is_applied()
    );

    let notification = unique("EV");
    let succeeded_at = OffsetDateTime::now_utc() - Duration::seconds(1) + Duration::microseconds(3);
    let success = RefundUpdate {
        status: RefundStatus::Success,
        refund_id: None,
        user_received_account: Some("支付用户零钱".to_owned()),
        failure: None,
        succeeded_at: Some(succeeded_at),
    };
    let done = update(&*store, &processing, success.clone(), Some(&notification)).await;
    assert_eq!(done.status, RefundStatus::Success);
    assert_eq!(done.refund_id, processing.refund_id, "kept");
    assert_eq!(done.user_received_account.as_deref(), Some("支付用户零钱"));
    assert_eq!(done.succeeded_at, Some(truncate_to_millis(succeeded_at)));
    assert!(store.has_notification(&notification).await.unwrap());
    let after = get(&*store, &no).await;
    assert_eq!((after.refund_held_fen, after.refunded_fen), (500, 500));
    assert!(!after.is_fully_refunded());

    // A repeat (a duplicate notification) is a success that changes nothing but the inbox.
    let duplicate = unique("EV");
    let again = store
        .update_refund(&done.out_refund_no, success, Some(&duplicate))
        .await
        .unwrap();
    assert_eq!(again, RefundUpdateOutcome::AlreadyApplied(done.clone()));
    assert!(store.has_notification(&duplicate).await.unwrap());
    let err = store
        .update_refund(
            &done.out_refund_no,
            RefundUpdate::to(RefundStatus::Closed),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::RefundImpossible {
                from: RefundStatus::Success,
                to: RefundStatus::Closed,
                ..
            }
        ),
        "{err:?}"
    );

    // A second refund of the rest is refused once upstream: its amount is released.
    let second = reserve(&*store, new_refund(&order, 1499)).await;
    let over = store
        .reserve_refund(new_refund(&order, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            over,
            StoreError::RefundExceedsPaid {
                paid: 1999,
                held: 1999,
                requested: 1,
                ..
            }
        ),
        "{over:?}"
    );
    let mut refused = RefundUpdate::to(RefundStatus::Closed);
    refused.failure = Some("NOT_ENOUGH: 基本账户余额不足".to_owned());
    let closed = update(&*store, &second, refused, None).await;
    assert_eq!(
        closed.failure.as_deref(),
        Some("NOT_ENOUGH: 基本账户余额不足")
    );
    assert_eq!(get(&*store, &no).await.refund_held_fen, 500);

    // Then the rest can be refunded after all, and the order reads fully refunded.
    let third = reserve(&*store, new_refund(&order, 1499)).await;
    update(
        &*store,
        &third,
        RefundUpdate::to(RefundStatus::Success),
        None,
    )
    .await;
    let full = get(&*store, &no).await;
    assert_eq!(
        (full.refund_held_fen, full.refunded_fen, full.refund_count),
        (1999, 1999, 3)
    );
    assert!(full.is_fully_refunded());
    assert_eq!(
        full.status,
        OrderStatus::Paid,
        "the order keeps its payment status"
    );

    let refunds = store.refunds_for_order(&no).await.unwrap();
    let mut numbers: Vec<_> = refunds
        .iter()
        .map(|r| r.out_refund_no.to_string())
        .collect();
    numbers.sort();
    let mut expected = vec![
        done.out_refund_no.to_string(),
        closed.out_refund_no.to_string(),
        third.out_refund_no.to_string(),
    ];
    expected.sort();
    assert_eq!(numbers, expected);

    let events = store.events_for_order(&no).await.unwrap();
    let mut got = refund_events(&events);
    got.sort();
    let mut want = vec![
        (done.out_refund_no.to_string(), RefundStatus::Success),
        (closed.out_refund_no.to_string(), RefundStatus::Closed),
        (third.out_refund_no.to_string(), RefundStatus::Success),
    ];
    want.sort();
    assert_eq!(got, want, "one event per settled refund: {events:?}");
    let event = events
        .iter()
        .filter_map(Event::as_refund)
        .find(|e| e.out_refund_no == done.out_refund_no)
        .unwrap();
    assert_eq!(
        event.event_id,
        RefundEvent::id_for(&done.out_refund_no, RefundStatus::Success)
    );
    assert_eq!(event.out_trade_no, no);
    assert_eq!(Some(&event.transaction_id), order.transaction_id.as_ref());
    assert_eq!(event.refund_id, done.refund_id);
    assert_eq!(event.amount, done.amount);
    assert_eq!(event.currency, order.currency);
    assert_eq!(event.delivered_at, None);
    let undelivered = store.undelivered_events(10_000).await.unwrap();
    assert!(undelivered.iter().any(|e| e.event_id() == event.event_id));
    deliver_all(&*store, &no).await;
    let undelivered = store.undelivered_events(10_000).await.unwrap();
    assert!(!undelivered.iter().any(|e| e.out_trade_no() == &no));
}

/// An abnormal refund keeps holding its amount until it is resolved either way.
pub async fn abnormal_refund_holds_its_amount(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = paid_order_of(&*store, 100).await;
    let refund = reserve(&*store, new_refund(&order, 60)).await;
    let mut abnormal = RefundUpdate::to(RefundStatus::Abnormal);
    abnormal.failure = Some("the payer's card was cancelled".to_owned());
    let stuck = update(&*store, &refund, abnormal, None).await;
    let err = store
        .reserve_refund(new_refund(&order, 41))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RefundExceedsPaid { held: 60, .. }),
        "{err:?}"
    );
    let err = store
        .update_refund(
            &stuck.out_refund_no,
            RefundUpdate::to(RefundStatus::Processing),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RefundImpossible { .. }),
        "{err:?}"
    );
    update(
        &*store,
        &stuck,
        RefundUpdate::to(RefundStatus::Closed),
        None,
    )
    .await;
    assert_eq!(get(&*store, &order.out_trade_no).await.refund_held_fen, 0);
    let events = store.events_for_order(&order.out_trade_no).await.unwrap();
    let mut got = refund_events(&events);
    got.sort_by_key(|(_, status)| status.as_str());
    assert_eq!(
        got,
        vec![
            (stuck.out_refund_no.to_string(), RefundStatus::Abnormal),
            (stuck.out_refund_no.to_string(), RefundStatus::Closed),
        ]
    );
    deliver_all(&*store, &order.out_trade_no).await;
}

/// The same refund number twice is one refund; on another order it is refused.
pub async fn refund_number_is_idempotent(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = paid_order_of(&*store, 300).await;
    let refund = new_refund(&order, 100);
    let first = reserve(&*store, refund.clone()).await;
    let again = store.reserve_refund(refund.clone()).await.unwrap();
    assert_eq!(again, RefundReservation::Existing(first.clone()));
    let held = get(&*store, &order.out_trade_no).await;
    assert_eq!(
        (held.refund_held_fen, held.refund_count),
        (100, 1),
        "held once"
    );

    let other = paid_order_of(&*store, 300).await;
    let mut taken = refund.clone();
    taken.out_trade_no = other.out_trade_no.clone();
    let err = store.reserve_refund(taken).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::RefundNumberTaken { out_trade_no, .. } if out_trade_no == &order.out_trade_no),
        "{err:?}"
    );
    assert_eq!(get(&*store, &other.out_trade_no).await.refund_held_fen, 0);

    // Concurrent reservations of one number: one reserves, the others see it.
    let contested = new_refund(&other, 10);
    let outcomes = futures_join_all((0..8).map(|_| {
        let store = store.clone();
        let contested = contested.clone();
        tokio::spawn(async move { store.reserve_refund(contested).await.unwrap() })
    }))
    .await;
    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, RefundReservation::Reserved(_)))
        .count();
    assert_eq!(reserved, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| o.refund().out_refund_no == contested.out_refund_no)
    );
    let held = get(&*store, &other.out_trade_no).await;
    assert_eq!((held.refund_held_fen, held.refund_count), (10, 1));
    update(
        &*store,
        &first,
        RefundUpdate::to(RefundStatus::Closed),
        None,
    )
    .await;
    update(
        &*store,
        outcomes[0].refund(),
        RefundUpdate::to(RefundStatus::Closed),
        None,
    )
    .await;
    deliver_all(&*store, &order.out_trade_no).await;
    deliver_all(&*store, &other.out_trade_no).await;
}

/// Only a `PAID` order can be refunded; unknown orders and refunds are errors.
pub async fn refund_of_unpaid_order_is_refused(open: &dyn OpenStore) {
    let store = open.open().await;
    let created = insert(&*store).await;
    let err = store
        .reserve_refund(new_refund(&created, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OrderNotPaid {
                status: OrderStatus::Created,
                ..
            }
        ),
        "{err:?}"
    );
    let pending_order = apply(
        &*store,
        &created.out_trade_no,
        OrderStatus::Created,
        prepared(&unique("wx")),
    )
    .await;
    let err = store
        .reserve_refund(new_refund(&pending_order, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OrderNotPaid {
                status: OrderStatus::Pending,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(get(&*store, &created.out_trade_no).await.refund_count, 0);
    assert!(
        store
            .refunds_for_order(&created.out_trade_no)
            .await
            .unwrap()
            .is_empty()
    );
    apply(
        &*store,
        &created.out_trade_no,
        OrderStatus::Pending,
        Transition::Closed,
    )
    .await;

    let mut unknown = new_refund(&created, 1);
    unknown.out_trade_no = OutTradeNo::generate();
    let err = store.reserve_refund(unknown.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(
        store.get_refund(&unknown.out_refund_no).await.unwrap(),
        None
    );
    let err = store
        .update_refund(
            &unknown.out_refund_no,
            RefundUpdate::to(RefundStatus::Success),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RefundNotFound { .. }), "{err:?}");
}

/// 32 concurrent refunds of 1 fen against an order of 10 fen: exactly 10 are reserved.
pub async fn concurrent_refunds_never_exceed_paid(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = paid_order_of(&*store, 10).await;
    let outcomes = futures_join_all((0..32).map(|_| {
        let store = store.clone();
        let refund = new_refund(&order, 1);
        tokio::spawn(async move { store.reserve_refund(refund).await })
    }))
    .await;
    let reserved: Vec<&Refund> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(RefundReservation::Reserved(refund)) => Some(refund),
            _ => None,
        })
        .collect();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StoreError::RefundExceedsPaid { .. })))
        .count();
    assert_eq!(reserved.len(), 10, "{outcomes:?}");
    assert_eq!(refused, 22, "{outcomes:?}");
    let after = get(&*store, &order.out_trade_no).await;
    assert_eq!((after.refund_held_fen, after.refund_count), (10, 10));
    assert_eq!(
        store
            .refunds_for_order(&order.out_trade_no)
            .await
            .unwrap()
            .len(),
        10
    );
    for refund in reserved {
        update(
            &*store,
            refund,
            RefundUpdate::to(RefundStatus::Success),
            None,
        )
        .await;
    }
    let after = get(&*store, &order.out_trade_no).await;
    assert!(after.is_fully_refunded());
    deliver_all(&*store, &order.out_trade_no).await;
}

/// An order takes at most `MAX_REFUNDS_PER_ORDER` refunds, closed ones included.
pub async fn refunds_per_order_are_limited(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = paid_order_of(&*store, 1000).await;
    let limit = crate::refund::MAX_REFUNDS_PER_ORDER;
    let mut last = None;
    for _ in 0..limit {
        last = Some(reserve(&*store, new_refund(&order, 1)).await);
    }
    update(
        &*store,
        &last.unwrap(),
        RefundUpdate::to(RefundStatus::Closed),
        None,
    )
    .await;
    let err = store
        .reserve_refund(new_refund(&order, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TooManyRefunds { limit: l, .. } if l == limit),
        "{err:?}"
    );
    let after = get(&*store, &order.out_trade_no).await;
    assert_eq!(
        (after.refund_count, after.refund_held_fen),
        (limit, u64::from(limit) - 1)
    );
    deliver_all(&*store, &order.out_trade_no).await;
}

/// `list_stale_refunds` finds refunds of a status last changed before a cutoff, oldest first.
pub async fn list_stale_refunds(open: &dyn OpenStore) {
    let store = open.open().await;
    let order = paid_order_of(&*store, 100).await;
    let older = reserve(&*store, new_refund(&order, 10)).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let newer = reserve(&*store, new_refund(&order, 10)).await;
    let cutoff = OffsetDateTime::now_utc() + Duration::seconds(1);
    let ours = |refunds: Vec<Refund>| -> Vec<OutRefundNo> {
        refunds
            .into_iter()
            .filter(|r| r.out_trade_no == order.out_trade_no)
            .map(|r| r.out_refund_no)
            .collect()
    };
    let stale = store
        .list_stale_refunds(RefundStatus::Processing, cutoff, 100_000)
        .await
        .unwrap();
    assert_eq!(
        ours(stale),
        vec![older.out_refund_no.clone(), newer.out_refund_no.clone()]
    );
    let before_newer = newer.updated_at;
    let stale = store
        .list_stale_refunds(RefundStatus::Processing, before_newer, 100_000)
        .await
        .unwrap();
    assert_eq!(
        ours(stale),
        vec![older.out_refund_no.clone()],
        "strictly before"
    );
    update(
        &*store,
        &older,
        RefundUpdate::to(RefundStatus::Success),
        None,
    )
    .await;
    let stale = store
        .list_stale_refunds(RefundStatus::Processing, cutoff, 100_000)
        .await
        .unwrap();
    assert_eq!(ours(stale), vec![newer.out_refund_no.clone()]);
    let succeeded = store
        .list_stale_refunds(RefundStatus::Success, cutoff, 100_000)
        .await
        .unwrap();
    assert_eq!(ours(succeeded), vec![older.out_refund_no.clone()]);
    update(
        &*store,
        &newer,
        RefundUpdate::to(RefundStatus::Closed),
        None,
    )
    .await;
    deliver_all(&*store, &order.out_trade_no).await;
}

/// Spawns every task first (so they run concurrently), then joins them, panicking with a
/// task's panic.
async fn futures_join_all<T: Send + 'static>(
    tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let tasks: Vec<_> = tasks.into_iter().collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

//! Reconciliation reaches every pending order, however many wait: the starvation that the
//! 100-oldest-orders pass had (100 orders the upstream reports PAYERROR hid a paid order whose
//! notification was lost), on SQLite and PostgreSQL; a budget smaller than the backlog; and
//! the back-off of orders that stay open upstream; pruning past the retention; and the orders
//! a failed precreate left `CREATED`.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use support::{Harness, OPENID, Op, WAIT, precreate_on};
use wxpay_core::engine::Engine;
use wxpay_core::fields::OutTradeNo;
use wxpay_core::order::OrderStatus;
use wxpay_core::provider::{ProviderError, ProviderErrorKind};
use wxpay_core::store::OrderStore;
use wxpay_sandbox::SimulatedOutcome;

/// A run-unique prefix of order numbers (the PostgreSQL database may be reused).
fn run_prefix() -> String {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("W{}", nanos % 10_000_000_000)
}

/// An engine over `store` whose upstream is the harness's sandbox; notifications never arrive.
/// Its reconciler lease is its own: the tests share the PostgreSQL database but not their work.
fn engine_over(h: &Harness, store: Arc<dyn OrderStore>) -> Engine {
    Engine::builder(h.provider.clone(), store)
        .reconcile(Duration::ZERO, Duration::from_secs(3600))
        .reconcile_lease(format!("reconcile-{}", run_prefix()))
        .query_upstream_on_status(false)
        .build()
        .unwrap()
}

/// `count` orders the payer failed to pay (`PAYERROR` upstream), then one paid order whose
/// notification was lost; one pass must find the paid one and mark the failed ones FAILED.
async fn starvation(store: Arc<dyn OrderStore>, count: usize) {
    let h = Harness::builder().unreachable_notify().start().await;
    let engine = engine_over(&h, store.clone());
    let prefix = run_prefix();
    for i in 0..count {
        let reply = precreate_on(
            &engine,
            &json!({"openid": OPENID, "amount": 100, "out_trade_no": format!("{prefix}F{i:04}")}),
        )
        .await;
        h.sandbox
            .pay(reply.pay_request(SimulatedOutcome::PayError))
            .await
            .unwrap();
    }
    let paid_no = format!("{prefix}PAID");
    let reply = precreate_on(
        &engine,
        &json!({"openid": OPENID, "amount": 100, "out_trade_no": paid_no}),
    )
    .await;
    let outcome = h
        .sandbox
        .pay(reply.pay_request(SimulatedOutcome::Success))
        .await
        .unwrap();
    h.sandbox
        .wait_for_attempts(&paid_no, 1, WAIT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let report = engine.reconcile().await;
    let paid = store
        .get(&OutTradeNo::try_from(paid_no.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Paid, "{report:?}");
    assert_eq!(paid.transaction_id, outcome.transaction_id);
    assert_eq!(report.paid, 1, "{report:?}");
    assert_eq!(report.payment_failed, count, "{report:?}");
    assert!(!report.budget_exhausted, "{report:?}");
    let failed = store
        .get(&OutTradeNo::try_from(format!("{prefix}F0000").as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, OrderStatus::Failed);
    assert!(
        failed
            .failure_reason
            .as_deref()
            .is_some_and(|r| r.contains("failed")),
        "{failed:?}"
    );
    // Nothing is left to ask about.
    let again = engine.reconcile().await;
    assert_eq!((again.checked, again.paid), (0, 0), "{again:?}");
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_failed_payments_do_not_hide_a_paid_order_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("wxpay-starvation-{}", run_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("orders.db").display());
    let store = wxpay_core::store::SqlxStore::connect(&url).await.unwrap();
    starvation(Arc::new(store), 100).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// On a database of its own (the shared test database holds other tests' pending orders,
/// which the walk would ask about too).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_failed_payments_do_not_hide_a_paid_order_on_postgres() {
    let Ok(url) = std::env::var("WXPAY_TEST_POSTGRES_URL") else {
        assert!(
            !std::env::var("CI").is_ok_and(|ci| ci == "true"),
            "WXPAY_TEST_POSTGRES_URL is required under CI=true"
        );
        eprintln!("skipped: set WXPAY_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let database = format!("wxpay_starvation_{}", run_prefix().to_lowercase());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await
        .unwrap();
    let own_url = match url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => unreachable!("a PostgreSQL URL names its database"),
    };
    let store = wxpay_core::store::SqlxStore::connect(&own_url)
        .await
        .unwrap();
    starvation(Arc::new(store.clone()), 100).await;
    store.close().await;
    sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_budget_reaches_every_order_in_turn_and_asks_none_twice() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| {
            b.reconcile(Duration::ZERO, Duration::from_secs(3600))
                .query_upstream_on_status(false)
                .reconcile_budget(10)
        })
        .start()
        .await;
    for i in 0..30 {
        h.precreate_ok(&format!("WAITING{i:04}"), 100).await;
    }
    let reply = h.precreate_ok("WAITINGPAID", 100).await;
    h.pay(&reply).await;
    h.sandbox
        .wait_for_attempts("WAITINGPAID", 1, WAIT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    for pass in 0..3 {
        let report = h.engine.reconcile().await;
        assert_eq!(report.checked, 10, "pass {pass}: {report:?}");
        assert!(report.budget_exhausted, "pass {pass}: {report:?}");
        assert_eq!(report.paid, 0, "pass {pass}: {report:?}");
    }
    // The fourth pass reaches the paid order; the thirty asked already wait out their back-off.
    let report = h.engine.reconcile().await;
    assert_eq!((report.checked, report.paid), (1, 1), "{report:?}");
    assert_eq!(report.deferred, 30, "{report:?}");
    assert_eq!(h.provider.queries(), 31, "no order was asked twice");
    assert_eq!(h.store.order("WAITINGPAID").await.status, OrderStatus::Paid);
    // Until the back-off passes, nothing more is asked.
    let report = h.engine.reconcile().await;
    assert_eq!((report.checked, report.deferred), (0, 30), "{report:?}");
}

/// Two instances on one store reconcile at the same moment: the one holding the lease asks
/// about each order once, the other does nothing and says so; the holder keeps the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_reconcile_one_at_a_time() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| {
            b.reconcile(Duration::ZERO, Duration::from_secs(3600))
                .query_upstream_on_status(false)
        })
        .start()
        .await;
    let other = h
        .engine_builder()
        .reconcile(Duration::ZERO, Duration::from_secs(3600))
        .query_upstream_on_status(false)
        .build()
        .unwrap();
    for i in 0..5 {
        h.precreate_ok(&format!("TWOINST{i:04}"), 100).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;

    let (first, second) = tokio::join!(h.engine.reconcile(), other.reconcile());
    let harness_won = !first.lease_held_elsewhere;
    let (holder, idle) = if harness_won {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(holder.checked, 5, "{holder:?}");
    assert!(!holder.lease_held_elsewhere, "{holder:?}");
    assert!(idle.lease_held_elsewhere, "{idle:?}");
    assert_eq!(idle.checked + idle.refunds.checked, 0, "{idle:?}");
    assert_eq!(h.provider.queries(), 5, "each order asked once");
    // The lease stays with its holder: the other instance keeps waiting.
    let (first, second) = tokio::join!(h.engine.reconcile(), other.reconcile());
    assert_eq!(
        (first.lease_held_elsewhere, second.lease_held_elsewhere),
        (!harness_won, harness_won),
        "{first:?} {second:?}"
    );
    assert_eq!(h.provider.queries(), 5, "the back-off holds on the holder");
    // The holder gives the lease back (a graceful shutdown): the other takes over at once.
    let (holder, idle) = if harness_won {
        (&h.engine, &other)
    } else {
        (&other, &h.engine)
    };
    holder.release_leases().await.unwrap();
    let report = idle.reconcile().await;
    assert!(!report.lease_held_elsewhere, "{report:?}");
    assert!(holder.reconcile().await.lease_held_elsewhere);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_open_upstream_is_asked_again_after_a_growing_back_off() {
    let clock = Arc::new(wxpay_core::clock::ManualClock::at(
        time::OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let engine_clock = clock.clone();
    let h = Harness::builder()
        .configure(move |b| {
            b.clock(engine_clock)
                .reconcile(Duration::ZERO, Duration::from_secs(3600))
                .query_upstream_on_status(false)
                .reconcile_backoff([Duration::from_secs(60), Duration::from_secs(300)])
        })
        .start()
        .await;
    h.precreate_ok("BACKOFF0001", 100).await;
    // The store stamps real time and the manual clock started at a whole second before the
    // harness did: step well past the order's last change.
    clock.advance(30);
    assert_eq!(h.engine.reconcile().await.checked, 1);
    // 1 min after the first answer, not before.
    clock.advance(59);
    assert_eq!(h.engine.reconcile().await.checked, 0);
    clock.advance(1);
    assert_eq!(h.engine.reconcile().await.checked, 1);
    // Then 5 min, and 5 min again (the last step repeats).
    clock.advance(299);
    assert_eq!(h.engine.reconcile().await.checked, 0);
    clock.advance(1);
    assert_eq!(h.engine.reconcile().await.checked, 1);
    clock.advance(300);
    assert_eq!(h.engine.reconcile().await.checked, 1);
    assert_eq!(h.provider.queries(), 4);
    assert_eq!(
        h.store.order("BACKOFF0001").await.status,
        OrderStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_prunes_past_the_retention_at_most_hourly() {
    let clock = Arc::new(wxpay_core::clock::ManualClock::at(
        time::OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let engine_clock = clock.clone();
    let h = Harness::builder()
        .configure(move |b| b.clock(engine_clock))
        .start()
        .await;
    h.paid_order("PRUNE000001", 100).await;
    let no = OutTradeNo::try_from("PRUNE000001").unwrap();
    assert_eq!(h.store.events("PRUNE000001").await.len(), 1);

    // Within the retention: nothing goes.
    let report = h.engine.reconcile().await;
    assert_eq!(report.pruned, wxpay_core::store::PruneReport::default());

    // 31 days on, past the inbox's 30: its entries go, the undelivered event and the order stay.
    clock.advance(31 * 24 * 3600);
    let report = h.engine.reconcile().await;
    assert!(report.pruned.inbox >= 1, "{report:?}");
    assert_eq!(report.pruned.delivered_events, 0, "{report:?}");
    assert_eq!(h.store.events("PRUNE000001").await.len(), 1);
    assert_eq!(
        h.store.get(&no).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );
    // The next pass within the hour does not prune again.
    clock.advance(60);
    assert_eq!(
        h.engine.reconcile().await.pruned,
        wxpay_core::store::PruneReport::default()
    );
}

/// Orders a failed precreate left `CREATED`: one whose prepay created nothing upstream, one
/// whose prepay took effect upstream but was never recorded (the store failed after the
/// answer). No payer holds a prepay of either, so the reconciler closes both at once (the
/// second upstream too) instead of leaving them `CREATED` for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_a_failed_precreate_left_created_are_closed_here_and_upstream() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| {
            b.reconcile(Duration::ZERO, Duration::from_secs(3600))
                .query_upstream_on_status(false)
        })
        .start()
        .await;
    h.provider.fail_next_prepay(ProviderError {
        kind: ProviderErrorKind::Unavailable,
        upstream_code: Some("SYSTEM_ERROR".to_owned()),
        message: "系统异常，请稍后重试".to_owned(),
        may_have_taken_effect: false,
    });
    h.precreate(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "CREATED0001"}))
        .await
        .assert_error(StatusCode::BAD_GATEWAY, "UPSTREAM_UNAVAILABLE");
    h.store.fail(Op::Transition);
    h.precreate(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "CREATED0002"}))
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE");
    h.store.recover(Op::Transition);
    assert_eq!(
        h.store.order("CREATED0001").await.status,
        OrderStatus::Created
    );
    assert_eq!(
        h.store.order("CREATED0002").await.status,
        OrderStatus::Created
    );
    assert_eq!(h.sandbox.trade("CREATED0001"), None);
    assert_eq!(h.sandbox.trade("CREATED0002").unwrap().state, "NOTPAY");
    tokio::time::sleep(Duration::from_millis(5)).await;

    let report = h.engine.reconcile().await;
    assert_eq!((report.checked, report.closed), (2, 2), "{report:?}");
    assert_eq!(
        h.store.order("CREATED0001").await.status,
        OrderStatus::Closed
    );
    assert_eq!(
        h.store.order("CREATED0002").await.status,
        OrderStatus::Closed
    );
    assert_eq!(h.sandbox.trade("CREATED0001"), None);
    assert_eq!(h.sandbox.trade("CREATED0002").unwrap().state, "CLOSED");
    assert_eq!(
        h.provider.closes(),
        1,
        "only the order upstream is closed there"
    );
    let again = h.engine.reconcile().await;
    assert_eq!(again.checked, 0, "{again:?}");
}

//! `GET {prefix}/orders/{out_trade_no}` and reconciliation, against the sandbox.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use support::{Harness, Op, WAIT};
use wxpay_core::clock::ManualClock;
use wxpay_core::order::OrderStatus;
use wxpay_core::provider::{PaymentState, ProviderError, ProviderErrorKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_a_pending_order() {
    let h = Harness::builder().operator().start().await;
    h.precreate_ok("STATUS00001", 456).await;
    let reply = h.status("STATUS00001").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers.get("cache-control").unwrap(), "no-store");
    let json = reply.json();
    // Anyone (body mode, no token) learns the status and nothing else.
    assert_eq!(
        json,
        serde_json::json!({"out_trade_no": "STATUS00001", "status": "PENDING"})
    );
    let operator = h.status_as_operator("STATUS00001").await.json();
    assert_eq!(operator["amount"], 456);
    assert_eq!(operator["openid"], support::OPENID);
    // Asked upstream (the default), which said NOTPAY.
    assert_eq!(h.provider.queries(), 1);
    assert_eq!(
        h.store.order("STATUS00001").await.status,
        OrderStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_decodes_percent_encoded_order_numbers() {
    let h = Harness::start().await;
    h.precreate_ok("STATUS|0002*", 789).await;
    for spelled in ["STATUS|0002*", "STATUS%7C0002%2A", "STATUS%7c0002*"] {
        let reply = h.status(spelled).await;
        assert_eq!(reply.status, StatusCode::OK, "{spelled}");
        assert_eq!(reply.json()["out_trade_no"], "STATUS|0002*", "{spelled}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_a_paid_order_needs_no_upstream_call() {
    let h = Harness::builder().operator().start().await;
    let outcome = h.paid_order("STATUSPAID1", 100).await;
    let json = h.status_as_operator("STATUSPAID1").await.json();
    assert_eq!(json["status"], "PAID");
    assert_eq!(json["amount"], 100);
    assert_eq!(
        json["transaction_id"].as_str(),
        outcome.transaction_id.as_deref()
    );
    let paid_at = json["paid_at"].as_str().unwrap();
    time::OffsetDateTime::parse(paid_at, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(h.provider.queries(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_applies_a_payment_whose_notification_never_arrived() {
    let h = Harness::builder()
        .unreachable_notify()
        .operator()
        .start()
        .await;
    let reply = h.precreate_ok("LOSTNOTIFY1", 100).await;
    let outcome = h.pay(&reply).await;
    // The sandbox tried and failed to notify.
    let attempts = h
        .sandbox
        .wait_for_attempts("LOSTNOTIFY1", 1, WAIT)
        .await
        .unwrap();
    assert!(attempts.iter().all(|r| !r.acknowledged));
    assert_eq!(
        h.store.order("LOSTNOTIFY1").await.status,
        OrderStatus::Pending
    );

    let json = h.status_as_operator("LOSTNOTIFY1").await.json();
    assert_eq!(json["status"], "PAID");
    assert_eq!(
        json["transaction_id"].as_str(),
        outcome.transaction_id.as_deref()
    );
    assert!(json["paid_at"].is_string());
    let order = h.store.order("LOSTNOTIFY1").await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.payer.as_deref(), Some(support::OPENID));
    // Exactly as a notification would: one outbox event.
    let events = h.store.events("LOSTNOTIFY1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, "paid-LOSTNOTIFY1");
    assert_eq!(h.provider.queries(), 1);

    // Once PAID, polling asks the upstream no more.
    for _ in 0..3 {
        assert_eq!(h.status("LOSTNOTIFY1").await.json()["status"], "PAID");
    }
    assert_eq!(h.provider.queries(), 1);
    assert_eq!(h.store.events("LOSTNOTIFY1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_upstream_queries_answers_from_the_store() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| b.query_upstream_on_status(false))
        .start()
        .await;
    let reply = h.precreate_ok("NOQUERY0001", 100).await;
    h.pay(&reply).await;
    h.sandbox
        .wait_for_attempts("NOQUERY0001", 1, WAIT)
        .await
        .unwrap();
    let json = h.status("NOQUERY0001").await.json();
    assert_eq!(json["status"], "PENDING");
    assert!(json.get("transaction_id").is_none());
    assert_eq!(h.provider.queries(), 0);
    assert!(h.store.events("NOQUERY0001").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_falls_back_to_the_store_when_the_upstream_fails() {
    // Asks again at once, so the per-order query interval is off here.
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| b.status_query_interval(std::time::Duration::ZERO))
        .start()
        .await;
    let reply = h.precreate_ok("QUERYFAIL01", 100).await;
    h.pay(&reply).await;
    h.provider.fail_queries(Some(ProviderError {
        kind: ProviderErrorKind::Unavailable,
        upstream_code: Some("SYSTEM_ERROR".to_owned()),
        message: "busy".to_owned(),
        may_have_taken_effect: false,
    }));
    let reply = h.status("QUERYFAIL01").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "PENDING");
    h.provider.fail_queries(None);
    assert_eq!(h.status("QUERYFAIL01").await.json()["status"], "PAID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_an_upstream_payment_survives_a_store_failure() {
    // Asks again at once, so the per-order query interval is off here.
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| b.status_query_interval(std::time::Duration::ZERO))
        .start()
        .await;
    let reply = h.precreate_ok("STATUSFAIL1", 100).await;
    h.pay(&reply).await;
    // Reading works but writing the payment fails: answer what is stored, change nothing.
    h.store.fail(Op::Transition);
    let reply = h.status("STATUSFAIL1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "PENDING");
    assert!(h.store.events("STATUSFAIL1").await.is_empty());
    h.store.recover_all();
    assert_eq!(h.status("STATUSFAIL1").await.json()["status"], "PAID");
    assert_eq!(h.store.events("STATUSFAIL1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_asks_the_upstream_once_per_order_per_interval() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| b.status_query_interval(std::time::Duration::from_secs(3600)))
        .start()
        .await;
    h.precreate_ok("THROTTLED01", 100).await;
    for _ in 0..20 {
        assert_eq!(h.status("THROTTLED01").await.json()["status"], "PENDING");
    }
    assert_eq!(h.provider.queries(), 1, "twenty polls, one upstream query");
    h.precreate_ok("THROTTLED02", 100).await;
    h.status("THROTTLED02").await;
    assert_eq!(h.provider.queries(), 2, "the interval is per order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_errors() {
    let h = Harness::start().await;
    h.status("NOSUCHORDER1")
        .await
        .assert_error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");
    for bad in [
        "abc",
        "x".repeat(33).as_str(),
        "bad%20number",
        "has.dot.1234",
    ] {
        let json = h
            .status(bad)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "INVALID_FIELD");
        assert_eq!(json["field"], "out_trade_no", "{bad}");
    }
    let post = h
        .call(Method::POST, "/wxpay/orders/ABCDEF123", &[], Bytes::new())
        .await;
    post.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert_eq!(post.headers.get("allow").unwrap(), "GET");
    h.store.fail(Op::Get);
    h.status("ABCDEF123")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE");
    assert_eq!(h.provider.calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_applies_a_payment_whose_notification_never_arrived() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| {
            b.reconcile(Duration::ZERO, Duration::from_secs(60))
                .query_upstream_on_status(false)
                // Ask about a waiting order on every pass (the back-off has its own tests).
                .reconcile_backoff([])
        })
        .start()
        .await;
    let paid = h.precreate_ok("RECONPAID01", 100).await;
    let outcome = h.pay(&paid).await;
    h.precreate_ok("RECONOPEN01", 100).await;
    h.sandbox
        .wait_for_attempts("RECONPAID01", 1, WAIT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let report = h.engine.reconcile().await;
    assert_eq!(report.checked, 2, "{report:?}");
    assert_eq!(report.paid, 1, "{report:?}");
    assert_eq!(report.closed, 0, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    let order = h.store.order("RECONPAID01").await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.transaction_id, outcome.transaction_id);
    assert_eq!(h.store.events("RECONPAID01").await.len(), 1);
    // The unpaid, unexpired order is left alone.
    assert_eq!(
        h.store.order("RECONOPEN01").await.status,
        OrderStatus::Pending
    );
    assert_eq!(h.provider.closes(), 0);

    // A second pass finds only the open order and changes nothing.
    let again = h.engine.reconcile().await;
    assert_eq!((again.checked, again.paid, again.closed), (1, 0, 0));
    assert_eq!(h.store.events("RECONPAID01").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_skips_orders_younger_than_the_reconcile_age() {
    let h = Harness::start().await;
    h.precreate_ok("RECONYOUNG1", 100).await;
    let report = h.engine.reconcile().await;
    assert_eq!(report.checked, 0);
    assert_eq!(h.provider.queries(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_closes_expired_unpaid_orders_upstream_and_locally() {
    let clock = Arc::new(ManualClock::at(
        time::OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let engine_clock = clock.clone();
    let h = Harness::builder()
        .configure(move |b| {
            b.clock(engine_clock)
                .reconcile(Duration::ZERO, Duration::from_secs(60))
        })
        .start()
        .await;
    h.precreate_ok("RECONEXPIR1", 100).await;
    clock.advance(3 * 3600);
    let report = h.engine.reconcile().await;
    assert_eq!(report.checked, 1, "{report:?}");
    assert_eq!(report.closed, 1, "{report:?}");
    assert_eq!(h.provider.closes(), 1);
    let order = h.store.order("RECONEXPIR1").await;
    assert_eq!(order.status, OrderStatus::Closed);
    // Closed upstream too.
    let upstream = h.provider.inner().query(&order).await.unwrap();
    assert_eq!(upstream.state, PaymentState::Closed);
    // A closed order cannot be precreated again, and is not reconciled again.
    h.precreate(&serde_json::json!({"openid": support::OPENID, "amount": 100, "out_trade_no": "RECONEXPIR1"}))
        .await
        .assert_error(StatusCode::CONFLICT, "ORDER_CLOSED");
    assert_eq!(h.engine.reconcile().await.checked, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_closes_locally_what_the_upstream_already_closed() {
    let h = Harness::builder()
        .configure(|b| b.reconcile(Duration::ZERO, Duration::from_secs(60)))
        .start()
        .await;
    h.precreate_ok("UPCLOSED001", 100).await;
    let order = h.store.order("UPCLOSED001").await;
    h.provider.inner().close(&order).await.unwrap();
    let report = h.engine.reconcile().await;
    assert_eq!((report.checked, report.closed), (1, 1), "{report:?}");
    assert_eq!(
        h.store.order("UPCLOSED001").await.status,
        OrderStatus::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_failures_and_retries_next_time() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| b.reconcile(Duration::ZERO, Duration::from_secs(60)))
        .start()
        .await;
    let reply = h.precreate_ok("RECONFAIL01", 100).await;
    h.pay(&reply).await;
    h.store.fail(Op::ListStale);
    let report = h.engine.reconcile().await;
    assert_eq!((report.checked, report.failed), (0, 1), "{report:?}");
    h.store.recover_all();
    h.provider.fail_queries(Some(ProviderError {
        kind: ProviderErrorKind::Timeout,
        upstream_code: None,
        message: "timed out".to_owned(),
        may_have_taken_effect: false,
    }));
    let report = h.engine.reconcile().await;
    assert_eq!((report.checked, report.failed), (1, 1), "{report:?}");
    h.provider.fail_queries(None);
    h.store.fail(Op::Transition);
    let report = h.engine.reconcile().await;
    assert_eq!(
        (report.checked, report.paid, report.failed),
        (1, 0, 1),
        "{report:?}"
    );
    assert_eq!(
        h.store.order("RECONFAIL01").await.status,
        OrderStatus::Pending
    );
    h.store.recover_all();
    let report = h.engine.reconcile().await;
    assert_eq!((report.checked, report.paid), (1, 1), "{report:?}");
    assert_eq!(h.store.events("RECONFAIL01").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_reconciler_settles_lost_notifications() {
    let h = Harness::builder()
        .unreachable_notify()
        .configure(|b| {
            b.reconcile(Duration::ZERO, Duration::from_millis(50))
                .query_upstream_on_status(false)
        })
        .start()
        .await;
    let tasks = h.engine.spawn_background_tasks();
    let reply = h.precreate_ok("BGRECON0001", 100).await;
    h.pay(&reply).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.store.order("BGRECON0001").await.status != OrderStatus::Paid {
        assert!(tokio::time::Instant::now() < deadline, "never reconciled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.store.events("BGRECON0001").await.len(), 1);
    drop(tasks);
}

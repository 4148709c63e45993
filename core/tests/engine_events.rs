//! Paid events reach the app's hook at least once: retried with backoff, and after a restart.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Harness, Op, RecordingHook, wait_until};
use wxpay_core::engine::PaidHook;

fn with_hook(hook: Arc<RecordingHook>) -> support::HarnessBuilder {
    Harness::builder().configure(move |b| {
        b.paid_hook(hook as Arc<dyn PaidHook>)
            .dispatch_every(Duration::from_millis(20))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_receives_each_paid_event_with_a_dedupe_id() {
    let hook = Arc::new(RecordingHook::default());
    let h = with_hook(hook.clone()).start().await;
    let _tasks = h.engine.spawn_background_tasks();
    let first = h.paid_order("HOOKFIRST01", 100).await;
    let second = h.paid_order("HOOKSECOND1", 250).await;
    let events = hook.wait_for(&["HOOKFIRST01", "HOOKSECOND1"]).await;
    for (no, outcome, fen) in [("HOOKFIRST01", &first, 100), ("HOOKSECOND1", &second, 250)] {
        let event = events
            .iter()
            .find(|e| e.out_trade_no.as_str() == no)
            .unwrap();
        assert_eq!(event.event_id, format!("paid-{no}"));
        assert_eq!(Some(&event.transaction_id), outcome.transaction_id.as_ref());
        assert_eq!(event.amount.fen(), fen);
        assert_eq!(event.currency.as_str(), "CNY");
        assert_eq!(event.payer.as_deref(), Some(support::OPENID));
    }
    // Marked delivered once the hook succeeded, and not delivered again.
    let store = h.store.clone();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !store.undelivered().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for no in ["HOOKFIRST01", "HOOKSECOND1"] {
        assert!(h.store.events(no).await[0].delivered_at.is_some());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hook.received().len(), 2, "{:?}", hook.received());
}

/// Two instances on one store, both dispatching: each event reaches the app once, from one of
/// them (each claims the events it delivers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_event_once() {
    let hook = Arc::new(RecordingHook::default());
    let h = with_hook(hook.clone()).start().await;
    let other = h
        .engine_builder()
        .paid_hook(hook.clone() as Arc<dyn PaidHook>)
        .dispatch_every(Duration::from_millis(1))
        .build()
        .unwrap();
    assert_ne!(h.engine.instance_id(), other.instance_id());
    let _tasks = (
        h.engine.spawn_background_tasks(),
        other.spawn_background_tasks(),
    );
    let numbers: Vec<String> = (0..20).map(|i| format!("TWODISP{i:04}")).collect();
    for no in &numbers {
        h.paid_order(no, 100).await;
    }
    let wanted: Vec<&str> = numbers.iter().map(String::as_str).collect();
    hook.wait_for(&wanted).await;
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !h.store.undelivered().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ids: Vec<String> = hook.received().into_iter().map(|e| e.event_id).collect();
    ids.sort();
    let mut expected: Vec<String> = numbers.iter().map(|no| format!("paid-{no}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_is_retried_until_it_succeeds() {
    let hook = Arc::new(RecordingHook::failing_first(3));
    let h = with_hook(hook.clone()).start().await;
    let _tasks = h.engine.spawn_background_tasks();
    h.paid_order("HOOKRETRY01", 100).await;
    let events = hook.wait_for(&["HOOKRETRY01"]).await;
    assert_eq!(events.len(), 1);
    assert!(hook.calls() >= 4, "{}", hook.calls());
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !h.store.undelivered().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_events_are_delivered_after_a_restart() {
    // The first process has no hook running (it crashed before delivering, say).
    let h = Harness::start().await;
    h.paid_order("RESTART0001", 100).await;
    h.paid_order("RESTART0002", 200).await;
    assert_eq!(h.store.undelivered().await.len(), 2);

    // The restarted process: a new engine over the same store.
    let hook = Arc::new(RecordingHook::default());
    let restarted = h
        .engine_builder()
        .paid_hook(hook.clone() as Arc<dyn PaidHook>)
        .dispatch_every(Duration::from_millis(20))
        .build()
        .unwrap();
    let tasks = restarted.spawn_background_tasks();
    let events = hook.wait_for(&["RESTART0001", "RESTART0002"]).await;
    assert_eq!(events.len(), 2);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !h.store.undelivered().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_delivery_mark_failed_is_delivered_again_with_the_same_id() {
    let hook = Arc::new(RecordingHook::default());
    let h = with_hook(hook.clone()).start().await;
    h.store.fail(Op::MarkDelivered);
    let _tasks = h.engine.spawn_background_tasks();
    h.paid_order("MARKFAIL001", 100).await;
    // At least once: delivered, the mark failed, so delivered again.
    wait_until("a second delivery", || {
        (hook.received().len() >= 2).then_some(())
    })
    .await;
    let received = hook.received();
    assert!(received.iter().all(|e| e.event_id == "paid-MARKFAIL001"));
    assert_eq!(h.store.undelivered().await.len(), 1);
    h.store.recover_all();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !h.store.undelivered().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_survives_an_unreadable_outbox() {
    let hook = Arc::new(RecordingHook::default());
    let h = with_hook(hook.clone()).start().await;
    h.store.fail(Op::UndeliveredEvents);
    let tasks = h.engine.spawn_background_tasks();
    h.paid_order("OUTBOXDOWN1", 100).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(hook.received().is_empty());
    h.store.recover_all();
    hook.wait_for(&["OUTBOXDOWN1"]).await;
    // Dropping the handle stops the tasks: later payments are no longer dispatched.
    drop(tasks);
    h.paid_order("AFTERSTOP01", 100).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !hook
            .received()
            .iter()
            .any(|e| e.out_trade_no.as_str() == "AFTERSTOP01")
    );
}

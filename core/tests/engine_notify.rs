//! `POST {prefix}/notify`: real notifications from the sandbox, forgeries, faults, mismatches and
//! store failures.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde_json::Value;
use support::{Harness, OPENID, Op, Reply, SeenNotification, WAIT};
use wxpay_core::engine::{Alert, EventHook, HookError};
use wxpay_core::fields::{Amount, Currency, Description, OutTradeNo};
use wxpay_core::order::{NewOrder, OrderStatus, Transition};
use wxpay_core::provider::{PaymentNotification, PaymentReport, PaymentState, Prepay};
use wxpay_core::store::{OrderStore, PaidEvent};
use wxpay_sandbox::{DeliveryKind, NotifyFaults, PayRequest, SimulatedOutcome};

async fn notify(h: &Harness, headers: &HeaderMap, body: impl Into<Bytes>) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/wxpay/notify")
        .body(body.into())
        .unwrap();
    *request.headers_mut() = headers.clone();
    Reply::from_response(h.engine.handle(request).await)
}

/// The notification id of a raw notification body.
fn notification_id(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Asserts the order was paid exactly once, with one outbox event.
async fn assert_paid_once(h: &Harness, no: &str, transaction_id: &str) -> PaidEvent {
    let order = h.store.order(no).await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.transaction_id.as_deref(), Some(transaction_id));
    assert!(order.paid_at.is_some());
    let events = h.store.events(no).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = events.into_iter().next().unwrap();
    assert_eq!(event.event_id, format!("paid-{no}"));
    assert_eq!(event.transaction_id, transaction_id);
    assert_eq!(event.amount, order.amount);
    event
}

/// Asserts the order is still unpaid with no outbox event.
/// A mismatched payment: the order failed, was not paid, and has no paid event.
async fn assert_failed_unpaid(h: &Harness, no: &str) {
    let order = h.store.order(no).await;
    assert_eq!(order.status, OrderStatus::Failed, "{no}");
    assert!(order.transaction_id.is_none());
    assert!(h.store.events(no).await.is_empty());
}

async fn assert_unpaid(h: &Harness, no: &str) {
    let order = h.store.order(no).await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert!(order.transaction_id.is_none());
    assert!(h.store.events(no).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_marks_the_order_paid_with_one_outbox_event() {
    let h = Harness::start().await;
    let reply = h.precreate_ok("NOTIFY00001", 321).await;
    let outcome = h.pay(&reply).await;
    let record = h
        .sandbox
        .wait_for_delivery("NOTIFY00001", WAIT)
        .await
        .unwrap();
    // WeChat Pay v3's acknowledgement: a 2xx (the engine sends 204 without a body).
    assert_eq!(record.status, Some(204));
    assert_eq!(record.attempt, 1);
    let transaction_id = outcome.transaction_id.unwrap();
    let event = assert_paid_once(&h, "NOTIFY00001", &transaction_id).await;
    assert_eq!(event.payer.as_deref(), Some(OPENID));
    assert_eq!(event.amount.fen(), 321);
    assert!(event.delivered_at.is_none());
    assert!(
        h.store
            .inner
            .has_notification(&outcome.notification_id.unwrap())
            .await
            .unwrap()
    );
    assert_eq!(
        h.provider.calls(),
        1,
        "a notification needs no upstream call"
    );
    h.log.assert_no_violation();
}

/// Precreates and pays `no` while the adapter swallows its notifications; returns the first
/// one the sandbox sent.
async fn captured_notification(h: &Harness, no: &str) -> SeenNotification {
    h.log.swallow.store(true, Ordering::SeqCst);
    let reply = h.precreate_ok(no, 100).await;
    h.pay(&reply).await;
    h.sandbox.wait_for_attempts(no, 1, WAIT).await.unwrap();
    h.log.swallow.store(false, Ordering::SeqCst);
    h.log.seen().into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_tampered_notifications_are_refused_and_change_nothing() {
    let h = Harness::builder()
        .sandbox(
            wxpay_sandbox::SandboxConfig::for_tests()
                .notify_retry_schedule(wxpay_sandbox::RetrySchedule::none()),
        )
        .start()
        .await;
    let real = captured_notification(&h, "FORGED00001").await;
    let id = notification_id(&real.body);

    let mut tampered_body = real.body.to_vec();
    let middle = tampered_body.len() / 2;
    tampered_body[middle] = if tampered_body[middle] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let with = |name: &'static str, value: &str| {
        let mut headers = real.headers.clone();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    };
    let without = |name: &'static str| {
        let mut headers = real.headers.clone();
        headers.remove(name);
        headers
    };
    let timestamp: i64 = real.headers["wechatpay-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let forgeries: Vec<(&str, HeaderMap, Bytes)> = vec![
        (
            "tampered body",
            real.headers.clone(),
            Bytes::from(tampered_body),
        ),
        (
            "appended byte",
            real.headers.clone(),
            Bytes::from([real.body.as_ref(), b" "].concat()),
        ),
        (
            "other signature",
            with("wechatpay-signature", &"QUJD".repeat(86)),
            real.body.clone(),
        ),
        (
            "non-base64 signature",
            with("wechatpay-signature", "not base64!"),
            real.body.clone(),
        ),
        (
            "moved timestamp",
            with("wechatpay-timestamp", &(timestamp + 1).to_string()),
            real.body.clone(),
        ),
        (
            "stale timestamp",
            with("wechatpay-timestamp", &(timestamp - 3600).to_string()),
            real.body.clone(),
        ),
        (
            "unknown serial",
            with(
                "wechatpay-serial",
                "PUB_KEY_ID_0000000000000000000000000000",
            ),
            real.body.clone(),
        ),
        (
            "no signature",
            without("wechatpay-signature"),
            real.body.clone(),
        ),
        ("no nonce", without("wechatpay-nonce"), real.body.clone()),
        ("no headers", HeaderMap::new(), real.body.clone()),
        ("empty", HeaderMap::new(), Bytes::new()),
    ];
    for (what, headers, body) in forgeries {
        let reply = notify(&h, &headers, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(reply.json()["code"], "FAIL", "{what}");
        assert!(!reply.json()["message"].as_str().unwrap().is_empty());
        assert_unpaid(&h, "FORGED00001").await;
        assert!(
            !h.store.inner.has_notification(&id).await.unwrap(),
            "{what}"
        );
    }
    assert!(h.store.mismatches_of("FORGED00001").await.is_empty());

    // The genuine notification still works, and replaying it is a harmless duplicate.
    for _ in 0..2 {
        let reply = notify(&h, &real.headers, real.body.clone()).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert!(reply.body.is_empty());
    }
    let transaction_id = h.store.order("FORGED00001").await.transaction_id.unwrap();
    assert_paid_once(&h, "FORGED00001", &transaction_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_apply_notification_mark_paid_like_the_route() {
    let h = Harness::builder()
        .sandbox(
            wxpay_sandbox::SandboxConfig::for_tests()
                .notify_retry_schedule(wxpay_sandbox::RetrySchedule::none()),
        )
        .start()
        .await;
    let real = captured_notification(&h, "APIPATH0001").await;
    let mut tampered = real.body.to_vec();
    tampered.push(b'\n');
    let rejection = h
        .engine
        .verify_notification(&real.headers, &tampered)
        .await
        .unwrap_err();
    assert_eq!(rejection.into_response().status(), StatusCode::UNAUTHORIZED);
    let too_big = vec![b' '; 64 * 1024 + 1];
    let rejection = h
        .engine
        .verify_notification(&real.headers, &too_big)
        .await
        .unwrap_err();
    assert_eq!(
        rejection.into_response().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let verified = h
        .engine
        .verify_notification(&real.headers, &real.body)
        .await
        .unwrap();
    assert_eq!(verified.report.out_trade_no, "APIPATH0001");
    assert_eq!(verified.details["out_trade_no"], "APIPATH0001");
    assert_unpaid(&h, "APIPATH0001").await;
    let reply = h.engine.apply_notification(&verified).await;
    assert_eq!(reply.status(), StatusCode::NO_CONTENT);
    let transaction_id = verified.report.transaction_id.clone().unwrap();
    assert_paid_once(&h, "APIPATH0001", &transaction_id).await;
    assert_eq!(
        h.engine.apply_notification(&verified).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_paid_once(&h, "APIPATH0001", &transaction_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signtest_probe_is_refused_and_the_real_notification_accepted() {
    let h = Harness::start().await;
    h.sandbox.set_notify_faults(NotifyFaults {
        signtest_probe: true,
        ..NotifyFaults::default()
    });
    let outcome = h.paid_order("PROBE000001", 100).await;
    let records = h
        .sandbox
        .wait_for_delivery_finished("PROBE000001", WAIT)
        .await
        .unwrap();
    let probe = records
        .iter()
        .find(|r| r.kind == DeliveryKind::Probe)
        .expect("a probe was sent");
    assert_eq!(probe.status, Some(401));
    assert!(!probe.acknowledged);
    assert!(probe.response_body.contains("FAIL"));
    assert_paid_once(&h, "PROBE000001", &outcome.transaction_id.unwrap()).await;
    h.log.assert_no_violation();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_duplicates_are_acknowledged_and_pay_once() {
    let h = Harness::start().await;
    h.sandbox.set_notify_faults(NotifyFaults {
        duplicates: 3,
        ..NotifyFaults::default()
    });
    let outcome = h.paid_order("DUPLICATE01", 100).await;
    // 1 real + 3 duplicates.
    let records = h
        .sandbox
        .wait_for_attempts("DUPLICATE01", 4, WAIT)
        .await
        .unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.kind == DeliveryKind::Duplicate)
            .count(),
        3
    );
    assert!(records.iter().all(|r| r.acknowledged), "{records:?}");
    assert_paid_once(&h, "DUPLICATE01", &outcome.transaction_id.unwrap()).await;
    h.log.assert_no_violation();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_acknowledged_and_pay_once() {
    let h = Harness::start().await;
    h.sandbox.set_notify_faults(NotifyFaults {
        concurrent_duplicates: 6,
        ..NotifyFaults::default()
    });
    let reply = h.precreate_ok("CONCURDUP01", 100).await;
    let outcome = h.pay(&reply).await;
    let records = h
        .sandbox
        .wait_for_attempts("CONCURDUP01", 7, WAIT)
        .await
        .unwrap();
    assert!(records.iter().all(|r| r.acknowledged), "{records:?}");
    assert_paid_once(&h, "CONCURDUP01", &outcome.transaction_id.unwrap()).await;
    h.log.assert_no_violation();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_misrouted_notification_is_refused_in_the_providers_shape() {
    let h = Harness::start().await;
    let big = vec![b'{'; 64 * 1024 + 1];
    let reply = notify(&h, &HeaderMap::new(), big.clone()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["code"], "FAIL");

    let http = reqwest::Client::new();
    let over_http = http
        .post(format!("{}/wxpay/notify", h.base_url))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(over_http.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(over_http.json::<Value>().await.unwrap()["code"], "FAIL");

    // Exactly at the limit is read and verified (and refused for its signature).
    let at_limit = notify(&h, &HeaderMap::new(), vec![b' '; 64 * 1024]).await;
    assert_eq!(at_limit.status, StatusCode::UNAUTHORIZED);

    let get = h
        .call(Method::GET, "/wxpay/notify", &[], Bytes::new())
        .await;
    get.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert!(h.store.all_orders().await.is_empty());
}

/// Creates `no` upstream (with the harness's notify URL) as `amount` fen, bypassing the engine.
async fn upstream_only_order(h: &Harness, no: &str, amount: u64) -> Prepay {
    let order = stored_like(h, no, amount).into_order(time::OffsetDateTime::now_utc());
    h.provider.inner().prepay(&order, None).await.unwrap()
}

/// The order the engine would store for `no`.
fn stored_like(h: &Harness, no: &str, amount: u64) -> NewOrder {
    let merchant = h.sandbox.merchant();
    NewOrder {
        appid: Some(merchant.appid.clone()),
        mchid: Some(merchant.mchid.clone()),
        ..NewOrder::new(
            OutTradeNo::try_from(no).unwrap(),
            OPENID.try_into().unwrap(),
            Amount::from_fen(amount).unwrap(),
            Description::try_from("Payment").unwrap(),
        )
    }
}

fn pay_request(prepay: &Prepay) -> PayRequest {
    let mut request: PayRequest =
        serde_json::from_value(serde_json::to_value(&prepay.params).unwrap()).unwrap();
    request.outcome = Some(SimulatedOutcome::Success);
    request
}

/// Stores `stored` as PENDING with `prepay`'s id, pays the upstream order, and waits for the
/// acknowledged notification.
async fn pay_mismatched(h: &Harness, stored: NewOrder, prepay: &Prepay) {
    let no = stored.out_trade_no.clone();
    h.store.inner.insert_if_absent(stored).await.unwrap();
    h.store
        .inner
        .transition(
            &no,
            OrderStatus::Created,
            Transition::Prepared {
                prepay_id: prepay.prepay_id.clone(),
                expires_at: prepay.expires_at,
            },
        )
        .await
        .unwrap();
    h.sandbox.pay(pay_request(prepay)).await.unwrap();
    h.sandbox
        .wait_for_delivery(no.as_str(), WAIT)
        .await
        .unwrap();
}

/// Makes the stored order disagree with the upstream one.
type Alter = Box<dyn Fn(NewOrder) -> NewOrder>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_payment_is_recorded_acknowledged_and_never_marks_paid() {
    let h = Harness::start().await;
    let cases: Vec<(&str, Alter, &str)> = vec![
        (
            "MISAMOUNT01",
            Box::new(|o| NewOrder {
                amount: Amount::from_fen(200).unwrap(),
                ..o
            }),
            "amount",
        ),
        (
            "MISAPPID001",
            Box::new(|o| NewOrder {
                appid: Some("wx0000000000000000".to_owned()),
                ..o
            }),
            "appid",
        ),
        (
            "MISMCHID001",
            Box::new(|o| NewOrder {
                mchid: Some("1900000099".to_owned()),
                ..o
            }),
            "mchid",
        ),
        (
            "MISCURRENCY",
            Box::new(|o| NewOrder {
                currency: Currency::try_from("USD").unwrap(),
                ..o
            }),
            "currency",
        ),
    ];
    for (no, alter, what) in cases {
        // Upstream the order is 100 fen CNY for this merchant; the store says otherwise.
        let prepay = upstream_only_order(&h, no, 100).await;
        pay_mismatched(&h, alter(stored_like(&h, no, 100)), &prepay).await;
        assert_failed_unpaid(&h, no).await;
        let mismatches = h.store.mismatches_of(no).await;
        assert_eq!(mismatches.len(), 1, "{no}: {mismatches:?}");
        assert!(mismatches[0].detail.contains(what), "{mismatches:?}");
    }
    h.log.assert_no_violation();

    // Reconciliation sees the upstream payment but must not count or apply it.
    let engine = h
        .engine_builder()
        .reconcile(Duration::ZERO, Duration::from_secs(60))
        .build()
        .unwrap();
    let report = engine.reconcile().await;
    // The mismatched orders left PENDING for FAILED, so reconciliation no longer queries them
    // (and cannot be clogged by them), and nothing more is recorded.
    assert_eq!(report.checked, 0, "{report:?}");
    assert_eq!(report.paid, 0, "{report:?}");
    assert_failed_unpaid(&h, "MISAMOUNT01").await;
    assert_eq!(h.store.mismatches_of("MISAMOUNT01").await.len(), 1);
    // The status route reports the failure and does not pay the order either.
    let status = h.status("MISAMOUNT01").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.json()["status"], "FAILED");
    assert_failed_unpaid(&h, "MISAMOUNT01").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_for_an_unknown_order_is_recorded_and_acknowledged() {
    let h = Harness::start().await;
    let prepay = upstream_only_order(&h, "STRANGER001", 100).await;
    let outcome = h.sandbox.pay(pay_request(&prepay)).await.unwrap();
    let record = h
        .sandbox
        .wait_for_delivery("STRANGER001", WAIT)
        .await
        .unwrap();
    assert!(record.acknowledged);
    assert!(h.store.try_order("STRANGER001").await.is_none());
    assert_eq!(h.store.mismatches_of("STRANGER001").await.len(), 1);
    assert!(
        h.store
            .inner
            .has_notification(&outcome.notification_id.unwrap())
            .await
            .unwrap()
    );
    h.log.assert_no_violation();
}

/// While `op` fails, every attempt is refused with a retryable failure; once it recovers the
/// sandbox's next retry pays the order exactly once.
async fn survives_failing(h: &Harness, no: &str, op: Op) {
    let reply = h.precreate_ok(no, 100).await;
    h.store.fail(op);
    let outcome = h.pay(&reply).await;
    let records = h.sandbox.wait_for_attempts(no, 3, WAIT).await.unwrap();
    for record in &records {
        assert!(!record.acknowledged, "{op:?}: {record:?}");
        assert_eq!(record.status, Some(503), "{op:?}: {record:?}");
        assert!(record.response_body.contains("\"FAIL\""), "{record:?}");
    }
    assert_unpaid(h, no).await;
    h.store.recover(op);
    let acknowledged = h.sandbox.wait_for_delivery(no, WAIT).await.unwrap();
    // The first attempts all failed: the acknowledgement came from a retry.
    assert!(acknowledged.attempt > 3, "{acknowledged:?}");
    assert_paid_once(h, no, &outcome.transaction_id.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_notification_is_lost_when_the_store_fails() {
    let h = Harness::start().await;
    survives_failing(&h, "FAILINBOX01", Op::HasNotification).await;
    survives_failing(&h, "FAILREAD001", Op::Get).await;
    survives_failing(&h, "FAILWRITE01", Op::Transition).await;
    assert!(h.store.failures.load(Ordering::SeqCst) >= 9);
    // Every acknowledgement the sandbox got was backed by a durable inbox entry.
    h.log.assert_no_violation();
    for delivery in h.sandbox.deliveries() {
        if delivery.acknowledged {
            let order = h.store.order(&delivery.out_trade_no).await;
            assert_eq!(order.status, OrderStatus::Paid, "{delivery:?}");
            assert!(
                h.store
                    .inner
                    .has_notification(&delivery.notification_id)
                    .await
                    .unwrap()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatch_is_acknowledged_only_once_recorded() {
    let h = Harness::start().await;
    h.store.fail(Op::RecordMismatch);
    let prepay = upstream_only_order(&h, "MISLATER001", 100).await;
    let stored = NewOrder {
        amount: Amount::from_fen(999).unwrap(),
        ..stored_like(&h, "MISLATER001", 100)
    };
    let no = stored.out_trade_no.clone();
    h.store.inner.insert_if_absent(stored).await.unwrap();
    h.store
        .inner
        .transition(
            &no,
            OrderStatus::Created,
            Transition::Prepared {
                prepay_id: prepay.prepay_id.clone(),
                expires_at: prepay.expires_at,
            },
        )
        .await
        .unwrap();
    h.sandbox.pay(pay_request(&prepay)).await.unwrap();
    let records = h
        .sandbox
        .wait_for_attempts("MISLATER001", 2, WAIT)
        .await
        .unwrap();
    assert!(
        records
            .iter()
            .all(|r| !r.acknowledged && r.status == Some(503))
    );
    h.store.recover_all();
    h.sandbox
        .wait_for_delivery("MISLATER001", WAIT)
        .await
        .unwrap();
    assert!(!h.store.mismatches_of("MISLATER001").await.is_empty());
    assert_failed_unpaid(&h, "MISLATER001").await;

    // Same for a notification about an order the store does not have.
    h.store.fail(Op::RecordNotification);
    let prepay = upstream_only_order(&h, "STRANGER002", 100).await;
    let outcome = h.sandbox.pay(pay_request(&prepay)).await.unwrap();
    h.sandbox
        .wait_for_attempts("STRANGER002", 2, WAIT)
        .await
        .unwrap();
    assert!(
        !h.store
            .inner
            .has_notification(outcome.notification_id.as_deref().unwrap())
            .await
            .unwrap()
    );
    h.store.recover_all();
    h.sandbox
        .wait_for_delivery("STRANGER002", WAIT)
        .await
        .unwrap();
    h.log.assert_no_violation();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_races_a_close_is_not_lost() {
    let h = Harness::start().await;
    // Between the engine reading the PENDING order and marking it paid, a reconciler closes it.
    h.store.close_before_paid.store(true, Ordering::SeqCst);
    let outcome = h.paid_order("RACECLOSE01", 100).await;
    assert!(!h.store.close_before_paid.load(Ordering::SeqCst));
    assert_paid_once(&h, "RACECLOSE01", &outcome.transaction_id.unwrap()).await;
    assert!(h.store.mismatches_of("RACECLOSE01").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_reported_after_a_local_close_still_marks_paid() {
    let h = Harness::builder()
        .sandbox(
            wxpay_sandbox::SandboxConfig::for_tests()
                .notify_retry_schedule(wxpay_sandbox::RetrySchedule::none()),
        )
        .start()
        .await;
    let real = captured_notification(&h, "CLOSEDPAY01").await;
    h.store
        .inner
        .transition(
            &OutTradeNo::try_from("CLOSEDPAY01").unwrap(),
            OrderStatus::Pending,
            Transition::Closed,
        )
        .await
        .unwrap();
    let reply = notify(&h, &real.headers, real.body.clone()).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let transaction_id = h.store.order("CLOSEDPAY01").await.transaction_id.unwrap();
    assert_paid_once(&h, "CLOSEDPAY01", &transaction_id).await;
}

/// Records the alerts the engine raises.
#[derive(Debug, Default)]
struct AlertLog(std::sync::Mutex<Vec<Alert>>);

#[async_trait::async_trait]
impl EventHook for AlertLog {
    async fn on_event(&self, _event: &wxpay_core::store::Event) -> Result<(), HookError> {
        Ok(())
    }

    async fn on_alert(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

impl AlertLog {
    async fn wait_for(&self, wanted: impl Fn(&Alert) -> bool) -> Alert {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(alert) = self.0.lock().unwrap().iter().find(|a| wanted(a)) {
                return alert.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such alert in {:?}",
                self.0.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_relevant_reports_reach_the_hook_as_typed_alerts() {
    let alerts = Arc::new(AlertLog::default());
    let hook = alerts.clone();
    let h = Harness::builder()
        .configure(move |b| b.event_hook(hook as Arc<dyn EventHook>))
        .start()
        .await;

    // A payment for an order this store does not have.
    let prepay = upstream_only_order(&h, "ALERTSTRNGR", 100).await;
    let outcome = h.sandbox.pay(pay_request(&prepay)).await.unwrap();
    let unknown = alerts
        .wait_for(|a| matches!(a, Alert::UnknownOrder { out_trade_no, .. } if out_trade_no == "ALERTSTRNGR"))
        .await;
    assert_eq!(
        unknown,
        Alert::UnknownOrder {
            out_trade_no: "ALERTSTRNGR".to_owned(),
            paid: true,
            transaction_id: outcome.transaction_id.clone(),
        }
    );

    // A payment whose amount is not the order's.
    let prepay = upstream_only_order(&h, "ALERTAMOUNT", 100).await;
    let stored = NewOrder {
        amount: Amount::from_fen(200).unwrap(),
        ..stored_like(&h, "ALERTAMOUNT", 100)
    };
    pay_mismatched(&h, stored, &prepay).await;
    let mismatch = alerts
        .wait_for(
            |a| matches!(a, Alert::Mismatch { out_trade_no, .. } if out_trade_no == "ALERTAMOUNT"),
        )
        .await;
    assert_eq!(mismatch.out_trade_no(), Some("ALERTAMOUNT"));
    assert!(mismatch.detail().contains("amount"), "{mismatch:?}");

    // A second payment of a paid order, under another transaction id.
    h.paid_order("ALERTDOUBLE", 100).await;
    let order = h.store.order("ALERTDOUBLE").await;
    let merchant = h.sandbox.merchant();
    let second = PaymentNotification {
        event_id: "second-payment-of-ALERTDOUBLE".to_owned(),
        report: PaymentReport {
            out_trade_no: "ALERTDOUBLE".to_owned(),
            state: PaymentState::Paid,
            transaction_id: Some("4200000000000000000000000002".to_owned()),
            amount_total: Some(100),
            currency: Some("CNY".to_owned()),
            appid: Some(merchant.appid.clone()),
            mchid: Some(merchant.mchid.clone()),
            payer: Some(OPENID.to_owned()),
            paid_at: Some(time::OffsetDateTime::now_utc()),
        },
        refund: None,
        details: Value::Null,
    };
    let reply = h.engine.apply_notification(&second).await;
    assert!(
        reply.status().is_success(),
        "acknowledged: {:?}",
        reply.status()
    );
    let double = alerts
        .wait_for(|a| matches!(a, Alert::DoublePayment { .. }))
        .await;
    assert_eq!(
        double,
        Alert::DoublePayment {
            out_trade_no: "ALERTDOUBLE".to_owned(),
            transaction_id: Some("4200000000000000000000000002".to_owned()),
        }
    );
    // The first payment stands, and the second is on record for the operator.
    assert_eq!(
        h.store.order("ALERTDOUBLE").await.transaction_id,
        order.transaction_id
    );
    assert_eq!(h.store.mismatches_of("ALERTDOUBLE").await.len(), 1);
}

/// A payment notification without its transaction id is acknowledged (refusing it would have
/// WeChat repeat it for a day), recorded for the operator, and the order left open; the
/// reconciler's query, which carries the id, then marks it paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_without_transaction_id_is_acknowledged_recorded_and_reconciled() {
    let h = Harness::builder()
        .sandbox(
            wxpay_sandbox::SandboxConfig::for_tests()
                .notify_retry_schedule(wxpay_sandbox::RetrySchedule::none()),
        )
        .configure(|b| {
            b.reconcile(Duration::ZERO, Duration::from_secs(3600))
                .query_upstream_on_status(false)
        })
        .start()
        .await;
    let real = captured_notification(&h, "NOTXNID0001").await;
    let mut verified = h
        .engine
        .verify_notification(&real.headers, &real.body)
        .await
        .unwrap();
    let transaction_id = verified.report.transaction_id.take().unwrap();
    let reply = h.engine.apply_notification(&verified).await;
    assert!(reply.status().is_success(), "{:?}", reply.status());
    assert_unpaid(&h, "NOTXNID0001").await;
    let mismatches = h.store.mismatches_of("NOTXNID0001").await;
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert!(mismatches[0].detail.contains("without transaction_id"));

    let report = h.engine.reconcile().await;
    assert!(report.paid >= 1, "{report:?}");
    assert_paid_once(&h, "NOTXNID0001", &transaction_id).await;
}

/// The store failed after the upstream issued the prepay, so the order stayed CREATED; the payer
/// paid it anyway (the prepay exists upstream). The payment is real: the order becomes PAID with
/// one event, and the operator gets a mismatch note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_of_an_order_still_created_is_accepted_and_noted() {
    let h = Harness::start().await;
    h.store.fail(Op::Transition);
    h.precreate(
        &serde_json::json!({"openid": OPENID, "amount": 100, "out_trade_no": "CREATEDPAY1"}),
    )
    .await
    .assert_error(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE");
    h.store.recover_all();
    let order = h.store.order("CREATEDPAY1").await;
    assert_eq!(order.status, OrderStatus::Created);
    // The prepay that took effect upstream (an identical call returns it again).
    let prepay = h.provider.inner().prepay(&order, None).await.unwrap();
    let pay: PayRequest =
        serde_json::from_value(serde_json::to_value(&prepay.params).unwrap()).unwrap();
    h.sandbox.pay(pay).await.unwrap();
    h.sandbox
        .wait_for_delivery("CREATEDPAY1", WAIT)
        .await
        .unwrap();
    let paid = h.store.order("CREATEDPAY1").await;
    assert_eq!(paid.status, OrderStatus::Paid);
    assert!(paid.transaction_id.is_some());
    assert_eq!(h.store.events("CREATEDPAY1").await.len(), 1);
    let mismatches = h.store.mismatches_of("CREATEDPAY1").await;
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert!(
        mismatches[0].detail.contains("still CREATED"),
        "{mismatches:?}"
    );
    h.log.assert_no_violation();
}

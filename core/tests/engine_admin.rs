//! The operator's JSON API under `{prefix}/admin/`: the token, the order list with its
//! filters and cursor, one order's history, the outbox backlog, and the actions.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;
use support::{ADMIN_TOKEN, Harness, Reply};
use wxpay_core::order::OrderStatus;
use wxpay_core::store::OrderStore as _;

async fn admin(h: &Harness, method: Method, path: &str) -> Reply {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    h.call(
        method,
        &format!("/wxpay/admin{path}"),
        &[("authorization", bearer.as_str())],
        Bytes::new(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_lists_inspects_and_acts_on_orders() {
    let h = Harness::builder()
        .operator()
        .unreachable_notify()
        .configure(|b| b.query_upstream_on_status(false))
        .start()
        .await;
    let reply = h.precreate_ok("ADMINPAID01", 100).await;
    h.pay(&reply).await;
    h.precreate_ok("ADMINOPEN01", 200).await;
    h.precreate_ok("ADMINOPEN02", 300).await;

    // Without the token: 401, and nothing about the orders.
    let refused = h
        .call(Method::GET, "/wxpay/admin/orders", &[], Bytes::new())
        .await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // The list, newest first, paged by cursor, filtered by prefix and status.
    let page = admin(&h, Method::GET, "/orders?prefix=ADMIN&limit=2").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers.get("cache-control").unwrap(), "no-store");
    let json = page.json();
    let numbers = |json: &Value| -> Vec<String> {
        json["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["out_trade_no"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(numbers(&json), vec!["ADMINOPEN02", "ADMINOPEN01"]);
    let cursor = json["next_cursor"].as_str().unwrap().to_owned();
    let next = admin(
        &h,
        Method::GET,
        &format!("/orders?prefix=ADMIN&limit=2&cursor={cursor}"),
    )
    .await
    .json();
    assert_eq!(numbers(&next), vec!["ADMINPAID01"]);
    assert!(next["next_cursor"].is_null());
    let pending = admin(&h, Method::GET, "/orders?prefix=ADMIN&status=PENDING")
        .await
        .json();
    assert_eq!(
        numbers(&pending).len(),
        3,
        "the paid one's notification never came"
    );
    admin(&h, Method::GET, "/orders?status=NOPE")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "INVALID_QUERY");

    // Query now: the upstream says paid, and the order is marked paid as by a notification.
    let queried = admin(&h, Method::POST, "/orders/ADMINPAID01/query").await;
    assert_eq!(queried.status, StatusCode::OK, "{:?}", queried.body);
    assert_eq!(queried.json()["order"]["status"], "PAID");
    assert_eq!(h.store.order("ADMINPAID01").await.status, OrderStatus::Paid);

    // One order's history: its events and (no) mismatches, with the operator's view.
    let detail = admin(&h, Method::GET, "/orders/ADMINPAID01").await.json();
    assert_eq!(detail["order"]["openid"], support::OPENID);
    assert_eq!(detail["events"].as_array().unwrap().len(), 1);
    assert_eq!(detail["events"][0]["kind"], "PAID");
    assert!(detail["mismatches"].as_array().unwrap().is_empty());
    admin(&h, Method::GET, "/orders/NO_SUCH_ORDER1")
        .await
        .assert_error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");

    // The outbox: the paid event is undelivered (no hook).
    let outbox = admin(&h, Method::GET, "/outbox").await.json();
    assert!(outbox["undelivered"].as_u64().unwrap() >= 1, "{outbox}");
    assert_eq!(outbox["hook_configured"], false);
    admin(&h, Method::POST, "/orders/ADMINPAID01/redeliver")
        .await
        .assert_error(StatusCode::CONFLICT, "NO_EVENT_HOOK");

    // Close: an open order closes upstream and here; a paid one cannot.
    let closed = admin(&h, Method::POST, "/orders/ADMINOPEN01/close").await;
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    assert_eq!(
        h.store.order("ADMINOPEN01").await.status,
        OrderStatus::Closed
    );
    let order = h.store.order("ADMINOPEN01").await;
    let upstream = h.provider.inner().query(&order).await.unwrap();
    assert_eq!(upstream.state, wxpay_core::provider::PaymentState::Closed);
    admin(&h, Method::POST, "/orders/ADMINPAID01/close")
        .await
        .assert_error(StatusCode::CONFLICT, "ORDER_NOT_OPEN");
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_the_admin_routes_do_not_exist() {
    let h = Harness::start().await;
    let reply = h
        .call(Method::GET, "/wxpay/admin/orders", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(h.engine.route(&Method::GET, "/wxpay/admin/outbox"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_a_static_page_that_holds_no_data() {
    let h = Harness::builder().operator().start().await;
    // No token needed for the page itself: it holds no data, and asks for the token.
    let page = h
        .call(Method::GET, "/wxpay/admin/console", &[], Bytes::new())
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let header = |name: &str| page.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/html"));
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(html.contains(r#"src="console/console.js""#));
    assert!(!html.contains(ADMIN_TOKEN));
    // Nothing inline for the policy to refuse: scripts and styles come from the assets.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" onclick="));

    for (asset, kind) in [
        ("console.js", "text/javascript"),
        ("console.css", "text/css"),
    ] {
        let reply = h
            .call(
                Method::GET,
                &format!("/wxpay/admin/console/{asset}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
        let content_type = reply.headers.get("content-type").unwrap().to_str().unwrap();
        assert!(content_type.starts_with(kind), "{asset}: {content_type}");
        assert!(!reply.body.is_empty());
    }
    let script = h
        .call(
            Method::GET,
            "/wxpay/admin/console/console.js",
            &[],
            Bytes::new(),
        )
        .await;
    let script = String::from_utf8(script.body.to_vec()).unwrap();
    // The token lives in memory only and travels in the Authorization header.
    assert!(script.contains("Authorization"));
    for storage in ["localStorage", "sessionStorage", "document.cookie"] {
        assert!(
            !script.contains(storage),
            "the console must not use {storage}"
        );
    }
    let unknown = h
        .call(
            Method::GET,
            "/wxpay/admin/console/other.js",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // The data behind it still needs the token.
    h.call(Method::GET, "/wxpay/admin/attention", &[], Bytes::new())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attention_list_shows_what_needs_an_operator() {
    use wxpay_core::clock::ManualClock;
    use wxpay_core::engine::Alert;
    use wxpay_sandbox::{RefundBehaviour, RefundOutcome};

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let clock = std::sync::Arc::new(ManualClock::at(now));
    let engine_clock = clock.clone();
    let h = Harness::builder()
        .operator()
        .configure(move |b| b.clock(engine_clock).query_upstream_on_status(false))
        .start()
        .await;
    let empty = admin(&h, Method::GET, "/attention").await;
    assert_eq!(empty.headers.get("cache-control").unwrap(), "no-store");
    let empty = empty.json();
    for list in ["mismatches", "abnormal_refunds", "undelivered_events"] {
        assert!(empty[list].as_array().unwrap().is_empty(), "{empty}");
    }

    // A paid order whose refund went ABNORMAL, and whose events no hook takes.
    h.paid_order("ATTENTION01", 500).await;
    h.sandbox.set_refund_behaviour(RefundBehaviour {
        outcome: RefundOutcome::Abnormal,
        ..RefundBehaviour::default()
    });
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let refunded = h
        .call(
            Method::POST,
            "/wxpay/orders/ATTENTION01/refunds",
            &[
                ("authorization", bearer.as_str()),
                ("content-type", "application/json"),
            ],
            Bytes::from_static(br#"{"amount": 200, "out_refund_no": "ATTNREFUND01"}"#),
        )
        .await;
    assert_eq!(refunded.status, StatusCode::CREATED, "{:?}", refunded.body);
    let refund_no = wxpay_core::fields::OutRefundNo::try_from("ATTNREFUND01").unwrap();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while h
        .store
        .get_refund(&refund_no)
        .await
        .unwrap()
        .unwrap()
        .status
        != wxpay_core::refund::RefundStatus::Abnormal
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refund never went ABNORMAL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Mismatches as the notify path records them.
    let store = &h.store;
    let double = Alert::DoublePayment {
        out_trade_no: "ATTENTION01".into(),
        transaction_id: Some("4200000000000000000000000002".into()),
    };
    let unknown = Alert::UnknownOrder {
        out_trade_no: "ATTNUNKNOWN1".into(),
        paid: true,
        transaction_id: None,
    };
    let number = |no: &str| wxpay_core::fields::OutTradeNo::try_from(no).unwrap();
    store
        .record_mismatch(&number("ATTENTION01"), &double.detail())
        .await
        .unwrap();
    store
        .record_mismatch(&number("ATTNUNKNOWN1"), &unknown.detail())
        .await
        .unwrap();
    store
        .record_mismatch(&number("ATTENTION01"), "amount.total 1 != 500")
        .await
        .unwrap();

    // Not yet 10 minutes: the undelivered events are not listed.
    let soon = admin(&h, Method::GET, "/attention").await.json();
    assert!(soon["undelivered_events"].as_array().unwrap().is_empty());
    clock.advance(11 * 60);
    let json = admin(&h, Method::GET, "/attention").await.json();
    let kinds: Vec<(&str, &str)> = json["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["out_trade_no"].as_str().unwrap(),
                m["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ATTENTION01", "MISMATCH"),
            ("ATTNUNKNOWN1", "UNKNOWN_ORDER"),
            ("ATTENTION01", "DOUBLE_PAYMENT"),
        ],
        "newest first: {json}"
    );
    let abnormal = json["abnormal_refunds"].as_array().unwrap();
    assert_eq!(abnormal.len(), 1, "{json}");
    assert_eq!(abnormal[0]["out_refund_no"], "ATTNREFUND01");
    assert_eq!(abnormal[0]["status"], "ABNORMAL");
    let stale: Vec<&str> = json["undelivered_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(stale, ["PAID", "REFUND"], "{json}");
    assert_eq!(json["undelivered_events"][0]["out_trade_no"], "ATTENTION01");
    assert_eq!(json["undelivered_older_than_seconds"], 600);

    // The order's page has its notifications (the payment's and the refund's) and mismatches.
    let detail = admin(&h, Method::GET, "/orders/ATTENTION01").await.json();
    assert_eq!(
        detail["notifications"].as_array().unwrap().len(),
        2,
        "{detail}"
    );
    assert_eq!(detail["mismatches"][0]["kind"], "DOUBLE_PAYMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_as_prometheus_text() {
    let h = Harness::builder().operator().start().await;
    h.call(Method::GET, "/wxpay/admin/metrics", &[], Bytes::new())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    h.paid_order("METRICS01", 100).await;
    h.precreate_ok("METRICS02", 100).await;
    // A notification that fails verification.
    let forged = h
        .call(
            Method::POST,
            "/wxpay/notify",
            &[("content-type", "application/json")],
            Bytes::from_static(br#"{"id": "forged"}"#),
        )
        .await;
    assert!(forged.status.is_client_error(), "{:?}", forged.status);

    let scrape = admin(&h, Method::GET, "/metrics").await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert_eq!(scrape.headers.get("cache-control").unwrap(), "no-store");
    let text = String::from_utf8(scrape.body.to_vec()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(value(r#"wxpay_orders{status="PAID"}"#), 1.0);
    assert_eq!(value(r#"wxpay_orders{status="PENDING"}"#), 1.0);
    assert_eq!(value(r#"wxpay_orders{status="CLOSED"}"#), 0.0);
    assert_eq!(
        value(r#"wxpay_upstream_calls_total{endpoint="prepay",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        value(r#"wxpay_upstream_call_seconds_count{endpoint="prepay"}"#),
        2.0
    );
    assert_eq!(
        value(r#"wxpay_notifications_total{outcome="accepted",reason="none"}"#),
        1.0
    );
    let refused: f64 = text
        .lines()
        .filter(|line| line.starts_with(r#"wxpay_notifications_total{outcome="refused""#))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused >= 1.0, "{text}");
    // The paid event has no hook to go to.
    assert_eq!(value("wxpay_outbox_undelivered_events"), 1.0);
    assert!(value("wxpay_outbox_oldest_undelivered_age_seconds") >= 0.0);
    assert!(text.contains("# TYPE wxpay_upstream_call_seconds histogram"));
    assert!(text.trim_end().ends_with("# EOF"));
}

/// A hook that refuses every event and records the alerts it is given.
#[derive(Debug, Default)]
struct BrokenApp {
    alerts: std::sync::Mutex<Vec<wxpay_core::engine::Alert>>,
    attempts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl wxpay_core::engine::EventHook for BrokenApp {
    async fn on_event(
        &self,
        _event: &wxpay_core::store::Event,
    ) -> Result<(), wxpay_core::engine::HookError> {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err("the app's database is down".into())
    }

    async fn on_alert(&self, alert: &wxpay_core::engine::Alert) {
        self.alerts.lock().unwrap().push(alert.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlogged_outbox_raises_one_alert_per_backlog_age() {
    use wxpay_core::clock::ManualClock;
    use wxpay_core::engine::Alert;

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let clock = std::sync::Arc::new(ManualClock::at(now));
    let app = std::sync::Arc::new(BrokenApp::default());
    let (engine_clock, hook) = (clock.clone(), app.clone());
    let h = Harness::builder()
        .configure(move |b| {
            b.clock(engine_clock)
                .event_hook(hook)
                .dispatch_every(Duration::from_millis(5))
        })
        .start()
        .await;
    h.paid_order("BACKLOG01", 100).await;
    let _tasks = h.engine.spawn_background_tasks();
    let attempts = || app.attempts.load(std::sync::atomic::Ordering::SeqCst);
    support::wait_until("failed deliveries", || (attempts() >= 1).then_some(())).await;
    assert!(app.alerts.lock().unwrap().is_empty(), "not old enough yet");

    clock.advance(11 * 60);
    let alerts = support::wait_until("the backlog alert", || {
        let alerts = app.alerts.lock().unwrap().clone();
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    match &alerts[0] {
        Alert::OutboxBacklog {
            out_trade_no,
            oldest_age_seconds,
            ..
        } => {
            assert_eq!(out_trade_no, "BACKLOG01");
            assert!(*oldest_age_seconds >= 600);
        }
        other => panic!("{other:?}"),
    }
    // The dispatcher keeps failing, but the alert is not repeated within the backlog age.
    let seen = attempts();
    support::wait_until("more failed deliveries", || {
        (attempts() >= seen + 3).then_some(())
    })
    .await;
    assert_eq!(app.alerts.lock().unwrap().len(), 1);
    clock.advance(11 * 60);
    support::wait_until("the second backlog alert", || {
        (app.alerts.lock().unwrap().len() == 2).then_some(())
    })
    .await;
}

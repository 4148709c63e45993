//! Every route runs in a tracing span, and nothing the engine logs carries a secret or a full
//! signature.
#![allow(clippy::unwrap_used)]

mod support;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use support::{Harness, OPENID, Reply, WAIT};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records spans and events of wxpay-core as text.
#[derive(Default)]
struct Capture {
    next_id: AtomicU64,
    /// (span id, name, fields as text).
    spans: Mutex<Vec<(u64, String, String)>>,
    events: Mutex<Vec<String>>,
}

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Capture {
    fn all_text(&self) -> String {
        let mut text = String::new();
        for (_, name, fields) in self.spans.lock().unwrap().iter() {
            let _ = writeln!(text, "span {name}: {fields}");
        }
        for event in self.events.lock().unwrap().iter() {
            let _ = writeln!(text, "event {event}");
        }
        text
    }

    fn wxpay_spans(&self) -> Vec<String> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, name, _)| name == "wxpay")
            .map(|(_, _, fields)| fields.clone())
            .collect()
    }
}

/// The subscriber: shares its [`Capture`] with the test.
struct Sub(Arc<Capture>);

impl Subscriber for Sub {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("wxpay_core")
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let id = self.0.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let mut fields = String::new();
        attributes.record(&mut Text(&mut fields));
        self.0
            .spans
            .lock()
            .unwrap()
            .push((id, attributes.metadata().name().to_owned(), fields));
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        if let Some((_, _, fields)) = spans.iter_mut().find(|(id, _, _)| *id == span.into_u64()) {
            values.record(&mut Text(fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = format!(
            "{} {}: ",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Text(&mut text));
        self.0.events.lock().unwrap().push(text);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

// A current-thread runtime: the subscriber is the thread's default, and every task (engine,
// adapter, sandbox) runs on this thread.
#[tokio::test]
async fn every_route_has_a_span_and_no_secret_or_signature_is_logged() {
    let capture = Arc::new(Capture::default());
    let _guard = tracing::subscriber::set_default(Sub(capture.clone()));

    let h = Harness::start().await;
    let reply = h.precreate_ok("TRACED00001", 100).await;
    let pay_sign = reply.json()["paySign"].as_str().unwrap().to_owned();
    h.precreate(&serde_json::json!({"openid": "bad openid", "amount": 1}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "INVALID_FIELD");
    h.status("TRACED00001").await;
    h.pay(&reply).await;
    h.sandbox
        .wait_for_delivery("TRACED00001", WAIT)
        .await
        .unwrap();
    let notification = h.log.seen().into_iter().next().unwrap();
    let signature = notification.headers["wechatpay-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    // A forged notification is logged as refused.
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/wxpay/notify")
        .body(Bytes::from([notification.body.as_ref(), b" "].concat()))
        .unwrap();
    *request.headers_mut() = notification.headers.clone();
    let forged = Reply::from_response(h.engine.handle(request).await);
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    h.call(Method::GET, "/wxpay/orders/abc", &[], Bytes::new())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "INVALID_FIELD");

    let spans = capture.wxpay_spans();
    for route in ["precreate", "notify", "order_status"] {
        let mine: Vec<&String> = spans
            .iter()
            .filter(|fields| fields.contains(&format!("route=\"{route}\"")))
            .collect();
        assert!(!mine.is_empty(), "no span for {route}: {spans:?}");
        assert!(
            mine.iter().all(|fields| fields.contains("provider=\"v3\"")),
            "{route}: {mine:?}"
        );
    }
    // (`status` and `out_trade_no` are recorded through `Span::current()`, which this minimal
    // subscriber does not track.)
    let text = capture.all_text();
    assert!(text.contains("notification refused"), "{text}");
    let merchant = h.sandbox.merchant();
    let secrets = [
        ("paySign", pay_sign.as_str()),
        ("notification signature", signature.as_str()),
        ("API v3 key", h.sandbox.api_v3_key()),
        ("private key", "PRIVATE KEY"),
        (
            "private key body",
            merchant
                .private_key_pem
                .as_deref()
                .unwrap()
                .lines()
                .nth(1)
                .unwrap(),
        ),
        ("openid", OPENID),
    ];
    for (what, secret) in secrets {
        assert!(!text.contains(secret), "{what} logged:\n{text}");
    }
    // Half a signature is as bad as the whole: no long run of it either.
    for window in signature.as_bytes().windows(24) {
        let window = std::str::from_utf8(window).unwrap();
        assert!(
            !text.contains(window),
            "part of a signature logged: {window}"
        );
    }
}

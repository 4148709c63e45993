//! The openid routes are traced, and nothing they log carries a token, a code, the app
//! secret or the payer's openid. Its own test binary: a thread-local subscriber only sees
//! every callsite when no other test of the process met them first.
#![allow(clippy::unwrap_used)]

mod openid_support;
mod support;

use std::sync::Arc;

use http::StatusCode;
use openid_support::*;
use serde_json::json;
use support::Harness;
use wxpay_core::engine::OpenidMode;

/// Records what wxpay-core logs, as text.
#[derive(Default)]
struct Capture {
    next_id: std::sync::atomic::AtomicU64,
    text: std::sync::Mutex<String>,
}

struct Text<'a>(&'a mut String);

impl tracing::field::Visit for Text<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

struct Sub(Arc<Capture>);

impl tracing::Subscriber for Sub {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("wxpay_core")
    }

    fn new_span(&self, attributes: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self
            .0
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let mut text = self.0.text.lock().unwrap();
        text.push_str("span: ");
        attributes.record(&mut Text(&mut text));
        text.push('\n');
        tracing::span::Id::from_u64(id)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut text = self.0.text.lock().unwrap();
        values.record(&mut Text(&mut text));
        text.push('\n');
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.0.text.lock().unwrap();
        text.push_str("event: ");
        event.record(&mut Text(&mut text));
        text.push('\n');
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// A current-thread runtime: the subscriber is this thread's default and every task runs here.
#[tokio::test]
async fn the_openid_routes_are_traced_without_tokens_codes_or_secrets() {
    let capture = Arc::new(Capture::default());
    let _guard = tracing::subscriber::set_default(Sub(capture.clone()));
    let h = Harness::start().await;
    let engine = engine_with(&h, full_config(&h, OpenidMode::TokenRequired));
    let payer = "oTracedPayer_00000000000000";

    let code = h.sandbox.wx_login(Some(payer)).unwrap();
    let token = session(&engine, &code).await.json()["openid_token"]
        .as_str()
        .unwrap()
        .to_owned();
    session(&engine, &code)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "OPENID_CODE_REJECTED");
    let start = get(&engine, "/wxpay/openid/authorize?return_to=/t", &[]).await;
    let state_cookie = cookie(&start, "wxpay_openid_state").unwrap();
    let back = upstream_redirect(&location(&start), Some(payer)).await;
    let done = get(
        &engine,
        &shop_path(&back),
        &[("cookie", &format!("wxpay_openid_state={state_cookie}"))],
    )
    .await;
    let oauth_token = cookie(&done, "wxpay_openid").unwrap();
    let paid = precreate(
        &engine,
        json!({"amount": 100}),
        &[("x-wxpay-openid-token", &token)],
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK);

    let text = capture.text.lock().unwrap().clone();
    for route in [
        "openid_session",
        "openid_authorize",
        "openid_callback",
        "precreate",
    ] {
        assert!(
            text.contains(&format!("route=\"{route}\"")),
            "{route}:\n{text}"
        );
    }
    assert!(text.contains("resolving an openid failed"), "{text}");
    let oauth_code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    for (what, secret) in [
        ("token", token.as_str()),
        ("OAuth token", oauth_token.as_str()),
        ("state cookie", state_cookie.as_str()),
        ("wx.login code", code.as_str()),
        ("OAuth code", oauth_code.as_str()),
        ("app secret", h.sandbox.app_secret()),
        ("openid", payer),
    ] {
        assert!(!text.contains(secret), "{what} logged:\n{text}");
    }
    // Nor the MAC part of a token alone.
    let tag = token.split_once('.').unwrap().1;
    assert!(!text.contains(tag), "a token's MAC logged:\n{text}");
}

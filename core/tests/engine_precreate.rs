//! `POST {prefix}/precreate`, engine configuration and routing, against the sandbox.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use support::{Harness, OPENID, Op, WAIT};
use wxpay_core::clock::ManualClock;
use wxpay_core::engine::{
    AmountRange, Checkout, CheckoutPolicy, CheckoutRejection, CheckoutRequest, Engine, EngineError,
    Route,
};
use wxpay_core::fields::{Amount, Description, OutTradeNo};
use wxpay_core::order::{NewOrder, OrderStatus};
use wxpay_core::provider::{Provider, ProviderError, ProviderErrorKind};
use wxpay_core::store::{MemoryStore, OrderStore};
use wxpay_sandbox::SimulatedOutcome;

/// No upstream call and nothing stored.
async fn assert_untouched(h: &Harness) {
    assert_eq!(h.provider.calls(), 0, "an upstream call was made");
    assert!(
        h.store.all_orders().await.is_empty(),
        "something was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precreate_stores_a_pending_order_and_returns_payable_signed_parameters() {
    let h = Harness::start().await;
    let before = time::OffsetDateTime::now_utc();
    let reply = h.precreate(&json!({"openid": OPENID, "amount": 123})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/json"
    );
    let body = reply.json();
    let no = body["out_trade_no"].as_str().unwrap();
    // A generated number: at least 18 alphanumerics, valid for every provider.
    assert!(
        no.len() >= 18 && no.chars().all(|c| c.is_ascii_alphanumeric()),
        "{no}"
    );
    assert_eq!(body["appId"], h.sandbox.merchant().appid.as_str());
    assert_eq!(body["signType"], "RSA");
    assert!(body["package"].as_str().unwrap().starts_with("prepay_id="));
    for field in ["timeStamp", "nonceStr", "paySign"] {
        assert!(!body[field].as_str().unwrap().is_empty(), "{field}");
    }
    assert_eq!(h.provider.prepays(), 1);

    let order = h.store.order(no).await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.amount.fen(), 123);
    assert_eq!(order.openid.as_str(), OPENID);
    assert_eq!(order.description.as_str(), "Payment");
    assert_eq!(order.provider, "v3");
    assert_eq!(
        order.appid.as_deref(),
        Some(h.sandbox.merchant().appid.as_str())
    );
    assert_eq!(
        order.mchid.as_deref(),
        Some(h.sandbox.merchant().mchid.as_str())
    );
    assert_eq!(
        Some(format!("prepay_id={}", order.prepay_id.as_deref().unwrap())).as_deref(),
        body["package"].as_str()
    );
    let expires = order.prepay_expires_at.unwrap();
    assert!(expires >= before + time::Duration::minutes(119));
    assert!(expires <= time::OffsetDateTime::now_utc() + time::Duration::hours(2));

    // The sandbox (an independent implementation) accepts the paySign and the payment.
    let outcome = h.pay(&reply).await;
    assert_eq!(outcome.out_trade_no, no);
    assert_eq!(outcome.trade_state, "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precreate_accepts_seed_001_field_names() {
    let h = Harness::start().await;
    let reply = h
        .precreate(&json!({
            "openid": OPENID,
            "pay_amount": 250,
            "title": "Seed order",
            "biz_order_id": "SEED001_order-1",
            "extra": "{\"k\":1}",
        }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.out_trade_no(), "SEED001_order-1");
    let order = h.store.order("SEED001_order-1").await;
    assert_eq!(order.amount.fen(), 250);
    assert_eq!(order.description.as_str(), "Seed order");
    assert_eq!(order.attach.as_ref().unwrap().as_str(), "{\"k\":1}");
    assert_eq!(order.status, OrderStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprecreate_reuses_an_unexpired_prepay_id_without_an_upstream_call() {
    let h = Harness::start().await;
    let first = h.precreate_ok("REUSE000001", 100).await.json();
    let second = h.precreate_ok("REUSE000001", 100).await;
    assert_eq!(h.provider.prepays(), 1, "the prepay_id must be reused");
    let second_json = second.json();
    assert_eq!(first["package"], second_json["package"]);
    assert_eq!(first["appId"], second_json["appId"]);
    // Freshly signed parameters for the same prepay_id are payable.
    h.pay(&second).await;
    h.sandbox
        .wait_for_delivery("REUSE000001", WAIT)
        .await
        .unwrap();
    assert_eq!(h.store.order("REUSE000001").await.status, OrderStatus::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprecreate_with_another_amount_or_openid_is_a_conflict() {
    let h = Harness::start().await;
    h.precreate_ok("CONFLICT0001", 100).await;
    let before = h.store.order("CONFLICT0001").await;
    let other_amount = h
        .precreate(&json!({"openid": OPENID, "amount": 101, "out_trade_no": "CONFLICT0001"}))
        .await;
    other_amount.assert_error(StatusCode::CONFLICT, "ORDER_MISMATCH");
    let other_payer = h
        .precreate(
            &json!({"openid": "someone_else", "amount": 100, "out_trade_no": "CONFLICT0001"}),
        )
        .await;
    other_payer.assert_error(StatusCode::CONFLICT, "ORDER_MISMATCH");
    assert_eq!(h.provider.prepays(), 1);
    assert_eq!(h.store.order("CONFLICT0001").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprecreate_of_a_paid_order_is_a_conflict() {
    let h = Harness::start().await;
    h.paid_order("PAIDTWICE01", 100).await;
    assert_eq!(h.store.order("PAIDTWICE01").await.status, OrderStatus::Paid);
    let calls = h.provider.calls();
    let again = h
        .precreate(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "PAIDTWICE01"}))
        .await;
    again.assert_error(StatusCode::CONFLICT, "ORDER_PAID");
    assert_eq!(
        h.provider.calls(),
        calls,
        "no upstream call for a paid order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprecreate_near_prepay_expiry_asks_the_upstream_again() {
    let clock = Arc::new(ManualClock::at(
        time::OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let engine_clock = clock.clone();
    let h = Harness::builder()
        .configure(move |b| b.clock(engine_clock))
        .start()
        .await;
    h.precreate_ok("EXPIRING001", 100).await;
    assert_eq!(h.provider.prepays(), 1);
    // 1 h 55 min later the prepay_id is too close to its expiry to hand out.
    clock.advance(115 * 60);
    let reply = h.precreate_ok("EXPIRING001", 100).await;
    assert_eq!(
        h.provider.prepays(),
        2,
        "a near-expiry prepay_id is not reused"
    );
    h.pay(&reply).await;
    h.sandbox
        .wait_for_delivery("EXPIRING001", WAIT)
        .await
        .unwrap();
    assert_eq!(h.store.order("EXPIRING001").await.status, OrderStatus::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_precreates_of_one_order_share_one_prepay_id() {
    let h = Harness::start().await;
    let body = json!({"openid": OPENID, "amount": 77, "out_trade_no": "CONCURRENT01"});
    let replies = futures_join(&h, &body, 6).await;
    let packages: Vec<Value> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.json()["package"].clone()
        })
        .collect();
    assert!(packages.windows(2).all(|w| w[0] == w[1]), "{packages:?}");
    assert_eq!(h.store.all_orders().await.len(), 1);
    assert_eq!(
        h.store.order("CONCURRENT01").await.status,
        OrderStatus::Pending
    );
}

async fn futures_join(h: &Harness, body: &Value, n: usize) -> Vec<support::Reply> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let engine = h.engine.clone();
        let body = body.clone();
        tasks.spawn(async move { support::precreate_on(&engine, &body).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.unwrap());
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_with_a_json_error_no_upstream_call_and_nothing_stored() {
    let h = Harness::start().await;
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<(Bytes, &str, Option<&str>)> = vec![
        (Bytes::from_static(b"{not json"), "INVALID_JSON", None),
        (Bytes::from_static(b""), "INVALID_JSON", None),
        (Bytes::from_static(b"[1,2]"), "INVALID_JSON", None),
        (Bytes::from_static(b"\"openid\""), "INVALID_JSON", None),
        (Bytes::from_static(b"null"), "INVALID_JSON", None),
        (
            json_bytes(&json!({"amount": 100})),
            "INVALID_FIELD",
            Some("openid"),
        ),
        (
            json_bytes(&json!({"openid": null, "amount": 100})),
            "INVALID_FIELD",
            Some("openid"),
        ),
        (
            json_bytes(&json!({"openid": "", "amount": 100})),
            "INVALID_FIELD",
            Some("openid"),
        ),
        (
            json_bytes(&json!({"openid": "bad openid!", "amount": 100})),
            "INVALID_FIELD",
            Some("openid"),
        ),
        (
            json_bytes(&json!({"openid": "o'; DROP TABLE", "amount": 100})),
            "INVALID_FIELD",
            Some("openid"),
        ),
        (
            json_bytes(&json!({"openid": long(129), "amount": 100})),
            "INVALID_FIELD",
            Some("openid"),
        ),
        (
            json_bytes(&json!({"openid": 12345, "amount": 100})),
            "INVALID_FIELD",
            Some("openid"),
        ),
        (
            json_bytes(&json!({"openid": OPENID})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 0})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 1.5})),
            "INVALID_FIELD",
            Some("amount"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100.0})),
            "INVALID_FIELD",
            Some("amount"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": "100"})),
            "INVALID_FIELD",
            Some("amount"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": -100})),
            "INVALID_FIELD",
            Some("amount"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": [100]})),
            "INVALID_FIELD",
            Some("amount"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "pay_amount": -1})),
            "INVALID_FIELD",
            Some("pay_amount"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 1_000_001})),
            "AMOUNT_OUT_OF_RANGE",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 3_000_000_000_u64})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": u64::MAX})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "description": long(128)})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "description": "   "})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "description": "a\u{7}b"})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "description": 5})),
            "INVALID_FIELD",
            Some("description"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "abc"})),
            "INVALID_FIELD",
            Some("out_trade_no"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "out_trade_no": long(33)})),
            "INVALID_FIELD",
            Some("out_trade_no"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "order/../1"})),
            "INVALID_FIELD",
            Some("out_trade_no"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "订单号123456"})),
            "INVALID_FIELD",
            Some("out_trade_no"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "out_trade_no": 12345678})),
            "INVALID_FIELD",
            Some("out_trade_no"),
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "attach": long(129)})),
            "INVALID_FIELD",
            None,
        ),
        (
            json_bytes(&json!({"openid": OPENID, "amount": 100, "attach": {"a": 1}})),
            "INVALID_FIELD",
            Some("attach"),
        ),
    ];
    for (body, code, field) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let reply = h
            .call(
                Method::POST,
                "/wxpay/precreate",
                &[("content-type", "application/json")],
                body,
            )
            .await;
        assert!(reply.status.is_client_error(), "{shown}: {}", reply.status);
        let json = reply.assert_error(StatusCode::BAD_REQUEST, code);
        if let Some(field) = field {
            assert_eq!(json["field"], field, "{shown}: {json}");
        }
        assert_untouched(&h).await;
    }
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_oversized_body_and_unknown_routes_are_refused() {
    let h = Harness::start().await;
    let get = h
        .call(Method::GET, "/wxpay/precreate", &[], Bytes::new())
        .await;
    let json = get.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert!(json["message"].as_str().unwrap().contains("POST"));
    assert_eq!(get.headers.get("allow").unwrap(), "POST");

    let mut big = br#"{"openid":"o1","amount":100,"attach":""#.to_vec();
    big.resize(16 * 1024 + 1, b'x');
    let reply = h
        .call(Method::POST, "/wxpay/precreate", &[], big.clone())
        .await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE");

    // The same through a real HTTP adapter that reads within the engine's limit.
    let http = reqwest::Client::new();
    let over_http = http
        .post(format!("{}/wxpay/precreate", h.base_url))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(over_http.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let json: Value = over_http.json().await.unwrap();
    assert_eq!(json["code"], "BODY_TOO_LARGE");
    let put = http
        .put(format!("{}/wxpay/precreate", h.base_url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);

    let unknown = h
        .call(Method::POST, "/wxpay/refund", &[], Bytes::new())
        .await;
    unknown.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_untouched(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_before_the_upstream_call_is_503_without_one() {
    let h = Harness::start().await;
    h.store.fail(Op::Insert);
    let reply = h
        .precreate(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "STOREDOWN01"}))
        .await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE");
    assert_untouched(&h).await;
    h.store.recover_all();
    h.precreate_ok("STOREDOWN01", 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_after_prepay_is_retryable_even_from_another_address() {
    let h = Harness::start().await;
    let body = serde_json::to_vec(
        &json!({"openid": OPENID, "amount": 100, "out_trade_no": "RETRYIP0001"}),
    )
    .unwrap();
    h.store.fail(Op::Transition);
    let reply = h
        .call(
            Method::POST,
            "/wxpay/precreate",
            &[("x-forwarded-for", "203.0.113.7, 10.0.0.1")],
            body.clone(),
        )
        .await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE");
    assert_eq!(
        h.store.order("RETRYIP0001").await.status,
        OrderStatus::Created
    );
    h.store.recover_all();
    // The payer retries from another network: the retried prepay must still be identical to
    // the one that took effect upstream, or the upstream refuses it as OUT_TRADE_NO_USED.
    let retry = h
        .call(
            Method::POST,
            "/wxpay/precreate",
            &[("x-forwarded-for", "198.51.100.23")],
            body,
        )
        .await;
    assert_eq!(
        retry.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );
    assert_eq!(h.provider.prepays(), 2);
    assert_eq!(
        h.store.order("RETRYIP0001").await.status,
        OrderStatus::Pending
    );
    h.pay(&retry).await;
    h.sandbox
        .wait_for_delivery("RETRYIP0001", WAIT)
        .await
        .unwrap();
    assert_eq!(h.store.order("RETRYIP0001").await.status, OrderStatus::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_error_names_its_code_and_message_and_the_order_stays_retryable() {
    let h = Harness::start().await;
    h.provider.fail_next_prepay(ProviderError {
        kind: ProviderErrorKind::Unavailable,
        upstream_code: Some("SYSTEM_ERROR".to_owned()),
        message: "系统异常，请稍后重试".to_owned(),
        may_have_taken_effect: true,
    });
    let reply = h
        .precreate(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "UPSTREAM0001"}))
        .await;
    let json = reply.assert_error(StatusCode::BAD_GATEWAY, "UPSTREAM_UNAVAILABLE");
    assert_eq!(json["upstream_code"], "SYSTEM_ERROR");
    assert_eq!(json["upstream_message"], "系统异常，请稍后重试");
    assert!(json["message"].as_str().unwrap().contains("SYSTEM_ERROR"));
    assert_eq!(
        h.store.order("UPSTREAM0001").await.status,
        OrderStatus::Created
    );

    // The same request again succeeds.
    let retry = h.precreate_ok("UPSTREAM0001", 100).await;
    assert_eq!(h.provider.prepays(), 2);
    assert_eq!(
        h.store.order("UPSTREAM0001").await.status,
        OrderStatus::Pending
    );
    h.pay(&retry).await;
    h.sandbox
        .wait_for_delivery("UPSTREAM0001", WAIT)
        .await
        .unwrap();
    assert_eq!(
        h.store.order("UPSTREAM0001").await.status,
        OrderStatus::Paid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_upstream_refusal_is_reported_with_the_upstreams_code_and_message() {
    let h = Harness::start().await;
    // Another shop (or an earlier deployment) used this out_trade_no upstream with another
    // amount: the sandbox refuses the engine's prepay as OUT_TRADE_NO_USED.
    let other = NewOrder::new(
        OutTradeNo::try_from("TAKEN000001").unwrap(),
        OPENID.try_into().unwrap(),
        Amount::from_fen(999).unwrap(),
        Description::try_from("elsewhere").unwrap(),
    )
    .into_order(time::OffsetDateTime::now_utc());
    h.provider.inner().prepay(&other, None).await.unwrap();

    let reply = h
        .precreate(&json!({"openid": OPENID, "amount": 100, "out_trade_no": "TAKEN000001"}))
        .await;
    let json = reply.assert_error(StatusCode::BAD_GATEWAY, "UPSTREAM_REJECTED");
    assert_eq!(json["upstream_code"], "OUT_TRADE_NO_USED");
    assert_eq!(json["upstream_message"], "商户订单号重复");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("OUT_TRADE_NO_USED")
    );
    assert_eq!(
        h.store.order("TAKEN000001").await.status,
        OrderStatus::Created
    );
}

/// Prices from the app's own catalogue and authorises from a header.
#[derive(Debug)]
struct Catalogue;

#[async_trait]
impl CheckoutPolicy for Catalogue {
    async fn checkout(
        &self,
        request: &CheckoutRequest,
        headers: &HeaderMap,
    ) -> Result<Checkout, CheckoutRejection> {
        if headers.get("x-session").is_none() {
            return Err(CheckoutRejection::new(
                StatusCode::UNAUTHORIZED,
                "LOGIN_REQUIRED",
                "log in first",
            ));
        }
        let fen = match request.body["product"].as_str() {
            Some("coffee") => 1800,
            _ => {
                return Err(CheckoutRejection::new(
                    StatusCode::NOT_FOUND,
                    "NO_SUCH_PRODUCT",
                    "unknown product",
                ));
            }
        };
        // The shop numbers its own orders: the client's choice is ignored.
        Ok(Checkout::new(
            Amount::from_fen(fen).unwrap(),
            Description::try_from("Coffee").unwrap(),
        )
        .with_attach("product=coffee".try_into().unwrap()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_policy_prices_and_authorises_server_side() {
    let h = Harness::builder()
        .configure(|b| b.checkout_policy(Arc::new(Catalogue)))
        .start()
        .await;
    let body = json_bytes(&json!({"openid": OPENID, "amount": 1, "product": "coffee"}));
    let anonymous = h
        .call(Method::POST, "/wxpay/precreate", &[], body.clone())
        .await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED, "LOGIN_REQUIRED");
    let unknown = h
        .call(
            Method::POST,
            "/wxpay/precreate",
            &[("x-session", "s1")],
            json_bytes(&json!({"openid": OPENID, "product": "tea"})),
        )
        .await;
    unknown.assert_error(StatusCode::NOT_FOUND, "NO_SUCH_PRODUCT");
    assert_untouched(&h).await;

    let reply = h
        .call(
            Method::POST,
            "/wxpay/precreate",
            &[("x-session", "s1")],
            body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let order = h.store.order(&reply.out_trade_no()).await;
    assert_eq!(order.amount.fen(), 1800, "the client's amount is ignored");
    // A client-chosen number is not honoured by this policy: the engine generated one.
    let chosen = h
        .call(
            Method::POST,
            "/wxpay/precreate",
            &[("x-session", "s1")],
            json_bytes(
                &json!({"openid": OPENID, "product": "coffee", "out_trade_no": "CLIENTPICKED1"}),
            ),
        )
        .await;
    assert_eq!(chosen.status, StatusCode::OK);
    assert_ne!(chosen.out_trade_no(), "CLIENTPICKED1");
    assert!(h.store.try_order("CLIENTPICKED1").await.is_none());
    assert_eq!(order.description.as_str(), "Coffee");
    assert_eq!(order.attach.unwrap().as_str(), "product=coffee");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_range_is_configurable() {
    let h = Harness::builder()
        .configure(|b| {
            b.checkout_policy(Arc::new(AmountRange::new(
                Amount::from_fen(100).unwrap(),
                Amount::from_fen(500).unwrap(),
                Description::try_from("Tip").unwrap(),
            )))
        })
        .start()
        .await;
    for fen in [99, 501] {
        h.precreate(&json!({"openid": OPENID, "amount": fen}))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "AMOUNT_OUT_OF_RANGE");
    }
    assert_untouched(&h).await;
    let reply = h.precreate(&json!({"openid": OPENID, "amount": 500})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        h.store
            .order(&reply.out_trade_no())
            .await
            .description
            .as_str(),
        "Tip"
    );
}

#[derive(Debug)]
struct NoUpstream;

#[async_trait]
impl Provider for NoUpstream {
    fn name(&self) -> &'static str {
        "none"
    }
    fn merchant(&self) -> wxpay_core::provider::MerchantIdentity {
        wxpay_core::provider::MerchantIdentity::default()
    }
    async fn prepay(
        &self,
        _: &wxpay_core::order::Order,
        _: Option<std::net::IpAddr>,
    ) -> Result<wxpay_core::provider::Prepay, ProviderError> {
        unreachable!()
    }
    fn client_params(
        &self,
        _: &wxpay_core::order::Order,
        _: &str,
    ) -> Option<wxpay_core::provider::PaymentParams> {
        None
    }
    async fn verify_notification(
        &self,
        _: &HeaderMap,
        _: &[u8],
    ) -> Result<
        wxpay_core::provider::PaymentNotification,
        wxpay_core::provider::NotificationRejection,
    > {
        unreachable!()
    }
    fn acknowledge(&self) -> http::Response<Bytes> {
        http::Response::new(Bytes::new())
    }
    fn failure_reply(&self, status: StatusCode, _: &str) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = status;
        response
    }
    async fn query(
        &self,
        _: &wxpay_core::order::Order,
    ) -> Result<wxpay_core::provider::PaymentReport, ProviderError> {
        unreachable!()
    }
    async fn close(&self, _: &wxpay_core::order::Order) -> Result<(), ProviderError> {
        unreachable!()
    }
}

#[test]
fn engine_settings_are_validated_and_routes_follow_the_prefix() {
    let build =
        |configure: fn(wxpay_core::engine::EngineBuilder) -> wxpay_core::engine::EngineBuilder| {
            configure(Engine::builder(
                Arc::new(NoUpstream),
                Arc::new(MemoryStore::new()) as Arc<dyn OrderStore>,
            ))
            .build()
        };
    assert!(matches!(
        build(|b| b.prefix("pay")),
        Err(EngineError::Prefix(_))
    ));
    assert!(matches!(
        build(|b| b.prefix("/pay/")),
        Err(EngineError::Prefix(_))
    ));
    assert!(matches!(
        build(|b| b.notify_body_limit(0)),
        Err(EngineError::Setting("notify_body_limit"))
    ));
    assert!(matches!(
        build(|b| b.precreate_body_limit(0)),
        Err(EngineError::Setting("precreate_body_limit"))
    ));
    assert!(matches!(
        build(|b| b.dispatch_every(Duration::ZERO)),
        Err(EngineError::Setting("dispatch_every"))
    ));
    assert!(matches!(
        build(|b| b.reconcile(Duration::ZERO, Duration::ZERO)),
        Err(EngineError::Setting("reconcile_every"))
    ));

    let engine = build(|b| b.prefix("/shop/pay")).unwrap();
    assert_eq!(engine.prefix(), "/shop/pay");
    assert_eq!(
        engine.route(&Method::POST, "/shop/pay/precreate"),
        Some(Route::Precreate)
    );
    assert_eq!(
        engine.route(&Method::POST, "/shop/pay/notify"),
        Some(Route::Notify)
    );
    assert_eq!(
        engine.route(&Method::GET, "/shop/pay/orders/ABC123456"),
        Some(Route::OrderStatus)
    );
    assert_eq!(engine.route(&Method::GET, "/shop/pay/orders/"), None);
    assert_eq!(engine.route(&Method::GET, "/shop/pay/orders/a/b"), None);
    assert_eq!(engine.route(&Method::POST, "/wxpay/precreate"), None);
    assert_eq!(engine.route(&Method::POST, "/shop/payprecreate"), None);
    assert_eq!(engine.body_limit(Route::Notify), 64 * 1024);
    assert_eq!(engine.body_limit(Route::Precreate), 16 * 1024);

    let root = build(|b| b.prefix("")).unwrap();
    assert_eq!(
        root.route(&Method::POST, "/precreate"),
        Some(Route::Precreate)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_can_fail_and_the_order_stays_pending() {
    let h = Harness::start().await;
    let reply = h.precreate_ok("PAYFAIL0001", 100).await;
    let outcome = h
        .sandbox
        .pay(reply.pay_request(SimulatedOutcome::PayError))
        .await
        .unwrap();
    assert_eq!(outcome.trade_state, "PAYERROR");
    assert_eq!(
        h.store.order("PAYFAIL0001").await.status,
        OrderStatus::Pending
    );
    assert!(h.store.events("PAYFAIL0001").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_by_its_content_type_is_415() {
    let h = Harness::start().await;
    let body = json_bytes(&json!({"openid": OPENID, "amount": 100}));
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        h.call(
            Method::POST,
            "/wxpay/precreate",
            &[("content-type", content_type)],
            body.clone(),
        )
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_untouched(&h).await;
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        let reply = h
            .call(
                Method::POST,
                "/wxpay/precreate",
                &[("content-type", content_type)],
                body.clone(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{content_type}");
    }
}

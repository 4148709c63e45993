//! End to end through the engine and the sandbox's independent API v2 and gateway emulators:
//! precreate → pay → notify → PAID, bad inputs, forged and repeated callbacks, for
//! `V2Provider` (MD5 and HMAC-SHA256) and `GatewayProvider`.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use wxpay_core::engine::{AdminToken, Engine, Route};
use wxpay_core::fields::{NotifyUrl, OutTradeNo};
use wxpay_core::gateway::{AppKey, GatewayClient, GatewayConfig};
use wxpay_core::order::OrderStatus;
use wxpay_core::provider::Provider;
use wxpay_core::provider::gateway::GatewayProvider;
use wxpay_core::provider::v2::V2Provider;
use wxpay_core::store::{MemoryStore, OrderStore};
use wxpay_core::v2::{ApiKey, SignType, V2Client, V2Config};
use wxpay_sandbox::{
    DeliveryKind, NotifyFaults, PayRequest, Sandbox, SandboxConfig, SimulatedOutcome, V2SignType,
};

const WAIT: Duration = Duration::from_secs(10);
const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const OPERATOR_TOKEN: &str = "v2-gateway-operator-token-0123456789ab";

#[derive(Clone)]
struct Served {
    engine: Engine,
    notifications: Arc<Mutex<Vec<(Bytes, StatusCode)>>>,
}

async fn adapter(
    State(s): State<Served>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let Some(route) = s.engine.route(&parts.method, parts.uri.path()) else {
        return axum::response::Response::builder()
            .status(404)
            .body(axum::body::Body::empty())
            .unwrap();
    };
    let bytes = axum::body::to_bytes(body, s.engine.body_limit(route))
        .await
        .unwrap();
    let response = s
        .engine
        .handle(Request::from_parts(parts, bytes.clone()))
        .await;
    if route == Route::Notify {
        s.notifications
            .lock()
            .unwrap()
            .push((bytes, response.status()));
    }
    response.map(axum::body::Body::from)
}

struct Harness {
    sandbox: Sandbox,
    served: Served,
    store: Arc<MemoryStore>,
}

enum Upstream {
    V2(V2SignType),
    Gateway,
}

async fn start(upstream: Upstream) -> Harness {
    start_with(upstream, |builder| builder).await
}

async fn start_with(
    upstream: Upstream,
    configure: impl FnOnce(wxpay_core::engine::EngineBuilder) -> wxpay_core::engine::EngineBuilder,
) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify = format!("http://{}/wxpay/notify", listener.local_addr().unwrap());
    let notify_url = NotifyUrl::parse_for_local_development(&notify).unwrap();
    let mut config = SandboxConfig::for_tests().notify_faults(NotifyFaults {
        duplicates: 2,
        signtest_probe: true,
        ..NotifyFaults::default()
    });
    if let Upstream::V2(sign_type) = upstream {
        config = config.v2_sign_type(sign_type);
    }
    let sandbox = Sandbox::start(config).await.unwrap();
    let provider: Arc<dyn Provider> = match upstream {
        Upstream::V2(sign_type) => {
            let merchant = sandbox.merchant();
            let mut config = V2Config::new(
                &merchant.appid,
                &merchant.mchid,
                ApiKey::new(sandbox.v2_api_key()).unwrap(),
                match sign_type {
                    V2SignType::Md5 => SignType::Md5,
                    _ => SignType::HmacSha256,
                },
                notify_url,
            );
            config.api_base = sandbox.base_url().to_owned();
            Arc::new(V2Provider::new(V2Client::builder(config).build().unwrap()))
        }
        Upstream::Gateway => {
            let material = sandbox.gateway();
            let config = GatewayConfig {
                url: sandbox.base_url().to_owned(),
                biz_id: material.biz_id.clone(),
                app_key: AppKey::new(material.app_key.clone()).unwrap(),
                notify_url,
                ip: "127.0.0.1".parse().unwrap(),
            };
            Arc::new(GatewayProvider::new(GatewayClient::new(config).unwrap()))
        }
    };
    let store = Arc::new(MemoryStore::new());
    let engine = configure(
        Engine::builder(provider, store.clone())
            .admin_token(AdminToken::new(OPERATOR_TOKEN).unwrap()),
    )
    .build()
    .unwrap();
    let served = Served {
        engine,
        notifications: Arc::default(),
    };
    let app = axum::Router::new()
        .fallback(adapter)
        .with_state(served.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Harness {
        sandbox,
        served,
        store,
    }
}

async fn call(h: &Harness, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Bytes::from(body))
        .unwrap();
    let response = h.served.engine.handle(request).await;
    (response.status(), response.into_body())
}

async fn precreate(h: &Harness, body: &Value) -> (StatusCode, Value) {
    let (status, bytes) = call(
        h,
        Method::POST,
        "/wxpay/precreate",
        serde_json::to_vec(body).unwrap(),
    )
    .await;
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The status route as the operator, who sees the amount and the transaction.
async fn status_of(h: &Harness, no: &str) -> Value {
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("/wxpay/orders/{no}"))
        .header("authorization", format!("Bearer {OPERATOR_TOKEN}"))
        .body(Bytes::new())
        .unwrap();
    let response = h.served.engine.handle(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(response.body()).unwrap()
}

async fn notify(h: &Harness, body: Bytes) -> StatusCode {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/wxpay/notify")
        .body(body)
        .unwrap();
    h.served.engine.handle(request).await.status()
}

async fn full_flow(h: &Harness, amount: u64) {
    // Bad inputs change nothing and call no upstream.
    for bad in [
        json!({"openid": OPENID, "amount": 0}),
        json!({"openid": "", "amount": 1}),
        json!({"openid": OPENID, "amount": 1, "out_trade_no": "x"}),
    ] {
        let (status, reply) = precreate(h, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    }

    let (status, reply) = precreate(
        h,
        &json!({"openid": OPENID, "amount": amount, "description": "沙箱测试 e2e"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let no = reply["out_trade_no"].as_str().unwrap().to_owned();
    assert!(reply["package"].as_str().unwrap().starts_with("prepay_id="));
    assert_eq!(status_of(h, &no).await["status"], "PENDING");

    let mut pay: PayRequest = serde_json::from_value(reply.clone()).unwrap();
    pay.outcome = Some(SimulatedOutcome::Success);
    let outcome = h.sandbox.pay(pay).await.unwrap();
    assert_eq!(outcome.out_trade_no, no);
    h.sandbox.wait_for_delivery(&no, WAIT).await.unwrap();
    // The forged probe was refused; the real one and both repeats acknowledged.
    let records = h.sandbox.wait_for_attempts(&no, 4, WAIT).await.unwrap();
    for record in &records {
        match record.kind {
            DeliveryKind::Probe => assert!(!record.acknowledged, "{record:?}"),
            _ => assert!(record.acknowledged, "{record:?}"),
        }
    }
    assert!(records.iter().any(|r| r.kind == DeliveryKind::Probe));

    let paid = status_of(h, &no).await;
    assert_eq!(paid["status"], "PAID", "{paid}");
    assert_eq!(paid["amount"], amount);
    let key = OutTradeNo::try_from(no.as_str()).unwrap();
    let order = h.store.get(&key).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(
        order.transaction_id.as_deref(),
        outcome.transaction_id.as_deref()
    );
    assert_eq!(h.store.events_for_order(&key).await.unwrap().len(), 1);

    // Replaying an accepted notification is acknowledged and changes nothing; a tampered copy
    // is refused.
    let accepted = h
        .served
        .notifications
        .lock()
        .unwrap()
        .iter()
        .find(|(_, status)| status.is_success())
        .map(|(body, _)| body.clone())
        .unwrap();
    assert!(notify(h, accepted.clone()).await.is_success());
    let text = String::from_utf8(accepted.to_vec()).unwrap();
    let tampered = if text.starts_with("<xml>") {
        text.replacen("<nonce_str>", "<nonce_str>x", 1).replacen(
            "<nonce_str><![CDATA[",
            "<nonce_str><![CDATA[x",
            1,
        )
    } else {
        text.replacen("nonce_str=", "nonce_str=x", 1)
    };
    assert_ne!(tampered, text);
    assert!(!notify(h, Bytes::from(tampered)).await.is_success());
    assert!(!notify(h, Bytes::from_static(b"garbage")).await.is_success());
    assert_eq!(h.store.events_for_order(&key).await.unwrap().len(), 1);

    // A second precreate of a paid order is refused.
    let (status, _) = precreate(
        h,
        &json!({"openid": OPENID, "amount": amount, "out_trade_no": no}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_md5_end_to_end() {
    let h = start(Upstream::V2(V2SignType::Md5)).await;
    full_flow(&h, 1).await;
    h.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_hmac_sha256_end_to_end() {
    let h = start(Upstream::V2(V2SignType::HmacSha256)).await;
    full_flow(&h, 83601).await;
    h.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_end_to_end() {
    let h = start(Upstream::Gateway).await;
    full_flow(&h, 83601).await;
    h.sandbox.shutdown().await;
}

/// The gateway has no query: reconciliation never asks it, and closes an order locally once
/// its prepay expired; a callback that comes later still marks it paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_closes_expired_gateway_orders_locally_without_asking() {
    let clock = Arc::new(wxpay_core::clock::ManualClock::at(
        time::OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let engine_clock = clock.clone();
    let h = start_with(Upstream::Gateway, move |b| {
        b.clock(engine_clock)
            .reconcile(Duration::ZERO, Duration::from_secs(3600))
    })
    .await;
    let (status, params) = precreate(
        &h,
        &json!({"openid": OPENID, "amount": 100, "out_trade_no": "GWRECON0001"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{params}");
    clock.advance(1);
    let report = h.served.engine.reconcile().await;
    assert_eq!(
        (report.checked, report.closed, report.failed),
        (0, 0, 0),
        "{report:?}"
    );
    clock.advance(3 * 3600);
    let report = h.served.engine.reconcile().await;
    assert_eq!(
        (report.checked, report.closed, report.failed),
        (0, 1, 0),
        "{report:?}"
    );
    let key = OutTradeNo::try_from("GWRECON0001").unwrap();
    assert_eq!(
        h.store.get(&key).await.unwrap().unwrap().status,
        OrderStatus::Closed
    );
}

/// A payment notification for `no` signed with `sign_type` and the sandbox's API key.
fn v2_payment_xml(sandbox: &Sandbox, no: &str, amount: u64, sign_type: SignType) -> Bytes {
    v2_payment_xml_with(
        sandbox,
        no,
        amount,
        sign_type,
        Some("4200000000000000000000000077"),
    )
}

fn v2_payment_xml_with(
    sandbox: &Sandbox,
    no: &str,
    amount: u64,
    sign_type: SignType,
    transaction_id: Option<&str>,
) -> Bytes {
    use wxpay_core::v2::{Params, sign::sign_params, xml};
    let merchant = sandbox.merchant();
    let mut params: Params = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", merchant.appid.as_str()),
        ("mch_id", merchant.mchid.as_str()),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("openid", OPENID),
        ("trade_type", "JSAPI"),
        ("bank_type", "OTHERS"),
        ("fee_type", "CNY"),
        ("out_trade_no", no),
        ("time_end", "20261207120000"),
        ("sign_type", sign_type.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    params.insert("total_fee".into(), amount.to_string());
    params.insert("cash_fee".into(), amount.to_string());
    if let Some(id) = transaction_id {
        params.insert("transaction_id".into(), id.to_owned());
    }
    let sign = sign_params(
        &params,
        &ApiKey::new(sandbox.v2_api_key()).unwrap(),
        sign_type,
    );
    params.insert("sign".into(), sign);
    Bytes::from(xml::write(&params).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchants_sign_type_is_enforced_on_notifications() {
    let h = start(Upstream::V2(V2SignType::HmacSha256)).await;
    let (status, reply) = precreate(&h, &json!({"openid": OPENID, "amount": 300})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let no = reply["out_trade_no"].as_str().unwrap().to_owned();
    // Signed with the right key but MD5: not what WeChat sends an HMAC-SHA256 merchant.
    let md5 = v2_payment_xml(&h.sandbox, &no, 300, SignType::Md5);
    assert_eq!(notify(&h, md5).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&h, &no).await["status"], "PENDING");
    // The same notification signed as the merchant signs is accepted.
    let hmac = v2_payment_xml(&h.sandbox, &no, 300, SignType::HmacSha256);
    assert_eq!(notify(&h, hmac).await, StatusCode::OK);
    assert_eq!(status_of(&h, &no).await["status"], "PAID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_v2_counts_body_and_attach_in_bytes() {
    let h = start(Upstream::V2(V2SignType::Md5)).await;
    // 43 Chinese characters: 129 bytes, over the body's 128 (v3 would take 127 characters).
    let long = "测".repeat(43);
    let (status, reply) = precreate(
        &h,
        &json!({"openid": OPENID, "amount": 1, "description": long}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        (reply["code"].as_str(), reply["field"].as_str()),
        (Some("INVALID_FIELD"), Some("description"))
    );
    let fits = "测".repeat(42);
    let (status, reply) = precreate(
        &h,
        &json!({"openid": OPENID, "amount": 1, "description": fits}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = precreate(
        &h,
        &json!({"openid": OPENID, "amount": 1, "attach": "注".repeat(43)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["field"], "attach", "{reply}");
    // Control characters are refused in attach as in the description, on every upstream.
    for field in ["attach", "description"] {
        let (status, reply) = precreate(
            &h,
            &json!({"openid": OPENID, "amount": 1, field: "a\u{0}b"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {reply}");
        assert_eq!(reply["field"], field);
    }
    assert_eq!(
        h.store
            .list_orders(&Default::default(), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_without_transaction_id_is_acknowledged_and_left_to_the_query() {
    let h = start(Upstream::V2(V2SignType::Md5)).await;
    let (status, reply) = precreate(&h, &json!({"openid": OPENID, "amount": 300})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let no = reply["out_trade_no"].as_str().unwrap().to_owned();
    let body = v2_payment_xml_with(&h.sandbox, &no, 300, SignType::Md5, None);
    // Acknowledged, so WeChat does not repeat it for a day; the order stays open.
    assert_eq!(notify(&h, body).await, StatusCode::OK);
    assert_eq!(status_of(&h, &no).await["status"], "PENDING");
    let number = OutTradeNo::try_from(no.as_str()).unwrap();
    let mismatches = h.store.mismatches(&number).await.unwrap();
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert!(mismatches[0].detail.contains("without transaction_id"));
}

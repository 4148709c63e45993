//! The operator refund routes through the layer on a real server: mounted only with an admin
//! token, refused without it, and a paid order refunded and listed.

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{engine_builder, sandbox};
use http::StatusCode;
use serde_json::{Value, json};
use wxpay_tower::WxPayLayer;
use wxpay_tower::core::engine::AdminToken;

const TOKEN: &str = "tower-admin-token-0123456789abcdefghij";

#[tokio::test]
async fn a_paid_order_is_refunded_through_the_layer() {
    let sandbox = sandbox().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = engine_builder(&sandbox, &format!("http://{addr}/wxpay/notify"))
        .admin_token(AdminToken::new(TOKEN).unwrap())
        .build()
        .unwrap();
    let _tasks = engine.spawn_background_tasks();
    assert!(
        engine.provider().refunds_supported(),
        "the sandbox's v3 upstream refunds"
    );
    let app: Router = Router::new()
        .route("/", get(|| async { "home" }))
        .route(
            "/wxpay/orders/{no}/refunds/export",
            get(|| async { "app's own" }),
        )
        .layer(WxPayLayer::new(engine));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");

    let params: Value = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "amount": 500, "description": "Refund test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let no = params["out_trade_no"].as_str().unwrap().to_owned();
    sandbox
        .pay(serde_json::from_value(params).unwrap())
        .await
        .unwrap();
    sandbox
        .wait_for_delivery(&no, Duration::from_secs(10))
        .await
        .unwrap();

    let refunds = format!("{base}/wxpay/orders/{no}/refunds");
    let refused = http
        .post(&refunds)
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");

    let created = http
        .post(&refunds)
        .bearer_auth(TOKEN)
        .json(&json!({"amount": 100, "reason": "damaged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let refund: Value = created.json().await.unwrap();
    assert_eq!(refund["amount"], 100);
    assert_eq!(refund["out_trade_no"], no.as_str());
    let over = http
        .post(&refunds)
        .bearer_auth(TOKEN)
        .json(&json!({"amount": 401}))
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), StatusCode::CONFLICT);
    assert_eq!(
        over.json::<Value>().await.unwrap()["code"],
        "REFUND_EXCEEDS_PAID"
    );

    let listed: Value = http
        .get(&refunds)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["refunds"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["amount"], 500);

    // A path beyond the engine's stays the app's.
    let own = http.get(format!("{refunds}/export")).send().await.unwrap();
    assert_eq!(own.text().await.unwrap(), "app's own");
    server.abort();
}

#[tokio::test]
async fn without_an_admin_token_the_refund_path_is_the_apps() {
    let sandbox = sandbox().await;
    let engine = common::engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app: Router = Router::new()
        .route("/wxpay/orders/{no}/refunds", get(|| async { "app's own" }))
        .layer(WxPayLayer::new(engine));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let text = reqwest::get(format!("http://{addr}/wxpay/orders/ORDER123456/refunds"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "app's own");
    server.abort();
}

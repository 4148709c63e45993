//! Seed 000's own contract, mounted with `EngineBuilder::seed000_compat`: its example request
//! `{openid, amount}` at `/wx_payment.WxPaymentService/jsapi`, its answer keys, its gRPC-gateway
//! errors and its 5-second client, on the same store and notify route as the precreate route.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Harness, OPENID, WAIT};
use wxpay_core::engine::SEED000_JSAPI_PATH;
use wxpay_core::order::OrderStatus;
use wxpay_core::provider::{ProviderError, ProviderErrorKind};
use wxpay_sandbox::PayRequest;

async fn jsapi(h: &Harness, body: &Value) -> (StatusCode, Value) {
    let reply = h
        .call(
            Method::POST,
            SEED000_JSAPI_PATH,
            &[("content-type", "application/json")],
            Bytes::from(serde_json::to_vec(body).unwrap()),
        )
        .await;
    let json = serde_json::from_slice(&reply.body).unwrap();
    (reply.status, json)
}

fn assert_grpc_error(answer: &(StatusCode, Value), status: StatusCode, code: u64) {
    let (got, json) = answer;
    assert_eq!(*got, status, "{json}");
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "details", "message"], "{json}");
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(json["details"], json!([]));
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_own_request_gets_the_seeds_own_answer_and_pays() {
    let h = Harness::builder()
        .configure(|b| b.seed000_compat(true))
        .start()
        .await;
    assert!(
        h.engine
            .routes()
            .contains(&wxpay_core::engine::Route::Seed000Jsapi)
    );
    // The seed's example body: `{"openid", "amount"}` in fen.
    let (status, answer) = jsapi(&h, &json!({"openid": OPENID, "amount": 100})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut keys: Vec<&str> = answer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["nonceStr", "package", "paySign", "signType", "timestamp"],
        "exactly the seed's keys (2024-06-18 version): {answer}"
    );
    assert_eq!(answer["signType"], "RSA");
    assert!(
        answer["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=")
    );
    assert!(answer["timestamp"].as_str().unwrap().parse::<u64>().is_ok());

    // The mini program adds its appId and calls wx.requestPayment: the sandbox checks paySign
    // and the payment arrives on the engine's own notify route.
    let orders = h.store.all_orders().await;
    assert_eq!(orders.len(), 1);
    let no = orders[0].out_trade_no.to_string();
    assert_eq!(orders[0].amount.fen(), 100);
    let pay: PayRequest = serde_json::from_value(json!({
        "appId": h.sandbox.merchant().appid,
        "timeStamp": answer["timestamp"],
        "nonceStr": answer["nonceStr"],
        "package": answer["package"],
        "signType": answer["signType"],
        "paySign": answer["paySign"],
    }))
    .unwrap();
    h.sandbox.pay(pay).await.unwrap();
    h.sandbox.wait_for_delivery(&no, WAIT).await.unwrap();
    assert_eq!(h.store.order(&no).await.status, OrderStatus::Paid);

    // The prefix's routes are unchanged beside it.
    let reply = h.precreate(&json!({"openid": OPENID, "amount": 1})).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_grpc_gateway_statuses() {
    let h = Harness::builder()
        .configure(|b| b.seed000_compat(true))
        .start()
        .await;
    for body in [
        json!({"openid": OPENID, "amount": 0}),
        json!({"openid": OPENID, "amount": 2_147_483_648_u64}),
        json!({"openid": OPENID, "amount": "100"}),
        json!({"openid": OPENID}),
        json!({"amount": 100}),
        json!({"openid": "", "amount": 100}),
    ] {
        let answer = jsapi(&h, &body).await;
        assert_grpc_error(&answer, StatusCode::BAD_REQUEST, 3);
    }
    let not_json = h
        .call(
            Method::POST,
            SEED000_JSAPI_PATH,
            &[("content-type", "application/json")],
            Bytes::from_static(b"{openid"),
        )
        .await;
    assert_grpc_error(
        &(
            not_json.status,
            serde_json::from_slice(&not_json.body).unwrap(),
        ),
        StatusCode::BAD_REQUEST,
        3,
    );
    assert_eq!(
        h.provider.prepays(),
        0,
        "nothing refused reached the upstream"
    );

    h.provider.fail_next_prepay(ProviderError {
        kind: ProviderErrorKind::Unavailable,
        upstream_code: Some("SYSTEM_ERROR".to_owned()),
        message: "系统异常，请稍后重试".to_owned(),
        may_have_taken_effect: true,
    });
    let answer = jsapi(&h, &json!({"openid": OPENID, "amount": 100})).await;
    assert_grpc_error(&answer, StatusCode::SERVICE_UNAVAILABLE, 14);

    h.provider.fail_next_prepay(ProviderError {
        kind: ProviderErrorKind::Timeout,
        upstream_code: None,
        message: "no answer in time".to_owned(),
        may_have_taken_effect: true,
    });
    let answer = jsapi(&h, &json!({"openid": OPENID, "amount": 100})).await;
    assert_grpc_error(&answer, StatusCode::GATEWAY_TIMEOUT, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_is_answered_within_the_budget() {
    let h = Harness::builder()
        .configure(|b| {
            b.seed000_compat(true)
                .seed000_budget(Duration::from_millis(300))
        })
        .start()
        .await;
    h.provider.delay_next_prepay(Duration::from_secs(2));
    let started = Instant::now();
    let answer = jsapi(&h, &json!({"openid": OPENID, "amount": 100})).await;
    // Not a timing assertion on the engine's speed: the budget must cut a 2 s upstream short.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_grpc_error(&answer, StatusCode::GATEWAY_TIMEOUT, 4);
    // The precreate finishes in the background: the order is PENDING, not lost half-way.
    let deadline = Instant::now() + WAIT;
    loop {
        let orders = h.store.all_orders().await;
        if orders.len() == 1 && orders[0].status == OrderStatus::Pending {
            break;
        }
        assert!(Instant::now() < deadline, "{orders:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_is_off_by_default() {
    let h = Harness::start().await;
    assert_eq!(h.engine.route(&Method::POST, SEED000_JSAPI_PATH), None);
    let reply = h
        .call(Method::POST, SEED000_JSAPI_PATH, &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

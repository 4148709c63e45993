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

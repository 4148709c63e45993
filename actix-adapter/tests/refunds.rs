//! The operator refund routes on a real actix `HttpServer`, also inside a scope: refused
//! without the admin token, a paid order refunded and listed.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use common::{OPENID, engine_builder, sandbox};
use serde_json::{Value, json};
use wxpay_actix::core::engine::AdminToken;
use wxpay_sandbox::PayRequest;

const TOKEN: &str = "actix-admin-token-0123456789abcdefghij";

#[actix_web::test]
async fn a_paid_order_is_refunded_through_configure_in_a_scope() {
    let sandbox = sandbox().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The scope adds `/api` before the engine's prefix; notifications come there too.
    let engine = engine_builder(&sandbox, &format!("http://{addr}/api/wxpay/notify"))
        .admin_token(AdminToken::new(TOKEN).unwrap())
        .build()
        .unwrap();
    let _tasks = engine.spawn_background_tasks();
    assert!(
        engine.provider().refunds_supported(),
        "the sandbox's v3 upstream refunds"
    );
    let server = HttpServer::new({
        let engine = engine.clone();
        move || {
            App::new().service(web::scope("/api").configure(wxpay_actix::configure(engine.clone())))
        }
    })
    .workers(2)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/api/wxpay");

    let params: Value = http
        .post(format!("{base}/precreate"))
        .json(&json!({"openid": OPENID, "amount": 300, "description": "actix refund"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let no = params["out_trade_no"].as_str().unwrap().to_owned();
    let pay: PayRequest = serde_json::from_value(params).unwrap();
    sandbox.pay(pay).await.unwrap();
    sandbox
        .wait_for_delivery(&no, Duration::from_secs(10))
        .await
        .unwrap();

    let refunds = format!("{base}/orders/{no}/refunds");
    let refused = http
        .post(&refunds)
        .json(&json!({"amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let created = http
        .post(&refunds)
        .bearer_auth(TOKEN)
        .json(&json!({"amount": 120, "out_refund_no": format!("R{no}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let refund: Value = created.json().await.unwrap();
    assert_eq!(refund["out_refund_no"], format!("R{no}"));
    let again = http
        .post(&refunds)
        .bearer_auth(TOKEN)
        .json(&json!({"amount": 120, "out_refund_no": format!("R{no}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let listed: Value = http
        .get(&refunds)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["refund_held"], 120, "{listed}");
    assert_eq!(listed["amount"], 300);
    let deleted = http
        .delete(&refunds)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 405);
    assert_eq!(deleted.headers()["allow"], "GET, POST");

    // The operator API is mounted in the scope too, with its path parameters.
    let detail: Value = http
        .get(format!("{base}/admin/orders/{no}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["order"]["out_trade_no"], no.as_str(), "{detail}");
    assert!(
        !detail["refunds"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

//! Real `HttpServer` runs: precreate → pay → notify → status against the sandbox.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use common::{OPENID, engine, sandbox};
use wxpay_actix::core::order::OrderStatus;
use wxpay_actix::{WxPayEngine, WxPayNotification};
use wxpay_sandbox::{PayRequest, Sandbox};

async fn precreate(http: &reqwest::Client, url: &str, amount: u64) -> serde_json::Value {
    let response = http
        .post(url)
        .json(&serde_json::json!({
            "openid": OPENID,
            "amount": amount,
            "description": "actix server test",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn pay(sandbox: &Sandbox, params: &serde_json::Value) -> String {
    let out_trade_no = params["out_trade_no"].as_str().unwrap().to_owned();
    let pay: PayRequest = serde_json::from_value(params.clone()).unwrap();
    sandbox.pay(pay).await.unwrap();
    let delivered = sandbox
        .wait_for_delivery(&out_trade_no, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(delivered.acknowledged);
    out_trade_no
}

#[actix_web::test]
async fn http_server_precreate_pay_notify_status() {
    let sandbox = sandbox().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = common::operator_engine(&sandbox, &format!("http://{addr}/wxpay/notify"));
    let _tasks = engine.spawn_background_tasks();
    let server = HttpServer::new({
        let engine = engine.clone();
        move || {
            App::new()
                .route("/", web::get().to(|| async { "home" }))
                .configure(wxpay_actix::configure(engine.clone()))
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
    let base = format!("http://{addr}");
    let home = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(home.text().await.unwrap(), "home");

    let params = precreate(&http, &format!("{base}/wxpay/precreate"), 1234).await;
    assert_eq!(params["signType"], "RSA");
    let out_trade_no = pay(&sandbox, &params).await;

    let status: serde_json::Value = http
        .get(format!("{base}/wxpay/orders/{out_trade_no}"))
        .bearer_auth(common::OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "PAID");
    assert_eq!(status["amount"], 1234);
    assert!(status["transaction_id"].is_string());

    // Over-limit bodies on a real connection: 413 before the body is read.
    let response = http
        .post(format!("{base}/wxpay/notify"))
        .body(vec![b'x'; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

/// A notify handler of the app's own, with the extractors, in a scope: the notification is
/// verified, applied, acknowledged, and the order is paid.
#[actix_web::test]
async fn http_server_with_an_own_notify_handler_in_a_scope() {
    async fn my_notify(
        WxPayEngine(engine): WxPayEngine,
        WxPayNotification(notification): WxPayNotification,
        seen: web::Data<std::sync::Mutex<Vec<String>>>,
    ) -> HttpResponse {
        seen.lock()
            .unwrap()
            .push(notification.report.out_trade_no.to_string());
        wxpay_actix::into_actix_response(engine.apply_notification(&notification).await)
    }

    let sandbox = sandbox().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = engine(&sandbox, &format!("http://{addr}/shop/callbacks/wechat"));
    let seen = web::Data::new(std::sync::Mutex::new(Vec::<String>::new()));
    let server = HttpServer::new({
        let engine = engine.clone();
        let seen = seen.clone();
        move || {
            App::new().app_data(seen.clone()).service(
                web::scope("/shop")
                    .configure(wxpay_actix::configure(engine.clone()))
                    .route("/callbacks/wechat", web::post().to(my_notify)),
            )
        }
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);

    let http = reqwest::Client::new();
    let params = precreate(&http, &format!("http://{addr}/shop/wxpay/precreate"), 99).await;
    let out_trade_no = pay(&sandbox, &params).await;
    assert!(seen.lock().unwrap().contains(&out_trade_no));

    let order = engine
        .store()
        .get(&out_trade_no.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.status, OrderStatus::Paid);

    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_slow_body_gets_408_after_the_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sandbox = sandbox().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = common::engine_builder(&sandbox, &format!("http://{addr}/wxpay/notify"))
        .body_read_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let server =
        HttpServer::new(move || App::new().configure(wxpay_actix::configure(engine.clone())))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    // A slow-loris client: headers announcing 100 bytes, 9 of them, then nothing.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /wxpay/precreate HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"openid\"",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("the read timeout must end the request")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("BODY_READ_TIMEOUT"), "{text}");
    handle.stop(false).await;
}

//! The layer with `oneshot` (no server for the app), and one real-server flow.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{body_bytes, body_json, channel_body, engine, sandbox};
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use wxpay_tower::core::engine::Engine;
use wxpay_tower::{WxPay, WxPayLayer};

/// An inner service that records its calls and echoes the request: method, path and the
/// `x-test` header as response headers, the body streamed back as it is.
fn echo<B>(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<B>, Response = Response<B>, Error = Infallible, Future: Send> + Clone
where
    B: Send + 'static,
{
    tower::service_fn(move |request: Request<B>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let has_engine = request.extensions().get::<Engine>().is_some();
            let mut response = Response::builder()
                .header("x-method", request.method().as_str())
                .header("x-path", request.uri().path())
                .header("x-has-engine", has_engine.to_string());
            if let Some(v) = request.headers().get("x-test") {
                response = response.header("x-test", v);
            }
            Ok(response.body(request.into_body()).unwrap())
        }
    })
}

fn post_json(path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

#[tokio::test]
async fn other_requests_reach_the_inner_service_untouched_and_streaming() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let calls = Arc::new(AtomicUsize::new(0));
    let service = WxPayLayer::new(engine).layer(echo(calls.clone()));

    let (tx, body) = channel_body();
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/app/things/1?x=y")
        .header("x-test", "kept")
        .body(body)
        .unwrap();
    // The response arrives before the body has been sent: nothing is buffered.
    let response = tokio::time::timeout(Duration::from_secs(5), service.oneshot(request))
        .await
        .expect("the layer must not wait for the body")
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(response.headers()["x-method"], "PUT");
    assert_eq!(response.headers()["x-path"], "/app/things/1");
    assert_eq!(response.headers()["x-test"], "kept");
    assert_eq!(response.headers()["x-has-engine"], "true");

    let mut body = response.into_body();
    tx.send(Bytes::from_static(b"first ")).await.unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "first ");
    tx.send(Bytes::from_static(b"second")).await.unwrap();
    drop(tx);
    assert_eq!(body_bytes(body).await, "second");
}

#[tokio::test]
async fn paths_near_the_prefix_are_not_taken() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = WxPayLayer::new(engine).layer(echo(calls.clone()));
    for path in [
        "/",
        "/wxpay",
        "/wxpayx/precreate",
        "/wxpay/precreate/extra",
        "/wxpay/orders/",
        "/other/wxpay/notify",
    ] {
        let request = Request::builder()
            .uri(path)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.headers()["x-path"], path, "{path}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn engine_routes_are_answered_without_the_inner_service() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = WxPayLayer::new(engine).layer(echo(calls.clone()));

    // Bad JSON: a clear 400 in the engine's error shape.
    let response = service
        .ready()
        .await
        .unwrap()
        .call(post_json("/wxpay/precreate", "{not json"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let json = body_json(response.into_body()).await;
    assert!(
        json["code"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_')
    );
    assert!(json["message"].is_string());

    // An unknown order: 404 JSON.
    let request = Request::builder()
        .uri("/wxpay/orders/NO_SUCH_ORDER_123")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(body_json(response.into_body()).await["code"].is_string());

    // A forged notification: refused in the provider's failure shape.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/wxpay/notify")
        .header("wechatpay-timestamp", "1700000000")
        .header("wechatpay-nonce", "n")
        .header("wechatpay-signature", "Zm9yZ2Vk")
        .header("wechatpay-serial", "PUB_KEY_ID_0000")
        .body(Full::new(Bytes::from_static(b"{\"id\":\"x\"}")))
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert!(response.status().is_client_error() || response.status().is_server_error());
    assert_eq!(body_json(response.into_body()).await["code"], "FAIL");

    // A wrong method on an engine path: 405 from the engine.
    let request = Request::builder()
        .method(Method::GET)
        .uri("/wxpay/precreate")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the inner service saw none of them"
    );
}

#[tokio::test]
async fn a_large_content_length_gets_413_before_the_body_is_read() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let limit = engine.body_limit(wxpay_tower::core::engine::Route::Notify);
    let calls = Arc::new(AtomicUsize::new(0));
    let service = WxPayLayer::new(engine).layer(echo(calls.clone()));

    // The body never arrives: only the header can have caused the answer.
    let (_tx, body) = channel_body();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/wxpay/notify")
        .header(header::CONTENT_LENGTH, (limit + 1).to_string())
        .body(body)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), service.oneshot(request))
        .await
        .expect("413 must not wait for the body")
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_gets_413() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let limit = engine.body_limit(wxpay_tower::core::engine::Route::Precreate);
    let service = WxPayLayer::new(engine).layer(echo(Arc::new(AtomicUsize::new(0))));

    let (tx, body) = channel_body();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/wxpay/precreate")
        .body(body)
        .unwrap();
    let feeder = tokio::spawn(async move {
        // Chunks until the layer stops reading (the receiver is dropped on 413).
        let chunk = Bytes::from(vec![b' '; 1024]);
        let mut sent = 0;
        while tx.send(chunk.clone()).await.is_ok() {
            sent += chunk.len();
            if sent > 100 * limit {
                break;
            }
        }
        sent
    });
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let json = body_json(response.into_body()).await;
    assert_eq!(json["code"], "BODY_TOO_LARGE");
    let sent = feeder.await.unwrap();
    assert!(
        sent <= limit + 16 * 1024,
        "stopped reading early: {sent} bytes sent"
    );
}

#[tokio::test]
async fn works_in_a_tower_stack_with_other_layers() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let calls = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .concurrency_limit(4)
        .layer(WxPay::<()>::layer(engine))
        .service(echo(calls.clone()));
    let request = Request::builder()
        .uri("/wxpay/orders/ABC123456")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let request = Request::builder()
        .uri("/elsewhere")
        .body(Full::new(Bytes::from_static(b"hi")))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().size_hint().exact(), Some(2));
    assert_eq!(body_bytes(response.into_body()).await, "hi");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn axum_router_layer_keeps_the_apps_routes_and_fallback() {
    use axum::Router;
    use axum::routing::get;

    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let app: Router = Router::new()
        .route("/", get(|| async { "home" }))
        .route("/health", get(|| async { "ok" }))
        .layer(WxPayLayer::new(engine));

    let get = |path: &str| {
        Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let response = app.clone().oneshot(get("/")).await.unwrap();
    assert_eq!(body_bytes(response.into_body()).await, "home");
    let response = app.clone().oneshot(get("/health")).await.unwrap();
    assert_eq!(body_bytes(response.into_body()).await, "ok");
    let response = app.clone().oneshot(get("/nope")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .clone()
        .oneshot(get("/wxpay/orders/ABC123456"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_json(response.into_body()).await["code"],
        "ORDER_NOT_FOUND"
    );
}

/// The whole flow on a real server (axum on a loopback port): precreate through the layer,
/// the sandbox pays and delivers the signed notification to the layer, the order is PAID.
#[tokio::test]
async fn real_server_precreate_pay_notify_status() {
    use axum::Router;
    use axum::routing::get;

    let sandbox = sandbox().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = common::operator_engine(&sandbox, &format!("http://{addr}/wxpay/notify"));
    let _tasks = engine.spawn_background_tasks();
    let app: Router = Router::new()
        .route("/", get(|| async { "home" }))
        .layer(WxPayLayer::new(engine));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    assert_eq!(
        http.get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "home"
    );
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&serde_json::json!({
            "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "amount": 1234,
            "description": "Layer test",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let params: serde_json::Value = response.json().await.unwrap();
    let out_trade_no = params["out_trade_no"].as_str().unwrap().to_owned();
    assert_eq!(params["signType"], "RSA");

    let pay: wxpay_sandbox::PayRequest = serde_json::from_value(params.clone()).unwrap();
    sandbox.pay(pay).await.unwrap();
    sandbox
        .wait_for_delivery(&out_trade_no, Duration::from_secs(10))
        .await
        .unwrap();

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
    server.abort();
}

/// The layered service runs on bare hyper (hyper-util), body type `Incoming`.
#[tokio::test]
async fn plain_hyper_serves_the_layered_service() {
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let sandbox = sandbox().await;
    let engine = engine(&sandbox, "http://127.0.0.1:9/wxpay/notify");
    let app = tower::service_fn(|_request: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"app"))))
    });
    let service = TowerToHyperService::new(WxPayLayer::new(engine).layer(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service.clone();
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let http = reqwest::Client::new();
    let text = http
        .get(format!("http://{addr}/anything"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "app");
    let response = http
        .post(format!("http://{addr}/wxpay/precreate"))
        .body(vec![b'x'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.abort();
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_after_the_read_timeout() {
    let sandbox = sandbox().await;
    let engine = common::engine_builder(&sandbox, "http://127.0.0.1:9/wxpay/notify")
        .body_read_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(engine.body_read_timeout(), Duration::from_millis(200));
    let calls = Arc::new(AtomicUsize::new(0));
    let service = WxPayLayer::new(engine).layer(echo(calls.clone()));
    for path in ["/wxpay/precreate", "/wxpay/notify"] {
        // A slow-loris client: one chunk, then nothing, the connection held open.
        let (tx, body) = channel_body();
        tx.send(Bytes::from_static(b"{\"openid\"")).await.unwrap();
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        let response =
            tokio::time::timeout(Duration::from_secs(5), service.clone().oneshot(request))
                .await
                .expect("the read timeout must end the request")
                .unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "{path}");
        if path == "/wxpay/precreate" {
            assert_eq!(
                body_json(response.into_body()).await["code"],
                "BODY_READ_TIMEOUT"
            );
        }
        drop(tx);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

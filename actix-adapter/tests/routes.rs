//! Every route and failure through `actix_web::test`, compared with the engine's own replies.

mod common;

use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use common::{OPENID, direct, engine, engine_builder, json, parts, sandbox};
use wxpay_actix::WxPayConfig;

const NOWHERE: &str = "http://127.0.0.1:9/wxpay/notify";

fn precreate_body() -> String {
    serde_json::json!({ "openid": OPENID, "amount": 1234, "description": "actix test" }).to_string()
}

#[actix_web::test]
async fn precreate_then_status_at_the_app_root() {
    let sandbox = sandbox().await;
    let engine = common::operator_engine(&sandbox, NOWHERE);
    let app = test::init_service(App::new().configure(wxpay_actix::configure(engine))).await;

    let request = test::TestRequest::post()
        .uri("/wxpay/precreate")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(precreate_body())
        .to_request();
    let (status, content_type, body) = parts(test::call_service(&app, request).await).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let params = json(&body);
    for field in [
        "appId",
        "timeStamp",
        "nonceStr",
        "package",
        "signType",
        "paySign",
    ] {
        assert!(params[field].is_string(), "{field} missing: {params}");
    }
    assert_eq!(params["signType"], "RSA");
    assert_eq!(params["appId"], sandbox.merchant().appid.as_str());
    let out_trade_no = params["out_trade_no"].as_str().unwrap();

    let request = test::TestRequest::get()
        .uri(&format!("/wxpay/orders/{out_trade_no}"))
        .insert_header((
            header::AUTHORIZATION,
            format!("Bearer {}", common::OPERATOR_TOKEN),
        ))
        .to_request();
    let (status, _, body) = parts(test::call_service(&app, request).await).await;
    assert_eq!(status, 200);
    let order = json(&body);
    assert_eq!(order["out_trade_no"], out_trade_no);
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["amount"], 1234);
}

/// Method, path, headers, body, expected status (0: whatever the engine answers).
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [u8],
    u16,
);

#[actix_web::test]
async fn failures_are_answered_exactly_as_the_engine_answers_them() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, NOWHERE);
    let app =
        test::init_service(App::new().configure(wxpay_actix::configure(engine.clone()))).await;

    let cases: &[Case] = &[
        // Wrong methods: 405 with Allow.
        ("GET", "/wxpay/precreate", &[], b"", 405),
        ("PUT", "/wxpay/notify", &[], b"", 405),
        ("DELETE", "/wxpay/orders/ABC123456", &[], b"", 405),
        // Bad precreate input.
        (
            "POST",
            "/wxpay/precreate",
            &[("content-type", "application/json")],
            b"{not json",
            400,
        ),
        (
            "POST",
            "/wxpay/precreate",
            &[("content-type", "application/json")],
            br#"{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o","amount":0}"#,
            400,
        ),
        // A notification that does not verify: the provider's failure reply.
        (
            "POST",
            "/wxpay/notify",
            &[
                ("content-type", "application/json"),
                ("wechatpay-timestamp", "1700000000"),
                ("wechatpay-nonce", "abc"),
                ("wechatpay-signature", "bm90IGEgc2lnbmF0dXJl"),
                ("wechatpay-serial", "PUB_KEY_ID_0000"),
            ],
            br#"{"id":"x","resource":{}}"#,
            0,
        ),
        ("POST", "/wxpay/notify", &[], b"", 0),
        // Unknown order.
        ("GET", "/wxpay/orders/ABC123456", &[], b"", 404),
        ("GET", "/wxpay/orders/not%20valid", &[], b"", 0),
    ];
    for (method, path, headers, body, expected) in cases {
        let mut request = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(path);
        for (name, value) in *headers {
            request = request.insert_header((*name, *value));
        }
        if !body.is_empty() {
            request = request.set_payload(*body);
        }
        let response = test::call_service(&app, request.to_request()).await;
        let allow = response
            .headers()
            .get(header::ALLOW)
            .map(|v| v.to_str().unwrap().to_owned());
        let got = parts(response).await;
        let mut direct_headers = headers.to_vec();
        let length = body.len().to_string();
        if !body.is_empty() {
            direct_headers.push(("content-length", &length));
        }
        let want = direct(&engine, method, path, &direct_headers, body).await;
        assert_eq!(got, want, "{method} {path}");
        if *expected != 0 {
            assert_eq!(got.0, *expected, "{method} {path}: {:?}", got.2);
        }
        assert!(got.0 >= 400, "{method} {path} must fail");
        if got.0 == 405 {
            assert!(allow.is_some(), "{method} {path}: no Allow header");
        }
        if got.1.as_deref() == Some("application/json") && *path != "/wxpay/notify" {
            assert!(json(&got.2)["code"].is_string(), "{method} {path}");
        }
    }
}

#[actix_web::test]
async fn bodies_over_the_limit_get_413_early_and_while_streaming() {
    let sandbox = sandbox().await;
    let engine = engine_builder(&sandbox, NOWHERE)
        .precreate_body_limit(64)
        .notify_body_limit(64)
        .build()
        .unwrap();
    let app =
        test::init_service(App::new().configure(wxpay_actix::configure(engine.clone()))).await;
    let big = vec![b'x'; 65];

    for (path, route) in [
        ("/wxpay/precreate", wxpay_actix::Route::Precreate),
        ("/wxpay/notify", wxpay_actix::Route::Notify),
    ] {
        let want = common::reply_parts(&engine.payload_too_large(route));
        assert_eq!(want.0, 413);

        // Announced by Content-Length (the body itself is short: nothing is read).
        let request = test::TestRequest::post()
            .uri(path)
            .set_payload(&b"{}"[..])
            .insert_header((header::CONTENT_LENGTH, "1000000"))
            .to_request();
        assert_eq!(
            parts(test::call_service(&app, request).await).await,
            want,
            "{path}"
        );

        // No Content-Length: caught while streaming.
        let mut request = test::TestRequest::post()
            .uri(path)
            .set_payload(big.clone())
            .to_request();
        request.headers_mut().remove(header::CONTENT_LENGTH);
        assert_eq!(
            parts(test::call_service(&app, request).await).await,
            want,
            "{path}"
        );

        // Exactly at the limit is read (and then refused for its content, not its size).
        let request = test::TestRequest::post()
            .uri(path)
            .set_payload(vec![b'x'; 64])
            .to_request();
        assert_ne!(parts(test::call_service(&app, request).await).await.0, 413);
    }

    // A GET with a body on the status route (limit 0), as the tower layer does.
    let request = test::TestRequest::get()
        .uri("/wxpay/orders/ABC123456")
        .set_payload(&b"x"[..])
        .to_request();
    let got = parts(test::call_service(&app, request).await).await;
    assert_eq!(got.0, 413);
}

#[actix_web::test]
async fn configured_in_a_scope_and_under_another_prefix() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, NOWHERE);
    let app = test::init_service(
        App::new()
            .route("/", web::get().to(|| async { "home" }))
            .service(web::scope("/api").configure(wxpay_actix::configure(engine.clone())))
            .service(web::scope("/pay").configure(wxpay_actix::configure_with(
                engine.clone(),
                WxPayConfig::new().prefix(""),
            )))
            .service(web::scope("/v2").configure(wxpay_actix::configure_with(
                engine,
                WxPayConfig::new().prefix("/wechat/pay"),
            ))),
    )
    .await;

    for path in ["/api/wxpay", "/pay", "/v2/wechat/pay"] {
        let request = test::TestRequest::post()
            .uri(&format!("{path}/precreate"))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(precreate_body())
            .to_request();
        let (status, _, body) = parts(test::call_service(&app, request).await).await;
        assert_eq!(status, 200, "{path}: {body:?}");
        let out_trade_no = json(&body)["out_trade_no"].as_str().unwrap().to_owned();

        let request = test::TestRequest::get()
            .uri(&format!("{path}/orders/{out_trade_no}"))
            .to_request();
        let (status, _, body) = parts(test::call_service(&app, request).await).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(json(&body)["status"], "PENDING");

        let request = test::TestRequest::get()
            .uri(&format!("{path}/notify"))
            .to_request();
        assert_eq!(
            test::call_service(&app, request).await.status().as_u16(),
            405,
            "{path}"
        );
    }

    // Not mounted at the root, and the app's own routes are untouched.
    for path in [
        "/wxpay/precreate",
        "/api/precreate",
        "/pay/wxpay/precreate",
        "/api/wxpay/other",
    ] {
        let request = test::TestRequest::post().uri(path).to_request();
        assert_eq!(
            test::call_service(&app, request).await.status().as_u16(),
            404,
            "{path}"
        );
    }
    let request = test::TestRequest::get().uri("/").to_request();
    assert_eq!(test::call_and_read_body(&app, request).await, "home");
}

#[actix_web::test]
async fn app_routes_beside_the_engine_routes_are_untouched() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, NOWHERE);
    let app = test::init_service(
        App::new()
            .configure(wxpay_actix::configure(engine))
            .route(
                "/wxpay/extra",
                web::post().to(|body: String| async move {
                    HttpResponse::Ok().body(format!("app:{body}"))
                }),
            )
            .route("/", web::get().to(|| async { "home" })),
    )
    .await;
    let request = test::TestRequest::post()
        .uri("/wxpay/extra")
        .set_payload("hello")
        .to_request();
    assert_eq!(test::call_and_read_body(&app, request).await, "app:hello");
    let request = test::TestRequest::get().uri("/").to_request();
    assert_eq!(test::call_and_read_body(&app, request).await, "home");
    let request = test::TestRequest::get().uri("/wxpay/orders/").to_request();
    assert_eq!(
        test::call_service(&app, request).await.status().as_u16(),
        404
    );
    let request = test::TestRequest::get()
        .uri("/wxpay/orders/a/b")
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status().as_u16(),
        404
    );
}

#[actix_web::test]
async fn config_in_app_data_lowers_the_limits_and_cannot_raise_them() {
    let sandbox = sandbox().await;
    let engine = engine_builder(&sandbox, NOWHERE)
        .precreate_body_limit(100)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .service(
                web::scope("/low")
                    .app_data(
                        WxPayConfig::new()
                            .notify_body_limit(10)
                            .precreate_body_limit(10),
                    )
                    .configure(wxpay_actix::configure(engine.clone())),
            )
            .service(
                web::scope("/high")
                    .app_data(web::Data::new(
                        WxPayConfig::new().precreate_body_limit(1000),
                    ))
                    .configure(wxpay_actix::configure(engine.clone())),
            )
            .service(web::scope("/own").configure(wxpay_actix::configure_with(
                engine.clone(),
                WxPayConfig::new().notify_body_limit(20),
            ))),
    )
    .await;

    // Lowered: 413 in the provider's failure shape for notifications, JSON for precreate.
    let request = test::TestRequest::post()
        .uri("/low/wxpay/notify")
        .set_payload(vec![b'x'; 11])
        .to_request();
    let (status, _, body) = parts(test::call_service(&app, request).await).await;
    assert_eq!(status, 413);
    let want = engine.provider().failure_reply(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        "request body exceeds 10 bytes",
    );
    assert_eq!(&body, want.body());

    let request = test::TestRequest::post()
        .uri("/low/wxpay/precreate")
        .set_payload(vec![b'x'; 11])
        .to_request();
    let (status, _, body) = parts(test::call_service(&app, request).await).await;
    assert_eq!(status, 413);
    assert_eq!(json(&body)["code"], "BODY_TOO_LARGE");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("10 bytes")
    );

    // Raised: capped by the engine's 100 bytes.
    let request = test::TestRequest::post()
        .uri("/high/wxpay/precreate")
        .set_payload(vec![b'x'; 101])
        .to_request();
    let got = parts(test::call_service(&app, request).await).await;
    assert_eq!(
        got,
        common::reply_parts(&engine.payload_too_large(wxpay_actix::Route::Precreate))
    );

    // configure_with's config applies to its own routes.
    let request = test::TestRequest::post()
        .uri("/own/wxpay/notify")
        .set_payload(vec![b'x'; 21])
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status().as_u16(),
        413
    );
    let request = test::TestRequest::post()
        .uri("/own/wxpay/notify")
        .set_payload(vec![b'x'; 20])
        .to_request();
    assert_ne!(
        test::call_service(&app, request).await.status().as_u16(),
        413
    );
}

#[::core::prelude::v1::test]
#[should_panic(expected = "invalid wxpay prefix")]
fn an_invalid_prefix_panics_when_the_app_is_built() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sandbox = sandbox().await;
        let engine = engine(&sandbox, NOWHERE);
        let _app = test::init_service(App::new().configure(wxpay_actix::configure_with(
            engine,
            WxPayConfig::new().prefix("pay/"),
        )))
        .await;
    });
}

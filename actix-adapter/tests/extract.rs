//! The extractors and `WxPayError` through `actix_web::test`.

mod common;

use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use common::{engine, engine_builder, json, parts, reply_parts, sandbox};
use wxpay_actix::{ErrorKind, WxPayConfig, WxPayEngine, WxPayError, WxPayNotification};

const NOWHERE: &str = "http://127.0.0.1:9/wxpay/notify";

async fn prefix_of(WxPayEngine(engine): WxPayEngine) -> HttpResponse {
    HttpResponse::Ok().body(engine.prefix().to_owned())
}

async fn my_notify(
    WxPayEngine(engine): WxPayEngine,
    WxPayNotification(notification): WxPayNotification,
) -> HttpResponse {
    wxpay_actix::into_actix_response(engine.apply_notification(&notification).await)
}

/// A handler that verifies by hand and uses `?` on the rejection.
async fn by_hand(
    WxPayEngine(engine): WxPayEngine,
    request: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WxPayError> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in request.headers() {
        headers.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let notification = engine.verify_notification(&headers, &body).await?;
    Ok(wxpay_actix::into_actix_response(
        engine.apply_notification(&notification).await,
    ))
}

fn unsigned_notification() -> test::TestRequest {
    test::TestRequest::post()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("wechatpay-timestamp", "1700000000"))
        .insert_header(("wechatpay-nonce", "abc"))
        .insert_header(("wechatpay-signature", "bm90IGEgc2lnbmF0dXJl"))
        .insert_header(("wechatpay-serial", "PUB_KEY_ID_0000"))
        .set_payload(&br#"{"id":"x","resource":{}}"#[..])
}

fn signed_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json"),
        ("wechatpay-timestamp", "1700000000"),
        ("wechatpay-nonce", "abc"),
        ("wechatpay-signature", "bm90IGEgc2lnbmF0dXJl"),
        ("wechatpay-serial", "PUB_KEY_ID_0000"),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    headers
}

#[actix_web::test]
async fn the_engine_extractor_finds_the_engine_from_configure_or_app_data() {
    let sandbox = sandbox().await;
    let engine = engine_builder(&sandbox, NOWHERE)
        .prefix("/p")
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .service(
                web::scope("/configured")
                    .configure(wxpay_actix::configure(engine.clone()))
                    .route("/prefix", web::get().to(prefix_of)),
            )
            .service(
                web::scope("/plain")
                    .app_data(engine.clone())
                    .route("/prefix", web::get().to(prefix_of)),
            )
            .service(
                web::scope("/data")
                    .app_data(web::Data::new(engine))
                    .route("/prefix", web::get().to(prefix_of)),
            )
            .service(web::scope("/none").route("/prefix", web::get().to(prefix_of)))
            .service(web::scope("/none2").route("/notify", web::post().to(my_notify))),
    )
    .await;
    for scope in ["configured", "plain", "data"] {
        let request = test::TestRequest::get()
            .uri(&format!("/{scope}/prefix"))
            .to_request();
        assert_eq!(
            test::call_and_read_body(&app, request).await,
            "/p",
            "{scope}"
        );
    }
    for request in [
        test::TestRequest::get().uri("/none/prefix").to_request(),
        unsigned_notification().uri("/none2/notify").to_request(),
    ] {
        let (status, content_type, body) = parts(test::call_service(&app, request).await).await;
        assert_eq!(status, 500);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert_eq!(json(&body)["code"], "WXPAY_ENGINE_MISSING");
    }
}

#[actix_web::test]
async fn a_notification_that_fails_verification_gets_the_provider_failure_reply() {
    let sandbox = sandbox().await;
    let engine = engine(&sandbox, NOWHERE);
    let app = test::init_service(
        App::new()
            .app_data(engine.clone())
            .route("/callbacks/wechat", web::post().to(my_notify))
            .route("/callbacks/by-hand", web::post().to(by_hand)),
    )
    .await;
    let rejection = engine
        .verify_notification(&signed_headers(), br#"{"id":"x","resource":{}}"#)
        .await
        .unwrap_err();
    let want = reply_parts(&rejection.clone().into_response());
    assert!(want.0 >= 400);
    for path in ["/callbacks/wechat", "/callbacks/by-hand"] {
        let request = unsigned_notification().uri(path).to_request();
        assert_eq!(
            parts(test::call_service(&app, request).await).await,
            want,
            "{path}"
        );
    }

    // As an error value.
    let error = WxPayError::from(rejection.clone());
    assert_eq!(error.kind(), ErrorKind::Rejected(rejection.kind));
    assert_eq!(reply_parts(error.reply()), want);
    assert!(error.rejection().is_some());
    assert!(std::error::Error::source(&error).is_some());
    let response = actix_web::ResponseError::error_response(&error);
    assert_eq!(response.status().as_u16(), want.0);
    assert_eq!(
        actix_web::ResponseError::status_code(&error).as_u16(),
        want.0
    );
}

#[actix_web::test]
async fn the_notification_extractor_applies_the_body_limits() {
    let sandbox = sandbox().await;
    let engine = engine_builder(&sandbox, NOWHERE)
        .notify_body_limit(100)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(engine.clone())
            .route("/engine-limit", web::post().to(my_notify))
            .service(
                web::scope("/scoped")
                    .app_data(WxPayConfig::new().notify_body_limit(10))
                    .route("/notify", web::post().to(my_notify)),
            ),
    )
    .await;

    let want = reply_parts(&engine.payload_too_large(wxpay_actix::Route::Notify));
    let request = test::TestRequest::post()
        .uri("/engine-limit")
        .set_payload(vec![b'x'; 101])
        .to_request();
    assert_eq!(parts(test::call_service(&app, request).await).await, want);
    let mut request = test::TestRequest::post()
        .uri("/engine-limit")
        .set_payload(vec![b'x'; 101])
        .to_request();
    request.headers_mut().remove(header::CONTENT_LENGTH);
    assert_eq!(parts(test::call_service(&app, request).await).await, want);

    let request = test::TestRequest::post()
        .uri("/scoped/notify")
        .set_payload(vec![b'x'; 11])
        .to_request();
    let (status, _, body) = parts(test::call_service(&app, request).await).await;
    assert_eq!(status, 413);
    let scoped = engine.provider().failure_reply(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        "request body exceeds 10 bytes",
    );
    assert_eq!(&body, scoped.body());
}

//! The openid routes through `configure`: registered when configured, query string and
//! cookies reaching the engine, also inside a scope.

mod common;

use std::sync::Arc;

use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpResponse, test, web};
use common::{engine_builder, sandbox};
use wxpay_actix::core::engine::{Engine, OpenidConfig, OpenidMode};
use wxpay_actix::core::openid::{
    AppSecret, MiniProgramLogin, OfficialAccountOAuth, OpenidTokenKey,
};
use wxpay_sandbox::Sandbox;

const NOWHERE: &str = "http://127.0.0.1:9/wxpay/notify";
const SHOP: &str = "https://shop.example";

fn openid_engine(sandbox: &Sandbox, public_base: &str) -> Engine {
    let appid = &sandbox.merchant().appid;
    let secret = AppSecret::new(sandbox.app_secret()).unwrap();
    let config = OpenidConfig::new(OpenidTokenKey::new(vec![9u8; 32]).unwrap())
        .mini_program(Arc::new(
            MiniProgramLogin::new(appid, secret.clone())
                .unwrap()
                .with_api_base(sandbox.base_url())
                .unwrap(),
        ))
        .oauth(Arc::new(
            OfficialAccountOAuth::new(appid, secret)
                .unwrap()
                .with_api_base(sandbox.base_url())
                .unwrap()
                .with_open_base(sandbox.base_url())
                .unwrap(),
        ))
        .public_base_url(public_base)
        .mode(OpenidMode::TokenRequired);
    engine_builder(sandbox, NOWHERE)
        .openid(config)
        .build()
        .unwrap()
}

/// `name=value` of the response's `Set-Cookie` for `name`.
fn cookie_pair(response: &ServiceResponse, name: &str) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap())
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn location(response: &ServiceResponse) -> String {
    assert_eq!(response.status(), StatusCode::FOUND);
    response
        .headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// Where the sandbox (WeChat's OAuth page) sends the browser back to.
async fn upstream_redirect(authorize_url: &str) -> String {
    let mut url = reqwest::Url::parse(authorize_url).unwrap();
    url.set_fragment(None);
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[actix_web::test]
async fn the_openid_routes_are_registered_and_get_the_query_string_and_cookies() {
    let sandbox = sandbox().await;
    let app = test::init_service(
        App::new().configure(wxpay_actix::configure(openid_engine(&sandbox, SHOP))),
    )
    .await;

    let code = sandbox
        .wx_login(Some("oActixPayer_000000000000000"))
        .unwrap();
    let session = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/wxpay/openid/session")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(format!(r#"{{"code":"{code}"}}"#))
            .to_request(),
    )
    .await;
    assert_eq!(session.status(), StatusCode::OK);
    let token_cookie = cookie_pair(&session, "wxpay_openid");

    let start = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/wxpay/openid/authorize?return_to=%2Fshop%3Fitem%3D5")
            .to_request(),
    )
    .await;
    let state_cookie = cookie_pair(&start, "wxpay_openid_state");
    let back = upstream_redirect(&location(&start)).await;
    let callback_path = back.strip_prefix(SHOP).unwrap().to_owned();
    let done = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&callback_path)
            .insert_header((header::COOKIE, state_cookie))
            .to_request(),
    )
    .await;
    assert_eq!(location(&done), "/shop?item=5");
    let oauth_cookie = cookie_pair(&done, "wxpay_openid");

    for (cookie, openid) in [
        (token_cookie, "oActixPayer_000000000000000".to_owned()),
        (oauth_cookie, sandbox.default_openid().to_owned()),
    ] {
        let me: serde_json::Value = test::call_and_read_body_json(
            &app,
            test::TestRequest::get()
                .uri("/wxpay/openid/me")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(me["openid"], openid.as_str());
    }

    let evil = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/wxpay/openid/authorize?return_to=%2F%2Fevil.example")
            .to_request(),
    )
    .await;
    assert_eq!(evil.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = test::read_body_json(evil).await;
    assert_eq!(body["code"], "INVALID_RETURN_TO");
}

#[actix_web::test]
async fn in_a_scope_the_engine_sees_its_own_paths_and_unconfigured_engines_leave_them_alone() {
    let sandbox = sandbox().await;
    let app = test::init_service(
        App::new()
            .service(
                web::scope("/api").configure(wxpay_actix::configure(openid_engine(
                    &sandbox,
                    &format!("{SHOP}/api"),
                ))),
            )
            .configure(wxpay_actix::configure(common::engine(&sandbox, NOWHERE)))
            .default_service(web::to(|| async { HttpResponse::ImATeapot().finish() })),
    )
    .await;
    let start = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/wxpay/openid/authorize?return_to=%2Fapi%2Fcart")
            .to_request(),
    )
    .await;
    let authorize_url = location(&start);
    let redirect_uri = reqwest::Url::parse(&authorize_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(redirect_uri, format!("{SHOP}/api/wxpay/openid/callback"));

    // The engine at the root has no openid configuration: not registered, the app's 404.
    let unconfigured = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/wxpay/openid/me")
            .to_request(),
    )
    .await;
    assert_eq!(unconfigured.status(), StatusCode::IM_A_TEAPOT);
}

//! The openid routes through the layer: mounted when configured, query string and cookies
//! reaching the engine, every other path still the app's.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::{body_json, sandbox};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use wxpay_sandbox::Sandbox;
use wxpay_tower::WxPayLayer;
use wxpay_tower::core::engine::{Engine, EngineBuilder, OpenidConfig, OpenidMode};
use wxpay_tower::core::fields::NotifyUrl;
use wxpay_tower::core::openid::{
    AppSecret, MiniProgramLogin, OfficialAccountOAuth, OpenidTokenKey,
};
use wxpay_tower::core::provider::v3::V3Provider;
use wxpay_tower::core::store::MemoryStore;
use wxpay_tower::core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformPublicKey, PlatformTrust, V3Client,
};

const SHOP: &str = "https://shop.example";

fn builder(sandbox: &Sandbox) -> EngineBuilder {
    let merchant = sandbox.merchant();
    let platform = sandbox.platform();
    let credentials = MerchantCredentials::new(
        &merchant.mchid,
        &merchant.appid,
        &merchant.serial,
        MerchantPrivateKey::from_pem(merchant.private_key_pem.as_deref().unwrap()).unwrap(),
    )
    .unwrap();
    let trust = PlatformTrust::public_key(
        PlatformPublicKey::from_pem(&platform.public_key_id, &platform.public_key_pem).unwrap(),
    )
    .unwrap();
    let client = V3Client::builder(
        credentials,
        ApiV3Key::new(sandbox.api_v3_key()).unwrap(),
        trust,
    )
    .base_url(sandbox.base_url())
    .build()
    .unwrap();
    let provider = V3Provider::new(
        client,
        NotifyUrl::parse_for_local_development("http://127.0.0.1:9/wxpay/notify").unwrap(),
    );
    Engine::builder(Arc::new(provider), Arc::new(MemoryStore::new()))
}

fn openid_engine(sandbox: &Sandbox) -> Engine {
    let appid = &sandbox.merchant().appid;
    let secret = AppSecret::new(sandbox.app_secret()).unwrap();
    let config = OpenidConfig::new(OpenidTokenKey::new(vec![42u8; 32]).unwrap())
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
        .public_base_url(SHOP)
        .mode(OpenidMode::TokenRequired);
    builder(sandbox).openid(config).build().unwrap()
}

/// The app behind the layer: 418 "app" for everything.
fn app()
-> impl Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
+ Clone {
    tower::service_fn(|_request: Request<Full<Bytes>>| async {
        let mut response = Response::new(Full::new(Bytes::from_static(b"app")));
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        Ok(response)
    })
}

fn get(path: &str, cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::builder().method(Method::GET).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Full::new(Bytes::new())).unwrap()
}

/// `name=value` of the response's `Set-Cookie` for `name`.
fn cookie_pair<B>(response: &Response<B>, name: &str) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn location<B>(response: &Response<B>) -> String {
    assert_eq!(response.status(), StatusCode::FOUND);
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_openid_routes_are_mounted_and_get_the_query_string_and_cookies() {
    let sandbox = sandbox().await;
    let service = WxPayLayer::new(openid_engine(&sandbox)).layer(app());

    // Mini program: POST session with a wx.login code.
    let code = sandbox
        .wx_login(Some("oTowerPayer_000000000000000"))
        .unwrap();
    let body = format!(r#"{{"code":"{code}"}}"#);
    let session = service
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri("/wxpay/openid/session")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    let token_cookie = cookie_pair(&session, "wxpay_openid");
    let json = body_json(session.into_body()).await;
    assert_eq!(json["openid"], "oTowerPayer_000000000000000");

    // The return path travels in the query string, through the OAuth round trip, and back.
    let start = service
        .clone()
        .oneshot(get(
            "/wxpay/openid/authorize?return_to=%2Fshop%3Fitem%3D3",
            None,
        ))
        .await
        .unwrap();
    let state_cookie = cookie_pair(&start, "wxpay_openid_state");
    let mut upstream = reqwest::Url::parse(&location(&start)).unwrap();
    upstream.set_fragment(None);
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(upstream)
        .send()
        .await
        .unwrap();
    let back = back.headers()["location"].to_str().unwrap().to_owned();
    let callback_path = back.strip_prefix(SHOP).unwrap().to_owned();
    assert!(callback_path.contains("code=") && callback_path.contains("state="));
    let done = service
        .clone()
        .oneshot(get(&callback_path, Some(&state_cookie)))
        .await
        .unwrap();
    assert_eq!(location(&done), "/shop?item=3");
    let oauth_cookie = cookie_pair(&done, "wxpay_openid");

    // `me` reads the cookie, for both tokens.
    for (cookie, openid) in [
        (&token_cookie, "oTowerPayer_000000000000000".to_owned()),
        (&oauth_cookie, sandbox.default_openid().to_owned()),
    ] {
        let me = service
            .clone()
            .oneshot(get("/wxpay/openid/me", Some(cookie)))
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(body_json(me.into_body()).await["openid"], openid.as_str());
    }

    // An open redirect is refused by the engine: the query reached it.
    let evil = service
        .clone()
        .oneshot(get(
            "/wxpay/openid/authorize?return_to=%2F%2Fevil.example",
            None,
        ))
        .await
        .unwrap();
    assert_eq!(evil.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(evil.into_body()).await["code"],
        "INVALID_RETURN_TO"
    );

    // Paths that are not the engine's still go to the app.
    let other = service
        .clone()
        .oneshot(get("/wxpay/openid/elsewhere", None))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::IM_A_TEAPOT);
}

#[tokio::test]
async fn without_an_openid_configuration_the_paths_are_the_apps() {
    let sandbox = sandbox().await;
    let service = WxPayLayer::new(builder(&sandbox).build().unwrap()).layer(app());
    for path in ["/wxpay/openid/me", "/wxpay/openid/authorize?return_to=/"] {
        let response = service.clone().oneshot(get(path, None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT, "{path}");
    }
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn the_axum_router_mounts_the_openid_routes_too() {
    let sandbox = sandbox().await;
    let router: axum::Router = wxpay_tower::axum::routes(openid_engine(&sandbox));
    let response = router
        .oneshot(
            Request::builder()
                .uri("/wxpay/openid/authorize?return_to=%2Fpay")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(
        response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("/connect/oauth2/authorize?")
    );
}

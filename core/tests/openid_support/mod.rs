//! Helpers of the openid tests: resolvers at the sandbox, engines with openid settings, and
//! the browser's side of the redirects.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use wxpay_core::engine::{Engine, OpenidConfig, OpenidMode};
use wxpay_core::openid::{
    AppSecret, MiniProgramLogin, OfficialAccountOAuth, OpenidTokenKey, QfpayOAuth,
};
use wxpay_core::qfpay::{ClientKey, QfpayClient, QfpayConfig};

use crate::support::{Harness, Reply, call};

pub const KEY: &[u8] = b"engine-openid-test-key-of-at-least-32-bytes";
pub const SHOP: &str = "https://shop.example";

pub fn key() -> OpenidTokenKey {
    OpenidTokenKey::new(KEY.to_vec()).unwrap()
}

pub fn secret(h: &Harness) -> AppSecret {
    AppSecret::new(h.sandbox.app_secret()).unwrap()
}

pub fn mini_program(h: &Harness) -> Arc<MiniProgramLogin> {
    Arc::new(
        MiniProgramLogin::new(&h.sandbox.merchant().appid, secret(h))
            .unwrap()
            .with_api_base(h.sandbox.base_url())
            .unwrap(),
    )
}

pub fn official_account(h: &Harness) -> Arc<OfficialAccountOAuth> {
    Arc::new(
        OfficialAccountOAuth::new(&h.sandbox.merchant().appid, secret(h))
            .unwrap()
            .with_api_base(h.sandbox.base_url())
            .unwrap()
            .with_open_base(h.sandbox.base_url())
            .unwrap(),
    )
}

pub fn qfpay_oauth(h: &Harness) -> Arc<QfpayOAuth> {
    let material = h.sandbox.qfpay();
    let mut config = QfpayConfig::new(
        h.sandbox.base_url(),
        &material.app_code,
        ClientKey::new(&material.client_key).unwrap(),
    );
    config.mchid = material.mchid.clone();
    Arc::new(QfpayOAuth::new(
        QfpayClient::builder(config).build().unwrap(),
    ))
}

/// Both flows, at the sandbox, in `mode`.
pub fn full_config(h: &Harness, mode: OpenidMode) -> OpenidConfig {
    OpenidConfig::new(key())
        .mini_program(mini_program(h))
        .oauth(official_account(h))
        .public_base_url(SHOP)
        .mode(mode)
}

pub fn engine_with(h: &Harness, config: OpenidConfig) -> Engine {
    h.engine_builder().openid(config).build().unwrap()
}

pub fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value `name` is set to by the reply's `Set-Cookie` headers, if any.
pub fn cookie(reply: &Reply, name: &str) -> Option<String> {
    set_cookies(reply).iter().find_map(|line| {
        let (pair, _) = line.split_once(';').unwrap_or((line, ""));
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

pub fn location(reply: &Reply) -> String {
    assert_eq!(
        reply.status,
        StatusCode::FOUND,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.headers[http::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

pub async fn get(engine: &Engine, path: &str, headers: &[(&str, &str)]) -> Reply {
    call(engine, Method::GET, path, headers, Bytes::new()).await
}

pub async fn session(engine: &Engine, code: &str) -> Reply {
    call(
        engine,
        Method::POST,
        "/wxpay/openid/session",
        &[("content-type", "application/json")],
        serde_json::to_vec(&json!({ "code": code })).unwrap(),
    )
    .await
}

pub async fn precreate(
    engine: &Engine,
    body: serde_json::Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    call(
        engine,
        Method::POST,
        "/wxpay/precreate",
        &all,
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

/// A token for `openid` (the sandbox's default payer when `None`) through the mini program flow.
pub async fn token_for(h: &Harness, engine: &Engine, openid: Option<&str>) -> String {
    let code = h.sandbox.wx_login(openid).unwrap();
    let reply = session(engine, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()["openid_token"].as_str().unwrap().to_owned()
}

/// What the payer's browser does with the upstream's authorize URL: one GET, not following the
/// redirect; returns where the upstream sends it back.
pub async fn upstream_redirect(authorize_url: &str, sandbox_openid: Option<&str>) -> String {
    let mut url = reqwest::Url::parse(authorize_url).unwrap();
    url.set_fragment(None);
    if let Some(openid) = sandbox_openid {
        url.query_pairs_mut().append_pair("sandbox_openid", openid);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(
        response.status(),
        reqwest::StatusCode::FOUND,
        "{:?}",
        response.text().await
    );
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The shop path (and query) of a URL under [`SHOP`].
pub fn shop_path(url: &str) -> String {
    url.strip_prefix(SHOP)
        .unwrap_or_else(|| panic!("{url} is not under {SHOP}"))
        .to_owned()
}

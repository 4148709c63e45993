//! Shared helpers: an engine talking to an in-process sandbox, and reply comparisons.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use actix_web::dev::ServiceResponse;
use actix_web::test;
use bytes::Bytes;
use wxpay_actix::core::engine::Engine;
use wxpay_actix::core::fields::NotifyUrl;
use wxpay_actix::core::provider::v3::V3Provider;
use wxpay_actix::core::store::MemoryStore;
use wxpay_actix::core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformPublicKey, PlatformTrust, V3Client,
};
use wxpay_sandbox::{Sandbox, SandboxConfig};

pub const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::for_tests()).await.unwrap()
}

/// An engine builder (memory store, default policy) whose upstream is `sandbox` and whose
/// notify URL is `notify_url`.
pub fn engine_builder(
    sandbox: &Sandbox,
    notify_url: &str,
) -> wxpay_actix::core::engine::EngineBuilder {
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
        NotifyUrl::parse_for_local_development(notify_url).unwrap(),
    );
    Engine::builder(Arc::new(provider), Arc::new(MemoryStore::new()))
}

/// The admin token of [`operator_engine`]'s engine, for status requests that see everything.
pub const OPERATOR_TOKEN: &str = "adapter-operator-token-0123456789abcdef";

/// [`engine`] with the admin token [`OPERATOR_TOKEN`].
pub fn operator_engine(sandbox: &Sandbox, notify_url: &str) -> Engine {
    engine_builder(sandbox, notify_url)
        .admin_token(wxpay_actix::core::engine::AdminToken::new(OPERATOR_TOKEN).unwrap())
        .build()
        .unwrap()
}

pub fn engine(sandbox: &Sandbox, notify_url: &str) -> Engine {
    engine_builder(sandbox, notify_url).build().unwrap()
}

/// The status, content type and body of an actix response.
pub async fn parts<B>(response: ServiceResponse<B>) -> (u16, Option<String>, Bytes)
where
    B: actix_web::body::MessageBody,
{
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, test::read_body(response).await)
}

/// The same of an engine reply.
pub fn reply_parts(reply: &http::Response<Bytes>) -> (u16, Option<String>, Bytes) {
    (
        reply.status().as_u16(),
        reply
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        reply.body().clone(),
    )
}

/// What the engine answers when called directly.
pub async fn direct(
    engine: &Engine,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> (u16, Option<String>, Bytes) {
    let mut request = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = engine
        .handle(request.body(Bytes::from_static(body)).unwrap())
        .await;
    reply_parts(&reply)
}

pub fn json(bytes: &Bytes) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

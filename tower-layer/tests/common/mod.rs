//! Shared helpers: an engine talking to an in-process sandbox, and a streaming body.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::mpsc;
use wxpay_sandbox::{Sandbox, SandboxConfig};
use wxpay_tower::core::engine::{Engine, EngineBuilder};
use wxpay_tower::core::fields::NotifyUrl;
use wxpay_tower::core::provider::v3::V3Provider;
use wxpay_tower::core::store::MemoryStore;
use wxpay_tower::core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformPublicKey, PlatformTrust, V3Client,
};

pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::for_tests()).await.unwrap()
}

/// An engine (memory store, default policy) whose upstream is `sandbox` and whose notify URL
/// is `notify_url`.
/// The admin token of [`operator_engine`]'s engine, for status requests that see everything.
pub const OPERATOR_TOKEN: &str = "adapter-operator-token-0123456789abcdef";

/// [`engine`] with the admin token [`OPERATOR_TOKEN`].
pub fn operator_engine(sandbox: &Sandbox, notify_url: &str) -> Engine {
    engine_builder(sandbox, notify_url)
        .admin_token(wxpay_tower::core::engine::AdminToken::new(OPERATOR_TOKEN).unwrap())
        .build()
        .unwrap()
}

pub fn engine(sandbox: &Sandbox, notify_url: &str) -> Engine {
    engine_builder(sandbox, notify_url).build().unwrap()
}

/// The builder of [`engine`], to add settings (an admin token, a hook).
pub fn engine_builder(sandbox: &Sandbox, notify_url: &str) -> EngineBuilder {
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

/// A request body fed chunk by chunk from a channel: it ends when the sender is dropped.
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

pub fn channel_body() -> (mpsc::Sender<Bytes>, ChannelBody) {
    let (tx, rx) = mpsc::channel(8);
    (tx, ChannelBody(rx))
}

pub async fn body_bytes<B>(body: B) -> Bytes
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt;
    body.collect().await.unwrap().to_bytes()
}

pub async fn body_json<B>(body: B) -> serde_json::Value
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    serde_json::from_slice(&body_bytes(body).await).unwrap()
}

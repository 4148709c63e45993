//! # wxpay-core
//!
//! The framework-agnostic engine of wxpay: WeChat Pay API v3 protocol code and HTTP client,
//! validated field types, the order model and its stores, and the engine that answers the
//! precreate, notify and order-status routes. Web-framework adapters (`wxpay-tower`,
//! `wxpay-actix`) mount it; this crate only speaks [`http`] types and bytes.
//!
//! - [`v3`]: the WeChat Pay API v3 protocol: credentials, request signing, JSAPI client
//!   parameters, response and notification verification, resource decryption, typed models, and
//!   the [`v3::V3Client`] HTTP client with platform-certificate management.
//! - [`v2`] and [`gateway`]: WeChat Pay API v2 (XML, MD5 / HMAC-SHA256) and the seed-001
//!   payment gateway (JSON precreate, MD5-signed form callbacks).
//! - [`qfpay`] and [`weidoufu`]: QFPay (seed 002: `/trade/v1/payment` with `pay_type` 800207,
//!   `X-QF-SIGN`, signed JSON notifications, its openid flow) and weidoufu (seed 004:
//!   `/pay/miniapp` for WeChat and Alipay mini programs, signed form callbacks).
//! - [`provider`]: the upstream abstraction; [`provider::v3::V3Provider`],
//!   [`provider::v2::V2Provider`], [`provider::gateway::GatewayProvider`],
//!   [`provider::qfpay::QfpayProvider`] and [`provider::weidoufu::WeidoufuProvider`].
//! - [`openid`]: where a payer's openid comes from (小程序 `jscode2session`, 公众号 OAuth2
//!   `snsapi_base`, QFPay's flow) and the signed, expiring token that binds it to the client;
//!   the engine serves them as routes with [`engine::OpenidConfig`].
//! - [`engine`]: [`engine::Engine`], the routes over `http::Request<Bytes>`.
//! - [`order`] and [`store`]: the order status machine and [`store::OrderStore`] with its stores.
//! - [`refund`]: refunds as their own records (`PROCESSING → SUCCESS | CLOSED | ABNORMAL`),
//!   reserved against the paid amount by the store before the upstream is asked;
//!   [`engine::Engine::refund`] and the admin routes `{prefix}/orders/{out_trade_no}/refunds`
//!   (with an [`engine::AdminToken`]); refund notifications settle on the notify route and the
//!   app's [`engine::EventHook`] receives [`store::Event::Refund`] next to
//!   [`store::Event::Paid`].
//! - [`fields`]: validated newtypes for order numbers, amounts (integer fen), texts and URLs.
//! - [`clock`] and [`nonce`]: injectable time and randomness, so tests are byte-exact.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wxpay_core::engine::Engine;
//! use wxpay_core::fields::NotifyUrl;
//! use wxpay_core::provider::v3::V3Provider;
//! use wxpay_core::store::MemoryStore;
//! use wxpay_core::v3::{
//!     ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformPublicKey, PlatformTrust,
//!     V3Client,
//! };
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let key = MerchantPrivateKey::from_pem(&std::fs::read_to_string("apiclient_key.pem")?)?;
//! let credentials = MerchantCredentials::new("1900000001", "wxd678efh567hg6787", "MERCHANT_SERIAL", key)?;
//! let platform = PlatformPublicKey::from_pem(
//!     "PUB_KEY_ID_0119000000012024000000000000",
//!     &std::fs::read_to_string("pub_key.pem")?,
//! )?;
//! let client = V3Client::builder(
//!     credentials,
//!     ApiV3Key::new(std::env::var("WXPAY_APIV3_KEY")?)?,
//!     PlatformTrust::public_key(platform)?,
//! )
//! .build()?;
//! let notify_url = NotifyUrl::try_from("https://shop.example.com/wxpay/notify")?;
//! let engine = Engine::builder(
//!     Arc::new(V3Provider::new(client, notify_url)),
//!     Arc::new(MemoryStore::new()),
//! )
//! .build()?;
//! // Mount `engine` with wxpay-tower or wxpay-actix, or call `engine.handle(request)` yourself.
//! # let _ = engine;
//! # Ok(()) }
//! ```

#![warn(clippy::unwrap_used)]

pub mod clock;
pub mod engine;
pub mod fields;
pub mod gateway;
pub mod nonce;
pub mod openid;
pub mod order;
pub mod provider;
pub mod qfpay;
pub mod refund;
pub mod store;
mod transport;
pub mod v2;
pub mod v3;
pub mod weidoufu;

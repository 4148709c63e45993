//! # wxpay-tower
//!
//! Mounts the wxpay engine's WeChat Pay JSAPI routes in any [tower] stack: axum, plain hyper
//! (through `hyper-util`), tonic, or your own. In the style of tower-http, [`WxPayLayer`] wraps
//! your service in a [`WxPay`] service that
//!
//! - answers the engine's routes under its prefix (default `/wxpay`):
//!   `POST {prefix}/precreate`, `POST {prefix}/notify` and `GET {prefix}/orders/{out_trade_no}`,
//!   and with an openid configuration `POST {prefix}/openid/session` and
//!   `GET {prefix}/openid/{authorize,callback,me}`;
//! - reads the body of those requests itself, bounded by the engine's limit for the route
//!   (a `Content-Length` over the limit gets `413` before a byte is read);
//! - passes **every other request** to your service untouched: method, URI, headers and the
//!   streaming body, never buffered. Only a clone of the [`Engine`] is added to the request's
//!   extensions, so handlers can reach it (see the `axum` feature's `WxPayEngine` extractor).
//!
//! ```no_run
//! # use wxpay_tower::core::engine::Engine;
//! # fn demo(engine: Engine) {
//! use axum::{Router, routing::get};
//! use wxpay_tower::WxPayLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "my shop" }))
//!     .layer(WxPayLayer::new(engine));
//! # let _ = app;
//! # }
//! ```
//!
//! With plain hyper, wrap the layered service in `hyper_util::service::TowerToHyperService`.
//!
//! ## Features
//! - `axum`: [`axum::routes`] (the engine's routes as an axum `Router`, to `merge` or `nest`),
//!   and the extractors [`axum::WxPayEngine`] and [`axum::WxPayNotification`] (a verified
//!   payment notification, for apps that write their own notify handler).
//! - `sqlite`, `postgres`, `mysql`: forwarded to wxpay-core's `SqlxStore`.
//!
//! [tower]: https://docs.rs/tower

#[cfg(feature = "axum")]
pub mod axum;
mod body;
mod future;
mod layer;
mod read;
mod service;

/// wxpay-core, re-exported: the engine, providers, stores and field types.
pub use wxpay_core as core;
pub use wxpay_core::engine::Engine;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::WxPayLayer;
pub use read::{BodyReadError, read_route_body};
pub use service::WxPay;

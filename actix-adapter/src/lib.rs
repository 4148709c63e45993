//! # wxpay-actix
//!
//! Mounts the wxpay engine's WeChat Pay JSAPI routes in [actix-web] 4. The adapter only
//! translates types (actix-web speaks `http` 0.2, the engine `http` 1.x): the routes answer
//! exactly as with `wxpay-tower`, from the same [`Engine`].
//!
//! - [`configure`] (for `App::configure` and `web::scope(..).configure(..)`) registers
//!   `POST {prefix}/precreate`, `POST {prefix}/notify` and `GET {prefix}/orders/{out_trade_no}`
//!   (prefix default `/wxpay`), reads their bodies within the engine's limits (a
//!   `Content-Length` over the limit gets `413` before a byte is read), and puts the engine in
//!   `app_data`. [`configure_with`] takes a [`WxPayConfig`] (another prefix, lower limits).
//! - [`WxPayConfig`] in `app_data`, like actix-web's `PayloadConfig`: per-app or per-scope
//!   body limits for the routes and extractors.
//! - Extractors: [`WxPayEngine`] (the engine from `app_data`) and [`WxPayNotification`] (a
//!   notification verified by the engine's provider; on failure the provider's exact failure
//!   reply), for apps that write their own notify handler.
//! - [`WxPayError`]: the [`ResponseError`](actix_web::ResponseError) of the routes and
//!   extractors; `From<NotificationRejection>`, so `?` works on
//!   [`Engine::verify_notification`].
//! - [`into_actix_response`]: an engine reply (e.g. of [`Engine::apply_notification`]) as an
//!   actix-web response.
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_web::{App, HttpServer, web};
//! use wxpay_actix::core::provider::Provider;
//! use wxpay_actix::core::store::MemoryStore;
//! use wxpay_actix::Engine;
//!
//! async fn run(provider: Arc<dyn Provider>) -> std::io::Result<()> {
//!     let engine = Engine::builder(provider, Arc::new(MemoryStore::new()))
//!         .build()
//!         .map_err(std::io::Error::other)?;
//!     let _tasks = engine.spawn_background_tasks();
//!     HttpServer::new(move || {
//!         App::new()
//!             .route("/", web::get().to(|| async { "my shop" }))
//!             // POST /api/wxpay/precreate, POST /api/wxpay/notify, GET /api/wxpay/orders/{no}
//!             .service(web::scope("/api").configure(wxpay_actix::configure(engine.clone())))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! ## Paths and scopes
//! Routes are registered relative to the app or scope they are configured in. The engine
//! always sees its own canonical path (`{engine prefix}/…`) whatever the mount point, so the
//! same engine can be mounted at the root, in a scope, or under another prefix
//! ([`WxPayConfig::prefix`]); remember that the notify URL the provider was given must be the
//! public URL of the mounted notify route.
//!
//! ## Features
//! `sqlite`, `postgres`, `mysql`: forwarded to wxpay-core's `SqlxStore`.
//!
//! [actix-web]: https://docs.rs/actix-web

#![warn(clippy::unwrap_used)]

mod config;
mod convert;
mod error;
mod extract;
mod read;
mod routes;

/// wxpay-core, re-exported: the engine, providers, stores and field types.
pub use wxpay_core as core;
pub use wxpay_core::engine::{Engine, Route};
pub use wxpay_core::provider::{NotificationRejection, PaymentNotification};

pub use config::WxPayConfig;
pub use convert::into_actix_response;
pub use error::{ErrorKind, WxPayError};
pub use extract::{WxPayEngine, WxPayNotification};
pub use routes::{configure, configure_with};

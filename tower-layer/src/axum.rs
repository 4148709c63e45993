//! axum helpers (feature `axum`): the engine's routes as a [`Router`], and extractors.
//!
//! Most apps need only [`WxPayLayer`](crate::WxPayLayer) (`Router::layer`). Use [`routes`]
//! to `merge` or `nest` the engine's routes like any other axum routes instead, and the
//! extractors in handlers of your own:
//!
//! - [`WxPayEngine`]: the [`Engine`], e.g. to look an order up or to reconcile on demand.
//! - [`WxPayNotification`]: a payment notification read within the engine's body limit and
//!   verified by the provider, for apps that write their own notify handler. A request that
//!   fails verification is answered with the provider's exact failure reply, so the upstream
//!   retries it.
//!
//! Both find the engine in the request's extensions, where [`WxPayLayer`](crate::WxPayLayer)
//! and [`routes`] put it; with neither, add `axum::Extension(engine)` as a layer.
//!
//! ```no_run
//! # use wxpay_tower::core::engine::Engine;
//! # fn demo(engine: Engine) {
//! use axum::{Extension, Router, routing::post};
//! use wxpay_tower::axum::{WxPayEngine, WxPayNotification};
//!
//! async fn my_notify(
//!     WxPayEngine(engine): WxPayEngine,
//!     WxPayNotification(notification): WxPayNotification,
//! ) -> axum::response::Response {
//!     // … your own bookkeeping with `notification.report` …
//!     // then mark the order paid exactly as the built-in route does, and acknowledge:
//!     engine.apply_notification(&notification).await.map(axum::body::Body::from)
//! }
//!
//! let app: Router = Router::new()
//!     .merge(wxpay_tower::axum::routes(engine.clone()))
//!     .route("/callbacks/wechat", post(my_notify))
//!     .layer(Extension(engine));
//! # let _ = app;
//! # }
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use wxpay_core::engine::{ClientAddr, Engine, Route};
use wxpay_core::provider::PaymentNotification;

use crate::read::{json_error, read_route_body};

/// The engine's routes under its prefix, as a [`Router`] to `merge` (or `nest` with an empty
/// engine prefix) into your app: `POST {prefix}/precreate`, `POST {prefix}/notify` and
/// `GET {prefix}/orders/{out_trade_no}`, plus the `{prefix}/openid/…` routes when the engine
/// has an openid configuration ([`Engine::routes`]). The routes also carry the engine as an
/// extension.
pub fn routes<S>(engine: Engine) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let prefix = engine.prefix().to_owned();
    let handler = {
        let engine = engine.clone();
        move |request: Request| {
            let engine = engine.clone();
            async move { serve(&engine, request).await }
        }
    };
    let mut router = Router::new();
    for route in engine.routes() {
        let path = route.mount_path(&prefix);
        router = router.route(&path, any(handler.clone()));
    }
    router.layer(axum::Extension(engine))
}

/// Answers one request with the engine (404 JSON if it is not one of the engine's routes).
async fn serve(engine: &Engine, request: Request) -> Response {
    let Some(route) = engine.route(request.method(), request.uri().path()) else {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such wxpay route")
            .map(Body::from);
    };
    let (mut parts, body) = request.into_parts();
    record_client_addr(&mut parts.extensions);
    let response = match read_route_body(engine, route, &parts.headers, body).await {
        Ok(bytes) => engine.handle(http::Request::from_parts(parts, bytes)).await,
        Err(e) => e.into_response(engine, route),
    };
    response.map(Body::from)
}

/// Copies axum's `ConnectInfo<SocketAddr>` (from `into_make_service_with_connect_info`) into
/// the engine's [`ClientAddr`], for WeChat Pay's `scene_info.payer_client_ip`.
pub(crate) fn record_client_addr(extensions: &mut http::Extensions) {
    if extensions.get::<ClientAddr>().is_none()
        && let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>()
    {
        let ip = addr.ip();
        extensions.insert(ClientAddr(ip));
    }
}

fn engine_of(extensions: &http::Extensions) -> Result<Engine, EngineMissing> {
    extensions.get::<Engine>().cloned().ok_or(EngineMissing)
}

/// Extracts the [`Engine`] from the request's extensions.
///
/// Fails with [`EngineMissing`] (500) when neither [`WxPayLayer`](crate::WxPayLayer),
/// [`routes`] nor `axum::Extension(engine)` wraps the handler.
#[derive(Clone)]
pub struct WxPayEngine(pub Engine);

impl std::fmt::Debug for WxPayEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WxPayEngine")
            .field(&self.0.prefix())
            .finish()
    }
}

impl<S> FromRequestParts<S> for WxPayEngine
where
    S: Send + Sync,
{
    type Rejection = EngineMissing;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        engine_of(&parts.extensions).map(Self)
    }
}

/// The rejection of [`WxPayEngine`] and [`WxPayNotification`] when no engine is in the
/// request's extensions: a 500 `{"code":"WXPAY_ENGINE_MISSING",…}` (a mounting mistake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineMissing;

impl std::fmt::Display for EngineMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "no wxpay engine in the request extensions: add WxPayLayer or Extension(engine)",
        )
    }
}

impl std::error::Error for EngineMissing {}

impl IntoResponse for EngineMissing {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "WXPAY_ENGINE_MISSING",
            "the payment engine is not mounted on this route",
        )
        .map(Body::from)
    }
}

/// A payment notification read within the engine's notify body limit and verified by the
/// provider (signature, timestamp, decryption). Nothing is stored yet: pass it to
/// [`Engine::apply_notification`] to mark the order paid and get the acknowledgement.
///
/// Rejected with [`NotificationRejected`]: the provider's exact failure reply (so the
/// upstream retries), or 413 for an over-limit body.
#[derive(Debug, Clone)]
pub struct WxPayNotification(pub PaymentNotification);

impl<S> FromRequest<S> for WxPayNotification
where
    S: Send + Sync,
{
    type Rejection = NotificationRejected;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let engine =
            engine_of(request.extensions()).map_err(|e| NotificationRejected(e.into_response()))?;
        let (parts, body) = request.into_parts();
        let bytes = read_route_body(&engine, Route::Notify, &parts.headers, body)
            .await
            .map_err(|e| {
                NotificationRejected(e.into_response(&engine, Route::Notify).map(Body::from))
            })?;
        match engine.verify_notification(&parts.headers, &bytes).await {
            Ok(notification) => Ok(Self(notification)),
            Err(rejection) => {
                tracing::warn!(
                    kind = ?rejection.kind,
                    message = %rejection.message,
                    "notification rejected"
                );
                Err(NotificationRejected(
                    rejection.into_response().map(Body::from),
                ))
            }
        }
    }
}

/// The rejection of [`WxPayNotification`]: the reply to send (the provider's failure shape).
#[derive(Debug)]
pub struct NotificationRejected(pub Response);

impl IntoResponse for NotificationRejected {
    fn into_response(self) -> Response {
        self.0
    }
}

/// Converts an engine reply into an axum response.
pub fn into_axum_response(response: http::Response<Bytes>) -> Response {
    response.map(Body::from)
}

//! Extractors: the engine from `app_data`, and a verified payment notification.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use wxpay_core::engine::{Engine, Route};
use wxpay_core::provider::PaymentNotification;

use crate::convert::headers;
use crate::error::WxPayError;
use crate::read::read_body;

/// The [`Engine`] in `app_data` (put there by [`configure`](crate::configure), or by
/// `App::app_data(engine)` / `App::app_data(web::Data::new(engine))`).
fn engine_of(request: &HttpRequest) -> Result<Engine, WxPayError> {
    request
        .app_data::<Engine>()
        .cloned()
        .or_else(|| {
            request
                .app_data::<Data<Engine>>()
                .map(|d| d.get_ref().clone())
        })
        .ok_or_else(WxPayError::engine_missing)
}

/// Extracts the [`Engine`] from `app_data`, e.g. to look an order up or reconcile on demand.
///
/// Fails with [`WxPayError`] of kind [`EngineMissing`](crate::ErrorKind::EngineMissing) (500)
/// when no engine is in `app_data`: a mounting mistake.
///
/// ```no_run
/// use actix_web::{HttpResponse, get};
/// use wxpay_actix::WxPayEngine;
///
/// #[get("/admin/reconcile")]
/// async fn reconcile(WxPayEngine(engine): WxPayEngine) -> HttpResponse {
///     let report = engine.reconcile().await;
///     HttpResponse::Ok().body(format!("{report:?}"))
/// }
/// ```
#[derive(Clone)]
pub struct WxPayEngine(pub Engine);

impl fmt::Debug for WxPayEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WxPayEngine").field(&self.0).finish()
    }
}

impl FromRequest for WxPayEngine {
    type Error = WxPayError;
    type Future = Ready<Result<Self, WxPayError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(engine_of(request).map(Self))
    }
}

/// A payment notification, read within the notify body limit (the nearest
/// [`WxPayConfig`](crate::WxPayConfig), capped by the engine's) and verified by the engine's
/// provider (signature, timestamp, decryption). Nothing is stored yet: pass it to
/// [`Engine::apply_notification`] to mark the order paid exactly as the built-in notify route
/// does, and to get the acknowledgement.
///
/// Fails with a [`WxPayError`] whose response is the provider's exact failure reply (so the
/// upstream retries), a 413 for an over-limit body, or a 500 when no engine is in `app_data`.
///
/// ```no_run
/// use actix_web::{HttpResponse, post};
/// use wxpay_actix::{WxPayEngine, WxPayNotification, into_actix_response};
///
/// #[post("/callbacks/wechat")]
/// async fn my_notify(
///     WxPayEngine(engine): WxPayEngine,
///     WxPayNotification(notification): WxPayNotification,
/// ) -> HttpResponse {
///     // … your own bookkeeping with `notification.report` …
///     into_actix_response(engine.apply_notification(&notification).await)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct WxPayNotification(pub PaymentNotification);

impl FromRequest for WxPayNotification {
    type Error = WxPayError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WxPayError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let engine = engine_of(&request)?;
            let body = read_body(&request, &engine, Route::Notify, payload).await?;
            match engine.verify_notification(&headers(&request), &body).await {
                Ok(notification) => Ok(Self(notification)),
                Err(rejection) => {
                    tracing::warn!(
                        kind = ?rejection.kind,
                        message = %rejection.message,
                        "notification rejected"
                    );
                    Err(rejection.into())
                }
            }
        })
    }
}

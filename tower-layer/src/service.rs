//! The service.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;
use tracing::Instrument;
use wxpay_core::engine::{Engine, Route};

use crate::body::ResponseBody;
use crate::future::ResponseFuture;
use crate::layer::WxPayLayer;
use crate::read::read_route_body;

/// A service answering the engine's routes and passing every other request to `S`.
///
/// - `POST {prefix}/precreate`, `POST {prefix}/notify`, `GET {prefix}/orders/{out_trade_no}`
///   and, with an openid configuration, the `{prefix}/openid/…` routes (as [`Engine::route`]
///   decides) are read with the route's body limit and handled by the [`Engine`], URI and
///   query string included; the inner service never sees them.
/// - Every other request goes to `S` as it came (method, URI, headers, extensions, streaming
///   body), with a clone of the [`Engine`] added to its extensions; `S`'s response body is
///   streamed back untouched.
///
/// Readiness is the inner service's: [`Service::poll_ready`] delegates to `S`.
#[derive(Clone)]
pub struct WxPay<S> {
    inner: S,
    engine: Engine,
}

impl<S> std::fmt::Debug for WxPay<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxPay")
            .field("prefix", &self.engine.prefix())
            .finish_non_exhaustive()
    }
}

impl<S> WxPay<S> {
    /// Wraps `inner`, answering `engine`'s routes in front of it.
    pub fn new(inner: S, engine: Engine) -> Self {
        Self { inner, engine }
    }

    /// A [`WxPayLayer`] for `engine`.
    pub fn layer(engine: Engine) -> WxPayLayer {
        WxPayLayer::new(engine)
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming `self`.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for WxPay<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.engine.route(request.method(), request.uri().path()) {
            Some(route) => {
                #[cfg(feature = "axum")]
                crate::axum::record_client_addr(request.extensions_mut());
                ResponseFuture::engine(Box::pin(handle(self.engine.clone(), route, request)))
            }
            None => {
                request.extensions_mut().insert(self.engine.clone());
                ResponseFuture::inner(self.inner.call(request))
            }
        }
    }
}

/// Reads the body (bounded) and lets the engine answer.
async fn handle<B>(engine: Engine, route: Route, request: Request<B>) -> Response<Bytes>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let span = tracing::debug_span!("wxpay_tower", route = ?route);
    async move {
        let (parts, body) = request.into_parts();
        match read_route_body(&engine, route, &parts.headers, body).await {
            Ok(bytes) => engine.handle(Request::from_parts(parts, bytes)).await,
            Err(e) => {
                tracing::debug!(error = %e, "refused the body of a wxpay route");
                e.into_response(&engine, route)
            }
        }
    }
    .instrument(span)
    .await
}

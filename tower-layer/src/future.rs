//! The response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use crate::body::ResponseBody;

/// The engine's part of a request: reading the body and handling it.
pub(crate) type EngineFuture = Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>;

pin_project! {
    /// The future of a [`WxPay`](crate::WxPay) service: the engine answering one of its routes,
    /// or the inner service's future.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Engine { future: EngineFuture },
        Inner { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn engine(future: EngineFuture) -> Self {
        Self {
            kind: Kind::Engine { future },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Engine { .. } => "engine",
            Kind::Inner { .. } => "inner",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Engine { future } => future
                .as_mut()
                .poll(cx)
                .map(|response| Ok(response.map(ResponseBody::engine))),
            KindProj::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(ResponseBody::inner))),
        }
    }
}

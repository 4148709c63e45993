//! The HTTP server: all upstream modules' routes on one loopback listener.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::state::Shared;
use crate::{gateway, openid, qfpay, simulate, v2, v3, weidoufu};

/// The whole application.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    let limit = shared.config.body_limit;
    Router::new()
        .merge(v3::router(&shared))
        .merge(v2::router(&shared))
        .merge(gateway::router(&shared))
        .merge(qfpay::router(&shared))
        .merge(weidoufu::router(&shared))
        .merge(openid::router())
        .merge(simulate::router())
        .fallback(fallback)
        .with_state(shared)
        .layer(DefaultBodyLimit::max(limit))
}

async fn fallback(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if req.uri().path().starts_with("/v3/") {
        let requested = req
            .headers()
            .get("Wechatpay-Serial")
            .and_then(|v| v.to_str().ok());
        return v3::not_found(&shared, requested).await;
    }
    (
        StatusCode::NOT_FOUND,
        [(http::header::CONTENT_TYPE, "application/json")],
        r#"{"code":"NOT_FOUND","message":"no such sandbox endpoint"}"#,
    )
        .into_response()
}

/// Serves `app` on `listener` until `shutdown` fires.
pub(crate) fn spawn(
    listener: TcpListener,
    app: Router,
    shutdown: oneshot::Receiver<()>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = shutdown.await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "sandbox server stopped with an error");
        }
    })
}

//! A small axum shop that takes WeChat Pay through wxpay.
//!
//! ```sh
//! cargo run --example axum_shop      # sandbox mode: open http://127.0.0.1:3000/
//! ```
//!
//! The app has routes of its own (the H5 checkout page, `/api/products`, `/health`) and mounts
//! the payment routes with one layer: `POST /wxpay/precreate`, `POST /wxpay/notify`,
//! `GET /wxpay/orders/{out_trade_no}`.
//!
//! With `WXPAY_MCHID` unset it runs in **sandbox mode**: WeChat Pay is emulated in process with
//! generated keys. With it set it runs in **production mode** against `WXPAY_API_BASE`; see
//! `wxpay_examples::config` for every variable. `WXPAY_PROVIDER` (`v3` by default, `v2`,
//! `gateway`) picks the upstream; the gateway's production switch is `WXPAY_GATEWAY_URL`.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use wxpay_examples::{Shop, ShopConfig, assets};
use wxpay_tower::WxPayLayer;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();

    let config = match ShopConfig::from_env() {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(listener) => listener,
        Err(e) => {
            return fail(&format!(
                "WXPAY_BIND: cannot listen on {}: {e}",
                config.bind
            ));
        }
    };
    let bound = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => return fail(&format!("WXPAY_BIND: {e}")),
    };
    let shop = match Shop::start(config, bound).await {
        Ok(shop) => Arc::new(shop),
        Err(e) => return fail(&e),
    };

    // The app's own routes, then the payment routes in front of them with one layer.
    let app = Router::new()
        .route("/", get(index))
        .route("/assets/shop.js", get(script))
        .route("/assets/shop.css", get(style))
        .route("/api/config", get(page_config))
        .route("/api/products", get(products))
        .route("/health", get(health))
        .with_state(Arc::clone(&shop))
        .layer(WxPayLayer::new(shop.engine().clone()));

    println!("{}", shop.banner(bound));
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    // Hand the reconciler's lease to the other instances at once (a rolling restart).
    if let Err(error) = shop.engine().release_leases().await {
        tracing::warn!(%error, "releasing the reconciler's lease failed; it expires by itself");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("server error: {e}")),
    }
}

/// Ctrl-C, or SIGTERM (what a container runtime or systemd sends to stop the shop).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// One clear message on stderr and a non-zero exit.
fn fail(message: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("axum_shop: {message}");
    ExitCode::from(2)
}

async fn index(State(shop): State<Arc<Shop>>) -> Response {
    let csp = assets::content_security_policy(shop.sandbox_origin());
    let mut response = Html(assets::INDEX_HTML).into_response();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        assets::SHOP_JS,
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        assets::SHOP_CSS,
    )
}

async fn page_config(State(shop): State<Arc<Shop>>) -> Json<serde_json::Value> {
    Json(shop.page_config())
}

async fn products(State(shop): State<Arc<Shop>>) -> Json<serde_json::Value> {
    Json(shop.products_json())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

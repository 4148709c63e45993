//! A small actix-web shop that takes WeChat Pay through wxpay: the same shop, environment
//! contract, sandbox mode and H5 page as `axum_shop`.
//!
//! ```sh
//! cargo run --example actix_shop     # sandbox mode: open http://127.0.0.1:3000/
//! ```
//!
//! The app has routes of its own (the H5 checkout page, `/api/products`, `/health`) and mounts
//! the payment routes with `App::configure(wxpay_actix::configure(engine))`:
//! `POST /wxpay/precreate`, `POST /wxpay/notify`, `GET /wxpay/orders/{out_trade_no}`.
//!
//! With `WXPAY_MCHID` unset it runs in **sandbox mode**: WeChat Pay is emulated in process with
//! generated keys. With it set it runs in **production mode** against `WXPAY_API_BASE`; see
//! `wxpay_examples::config` for every variable. `WXPAY_PROVIDER` (`v3` by default, `v2`,
//! `gateway`) picks the upstream; the gateway's production switch is `WXPAY_GATEWAY_URL`.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use wxpay_examples::{Shop, ShopConfig, assets};

#[actix_web::main]
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
    let listener = match std::net::TcpListener::bind(config.bind) {
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
        Ok(shop) => web::Data::new(shop),
        Err(e) => return fail(&e),
    };

    let engine = shop.engine().clone();
    let app_shop = shop.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_shop.clone())
            // The app's own routes…
            .route("/", web::get().to(index))
            .route("/assets/shop.js", web::get().to(script))
            .route("/assets/shop.css", web::get().to(style))
            .route("/api/config", web::get().to(page_config))
            .route("/api/products", web::get().to(products))
            .route("/health", web::get().to(health))
            // …and the payment routes.
            .configure(wxpay_actix::configure(engine.clone()))
    })
    .listen(listener);
    let server = match server {
        Ok(server) => server,
        Err(e) => return fail(&format!("WXPAY_BIND: {e}")),
    };

    println!("{}", shop.banner(bound));
    let served = server.run().await;
    // Hand the reconciler's lease to the other instances at once (a rolling restart).
    if let Err(error) = shop.engine().release_leases().await {
        tracing::warn!(%error, "releasing the reconciler's lease failed; it expires by itself");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("server error: {e}")),
    }
}

/// One clear message on stderr and a non-zero exit.
fn fail(message: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("actix_shop: {message}");
    ExitCode::from(2)
}

async fn index(shop: web::Data<Shop>) -> HttpResponse {
    let csp = assets::content_security_policy(shop.sandbox_origin());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .body(assets::INDEX_HTML)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(assets::SHOP_JS)
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(assets::SHOP_CSS)
}

async fn page_config(shop: web::Data<Shop>) -> HttpResponse {
    HttpResponse::Ok().json(shop.page_config())
}

async fn products(shop: web::Data<Shop>) -> HttpResponse {
    HttpResponse::Ok().json(shop.products_json())
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

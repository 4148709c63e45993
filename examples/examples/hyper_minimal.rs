//! The wxpay routes on bare hyper (hyper-util), with the tower layer: no web framework.
//!
//! ```sh
//! cargo run --example hyper_minimal   # sandbox mode, http://127.0.0.1:3000/
//! ```
//!
//! Same configuration as `axum_shop` (`WXPAY_MCHID` unset = sandbox mode; `WXPAY_PROVIDER`
//! picks the upstream). Routes:
//! `POST /wxpay/precreate`, `POST /wxpay/notify`, `GET /wxpay/orders/{out_trade_no}` and the
//! openid routes (`/wxpay/openid/…`: in sandbox mode precreate requires the openid they resolve,
//! see the README's "Getting the openid"); every other request reaches the app's own service
//! below.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::process::ExitCode;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tower::Layer;
use wxpay_examples::{Shop, ShopConfig};
use wxpay_tower::WxPayLayer;

/// The app's own routes: everything that is not a payment route.
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/" => (
            StatusCode::OK,
            "hyper_minimal: get an openid token (POST /wxpay/openid/session, or the \
             /wxpay/openid/authorize redirect), then POST /wxpay/precreate to pay\n",
        ),
        "/health" => (StatusCode::OK, "ok\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    Ok(response)
}

#[tokio::main]
async fn main() -> ExitCode {
    let started = async {
        let config = ShopConfig::from_env().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|e| format!("WXPAY_BIND: cannot listen on {}: {e}", config.bind))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let shop = Shop::start(config, bound)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((listener, bound, shop))
    };
    let (listener, bound, shop) = match started.await {
        Ok(started) => started,
        Err(message) => {
            eprintln!("hyper_minimal: {message}");
            return ExitCode::from(2);
        }
    };

    // The layer answers the payment routes and hands everything else to `app`.
    let service = WxPayLayer::new(shop.engine().clone()).layer(tower::service_fn(app));
    let service = TowerToHyperService::new(service);
    println!("{}", shop.banner(bound));

    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("hyper_minimal: accept: {e}");
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let connection = Builder::new(TokioExecutor::new());
            if let Err(e) = connection
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("hyper_minimal: connection: {e}");
            }
        });
    }
}

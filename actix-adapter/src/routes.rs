//! Mounting the engine's routes in an actix-web `App` or `Scope`.

use actix_web::dev::Payload;
use actix_web::{HttpRequest, HttpResponse, web};
use wxpay_core::engine::{Engine, Route};

use crate::config::WxPayConfig;
use crate::convert::{engine_request, into_actix_response};
use crate::read::read_body;

/// Mounts the engine's routes under its prefix, for [`App::configure`] and
/// [`Scope::configure`]: `POST {prefix}/precreate`, `POST {prefix}/notify` and
/// `GET {prefix}/orders/{out_trade_no}`, and with an openid configuration
/// `POST {prefix}/openid/session`, `GET {prefix}/openid/authorize`, `/openid/callback` and
/// `/openid/me` (every method reaches the engine, which answers 405 itself; the query string
/// is passed on). The [`Engine`] is also added to the app's (or scope's) `app_data`, for the
/// [`WxPayEngine`](crate::WxPayEngine) and [`WxPayNotification`](crate::WxPayNotification)
/// extractors.
///
/// Paths are relative to where the routes are configured: inside `web::scope("/api")` they
/// are `/api{prefix}/…`. The engine always sees its own path (`{engine prefix}/…`), so one
/// engine can be mounted anywhere. Body limits come from the nearest [`WxPayConfig`] in
/// `app_data`, capped by the engine's.
///
/// [`App::configure`]: actix_web::App::configure
/// [`Scope::configure`]: actix_web::Scope::configure
///
/// ```no_run
/// # fn demo(engine: wxpay_actix::Engine) {
/// use actix_web::{App, web};
///
/// let _at_root = App::new().configure(wxpay_actix::configure(engine.clone()));
/// let _in_scope = App::new().service(web::scope("/api").configure(wxpay_actix::configure(engine)));
/// # }
/// ```
pub fn configure(engine: Engine) -> impl FnOnce(&mut web::ServiceConfig) + 'static {
    move |cfg| register(cfg, engine, None)
}

/// Like [`configure`], with settings: the routes under `config`'s prefix (if set) and its
/// body limits for these routes (it is added to each route's `app_data`, so it takes
/// precedence over one set on the app or scope).
///
/// ```no_run
/// # fn demo(engine: wxpay_actix::Engine) {
/// use actix_web::{App, web};
/// use wxpay_actix::WxPayConfig;
///
/// // POST /pay/precreate, POST /pay/notify, GET /pay/orders/{out_trade_no}:
/// let _app = App::new().service(
///     web::scope("/pay").configure(wxpay_actix::configure_with(
///         engine,
///         WxPayConfig::new().prefix("").notify_body_limit(16 * 1024),
///     )),
/// );
/// # }
/// ```
///
/// # Panics
/// When the app is built, if `config`'s prefix is neither empty nor `/` followed by segments
/// without a trailing `/` (as actix-web itself panics on an invalid route).
pub fn configure_with(
    engine: Engine,
    config: WxPayConfig,
) -> impl FnOnce(&mut web::ServiceConfig) + 'static {
    move |cfg| register(cfg, engine, Some(&config))
}

fn register(cfg: &mut web::ServiceConfig, engine: Engine, config: Option<&WxPayConfig>) {
    let prefix = config
        .map_or(engine.prefix(), |c| c.effective_prefix(&engine))
        .to_owned();
    assert!(
        WxPayConfig::check_prefix(&prefix),
        "invalid wxpay prefix {prefix:?}: it must be empty, or start with '/' and not end with one"
    );
    for route in engine.routes() {
        let path = route.mount_path(&prefix);
        let handler_engine = engine.clone();
        let handler = move |request: HttpRequest, payload: web::Payload| {
            let engine = handler_engine.clone();
            async move { serve(&engine, route, &request, payload.into_inner()).await }
        };
        let mut resource = web::resource(path).route(web::route().to(handler));
        if let Some(config) = config {
            resource = resource.app_data(config.clone());
        }
        cfg.service(resource);
    }
    cfg.app_data(engine);
}

/// The engine's path for `route`, whatever path the request came on: the engine's prefix and
/// as many trailing segments of the request path as the route's template has, raw (still
/// percent-encoded), as the tower layer passes them.
fn engine_path(engine: &Engine, route: Route, request: &HttpRequest) -> String {
    let template = route.path_template();
    if !template.contains('{') {
        return route.mount_path(engine.prefix());
    }
    let count = template.split('/').filter(|s| !s.is_empty()).count();
    let segments: Vec<&str> = request.path().rsplit('/').take(count).collect();
    let tail: Vec<&str> = segments.into_iter().rev().collect();
    format!("{}/{}", engine.prefix(), tail.join("/"))
}

/// Answers one request to `route`: bounded read, conversion, the engine, conversion back.
async fn serve(
    engine: &Engine,
    route: Route,
    request: &HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let reply = match read_body(request, engine, route, payload).await {
        Ok(body) => {
            let path = engine_path(engine, route, request);
            engine.handle(engine_request(request, &path, body)).await
        }
        Err(error) => error.into_reply(),
    };
    into_actix_response(reply)
}

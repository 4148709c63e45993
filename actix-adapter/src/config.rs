//! Per-app settings, looked up in `app_data` like actix-web's own `PayloadConfig`.

use actix_web::HttpRequest;
use actix_web::web::Data;
use wxpay_core::engine::{Engine, Route};

/// Per-app (or per-scope) settings of the wxpay routes and extractors, in the manner of
/// actix-web's [`PayloadConfig`](actix_web::web::PayloadConfig).
///
/// - **Body limits** are looked up in `app_data` at request time, nearest first (resource,
///   then scope, then app), by the built-in routes and by the
///   [`WxPayNotification`](crate::WxPayNotification) extractor. They can only *lower* the
///   engine's own limits ([`Engine::body_limit`]): the engine checks its limit again.
/// - **The prefix** decides where [`configure_with`](crate::configure_with) registers the
///   routes (default: the engine's prefix). Routes are registered when the app is built, so
///   a prefix set only through `app_data` does not move them.
///
/// ```
/// use actix_web::{App, web};
/// use wxpay_actix::WxPayConfig;
///
/// // A 4 KiB cap on notifications read by the routes and extractors of this scope.
/// let scope = web::scope("/api").app_data(WxPayConfig::new().notify_body_limit(4096));
/// let _app = App::new().service(scope);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WxPayConfig {
    prefix: Option<String>,
    notify_body_limit: Option<usize>,
    precreate_body_limit: Option<usize>,
}

impl WxPayConfig {
    /// No overrides: the engine's prefix and limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the routes under `prefix` instead of the engine's, relative to the app or
    /// scope they are configured in (`""`: at the scope's root). It must be empty or start
    /// with `/` and not end with one, like the engine's.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Caps the notification body at `bytes` (at most the engine's limit applies).
    #[must_use]
    pub fn notify_body_limit(mut self, bytes: usize) -> Self {
        self.notify_body_limit = Some(bytes);
        self
    }

    /// Caps the precreate body at `bytes` (at most the engine's limit applies).
    #[must_use]
    pub fn precreate_body_limit(mut self, bytes: usize) -> Self {
        self.precreate_body_limit = Some(bytes);
        self
    }

    /// The prefix override, if any.
    pub fn prefix_override(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The prefix the routes are registered under with `engine`.
    pub fn effective_prefix<'a>(&'a self, engine: &'a Engine) -> &'a str {
        self.prefix.as_deref().unwrap_or(engine.prefix())
    }

    /// The body limit of `route`: this config's, capped by the engine's.
    pub fn body_limit(&self, engine: &Engine, route: Route) -> usize {
        let engine_limit = engine.body_limit(route);
        let own = match route {
            Route::Notify => self.notify_body_limit,
            Route::Precreate => self.precreate_body_limit,
            // The openid session body has only the engine's (small) limit; GET routes read none.
            _ => None,
        };
        own.map_or(engine_limit, |own| own.min(engine_limit))
    }

    /// The nearest `WxPayConfig` in the request's `app_data` (also as `web::Data`), if any.
    pub fn from_request(request: &HttpRequest) -> Option<&WxPayConfig> {
        request
            .app_data::<WxPayConfig>()
            .or_else(|| request.app_data::<Data<WxPayConfig>>().map(|d| d.get_ref()))
    }

    /// The body limit of `route` for `request`: the nearest config's, else the engine's.
    pub(crate) fn limit_for(request: &HttpRequest, engine: &Engine, route: Route) -> usize {
        Self::from_request(request).map_or_else(
            || engine.body_limit(route),
            |config| config.body_limit(engine, route),
        )
    }

    pub(crate) fn check_prefix(prefix: &str) -> bool {
        prefix.is_empty() || (prefix.starts_with('/') && !prefix.ends_with('/'))
    }
}

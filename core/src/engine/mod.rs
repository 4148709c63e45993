//! The engine: precreate, notify, order status and reconciliation, over `http` types; with an
//! [`OpenidConfig`], the openid routes too (`{prefix}/openid/session`, `/authorize`, `/callback`,
//! `/me`) and precreates bound to a signed openid token.
//!
//! The engine knows no web framework. Adapters (`wxpay-tower`, `wxpay-actix`) ask
//! [`Engine::route`] whether a request is theirs, read its body within
//! [`Engine::body_limit`], and hand it to [`Engine::handle`].
//!
//! ```
//! use std::sync::Arc;
//! use wxpay_core::engine::{Engine, Route};
//! # fn demo(provider: Arc<dyn wxpay_core::provider::Provider>) -> Result<(), wxpay_core::engine::EngineError> {
//! let store = Arc::new(wxpay_core::store::MemoryStore::new());
//! let engine = Engine::builder(provider, store).prefix("/pay").build()?;
//! assert_eq!(engine.route(&http::Method::POST, "/pay/notify"), Some(Route::Notify));
//! assert_eq!(engine.route(&http::Method::GET, "/elsewhere"), None);
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use tracing::Instrument as _;

use crate::clock::{self, Clock};
use crate::provider::{NotificationRejection, PaymentNotification, Provider};
use crate::store::OrderStore;

mod admin;
mod admin_api;
mod alerts;
mod checkout;
mod console;
mod events;
mod lease;
mod metrics;
mod notify;
mod openid;
mod precreate;
mod reconcile;
mod refund;
mod reply;
mod seed000;
mod status;

pub use admin::{AdminToken, REFUND_BODY_LIMIT};
pub use alerts::{Alert, OUTBOX_BACKLOG_AGE};
pub use checkout::{AmountRange, Checkout, CheckoutPolicy, CheckoutRejection, CheckoutRequest};
pub use events::{BackgroundTasks, EVENT_CLAIM, EventHook, HookError, PaidHook};
pub use lease::RECONCILE_LEASE;
pub use openid::{
    DEFAULT_TOKEN_TTL, MAX_RETURN_TO_BYTES, MAX_TOKEN_TTL, OpenidConfig, OpenidMode,
    SESSION_BODY_LIMIT, STATE_COOKIE, STATE_TTL, TOKEN_BODY_FIELD, TOKEN_COOKIE, TOKEN_HEADER,
    UnknownOpenidMode,
};
pub use reconcile::{
    DEFAULT_RECONCILE_BACKOFF, DEFAULT_RECONCILE_BUDGET, PRUNE_EVERY, ReconcileReport, Retention,
};
pub use refund::{RefundError, RefundOutcome, RefundReconcileReport, RefundRequest};
pub use reply::ErrorBody;
pub use seed000::SEED000_JSAPI_PATH;

/// The default route prefix.
pub const DEFAULT_PREFIX: &str = "/wxpay";
/// The default limit of a notification body.
pub const DEFAULT_NOTIFY_BODY_LIMIT: usize = 64 * 1024;
/// The default limit of a precreate body.
pub const DEFAULT_PRECREATE_BODY_LIMIT: usize = 16 * 1024;
/// The default least time between two status-route queries of one order upstream.
pub const DEFAULT_STATUS_QUERY_INTERVAL: Duration = Duration::from_secs(2);

/// How long the adapters wait for a request body by default ([`EngineBuilder::body_read_timeout`]).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One of the engine's routes. More may come: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST {prefix}/precreate`.
    Precreate,
    /// `POST {prefix}/notify`.
    Notify,
    /// `GET {prefix}/orders/{out_trade_no}`.
    OrderStatus,
    /// `POST {prefix}/openid/session`: a `wx.login` code → openid token (with [`OpenidConfig`]).
    OpenidSession,
    /// `GET {prefix}/openid/authorize?return_to=…`: 302 to the upstream's OAuth page.
    OpenidAuthorize,
    /// `GET {prefix}/openid/callback?code&state`: the OAuth return → token cookie, 302 back.
    OpenidCallback,
    /// `GET {prefix}/openid/me`: the openid of the presented token.
    OpenidMe,
    /// `POST {prefix}/orders/{out_trade_no}/refunds` (refund) and `GET` (list the refunds):
    /// operator routes, mounted with an [`AdminToken`].
    Refunds,
    /// `GET {prefix}/admin/orders?status&created_from&created_before&prefix&limit&cursor`: the
    /// operator's order list, newest first (with an [`AdminToken`]).
    AdminOrders,
    /// `GET {prefix}/admin/orders/{out_trade_no}`: one order with its refunds, mismatches and
    /// events (with an [`AdminToken`]).
    AdminOrder,
    /// `POST {prefix}/admin/orders/{out_trade_no}/{action}`, `action` one of `query` (ask the
    /// upstream now and apply its answer), `close` (close an unpaid order upstream and here),
    /// `redeliver` (hand the order's events to the hook again) (with an [`AdminToken`]).
    AdminOrderAction,
    /// `GET {prefix}/admin/outbox`: events not yet delivered to the hook, and the oldest's age
    /// (with an [`AdminToken`]).
    AdminOutbox,
    /// `GET {prefix}/admin/attention`: what needs an operator: recent mismatches (double
    /// payments and payments of unknown orders among them), `ABNORMAL` refunds, and events
    /// undelivered for over 10 minutes (with an [`AdminToken`]).
    AdminAttention,
    /// `GET {prefix}/admin/metrics`: Prometheus text (with an [`AdminToken`]).
    AdminMetrics,
    /// `GET {prefix}/admin/console`: the operator console, one static page that asks for the
    /// admin token and calls the JSON routes with it (mounted with an [`AdminToken`]; the page
    /// itself holds no data, so it is served without one).
    AdminConsole,
    /// `GET {prefix}/admin/console/{asset}`: the console's script and style sheet.
    AdminConsoleAsset,
    /// `POST /wx_payment.WxPaymentService/jsapi` (outside the prefix): seed 000's own contract,
    /// `{openid, amount}` in, `{timestamp, nonceStr, package, signType, paySign}` out, errors as
    /// grpc-gateway writes them (with [`EngineBuilder::seed000_compat`]).
    Seed000Jsapi,
}

impl Route {
    /// The routes without [`OpenidConfig`].
    const PAYMENT: [Route; 3] = [Route::Precreate, Route::Notify, Route::OrderStatus];
    /// The routes an [`OpenidConfig`] adds.
    const OPENID: [Route; 4] = [
        Route::OpenidSession,
        Route::OpenidAuthorize,
        Route::OpenidCallback,
        Route::OpenidMe,
    ];

    /// The routes an [`AdminToken`] adds.
    const ADMIN: [Route; 9] = [
        Route::Refunds,
        Route::AdminOrders,
        Route::AdminOrder,
        Route::AdminOrderAction,
        Route::AdminOutbox,
        Route::AdminAttention,
        Route::AdminMetrics,
        Route::AdminConsole,
        Route::AdminConsoleAsset,
    ];

    /// The methods the route answers (any other gets 405).
    pub fn methods(self) -> Vec<Method> {
        match self {
            Route::Refunds => vec![Method::GET, Method::POST],
            other => vec![other.method()],
        }
    }

    /// Whether the route answers `method`.
    pub fn allows(self, method: &Method) -> bool {
        match self {
            Route::Refunds => method == Method::GET || method == Method::POST,
            other => other.method() == method,
        }
    }

    /// The method the route answers; for [`Route::Refunds`], which answers `GET` too, the one
    /// that takes a body (`POST`). See [`Route::methods`].
    pub fn method(self) -> Method {
        match self {
            Route::Precreate
            | Route::Notify
            | Route::OpenidSession
            | Route::Refunds
            | Route::AdminOrderAction
            | Route::Seed000Jsapi => Method::POST,
            Route::OrderStatus
            | Route::OpenidAuthorize
            | Route::OpenidCallback
            | Route::OpenidMe
            | Route::AdminOrders
            | Route::AdminOrder
            | Route::AdminOutbox
            | Route::AdminAttention
            | Route::AdminMetrics
            | Route::AdminConsole
            | Route::AdminConsoleAsset => Method::GET,
        }
    }

    /// The path under the prefix, with `{out_trade_no}` for the order number (the template
    /// syntax of axum 0.8 and actix-web), e.g. `/orders/{out_trade_no}`.
    pub fn path_template(self) -> &'static str {
        match self {
            Route::Precreate => "/precreate",
            Route::Notify => "/notify",
            Route::OrderStatus => "/orders/{out_trade_no}",
            Route::OpenidSession => "/openid/session",
            Route::OpenidAuthorize => "/openid/authorize",
            Route::OpenidCallback => "/openid/callback",
            Route::OpenidMe => "/openid/me",
            Route::Refunds => "/orders/{out_trade_no}/refunds",
            Route::AdminOrders => "/admin/orders",
            Route::AdminOrder => "/admin/orders/{out_trade_no}",
            Route::AdminOrderAction => "/admin/orders/{out_trade_no}/{action}",
            Route::AdminOutbox => "/admin/outbox",
            Route::AdminAttention => "/admin/attention",
            Route::AdminMetrics => "/admin/metrics",
            Route::AdminConsole => "/admin/console",
            Route::AdminConsoleAsset => "/admin/console/{asset}",
            Route::Seed000Jsapi => SEED000_JSAPI_PATH,
        }
    }

    /// Where the route is mounted under `prefix`: `prefix` + [`Route::path_template`], except
    /// for [`Route::Seed000Jsapi`], whose path is seed 000's own whatever the prefix.
    pub fn mount_path(self, prefix: &str) -> String {
        match self {
            Route::Seed000Jsapi => SEED000_JSAPI_PATH.to_owned(),
            other => format!("{prefix}{}", other.path_template()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Precreate => "precreate",
            Route::Notify => "notify",
            Route::OrderStatus => "order_status",
            Route::OpenidSession => "openid_session",
            Route::OpenidAuthorize => "openid_authorize",
            Route::OpenidCallback => "openid_callback",
            Route::OpenidMe => "openid_me",
            Route::Refunds => "refunds",
            Route::AdminOrders => "admin_orders",
            Route::AdminOrder => "admin_order",
            Route::AdminOrderAction => "admin_order_action",
            Route::AdminOutbox => "admin_outbox",
            Route::AdminAttention => "admin_attention",
            Route::AdminMetrics => "admin_metrics",
            Route::AdminConsole => "admin_console",
            Route::AdminConsoleAsset => "admin_console_asset",
            Route::Seed000Jsapi => "seed000_jsapi",
        }
    }
}

/// A configuration the engine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The prefix is not `/` followed by path segments.
    #[error("invalid route prefix {0:?}: it must start with '/' and not end with one")]
    Prefix(String),
    /// A limit or interval is zero.
    #[error("invalid setting {0}: must be greater than zero")]
    Setting(&'static str),
    /// The [`OpenidConfig`] cannot work.
    #[error("invalid openid configuration: {0}")]
    Openid(String),
    /// The admin token cannot be used.
    #[error("invalid admin token: {0}")]
    AdminToken(String),
}

/// How the engine behaves; set through [`EngineBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) prefix: String,
    pub(crate) notify_body_limit: usize,
    pub(crate) precreate_body_limit: usize,
    pub(crate) query_upstream_on_status: bool,
    /// The status route asks the upstream about one order at most once per this interval.
    pub(crate) status_query_interval: Duration,
    /// A `prepay_id` is reused only if it stays valid at least this long.
    pub(crate) prepay_reuse_margin: time::Duration,
    pub(crate) reconcile_after: Duration,
    pub(crate) reconcile_every: Duration,
    /// Upstream queries per reconcile pass.
    pub(crate) reconcile_budget: u32,
    /// The waits between queries of an order that stays open upstream; the last repeats.
    pub(crate) reconcile_backoff: Vec<Duration>,
    /// The name of the lease that lets one instance reconcile a shared store.
    pub(crate) reconcile_lease: String,
    /// How long bookkeeping rows are kept.
    pub(crate) retention: Retention,
    pub(crate) dispatch_every: Duration,
    /// The seed-000 route's time budget, when it is mounted.
    pub(crate) seed000_budget: Option<Duration>,
    /// The longest an adapter waits for a request body.
    pub(crate) body_read_timeout: Duration,
}

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    provider: Arc<dyn Provider>,
    store: Arc<dyn OrderStore>,
    policy: Arc<dyn CheckoutPolicy>,
    hook: Option<Arc<dyn EventHook>>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    openid: Option<OpenidConfig>,
    admin_token: Option<AdminToken>,
}

impl EngineBuilder {
    /// Mounts the operator routes (`{prefix}/orders/{out_trade_no}/refunds`), which require
    /// `Authorization: Bearer <token>`. Without a token they are not mounted.
    #[must_use]
    pub fn admin_token(mut self, token: AdminToken) -> Self {
        self.admin_token = Some(token);
        self
    }

    /// Mounts the openid routes (`{prefix}/openid/…`) and lets precreate take the openid from
    /// a token, as `config` says. Without it those paths are the app's, and precreate takes the
    /// body's `openid` (the seeds' behaviour).
    #[must_use]
    pub fn openid(mut self, config: OpenidConfig) -> Self {
        self.openid = Some(config);
        self
    }

    /// Sets the route prefix (default `/wxpay`); `""` mounts the routes at the root.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// Sets the checkout policy (default [`AmountRange::default`]).
    #[must_use]
    pub fn checkout_policy(mut self, policy: Arc<dyn CheckoutPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the hook that receives paid events, at least once each (and no refund events:
    /// use [`EngineBuilder::event_hook`] for those). Replaces an event hook set before.
    #[must_use]
    pub fn paid_hook(mut self, hook: Arc<dyn PaidHook>) -> Self {
        self.hook = Some(Arc::new(events::PaidOnly(hook)));
        self
    }

    /// Sets the hook that receives every event (paid, refund succeeded, closed, abnormal), at
    /// least once each. Replaces a paid hook set before.
    #[must_use]
    pub fn event_hook(mut self, hook: Arc<dyn EventHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Sets the notification body limit (default 64 KiB).
    #[must_use]
    pub fn notify_body_limit(mut self, bytes: usize) -> Self {
        self.settings.notify_body_limit = bytes;
        self
    }

    /// Sets the precreate body limit (default 16 KiB).
    #[must_use]
    pub fn precreate_body_limit(mut self, bytes: usize) -> Self {
        self.settings.precreate_body_limit = bytes;
        self
    }

    /// Whether the status route asks the upstream about a `PENDING` order and applies a payment
    /// it reports (default true): a page polling the status learns of the payment even when the
    /// notification is late.
    #[must_use]
    pub fn query_upstream_on_status(mut self, enabled: bool) -> Self {
        self.settings.query_upstream_on_status = enabled;
        self
    }

    /// The least time between two upstream queries the status route makes for one order
    /// (default 2 s), whoever polls: a page polling every second, or a stranger polling in a
    /// loop, costs the merchant's API quota at most one query per order per interval. Within
    /// it the route answers from the store.
    #[must_use]
    pub fn status_query_interval(mut self, interval: Duration) -> Self {
        self.settings.status_query_interval = interval;
        self
    }

    /// How old a `PENDING` order must be before reconciliation queries it (default 5 min), and
    /// how often the background reconciler runs (default 1 min).
    #[must_use]
    pub fn reconcile(mut self, after: Duration, every: Duration) -> Self {
        self.settings.reconcile_after = after;
        self.settings.reconcile_every = every;
        self
    }

    /// The most upstream queries one reconcile pass makes (default
    /// [`DEFAULT_RECONCILE_BUDGET`]); the next pass goes on where it stopped.
    #[must_use]
    pub fn reconcile_budget(mut self, queries: u32) -> Self {
        self.settings.reconcile_budget = queries;
        self
    }

    /// How long reconciliation waits before asking again about an order the upstream says is
    /// still open: the first wait, the second, …; the last repeats (default
    /// [`DEFAULT_RECONCILE_BACKOFF`]: 1 min, 5 min, 30 min, then hourly). Empty: ask on every
    /// pass.
    #[must_use]
    pub fn reconcile_backoff(mut self, waits: impl IntoIterator<Item = Duration>) -> Self {
        self.settings.reconcile_backoff = waits.into_iter().collect();
        self
    }

    /// The name of the store lease the reconciler holds while it works (default
    /// [`RECONCILE_LEASE`]). Instances that share a store reconcile one at a time when they
    /// share the name, as they do by default; engines that share a database but not their
    /// work (tests, say) each give their own.
    #[must_use]
    pub fn reconcile_lease(mut self, name: impl Into<String>) -> Self {
        self.settings.reconcile_lease = name.into();
        self
    }

    /// How long inbox entries, delivered events and mismatches are kept (default 30, 30 and
    /// 90 days); reconciliation deletes older ones at most hourly. Orders and refunds are kept
    /// for ever.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.settings.retention = retention;
        self
    }

    /// How often the background dispatcher looks for undelivered paid events (default 5 s;
    /// a payment wakes it at once).
    #[must_use]
    pub fn dispatch_every(mut self, every: Duration) -> Self {
        self.settings.dispatch_every = every;
        self
    }

    /// Mounts seed 000's own route, `POST /wx_payment.WxPaymentService/jsapi` (outside the
    /// prefix): the membership service's contract (`{openid, amount}` in,
    /// `{timestamp, nonceStr, package, signType, paySign}` out, grpc-gateway's errors, an answer
    /// within 4.5 s), on the same policy, store and notify route as `{prefix}/precreate`, so
    /// that its mini program works unchanged. Off by default.
    #[must_use]
    pub fn seed000_compat(mut self, enabled: bool) -> Self {
        self.settings.seed000_budget = enabled.then_some(seed000::BUDGET);
        self
    }

    /// With [`Self::seed000_compat`]: the seed-000 route's time budget instead of 4.5 s (keep
    /// it under the 5 s the seed's client waits).
    #[must_use]
    pub fn seed000_budget(mut self, budget: Duration) -> Self {
        if self.settings.seed000_budget.is_some() {
            self.settings.seed000_budget = Some(budget);
        }
        self
    }

    /// How long the adapters wait for a request body before answering `408` (default 10 s):
    /// a client that sends its body slowly, or never, holds a connection no longer than this.
    #[must_use]
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.settings.body_read_timeout = timeout;
        self
    }

    /// Replaces the clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Result<Engine, EngineError> {
        let prefix = &self.settings.prefix;
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/')) {
            return Err(EngineError::Prefix(prefix.clone()));
        }
        for (name, value) in [
            ("notify_body_limit", self.settings.notify_body_limit),
            ("precreate_body_limit", self.settings.precreate_body_limit),
        ] {
            if value == 0 {
                return Err(EngineError::Setting(name));
            }
        }
        for (name, value) in [
            ("reconcile_every", self.settings.reconcile_every),
            ("dispatch_every", self.settings.dispatch_every),
        ] {
            if value.is_zero() {
                return Err(EngineError::Setting(name));
            }
        }
        let openid = self
            .openid
            .map(|config| config.into_settings(prefix))
            .transpose()?;
        Ok(Engine {
            inner: Arc::new(Inner {
                openid,
                admin_token: self.admin_token,
                provider: self.provider,
                store: self.store,
                policy: self.policy,
                hook: self.hook,
                clock: self.clock,
                settings: self.settings,
                paid_signal: tokio::sync::Notify::new(),
                status_queries: status::QueryThrottle::default(),
                reconcile_walk: reconcile::Walk::default(),
                last_prune: std::sync::Mutex::new(None),
                metrics: metrics::Metrics::default(),
                last_backlog_alert: std::sync::Mutex::new(None),
                instance_id: format!(
                    "{}-{}",
                    std::process::id(),
                    crate::nonce::random_alphanumeric(12)
                ),
            }),
        })
    }
}

/// The wxpay engine. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) store: Arc<dyn OrderStore>,
    pub(crate) policy: Arc<dyn CheckoutPolicy>,
    pub(crate) hook: Option<Arc<dyn EventHook>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    /// The openid routes' settings, when configured.
    pub(crate) openid: Option<openid::OpenidSettings>,
    /// The operator's token; the admin routes are mounted only with one.
    pub(crate) admin_token: Option<AdminToken>,
    /// Wakes the paid-event dispatcher when an order has just been paid.
    pub(crate) paid_signal: tokio::sync::Notify,
    /// When the status route last asked the upstream about each order.
    pub(crate) status_queries: status::QueryThrottle,
    /// Where reconciliation stopped, and when it may ask about each waiting order again.
    pub(crate) reconcile_walk: reconcile::Walk,
    /// When this engine last pruned.
    pub(crate) last_prune: std::sync::Mutex<Option<time::OffsetDateTime>>,
    /// The counters the metrics route reports.
    pub(crate) metrics: metrics::Metrics,
    /// When this engine last raised the outbox-backlog alert.
    pub(crate) last_backlog_alert: std::sync::Mutex<Option<time::OffsetDateTime>>,
    /// This instance's name in the store's event claims and leases.
    pub(crate) instance_id: String,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("provider", &self.inner.provider.name())
            .field("store", &self.inner.store)
            .field("prefix", &self.inner.settings.prefix)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts building an engine over an upstream and a store.
    pub fn builder(provider: Arc<dyn Provider>, store: Arc<dyn OrderStore>) -> EngineBuilder {
        EngineBuilder {
            provider,
            store,
            policy: Arc::new(AmountRange::default()),
            hook: None,
            clock: clock::system(),
            openid: None,
            admin_token: None,
            settings: Settings {
                prefix: DEFAULT_PREFIX.to_owned(),
                notify_body_limit: DEFAULT_NOTIFY_BODY_LIMIT,
                precreate_body_limit: DEFAULT_PRECREATE_BODY_LIMIT,
                query_upstream_on_status: true,
                status_query_interval: DEFAULT_STATUS_QUERY_INTERVAL,
                prepay_reuse_margin: time::Duration::minutes(10),
                reconcile_after: Duration::from_secs(5 * 60),
                reconcile_every: Duration::from_secs(60),
                reconcile_budget: reconcile::DEFAULT_RECONCILE_BUDGET,
                reconcile_backoff: reconcile::DEFAULT_RECONCILE_BACKOFF.to_vec(),
                reconcile_lease: RECONCILE_LEASE.to_owned(),
                retention: Retention::default(),
                dispatch_every: Duration::from_secs(5),
                seed000_budget: None,
                body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            },
        }
    }

    /// The route prefix, without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.inner.settings.prefix
    }

    /// The upstream provider.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.inner.provider
    }

    /// The order store.
    pub fn store(&self) -> &Arc<dyn OrderStore> {
        &self.inner.store
    }

    /// Which of the engine's routes `path` is, whatever the method (a wrong method gets a 405
    /// from [`Engine::handle`]); `None` when the request belongs to the app.
    pub fn route(&self, _method: &Method, path: &str) -> Option<Route> {
        if self.inner.settings.seed000_budget.is_some() && path == SEED000_JSAPI_PATH {
            return Some(Route::Seed000Jsapi);
        }
        let rest = path.strip_prefix(self.prefix())?;
        let openid = self.inner.openid.is_some();
        if self.inner.admin_token.is_some() {
            if let Some(number) = rest
                .strip_prefix("/orders/")
                .and_then(|tail| tail.strip_suffix("/refunds"))
                && !number.is_empty()
                && !number.contains('/')
            {
                return Some(Route::Refunds);
            }
            if let Some(route) = rest.strip_prefix("/admin").and_then(admin_api::route) {
                return Some(route);
            }
        }
        match rest {
            "/precreate" => Some(Route::Precreate),
            "/notify" => Some(Route::Notify),
            "/openid/session" if openid => Some(Route::OpenidSession),
            "/openid/authorize" if openid => Some(Route::OpenidAuthorize),
            "/openid/callback" if openid => Some(Route::OpenidCallback),
            "/openid/me" if openid => Some(Route::OpenidMe),
            _ => {
                let number = rest.strip_prefix("/orders/")?;
                (!number.is_empty() && !number.contains('/')).then_some(Route::OrderStatus)
            }
        }
    }

    /// The routes this engine answers (the openid ones only with an [`OpenidConfig`]), for
    /// adapters that register routes one by one.
    pub fn routes(&self) -> Vec<Route> {
        let mut routes = Route::PAYMENT.to_vec();
        if self.inner.openid.is_some() {
            routes.extend(Route::OPENID);
        }
        if self.inner.admin_token.is_some() {
            routes.extend(Route::ADMIN);
        }
        if self.inner.settings.seed000_budget.is_some() {
            routes.push(Route::Seed000Jsapi);
        }
        routes
    }

    /// The most body bytes a route reads (0 for `GET` routes, which read none).
    pub fn body_limit(&self, route: Route) -> usize {
        match route {
            Route::Notify => self.inner.settings.notify_body_limit,
            Route::Precreate | Route::Seed000Jsapi => self.inner.settings.precreate_body_limit,
            Route::OpenidSession => SESSION_BODY_LIMIT,
            Route::Refunds => REFUND_BODY_LIMIT,
            Route::AdminOrderAction => admin_api::ACTION_BODY_LIMIT,
            Route::OrderStatus
            | Route::OpenidAuthorize
            | Route::OpenidCallback
            | Route::OpenidMe
            | Route::AdminOrders
            | Route::AdminOrder
            | Route::AdminOutbox
            | Route::AdminAttention
            | Route::AdminMetrics
            | Route::AdminConsole
            | Route::AdminConsoleAsset => 0,
        }
    }

    /// How long an adapter waits for a request's body ([`EngineBuilder::body_read_timeout`]).
    pub fn body_read_timeout(&self) -> Duration {
        self.inner.settings.body_read_timeout
    }

    /// The reply for a body that did not arrive within [`Engine::body_read_timeout`]: 408, in
    /// the provider's failure shape for notifications (so the upstream retries).
    pub fn body_read_timed_out(&self, route: Route) -> Response<Bytes> {
        let message = format!(
            "the request body did not arrive within {} ms",
            self.body_read_timeout().as_millis()
        );
        self.body_error(
            route,
            StatusCode::REQUEST_TIMEOUT,
            "BODY_READ_TIMEOUT",
            message,
        )
    }

    /// The reply for a body over [`Engine::body_limit`]: 413, in the provider's failure shape
    /// for notifications.
    pub fn payload_too_large(&self, route: Route) -> Response<Bytes> {
        let message = format!("request body exceeds {} bytes", self.body_limit(route));
        self.body_error(
            route,
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            message,
        )
    }

    /// A refusal of a request's body in the shape of `route`: the provider's failure reply on
    /// the notify route (so the upstream retries), gRPC-gateway's on the seed-000 route, the
    /// engine's JSON error elsewhere.
    fn body_error(
        &self,
        route: Route,
        status: StatusCode,
        code: &str,
        message: String,
    ) -> Response<Bytes> {
        match route {
            Route::Notify => self.inner.provider.failure_reply(status, &message),
            Route::Seed000Jsapi => seed000::engine_error(&reply::error(status, code, message)),
            _ => reply::error(status, code, message),
        }
    }

    /// Answers a request to one of the engine's routes. The body must already be read within
    /// [`Engine::body_limit`]; the engine checks the limit again.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let path = request.uri().path().to_owned();
        let Some(route) = self.route(request.method(), &path) else {
            return reply::error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such wxpay route");
        };
        let span = tracing::info_span!(
            "wxpay",
            route = route.name(),
            provider = self.inner.provider.name(),
            status = tracing::field::Empty,
            out_trade_no = tracing::field::Empty,
        );
        async move {
            let response = if !route.allows(request.method()) {
                let allowed = route
                    .methods()
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut response = reply::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    format!("use {allowed}"),
                );
                if let Ok(allow) = http::HeaderValue::from_str(&allowed) {
                    response.headers_mut().insert(http::header::ALLOW, allow);
                }
                response
            } else if request.body().len() > self.body_limit(route)
                && request.method() == Method::POST
            {
                self.payload_too_large(route)
            } else {
                let client_ip = client_ip(request.headers(), request.extensions());
                let query = request.uri().query();
                match (route, &self.inner.openid) {
                    (Route::OpenidSession, Some(openid)) => {
                        openid::session(&self.inner, openid, request.headers(), request.body())
                            .await
                    }
                    (Route::OpenidAuthorize, Some(openid)) => {
                        openid::authorize(&self.inner, openid, query)
                    }
                    (Route::OpenidCallback, Some(openid)) => {
                        openid::callback(&self.inner, openid, request.headers(), query).await
                    }
                    (Route::OpenidMe, Some(openid)) => {
                        openid::me(&self.inner, openid, request.headers())
                    }
                    _ => {
                        self.handle_payment_route(route, &path, &request, client_ip)
                            .await
                    }
                }
            };
            tracing::Span::current().record("status", response.status().as_u16());
            response
        }
        .instrument(span)
        .await
    }

    async fn handle_payment_route(
        &self,
        route: Route,
        path: &str,
        request: &Request<Bytes>,
        client_ip: Option<IpAddr>,
    ) -> Response<Bytes> {
        match route {
            Route::Precreate => {
                precreate::handle(&self.inner, request.headers(), request.body(), client_ip).await
            }
            Route::Seed000Jsapi => {
                let budget = self
                    .inner
                    .settings
                    .seed000_budget
                    .unwrap_or(seed000::BUDGET);
                seed000::handle(
                    Arc::clone(&self.inner),
                    request.headers().clone(),
                    request.body().clone(),
                    client_ip,
                    budget,
                )
                .await
            }
            Route::Notify => notify::handle(&self.inner, request.headers(), request.body()).await,
            Route::OrderStatus => {
                let number = path.rsplit('/').next().unwrap_or_default().to_owned();
                status::handle(&self.inner, &number, request.headers()).await
            }
            Route::Refunds => {
                let number = path.rsplit('/').nth(1).unwrap_or_default();
                admin::refunds(
                    &self.inner,
                    request.method(),
                    number,
                    request.headers(),
                    request.body(),
                )
                .await
            }
            Route::AdminOrders
            | Route::AdminOrder
            | Route::AdminOrderAction
            | Route::AdminOutbox
            | Route::AdminAttention
            | Route::AdminMetrics => admin_api::handle(&self.inner, route, path, request).await,
            Route::AdminConsole | Route::AdminConsoleAsset => console::serve(path),
            // The openid routes are only routed with their settings (see `route`).
            _ => reply::error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such wxpay route"),
        }
    }

    /// Verifies a notification with the provider, for apps that handle notifications
    /// themselves. Nothing is stored; pass the result to [`Engine::apply_notification`] to mark
    /// the order paid exactly as the notify route does.
    pub async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        if body.len() > self.inner.settings.notify_body_limit {
            let message = format!(
                "notification body exceeds {} bytes",
                self.inner.settings.notify_body_limit
            );
            return Err(NotificationRejection::new(
                crate::provider::RejectionKind::TooLarge,
                message.clone(),
                self.inner
                    .provider
                    .failure_reply(StatusCode::PAYLOAD_TOO_LARGE, &message),
            ));
        }
        self.inner.provider.verify_notification(headers, body).await
    }

    /// Applies a verified notification (dedupe, cross-check, `PAID` + outbox) and returns the
    /// reply the provider expects: its acknowledgement once the effect is durable, else a
    /// failure reply so that the upstream retries.
    pub async fn apply_notification(&self, notification: &PaymentNotification) -> Response<Bytes> {
        notify::apply(&self.inner, notification).await
    }

    /// Queries `PENDING` orders older than the reconcile age, applies payments the upstream
    /// reports, and closes those whose `prepay_id` has expired; then queries `PROCESSING`
    /// refunds older than the reconcile age and records where they stand (a refund the
    /// upstream never recorded is submitted again under its number); and, at most hourly,
    /// prunes bookkeeping rows past their [`Retention`].
    ///
    /// With several instances on one store, only the holder of the reconciler's lease
    /// ([`RECONCILE_LEASE`]) does this; on the others the report says
    /// [`lease_held_elsewhere`](ReconcileReport::lease_held_elsewhere).
    pub async fn reconcile(&self) -> ReconcileReport {
        reconcile::pass(&self.inner).await
    }

    /// Gives back the leases this instance holds (the reconciler's), so another instance on
    /// the same store takes over at its next pass instead of after the lease expires. Call it
    /// on graceful shutdown, after stopping the background tasks.
    pub async fn release_leases(&self) -> Result<(), crate::store::StoreError> {
        self.inner
            .store
            .release_lease(
                &self.inner.settings.reconcile_lease,
                &self.inner.instance_id,
            )
            .await
    }

    /// This engine instance's name in the store's claims and leases: random, new at each start.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Refunds `request.amount` of the paid order `out_trade_no`: reserves it in the store
    /// (`PROCESSING`, its amount held against the order) and then asks the upstream. A
    /// definite refusal closes it ([`RefundError::Refused`]); a timeout or upstream failure
    /// leaves it `PROCESSING` for the reconciler. The same `out_refund_no` again returns the
    /// stored refund (`created: false`) without asking the upstream.
    ///
    /// ```no_run
    /// # async fn demo(engine: wxpay_core::engine::Engine) -> Result<(), Box<dyn std::error::Error>> {
    /// use wxpay_core::engine::RefundRequest;
    /// use wxpay_core::fields::{Amount, OutTradeNo, RefundReason};
    ///
    /// let mut request = RefundRequest::new(Amount::from_fen(500)?);
    /// request.reason = Some(RefundReason::try_from("out of stock")?);
    /// let outcome = engine
    ///     .refund(&OutTradeNo::try_from("20240501ORDER0001")?, request)
    ///     .await?;
    /// println!("{} is {}", outcome.refund.out_refund_no, outcome.refund.status);
    /// # Ok(()) }
    /// ```
    pub async fn refund(
        &self,
        out_trade_no: &crate::fields::OutTradeNo,
        request: RefundRequest,
    ) -> Result<RefundOutcome, RefundError> {
        refund::refund(&self.inner, out_trade_no, request).await
    }

    /// Starts the paid-event dispatcher (when a [`PaidHook`] is set) and the reconciler on the
    /// current tokio runtime. They stop when the returned handle is dropped.
    pub fn spawn_background_tasks(&self) -> BackgroundTasks {
        events::spawn(self.inner.clone())
    }
}

/// The payer's address, for WeChat Pay's `scene_info`: the first `X-Forwarded-For` hop a proxy
/// added, else the connection's peer address when the adapter recorded it.
fn client_ip(headers: &HeaderMap, extensions: &http::Extensions) -> Option<IpAddr> {
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .and_then(|first| first.trim().parse().ok());
    forwarded.or_else(|| extensions.get::<ClientAddr>().map(|addr| addr.0))
}

/// The peer address of the connection a request came on; adapters insert it as a request
/// extension when they know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

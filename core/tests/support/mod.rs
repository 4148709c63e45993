//! Shared harness of the engine tests: the engine served on loopback behind a tiny axum
//! adapter, talking to a real `wxpay-sandbox`, over a store that fails on demand and a provider
//! that counts its upstream calls.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;
use wxpay_core::engine::{AdminToken, Engine, EngineBuilder, HookError, PaidHook};
use wxpay_core::fields::{NotifyUrl, OutRefundNo, OutTradeNo};
use wxpay_core::order::{NewOrder, Order, OrderStatus, Transition};
use wxpay_core::provider::v3::V3Provider;
use wxpay_core::provider::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    Prepay, Provider, ProviderError,
};
use wxpay_core::refund::{NewRefund, Refund, RefundStatus, RefundUpdate};
use wxpay_core::store::{
    Event, InboxOutcome, InsertOutcome, MemoryStore, Mismatch, OrderCursor, OrderStore, PaidEvent,
    PruneBefore, PruneReport, RefundReservation, RefundUpdateOutcome, StoreError,
    TransitionOutcome,
};
use wxpay_core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformPublicKey, PlatformTrust, V3Client,
};
use wxpay_sandbox::{PayOutcome, PayRequest, Sandbox, SandboxConfig, SimulatedOutcome};

/// A bounded wait for anything the tests wait on.
pub const WAIT: Duration = Duration::from_secs(10);

/// The admin token of harnesses built [`HarnessBuilder::operator`].
pub const ADMIN_TOKEN: &str = "harness-admin-token-0123456789abcdefgh";

pub const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

// ---------------------------------------------------------------------------------------------
// Upstream

/// A V3 client for the sandbox's merchant.
pub fn v3_client(sandbox: &Sandbox) -> V3Client {
    let merchant = sandbox.merchant();
    let platform = sandbox.platform();
    let credentials = MerchantCredentials::new(
        &merchant.mchid,
        &merchant.appid,
        &merchant.serial,
        MerchantPrivateKey::from_pem(merchant.private_key_pem.as_deref().unwrap()).unwrap(),
    )
    .unwrap();
    let trust = PlatformTrust::public_key(
        PlatformPublicKey::from_pem(&platform.public_key_id, &platform.public_key_pem).unwrap(),
    )
    .unwrap();
    V3Client::builder(
        credentials,
        ApiV3Key::new(sandbox.api_v3_key()).unwrap(),
        trust,
    )
    .base_url(sandbox.base_url())
    .build()
    .unwrap()
}

pub fn v3_provider(sandbox: &Sandbox, notify_url: &str) -> V3Provider {
    V3Provider::new(
        v3_client(sandbox),
        NotifyUrl::parse_for_local_development(notify_url).unwrap(),
    )
}

/// A provider that counts upstream calls and can be told to fail them.
#[derive(Debug)]
pub struct CountingProvider {
    inner: Arc<dyn Provider>,
    pub prepays: AtomicUsize,
    pub queries: AtomicUsize,
    pub closes: AtomicUsize,
    fail_prepay: Mutex<Option<ProviderError>>,
    fail_query: Mutex<Option<ProviderError>>,
    delay_prepay: Mutex<Option<Duration>>,
}

impl CountingProvider {
    pub fn new(inner: Arc<dyn Provider>) -> Self {
        Self {
            inner,
            prepays: AtomicUsize::new(0),
            queries: AtomicUsize::new(0),
            closes: AtomicUsize::new(0),
            fail_prepay: Mutex::new(None),
            fail_query: Mutex::new(None),
            delay_prepay: Mutex::new(None),
        }
    }

    pub fn inner(&self) -> &Arc<dyn Provider> {
        &self.inner
    }

    /// Upstream calls of every kind so far.
    pub fn calls(&self) -> usize {
        self.prepays() + self.queries() + self.closes()
    }

    pub fn prepays(&self) -> usize {
        self.prepays.load(Ordering::SeqCst)
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    pub fn closes(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }

    /// The next prepay fails with `error` (without reaching the upstream).
    pub fn fail_next_prepay(&self, error: ProviderError) {
        *self.fail_prepay.lock().unwrap() = Some(error);
    }

    /// The next prepay waits `delay` before it reaches the upstream (a slow upstream).
    pub fn delay_next_prepay(&self, delay: Duration) {
        *self.delay_prepay.lock().unwrap() = Some(delay);
    }

    /// Queries fail with `error` until cleared with `None`.
    pub fn fail_queries(&self, error: Option<ProviderError>) {
        *self.fail_query.lock().unwrap() = error;
    }
}

#[async_trait]
impl Provider for CountingProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn merchant(&self) -> MerchantIdentity {
        self.inner.merchant()
    }

    async fn prepay(
        &self,
        order: &Order,
        client_ip: Option<IpAddr>,
    ) -> Result<Prepay, ProviderError> {
        self.prepays.fetch_add(1, Ordering::SeqCst);
        let injected = self.fail_prepay.lock().unwrap().take();
        if let Some(error) = injected {
            return Err(error);
        }
        let delay = self.delay_prepay.lock().unwrap().take();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.inner.prepay(order, client_ip).await
    }

    fn client_params(&self, order: &Order, prepay_id: &str) -> Option<PaymentParams> {
        self.inner.client_params(order, prepay_id)
    }

    async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        self.inner.verify_notification(headers, body).await
    }

    fn acknowledge(&self) -> Response<Bytes> {
        self.inner.acknowledge()
    }

    fn failure_reply(&self, status: StatusCode, message: &str) -> Response<Bytes> {
        self.inner.failure_reply(status, message)
    }

    async fn query(&self, order: &Order) -> Result<PaymentReport, ProviderError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let injected = self.fail_query.lock().unwrap().clone();
        if let Some(error) = injected {
            return Err(error);
        }
        self.inner.query(order).await
    }

    async fn close(&self, order: &Order) -> Result<(), ProviderError> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        self.inner.close(order).await
    }

    fn can_query(&self) -> bool {
        self.inner.can_query()
    }

    fn refunds_supported(&self) -> bool {
        self.inner.refunds_supported()
    }

    async fn refund(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<wxpay_core::provider::RefundReport, ProviderError> {
        self.inner.refund(order, refund).await
    }

    async fn query_refund(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<wxpay_core::provider::RefundReport, ProviderError> {
        self.inner.query_refund(order, refund).await
    }
}

// ---------------------------------------------------------------------------------------------
// Store

/// A store operation that [`FailingStore`] can be told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Get,
    Transition,
    RecordNotification,
    HasNotification,
    UndeliveredEvents,
    MarkDelivered,
    ListStale,
    RecordMismatch,
    ReserveRefund,
    UpdateRefund,
}

/// A [`MemoryStore`] that fails chosen operations on demand, like a database that went away.
#[derive(Debug, Default)]
pub struct FailingStore {
    pub inner: MemoryStore,
    failing: Mutex<HashSet<Op>>,
    /// How many operations failed so far.
    pub failures: AtomicUsize,
    /// Closes a `PENDING` order just before a `Paid` transition reaches it, as a concurrent
    /// reconciler would.
    pub close_before_paid: AtomicBool,
}

impl FailingStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&self, op: Op) {
        self.failing.lock().unwrap().insert(op);
    }

    pub fn recover(&self, op: Op) {
        self.failing.lock().unwrap().remove(&op);
    }

    pub fn recover_all(&self) {
        self.failing.lock().unwrap().clear();
    }

    fn check(&self, op: Op) -> Result<(), StoreError> {
        if self.failing.lock().unwrap().contains(&op) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Backend(Box::new(std::io::Error::other(
                format!("injected failure of {op:?}"),
            ))));
        }
        Ok(())
    }

    /// The stored order (panics if absent).
    pub async fn order(&self, no: &str) -> Order {
        self.inner
            .get(&OutTradeNo::try_from(no).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {no} not stored"))
    }

    pub async fn try_order(&self, no: &str) -> Option<Order> {
        self.inner
            .get(&OutTradeNo::try_from(no).unwrap())
            .await
            .unwrap()
    }

    /// Every stored order, whatever its status.
    pub async fn all_orders(&self) -> Vec<Order> {
        let far = OffsetDateTime::now_utc() + time::Duration::days(3650);
        let mut all = Vec::new();
        for status in OrderStatus::ALL {
            all.extend(self.inner.list_stale(status, far, u32::MAX).await.unwrap());
        }
        all
    }

    /// The order's paid events.
    pub async fn events(&self, no: &str) -> Vec<PaidEvent> {
        self.all_events(no)
            .await
            .into_iter()
            .filter_map(|event| event.as_paid().cloned())
            .collect()
    }

    /// The order's events, paid and refund.
    pub async fn all_events(&self, no: &str) -> Vec<Event> {
        self.inner
            .events_for_order(&OutTradeNo::try_from(no).unwrap())
            .await
            .unwrap()
    }

    pub async fn mismatches_of(&self, no: &str) -> Vec<Mismatch> {
        self.inner
            .mismatches(&OutTradeNo::try_from(no).unwrap())
            .await
            .unwrap()
    }

    /// The undelivered paid events.
    pub async fn undelivered(&self) -> Vec<PaidEvent> {
        self.inner
            .undelivered_events(1000)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|event| event.as_paid().cloned())
            .collect()
    }
}

#[async_trait]
impl OrderStore for FailingStore {
    async fn insert_if_absent(&self, order: NewOrder) -> Result<InsertOutcome, StoreError> {
        self.check(Op::Insert)?;
        self.inner.insert_if_absent(order).await
    }

    async fn get(&self, out_trade_no: &OutTradeNo) -> Result<Option<Order>, StoreError> {
        self.check(Op::Get)?;
        self.inner.get(out_trade_no).await
    }

    async fn transition_with_notification(
        &self,
        out_trade_no: &OutTradeNo,
        expected: OrderStatus,
        transition: Transition,
        notification_id: Option<&str>,
    ) -> Result<TransitionOutcome, StoreError> {
        self.check(Op::Transition)?;
        if matches!(transition, Transition::Paid { .. })
            && self.close_before_paid.swap(false, Ordering::SeqCst)
        {
            self.inner
                .transition(out_trade_no, OrderStatus::Pending, Transition::Closed)
                .await
                .unwrap();
        }
        self.inner
            .transition_with_notification(out_trade_no, expected, transition, notification_id)
            .await
    }

    async fn record_notification(
        &self,
        event_id: &str,
        out_trade_no: Option<&OutTradeNo>,
    ) -> Result<InboxOutcome, StoreError> {
        self.check(Op::RecordNotification)?;
        self.inner.record_notification(event_id, out_trade_no).await
    }

    async fn has_notification(&self, event_id: &str) -> Result<bool, StoreError> {
        self.check(Op::HasNotification)?;
        self.inner.has_notification(event_id).await
    }

    async fn undelivered_events(&self, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.check(Op::UndeliveredEvents)?;
        self.inner.undelivered_events(limit).await
    }

    async fn events_for_order(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Event>, StoreError> {
        self.inner.events_for_order(out_trade_no).await
    }

    async fn mark_delivered(&self, event_id: &str) -> Result<(), StoreError> {
        self.check(Op::MarkDelivered)?;
        self.inner.mark_delivered(event_id).await
    }

    async fn claim_undelivered_events(
        &self,
        holder: &str,
        ttl: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        self.check(Op::UndeliveredEvents)?;
        self.inner
            .claim_undelivered_events(holder, ttl, limit)
            .await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.inner.acquire_lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(name, holder).await
    }

    async fn list_stale(
        &self,
        status: OrderStatus,
        updated_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        self.check(Op::ListStale)?;
        self.inner.list_stale(status, updated_before, limit).await
    }

    async fn list_orders(
        &self,
        filter: &wxpay_core::store::OrderFilter,
        before: Option<&wxpay_core::store::ListCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        self.inner.list_orders(filter, before, limit).await
    }

    async fn prune(&self, before: &PruneBefore) -> Result<PruneReport, StoreError> {
        self.inner.prune(before).await
    }

    async fn list_stale_after(
        &self,
        status: OrderStatus,
        updated_before: OffsetDateTime,
        after: Option<&OrderCursor>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        self.check(Op::ListStale)?;
        self.inner
            .list_stale_after(status, updated_before, after, limit)
            .await
    }

    async fn record_mismatch(
        &self,
        out_trade_no: &OutTradeNo,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.check(Op::RecordMismatch)?;
        self.inner.record_mismatch(out_trade_no, detail).await
    }

    async fn mismatches(&self, out_trade_no: &OutTradeNo) -> Result<Vec<Mismatch>, StoreError> {
        self.inner.mismatches(out_trade_no).await
    }
    async fn recent_mismatches(&self, limit: u32) -> Result<Vec<Mismatch>, StoreError> {
        self.inner.recent_mismatches(limit).await
    }
    async fn notifications_for_order(
        &self,
        no: &OutTradeNo,
    ) -> Result<Vec<wxpay_core::store::InboxEntry>, StoreError> {
        self.inner.notifications_for_order(no).await
    }
    async fn count_orders_by_status(
        &self,
    ) -> Result<Vec<(wxpay_core::order::OrderStatus, u64)>, StoreError> {
        self.inner.count_orders_by_status().await
    }

    async fn reserve_refund(&self, refund: NewRefund) -> Result<RefundReservation, StoreError> {
        self.check(Op::ReserveRefund)?;
        self.inner.reserve_refund(refund).await
    }

    async fn update_refund(
        &self,
        out_refund_no: &OutRefundNo,
        update: RefundUpdate,
        notification_id: Option<&str>,
    ) -> Result<RefundUpdateOutcome, StoreError> {
        self.check(Op::UpdateRefund)?;
        self.inner
            .update_refund(out_refund_no, update, notification_id)
            .await
    }

    async fn get_refund(&self, out_refund_no: &OutRefundNo) -> Result<Option<Refund>, StoreError> {
        self.check(Op::Get)?;
        self.inner.get_refund(out_refund_no).await
    }

    async fn refunds_for_order(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Vec<Refund>, StoreError> {
        self.check(Op::Get)?;
        self.inner.refunds_for_order(out_trade_no).await
    }

    async fn list_stale_refunds(
        &self,
        status: RefundStatus,
        updated_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        self.check(Op::ListStale)?;
        self.inner
            .list_stale_refunds(status, updated_before, limit)
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Paid hook

/// A hook that records every event it is given, failing the first `fail_first` calls.
#[derive(Debug, Default)]
pub struct RecordingHook {
    pub events: Mutex<Vec<PaidEvent>>,
    pub calls: AtomicUsize,
    fail_first: AtomicUsize,
}

impl RecordingHook {
    pub fn failing_first(n: usize) -> Self {
        Self {
            fail_first: AtomicUsize::new(n),
            ..Self::default()
        }
    }

    pub fn received(&self) -> Vec<PaidEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Waits until events for all of `numbers` were received.
    pub async fn wait_for(&self, numbers: &[&str]) -> Vec<PaidEvent> {
        wait_until("paid events", || {
            let got = self.received();
            numbers
                .iter()
                .all(|no| got.iter().any(|e| e.out_trade_no.as_str() == *no))
                .then_some(got)
        })
        .await
    }
}

#[async_trait]
impl PaidHook for RecordingHook {
    async fn on_paid(&self, event: &PaidEvent) -> Result<(), HookError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failed = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Err("the app is not ready".into());
        }
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// An event hook that records every event, paid or refund.
#[derive(Debug, Default)]
pub struct RecordingEvents {
    pub events: Mutex<Vec<Event>>,
}

impl RecordingEvents {
    pub fn received(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until at least `count` events were received.
    pub async fn wait_for_count(&self, count: usize) -> Vec<Event> {
        wait_until("events", || {
            let got = self.received();
            (got.len() >= count).then_some(got)
        })
        .await
    }
}

#[async_trait]
impl wxpay_core::engine::EventHook for RecordingEvents {
    async fn on_event(&self, event: &Event) -> Result<(), HookError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// Polls `check` until it yields, for at most [`WAIT`].
pub async fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Replies

/// An engine reply, read back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn from_response(response: Response<Bytes>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} reply is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts a JSON error `{"code": "UPPER_SNAKE", "message": "…"}` with this status and code.
    pub fn assert_error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let json = self.json();
        assert_eq!(json["code"], code, "{json}");
        let message = json["message"].as_str().expect("a message");
        assert!(!message.is_empty());
        let code = json["code"].as_str().unwrap();
        assert!(
            code.chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()),
            "{code}"
        );
        json
    }

    pub fn out_trade_no(&self) -> String {
        self.json()["out_trade_no"].as_str().unwrap().to_owned()
    }

    /// The payer's side of a successful precreate reply.
    pub fn pay_request(&self, outcome: SimulatedOutcome) -> PayRequest {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let mut request: PayRequest = serde_json::from_slice(&self.body).unwrap();
        request.outcome = Some(outcome);
        request
    }
}

pub async fn call(
    engine: &Engine,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.into()).unwrap();
    Reply::from_response(engine.handle(request).await)
}

pub async fn precreate_on(engine: &Engine, body: &Value) -> Reply {
    call(
        engine,
        Method::POST,
        &format!("{}/precreate", engine.prefix()),
        &[("content-type", "application/json")],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// The harness

/// What the adapter saw of one notification and what it answered.
#[derive(Debug, Clone)]
pub struct SeenNotification {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: StatusCode,
}

/// The adapter's view of notifications: what arrived, and whether every acknowledgement was
/// backed by a durable inbox entry when it was sent.
#[derive(Debug, Default)]
pub struct NotifyLog {
    pub seen: Mutex<Vec<SeenNotification>>,
    /// Answer 500 without handing notifications to the engine (to capture them).
    pub swallow: AtomicBool,
    /// Acknowledgements sent while the notification's id was not in the store's inbox.
    pub violations: Mutex<Vec<String>>,
}

impl NotifyLog {
    pub fn seen(&self) -> Vec<SeenNotification> {
        self.seen.lock().unwrap().clone()
    }

    pub fn assert_no_violation(&self) {
        let violations = self.violations.lock().unwrap();
        assert!(violations.is_empty(), "{violations:?}");
    }
}

#[derive(Clone)]
struct AdapterState {
    engine: Engine,
    store: Arc<FailingStore>,
    log: Arc<NotifyLog>,
}

async fn adapter(
    State(state): State<AdapterState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let engine = &state.engine;
    let (parts, body) = request.into_parts();
    let Some(route) = engine.route(&parts.method, parts.uri.path()) else {
        return StatusCode::NOT_FOUND.into_response_bytes();
    };
    let bytes = match axum::body::to_bytes(body, engine.body_limit(route)).await {
        Ok(bytes) => bytes,
        Err(_) => return engine.payload_too_large(route).map(axum::body::Body::from),
    };
    let is_notify = route == wxpay_core::engine::Route::Notify;
    if is_notify && state.log.swallow.load(Ordering::SeqCst) {
        state.log.seen.lock().unwrap().push(SeenNotification {
            headers: parts.headers.clone(),
            body: bytes,
            status: StatusCode::INTERNAL_SERVER_ERROR,
        });
        return StatusCode::INTERNAL_SERVER_ERROR.into_response_bytes();
    }
    let headers = parts.headers.clone();
    let response = engine
        .handle(Request::from_parts(parts, bytes.clone()))
        .await;
    if is_notify {
        if response.status().is_success() {
            // Nothing may be acknowledged that is not durably stored.
            let id = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if !state.store.inner.has_notification(&id).await.unwrap() {
                state
                    .log
                    .violations
                    .lock()
                    .unwrap()
                    .push(format!("notification {id:?} acknowledged but not recorded"));
            }
        }
        state.log.seen.lock().unwrap().push(SeenNotification {
            headers,
            body: bytes,
            status: response.status(),
        });
    }
    response.map(axum::body::Body::from)
}

trait IntoResponseBytes {
    fn into_response_bytes(self) -> axum::response::Response;
}

impl IntoResponseBytes for StatusCode {
    fn into_response_bytes(self) -> axum::response::Response {
        let mut response = axum::response::Response::new(axum::body::Body::empty());
        *response.status_mut() = self;
        response
    }
}

/// Serves `engine` on `listener` until the returned task is aborted.
fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    store: Arc<FailingStore>,
    log: Arc<NotifyLog>,
) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .fallback(adapter)
        .with_state(AdapterState { engine, store, log });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

type Configure = Box<dyn FnOnce(EngineBuilder) -> EngineBuilder>;

/// Builds a [`Harness`].
pub struct HarnessBuilder {
    sandbox: SandboxConfig,
    unreachable_notify: bool,
    operator: bool,
    configure: Configure,
}

impl HarnessBuilder {
    #[must_use]
    pub fn sandbox(mut self, config: SandboxConfig) -> Self {
        self.sandbox = config;
        self
    }

    /// The engine has the admin token [`ADMIN_TOKEN`] ([`Harness::status_as_operator`]).
    #[must_use]
    pub fn operator(mut self) -> Self {
        self.operator = true;
        self
    }

    /// The notify URL points at a closed port: notifications never arrive.
    #[must_use]
    pub fn unreachable_notify(mut self) -> Self {
        self.unreachable_notify = true;
        self
    }

    #[must_use]
    pub fn configure(
        mut self,
        configure: impl FnOnce(EngineBuilder) -> EngineBuilder + 'static,
    ) -> Self {
        self.configure = Box::new(configure);
        self
    }

    pub async fn start(self) -> Harness {
        let sandbox = Sandbox::start(self.sandbox).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let notify_url = if self.unreachable_notify {
            let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = closed.local_addr().unwrap().port();
            drop(closed);
            format!("http://127.0.0.1:{port}/wxpay/notify")
        } else {
            format!("http://{addr}/wxpay/notify")
        };
        let provider = Arc::new(CountingProvider::new(Arc::new(v3_provider(
            &sandbox,
            &notify_url,
        ))));
        let store = Arc::new(FailingStore::new());
        let mut builder = (self.configure)(Engine::builder(provider.clone(), store.clone()));
        if self.operator {
            builder = builder.admin_token(AdminToken::new(ADMIN_TOKEN).unwrap());
        }
        let engine = builder.build().unwrap();
        let log = Arc::new(NotifyLog::default());
        let server = serve(listener, engine.clone(), store.clone(), log.clone());
        Harness {
            sandbox,
            store,
            provider,
            engine,
            notify_url,
            base_url: format!("http://{addr}"),
            log,
            server,
        }
    }
}

/// A sandbox, and an engine on loopback whose upstream is that sandbox.
pub struct Harness {
    pub sandbox: Sandbox,
    pub store: Arc<FailingStore>,
    pub provider: Arc<CountingProvider>,
    pub engine: Engine,
    pub notify_url: String,
    /// Where the engine is served, e.g. `http://127.0.0.1:1234`.
    pub base_url: String,
    pub log: Arc<NotifyLog>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Harness {
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder {
            sandbox: SandboxConfig::for_tests(),
            unreachable_notify: false,
            operator: false,
            configure: Box::new(|builder| builder),
        }
    }

    pub async fn start() -> Harness {
        Self::builder().start().await
    }

    /// Another engine over the same provider and store (a restart).
    pub fn engine_builder(&self) -> EngineBuilder {
        Engine::builder(self.provider.clone(), self.store.clone())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        call(&self.engine, method, path, headers, body).await
    }

    pub async fn precreate(&self, body: &Value) -> Reply {
        precreate_on(&self.engine, body).await
    }

    /// Precreates `amount` fen for [`OPENID`] under `no` and checks it succeeded.
    pub async fn precreate_ok(&self, no: &str, amount: u64) -> Reply {
        let reply = self
            .precreate(&serde_json::json!({"openid": OPENID, "amount": amount, "out_trade_no": no}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply
    }

    /// The status route as the operator (the harness was built [`HarnessBuilder::operator`]).
    pub async fn status_as_operator(&self, no: &str) -> Reply {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        self.call(
            Method::GET,
            &format!("/wxpay/orders/{no}"),
            &[("authorization", bearer.as_str())],
            Bytes::new(),
        )
        .await
    }

    /// The status route as anyone (no token).
    pub async fn status(&self, no: &str) -> Reply {
        self.call(
            Method::GET,
            &format!("/wxpay/orders/{no}"),
            &[],
            Bytes::new(),
        )
        .await
    }

    /// The payer pays the order of a precreate reply.
    pub async fn pay(&self, precreate: &Reply) -> PayOutcome {
        self.sandbox
            .pay(precreate.pay_request(SimulatedOutcome::Success))
            .await
            .unwrap()
    }

    /// Precreates and pays `no`; waits until the notification was acknowledged.
    pub async fn paid_order(&self, no: &str, amount: u64) -> PayOutcome {
        let reply = self.precreate_ok(no, amount).await;
        let outcome = self.pay(&reply).await;
        self.sandbox.wait_for_delivery(no, WAIT).await.unwrap();
        outcome
    }
}

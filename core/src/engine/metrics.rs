//! Prometheus metrics at `GET {prefix}/admin/metrics` (behind the admin token, which
//! Prometheus sends with `authorization: {credentials: …}`): notifications by outcome and
//! reason, upstream calls by endpoint and outcome with their latency, and, read from the store
//! at scrape time, orders by status and the outbox backlog.
//!
//! Counters live in the engine (one set per engine, shared by its clones); the store-derived
//! gauges are computed per scrape, so several instances on one database all report the same
//! order counts and each its own traffic.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::provider::{ProviderError, ProviderErrorKind, RejectionKind};
use crate::store::Event;

use super::{Inner, reply};

/// The most undelivered events a scrape counts (the outbox route counts as many).
const BACKLOG_COUNT_LIMIT: u32 = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    /// `accepted` (acknowledged: applied, duplicate or recorded), `refused` (not verified),
    /// `failed` (verified but not durable yet: the upstream retries).
    outcome: &'static str,
    /// Why it was refused or failed; `none` when accepted.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    /// `prepay`, `query`, `close`, `refund`, `query_refund`.
    endpoint: &'static str,
    /// `ok`, or the class of the failure (`rejected`, `timeout`, …).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

fn latency_histogram() -> Histogram {
    // 5 ms to ~20 s: loopback sandboxes to an upstream at its timeout.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// The engine's counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    notifications: Family<NotificationLabels, Counter>,
    upstream_calls: Family<UpstreamLabels, Counter>,
    upstream_seconds: Family<EndpointLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            notifications: Family::default(),
            upstream_calls: Family::default(),
            upstream_seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Metrics {
    /// Counts a notification the upstream's signature check refused.
    pub(super) fn notification_refused(&self, kind: RejectionKind) {
        let reason = match kind {
            RejectionKind::TooLarge => "too_large",
            RejectionKind::BadSignature => "bad_signature",
            RejectionKind::Probe => "probe",
            RejectionKind::Malformed => "malformed",
            RejectionKind::Unavailable => "unavailable",
        };
        self.notifications
            .get_or_create(&NotificationLabels {
                outcome: "refused",
                reason,
            })
            .inc();
    }

    /// Counts a verified notification by the reply it got.
    pub(super) fn notification_answered(&self, status: StatusCode) {
        let labels = if status.is_success() {
            NotificationLabels {
                outcome: "accepted",
                reason: "none",
            }
        } else if status.is_server_error() {
            NotificationLabels {
                outcome: "failed",
                reason: "store_unavailable",
            }
        } else {
            NotificationLabels {
                outcome: "failed",
                reason: "unusable_report",
            }
        };
        self.notifications.get_or_create(&labels).inc();
    }

    /// Runs one upstream call, counting it by outcome and timing it.
    pub(super) async fn upstream<T>(
        &self,
        endpoint: &'static str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let result = call.await;
        self.upstream_seconds
            .get_or_create(&EndpointLabels { endpoint })
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => match error.kind {
                ProviderErrorKind::Rejected => "rejected",
                ProviderErrorKind::Unavailable => "unavailable",
                ProviderErrorKind::Timeout => "timeout",
                ProviderErrorKind::BadResponse => "bad_response",
                ProviderErrorKind::Transport => "transport",
                ProviderErrorKind::Local => "local",
                ProviderErrorKind::Unsupported => "unsupported",
                ProviderErrorKind::NotFound => "not_found",
            },
        };
        self.upstream_calls
            .get_or_create(&UpstreamLabels { endpoint, outcome })
            .inc();
        result
    }
}

/// The Prometheus text exposition of the engine's counters and the store's state now.
pub(super) async fn scrape(inner: &Inner) -> Response<Bytes> {
    let (counts, undelivered) = match (
        inner.store.count_orders_by_status().await,
        inner.store.undelivered_events(BACKLOG_COUNT_LIMIT).await,
    ) {
        (Ok(counts), Ok(undelivered)) => (counts, undelivered),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "reading the store for metrics failed");
            return reply::store_unavailable();
        }
    };
    let mut registry = Registry::with_prefix("wxpay");
    let metrics = &inner.metrics;
    registry.register(
        "notifications",
        "Notifications received on the notify route, by outcome and reason",
        metrics.notifications.clone(),
    );
    registry.register(
        "upstream_calls",
        "Calls to the payment upstream, by endpoint and outcome",
        metrics.upstream_calls.clone(),
    );
    registry.register(
        "upstream_call_seconds",
        "Latency of calls to the payment upstream, by endpoint",
        metrics.upstream_seconds.clone(),
    );

    let orders = Family::<StatusLabels, Gauge>::default();
    for (status, count) in &counts {
        orders
            .get_or_create(&StatusLabels {
                status: status.as_str(),
            })
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    registry.register("orders", "Orders in the store, by status", orders);

    let backlog = Gauge::<i64>::default();
    backlog.set(i64::try_from(undelivered.len()).unwrap_or(i64::MAX));
    registry.register(
        "outbox_undelivered_events",
        "Events not yet delivered to the app's hook (counted up to 10000)",
        backlog,
    );
    let oldest = undelivered.iter().map(Event::created_at).min();
    let age = Gauge::<f64, AtomicU64>::default();
    age.set(oldest.map_or(0.0, |at| (inner.clock.now() - at).as_seconds_f64().max(0.0)));
    registry.register(
        "outbox_oldest_undelivered_age_seconds",
        "Age of the oldest undelivered event (0 when none)",
        age,
    );

    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        return reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "METRICS_ENCODING",
            "the metrics could not be encoded",
        );
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Bytes::from(text))
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

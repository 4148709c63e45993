//! Notification delivery with WeChat-style retries, fault injection and a delivery log.
//!
//! The engine is upstream-agnostic: an upstream module builds a [`Notification`] (body, how to
//! sign it, what counts as an acknowledgement) and [`deliver`] posts it on the retry schedule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{NotifyFaults, RetrySchedule};
use crate::error::SandboxError;
use crate::state::{Shared, lock};

/// What a delivery attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryKind {
    /// The notification itself (first attempt or a retry).
    Real,
    /// An injected duplicate of the notification (sequential or concurrent).
    Duplicate,
    /// A probe with a deliberately invalid signature: API v3 `WECHATPAY/SIGNTEST/`; QFPay a
    /// wrong `X-QF-SIGN`; API v2, the gateway and weidoufu a copy of the body with a wrong
    /// `sign`.
    Probe,
}

/// One delivery attempt in the log.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// The notification id (API v3: the `id` field of the notification body; API v2, the
    /// gateway, QFPay and weidoufu, whose notifications carry none: a sandbox-generated UUID).
    pub notification_id: String,
    /// The order the notification is about, as the shop numbers it (`out_trade_no`; for the
    /// gateway its `biz_order_id`, for weidoufu its `out_order_no`).
    pub out_trade_no: String,
    /// Real attempt, duplicate or probe.
    pub kind: DeliveryKind,
    /// 1-based attempt number, counted separately per kind.
    pub attempt: u32,
    /// Where it was posted.
    pub url: String,
    /// When the attempt started (wall clock).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// When the attempt started, measured on a monotonic clock from the sandbox's start.
    #[serde(serialize_with = "ser_millis", rename = "elapsed_ms")]
    pub elapsed: Duration,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// The transport error, if it did not answer.
    pub error: Option<String>,
    /// The start of the receiver's answer (at most 512 bytes, lossy UTF-8).
    pub response_body: String,
    /// Whether this attempt counts as acknowledged (API v3: status 200 or 204; API v2: 200 with XML
    /// `return_code` `SUCCESS`; the gateway: see `gateway::CALLBACK_RECEIVED`; QFPay and
    /// weidoufu: 200 with the body `SUCCESS`, surrounding whitespace ignored).
    pub acknowledged: bool,
    /// For real attempts: whether no further real attempt follows (acknowledged, or the
    /// schedule is exhausted).
    pub final_attempt: bool,
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The delivery log with a change signal for waiters.
pub(crate) struct DeliveryLog {
    records: Mutex<Vec<DeliveryRecord>>,
    version: watch::Sender<u64>,
}

impl DeliveryLog {
    pub(crate) fn new() -> Self {
        Self {
            records: Mutex::new(Vec::new()),
            version: watch::Sender::new(0),
        }
    }

    pub(crate) fn push(&self, record: DeliveryRecord) {
        tracing::debug!(?record, "notification delivery attempt");
        lock(&self.records).push(record);
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn snapshot(&self) -> Vec<DeliveryRecord> {
        lock(&self.records).clone()
    }

    /// Waits until `check` finds what it wants in the log.
    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&[DeliveryRecord]) -> Option<T>,
    ) -> Result<T, SandboxError> {
        let mut rx = self.version.subscribe();
        let fut = async {
            loop {
                if let Some(found) = check(&lock(&self.records)) {
                    return found;
                }
                if rx.changed().await.is_err() {
                    // The sender lives as long as the log; just wait for the timeout.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| SandboxError::Timeout(what.to_owned()))
    }
}

/// Builds the signature headers of one attempt; `probe` asks for a `WECHATPAY/SIGNTEST/` one.
pub(crate) type SignFn =
    dyn Fn(&[u8], bool) -> Result<Vec<(&'static str, String)>, SandboxError> + Send + Sync;

/// Decides from the status and body whether the receiver acknowledged.
pub(crate) type AckFn = fn(u16, &[u8]) -> bool;

/// A notification ready to deliver.
#[derive(Clone)]
pub(crate) struct Notification {
    pub(crate) id: String,
    pub(crate) out_trade_no: String,
    pub(crate) url: String,
    pub(crate) content_type: &'static str,
    pub(crate) body: Bytes,
    /// For protocols signed in the body (API v2, the gateway, weidoufu): the forged copy a
    /// probe sends.
    pub(crate) probe_body: Option<Bytes>,
    pub(crate) sign: Arc<SignFn>,
    pub(crate) ack: AckFn,
}

struct AttemptResult {
    status: Option<u16>,
    error: Option<String>,
    body: String,
    acknowledged: bool,
}

async fn send_once(shared: &Shared, n: &Notification, probe: bool) -> AttemptResult {
    let body = match (&n.probe_body, probe) {
        (Some(forged), true) => forged.clone(),
        _ => n.body.clone(),
    };
    let headers = match (n.sign)(&body, probe) {
        Ok(h) => h,
        Err(e) => {
            return AttemptResult {
                status: None,
                error: Some(format!("signing failed: {e}")),
                body: String::new(),
                acknowledged: false,
            };
        }
    };
    let mut req = shared
        .http
        .post(&n.url)
        .header("Content-Type", n.content_type)
        .header("User-Agent", "Mozilla/4.0")
        .header("Accept", "*/*");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    match req.body(body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            let shown = &body[..body.len().min(512)];
            AttemptResult {
                status: Some(status),
                error: None,
                body: String::from_utf8_lossy(shown).into_owned(),
                acknowledged: (n.ack)(status, &body),
            }
        }
        Err(e) => AttemptResult {
            status: None,
            error: Some(e.to_string()),
            body: String::new(),
            acknowledged: false,
        },
    }
}

async fn attempt(
    shared: &Shared,
    n: &Notification,
    kind: DeliveryKind,
    number: u32,
    last_possible: bool,
) -> bool {
    let at = OffsetDateTime::now_utc();
    let elapsed = shared.started.elapsed();
    let r = send_once(shared, n, kind == DeliveryKind::Probe).await;
    let final_attempt = kind == DeliveryKind::Real && (r.acknowledged || last_possible);
    shared.deliveries.push(DeliveryRecord {
        notification_id: n.id.clone(),
        out_trade_no: n.out_trade_no.clone(),
        kind,
        attempt: number,
        url: n.url.clone(),
        at,
        elapsed,
        status: r.status,
        error: r.error,
        response_body: r.body,
        acknowledged: r.acknowledged,
        final_attempt,
    });
    r.acknowledged
}

/// Delivers `n`: optional delay and probe, the first attempt (with concurrent duplicates),
/// retries on `schedule` until acknowledged, then sequential duplicates.
pub(crate) async fn deliver(
    shared: Arc<Shared>,
    n: Notification,
    schedule: RetrySchedule,
    faults: NotifyFaults,
) {
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    if faults.signtest_probe {
        attempt(&shared, &n, DeliveryKind::Probe, 1, false).await;
    }
    let mut concurrent = JoinSet::new();
    for i in 0..faults.concurrent_duplicates {
        let shared = Arc::clone(&shared);
        let n = n.clone();
        concurrent.spawn(async move {
            attempt(
                &shared,
                &n,
                DeliveryKind::Duplicate,
                i.saturating_add(1),
                false,
            )
            .await;
        });
    }
    let delays = schedule.delays();
    let mut number: u32 = 1;
    let mut index = 0usize;
    let acknowledged = loop {
        let last = index >= delays.len();
        if attempt(&shared, &n, DeliveryKind::Real, number, last).await {
            break true;
        }
        let Some(delay) = delays.get(index) else {
            break false;
        };
        tokio::time::sleep(*delay).await;
        index += 1;
        number = number.saturating_add(1);
    };
    while concurrent.join_next().await.is_some() {}
    if acknowledged {
        for i in 0..faults.duplicates {
            let number = faults
                .concurrent_duplicates
                .saturating_add(i)
                .saturating_add(1);
            attempt(&shared, &n, DeliveryKind::Duplicate, number, false).await;
        }
    }
}

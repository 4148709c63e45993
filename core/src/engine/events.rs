//! Events (an order paid, a refund settled) reach the app through an [`EventHook`], at least
//! once: from the store's outbox, retried with backoff, and again after a restart. A
//! [`PaidHook`] is an event hook that only wants paid events.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::store::{Event, PaidEvent};

use super::Inner;

/// The error a hook returns to have an event delivered again later.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Receives the outbox's events: an order paid, a refund succeeded, closed or abnormal. Called
/// at least once per event, possibly more (after a crash between the hook and the delivery
/// mark): dedupe on [`Event::event_id`].
#[async_trait]
pub trait EventHook: Send + Sync + fmt::Debug {
    /// Handles one event; an error has it delivered again with backoff.
    async fn on_event(&self, event: &Event) -> Result<(), HookError>;

    /// Something needs an operator (a mismatch, a double payment, an unknown order, an
    /// abnormal refund): called once per alert, in the background, after the store recorded
    /// it. The default does nothing (the alert is also logged at `error`, target
    /// `wxpay::alert`).
    async fn on_alert(&self, alert: &super::Alert) {
        let _ = alert;
    }
}

/// Receives paid events only. Called at least once per event, possibly more (after a crash
/// between the hook and the delivery mark): dedupe on [`PaidEvent::event_id`].
#[async_trait]
pub trait PaidHook: Send + Sync + fmt::Debug {
    /// Handles one event; an error has it delivered again with backoff.
    async fn on_paid(&self, event: &PaidEvent) -> Result<(), HookError>;
}

/// A [`PaidHook`] as an [`EventHook`]: other events are delivered to it as done.
#[derive(Debug)]
pub(super) struct PaidOnly(pub(super) Arc<dyn PaidHook>);

#[async_trait]
impl EventHook for PaidOnly {
    async fn on_event(&self, event: &Event) -> Result<(), HookError> {
        match event {
            Event::Paid(paid) => self.0.on_paid(paid).await,
            _ => Ok(()),
        }
    }
}

/// The engine's background tasks (paid-event dispatcher, reconciler). Dropping the handle stops
/// them.
#[derive(Debug)]
pub struct BackgroundTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl BackgroundTasks {
    /// Stops the tasks now.
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        self.abort();
    }
}

pub(super) fn spawn(inner: Arc<Inner>) -> BackgroundTasks {
    let mut tasks = Vec::new();
    if let Some(hook) = inner.hook.clone() {
        tasks.push(tokio::spawn(dispatch_forever(inner.clone(), hook)));
    }
    tasks.push(tokio::spawn(reconcile_forever(inner)));
    BackgroundTasks { tasks }
}

const BATCH: u32 = 100;
/// How long a dispatcher's claim on an event keeps other instances from delivering it. This
/// instance re-claims its own at will (its back-off decides); another instance delivers the
/// event once the claim expires, e.g. after this one crashed with the event in hand.
pub const EVENT_CLAIM: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

async fn dispatch_forever(inner: Arc<Inner>, hook: Arc<dyn EventHook>) {
    let every = inner.settings.dispatch_every;
    let mut backoff = every;
    loop {
        let all_delivered = dispatch_once(&inner, hook.as_ref()).await;
        let pause = if all_delivered {
            backoff = every;
            every
        } else {
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            backoff
        };
        // A payment wakes the dispatcher at once; otherwise it polls, which also delivers
        // events left over from before a restart.
        let _ = tokio::time::timeout(pause, inner.paid_signal.notified()).await;
    }
}

/// Delivers undelivered events once; true when every one was delivered.
pub(super) async fn dispatch_once(inner: &Inner, hook: &dyn EventHook) -> bool {
    let events = match inner
        .store
        .claim_undelivered_events(&inner.instance_id, EVENT_CLAIM, BATCH)
        .await
    {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, "reading undelivered events failed");
            return false;
        }
    };
    let mut all_delivered = true;
    let mut failed = Vec::new();
    for event in &events {
        let event_id = event.event_id();
        match hook.on_event(event).await {
            Ok(()) => {
                if let Err(error) = inner.store.mark_delivered(event_id).await {
                    tracing::warn!(%error, event_id, "marking an event delivered failed");
                    all_delivered = false;
                }
            }
            Err(error) => {
                tracing::warn!(%error, event_id, "event hook failed; will retry");
                all_delivered = false;
                failed.push(event);
            }
        }
    }
    // Oldest first, so the first failure is the one that has waited longest.
    if let Some(oldest) = failed.first() {
        alert_if_backlogged(inner, oldest, failed.len());
    }
    all_delivered
}

/// Raises [`Alert::OutboxBacklog`](super::Alert::OutboxBacklog) when `oldest` has waited past
/// the backlog age, once per that age.
fn alert_if_backlogged(inner: &Inner, oldest: &Event, failed_in_pass: usize) {
    let now = inner.clock.now();
    let waited = now - oldest.created_at();
    if waited < super::alerts::OUTBOX_BACKLOG_AGE {
        return;
    }
    {
        let mut last = inner
            .last_backlog_alert
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| now - at < super::alerts::OUTBOX_BACKLOG_AGE) {
            return;
        }
        *last = Some(now);
    }
    super::alerts::raise(
        inner,
        super::Alert::OutboxBacklog {
            out_trade_no: oldest.out_trade_no().to_string(),
            event_id: oldest.event_id().to_owned(),
            oldest_age_seconds: waited.whole_seconds(),
            failed_in_pass,
        },
    );
}

async fn reconcile_forever(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(inner.settings.reconcile_every).await;
        let report = super::reconcile::pass(&inner).await;
        if report.checked > 0 || report.refunds.checked > 0 {
            tracing::info!(?report, "reconciled pending orders and processing refunds");
        }
    }
}

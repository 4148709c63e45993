//! Work that one instance at a time must do on a shared store (reconciliation, pruning): each
//! instance asks for a named lease in the store before the work and renews it as it goes; the
//! holder keeps it while it runs, and another instance takes over once the holder stops
//! renewing (a crash, a shutdown) and the lease has expired.

use std::time::Duration;

use super::Inner;

/// The lease of the reconciler: whoever holds it queries `PENDING` orders and `PROCESSING`
/// refunds, and prunes.
pub const RECONCILE_LEASE: &str = "wxpay.reconcile";

/// The shortest lease the reconciler takes. It is renewed at each pass and each page of a pass,
/// so it lapses only when its holder stopped.
const MIN_RECONCILE_LEASE: Duration = Duration::from_secs(30);

/// How long the reconciler's lease lasts: three reconcile intervals, and at least
/// [`MIN_RECONCILE_LEASE`], so a holder that is merely busy keeps it.
pub(super) fn reconcile_ttl(inner: &Inner) -> Duration {
    inner
        .settings
        .reconcile_every
        .saturating_mul(3)
        .max(MIN_RECONCILE_LEASE)
}

/// Whether this instance holds (took or renewed) the lease `name` for `ttl`. A store failure
/// counts as not holding it: the work waits for the next interval.
pub(super) async fn hold(inner: &Inner, name: &str, ttl: Duration) -> Result<bool, ()> {
    match inner
        .store
        .acquire_lease(name, &inner.instance_id, ttl)
        .await
    {
        Ok(held) => Ok(held),
        Err(error) => {
            tracing::warn!(%error, lease = name, "taking the lease failed; retried next interval");
            Err(())
        }
    }
}

//! Faults of the upstream while it creates a payment, for every protocol's prepay route: a
//! server error that creates nothing, or an answer slower than the client waits for (the
//! payment is created, the client only never hears of it).
//!
//! Both are what a merchant's server meets from a real upstream: the first must be retried,
//! the second leaves an order upstream that the merchant's retry (the same parameters get the
//! same prepay) or its reconciler (query, then close) resolves.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use http::{StatusCode, header};

use crate::state::{Shared, lock};

/// Faults applied to the next prepay requests of any protocol, counted down one per request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrepayFaults {
    /// Answer this many prepay requests `500 SYSTEM_ERROR` without creating anything.
    pub fail_next: u32,
    /// Create the payment of this many prepay requests, then answer only after
    /// [`slow_delay`](Self::slow_delay).
    pub slow_next: u32,
    /// How long a slow answer takes.
    pub slow_delay: Duration,
}

/// What to do with one prepay request.
enum Fault {
    None,
    Fail,
    Slow(Duration),
}

fn take(shared: &Shared) -> Fault {
    let mut faults = lock(&shared.prepay_faults);
    if faults.fail_next > 0 {
        faults.fail_next -= 1;
        Fault::Fail
    } else if faults.slow_next > 0 {
        faults.slow_next -= 1;
        Fault::Slow(faults.slow_delay)
    } else {
        Fault::None
    }
}

/// `route` with the prepay faults applied (inside the protocol's own authentication and
/// signing, so an injected error is signed like a real one).
pub(crate) fn applied(
    shared: &Arc<Shared>,
    route: MethodRouter<Arc<Shared>>,
) -> MethodRouter<Arc<Shared>> {
    route.layer(middleware::from_fn_with_state(Arc::clone(shared), apply))
}

async fn apply(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match take(&shared) {
        Fault::None => next.run(req).await,
        Fault::Fail => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"code":"SYSTEM_ERROR","message":"系统错误"}"#,
        )
            .into_response(),
        Fault::Slow(delay) => {
            let response = next.run(req).await;
            tokio::time::sleep(delay).await;
            response
        }
    }
}

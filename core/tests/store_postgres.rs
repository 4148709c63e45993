//! The conformance suite on [`SqlxStore`] with PostgreSQL.
//!
//! Reads the database URL from `WXPAY_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`). Without it the
//! tests are skipped with a note, except under `CI=true`, where a missing URL fails them.
//! The suite uses fresh order numbers and deletes nothing, so the database may be shared.
#![cfg(all(feature = "postgres", feature = "testing"))]

use std::sync::Arc;

use wxpay_core::clock::Clock;
use wxpay_core::store::testing::{OpenStore, WithClock};
use wxpay_core::store::{OrderStore, SqlxStore, SqlxStoreOptions};

const URL_VAR: &str = "WXPAY_TEST_POSTGRES_URL";

/// The database URL, or `None` (skip) when it is not configured outside CI.
fn database_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{URL_VAR} is not set: under CI=true the PostgreSQL store tests must run")
        }
        _ => {
            eprintln!(
                "skipped: set {URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL store tests"
            );
            None
        }
    }
}

/// A store on the test database (small pools: every test has its own, and tests run in
/// parallel against one server).
async fn connect(url: String) -> SqlxStore {
    let options = SqlxStoreOptions::default().max_connections(4);
    SqlxStore::connect_with(&url, options)
        .await
        .unwrap_or_else(|err| panic!("connect to {URL_VAR}: {err}"))
}

fn opener() -> Option<impl OpenStore> {
    let url = database_url()?;
    let url_for_clock = url.clone();
    Some(WithClock {
        open: move || {
            let url = url.clone();
            async move { Arc::new(connect(url).await) as Arc<dyn OrderStore> }
        },
        open_with_clock: move |clock: Arc<dyn Clock>| {
            let url = url_for_clock.clone();
            async move { Arc::new(connect(url).await.with_clock(clock)) as Arc<dyn OrderStore> }
        },
    })
}

wxpay_core::store_conformance_tests!(opener());

#[tokio::test]
async fn connects_to_the_right_backend() {
    let Some(url) = database_url() else { return };
    let store = SqlxStore::connect(&url).await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    store.close().await;
}

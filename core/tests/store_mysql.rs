//! The conformance suite on [`SqlxStore`] with MySQL/MariaDB.
//!
//! Reads the database URL from `WXPAY_TEST_MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306/test`). Without it the
//! tests are skipped with a note, except under `CI=true`, where a missing URL fails them.
//! The suite uses fresh order numbers and deletes nothing, so the database may be shared.
#![cfg(all(feature = "mysql", feature = "testing"))]

use std::sync::Arc;

use wxpay_core::clock::Clock;
use wxpay_core::store::testing::{OpenStore, WithClock};
use wxpay_core::store::{OrderStore, SqlxStore, SqlxStoreOptions};

const URL_VAR: &str = "WXPAY_TEST_MYSQL_URL";

/// The database URL, or `None` (skip) when it is not configured outside CI.
fn database_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{URL_VAR} is not set: under CI=true the MySQL/MariaDB store tests must run")
        }
        _ => {
            eprintln!(
                "skipped: set {URL_VAR} (e.g. mysql://root@127.0.0.1:3306/test) to run the MySQL/MariaDB store tests"
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
    assert_eq!(store.backend_name(), "mysql");
    store.close().await;
}

/// Several processes opening a fresh database at once all get a working store: MariaDB does not
/// honour the migrator's `GET_LOCK(name, -1)`, so the migrations race (1062 duplicate entry).
#[tokio::test]
async fn concurrent_first_connects_to_a_fresh_database_all_succeed() {
    let Some(url) = database_url() else { return };
    let (server, _) = url.rsplit_once('/').unwrap();
    let name = format!(
        "wxpay_fresh_{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let mut admin = <sqlx::MySqlConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let fresh = format!("{server}/{name}");
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let fresh = fresh.clone();
            tokio::spawn(async move {
                SqlxStore::connect_with(&fresh, SqlxStoreOptions::default().max_connections(2))
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for open in opens {
        results.push(open.await.unwrap());
    }
    sqlx::query(&format!("DROP DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    for result in results {
        let store = result.unwrap_or_else(|err| panic!("a concurrent first connect failed: {err}"));
        store.close().await;
    }
}

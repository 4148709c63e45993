//! The conformance suite on [`SqlxStore`] with SQLite, in a fresh database file.
#![cfg(all(feature = "sqlite", feature = "testing"))]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wxpay_core::store::testing::OpenStore;
use wxpay_core::store::{OrderStore, SqlxStore, StoreError};

/// One database file for this test process, created by the first connect. Every test opens it
/// with its own pool, so the tests also exercise several pools writing to one file at once.
fn database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let path: PathBuf = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "wxpay-store-test-{}-{nanos}.sqlite",
            std::process::id()
        ));
        format!("sqlite://{}", path.display())
    })
}

fn opener() -> Option<impl OpenStore> {
    Some(|| async {
        let store = SqlxStore::connect(database_url())
            .await
            .expect("open the SQLite store");
        Arc::new(store) as Arc<dyn OrderStore>
    })
}

wxpay_core::store_conformance_tests!(opener());

#[tokio::test]
async fn connect_creates_the_file_in_wal_mode() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "wxpay-store-wal-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shop.db");
    assert!(!path.exists());
    let store = SqlxStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    assert!(path.exists(), "the database file is created");
    store.close().await;
    // Reconnecting runs the (already applied) migrations again without error.
    let store = SqlxStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.close().await;
    let wal = std::fs::read(&path).unwrap();
    // Header bytes 18 and 19 are the file-format write and read versions: 2 means WAL.
    assert_eq!((wal[18], wal[19]), (2, 2), "journal_mode is WAL");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn in_memory_database_works() {
    let store = SqlxStore::connect("sqlite::memory:").await.unwrap();
    let order = wxpay_core::store::testing::sample_order();
    let no = order.out_trade_no.clone();
    store.insert_if_absent(order).await.unwrap();
    assert!(store.get(&no).await.unwrap().is_some());
}

#[tokio::test]
async fn unknown_url_schemes_are_refused() {
    for url in ["redis://localhost", "nonsense", "file:///tmp/x.db"] {
        let err = SqlxStore::connect(url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedUrl(_)),
            "{url}: {err:?}"
        );
    }
}

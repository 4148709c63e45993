//! The conformance suite on [`SqlxStore`] with SQLite, in a fresh database file.
#![cfg(all(feature = "sqlite", feature = "testing"))]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wxpay_core::clock::Clock;
use wxpay_core::store::testing::{OpenStore, WithClock};
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

async fn connect() -> SqlxStore {
    SqlxStore::connect(database_url())
        .await
        .expect("open the SQLite store")
}

fn opener() -> Option<impl OpenStore> {
    Some(WithClock {
        open: || async { Arc::new(connect().await) as Arc<dyn OrderStore> },
        open_with_clock: |clock: Arc<dyn Clock>| async move {
            Arc::new(connect().await.with_clock(clock)) as Arc<dyn OrderStore>
        },
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

/// A database created before refunds existed (only migration 900001) keeps its orders and paid
/// events through the refunds migration, and they can be refunded afterwards.
#[tokio::test]
async fn the_refunds_migration_keeps_existing_orders_and_events() {
    use sqlx::Executor as _;
    use wxpay_core::fields::{Amount, OutRefundNo, OutTradeNo};
    use wxpay_core::order::OrderStatus;
    use wxpay_core::refund::NewRefund;
    use wxpay_core::store::RefundReservation;

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "wxpay-store-migrate-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    let first_only = dir.join("migrations");
    std::fs::create_dir_all(&first_only).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/sqlite/900001_wxpay_init.sql"
        ),
        first_only.join("900001_wxpay_init.sql"),
    )
    .unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("old.db").display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(first_only.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        pool.execute(
            "INSERT INTO wxpay_orders (out_trade_no, provider, appid, mchid, openid, amount_fen, \
             currency, description, attach, status, prepay_id, prepay_expires_at, transaction_id, \
             paid_at, payer, failure_reason, version, created_at, updated_at) VALUES \
             ('OLDORDER0001', 'v3', 'wxd678efh567hg6787', '1230000109', 'openid_1', 1999, 'CNY', \
             'coffee', NULL, 'PAID', 'wx_prepay', 1714557600000, '4200000001', 1714550000000, \
             'openid_1', NULL, 2, 1714549000000, 1714550000000); \
             INSERT INTO wxpay_outbox (event_id, out_trade_no, transaction_id, amount_fen, \
             currency, payer, attach, paid_at, created_at, delivered_at) VALUES \
             ('paid-OLDORDER0001', 'OLDORDER0001', '4200000001', 1999, 'CNY', 'openid_1', NULL, \
             1714550000000, 1714550000000, NULL);",
        )
        .await
        .unwrap();
        pool.close().await;
    }

    let store = SqlxStore::connect(&url).await.unwrap();
    let no = OutTradeNo::try_from("OLDORDER0001").unwrap();
    let order = store
        .get(&no)
        .await
        .unwrap()
        .expect("the old order is still there");
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.amount.fen(), 1999);
    assert_eq!(order.transaction_id.as_deref(), Some("4200000001"));
    assert_eq!(
        (
            order.refund_held_fen,
            order.refunded_fen,
            order.refund_count
        ),
        (0, 0, 0)
    );
    let events = store.events_for_order(&no).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].as_paid().unwrap().event_id, "paid-OLDORDER0001");
    let reserved = store
        .reserve_refund(NewRefund {
            out_refund_no: OutRefundNo::generate(),
            out_trade_no: no.clone(),
            amount: Amount::from_fen(1999).unwrap(),
            reason: None,
        })
        .await
        .unwrap();
    assert!(matches!(reserved, RefundReservation::Reserved(_)));
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

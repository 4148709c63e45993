//! Faults a real deployment meets, broken for real against a running shop process.
//!
//! - The database goes away during a notification (PostgreSQL refuses connections and the
//!   shop's are terminated): the notification is answered non-2xx, WeChat Pay (the sandbox)
//!   retries, and once the database is back the order is PAID and the app hears of it once.
//!
//! `WXPAY_TEST_POSTGRES_URL` names the server (its role must be allowed to create databases);
//! without it the tests are skipped with a note, except under `CI=true`, where they fail.

use std::time::Duration;

use sqlx::Connection as _;
use wxpay_sandbox::{PayRequest, RetrySchedule, Sandbox, SandboxConfig};
use wxpay_tests::{
    Running, assert_logged_exactly, database_url_or_skip, example_binary, free_port,
    get_json_authorized, precreate_product, scratch_dir, v3_production_env,
};

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const ADMIN_TOKEN: &str = "faults-admin-token-0123456789abcdefghij";
const WAIT: Duration = Duration::from_secs(60);

/// A database of its own on the server at `server_url`, which the test can take away.
struct OwnDatabase {
    admin: sqlx::PgConnection,
    name: String,
    url: String,
}

impl OwnDatabase {
    async fn create(server_url: &str) -> Self {
        let mut admin = sqlx::PgConnection::connect(server_url).await.unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "wxpay_fault_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000
        );
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let (base, _) = server_url.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        Self { admin, name, url }
    }

    /// Refuses new connections and terminates the open ones: the database is gone.
    async fn go_away(&mut self) {
        let name = &self.name;
        sqlx::raw_sql(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&mut self.admin)
        .await
        .unwrap();
    }

    async fn come_back(&mut self) {
        sqlx::raw_sql(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.name
        ))
        .execute(&mut self.admin)
        .await
        .unwrap();
    }

    async fn drop_it(mut self) {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut self.admin)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_while_the_database_is_away_is_retried_and_applied_once() {
    let Some(server_url) = database_url_or_skip("WXPAY_TEST_POSTGRES_URL") else {
        return;
    };
    let mut database = OwnDatabase::create(&server_url).await;
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .allow_http_notify_url(true)
            .notify_retry_schedule(RetrySchedule::new(vec![Duration::from_millis(500); 60])),
    )
    .await
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = scratch_dir("fault-database-away");
    let mut vars = v3_production_env(&sandbox, &dir, port, false);
    vars.extend([
        ("DATABASE_URL", database.url.clone()),
        ("WXPAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
    ]);
    let mut shop = Running::start(&example_binary("axum_shop"), &dir, &vars);
    shop.wait_healthy(&base, WAIT).await;
    let http = reqwest::Client::new();
    let params = precreate_product(&http, &base, OPENID, "green-tea").await;
    let no = params["out_trade_no"].as_str().unwrap().to_owned();

    database.go_away().await;
    let pay: PayRequest = serde_json::from_value(params).unwrap();
    sandbox.pay(pay).await.unwrap();
    let attempts = sandbox.wait_for_attempts(&no, 3, WAIT).await.unwrap();
    for attempt in &attempts {
        assert!(!attempt.acknowledged, "the store is away: {attempt:?}");
        assert!(
            attempt.status.is_none_or(|status| status >= 500),
            "a retryable answer: {attempt:?}"
        );
    }

    database.come_back().await;
    let delivered = sandbox.wait_for_delivery(&no, WAIT).await.unwrap();
    assert!(delivered.acknowledged, "{delivered:?}");
    let status =
        get_json_authorized(&http, &format!("{base}/wxpay/orders/{no}"), ADMIN_TOKEN).await;
    assert_eq!(status["status"], "PAID", "{status}");
    let event = format!("paid-{no}");
    assert_logged_exactly(&[&shop], &["fulfil it", &event], 1, WAIT).await;
    drop(shop);
    database.drop_it().await;
}

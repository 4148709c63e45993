//! Faults a real deployment meets, broken for real against a running shop process.
//!
//! - The database goes away during a notification (PostgreSQL refuses connections and the
//!   shop's are terminated): the notification is answered non-2xx, WeChat Pay (the sandbox)
//!   retries, and once the database is back the order is PAID and the app hears of it once.
//!
//! - The upstream fails (5xx) or answers later than the shop waits during precreate: the
//!   client gets a clear 5xx within the shop's upstream budget, its retry pays the one payment
//!   the upstream created, and an order nobody retries is closed upstream and locally by the
//!   reconciler (SQLite).
//!
//! `WXPAY_TEST_POSTGRES_URL` names the server (its role must be allowed to create databases);
//! without it the tests are skipped with a note, except under `CI=true`, where they fail.

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use wxpay_sandbox::{PayRequest, PrepayFaults, RetrySchedule, Sandbox, SandboxConfig};
use wxpay_tests::{
    Running, assert_logged_exactly, database_url_or_skip, example_binary, free_port,
    get_json_authorized, precreate_product, scratch_dir, stored_status, v3_production_env,
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

/// `POST /wxpay/precreate` of the catalog's green tea as order `no`: the status and the JSON.
async fn precreate_numbered(
    http: &reqwest::Client,
    base: &str,
    no: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&serde_json::json!({"openid": OPENID, "product_id": "green-tea", "out_trade_no": no}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// How long the sandbox takes to answer a slow prepay: longer than the shop's upstream budget
/// (the clients' 4 s default), so the shop gives up first.
const SLOW_UPSTREAM: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_slow_upstream_during_precreate_is_answered_5xx_and_charged_once() {
    let sandbox = Sandbox::start(SandboxConfig::default().allow_http_notify_url(true))
        .await
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = scratch_dir("fault-slow-upstream");
    let mut vars = v3_production_env(&sandbox, &dir, port, false);
    vars.extend([
        ("WXPAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        // Longer than a slow precreate takes to fail, so the reconciler never closes an order
        // between its timeout and the client's immediate retry.
        ("WXPAY_RECONCILE_AFTER", "8".to_owned()),
        ("WXPAY_RECONCILE_EVERY", "1".to_owned()),
    ]);
    let mut shop = Running::start(&example_binary("axum_shop"), &dir, &vars);
    shop.wait_healthy(&base, WAIT).await;
    let http = reqwest::Client::new();
    // Server errors that created nothing: the shop's client repeats the same request within
    // its budget (the same parameters get the same prepay), so two are absorbed; when all
    // three attempts fail the client hears it, and its retry creates the one payment.
    sandbox.set_prepay_faults(PrepayFaults {
        fail_next: 2,
        ..PrepayFaults::default()
    });
    let (status, body) = precreate_numbered(&http, &base, "FAULTFAIL0001").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sandbox.trade("FAULTFAIL0001").unwrap().prepay_ids.len(), 1);
    sandbox.set_prepay_faults(PrepayFaults {
        fail_next: 3,
        ..PrepayFaults::default()
    });
    let (status, body) = precreate_numbered(&http, &base, "FAULTFAIL0002").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "UPSTREAM_UNAVAILABLE", "{body}");
    assert_eq!(sandbox.trade("FAULTFAIL0002"), None);
    let (status, body) = precreate_numbered(&http, &base, "FAULTFAIL0002").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sandbox.trade("FAULTFAIL0002").unwrap().prepay_ids.len(), 1);

    // Slower than the shop waits, the payment created upstream: the client hears a timeout
    // before the upstream answers, and its retry gets the same prepay, paid once.
    sandbox.set_prepay_faults(PrepayFaults {
        slow_next: 1,
        slow_delay: SLOW_UPSTREAM,
        ..PrepayFaults::default()
    });
    let asked = Instant::now();
    let (status, body) = precreate_numbered(&http, &base, "FAULTSLOW0001").await;
    assert!(
        asked.elapsed() < SLOW_UPSTREAM,
        "the shop answered before the upstream did"
    );
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], "UPSTREAM_TIMEOUT", "{body}");
    assert_eq!(
        stored_status(&http, &base, "FAULTSLOW0001", ADMIN_TOKEN).await,
        "CREATED"
    );
    let created = sandbox.trade("FAULTSLOW0001").unwrap();
    assert_eq!((created.state, created.prepay_ids.len()), ("NOTPAY", 1));
    let (status, params) = precreate_numbered(&http, &base, "FAULTSLOW0001").await;
    assert_eq!(status, 200, "{params}");
    assert_eq!(
        params["package"],
        format!("prepay_id={}", created.prepay_ids[0]),
        "the retry pays the payment the slow call created"
    );
    let pay: PayRequest = serde_json::from_value(params).unwrap();
    sandbox.pay(pay).await.unwrap();
    let delivered = sandbox
        .wait_for_delivery("FAULTSLOW0001", WAIT)
        .await
        .unwrap();
    assert!(delivered.acknowledged, "{delivered:?}");
    assert_eq!(
        stored_status(&http, &base, "FAULTSLOW0001", ADMIN_TOKEN).await,
        "PAID"
    );
    let paid = sandbox.trade("FAULTSLOW0001").unwrap();
    assert_eq!((paid.state, paid.prepay_ids.len()), ("SUCCESS", 1));

    // Slow again, and the client gives up: the reconciler closes the order upstream, so no one
    // pays it later, and here; a late retry is told the order is closed.
    sandbox.set_prepay_faults(PrepayFaults {
        slow_next: 1,
        slow_delay: SLOW_UPSTREAM,
        ..PrepayFaults::default()
    });
    let (status, body) = precreate_numbered(&http, &base, "FAULTSLOW0002").await;
    assert_eq!(status, 504, "{body}");
    let deadline = Instant::now() + WAIT;
    while stored_status(&http, &base, "FAULTSLOW0002", ADMIN_TOKEN).await != "CLOSED" {
        assert!(
            Instant::now() < deadline,
            "the reconciler never closed FAULTSLOW0002"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let closed = sandbox.trade("FAULTSLOW0002").unwrap();
    assert_eq!((closed.state, closed.prepay_ids.len()), ("CLOSED", 1));
    let (status, body) = precreate_numbered(&http, &base, "FAULTSLOW0002").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "ORDER_CLOSED", "{body}");
    assert_eq!(
        sandbox.order_numbers(),
        [
            "FAULTFAIL0001",
            "FAULTFAIL0002",
            "FAULTSLOW0001",
            "FAULTSLOW0002"
        ],
        "no order reached the upstream twice"
    );
}

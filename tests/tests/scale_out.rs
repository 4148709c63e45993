//! Two instances on one database: the axum shop and the actix shop, as two processes, on one
//! PostgreSQL and on one MariaDB database, behind a splitter that plays the load balancer for
//! WeChat Pay's notifications (each notification the sandbox sends is fanned out as 48
//! concurrent copies, half to each shop). What must hold:
//!
//! - 48 concurrent duplicates of one notification across both → every copy acknowledged, one
//!   transition, one paid event delivered to the app (counted over both processes' logs);
//! - concurrent refunds split across both never exceed what was paid, upstream or in the store;
//! - a payment whose notification was lost is found by the reconciler of one instance only
//!   (the lease), and its event reaches the app once.
//!
//! The database URLs come from `WXPAY_TEST_POSTGRES_URL` and `WXPAY_TEST_MYSQL_URL`; without
//! them the tests are skipped with a note, except under `CI=true`, where they fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wxpay_sandbox::{PayRequest, RetrySchedule, Sandbox, SandboxConfig};
use wxpay_tests::{
    Running, assert_logged_exactly, database_url_or_skip, example_binary, free_port,
    get_json_authorized, log_lines_with, precreate_product, scratch_dir, stored_status,
    v3_production_env,
};

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const ADMIN_TOKEN: &str = "scale-out-admin-token-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(60);
/// Copies of each notification the splitter sends, alternating between the shops.
const COPIES: usize = 48;
const REFUNDS: usize = 6;

/// What the splitter saw of one notification: the shops' answers to its copies.
#[derive(Debug, Clone)]
struct Fanned {
    statuses: Vec<u16>,
}

/// Receives the sandbox's notifications and fans each out to both shops at once, as a load
/// balancer in front of two instances would spread WeChat Pay's retries. While `losing`, it
/// answers 500 and forwards nothing: a notification lost on the way.
struct Splitter {
    url: String,
    losing: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Vec<Fanned>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Splitter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Splitter {
    async fn start(shops: [String; 2]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        let losing = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (task_losing, task_seen) = (losing.clone(), seen.clone());
        let http = reqwest::Client::new();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (losing, seen, http, shops) = (
                    task_losing.clone(),
                    task_seen.clone(),
                    http.clone(),
                    shops.clone(),
                );
                tokio::spawn(async move {
                    let Some((headers, body)) = read_request(&mut socket).await else {
                        return;
                    };
                    let status = if losing.load(Ordering::SeqCst) {
                        500
                    } else {
                        let statuses = fan_out(&http, &shops, &headers, body).await;
                        let any_ok = statuses.iter().any(|s| (200..300).contains(s));
                        seen.lock().unwrap().push(Fanned { statuses });
                        if any_ok { 200 } else { 500 }
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            url,
            losing,
            seen,
            task,
        }
    }

    fn seen(&self) -> Vec<Fanned> {
        self.seen.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request's headers and body (by `content-length`), enough for a notification.
async fn read_request(
    socket: &mut tokio::net::TcpStream,
) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 || buffer.len() > 1 << 20 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some((headers, body))
}

/// Posts [`COPIES`] copies of a notification at once, alternating between the shops' notify
/// routes; their statuses (0: no answer).
async fn fan_out(
    http: &reqwest::Client,
    shops: &[String; 2],
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Vec<u16> {
    let copies = (0..COPIES).map(|i| {
        let mut request = http.post(format!("{}/wxpay/notify", shops[i % 2]));
        for (name, value) in headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                request = request.header(name, value);
            }
        }
        let request = request.body(body.clone());
        async move {
            match request.send().await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            }
        }
    });
    let tasks: Vec<_> = copies.map(tokio::spawn).collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap_or(0));
    }
    statuses
}

async fn status_of(http: &reqwest::Client, base: &str, no: &str) -> Value {
    get_json_authorized(http, &format!("{base}/wxpay/orders/{no}"), ADMIN_TOKEN).await
}

/// Precreates green tea on `base` and pays it in the sandbox; its order number.
async fn buy_and_pay(http: &reqwest::Client, sandbox: &Sandbox, base: &str) -> String {
    let params = precreate_product(http, base, OPENID, "green-tea").await;
    let no = params["out_trade_no"].as_str().unwrap().to_owned();
    let pay: PayRequest = serde_json::from_value(params).unwrap();
    sandbox.pay(pay).await.unwrap();
    no
}

async fn two_shops_on_one_database(database_url: &str) {
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .allow_http_notify_url(true)
            .notify_retry_schedule(RetrySchedule::none()),
    )
    .await
    .unwrap();
    let ports = [free_port(), free_port()];
    let bases = ports.map(|port| format!("http://127.0.0.1:{port}"));
    let splitter = Splitter::start(bases.clone()).await;
    let mut shops = Vec::new();
    for (name, port) in ["axum_shop", "actix_shop"].into_iter().zip(ports) {
        let dir = scratch_dir(&format!("scale-out-{name}"));
        let mut vars = v3_production_env(&sandbox, &dir, port, false);
        vars.extend([
            ("DATABASE_URL", database_url.to_owned()),
            ("WXPAY_NOTIFY_URL", splitter.url.clone()),
            ("WXPAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("WXPAY_RECONCILE_AFTER", "2".to_owned()),
            ("WXPAY_RECONCILE_EVERY", "1".to_owned()),
        ]);
        let mut shop = Running::start(&example_binary(name), &dir, &vars);
        shop.wait_healthy(&format!("http://127.0.0.1:{port}"), WAIT)
            .await;
        shops.push(shop);
    }
    let both: Vec<&Running> = shops.iter().collect();
    let http = reqwest::Client::new();

    // 48 concurrent copies of one notification, across both instances.
    let paid_no = buy_and_pay(&http, &sandbox, &bases[0]).await;
    sandbox.wait_for_delivery(&paid_no, WAIT).await.unwrap();
    let fanned = splitter.seen();
    assert_eq!(fanned.len(), 1, "{fanned:?}");
    assert!(
        fanned[0].statuses.iter().all(|s| (200..300).contains(s)),
        "every copy acknowledged: {fanned:?}"
    );
    for base in &bases {
        let status = status_of(&http, base, &paid_no).await;
        assert_eq!(status["status"], "PAID", "{status}");
    }
    let paid_event = format!("paid-{paid_no}");
    assert_logged_exactly(&both, &["fulfil it", &paid_event], 1, WAIT).await;
    let paid_fen = status_of(&http, &bases[1], &paid_no).await["amount"]
        .as_u64()
        .unwrap();
    // Each refund a little over a third: two fit, the other four would overdraw.
    let refund_fen = paid_fen / 3 + 1;

    // Concurrent refunds split across both never exceed what was paid.
    let refunds = (0..REFUNDS).map(|i| {
        let request = http
            .post(format!("{}/wxpay/orders/{paid_no}/refunds", bases[i % 2]))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"amount": refund_fen, "out_refund_no": format!("R{i}{paid_no}")}));
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    });
    let mut accepted = Vec::new();
    for refund in refunds.collect::<Vec<_>>() {
        let (status, body) = refund.await.unwrap();
        match status {
            201 => accepted.push(body["out_refund_no"].as_str().unwrap().to_owned()),
            409 => assert_eq!(body["code"], "REFUND_EXCEEDS_PAID", "{body}"),
            _ => panic!("refund answered {status}: {body}"),
        }
    }
    let fits = usize::try_from(paid_fen / refund_fen).unwrap();
    assert_eq!(accepted.len(), fits, "as many as fit: {accepted:?}");
    let upstream: i64 = sandbox
        .refunds()
        .iter()
        .filter(|r| r.out_trade_no == paid_no)
        .map(|r| r.amount)
        .sum();
    assert_eq!(upstream, i64::try_from(fits as u64 * refund_fen).unwrap());
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = get_json_authorized(
            &http,
            &format!("{}/wxpay/orders/{paid_no}/refunds", bases[1]),
            ADMIN_TOKEN,
        )
        .await;
        // The listing reads the order and its refunds one after the other: poll until both
        // show the settled state.
        let all_settled = listed["refunds"]
            .as_array()
            .is_some_and(|r| r.len() == fits && r.iter().all(|r| r["status"] == "SUCCESS"));
        if all_settled && listed["refunded"] == fits as u64 * refund_fen {
            assert_eq!(
                listed["refundable"],
                paid_fen - fits as u64 * refund_fen,
                "{listed}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "refunds not settled: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for no in &accepted {
        let event = format!("refund-{no}-SUCCESS");
        assert_logged_exactly(&both, &["adjust the order", &event], 1, WAIT).await;
    }

    // A payment whose notification is lost: one reconciler finds it, the app hears once.
    splitter.losing.store(true, Ordering::SeqCst);
    let lost_no = buy_and_pay(&http, &sandbox, &bases[1]).await;
    let attempts = sandbox.wait_for_attempts(&lost_no, 1, WAIT).await.unwrap();
    assert!(!attempts[0].acknowledged, "{attempts:?}");
    splitter.losing.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + WAIT;
    // Watched through the admin API, which (unlike the status route) never asks the upstream.
    while stored_status(&http, &bases[0], &lost_no, ADMIN_TOKEN).await != "PAID" {
        assert!(
            Instant::now() < deadline,
            "the reconciler did not find the payment\n{}\n{}",
            shops[0].output(),
            shops[1].output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lost_event = format!("paid-{lost_no}");
    assert_logged_exactly(&both, &["fulfil it", &lost_event], 1, WAIT).await;
    let reconciling: Vec<usize> = shops
        .iter()
        .map(|shop| log_lines_with(&[shop], &["reconciled pending orders"]))
        .collect();
    assert!(
        reconciling.iter().filter(|lines| **lines > 0).count() == 1,
        "one instance reconciles (the lease holder): {reconciling:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_shops_on_one_postgres_database() {
    if let Some(url) = database_url_or_skip("WXPAY_TEST_POSTGRES_URL") {
        two_shops_on_one_database(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_shops_on_one_mariadb_database() {
    if let Some(url) = database_url_or_skip("WXPAY_TEST_MYSQL_URL") {
        two_shops_on_one_database(&url).await;
    }
}

//! Load benchmark: a shop (the axum mount of `wxpay_examples::Shop`) against the sandbox, on
//! loopback, for a SQLite store and a PostgreSQL store.
//!
//! ```sh
//! cargo run --release --example loadtest
//! ```
//!
//! For each store it drives two phases with `C` concurrent clients (default 16) and `N` requests
//! each (default 2000):
//!
//! - **precreate**: `POST /wxpay/precreate` (the shop signs the prepay request, verifies the
//!   sandbox's signed answer and signs `paySign`: 2 RSA signs + 1 RSA verify);
//! - **notify**: each client confirms one of those orders at the sandbox (`POST /sandbox/pay`),
//!   so the sandbox posts a real signed, encrypted notification to `POST /wxpay/notify` (the
//!   shop verifies it and decrypts it: 1 RSA verify + 1 AES-256-GCM decryption). A client
//!   confirms its next payment only when a notification slot is free: at most `C`
//!   notifications are in flight at the shop.
//!
//! It reports requests/s, p50/p99 latency (precreate: seen by the client; notify: the shop's
//! handling time, measured around its route) and the shop's CPU time per request divided by the
//! **crypto floor** measured in the same process just before: the median time of the
//! protocol's cryptography for one request on the same 2048-bit keys. A ratio of 3 means the
//! shop spends three times the unavoidable cryptography on one request (HTTP, JSON, the store,
//! the upstream round trip).
//!
//! The shop, the sandbox and the load clients run on three separate tokio runtimes in this one
//! process; CPU time is read per thread from `/proc/self/task/*/schedstat`, so the sandbox's and
//! the clients' CPU are kept apart from the shop's. The shop's share is every thread that is not
//! the sandbox's or the clients' (its runtime, SQLite's worker threads). A PostgreSQL server is
//! another process: its CPU is not counted.
//!
//! Environment: `WXPAY_LOADTEST_REQUESTS` (default 2000), `WXPAY_LOADTEST_ROUNDS` (default 3;
//! every figure is the median over the rounds), `WXPAY_LOADTEST_CONCURRENCY`
//! (default 16), `WXPAY_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; skipped with a note if unreachable; `off` skips
//! it). Only loopback is used and the run stops by itself.
#![allow(clippy::print_stdout, clippy::float_arithmetic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use wxpay_core::v3::aead::ALGORITHM;
use wxpay_core::v3::verify::platform_message;
use wxpay_core::v3::{
    ApiV3Key, EncryptedResource, MerchantPrivateKey, PlatformPublicKey, PlatformTrust,
    SignatureHeaders,
};
use wxpay_examples::shop::SANDBOX_OPENID;
use wxpay_examples::{Shop, ShopConfig};
use wxpay_sandbox::{Sandbox, SandboxConfig};
use wxpay_tower::WxPayLayer;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const WARMUP: usize = 50;

/// One measured phase.
#[derive(Debug, Clone)]
struct Phase {
    requests: usize,
    errors: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    cpu: Cpu,
}

/// CPU seconds per part of the process, over a phase.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    shop: f64,
    sandbox: f64,
    clients: f64,
}

/// What one store's rounds measured: each round's precreate and notify phases and the crypto
/// floor measured just before it.
#[derive(Debug)]
struct StoreRun {
    store: &'static str,
    rounds: Vec<(Phase, Phase, Floor)>,
}

/// The crypto floor, in seconds per request.
#[derive(Debug, Clone, Copy)]
struct Floor {
    precreate: f64,
    notify: f64,
    sign: f64,
    verify: f64,
    decrypt: f64,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn runtime(name: &'static str, workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        // Threads that exit would take their CPU time out of the per-thread sums.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() -> std::process::ExitCode {
    let requests = env_usize("WXPAY_LOADTEST_REQUESTS", 2000);
    let rounds = env_usize("WXPAY_LOADTEST_ROUNDS", 3);
    let concurrency = env_usize("WXPAY_LOADTEST_CONCURRENCY", 16);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shop_rt = runtime("shop-rt", cores);
    let sandbox_rt = runtime("sandbox-rt", cores);
    let client_rt = runtime("client-rt", cores);

    let scratch = std::env::temp_dir().join(format!("wxpay-loadtest-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("loadtest: cannot create {}: {e}", scratch.display());
        return std::process::ExitCode::from(2);
    }

    let mut runs = Vec::new();
    let mut notes = Vec::new();
    let sqlite_url = format!("sqlite://{}", scratch.join("shop.db").display());
    let postgres_url = std::env::var("WXPAY_BENCH_POSTGRES_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let mut stores: Vec<(&'static str, String)> = vec![("SQLite", sqlite_url)];
    if postgres_url.trim() == "off" {
        notes.push("PostgreSQL: skipped (WXPAY_BENCH_POSTGRES_URL=off)".to_owned());
    } else if reachable(&postgres_url) {
        stores.push(("PostgreSQL", postgres_url));
    } else {
        notes.push(format!(
            "PostgreSQL: skipped ({} is unreachable)",
            redact(&postgres_url)
        ));
    }
    for (store, url) in stores {
        let mut run = StoreRun {
            store,
            rounds: Vec::new(),
        };
        for round in 1..=rounds {
            eprintln!(
                "loadtest: {store} round {round}/{rounds}: {requests} requests per phase, \
                 {concurrency} clients"
            );
            let floor = match measure_floor() {
                Ok(floor) => floor,
                Err(e) => {
                    eprintln!("loadtest: crypto floor: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            match run_store(
                &shop_rt,
                &sandbox_rt,
                &client_rt,
                &scratch,
                &url,
                requests,
                concurrency,
            ) {
                Ok((precreate, notify)) => run.rounds.push((precreate, notify, floor)),
                Err(e) => {
                    notes.push(format!("{store}: round {round} failed ({e})"));
                    break;
                }
            }
        }
        if !run.rounds.is_empty() {
            runs.push(run);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    report(&runs, &notes, requests, concurrency, cores);
    if runs.is_empty() {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// Whether the PostgreSQL server of `url` accepts TCP connections.
fn reachable(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split(['/', '?']).next().unwrap_or_default();
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    use std::net::ToSocketAddrs;
    host_port.to_socket_addrs().ok().is_some_and(|mut addrs| {
        addrs
            .any(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
    })
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// The median of `f`'s wall time over `n` runs (single-threaded and CPU-bound, so wall time is
/// CPU time; the median drops the runs another process preempted).
fn median_time(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The cryptography of one request on 2048-bit RSA keys like the sandbox's and a transaction-
/// sized AES-256-GCM resource.
fn measure_floor() -> Result<Floor, String> {
    let pem = key_pem_of_a_sandbox()?;
    let key = MerchantPrivateKey::from_pem(&pem.0).map_err(|e| e.to_string())?;
    let trust = PlatformTrust::public_key(
        PlatformPublicKey::from_pem("PUB_KEY_ID_0000000000000000000000000001", &pem.1)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let body = br#"{"prepay_id":"wx26112221580621e9b071c00d9e093b0000"}"#;
    let now = time::OffsetDateTime::now_utc();
    let timestamp = now.unix_timestamp().to_string();
    let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
    let message = platform_message(&timestamp, nonce, body);
    let headers = SignatureHeaders {
        timestamp,
        nonce: nonce.to_owned(),
        signature: key.sign_base64(&message),
        serial: "PUB_KEY_ID_0000000000000000000000000001".to_owned(),
        signature_type: None,
    };
    trust
        .verify(&headers, body, now)
        .map_err(|e| e.to_string())?;

    let api_v3_key = "0123456789abcdefghijklmnopqrstuv";
    let transaction = format!(
        r#"{{"mchid":"1900000001","appid":"wxd678efh567hg6787","out_trade_no":"{}","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"green-tea","success_time":"2026-01-01T00:00:00+08:00","payer":{{"openid":"{SANDBOX_OPENID}"}},"amount":{{"total":3800,"payer_total":3800,"currency":"CNY","payer_currency":"CNY"}}}}"#,
        "W".repeat(32)
    );
    let cipher =
        aes_gcm::Aes256Gcm::new_from_slice(api_v3_key.as_bytes()).map_err(|e| e.to_string())?;
    let ciphertext = cipher
        .encrypt(
            aes_gcm::Nonce::from_slice(b"fdasflkja484"),
            Payload {
                msg: transaction.as_bytes(),
                aad: b"transaction",
            },
        )
        .map_err(|e| e.to_string())?;
    let resource = EncryptedResource {
        algorithm: ALGORITHM.to_owned(),
        ciphertext: BASE64.encode(ciphertext),
        associated_data: Some("transaction".to_owned()),
        nonce: "fdasflkja484".to_owned(),
        original_type: Some("transaction".to_owned()),
    };
    let aead_key = ApiV3Key::new(api_v3_key).map_err(|e| e.to_string())?;
    resource.decrypt(&aead_key).map_err(|e| e.to_string())?;

    let sign = median_time(400, || {
        std::hint::black_box(key.sign_base64(std::hint::black_box(&message)));
    });
    let verify = median_time(2000, || {
        trust
            .verify(std::hint::black_box(&headers), body, now)
            .expect("verifies");
    });
    let decrypt = median_time(2000, || {
        std::hint::black_box(resource.decrypt(&aead_key).expect("decrypts"));
    });
    let precreate = median_time(300, || {
        std::hint::black_box(key.sign_base64(&message));
        std::hint::black_box(key.sign_base64(&message));
        trust.verify(&headers, body, now).expect("verifies");
    });
    let notify = median_time(2000, || {
        trust.verify(&headers, body, now).expect("verifies");
        std::hint::black_box(resource.decrypt(&aead_key).expect("decrypts"));
    });
    Ok(Floor {
        precreate,
        notify,
        sign,
        verify,
        decrypt,
    })
}

/// A 2048-bit key pair exactly like the ones the sandbox generates for a run: the sandbox's
/// merchant key (private PEM, public PEM).
fn key_pem_of_a_sandbox() -> Result<(String, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .map_err(|e| e.to_string())?;
        let merchant = sandbox.merchant().clone();
        sandbox.shutdown().await;
        Ok((
            merchant
                .private_key_pem
                .ok_or("the sandbox has no merchant private key")?,
            merchant.public_key_pem,
        ))
    })
}

/// CPU time of every thread of this process so far, by part.
fn cpu_now() -> Cpu {
    let mut cpu = Cpu::default();
    let pid = std::process::id().to_string();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return cpu;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let tid = task.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        // schedstat: nanoseconds on CPU, nanoseconds waiting, time slices.
        let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        else {
            continue;
        };
        let seconds = Duration::from_nanos(ns).as_secs_f64();
        if name.starts_with("sandbox-rt") {
            cpu.sandbox += seconds;
        } else if name.starts_with("client-rt") || tid == pid {
            // The main thread only drives the clients during a phase.
            cpu.clients += seconds;
        } else {
            cpu.shop += seconds;
        }
    }
    cpu
}

fn cpu_since(start: Cpu) -> Cpu {
    let now = cpu_now();
    Cpu {
        shop: now.shop - start.shop,
        sandbox: now.sandbox - start.sandbox,
        clients: now.clients - start.clients,
    }
}

/// The shop's handling times of `POST /wxpay/notify` and how many were acknowledged.
struct NotifyLog {
    acknowledged: AtomicUsize,
    rejected: AtomicUsize,
    latencies: Mutex<Vec<Duration>>,
    /// Notifications that may be in flight: a client takes one before confirming a payment at
    /// the sandbox and the shop's answer to a notification gives it back, so at most
    /// `concurrency` notifications reach the shop at once (a closed loop, like the precreates).
    in_flight: tokio::sync::Semaphore,
}

impl NotifyLog {
    fn new(concurrency: usize) -> Self {
        Self {
            acknowledged: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            latencies: Mutex::new(Vec::new()),
            in_flight: tokio::sync::Semaphore::new(concurrency),
        }
    }
}

async fn time_notify(log: &NotifyLog, request: Request, next: Next) -> Response {
    if request.uri().path() != "/wxpay/notify" {
        return next.run(request).await;
    }
    let start = Instant::now();
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    if let Ok(mut latencies) = log.latencies.lock() {
        latencies.push(elapsed);
    }
    if response.status().is_success() {
        log.acknowledged.fetch_add(1, Ordering::SeqCst);
    } else {
        log.rejected.fetch_add(1, Ordering::SeqCst);
    }
    log.in_flight.add_permits(1);
    response
}

/// The shop's configuration in production mode against `sandbox`: the same engine, client
/// and store as sandbox mode, with the sandbox on its own runtime.
fn shop_config(
    sandbox: &Sandbox,
    scratch: &Path,
    database_url: &str,
    bound: SocketAddr,
) -> Result<ShopConfig, String> {
    let merchant = sandbox.merchant();
    let platform = sandbox.platform();
    let key_file = scratch.join("merchant_key.pem");
    let platform_file = scratch.join("platform_public_key.pem");
    std::fs::write(
        &key_file,
        merchant
            .private_key_pem
            .as_deref()
            .ok_or("the sandbox has no merchant private key")?,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(&platform_file, &platform.public_key_pem).map_err(|e| e.to_string())?;
    let vars: HashMap<&str, String> = HashMap::from([
        ("WXPAY_BIND", bound.to_string()),
        ("DATABASE_URL", database_url.to_owned()),
        ("WXPAY_MCHID", merchant.mchid.clone()),
        ("WXPAY_APPID", merchant.appid.clone()),
        ("WXPAY_MERCHANT_SERIAL", merchant.serial.clone()),
        ("WXPAY_MERCHANT_KEY_FILE", path_string(&key_file)),
        ("WXPAY_APIV3_KEY", sandbox.api_v3_key().to_owned()),
        (
            "WXPAY_PLATFORM_PUBLIC_KEY_FILE",
            path_string(&platform_file),
        ),
        (
            "WXPAY_PLATFORM_PUBLIC_KEY_ID",
            platform.public_key_id.clone(),
        ),
        ("WXPAY_NOTIFY_URL", format!("http://{bound}/wxpay/notify")),
        ("WXPAY_API_BASE", sandbox.base_url().to_owned()),
    ]);
    ShopConfig::from_lookup(|name| vars.get(name).cloned()).map_err(|e| e.to_string())
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Starts a sandbox and a shop on `database_url`, runs both phases, stops them.
fn run_store(
    shop_rt: &tokio::runtime::Runtime,
    sandbox_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    scratch: &Path,
    database_url: &str,
    requests: usize,
    concurrency: usize,
) -> Result<(Phase, Phase), String> {
    let sandbox = sandbox_rt
        .block_on(Sandbox::start(
            SandboxConfig::default().allow_http_notify_url(true),
        ))
        .map_err(|e| format!("sandbox: {e}"))?;
    let sandbox_url = sandbox.base_url().to_owned();
    let log = Arc::new(NotifyLog::new(concurrency));
    let started = shop_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let config = shop_config(&sandbox, scratch, database_url, bound)?;
        let shop = Shop::start(config, bound)
            .await
            .map_err(|e| format!("shop: {e}"))?;
        let log = Arc::clone(&log);
        let app = Router::new()
            .layer(WxPayLayer::new(shop.engine().clone()))
            .layer(axum::middleware::from_fn(
                move |request: Request, next: Next| {
                    let log = Arc::clone(&log);
                    async move { time_notify(&log, request, next).await }
                },
            ));
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Ok::<_, String>((shop, server, bound))
    });
    let (shop, server, bound) = match started {
        Ok(started) => started,
        Err(e) => {
            sandbox_rt.block_on(sandbox.shutdown());
            return Err(e);
        }
    };
    let shop_url = format!("http://{bound}");

    let result = client_rt.block_on(phases(&shop_url, &sandbox_url, &log, requests, concurrency));

    server.abort();
    shop_rt.block_on(async move {
        drop(shop);
    });
    sandbox_rt.block_on(sandbox.shutdown());
    result
}

/// Precreates `count` orders with `concurrency` clients; returns the phase and the bodies.
async fn precreate(
    http: &reqwest::Client,
    shop_url: &str,
    count: usize,
    concurrency: usize,
) -> (Vec<Duration>, Vec<serde_json::Value>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{shop_url}/wxpay/precreate");
    let body = serde_json::json!({ "openid": SANDBOX_OPENID, "product_id": "green-tea" });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, next, url, body) = (http.clone(), Arc::clone(&next), url.clone(), body.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut orders = Vec::new();
            let mut errors = 0;
            while next.fetch_add(1, Ordering::SeqCst) < count {
                let start = Instant::now();
                let answer = http.post(&url).json(&body).send().await;
                let order = match answer {
                    Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
                    _ => None,
                };
                latencies.push(start.elapsed());
                match order {
                    Some(order) => orders.push(order),
                    None => errors += 1,
                }
            }
            (latencies, orders, errors)
        });
    }
    let (mut latencies, mut orders, mut errors) = (Vec::new(), Vec::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        if let Ok((l, o, e)) = joined {
            latencies.extend(l);
            orders.extend(o);
            errors += e;
        }
    }
    (latencies, orders, errors)
}

/// Confirms every order at the sandbox with `concurrency` clients, each waiting for a
/// notification slot first; returns the failures.
async fn pay(
    log: &Arc<NotifyLog>,
    http: &reqwest::Client,
    sandbox_url: &str,
    orders: Vec<serde_json::Value>,
    concurrency: usize,
) -> usize {
    let orders = Arc::new(orders);
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{sandbox_url}/sandbox/pay");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (log, http, next, url, orders) = (
            Arc::clone(log),
            http.clone(),
            Arc::clone(&next),
            url.clone(),
            Arc::clone(&orders),
        );
        tasks.spawn(async move {
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(order) = orders.get(i) else { break };
                match log.in_flight.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => break,
                }
                match http.post(&url).json(order).send().await {
                    Ok(r) if r.status().is_success() => {}
                    _ => {
                        // No notification will give the slot back.
                        log.in_flight.add_permits(1);
                        errors += 1;
                    }
                }
            }
            errors
        });
    }
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        errors += joined.unwrap_or(0);
    }
    errors
}

async fn phases(
    shop_url: &str,
    sandbox_url: &str,
    log: &Arc<NotifyLog>,
    requests: usize,
    concurrency: usize,
) -> Result<(Phase, Phase), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;

    // Warm-up: connections, the store's pool and prepared statements, both directions.
    let (_, warm, warm_errors) = precreate(&http, shop_url, WARMUP, concurrency).await;
    if warm_errors > 0 || warm.len() < WARMUP {
        return Err(format!(
            "{warm_errors} of {WARMUP} warm-up precreates failed"
        ));
    }
    let warm_count = warm.len();
    pay(log, &http, sandbox_url, warm, concurrency).await;
    wait_for_notifications(log, warm_count, Duration::from_secs(60)).await?;
    log.acknowledged.store(0, Ordering::SeqCst);
    log.rejected.store(0, Ordering::SeqCst);
    if let Ok(mut latencies) = log.latencies.lock() {
        latencies.clear();
    }

    let cpu = cpu_now();
    let start = Instant::now();
    let (latencies, orders, errors) = precreate(&http, shop_url, requests, concurrency).await;
    let precreate_phase = Phase {
        requests,
        errors,
        wall: start.elapsed(),
        latencies,
        cpu: cpu_since(cpu),
    };

    let paid = orders.len();
    let cpu = cpu_now();
    let start = Instant::now();
    let pay_errors = pay(log, &http, sandbox_url, orders, concurrency).await;
    let waited = wait_for_notifications(log, paid - pay_errors, Duration::from_secs(120)).await;
    let wall = start.elapsed();
    let cpu = cpu_since(cpu);
    waited?;
    let latencies = log
        .latencies
        .lock()
        .map(|l| l.clone())
        .map_err(|_| "poisoned".to_owned())?;
    let notify_phase = Phase {
        requests: latencies.len(),
        errors: pay_errors + log.rejected.load(Ordering::SeqCst),
        wall,
        latencies,
        cpu,
    };
    Ok((precreate_phase, notify_phase))
}

async fn wait_for_notifications(
    log: &NotifyLog,
    count: usize,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let done = log.acknowledged.load(Ordering::SeqCst) + log.rejected.load(Ordering::SeqCst);
        if done >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {done} of {count} notifications arrived in {timeout:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One phase's figures: requests/s, p50 ms, p99 ms, shop CPU ms/request, shop CPU ÷ floor,
/// sandbox CPU ms/request, clients CPU ms/request.
fn figures(phase: &Phase, floor: f64) -> [f64; 7] {
    let mut sorted = phase.latencies.clone();
    sorted.sort();
    let n = phase.requests.max(1) as f64;
    let shop = phase.cpu.shop / n;
    [
        n / phase.wall.as_secs_f64(),
        ms(percentile(&sorted, 50)),
        ms(percentile(&sorted, 99)),
        shop * 1e3,
        shop / floor,
        phase.cpu.sandbox / n * 1e3,
        phase.cpu.clients / n * 1e3,
    ]
}

/// Prints the results as the Markdown section BENCHMARKS.md embeds: per store and phase, the
/// median over the rounds of each figure.
fn report(runs: &[StoreRun], notes: &[String], requests: usize, concurrency: usize, cores: usize) {
    let floors: Vec<&Floor> = runs
        .iter()
        .flat_map(|run| run.rounds.iter().map(|(_, _, floor)| floor))
        .collect();
    let floor_median = |f: fn(&Floor) -> f64| median(floors.iter().map(|x| f(x)).collect());
    let rounds = runs.iter().map(|run| run.rounds.len()).max().unwrap_or(0);
    println!("<!-- loadtest:begin -->");
    println!(
        "Load test: {requests} requests per phase, {concurrency} concurrent clients, \
         {cores} cores, shop + sandbox + clients in one process on loopback \
         (CPU per part from per-thread `schedstat`). Every figure is the **median of \
         {rounds} rounds** (each round: a fresh sandbox and shop on the same database)."
    );
    println!();
    println!(
        "Crypto floor measured before each round (median): RSA-2048 sign {:.0} µs, verify \
         {:.0} µs, AES-256-GCM decrypt {:.1} µs; **precreate floor** (2 signs + 1 verify) \
         {:.0} µs, **notify floor** (1 verify + 1 decrypt) {:.0} µs.",
        floor_median(|f| f.sign) * 1e6,
        floor_median(|f| f.verify) * 1e6,
        floor_median(|f| f.decrypt) * 1e6,
        floor_median(|f| f.precreate) * 1e6,
        floor_median(|f| f.notify) * 1e6,
    );
    println!();
    println!(
        "| store | phase | requests | errors | req/s | p50 ms | p99 ms | shop CPU ms/req | \
         **shop CPU ÷ floor** | sandbox CPU ms/req | clients CPU ms/req |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        for name in ["precreate", "notify"] {
            let per_round: Vec<[f64; 7]> = run
                .rounds
                .iter()
                .map(|(precreate, notify, floor)| {
                    if name == "precreate" {
                        figures(precreate, floor.precreate)
                    } else {
                        figures(notify, floor.notify)
                    }
                })
                .collect();
            let m: Vec<f64> = (0..7)
                .map(|i| median(per_round.iter().map(|f| f[i]).collect()))
                .collect();
            let phases = run.rounds.iter().map(|(precreate, notify, _)| {
                if name == "precreate" {
                    precreate
                } else {
                    notify
                }
            });
            let (total, errors) = phases.fold((0, 0), |(t, e), p| (t + p.requests, e + p.errors));
            println!(
                "| {} | {name} | {total} | {errors} | {:.0} | {:.2} | {:.2} | {:.2} | **{:.2}** | {:.2} | {:.2} |",
                run.store, m[0], m[1], m[2], m[3], m[4], m[5], m[6],
            );
        }
    }
    println!();
    println!(
        "Requests and errors are totals over the rounds. Latency: precreate as seen by the \
         client (includes the shop's round trip to the sandbox); notify is the shop's handling \
         time of `POST /wxpay/notify`, with at most {concurrency} notifications in flight. \
         Notify req/s: notifications acknowledged per second while the clients confirm \
         payments at the sandbox."
    );
    for note in notes {
        println!();
        println!("- {note}");
    }
    println!("<!-- loadtest:end -->");
}

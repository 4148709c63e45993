//! The H5 checkout page in headless Chromium (playwright-core): sign in through the OAuth
//! redirect (the shop's `/wxpay/openid/authorize` → the sandbox's WeChat OAuth2 or QFPay
//! `get_weixin_oauth_code` → `/wxpay/openid/callback`, an HttpOnly cookie) → buy → pay sheet →
//! confirm → "paid", against each example shop (axum_shop, actix_shop) in sandbox mode, on API
//! v3 and on the other H5 upstreams (`WXPAY_PROVIDER=v2` with HMAC-SHA256, `gateway` and `qfpay`,
//! whose client parameters are signed with MD5 / HMAC-SHA256 instead of RSA). weidoufu serves
//! mini programs (`wx.requestPayment`, Alipay's `my.tradePay`), not H5 pages: its end-to-end
//! tests are in `shop_production.rs`. Screenshots go to
//! `WXPAY_SCREENSHOT_DIR/<shop>[-<provider>]` (default `target/browser-screenshots/…`).
//!
//! A second journey is the operator's: the shop pays an order over HTTP, then the operator opens
//! the engine's console (`/wxpay/admin/console`), signs in with the admin token, finds the order,
//! refunds part of it and sees the refund succeed (`tests/browser/console.mjs`), on both shops.
//!
//! Needs `node`, Chromium (`CHROMIUM_PATH`, default `/usr/bin/chromium`) and
//! `npm install --prefix tests/browser`. Without them the test is skipped with a message,
//! unless `WXPAY_REQUIRE_BROWSER_TEST=1` (CI), where it fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use wxpay_tests::{Running, example_binary, free_port, repo_root, scratch_dir};

/// `WXPAY_ADMIN_TOKEN` of the console journey (never printed by the shop; the script takes it
/// from its environment).
const ADMIN_TOKEN: &str = "browser-admin-token-0123456789abcdefghij";

fn missing_prerequisite() -> Option<String> {
    let chromium = chromium_path();
    if !chromium.exists() {
        return Some(format!(
            "no Chromium at {} (set CHROMIUM_PATH)",
            chromium.display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    let module = repo_root().join("tests/browser/node_modules/playwright-core");
    if !module.exists() {
        return Some("playwright-core is missing: npm install --prefix tests/browser".into());
    }
    None
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Skips (or, in CI, fails) when the browser is missing; true when the test can run.
fn browser_available() -> bool {
    if let Some(missing) = missing_prerequisite() {
        let required = std::env::var("WXPAY_REQUIRE_BROWSER_TEST").is_ok_and(|v| v == "1");
        assert!(!required, "browser test required but {missing}");
        eprintln!("skipping the browser test: {missing}");
        return false;
    }
    true
}

fn screenshot_dir(name: &str) -> PathBuf {
    std::env::var_os("WXPAY_SCREENSHOT_DIR")
        .map_or_else(
            || repo_root().join("target/browser-screenshots"),
            PathBuf::from,
        )
        .join(name)
}

async fn h5_checkout_in_headless_chromium(shop_name: &str, provider: &[(&str, &str)]) {
    if !browser_available() {
        return;
    }
    let binary = example_binary(shop_name);
    let dir = scratch_dir(&format!("{shop_name}-browser"));
    let port = free_port();
    let mut vars = vec![
        ("WXPAY_BIND", format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("shop.db").display()),
        ),
    ];
    vars.extend(provider.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut shop = Running::start(&binary, &dir, &vars);
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    assert!(shop.output().contains("SANDBOX MODE"), "{}", shop.output());
    let shot_dir = match provider.iter().find(|(k, _)| *k == "WXPAY_PROVIDER") {
        Some((_, name)) => {
            assert!(
                shop.output().contains(&format!("WXPAY_PROVIDER={name}")),
                "{}",
                shop.output()
            );
            format!("{shop_name}-{name}")
        }
        None => shop_name.to_owned(),
    };

    let shots = screenshot_dir(&shot_dir);
    let script = repo_root().join("tests/browser/checkout.mjs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(format!("{base}/"))
            .arg(&shots)
            .env("CHROMIUM_PATH", chromium_path())
            // Sandbox mode resolves the payer through the OAuth redirect flow.
            .env("EXPECT_OPENID_FLOW", "1")
            .output()
    })
    .await
    .unwrap()
    .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("browser checkout: paid"),
        "browser checkout failed\n--- node stdout\n{stdout}\n--- node stderr\n{stderr}\n{}",
        shop.output()
    );
    drop(shop);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_shop_h5_checkout_in_headless_chromium() {
    h5_checkout_in_headless_chromium("axum_shop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_shop_h5_checkout_in_headless_chromium() {
    h5_checkout_in_headless_chromium("actix_shop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_shop_v2_h5_checkout_in_headless_chromium() {
    h5_checkout_in_headless_chromium(
        "axum_shop",
        &[("WXPAY_PROVIDER", "v2"), ("WXPAY_SIGN_TYPE", "HMAC-SHA256")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_shop_gateway_h5_checkout_in_headless_chromium() {
    h5_checkout_in_headless_chromium("actix_shop", &[("WXPAY_PROVIDER", "gateway")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_shop_qfpay_h5_checkout_in_headless_chromium() {
    // QFPay's own OAuth flow (get_weixin_oauth_code) resolves the payer.
    h5_checkout_in_headless_chromium("axum_shop", &[("WXPAY_PROVIDER", "qfpay")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_shop_qfpay_h5_checkout_in_headless_chromium() {
    h5_checkout_in_headless_chromium("actix_shop", &[("WXPAY_PROVIDER", "qfpay")]).await;
}

/// The shop pays `green-tea` (¥38.00) for the sandbox's payer; its order number.
async fn pay_an_order_over_http(base: &str) -> String {
    let http = reqwest::Client::new();
    let config: serde_json::Value = http
        .get(format!("{base}/api/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sandbox = config["jsbridge"]
        .as_str()
        .and_then(|url| url.strip_suffix("/sandbox/jsbridge.js"))
        .unwrap_or_else(|| panic!("no sandbox in {config}"))
        .to_owned();
    let params: serde_json::Value = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&serde_json::json!({"openid": config["openid"], "product_id": "green-tea"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let no = params["out_trade_no"].as_str().unwrap().to_owned();
    let paid = http
        .post(format!("{sandbox}/sandbox/pay"))
        .json(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200, "{}", paid.text().await.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status: serde_json::Value = http
            .get(format!("{base}/wxpay/orders/{no}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["status"] == "PAID" {
            return no;
        }
        assert!(std::time::Instant::now() < deadline, "not paid: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn operator_console_in_headless_chromium(shop_name: &str) {
    if !browser_available() {
        return;
    }
    let binary = example_binary(shop_name);
    let dir = scratch_dir(&format!("{shop_name}-console"));
    let port = free_port();
    let vars = vec![
        ("WXPAY_BIND", format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("shop.db").display()),
        ),
        ("WXPAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("WXPAY_OPENID_MODE", "body".to_owned()),
    ];
    let mut shop = Running::start(&binary, &dir, &vars);
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    let no = pay_an_order_over_http(&base).await;

    let shots = screenshot_dir(&format!("{shop_name}-console"));
    let script = repo_root().join("tests/browser/console.mjs");
    let url = format!("{base}/wxpay/admin/console");
    let number = no.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(url)
            .arg(&shots)
            .arg(number)
            .env("CHROMIUM_PATH", chromium_path())
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
    })
    .await
    .unwrap()
    .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("console journey: refunded"),
        "console journey failed\n--- node stdout\n{stdout}\n--- node stderr\n{stderr}\n{}",
        shop.output()
    );
    // The operator's refund is logged with what it changed, and the token never is.
    let log = shop.output();
    assert!(log.contains("operator refund"), "{log}");
    assert!(
        !log.contains(ADMIN_TOKEN),
        "the admin token must never be printed"
    );
    drop(shop);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_shop_operator_console_refund_in_headless_chromium() {
    operator_console_in_headless_chromium("axum_shop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_shop_operator_console_refund_in_headless_chromium() {
    operator_console_in_headless_chromium("actix_shop").await;
}

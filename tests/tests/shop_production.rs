//! Each example shop (axum_shop, actix_shop) in production mode, configured only through its
//! environment contract, against the sandbox standing in for WeChat Pay.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use wxpay_sandbox::{PayRequest, PlatformMode, Sandbox, SandboxConfig};
use wxpay_tests::{Running, example_binary, free_port, scratch_dir};

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// The production variables for `sandbox`, with the merchant key (and the platform public key
/// unless `certificate_mode`) written to files in `dir`.
fn production_env(
    sandbox: &Sandbox,
    dir: &Path,
    port: u16,
    certificate_mode: bool,
) -> Vec<(&'static str, String)> {
    let merchant = sandbox.merchant();
    let key_file = dir.join("apiclient_key.pem");
    std::fs::write(&key_file, merchant.private_key_pem.as_deref().unwrap()).unwrap();
    let mut vars = vec![
        ("WXPAY_BIND", format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("shop.db").display()),
        ),
        ("WXPAY_MCHID", merchant.mchid.clone()),
        ("WXPAY_APPID", merchant.appid.clone()),
        ("WXPAY_MERCHANT_SERIAL", merchant.serial.clone()),
        ("WXPAY_MERCHANT_KEY_FILE", key_file.display().to_string()),
        ("WXPAY_APIV3_KEY", sandbox.api_v3_key().to_owned()),
        (
            "WXPAY_NOTIFY_URL",
            format!("http://127.0.0.1:{port}/wxpay/notify"),
        ),
        ("WXPAY_API_BASE", sandbox.base_url().to_owned()),
    ];
    if !certificate_mode {
        let platform = sandbox.platform();
        let pub_file = dir.join("pub_key.pem");
        std::fs::write(&pub_file, &platform.public_key_pem).unwrap();
        vars.push((
            "WXPAY_PLATFORM_PUBLIC_KEY_FILE",
            pub_file.display().to_string(),
        ));
        vars.push((
            "WXPAY_PLATFORM_PUBLIC_KEY_ID",
            platform.public_key_id.clone(),
        ));
    }
    vars
}

/// Buys a product through the shop's routes, pays in the sandbox, and checks the order is PAID
/// at the catalog's price (not the one the client sent).
async fn buy_and_pay(sandbox: &Sandbox, base: &str) {
    let http = reqwest::Client::new();
    let products: Value = http
        .get(format!("{base}/api/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tea = products
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "green-tea")
        .unwrap()
        .clone();

    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": OPENID, "product_id": "green-tea", "amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let params: Value = response.json().await.unwrap();
    let out_trade_no = params["out_trade_no"].as_str().unwrap().to_owned();
    assert_eq!(params["appId"], sandbox.merchant().appid.as_str());

    let status: Value = http
        .get(format!("{base}/wxpay/orders/{out_trade_no}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "PENDING");
    assert_eq!(
        status["amount"], tea["price_fen"],
        "the server sets the price"
    );

    let pay: PayRequest = serde_json::from_value(params).unwrap();
    sandbox.pay(pay).await.unwrap();
    sandbox
        .wait_for_delivery(&out_trade_no, Duration::from_secs(20))
        .await
        .unwrap();
    let status: Value = http
        .get(format!("{base}/wxpay/orders/{out_trade_no}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "PAID");
    assert!(status["transaction_id"].is_string());

    // Bad input is a clear 4xx JSON and reaches no upstream.
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": OPENID, "product_id": "gold-bar"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "UNKNOWN_PRODUCT"
    );
}

async fn production_mode_against_the_sandbox(shop_name: &str) {
    let binary = example_binary(shop_name);
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let dir = scratch_dir(&format!("{shop_name}-production"));
    let port = free_port();
    let mut shop = Running::start(&binary, &dir, &production_env(&sandbox, &dir, port, false));
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    let output = shop.output();
    assert!(output.contains("PRODUCTION MODE"), "{output}");
    assert!(!output.contains("SANDBOX MODE"), "{output}");
    assert!(
        !output.contains(sandbox.api_v3_key()),
        "the API v3 key must never be printed"
    );
    buy_and_pay(&sandbox, &base).await;
    assert!(dir.join("shop.db").exists(), "DATABASE_URL is honoured");
    drop(shop);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn certificate_mode_downloads_the_platform_certificate(shop_name: &str) {
    let binary = example_binary(shop_name);
    let sandbox =
        Sandbox::start(SandboxConfig::for_tests().platform_mode(PlatformMode::Certificate))
            .await
            .unwrap();
    let dir = scratch_dir(&format!("{shop_name}-certificate"));
    let port = free_port();
    let mut shop = Running::start(&binary, &dir, &production_env(&sandbox, &dir, port, true));
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    buy_and_pay(&sandbox, &base).await;
    drop(shop);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn names_the_variable_that_is_wrong(shop_name: &str) {
    let binary = example_binary(shop_name);
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let dir = scratch_dir(&format!("{shop_name}-misconfigured"));
    let port = free_port();
    let base_env = production_env(&sandbox, &dir, port, false);
    let cases: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        (
            "WXPAY_APIV3_KEY",
            base_env
                .iter()
                .filter(|(k, _)| *k != "WXPAY_APIV3_KEY")
                .cloned()
                .collect(),
        ),
        (
            "WXPAY_APIV3_KEY",
            with(&base_env, "WXPAY_APIV3_KEY", "too-short"),
        ),
        (
            "WXPAY_MERCHANT_KEY_FILE",
            with(
                &base_env,
                "WXPAY_MERCHANT_KEY_FILE",
                "/nonexistent/apiclient_key.pem",
            ),
        ),
        (
            "WXPAY_NOTIFY_URL",
            with(
                &base_env,
                "WXPAY_NOTIFY_URL",
                "http://shop.example/wxpay/notify",
            ),
        ),
        (
            "WXPAY_BIND",
            with(&base_env, "WXPAY_BIND", "not-an-address"),
        ),
        (
            "WXPAY_PLATFORM_PUBLIC_KEY_ID",
            base_env
                .iter()
                .filter(|(k, _)| *k != "WXPAY_PLATFORM_PUBLIC_KEY_ID")
                .cloned()
                .collect(),
        ),
    ];
    for (variable, env) in cases {
        let mut shop = Running::start(&binary, &dir, &env);
        let code = shop.wait_exit(Duration::from_secs(30));
        let output = shop.output();
        assert!(
            matches!(code, Some(c) if c != 0),
            "{variable}: expected a non-zero exit, got {code:?}\n{output}"
        );
        let stderr = std::fs::read_to_string(&shop.stderr).unwrap();
        assert!(
            stderr.contains(variable),
            "{variable}: the message must name it:\n{output}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "one clear message:\n{output}"
        );
        assert!(!output.contains(sandbox.api_v3_key()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn with(
    env: &[(&'static str, String)],
    key: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    env.iter()
        .map(|(k, v)| {
            if *k == key {
                (*k, value.to_owned())
            } else {
                (*k, v.clone())
            }
        })
        .collect()
}

/// One suite, run against every example shop: they share the environment contract, the page and
/// the engine, and differ only in the web framework that mounts it.
macro_rules! shop_suite {
    ($($shop:ident),+ $(,)?) => {$(
        mod $shop {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn production_mode_against_the_sandbox() {
                super::production_mode_against_the_sandbox(stringify!($shop)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn certificate_mode_downloads_the_platform_certificate() {
                super::certificate_mode_downloads_the_platform_certificate(stringify!($shop))
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn names_the_variable_that_is_wrong() {
                super::names_the_variable_that_is_wrong(stringify!($shop)).await;
            }
        }
    )+};
}

shop_suite!(axum_shop, actix_shop);

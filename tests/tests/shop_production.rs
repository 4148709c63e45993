//! Each example shop (axum_shop, actix_shop) in production mode, configured only through its
//! environment contract, against the sandbox standing in for each upstream (`WXPAY_PROVIDER`
//! `v3`, `v2` with MD5 and with HMAC-SHA256, `gateway`, `qfpay`, `weidoufu`): precreate → pay →
//! notify → PAID, bad inputs, forged and repeated callbacks, and a misconfiguration named by its
//! variable. `openid_*` tests run the openid flows (WeChat OAuth2 `snsapi_base`, QFPay's
//! `get_weixin_oauth_code`, 小程序 `wx.login` → jscode2session) with precreate requiring the
//! resolved openid (`WXPAY_OPENID_MODE=token`). Refunds (two partial ones, an over-refund
//! refused, settled through the upstream, each event once to the hook) run in production mode
//! and in sandbox mode (`sandbox_mode_refunds`) on every upstream that has them.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use wxpay_sandbox::{
    DeliveryKind, NotifyFaults, PayRequest, PlatformMode, Sandbox, SandboxConfig, V2SignType,
};
use wxpay_tests::{Running, example_binary, free_port, scratch_dir};

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
/// `WXPAY_ADMIN_TOKEN` of the shops: the refund routes are mounted, and the status route shows
/// everything to it.
const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdefghijkl";
const WAIT: Duration = Duration::from_secs(20);

/// The upstream a shop is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    V3,
    V2Md5,
    V2HmacSha256,
    Gateway,
    Qfpay,
    Weidoufu,
}

impl Kind {
    /// Whether wxpay refunds through this upstream. The gateway's document has no refund API:
    /// the shop must answer 501 and store nothing.
    fn refunds_supported(self) -> bool {
        match self {
            Kind::V3 | Kind::V2Md5 | Kind::V2HmacSha256 | Kind::Qfpay | Kind::Weidoufu => true,
            Kind::Gateway => false,
        }
    }

    /// `WXPAY_PROVIDER`.
    fn provider(self) -> &'static str {
        match self {
            Kind::V3 => "v3",
            Kind::V2Md5 | Kind::V2HmacSha256 => "v2",
            Kind::Gateway => "gateway",
            Kind::Qfpay => "qfpay",
            Kind::Weidoufu => "weidoufu",
        }
    }

    /// A sandbox for this upstream that also repeats every notification twice and sends a
    /// forged (v3: `WECHATPAY/SIGNTEST/`) copy first.
    async fn sandbox(self, config: SandboxConfig) -> Sandbox {
        let config = config.notify_faults(NotifyFaults {
            duplicates: 2,
            signtest_probe: true,
            ..NotifyFaults::default()
        });
        let config = match self {
            Kind::V2HmacSha256 => config.v2_sign_type(V2SignType::HmacSha256),
            Kind::V2Md5 => config.v2_sign_type(V2SignType::Md5),
            Kind::V3 | Kind::Gateway | Kind::Qfpay | Kind::Weidoufu => config,
        };
        Sandbox::start(config).await.unwrap()
    }

    /// The production environment for `sandbox` (files written to `dir`).
    fn env(self, sandbox: &Sandbox, dir: &Path, port: u16) -> Vec<(&'static str, String)> {
        let common = [
            ("WXPAY_BIND", format!("127.0.0.1:{port}")),
            ("WXPAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            (
                "DATABASE_URL",
                format!("sqlite://{}", dir.join("shop.db").display()),
            ),
            (
                "WXPAY_NOTIFY_URL",
                format!("http://127.0.0.1:{port}/wxpay/notify"),
            ),
        ];
        let mut vars = match self {
            Kind::V3 => return production_env(sandbox, dir, port, false),
            Kind::V2Md5 | Kind::V2HmacSha256 => {
                let tls = sandbox.v2_certificates();
                let write = |name: &str, text: &str| {
                    let path = dir.join(name);
                    std::fs::write(&path, text).unwrap();
                    path.display().to_string()
                };
                vec![
                    ("WXPAY_PROVIDER", "v2".to_owned()),
                    ("WXPAY_MCHID", sandbox.merchant().mchid.clone()),
                    ("WXPAY_APPID", sandbox.merchant().appid.clone()),
                    ("WXPAY_API_KEY", sandbox.v2_api_key().to_owned()),
                    ("WXPAY_SIGN_TYPE", sandbox.v2_sign_type().to_string()),
                    ("WXPAY_API_BASE", sandbox.base_url().to_owned()),
                    (
                        "WXPAY_V2_CERT_FILE",
                        write("apiclient_cert.pem", &tls.merchant_certificate_pem),
                    ),
                    (
                        "WXPAY_V2_KEY_FILE",
                        write("apiclient_key.pem", &tls.merchant_key_pem),
                    ),
                    (
                        "WXPAY_V2_SECAPI_BASE",
                        sandbox.v2_secure_base_url().to_owned(),
                    ),
                    (
                        "WXPAY_V2_CA_FILE",
                        write("sandbox_ca.pem", &tls.ca_certificate_pem),
                    ),
                ]
            }
            Kind::Gateway => vec![
                ("WXPAY_PROVIDER", "gateway".to_owned()),
                ("WXPAY_GATEWAY_URL", sandbox.base_url().to_owned()),
                ("WXPAY_GATEWAY_BIZ_ID", sandbox.gateway().biz_id.clone()),
                ("WXPAY_GATEWAY_APP_KEY", sandbox.gateway().app_key.clone()),
                ("WXPAY_GATEWAY_IP", "127.0.0.1".to_owned()),
            ],
            Kind::Qfpay => vec![
                ("WXPAY_PROVIDER", "qfpay".to_owned()),
                ("WXPAY_QFPAY_URL", sandbox.base_url().to_owned()),
                ("WXPAY_QFPAY_APP_CODE", sandbox.qfpay().app_code.clone()),
                ("WXPAY_QFPAY_CLIENT_KEY", sandbox.qfpay().client_key.clone()),
            ],
            Kind::Weidoufu => vec![
                ("WXPAY_PROVIDER", "weidoufu".to_owned()),
                ("WXPAY_WEIDOUFU_URL", sandbox.base_url().to_owned()),
                (
                    "WXPAY_WEIDOUFU_ACCESS_KEY",
                    sandbox.weidoufu().access_key.clone(),
                ),
                (
                    "WXPAY_WEIDOUFU_SECRET_KEY",
                    sandbox.weidoufu().secret_key.clone(),
                ),
            ],
        };
        vars.extend(common);
        vars
    }

    /// Every secret of `sandbox`'s merchant, none of which may ever be printed.
    fn secrets(sandbox: &Sandbox) -> [&str; 6] {
        [
            sandbox.api_v3_key(),
            sandbox.v2_api_key(),
            sandbox.gateway().app_key.as_str(),
            sandbox.qfpay().client_key.as_str(),
            sandbox.weidoufu().secret_key.as_str(),
            sandbox.app_secret(),
        ]
    }
}

/// The v3 production variables for `sandbox`, with the operator's token.
fn production_env(
    sandbox: &Sandbox,
    dir: &Path,
    port: u16,
    certificate_mode: bool,
) -> Vec<(&'static str, String)> {
    let mut vars = wxpay_tests::v3_production_env(sandbox, dir, port, certificate_mode);
    vars.push(("WXPAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()));
    vars
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// The status route as the operator (`WXPAY_ADMIN_TOKEN`), who sees every field.
async fn status_json(http: &reqwest::Client, base: &str, no: &str) -> Value {
    let url = format!("{base}/wxpay/orders/{no}");
    let response = http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// Precreates an order for the green tea and checks it is PENDING at the catalog's price (another
/// price from the client is refused); returns the client parameters.
async fn precreate_tea(sandbox: &Sandbox, base: &str) -> Value {
    let http = reqwest::Client::new();
    let products = get_json(&http, &format!("{base}/api/products")).await;
    let tea = products
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "green-tea")
        .unwrap()
        .clone();
    // A page that sends another price than the catalog's is refused, not charged it.
    let tampered = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": OPENID, "product_id": "green-tea", "amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 400);
    let refusal: Value = tampered.json().await.unwrap();
    assert_eq!(refusal["code"], "AMOUNT_MISMATCH", "{refusal}");
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": OPENID, "product_id": "green-tea", "amount": tea["price_fen"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let params: Value = response.json().await.unwrap();
    for field in ["timeStamp", "nonceStr", "package", "signType", "paySign"] {
        assert!(params[field].is_string(), "{field}: {params}");
    }
    assert_eq!(params["appId"], sandbox.merchant().appid.as_str());
    let no = params["out_trade_no"].as_str().unwrap();
    let status = status_json(&http, base, no).await;
    assert_eq!(status["status"], "PENDING");
    assert_eq!(
        status["amount"], tea["price_fen"],
        "the server sets the price"
    );
    params
}

/// Buys a product through the shop's routes, pays in the sandbox, and checks the order is PAID
/// once although the sandbox also sent a forged copy (refused) and two repeats (acknowledged).
async fn buy_and_pay(sandbox: &Sandbox, base: &str) -> String {
    let http = reqwest::Client::new();
    let params = precreate_tea(sandbox, base).await;
    let no = params["out_trade_no"].as_str().unwrap().to_owned();

    let pay: PayRequest = serde_json::from_value(params).unwrap();
    let outcome = sandbox.pay(pay).await.unwrap();
    sandbox.wait_for_delivery(&no, WAIT).await.unwrap();
    let records = sandbox.wait_for_attempts(&no, 4, WAIT).await.unwrap();
    for record in &records {
        match record.kind {
            DeliveryKind::Probe => assert!(!record.acknowledged, "forged: {record:?}"),
            _ => assert!(record.acknowledged, "{record:?}"),
        }
    }
    assert!(records.iter().any(|r| r.kind == DeliveryKind::Probe));
    assert!(records.iter().any(|r| r.kind == DeliveryKind::Duplicate));
    let status = status_json(&http, base, &no).await;
    assert_eq!(status["status"], "PAID", "{status}");
    assert_eq!(
        status["transaction_id"].as_str(),
        outcome.transaction_id.as_deref(),
        "{status}"
    );
    assert!(status["paid_at"].is_string(), "{status}");

    // A second precreate of the paid order is refused.
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": OPENID, "product_id": "green-tea", "out_trade_no": no}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(
        status_json(&http, base, &no).await,
        status,
        "nothing changed"
    );
    no
}

/// `POST {base}/wxpay/orders/{no}/refunds` with the admin token (or `token`).
async fn post_refund(base: &str, no: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/wxpay/orders/{no}/refunds"))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The paid order `no` (3 800 fen of green tea) refunded twice in part through the operator
/// route, an over-refund refused, the refunds settled by the upstream (its answer or its
/// notification), and the shop's event hook given each refund event exactly once. An upstream
/// without refunds: a clear 501 that stores nothing.
async fn refunds(kind: Kind, base: &str, no: &str, shop: &Running) {
    let (status, body) = post_refund(base, no, None, &json!({"amount": 100})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("UNAUTHORIZED")),
        "{body}"
    );
    if !kind.refunds_supported() {
        let (status, body) =
            post_refund(base, no, Some(ADMIN_TOKEN), &json!({"amount": 100})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (501, Some("REFUND_NOT_SUPPORTED")),
            "{body}"
        );
        return;
    }
    let first_no = format!("R1{no}");
    let (status, first) = post_refund(
        base,
        no,
        Some(ADMIN_TOKEN),
        &json!({"amount": 1000, "reason": "one cup was cold", "out_refund_no": first_no}),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["out_refund_no"], first_no.as_str());
    assert_eq!(first["amount"], 1000);
    assert!(
        matches!(first["status"].as_str(), Some("PROCESSING" | "SUCCESS")),
        "{first}"
    );
    let (status, second) = post_refund(base, no, Some(ADMIN_TOKEN), &json!({"amount": 800})).await;
    assert_eq!(status, 201, "{second}");
    let second_no = second["out_refund_no"].as_str().unwrap().to_owned();
    let (status, body) = post_refund(base, no, Some(ADMIN_TOKEN), &json!({"amount": 2001})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("REFUND_EXCEEDS_PAID")),
        "{body}"
    );
    let (status, again) = post_refund(
        base,
        no,
        Some(ADMIN_TOKEN),
        &json!({"amount": 1000, "out_refund_no": first_no}),
    )
    .await;
    assert_eq!(
        (status, again["out_refund_no"].as_str()),
        (200, Some(first_no.as_str())),
        "{again}"
    );

    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + WAIT;
    let listed = loop {
        let listed: Value = http
            .get(format!("{base}/wxpay/orders/{no}/refunds"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let refunds = listed["refunds"].as_array().cloned().unwrap_or_default();
        if refunds.len() == 2 && refunds.iter().all(|r| r["status"] == "SUCCESS") {
            break listed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refunds not settled: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed["refunded"], 1800, "{listed}");
    assert_eq!(listed["refundable"], 2000, "{listed}");
    // The hook runs after the store change: give the dispatcher a moment, then count.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let output = shop.output();
        let seen = |no: &str| output.matches(&format!("refund-{no}-SUCCESS")).count();
        if seen(&first_no) >= 1 && seen(&second_no) >= 1 {
            assert_eq!(
                (seen(&first_no), seen(&second_no)),
                (1, 1),
                "each refund event once:\n{output}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refund events not delivered:\n{output}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bad input is a clear 4xx JSON and reaches no upstream.
async fn bad_inputs(base: &str) {
    let http = reqwest::Client::new();
    for (body, code) in [
        (
            json!({"openid": OPENID, "product_id": "gold-bar"}),
            Some("UNKNOWN_PRODUCT"),
        ),
        (json!({"openid": "", "product_id": "green-tea"}), None),
        (
            json!({"openid": OPENID, "product_id": "green-tea", "out_trade_no": "x"}),
            None,
        ),
    ] {
        let response = http
            .post(format!("{base}/wxpay/precreate"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{body}: {status}");
        let reply: Value = response.json().await.unwrap();
        let reply_code = reply["code"].as_str().unwrap_or_default();
        assert!(!reply_code.is_empty(), "{body}: {reply}");
        assert!(reply["message"].is_string(), "{body}: {reply}");
        if let Some(code) = code {
            assert_eq!(reply_code, code, "{body}: {reply}");
        }
    }
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    assert!(response.json::<Value>().await.unwrap()["code"].is_string());
}

/// Percent-encodes everything but ASCII letters and digits.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A callback claiming that the pending order `no` was paid, in `kind`'s format, with a
/// signature the shop's key did not make. The shop refuses it and the order stays PENDING; the
/// same callback properly signed (v2, gateway) is then accepted.
async fn forged_callback(kind: Kind, sandbox: &Sandbox, base: &str) {
    let http = reqwest::Client::new();
    let params = precreate_tea(sandbox, base).await;
    let no = params["out_trade_no"].as_str().unwrap();
    let status = status_json(&http, base, no).await;
    let amount = status["amount"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let request = http.post(format!("{base}/wxpay/notify"));
    let request = match kind {
        Kind::V3 => request
            .header("content-type", "application/json")
            .header("Wechatpay-Timestamp", now.to_string())
            .header("Wechatpay-Nonce", "forgedforgedforged")
            .header("Wechatpay-Signature", "Zm9yZ2VkIHNpZ25hdHVyZQ==")
            .header(
                "Wechatpay-Serial",
                sandbox.platform().public_key_id.as_str(),
            )
            .header("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
            .body(
                json!({
                    "id": "forged-0001",
                    "create_time": "2026-11-23T12:00:00+08:00",
                    "resource_type": "encrypt-resource",
                    "event_type": "TRANSACTION.SUCCESS",
                    "summary": "支付成功",
                    "resource": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "original_type": "transaction",
                        "associated_data": "transaction",
                        "nonce": "forgednonce1",
                        "ciphertext": "Zm9yZ2VkIGNpcGhlcnRleHQgMDEyMzQ1Njc4OQ=="
                    }
                })
                .to_string(),
            ),
        Kind::V2Md5 | Kind::V2HmacSha256 => {
            let sign = "0".repeat(if kind == Kind::V2Md5 { 32 } else { 64 });
            request
                .header("content-type", "text/xml")
                .body(v2_payment_xml(sandbox, no, amount, Some(&sign)))
        }
        Kind::Gateway => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "{}&sign={}",
                gateway_payment_form(sandbox, no, amount),
                "0".repeat(32)
            )),
        Kind::Qfpay => request
            .header("content-type", "application/json")
            .header("X-QF-SIGN", "0".repeat(32))
            .body(qfpay_payment_json(no, amount)),
        Kind::Weidoufu => {
            request
                .header("content-type", "application/json")
                .body(weidoufu_payment_json(
                    sandbox,
                    no,
                    amount,
                    Some(&"0".repeat(32)),
                ))
        }
    };
    let response = request.send().await.unwrap();
    assert!(
        !response.status().is_success(),
        "a forged callback must be refused: {}",
        response.status()
    );
    // Garbage too.
    let response = http
        .post(format!("{base}/wxpay/notify"))
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert!(!response.status().is_success());
    let after = status_json(&http, base, no).await;
    assert_eq!(after["status"], "PENDING", "nothing changed: {after}");
    assert!(after["transaction_id"].is_null(), "{after}");

    // Control: the same callback signed with the merchant's real key is accepted, so the forged
    // one was refused for its signature alone.
    let genuine = match kind {
        Kind::V3 => return,
        Kind::V2Md5 | Kind::V2HmacSha256 => v2_payment_xml(sandbox, no, amount, None),
        Kind::Gateway => {
            let body = gateway_payment_form(sandbox, no, amount);
            let key = wxpay_core::gateway::AppKey::new(sandbox.gateway().app_key.as_str()).unwrap();
            let sign = wxpay_core::gateway::open_sign(
                wxpay_core::gateway::sign::signed_fields(&body),
                &key,
            );
            format!("{body}&sign={sign}")
        }
        Kind::Qfpay => qfpay_payment_json(no, amount),
        Kind::Weidoufu => weidoufu_payment_json(sandbox, no, amount, None),
    };
    let mut request = http.post(format!("{base}/wxpay/notify"));
    if kind == Kind::Weidoufu {
        request = request.header("content-type", "application/json");
    }
    if kind == Kind::Qfpay {
        let key = sandbox.qfpay().client_key.as_str();
        request = request.header("content-type", "application/json").header(
            "X-QF-SIGN",
            wxpay_core::qfpay::sign::sign_body(genuine.as_bytes(), key),
        );
    }
    let response = request.body(genuine).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let after = status_json(&http, base, no).await;
    assert_eq!(after["status"], "PAID", "{after}");
}

/// An API v2 payment notification for order `no`, signed with `sign` or else with the
/// merchant's real key.
fn v2_payment_xml(sandbox: &Sandbox, no: &str, amount: u64, sign: Option<&str>) -> String {
    use wxpay_core::v2::{ApiKey, Params, SignType, sign::sign_params, xml};
    let merchant = sandbox.merchant();
    let sign_type: SignType = sandbox.v2_sign_type().to_string().parse().unwrap();
    let mut params: Params = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", merchant.appid.as_str()),
        ("mch_id", merchant.mchid.as_str()),
        ("nonce_str", "forgedforgedforged"),
        ("openid", OPENID),
        ("trade_type", "JSAPI"),
        ("bank_type", "OTHERS"),
        ("fee_type", "CNY"),
        ("transaction_id", "4200000000000000000000000001"),
        ("out_trade_no", no),
        ("time_end", "20261123120000"),
        ("sign_type", sign_type.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    params.insert("total_fee".into(), amount.to_string());
    params.insert("cash_fee".into(), amount.to_string());
    let sign = match sign {
        Some(sign) => sign.to_owned(),
        None => sign_params(
            &params,
            &ApiKey::new(sandbox.v2_api_key()).unwrap(),
            sign_type,
        ),
    };
    params.insert("sign".into(), sign);
    xml::write(&params).unwrap()
}

/// A gateway payment callback for order `no`, without its `sign`.
fn gateway_payment_form(sandbox: &Sandbox, no: &str, amount: u64) -> String {
    let biz_content = json!({
        "uid": "forged",
        "trade_id": "forged-trade-0001",
        "total_amount": amount,
        "trade_pay_time": "2026-11-23 12:00:00",
        "trade_status": "SUCCESS",
        "pay_type": "113",
        "callback_content": "",
        "title": "forged",
        "biz_order_id": no,
    });
    format!(
        "biz_content={}&nonce_str=forgedforgedforged&biz_id={}&sign_type=MD5",
        form_encode(&biz_content.to_string()),
        form_encode(&sandbox.gateway().biz_id),
    )
}

/// A QFPay payment notification for order `no` (the fields of QFPay's "Asynchronous
/// Notifications" page); its signature goes in the `X-QF-SIGN` header.
fn qfpay_payment_json(no: &str, amount: u64) -> String {
    json!({
        "status": "1",
        "notify_type": "payment",
        "pay_type": "800207",
        "syssn": "20261123000300020000000001",
        "out_trade_no": no,
        "txamt": amount.to_string(),
        "txcurrcd": "CNY",
        "txdtm": "2026-11-23 12:00:00",
        "sysdtm": "2026-11-23 12:00:01",
        "paydtm": "2026-11-23 12:00:05",
        "respcd": "0000",
        "cancel": "0",
        "chnlsn": "4200000000000000000000000002",
    })
    .to_string()
}

/// A weidoufu payment callback for order `no` (the issue-8 contract), signed with `sign` or
/// else with the application's real secret key.
fn weidoufu_payment_json(sandbox: &Sandbox, no: &str, amount: u64, sign: Option<&str>) -> String {
    use wxpay_core::weidoufu::{SecretKey, callback_sign};
    // The live callback: `{"sign", "content"}`, content compact JSON in weidoufu's field order.
    let content = format!(
        r#"{{"mch_trade_no":"202611230000000000000001","out_order_no":"{no}","transaction_id":"4200000000000000000000000003","total_fee":{amount},"attach":null,"trade_type":9,"pay_type":1,"bank_type":"OTHERS","pay_time":"2026-11-23 12:00:05","status":2,"nonce_str":"forgedforgedforged"}}"#
    );
    let sign = match sign {
        Some(sign) => sign.to_owned(),
        None => callback_sign(
            content.as_bytes(),
            &SecretKey::new(sandbox.weidoufu().secret_key.as_str()).unwrap(),
        ),
    };
    format!(r#"{{"sign":"{sign}","content":{content}}}"#)
}

/// The whole suite for one shop and one upstream, in production mode against the sandbox.
async fn production_mode_against_the_sandbox(shop_name: &str, kind: Kind) {
    let binary = example_binary(shop_name);
    let sandbox = kind.sandbox(SandboxConfig::for_tests()).await;
    let dir = scratch_dir(&format!("{shop_name}-{}-production", kind.provider()));
    let port = free_port();
    let env = kind.env(&sandbox, &dir, port);
    let mut shop = Running::start(&binary, &dir, &env);
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    let output = shop.output();
    assert!(output.contains("PRODUCTION MODE"), "{output}");
    assert!(!output.contains("SANDBOX MODE"), "{output}");
    assert!(
        output.contains(&format!("WXPAY_PROVIDER={}", kind.provider())),
        "the banner names the provider:\n{output}"
    );
    bad_inputs(&base).await;
    let paid = buy_and_pay(&sandbox, &base).await;
    forged_callback(kind, &sandbox, &base).await;
    refunds(kind, &base, &paid, &shop).await;
    assert!(dir.join("shop.db").exists(), "DATABASE_URL is honoured");
    let output = shop.output();
    for secret in Kind::secrets(&sandbox) {
        assert!(!output.contains(secret), "a secret must never be printed");
    }
    assert!(
        !output.contains(ADMIN_TOKEN),
        "the admin token must never be printed"
    );
    drop(shop);
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `WXPAY_CHECKOUT=amount` in production mode: the seeds' own bodies are served as written
/// (seed 000's `{openid, amount}`, seed 001's `{openid, pay_amount, title, biz_order_id, …}`),
/// and a bad amount is refused before anything reaches the upstream.
async fn amount_mode_serves_the_seed_bodies(shop_name: &str, kind: Kind) {
    let binary = example_binary(shop_name);
    let sandbox = kind.sandbox(SandboxConfig::for_tests()).await;
    let dir = scratch_dir(&format!("{shop_name}-{}-amount", kind.provider()));
    let port = free_port();
    let mut env = kind.env(&sandbox, &dir, port);
    env.push(("WXPAY_CHECKOUT", "amount".to_owned()));
    env.push(("WXPAY_SEED000_COMPAT", "1".to_owned()));
    let mut shop = Running::start(&binary, &dir, &env);
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    assert!(
        shop.output().contains("WXPAY_CHECKOUT=amount"),
        "{}",
        shop.output()
    );
    let http = reqwest::Client::new();
    let precreate = |body: Value| {
        let http = http.clone();
        let url = format!("{base}/wxpay/precreate");
        async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    let refused = [
        (json!({"openid": OPENID, "amount": 0}), "INVALID_FIELD"),
        (
            json!({"openid": OPENID, "amount": 2_147_483_648_u64}),
            "INVALID_FIELD",
        ),
        (json!({"openid": OPENID, "amount": -1}), "INVALID_FIELD"),
        (json!({"openid": OPENID, "amount": 1.5}), "INVALID_FIELD"),
        (json!({"openid": OPENID, "amount": "100"}), "INVALID_FIELD"),
        (json!({"openid": OPENID}), "INVALID_FIELD"),
        (
            json!({"openid": OPENID, "amount": 1_000_001}),
            "AMOUNT_OUT_OF_RANGE",
        ),
        (
            json!({"openid": OPENID, "pay_amount": 0, "title": "测试", "biz_order_id": "SEED001ZERO"}),
            "INVALID_FIELD",
        ),
    ];
    for (body, code) in refused {
        let (status, answer) = precreate(body.clone()).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{body} → {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(
        sandbox.order_numbers().is_empty(),
        "a refused body reached the upstream: {:?}",
        sandbox.order_numbers()
    );

    // Seed 000's request, as its mini program sends it.
    let (status, params) = precreate(json!({"openid": OPENID, "amount": 100})).await;
    assert_eq!(status, 200, "{params}");
    let seed000 = params["out_trade_no"].as_str().unwrap().to_owned();
    let order = status_json(&http, &base, &seed000).await;
    assert_eq!(
        (order["status"].as_str(), order["amount"].as_u64()),
        (Some("PENDING"), Some(100))
    );

    // Seed 001's request: its names for amount, title and order number; its other fields
    // (ip, notify_url, biz_id, ucid) are not the client's to decide and are ignored.
    // 28 characters: within every upstream's limits (weidoufu takes 18 to 32).
    let biz_order_id = format!("S001{}", wxpay_core::fields::OutTradeNo::generate());
    let (status, params) = precreate(json!({
        "ucid": "123",
        "ip": "127.0.0.1",
        "openid": OPENID,
        "biz_order_id": biz_order_id,
        "pay_amount": 1,
        "title": "测试",
        "notify_url": "http://attacker.example/notify",
        "biz_id": "abc",
        "extra": "342rewrs",
    }))
    .await;
    assert_eq!(status, 200, "{params}");
    assert_eq!(params["out_trade_no"], biz_order_id.as_str());
    let order = status_json(&http, &base, &biz_order_id).await;
    assert_eq!(order["amount"], 1);
    assert_eq!(order["description"], "测试");
    assert_eq!(sandbox.order_numbers().len(), 2);
    assert!(
        [&seed000, &biz_order_id]
            .iter()
            .all(|no| sandbox.order_numbers().contains(no))
    );

    // Seed 000's own route (WXPAY_SEED000_COMPAT=1): its keys exactly, its gRPC errors.
    let compat = format!("{base}/wx_payment.WxPaymentService/jsapi");
    let answer = http
        .post(&compat)
        .json(&json!({"openid": OPENID, "amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let mut keys: Vec<&str> = answer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["nonceStr", "package", "paySign", "signType", "timestamp"],
        "{answer}"
    );
    let refused = http
        .post(&compat)
        .json(&json!({"openid": OPENID, "amount": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(
        (refused["code"].as_u64(), &refused["details"]),
        (Some(3), &json!([]))
    );
    assert_eq!(sandbox.order_numbers().len(), 3);
    drop(shop);
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sandbox mode (no production variables: the shop starts its own sandbox): buy, pay through
/// the sandbox's `/sandbox/pay`, then the same refund journey as in production mode.
async fn sandbox_mode_refunds(shop_name: &str, kind: Kind) {
    let binary = example_binary(shop_name);
    let dir = scratch_dir(&format!("{shop_name}-{}-sandbox-refunds", kind.provider()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = vec![
        ("WXPAY_PROVIDER", kind.provider().to_owned()),
        ("WXPAY_BIND", format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("shop.db").display()),
        ),
        ("WXPAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        // The payer's openid from the body, as the seeds' clients send it (the sign-in flows
        // have their own tests).
        ("WXPAY_OPENID_MODE", "body".to_owned()),
    ];
    if kind == Kind::V2HmacSha256 {
        env.push(("WXPAY_SIGN_TYPE", "HMAC-SHA256".to_owned()));
    }
    let mut shop = Running::start(&binary, &dir, &env);
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    assert!(shop.output().contains("SANDBOX MODE"), "{}", shop.output());

    let http = reqwest::Client::new();
    let config = get_json(&http, &format!("{base}/api/config")).await;
    let sandbox_base = config["jsbridge"]
        .as_str()
        .and_then(|url| url.strip_suffix("/sandbox/jsbridge.js"))
        .unwrap_or_else(|| panic!("no sandbox in {config}"))
        .to_owned();
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": config["openid"], "product_id": "green-tea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let params: Value = response.json().await.unwrap();
    let no = params["out_trade_no"].as_str().unwrap().to_owned();
    let paid = http
        .post(format!("{sandbox_base}/sandbox/pay"))
        .json(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200, "{}", paid.text().await.unwrap());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let status = status_json(&http, &base, &no).await;
        if status["status"] == "PAID" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not paid: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    refunds(kind, &base, &no, &shop).await;
    assert!(
        !shop.output().contains(ADMIN_TOKEN),
        "the admin token must never be printed"
    );
    drop(shop);
    let _ = std::fs::remove_dir_all(&dir);
}

/// API v3 only: with no platform public key configured, the shop downloads the certificates.
async fn certificate_mode_downloads_the_platform_certificate(shop_name: &str) {
    let binary = example_binary(shop_name);
    let sandbox = Kind::V3
        .sandbox(SandboxConfig::for_tests().platform_mode(PlatformMode::Certificate))
        .await;
    let dir = scratch_dir(&format!("{shop_name}-certificate"));
    let port = free_port();
    let mut shop = Running::start(&binary, &dir, &production_env(&sandbox, &dir, port, true));
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    buy_and_pay(&sandbox, &base).await;
    drop(shop);
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// API v3, the sandbox in "both" mode (a merchant half-way through the switch from platform
/// certificates to the platform public key): a shop that knows only the certificate (as an SDK
/// configured before the switch) and a shop that knows only the public key both buy and pay,
/// their responses and notifications signed with the key each can check.
async fn both_mode_serves_certificate_and_public_key_clients(shop_name: &str) {
    let binary = example_binary(shop_name);
    for certificate_only in [true, false] {
        let sandbox = Kind::V3
            .sandbox(SandboxConfig::for_tests().platform_mode(PlatformMode::Both))
            .await;
        let dir = scratch_dir(&format!("{shop_name}-both-{certificate_only}"));
        let port = free_port();
        let env = production_env(&sandbox, &dir, port, certificate_only);
        let mut shop = Running::start(&binary, &dir, &env);
        let base = format!("http://127.0.0.1:{port}");
        shop.wait_healthy(&base, Duration::from_secs(60)).await;
        buy_and_pay(&sandbox, &base).await;
        drop(shop);
        sandbox.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The variables that make precreate require the openid the shop resolved itself: token mode,
/// the sandbox's WeChat app (jscode2session, OAuth2), the shop's public URL and a token key.
fn openid_env(sandbox: &Sandbox, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("WXPAY_OPENID_MODE", "token".to_owned()),
        ("WXPAY_APP_SECRET", sandbox.app_secret().to_owned()),
        ("WXPAY_WECHAT_API_URL", sandbox.base_url().to_owned()),
        ("WXPAY_WECHAT_OPEN_URL", sandbox.base_url().to_owned()),
        ("WXPAY_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        (
            "WXPAY_OPENID_TOKEN_KEY",
            "an e2e openid token key of 32+ bytes".to_owned(),
        ),
    ]
}

/// `name=value` of the cookie `name` that `response` sets.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The redirect target of `response`, which must be a redirect.
fn location(response: &reqwest::Response) -> String {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {}",
        response.status()
    );
    response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// `url` with `sandbox_openid=payer` added to its query (before any `#fragment`).
fn as_payer(url: &str, payer: &str) -> String {
    let (url, fragment) = url
        .split_once('#')
        .map_or((url, None), |(u, f)| (u, Some(f)));
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut out = format!("{url}{separator}sandbox_openid={payer}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Walks the H5 sign-in redirect chain by hand as `payer`: the shop's authorize route → the
/// upstream's OAuth page (WeChat OAuth2, or QFPay's get_weixin_oauth_code) → the shop's
/// callback with the state cookie. Returns the callback URL and the `wxpay_openid=…` cookie.
async fn oauth_sign_in(kind: Kind, sandbox: &Sandbox, base: &str, payer: &str) -> (String, String) {
    let http = no_redirects();
    let response = http
        .get(format!(
            "{base}/wxpay/openid/authorize?return_to=%2F%3Ffrom%3Doauth"
        ))
        .send()
        .await
        .unwrap();
    let upstream = location(&response);
    let state = set_cookie(&response, "wxpay_openid_state").expect("a state cookie");
    assert!(upstream.starts_with(sandbox.base_url()), "{upstream}");
    let page = if kind == Kind::Qfpay {
        "/tool/v1/get_weixin_oauth_code"
    } else {
        "/connect/oauth2/authorize"
    };
    assert!(
        upstream.contains(page),
        "{kind:?} signs in at {page}: {upstream}"
    );
    let response = http.get(as_payer(&upstream, payer)).send().await.unwrap();
    let callback = location(&response);
    assert!(
        callback.starts_with(&format!("{base}/wxpay/openid/callback")),
        "{callback}"
    );
    let response = http
        .get(&callback)
        .header(reqwest::header::COOKIE, &state)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/?from=oauth", "back to return_to");
    let token = set_cookie(&response, "wxpay_openid").expect("the openid cookie");
    (callback, token)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The openid flows with precreate requiring the resolved openid: H5 sign-in through the
/// upstream's OAuth redirect (cookie), 小程序 `wx.login` code → `POST /wxpay/openid/session`
/// (token header), and everything a client could try instead.
async fn openid_flows(shop_name: &str, kind: Kind) {
    let binary = example_binary(shop_name);
    let sandbox = kind.sandbox(SandboxConfig::for_tests()).await;
    let dir = scratch_dir(&format!("{shop_name}-{}-openid", kind.provider()));
    let port = free_port();
    let mut env = kind.env(&sandbox, &dir, port);
    for (key, value) in openid_env(&sandbox, port) {
        env = with(&env, key, &value);
    }
    env = with(&env, "WXPAY_APPID", &sandbox.merchant().appid);
    let mut shop = Running::start(&binary, &dir, &env);
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    let http = no_redirects();
    let precreate = |body: Value| http.post(format!("{base}/wxpay/precreate")).json(&body);

    // No resolved openid: an openid in the body is not trusted.
    let response = precreate(json!({"openid": OPENID, "product_id": "postcard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "OPENID_REQUIRED"
    );

    // H5: the OAuth redirect chain, then precreate with the cookie alone.
    let payer = "oH5PayerSignedInThroughOAuth";
    let (callback, cookie) = oauth_sign_in(kind, &sandbox, &base, payer).await;
    let me = http
        .get(format!("{base}/wxpay/openid/me"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["openid"], payer);
    let response = precreate(json!({"product_id": "postcard"}))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let params: Value = response.json().await.unwrap();
    let no = params["out_trade_no"].as_str().unwrap().to_owned();
    let pay: PayRequest = serde_json::from_value(params).unwrap();
    sandbox.pay(pay).await.unwrap();
    sandbox.wait_for_delivery(&no, WAIT).await.unwrap();
    let status = status_json(&http, &base, &no).await;
    assert_eq!(status["status"], "PAID", "{status}");

    // Someone else's openid next to the cookie is refused.
    let response = precreate(json!({"openid": OPENID, "product_id": "postcard"}))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "OPENID_MISMATCH"
    );
    // A tampered cookie is no cookie.
    let (name, value) = cookie.split_once('=').unwrap();
    let mut tampered: Vec<u8> = value.bytes().collect();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{name}={}", String::from_utf8(tampered).unwrap());
    let response = precreate(json!({"product_id": "postcard"}))
        .header(reqwest::header::COOKIE, tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A replayed callback (its code is spent) sets no cookie.
    let response = http.get(&callback).send().await.unwrap();
    assert!(!response.status().is_success() && !response.status().is_redirection());
    assert!(set_cookie(&response, "wxpay_openid").is_none());
    // No open redirect.
    let response = http
        .get(format!(
            "{base}/wxpay/openid/authorize?return_to=https%3A%2F%2Fevil.example%2F"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // 小程序: a wx.login code exchanged by the shop for a token sent in a header.
    let mini_payer = "oMiniProgramPayerFromWxLogin";
    let code = sandbox.wx_login(Some(mini_payer)).unwrap();
    let session = |code: String| {
        http.post(format!("{base}/wxpay/openid/session"))
            .json(&json!({ "code": code }))
            .send()
    };
    let response = session(code.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let session_reply: Value = response.json().await.unwrap();
    assert_eq!(session_reply["openid"], mini_payer);
    let token = session_reply["openid_token"].as_str().unwrap().to_owned();
    let response = precreate(json!({"product_id": "postcard"}))
        .header("X-WxPay-Openid-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = session(code).await.unwrap();
    assert!(
        !response.status().is_success(),
        "a wx.login code works once"
    );

    let output = shop.output();
    for secret in Kind::secrets(&sandbox) {
        assert!(!output.contains(secret), "a secret must never be printed");
    }
    assert!(!output.contains(&token), "tokens are never logged");
    drop(shop);
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// weidoufu's Alipay path (`WXPAY_WEIDOUFU_PAY_TYPE=alipay`, an Alipay mini program): the
/// precreate body's payer is the Alipay `buyer_id`, the answer Alipay's `tradeNO`, and the
/// signed callback marks the order paid.
async fn weidoufu_alipay(shop_name: &str) {
    let binary = example_binary(shop_name);
    let sandbox = Kind::Weidoufu.sandbox(SandboxConfig::for_tests()).await;
    let dir = scratch_dir(&format!("{shop_name}-weidoufu-alipay"));
    let port = free_port();
    let env = with(
        &Kind::Weidoufu.env(&sandbox, &dir, port),
        "WXPAY_WEIDOUFU_PAY_TYPE",
        "alipay",
    );
    let mut shop = Running::start(&binary, &dir, &env);
    let base = format!("http://127.0.0.1:{port}");
    shop.wait_healthy(&base, Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&json!({"openid": "2088102177846880", "product_id": "green-tea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    let trade_no = reply["tradeNO"]
        .as_str()
        .expect("Alipay's tradeNO")
        .to_owned();
    assert!(reply["paySign"].is_null(), "no WeChat parameters: {reply}");
    let no = reply["out_trade_no"].as_str().unwrap().to_owned();
    let outcome = sandbox
        .pay(PayRequest {
            alipay_trade_no: Some(trade_no),
            ..PayRequest::default()
        })
        .await
        .unwrap();
    sandbox.wait_for_delivery(&no, WAIT).await.unwrap();
    let status = status_json(&http, &base, &no).await;
    assert_eq!(status["status"], "PAID", "{status}");
    assert_eq!(
        status["transaction_id"].as_str(),
        outcome.transaction_id.as_deref()
    );
    drop(shop);
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn without(env: &[(&'static str, String)], key: &str) -> Vec<(&'static str, String)> {
    env.iter().filter(|(k, _)| *k != key).cloned().collect()
}

/// The misconfigurations of `kind`'s environment, each with the variable its message must name.
fn misconfigurations(
    kind: Kind,
    base_env: &[(&'static str, String)],
) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let mut cases = vec![
        ("WXPAY_PROVIDER", with(base_env, "WXPAY_PROVIDER", "v4")),
        (
            "WXPAY_NOTIFY_URL",
            with(
                base_env,
                "WXPAY_NOTIFY_URL",
                "http://shop.example/wxpay/notify",
            ),
        ),
        ("WXPAY_BIND", with(base_env, "WXPAY_BIND", "not-an-address")),
    ];
    match kind {
        Kind::V3 => cases.extend([
            ("WXPAY_APIV3_KEY", without(base_env, "WXPAY_APIV3_KEY")),
            (
                "WXPAY_APIV3_KEY",
                with(base_env, "WXPAY_APIV3_KEY", "too-short"),
            ),
            (
                "WXPAY_MERCHANT_KEY_FILE",
                with(
                    base_env,
                    "WXPAY_MERCHANT_KEY_FILE",
                    "/nonexistent/apiclient_key.pem",
                ),
            ),
            (
                "WXPAY_PLATFORM_PUBLIC_KEY_ID",
                without(base_env, "WXPAY_PLATFORM_PUBLIC_KEY_ID"),
            ),
        ]),
        Kind::V2Md5 | Kind::V2HmacSha256 => cases.extend([
            ("WXPAY_API_KEY", without(base_env, "WXPAY_API_KEY")),
            (
                "WXPAY_API_KEY",
                with(base_env, "WXPAY_API_KEY", "too-short"),
            ),
            ("WXPAY_APPID", without(base_env, "WXPAY_APPID")),
            ("WXPAY_SIGN_TYPE", with(base_env, "WXPAY_SIGN_TYPE", "SHA1")),
            (
                "WXPAY_API_BASE",
                with(base_env, "WXPAY_API_BASE", "ftp://x"),
            ),
            ("WXPAY_V2_KEY_FILE", without(base_env, "WXPAY_V2_KEY_FILE")),
            (
                "WXPAY_V2_CERT_FILE",
                with(
                    base_env,
                    "WXPAY_V2_CERT_FILE",
                    "/nonexistent/apiclient_cert.pem",
                ),
            ),
            (
                "WXPAY_V2_SECAPI_BASE",
                with(base_env, "WXPAY_V2_SECAPI_BASE", "ftp://x"),
            ),
        ]),
        Kind::Gateway => cases.extend([
            (
                "WXPAY_GATEWAY_APP_KEY",
                without(base_env, "WXPAY_GATEWAY_APP_KEY"),
            ),
            (
                "WXPAY_GATEWAY_BIZ_ID",
                without(base_env, "WXPAY_GATEWAY_BIZ_ID"),
            ),
            (
                "WXPAY_GATEWAY_IP",
                with(base_env, "WXPAY_GATEWAY_IP", "not-an-ip"),
            ),
            (
                "WXPAY_GATEWAY_URL",
                with(base_env, "WXPAY_GATEWAY_URL", "ftp://gateway.example"),
            ),
            ("WXPAY_NOTIFY_URL", without(base_env, "WXPAY_NOTIFY_URL")),
        ]),
        Kind::Qfpay => cases.extend([
            (
                "WXPAY_QFPAY_CLIENT_KEY",
                without(base_env, "WXPAY_QFPAY_CLIENT_KEY"),
            ),
            (
                "WXPAY_QFPAY_APP_CODE",
                without(base_env, "WXPAY_QFPAY_APP_CODE"),
            ),
            (
                "WXPAY_QFPAY_URL",
                with(base_env, "WXPAY_QFPAY_URL", "ftp://qfpay.example"),
            ),
            (
                "WXPAY_QFPAY_CURRENCY",
                with(base_env, "WXPAY_QFPAY_CURRENCY", "dollars"),
            ),
            (
                "WXPAY_OPENID_TOKEN_KEY",
                with(base_env, "WXPAY_OPENID_MODE", "token"),
            ),
        ]),
        Kind::Weidoufu => cases.extend([
            (
                "WXPAY_WEIDOUFU_SECRET_KEY",
                without(base_env, "WXPAY_WEIDOUFU_SECRET_KEY"),
            ),
            (
                "WXPAY_WEIDOUFU_ACCESS_KEY",
                without(base_env, "WXPAY_WEIDOUFU_ACCESS_KEY"),
            ),
            (
                "WXPAY_WEIDOUFU_PAY_TYPE",
                with(base_env, "WXPAY_WEIDOUFU_PAY_TYPE", "paypal"),
            ),
            (
                "WXPAY_OPENID_MODE",
                with(base_env, "WXPAY_OPENID_MODE", "cookie"),
            ),
        ]),
    }
    cases
}

async fn names_the_variable_that_is_wrong(shop_name: &str, kind: Kind) {
    let binary = example_binary(shop_name);
    let sandbox = kind.sandbox(SandboxConfig::for_tests()).await;
    let dir = scratch_dir(&format!("{shop_name}-{}-misconfigured", kind.provider()));
    let port = free_port();
    let mut base_env = kind.env(&sandbox, &dir, port);
    if kind == Kind::V3 {
        base_env.push(("WXPAY_PROVIDER", "v3".to_owned()));
    }
    for (variable, env) in misconfigurations(kind, &base_env) {
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
        for secret in Kind::secrets(&sandbox) {
            assert!(!output.contains(secret), "{variable}: a secret was printed");
        }
    }
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn with(
    env: &[(&'static str, String)],
    key: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    let mut env = without(env, key);
    env.push((key, value.to_owned()));
    env
}

/// One suite, run against every example shop and every upstream: the shops share the
/// environment contract, the page and the engine, and differ only in the web framework that
/// mounts it; the upstreams differ only in `WXPAY_PROVIDER` and its variables.
/// `shop_suite!(axum_shop, …)` generates `mod axum_shop { mod v3 {…} mod v2_md5 {…} … }`.
macro_rules! shop_suite {
    ($($shop:ident),+ $(,)?) => {$(
        mod $shop {
            provider_suite!(
                $shop:
                v3 => V3,
                v2_md5 => V2Md5,
                v2_hmac_sha256 => V2HmacSha256,
                gateway => Gateway,
                qfpay => Qfpay,
                weidoufu => Weidoufu,
            );

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn weidoufu_alipay() {
                crate::weidoufu_alipay(stringify!($shop)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openid_v3() {
                crate::openid_flows(stringify!($shop), crate::Kind::V3).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openid_qfpay() {
                crate::openid_flows(stringify!($shop), crate::Kind::Qfpay).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openid_weidoufu() {
                crate::openid_flows(stringify!($shop), crate::Kind::Weidoufu).await;
            }

            /// API v3 only (the other upstreams have no platform certificates).
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v3_certificate_mode_downloads_the_platform_certificate() {
                crate::certificate_mode_downloads_the_platform_certificate(stringify!($shop))
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v3_both_mode_serves_certificate_and_public_key_clients() {
                crate::both_mode_serves_certificate_and_public_key_clients(stringify!($shop))
                    .await;
            }
        }
    )+};
}

/// The tests of one shop, one module per upstream.
macro_rules! provider_suite {
    ($shop:ident: $($provider:ident => $kind:ident),+ $(,)?) => {$(
        mod $provider {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn production_mode_against_the_sandbox() {
                crate::production_mode_against_the_sandbox(
                    stringify!($shop),
                    crate::Kind::$kind,
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn amount_mode_serves_the_seed_bodies() {
                crate::amount_mode_serves_the_seed_bodies(stringify!($shop), crate::Kind::$kind)
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sandbox_mode_refunds() {
                crate::sandbox_mode_refunds(stringify!($shop), crate::Kind::$kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn names_the_variable_that_is_wrong() {
                crate::names_the_variable_that_is_wrong(stringify!($shop), crate::Kind::$kind)
                    .await;
            }
        }
    )+};
}

shop_suite!(axum_shop, actix_shop);

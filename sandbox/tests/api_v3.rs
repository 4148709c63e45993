//! End-to-end tests of the API v3 emulator over HTTP, with a tiny client written here (it signs
//! with aws-lc-rs directly and shares nothing with the sandbox's own code).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::{Value, json};
use wxpay_sandbox::{
    DeliveryKind, NotifyFaults, PayRequest, PlatformMode, RetrySchedule, Sandbox, SandboxConfig,
    SandboxError, SimulatedOutcome,
};

const WAIT: Duration = Duration::from_secs(20);

fn pem_der(text: &str) -> Vec<u8> {
    pem::parse(text.trim()).unwrap().contents().to_vec()
}

fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// A minimal, independent WeChat Pay v3 merchant client.
struct Client {
    base: String,
    mchid: String,
    appid: String,
    serial: String,
    key: KeyPair,
    platform_spki: Vec<u8>,
    http: reqwest::Client,
}

struct Resp {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .to_str()
            .unwrap()
    }
}

fn rsa_sign(key: &KeyPair, msg: &[u8]) -> String {
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        msg,
        &mut sig,
    )
    .unwrap();
    B64.encode(sig)
}

fn rsa_verify(spki: &[u8], msg: &[u8], sig_b64: &str) -> bool {
    let Ok(sig) = B64.decode(sig_b64) else {
        return false;
    };
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki)
        .verify(msg, &sig)
        .is_ok()
}

/// Checks the `Wechatpay-*` headers over the exact body with `spki`.
fn verify_signed(headers: &reqwest::header::HeaderMap, body: &[u8], spki: &[u8]) -> String {
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("Wechatpay-Signature-Type"), "WECHATPAY2-SHA256-RSA2048");
    let ts = h("Wechatpay-Timestamp");
    let nonce = h("Wechatpay-Nonce");
    let mut msg = format!("{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    assert!(
        rsa_verify(spki, &msg, &h("Wechatpay-Signature")),
        "response signature does not verify"
    );
    h("Wechatpay-Serial")
}

impl Client {
    fn new(sandbox: &Sandbox) -> Self {
        let m = sandbox.merchant();
        let key = KeyPair::from_pkcs8(&pem_der(m.private_key_pem.as_deref().unwrap())).unwrap();
        Self {
            base: sandbox.base_url().to_owned(),
            mchid: m.mchid.clone(),
            appid: m.appid.clone(),
            serial: m.serial.clone(),
            key,
            platform_spki: pem_der(&sandbox.platform().public_key_pem),
            http: reqwest::Client::new(),
        }
    }

    fn authorization(&self, method: &str, path: &str, ts: &str, body: &str) -> String {
        let nonce = format!("N{}", ts.chars().rev().collect::<String>());
        let msg = format!("{method}\n{path}\n{ts}\n{nonce}\n{body}\n");
        let sig = rsa_sign(&self.key, msg.as_bytes());
        format!(
            r#"WECHATPAY2-SHA256-RSA2048 mchid="{}",nonce_str="{nonce}",timestamp="{ts}",serial_no="{}",signature="{sig}""#,
            self.mchid, self.serial
        )
    }

    async fn send(&self, method: &str, path: &str, body: &str, auth: Option<String>) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self
                .http
                .post(url)
                .header("Content-Type", "application/json"),
        }
        .header("Accept", "application/json")
        .header("User-Agent", "wxpay-sandbox-test");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if !body.is_empty() {
            req = req.body(body.to_owned());
        }
        let resp = req.send().await.unwrap();
        Resp {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.unwrap(),
        }
    }

    /// A correctly signed request; the response signature is checked.
    async fn call(&self, method: &str, path: &str, body: &str) -> Resp {
        let auth = self.authorization(method, path, &now(), body);
        let r = self.send(method, path, body, Some(auth)).await;
        verify_signed(&r.headers, &r.body, &self.platform_spki);
        assert!(!r.header("Request-ID").is_empty());
        r
    }

    fn prepay_body(&self, out_trade_no: &str, total: i64, notify_url: &str) -> String {
        json!({
            "appid": self.appid,
            "mchid": self.mchid,
            "description": "Sandbox T-shirt",
            "out_trade_no": out_trade_no,
            "notify_url": notify_url,
            "attach": "color=red",
            "amount": { "total": total, "currency": "CNY" },
            "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
        })
        .to_string()
    }

    async fn prepay(&self, out_trade_no: &str, total: i64, notify_url: &str) -> String {
        let r = self
            .call(
                "POST",
                "/v3/pay/transactions/jsapi",
                &self.prepay_body(out_trade_no, total, notify_url),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.json()["prepay_id"].as_str().unwrap().to_owned()
    }

    fn pay_request(&self, prepay_id: &str) -> PayRequest {
        let ts = now();
        let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".to_owned();
        let package = format!("prepay_id={prepay_id}");
        let msg = format!("{}\n{ts}\n{nonce}\n{package}\n", self.appid);
        PayRequest {
            app_id: self.appid.clone(),
            time_stamp: ts,
            nonce_str: nonce,
            pay_sign: rsa_sign(&self.key, msg.as_bytes()),
            package,
            sign_type: "RSA".into(),
            outcome: None,
            alipay_trade_no: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Status codes to answer in order; 204 once exhausted.
    script: Arc<Mutex<Vec<u16>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got.lock().unwrap().push(Received { headers, body });
    let mut script = r.script.lock().unwrap();
    if script.is_empty() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::from_u16(script.remove(0)).unwrap()
    }
}

/// A local notification receiver; returns its URL.
async fn start_receiver(r: Receiver) -> String {
    let app = axum::Router::new()
        .route("/notify", post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/notify")
}

fn to_reqwest_headers(h: &HeaderMap) -> reqwest::header::HeaderMap {
    let mut out = reqwest::header::HeaderMap::new();
    for (k, v) in h {
        out.insert(
            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    out
}

fn decrypt_resource(api_v3_key: &str, resource: &Value) -> Value {
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(api_v3_key.as_bytes()).unwrap();
    let ct = B64
        .decode(resource["ciphertext"].as_str().unwrap())
        .unwrap();
    let plain = cipher
        .decrypt(
            aes_gcm::Nonce::from_slice(resource["nonce"].as_str().unwrap().as_bytes()),
            Payload {
                msg: &ct,
                aad: resource["associated_data"].as_str().unwrap().as_bytes(),
            },
        )
        .unwrap();
    serde_json::from_slice(&plain).unwrap()
}

#[tokio::test]
async fn prepay_query_pay_notify_close() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;

    let prepay_id = c.prepay("ORDER_000001", 1234, &url).await;
    assert!(
        prepay_id.starts_with("wx") && prepay_id.len() >= 32,
        "{prepay_id}"
    );

    let q = c
        .call(
            "GET",
            &format!(
                "/v3/pay/transactions/out-trade-no/ORDER_000001?mchid={}",
                c.mchid
            ),
            "",
        )
        .await;
    assert_eq!(q.status, StatusCode::OK);
    let t = q.json();
    assert_eq!(t["trade_state"], "NOTPAY");
    assert_eq!(t["amount"]["total"], 1234);
    assert!(t.get("transaction_id").is_none());
    // As WeChat answers an unpaid order: no payer, no attach (the prepay sent both).
    assert!(t.get("payer").is_none(), "{t}");
    assert!(t.get("attach").is_none(), "{t}");

    // The platform public key id signs in public-key mode.
    assert_eq!(
        q.header("Wechatpay-Serial"),
        sandbox.platform().public_key_id
    );
    assert!(sandbox.platform().public_key_id.starts_with("PUB_KEY_ID_"));

    let outcome = sandbox.pay(c.pay_request(&prepay_id)).await.unwrap();
    assert_eq!(outcome.trade_state, "SUCCESS");
    let txn = outcome.transaction_id.clone().unwrap();
    assert!(txn.starts_with("42000") && txn.len() == 28);

    let record = sandbox
        .wait_for_delivery("ORDER_000001", WAIT)
        .await
        .unwrap();
    assert_eq!(record.kind, DeliveryKind::Real);
    assert_eq!(record.attempt, 1);
    assert_eq!(record.status, Some(204));
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let n = &got[0];
    let serial = verify_signed(&to_reqwest_headers(&n.headers), &n.body, &c.platform_spki);
    assert_eq!(serial, sandbox.platform().public_key_id);
    let envelope: Value = serde_json::from_slice(&n.body).unwrap();
    assert_eq!(envelope["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(envelope["resource_type"], "encrypt-resource");
    assert_eq!(envelope["id"], outcome.notification_id.unwrap().as_str());
    let resource = &envelope["resource"];
    assert_eq!(resource["algorithm"], "AEAD_AES_256_GCM");
    assert_eq!(resource["associated_data"], "transaction");
    assert_eq!(resource["nonce"].as_str().unwrap().len(), 12);
    let paid = decrypt_resource(sandbox.api_v3_key(), resource);
    assert_eq!(paid["trade_state"], "SUCCESS");
    assert_eq!(paid["out_trade_no"], "ORDER_000001");
    assert_eq!(paid["transaction_id"], txn.as_str());
    assert_eq!(paid["amount"]["total"], 1234);
    assert_eq!(paid["amount"]["payer_total"], 1234);
    assert_eq!(paid["amount"]["currency"], "CNY");
    assert_eq!(paid["appid"], c.appid.as_str());
    assert_eq!(paid["mchid"], c.mchid.as_str());
    assert_eq!(paid["attach"], "color=red");
    assert_eq!(paid["trade_type"], "JSAPI");
    assert!(paid["success_time"].as_str().unwrap().ends_with("+08:00"));

    // Query after payment, by out_trade_no and by transaction id.
    let q = c
        .call(
            "GET",
            &format!(
                "/v3/pay/transactions/out-trade-no/ORDER_000001?mchid={}",
                c.mchid
            ),
            "",
        )
        .await;
    assert_eq!(q.json()["trade_state"], "SUCCESS");
    let q = c
        .call(
            "GET",
            &format!("/v3/pay/transactions/id/{txn}?mchid={}", c.mchid),
            "",
        )
        .await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.json()["out_trade_no"], "ORDER_000001");

    // Paying again or re-prepaying a paid order is refused.
    let again = sandbox.pay(c.pay_request(&prepay_id)).await;
    assert!(matches!(again, Err(SandboxError::Pay { ref code, .. }) if code == "ORDERPAID"));
    let r = c
        .call(
            "POST",
            "/v3/pay/transactions/jsapi",
            &c.prepay_body("ORDER_000001", 1234, &url),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["code"], "ORDERPAID");

    // Closing a paid order is refused; closing another gives a signed, empty 204.
    let close_body = json!({ "mchid": c.mchid }).to_string();
    let r = c
        .call(
            "POST",
            "/v3/pay/transactions/out-trade-no/ORDER_000001/close",
            &close_body,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["code"], "ORDERPAID");
    c.prepay("ORDER_000002", 1, &url).await;
    let r = c
        .call(
            "POST",
            "/v3/pay/transactions/out-trade-no/ORDER_000002/close",
            &close_body,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    let q = c
        .call(
            "GET",
            &format!(
                "/v3/pay/transactions/out-trade-no/ORDER_000002?mchid={}",
                c.mchid
            ),
            "",
        )
        .await;
    assert_eq!(q.json()["trade_state"], "CLOSED");
    let r = c
        .call(
            "POST",
            "/v3/pay/transactions/jsapi",
            &c.prepay_body("ORDER_000002", 1, &url),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["code"], "ORDER_CLOSED");

    // Unknown orders.
    let r = c
        .call(
            "GET",
            &format!(
                "/v3/pay/transactions/out-trade-no/NOSUCHORDER?mchid={}",
                c.mchid
            ),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["code"], "ORDER_NOT_EXIST");

    // The delivery log over HTTP.
    let log: Value = reqwest::get(format!("{}/sandbox/deliveries", c.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["kind"], "real");
    assert_eq!(log[0]["status"], 204);
    let info: Value = reqwest::get(format!("{}/sandbox/info", c.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["mchid"], c.mchid.as_str());
    assert_eq!(
        info["platform_public_key_id"],
        sandbox.platform().public_key_id.as_str()
    );
    assert!(info.get("merchant_private_key_pem").is_none());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn bad_signatures_and_headers_get_401_sign_error() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    let body = c.prepay_body("ORDER_SIGN_1", 1, "https://shop.example/notify");
    let path = "/v3/pay/transactions/jsapi";

    // Signed over one body, sent with another.
    let auth = c.authorization("POST", path, &now(), &body);
    let tampered = body.replace("\"total\":1", "\"total\":2");
    let r = c.send("POST", path, &tampered, Some(auth)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    verify_signed(&r.headers, &r.body, &c.platform_spki);
    let e = r.json();
    assert_eq!(e["code"], "SIGN_ERROR");
    let info = &e["detail"]["sign_information"];
    assert_eq!(info["method"], "POST");
    assert_eq!(info["url"], path);
    let expected_len = format!("POST\n{path}\n").len() + 10 + 1 + 11 + 1 + tampered.len() + 1;
    assert_eq!(info["sign_message_length"], expected_len);
    assert_eq!(e["detail"]["detail"]["issue"], "sign not match");

    // Signed for another path (the query string is part of the message).
    let q = format!(
        "/v3/pay/transactions/out-trade-no/X123456?mchid={}",
        c.mchid
    );
    let auth = c.authorization(
        "GET",
        "/v3/pay/transactions/out-trade-no/X123456",
        &now(),
        "",
    );
    let r = c.send("GET", &q, "", Some(auth)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // No header, a garbled one, a stale timestamp, a wrong serial, a wrong mchid.
    let r = c.send("POST", path, &body, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["code"], "SIGN_ERROR");
    verify_signed(&r.headers, &r.body, &c.platform_spki);
    let r = c
        .send(
            "POST",
            path,
            &body,
            Some("WECHATPAY2-SHA256-RSA2048 garbage".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let stale = (now().parse::<i64>().unwrap() - 301).to_string();
    let r = c
        .send(
            "POST",
            path,
            &body,
            Some(c.authorization("POST", path, &stale, &body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let wrong_serial = c
        .authorization("POST", path, &now(), &body)
        .replace(&c.serial, "0123456789ABCDEF0123456789ABCDEF01234567");
    let r = c.send("POST", path, &body, Some(wrong_serial)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let wrong_mchid = c
        .authorization("POST", path, &now(), &body)
        .replace(&c.mchid, "1900000002");
    let r = c.send("POST", path, &body, Some(wrong_mchid)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Nothing was created.
    let r = c
        .call(
            "GET",
            &format!(
                "/v3/pay/transactions/out-trade-no/ORDER_SIGN_1?mchid={}",
                c.mchid
            ),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn same_out_trade_no_is_idempotent_or_out_trade_no_used() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    let url = "https://shop.example/notify";
    let first = c.prepay("ORDER_DUP_1", 100, url).await;
    let second = c.prepay("ORDER_DUP_1", 100, url).await;
    assert_eq!(first, second);
    let r = c
        .call(
            "POST",
            "/v3/pay/transactions/jsapi",
            &c.prepay_body("ORDER_DUP_1", 101, url),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["code"], "OUT_TRADE_NO_USED");
}

type Mutation = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn prepay_parameters_are_validated() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = Client::new(&sandbox);
    let base: Value =
        serde_json::from_str(&c.prepay_body("ORDER_PARAM_1", 1, "https://shop.example/notify"))
            .unwrap();
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "description too long",
            Box::new(|v| v["description"] = json!("x".repeat(128))),
        ),
        (
            "empty description",
            Box::new(|v| v["description"] = json!("")),
        ),
        (
            "short out_trade_no",
            Box::new(|v| v["out_trade_no"] = json!("A1234")),
        ),
        (
            "bad char",
            Box::new(|v| v["out_trade_no"] = json!("ORDER#0001")),
        ),
        (
            "attach too long",
            Box::new(|v| v["attach"] = json!("a".repeat(129))),
        ),
        ("zero total", Box::new(|v| v["amount"]["total"] = json!(0))),
        (
            "float total",
            Box::new(|v| v["amount"]["total"] = json!(1.5)),
        ),
        ("USD", Box::new(|v| v["amount"]["currency"] = json!("USD"))),
        ("no openid", Box::new(|v| v["payer"] = json!({}))),
        (
            "http notify",
            Box::new(|v| v["notify_url"] = json!("http://shop.example/n")),
        ),
        (
            "query in notify",
            Box::new(|v| v["notify_url"] = json!("https://shop.example/n?a=1")),
        ),
        (
            "mchid mismatch",
            Box::new(|v| v["mchid"] = json!("1900000002")),
        ),
        (
            "no amount",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("amount");
            }),
        ),
    ];
    for (name, mutate) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        let r = c
            .call("POST", "/v3/pay/transactions/jsapi", &v.to_string())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(r.json()["code"], "PARAM_ERROR", "{name}");
        // WeChat's PARAM_ERROR names where the bad input was.
        assert_eq!(r.json()["detail"]["location"], "body", "{name}");
    }
    let mut v = base.clone();
    v["amount"]["total"] = json!(0);
    let r = c
        .call("POST", "/v3/pay/transactions/jsapi", &v.to_string())
        .await;
    assert_eq!(r.json()["detail"]["field"], "/amount/total");
    assert_eq!(r.json()["detail"]["value"], 0);
    // A prepay with scene info gets it back in the unpaid order's query.
    let mut v = base.clone();
    v["out_trade_no"] = json!("ORDER_SCENE_1");
    v["scene_info"] = json!({"payer_client_ip": "127.0.0.1", "device_id": "013467007045764"});
    let r = c
        .call("POST", "/v3/pay/transactions/jsapi", &v.to_string())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let q = c
        .call(
            "GET",
            &format!(
                "/v3/pay/transactions/out-trade-no/ORDER_SCENE_1?mchid={}",
                c.mchid
            ),
            "",
        )
        .await;
    assert_eq!(
        q.json()["scene_info"],
        json!({"device_id": "013467007045764"})
    );
    let mut v = base.clone();
    v["appid"] = json!("wx0000000000000000");
    let r = c
        .call("POST", "/v3/pay/transactions/jsapi", &v.to_string())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["code"], "APPID_MCHID_NOT_MATCH");
    // Queries need the right mchid.
    let r = c
        .call("GET", "/v3/pay/transactions/out-trade-no/ORDER_PARAM_1", "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c
        .call(
            "GET",
            "/v3/pay/transactions/out-trade-no/ORDER_PARAM_1?mchid=1900000002",
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // An oversized body is 413, signed.
    let big = "x".repeat(70 * 1024);
    let r = c.call("POST", "/v3/pay/transactions/jsapi", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown v3 paths are signed 404s.
    let r = c.call("GET", "/v3/no/such/thing", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn notification_retries_follow_the_scaled_schedule() {
    let schedule = RetrySchedule::wechat().scaled_down(100); // 150 ms, 150 ms, 300 ms, …
    let sandbox =
        Sandbox::start(SandboxConfig::for_tests().notify_retry_schedule(schedule.clone()))
            .await
            .unwrap();
    let c = Client::new(&sandbox);
    // A 202 is not an acknowledgement: only 200 and 204 are.
    let receiver = Receiver {
        script: Arc::new(Mutex::new(vec![500, 202])),
        ..Receiver::default()
    };
    let url = start_receiver(receiver.clone()).await;
    let prepay_id = c.prepay("ORDER_RETRY_1", 1, &url).await;
    sandbox.pay(c.pay_request(&prepay_id)).await.unwrap();
    let records = sandbox
        .wait_for_delivery_finished("ORDER_RETRY_1", WAIT)
        .await
        .unwrap();
    let real: Vec<_> = records
        .iter()
        .filter(|r| r.kind == DeliveryKind::Real)
        .collect();
    assert_eq!(real.len(), 3, "{records:?}");
    assert_eq!(
        real.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![Some(500), Some(202), Some(204)]
    );
    assert_eq!(
        real.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(real[2].acknowledged && real[2].final_attempt);
    let d = schedule.delays();
    assert!(real[1].elapsed - real[0].elapsed >= d[0]);
    assert!(real[2].elapsed - real[1].elapsed >= d[1]);
    // The same notification every time.
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| g.body == got[0].body));
}

#[tokio::test]
async fn notification_gives_up_after_the_last_retry() {
    let schedule = RetrySchedule::new(vec![Duration::from_millis(10); 2]);
    let sandbox = Sandbox::start(SandboxConfig::for_tests().notify_retry_schedule(schedule))
        .await
        .unwrap();
    let c = Client::new(&sandbox);
    let receiver = Receiver {
        script: Arc::new(Mutex::new(vec![500; 10])),
        ..Receiver::default()
    };
    let url = start_receiver(receiver.clone()).await;
    let prepay_id = c.prepay("ORDER_GIVEUP", 1, &url).await;
    sandbox.pay(c.pay_request(&prepay_id)).await.unwrap();
    let records = sandbox
        .wait_for_delivery_finished("ORDER_GIVEUP", WAIT)
        .await
        .unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| !r.acknowledged));
    assert!(records[2].final_attempt);
    // A dead receiver counts as a failure too.
    let prepay_id = c
        .prepay("ORDER_DEADRCV", 1, "http://127.0.0.1:9/notify")
        .await;
    sandbox.pay(c.pay_request(&prepay_id)).await.unwrap();
    let records = sandbox
        .wait_for_delivery_finished("ORDER_DEADRCV", WAIT)
        .await
        .unwrap();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.status.is_none() && r.error.is_some())
    );
}

#[tokio::test]
async fn faults_probe_and_duplicates() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    sandbox.set_notify_faults(NotifyFaults {
        duplicates: 2,
        concurrent_duplicates: 2,
        signtest_probe: true,
        delay: Duration::from_millis(20),
    });
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let prepay_id = c.prepay("ORDER_FAULTS", 1, &url).await;
    let outcome = sandbox.pay(c.pay_request(&prepay_id)).await.unwrap();
    sandbox
        .wait_for_delivery("ORDER_FAULTS", WAIT)
        .await
        .unwrap();
    // Wait until the sequential duplicates are in too.
    let records = sandbox
        .wait_for_attempts("ORDER_FAULTS", 6, WAIT)
        .await
        .unwrap();
    let count = |k: DeliveryKind| records.iter().filter(|r| r.kind == k).count();
    assert_eq!(count(DeliveryKind::Probe), 1);
    assert_eq!(count(DeliveryKind::Real), 1);
    assert_eq!(count(DeliveryKind::Duplicate), 4);
    assert_eq!(records[0].kind, DeliveryKind::Probe);
    let id = outcome.notification_id.unwrap();
    assert!(records.iter().all(|r| r.notification_id == id));
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 6);
    let probes: Vec<_> = got
        .iter()
        .filter(|g| {
            g.headers["Wechatpay-Signature"]
                .to_str()
                .unwrap()
                .starts_with("WECHATPAY/SIGNTEST/")
        })
        .collect();
    assert_eq!(probes.len(), 1);
}

#[tokio::test]
async fn pay_checks_the_client_parameters() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    let prepay_id = c
        .prepay("ORDER_PAYCHK", 1, "https://shop.example/notify")
        .await;
    let code = |r: Result<_, SandboxError>| match r {
        Err(SandboxError::Pay { code, .. }) => code,
        other => panic!("{other:?}"),
    };
    let mut bad = c.pay_request(&prepay_id);
    bad.pay_sign = c.pay_request("wx_other").pay_sign;
    assert_eq!(code(sandbox.pay(bad).await), "PAY_SIGN_ERROR");
    let mut bad = c.pay_request(&prepay_id);
    bad.sign_type = "MD5".into();
    assert_eq!(code(sandbox.pay(bad).await), "INVALID_SIGN_TYPE");
    assert_eq!(
        code(sandbox.pay(c.pay_request("wx_unknown_prepay")).await),
        "PREPAY_ID_NOT_FOUND"
    );
    // Over HTTP: a bad request is a 400 with the code.
    let mut bad = c.pay_request(&prepay_id);
    bad.app_id = "wx0000000000000000".into();
    let r = reqwest::Client::new()
        .post(format!("{}/sandbox/pay", c.base))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "APPID_MISMATCH");
    // PAYERROR and EXPIRE.
    let mut req = c.pay_request(&prepay_id);
    req.outcome = Some(SimulatedOutcome::Expire);
    assert_eq!(sandbox.pay(req).await.unwrap().trade_state, "NOTPAY");
    let mut req = c.pay_request(&prepay_id);
    req.outcome = Some(SimulatedOutcome::PayError);
    assert_eq!(sandbox.pay(req).await.unwrap().trade_state, "PAYERROR");
    // Success over HTTP, then the prepay info endpoint.
    let r = reqwest::Client::new()
        .post(format!("{}/sandbox/pay", c.base))
        .json(&c.pay_request(&prepay_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["trade_state"], "SUCCESS");
    let info: Value = reqwest::get(format!("{}/sandbox/prepay/{prepay_id}", c.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["amount"]["total"], 1);
    assert_eq!(info["description"], "Sandbox T-shirt");
    assert_eq!(info["trade_state"], "SUCCESS");
    assert!(
        sandbox
            .deliveries()
            .iter()
            .all(|d| d.kind == DeliveryKind::Real)
    );
}

#[tokio::test]
async fn certificate_modes() {
    // Public-key mode: no certificates.
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    let r = c.call("GET", "/v3/certificates", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["code"], "RESOURCE_NOT_EXISTS");
    sandbox.shutdown().await;

    // Certificate mode: the download decrypts to the certificate that signs the responses.
    let sandbox =
        Sandbox::start(SandboxConfig::for_tests().platform_mode(PlatformMode::Certificate))
            .await
            .unwrap();
    let mut c = Client::new(&sandbox);
    let cert_pem = sandbox.platform().certificate_pem.clone().unwrap();
    let serial = sandbox.platform().certificate_serial.clone().unwrap();
    let cert_der = pem_der(&cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    c.platform_spki = cert.public_key().raw.to_vec();
    let r = c.call("GET", "/v3/certificates", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("Wechatpay-Serial"), serial);
    let data = &r.json()["data"][0];
    assert_eq!(data["serial_no"], serial.as_str());
    let enc = &data["encrypt_certificate"];
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(sandbox.api_v3_key().as_bytes()).unwrap();
    let plain = cipher
        .decrypt(
            aes_gcm::Nonce::from_slice(enc["nonce"].as_str().unwrap().as_bytes()),
            Payload {
                msg: &B64.decode(enc["ciphertext"].as_str().unwrap()).unwrap(),
                aad: b"certificate",
            },
        )
        .unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), cert_pem);
    assert_eq!(
        cert.raw_serial_as_string().replace(':', "").to_uppercase(),
        serial
    );
    sandbox.shutdown().await;

    // Both: the public key only for a request naming it; otherwise the certificate, so that a
    // certificate-only client (naming nothing on its first /v3/certificates) keeps working.
    let sandbox = Sandbox::start(SandboxConfig::for_tests().platform_mode(PlatformMode::Both))
        .await
        .unwrap();
    let c = Client::new(&sandbox);
    let serial = sandbox.platform().certificate_serial.clone().unwrap();
    let cert_der = pem_der(sandbox.platform().certificate_pem.as_deref().unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    let auth = c.authorization("GET", "/v3/certificates", &now(), "");
    let r = c.send("GET", "/v3/certificates", "", Some(auth)).await;
    assert_eq!(
        verify_signed(&r.headers, &r.body, cert.public_key().raw),
        serial
    );
    let auth = c.authorization("GET", "/v3/certificates", &now(), "");
    let named = reqwest::Client::new()
        .get(format!("{}/v3/certificates", c.base))
        .header("Authorization", auth)
        .header("Wechatpay-Serial", &sandbox.platform().public_key_id)
        .send()
        .await
        .unwrap();
    let headers = named.headers().clone();
    let body = named.bytes().await.unwrap();
    assert_eq!(
        verify_signed(&headers, &body, &c.platform_spki),
        sandbox.platform().public_key_id
    );
    let auth = c.authorization("GET", "/v3/certificates", &now(), "");
    let resp = reqwest::Client::new()
        .get(format!("{}/v3/certificates", c.base))
        .header("Authorization", auth)
        .header("Wechatpay-Serial", &serial)
        .send()
        .await
        .unwrap();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    assert_eq!(
        verify_signed(&headers, &body, cert.public_key().raw),
        serial
    );
    sandbox.shutdown().await;
}

fn node_available() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn drive_shim(base: &str, api: &str, action: &str, params: Value) -> Value {
    let args = vec![
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jsbridge_driver.js").to_owned(),
        base.to_owned(),
        api.to_owned(),
        action.to_owned(),
        params.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn browser_shim_script_and_cors() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let r = reqwest::get(format!("{}/sandbox/jsbridge.js", sandbox.base_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    let js = r.text().await.unwrap();
    for needle in [
        "getBrandWCPayRequest",
        "requestPayment",
        "wxpay-sandbox-pay",
        "wxpay-sandbox-cancel",
        "WeixinJSBridgeReady",
    ] {
        assert!(js.contains(needle), "{needle}");
    }
    let r = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/sandbox/pay", sandbox.base_url()),
        )
        .header("Origin", "http://shop.localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn browser_shim_pays_cancels_and_fails() {
    if !node_available() {
        eprintln!("node not found: skipping the browser shim drive test");
        return;
    }
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let params = |p: &PayRequest| {
        json!({
            "appId": p.app_id, "timeStamp": p.time_stamp, "nonceStr": p.nonce_str,
            "package": p.package, "signType": p.sign_type, "paySign": p.pay_sign,
        })
    };

    let prepay_id = c.prepay("ORDER_SHIM_1", 1234, &url).await;
    let out = drive_shim(
        c.base.as_str(),
        "bridge",
        "pay",
        params(&c.pay_request(&prepay_id)),
    )
    .await;
    assert_eq!(out["res"]["err_msg"], "get_brand_wcpay_request:ok", "{out}");
    assert_eq!(out["amount"], "¥12.34");
    assert_eq!(out["description"], "Sandbox T-shirt");
    assert_eq!(out["sheetGone"], true);
    sandbox
        .wait_for_delivery("ORDER_SHIM_1", WAIT)
        .await
        .unwrap();

    let prepay_id = c.prepay("ORDER_SHIM_2", 5, &url).await;
    let out = drive_shim(
        c.base.as_str(),
        "bridge",
        "cancel",
        params(&c.pay_request(&prepay_id)),
    )
    .await;
    assert_eq!(out["res"]["err_msg"], "get_brand_wcpay_request:cancel");
    let out = drive_shim(
        c.base.as_str(),
        "bridge",
        "fail",
        params(&c.pay_request(&prepay_id)),
    )
    .await;
    assert_eq!(out["res"]["err_msg"], "get_brand_wcpay_request:fail");
    let q = c
        .call(
            "GET",
            &format!(
                "/v3/pay/transactions/out-trade-no/ORDER_SHIM_2?mchid={}",
                c.mchid
            ),
            "",
        )
        .await;
    assert_eq!(q.json()["trade_state"], "PAYERROR");

    // A tampered paySign fails in the sheet, like the real client.
    let mut bad = params(&c.pay_request(&prepay_id));
    bad["nonceStr"] = json!("another-nonce");
    let out = drive_shim(c.base.as_str(), "bridge", "pay", bad).await;
    assert_eq!(out["res"]["err_msg"], "get_brand_wcpay_request:fail");
    assert!(
        out["res"]["err_desc"]
            .as_str()
            .unwrap()
            .contains("PAY_SIGN_ERROR")
    );

    // wx.requestPayment (no appId: the mini-program style) succeeds and cancels.
    let prepay_id = c.prepay("ORDER_SHIM_3", 100, &url).await;
    let mut p = params(&c.pay_request(&prepay_id));
    p.as_object_mut().unwrap().remove("appId");
    let out = drive_shim(c.base.as_str(), "wx", "cancel", p.clone()).await;
    assert_eq!(out["res"]["errMsg"], "requestPayment:fail cancel");
    assert_eq!(out["res"]["via"], "fail");
    let out = drive_shim(c.base.as_str(), "wx", "pay", p).await;
    assert_eq!(out["res"]["errMsg"], "requestPayment:ok");
    assert_eq!(out["res"]["via"], "success");
    sandbox
        .wait_for_delivery("ORDER_SHIM_3", WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_prepay_id_is_refused_and_replaced() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests().prepay_ttl(Duration::ZERO))
        .await
        .unwrap();
    let c = Client::new(&sandbox);
    let first = c
        .prepay("ORDER_TTL_1", 1, "https://shop.example/notify")
        .await;
    let r = sandbox.pay(c.pay_request(&first)).await;
    assert!(matches!(r, Err(SandboxError::Pay { ref code, .. }) if code == "PREPAY_ID_EXPIRED"));
    let second = c
        .prepay("ORDER_TTL_1", 1, "https://shop.example/notify")
        .await;
    assert_ne!(first, second);
}

#[tokio::test]
async fn refunds_are_authenticated_bounded_idempotent_and_notified() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let c = Client::new(&sandbox);
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let prepay_id = c.prepay("ORDER_REFUND_1", 1000, &url).await;
    sandbox.pay(c.pay_request(&prepay_id)).await.unwrap();
    sandbox
        .wait_for_delivery("ORDER_REFUND_1", Duration::from_secs(10))
        .await
        .unwrap();

    let body = |no: &str, refund: i64| {
        json!({"out_trade_no": "ORDER_REFUND_1", "out_refund_no": no, "reason": "broken",
               "notify_url": url, "amount": {"refund": refund, "total": 1000, "currency": "CNY"}})
        .to_string()
    };
    let path = "/v3/refund/domestic/refunds";
    let unsigned = c.send("POST", path, &body("RF1", 400), None).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);

    let first = c.call("POST", path, &body("RF1", 400)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let record = first.json();
    assert_eq!(record["status"], "PROCESSING");
    assert_eq!(record["amount"]["refund"], 400);
    let again = c.call("POST", path, &body("RF1", 400)).await;
    assert_eq!(
        again.json()["refund_id"],
        record["refund_id"],
        "same refund"
    );
    let reused = c.call("POST", path, &body("RF1", 401)).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    let over = c.call("POST", path, &body("RF2", 601)).await;
    assert_eq!(over.status, StatusCode::FORBIDDEN);
    assert_eq!(over.json()["code"], "NOT_ENOUGH");
    let bad_total = c
        .call(
            "POST",
            path,
            &json!({"out_trade_no": "ORDER_REFUND_1", "out_refund_no": "RF3",
                    "amount": {"refund": 1, "total": 999, "currency": "CNY"}})
            .to_string(),
        )
        .await;
    assert_eq!(bad_total.json()["code"], "PARAM_ERROR");

    // Settles, then notifies REFUND.SUCCESS, encrypted with associated data "refund".
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let notification = loop {
        let got = receiver.got.lock().unwrap().clone();
        if let Some(n) = got.iter().find(|n| {
            serde_json::from_slice::<Value>(&n.body).unwrap()["event_type"] == "REFUND.SUCCESS"
        }) {
            break n.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refund notification"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    verify_signed(
        &to_reqwest_headers(&notification.headers),
        &notification.body,
        &c.platform_spki,
    );
    let envelope: Value = serde_json::from_slice(&notification.body).unwrap();
    assert_eq!(envelope["resource"]["associated_data"], "refund");
    let resource = decrypt_resource(sandbox.api_v3_key(), &envelope["resource"]);
    assert_eq!(resource["out_refund_no"], "RF1");
    assert_eq!(resource["refund_status"], "SUCCESS");
    assert_eq!(resource["amount"]["refund"], 400);
    assert_eq!(resource["amount"]["total"], 1000);

    let queried = c.call("GET", &format!("{path}/RF1"), "").await;
    assert_eq!(queried.json()["status"], "SUCCESS");
    let missing = c.call("GET", &format!("{path}/NOPE"), "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["code"], "RESOURCE_NOT_EXISTS");
}

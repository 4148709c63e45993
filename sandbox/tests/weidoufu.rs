//! End-to-end tests of the weidoufu emulator, with the shop side written here from seed 004
//! and the live service's wire format (JSON requests signed over the non-empty params but
//! `sign`, sorted, `k=v&…&secret_key=SECRET`, MD5 upper-case; JSON callbacks `{sign, content}`
//! signed MD5(hex HMAC-SHA256(content))), not from wxpay-core.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use wxpay_sandbox::{DeliveryKind, NotifyFaults, PayRequest, Sandbox, SandboxConfig, SandboxError};

/// A change to a request: set (`Some`) or remove (`None`) a parameter.
type Edit<'a> = (&'a str, Option<&'a str>);

const WAIT: Duration = Duration::from_secs(20);

fn sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    let mut text = params
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    text.push_str("&secret_key=");
    text.push_str(secret);
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The request as the live service takes it: a JSON object, integers as numbers.
fn json_body(params: &BTreeMap<String, String>) -> String {
    let object: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| {
            let number = matches!(k.as_str(), "pay_type" | "total_fee" | "refund_fee")
                .then(|| v.parse::<u64>().ok())
                .flatten();
            (k.clone(), number.map_or_else(|| json!(v), |n| json!(n)))
        })
        .collect();
    Value::Object(object).to_string()
}

/// A callback body's `sign` and the raw text of its `content`.
fn envelope(body: &str) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        sign: String,
        #[serde(borrow)]
        content: &'a serde_json::value::RawValue,
    }
    let e: Envelope<'_> = serde_json::from_str(body).unwrap();
    (e.sign, e.content.get().to_owned())
}

/// A callback's content fields as text (numbers in decimal; nulls left out).
fn decode_callback(body: &str) -> BTreeMap<String, String> {
    let (_, content) = envelope(body);
    let Value::Object(object) = serde_json::from_str(&content).unwrap() else {
        panic!("content is not an object: {content}");
    };
    object
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Number(n) => Some((k, n.to_string())),
            _ => None,
        })
        .collect()
}

/// The shop's check of a callback: MD5 of the lower-case hex HMAC-SHA256 of the raw content.
fn callback_verifies(body: &str, secret: &str) -> bool {
    let (sign, content) = envelope(body);
    content_verifies(&content, &sign, secret)
}

fn content_verifies(content: &str, sign: &str, secret: &str) -> bool {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(content.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{:X}", Md5::digest(hex.as_bytes())) == sign
}

/// A tiny weidoufu client.
struct Client {
    base: String,
    access_key: String,
    secret: String,
}

impl Client {
    fn new(sandbox: &Sandbox) -> Self {
        Self {
            base: sandbox.base_url().to_owned(),
            access_key: sandbox.weidoufu().access_key.clone(),
            secret: sandbox.weidoufu().secret_key.clone(),
        }
    }

    fn wechat(&self, out_order_no: &str, fee: &str, notify_url: &str) -> BTreeMap<String, String> {
        [
            ("access_key", self.access_key.as_str()),
            ("body", "QQ 会员充值"),
            ("out_order_no", out_order_no),
            ("pay_type", "1"),
            ("total_fee", fee),
            ("openid", "oSandboxPayer0000000000000001"),
            ("notify_url", notify_url),
            ("attach", "{test:'test1_params'}"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn alipay(&self, out_order_no: &str, fee: &str, notify_url: &str) -> BTreeMap<String, String> {
        let mut p = self.wechat(out_order_no, fee, notify_url);
        p.remove("openid");
        p.insert("pay_type".into(), "2".into());
        p.insert("buyer_id".into(), "2088102177846875".into());
        p
    }

    /// Signs `params` and posts them.
    async fn miniapp(&self, params: &BTreeMap<String, String>) -> Value {
        let mut signed = params.clone();
        signed.insert("sign".into(), sign(params, &self.secret));
        self.post_raw(&signed).await
    }

    async fn post_raw(&self, params: &BTreeMap<String, String>) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/pay/miniapp", self.base))
            .header("Content-Type", "application/json")
            .body(json_body(params))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

/// `jsapi` (snake_case) as the payer's `wx.requestPayment` parameters.
fn pay_request(jsapi: &Value) -> PayRequest {
    serde_json::from_value(json!({
        "appId": jsapi["app_id"],
        "timeStamp": jsapi["timestamp"],
        "nonceStr": jsapi["nonce_str"],
        "package": jsapi["package"],
        "signType": jsapi["sign_type"],
        "paySign": jsapi["pay_sign"],
    }))
    .unwrap()
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, String)>>>,
    script: Arc<Mutex<Vec<(u16, &'static str)>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    r.got.lock().unwrap().push((
        headers["content-type"].to_str().unwrap().to_owned(),
        String::from_utf8(body.to_vec()).unwrap(),
    ));
    let mut script = r.script.lock().unwrap();
    let (status, body) = if script.is_empty() {
        (200, "SUCCESS")
    } else {
        script.remove(0)
    };
    (StatusCode::from_u16(status).unwrap(), body)
}

async fn start_receiver(r: Receiver) -> String {
    let app = axum::Router::new()
        .route("/notify_url", post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/notify_url")
}

fn is_digits(v: &Value, len: usize) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_order_pay_and_signed_json_callback() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let client = Client::new(&sandbox);
    let no = "180901620895069445";
    let resp = client.miniapp(&client.wechat(no, "1990", &url)).await;
    assert_eq!(resp["code"], 1, "{resp}");
    assert_eq!(resp["message"], "成功");
    let data = &resp["data"];
    assert_eq!(data["out_order_no"], no);
    assert!(is_digits(&data["mch_trade_no"], 24), "{data}");
    let jsapi = &data["jsapi"];
    let keys: Vec<&String> = jsapi.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "app_id",
            "nonce_str",
            "package",
            "pay_sign",
            "sign_type",
            "timestamp"
        ]
    );
    assert_eq!(jsapi["app_id"], sandbox.merchant().appid);
    assert_eq!(jsapi["sign_type"], "MD5");
    assert!(jsapi["package"].as_str().unwrap().starts_with("prepay_id="));

    let outcome = sandbox.pay(pay_request(jsapi)).await.unwrap();
    assert_eq!(outcome.out_trade_no, no);
    assert_eq!(
        outcome.transaction_id.as_ref(),
        data["mch_trade_no"].as_str().map(str::to_owned).as_ref()
    );
    let record = sandbox.wait_for_delivery(no, WAIT).await.unwrap();
    assert_eq!(record.response_body, "SUCCESS");

    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].0.starts_with("application/json"));
    let fields = decode_callback(&got[0].1);
    assert!(callback_verifies(&got[0].1, &client.secret), "{}", got[0].1);
    assert!(!fields.contains_key("access_key"));
    assert_eq!(fields["out_order_no"], no);
    assert_eq!(
        fields["mch_trade_no"],
        data["mch_trade_no"].as_str().unwrap()
    );
    assert!(fields["transaction_id"].starts_with("42000"));
    assert_eq!(fields["pay_type"], "1");
    assert_eq!(fields["total_fee"], "1990");
    assert!(!fields.contains_key("openid"));
    assert_eq!(fields["attach"], "{test:'test1_params'}");
    assert_eq!(fields["status"], "2");
    assert_eq!(fields["trade_type"], "9");
    assert_eq!(fields["pay_time"].len(), 19);
    assert!(!fields["nonce_str"].is_empty());
    // A tampered field no longer verifies.
    let (sign, content) = envelope(&got[0].1);
    let tampered = content.replace("\"total_fee\":1990", "\"total_fee\":1");
    assert_ne!(tampered, content);
    assert!(!content_verifies(&tampered, &sign, &client.secret));
    // The paid order: a repeat is refused, paying again too.
    let again = client.miniapp(&client.wechat(no, "1990", &url)).await;
    assert_eq!(again["code"], 0);
    assert_eq!(again["message"], "订单已支付");
    let err = sandbox.pay(pay_request(jsapi)).await.unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "ORDERPAID"));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn every_invalid_request_gets_code_0_and_creates_nothing() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let client = Client::new(&sandbox);
    let url = "http://127.0.0.1:9/notify_url";
    let no = "BAD000000000000000001";
    let base = client.wechat(no, "100", url);
    let long_body = "商".repeat(33);
    let long_attach = "a".repeat(129);
    let long_url = format!("http://shop.test/{}", "n".repeat(120));
    let cases: Vec<(&str, Vec<Edit<'_>>)> = vec![
        (
            "short out_order_no",
            vec![("out_order_no", Some("12345678901234567"))],
        ),
        (
            "long out_order_no",
            vec![("out_order_no", Some("123456789012345678901234567890123"))],
        ),
        (
            "symbol in out_order_no",
            vec![("out_order_no", Some("1234567890-12345678"))],
        ),
        ("no out_order_no", vec![("out_order_no", None)]),
        ("pay_type 3", vec![("pay_type", Some("3"))]),
        ("no pay_type", vec![("pay_type", None)]),
        ("WeChat without openid", vec![("openid", None)]),
        ("Alipay without buyer_id", vec![("pay_type", Some("2"))]),
        ("zero total_fee", vec![("total_fee", Some("0"))]),
        ("negative total_fee", vec![("total_fee", Some("-5"))]),
        ("decimal total_fee", vec![("total_fee", Some("1.5"))]),
        ("no total_fee", vec![("total_fee", None)]),
        ("no body", vec![("body", None)]),
        ("33-character body", vec![("body", Some(&long_body))]),
        (
            "ftp notify_url",
            vec![("notify_url", Some("ftp://shop.test/n"))],
        ),
        ("long notify_url", vec![("notify_url", Some(&long_url))]),
        ("no notify_url", vec![("notify_url", None)]),
        ("129-character attach", vec![("attach", Some(&long_attach))]),
    ];
    for (name, edits) in cases {
        let mut p = base.clone();
        for (k, v) in edits {
            match v {
                Some(v) => p.insert(k.to_owned(), v.to_owned()),
                None => p.remove(k),
            };
        }
        let resp = client.miniapp(&p).await;
        assert_eq!(resp["code"], 0, "{name}: {resp}");
        assert!(
            resp["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        assert_eq!(resp["data"]["jsapi"], "", "{name}");
    }
    // The seed's message for a bad signature; a wrong key, a missing sign, a wrong access_key.
    let mut wrong = base.clone();
    wrong.insert("sign".into(), sign(&base, "not-the-secret"));
    let resp = client.post_raw(&wrong).await;
    assert_eq!(resp["code"], 0);
    assert_eq!(resp["message"], "签名错误");
    assert_eq!(resp["data"]["out_order_no"], no);
    assert_eq!(resp["data"]["jsapi"], "");
    assert_eq!(client.post_raw(&base).await["message"], "签名错误");
    let mut other_ak = base.clone();
    other_ak.insert("access_key".into(), "AKnotmine".into());
    let resp = client.miniapp(&other_ak).await;
    assert_eq!(resp["code"], 0);
    assert_ne!(resp["message"], "成功");
    // Not a form.
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/pay/miniapp", client.base))
        .json(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["code"], 0);
    // None of that created the order: a valid request now succeeds with these parameters.
    let ok = client.miniapp(&base).await;
    assert_eq!(ok["code"], 1, "{ok}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn https_is_required_unless_http_notify_urls_are_allowed() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = Client::new(&sandbox);
    let http = client.wechat("HTTP00000000000000001", "100", "http://shop.test/n");
    assert_eq!(client.miniapp(&http).await["code"], 0);
    let https = client.wechat("HTTP00000000000000002", "100", "https://shop.test/n");
    assert_eq!(client.miniapp(&https).await["code"], 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn identical_retry_is_idempotent_and_a_changed_one_is_a_duplicate_number() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let client = Client::new(&sandbox);
    let url = "http://127.0.0.1:9/notify_url";
    let no = "IDEM00000000000000001";
    let first = client.miniapp(&client.wechat(no, "100", url)).await;
    let second = client.miniapp(&client.wechat(no, "100", url)).await;
    assert_eq!(first["code"], 1);
    assert_eq!(second["code"], 1);
    assert_eq!(
        first["data"]["mch_trade_no"],
        second["data"]["mch_trade_no"]
    );
    assert_eq!(
        first["data"]["jsapi"]["package"],
        second["data"]["jsapi"]["package"]
    );
    let changed = client.miniapp(&client.wechat(no, "101", url)).await;
    assert_eq!(changed["code"], 0);
    assert_eq!(changed["message"], "订单号重复");
    assert_eq!(changed["data"]["jsapi"], "");
    // The repeated reply's jsapi pays the order.
    let outcome = sandbox
        .pay(pay_request(&second["data"]["jsapi"]))
        .await
        .unwrap();
    assert_eq!(outcome.trade_state, "SUCCESS");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alipay_trade_paid_through_sandbox_pay() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let client = Client::new(&sandbox);
    let no = "ALIPAY000000000000001";
    let resp = client.miniapp(&client.alipay(no, "2500", &url)).await;
    assert_eq!(resp["code"], 1, "{resp}");
    let jsapi = resp["data"]["jsapi"].as_object().unwrap();
    assert_eq!(jsapi.len(), 1);
    assert!(is_digits(&jsapi["trade_no"], 29), "{resp}");
    let trade_no = jsapi["trade_no"].as_str().unwrap().to_owned();
    // The identical retry gives the same trade.
    let again = client.miniapp(&client.alipay(no, "2500", &url)).await;
    assert_eq!(again["data"]["jsapi"]["trade_no"], trade_no.as_str());
    // An unknown trade_no is refused.
    let err = sandbox
        .pay(PayRequest {
            alipay_trade_no: Some("20211127220461494775747063371".into()),
            ..PayRequest::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "TRADE_NOT_EXIST"));
    // Paid over HTTP, as a page would: `{"alipay_trade_no": …}`.
    let outcome: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/pay", sandbox.base_url()))
        .json(&json!({ "alipay_trade_no": trade_no }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outcome["trade_state"], "SUCCESS", "{outcome}");
    assert_eq!(outcome["out_trade_no"], no);
    assert_eq!(outcome["transaction_id"], resp["data"]["mch_trade_no"]);
    sandbox.wait_for_delivery(no, WAIT).await.unwrap();
    let got = receiver.got.lock().unwrap().clone();
    let fields = decode_callback(&got[0].1);
    assert!(callback_verifies(&got[0].1, &client.secret), "{}", got[0].1);
    assert_eq!(fields["pay_type"], "2");
    assert_eq!(fields["transaction_id"], trade_no);
    assert_eq!(fields["total_fee"], "2500");
    assert!(!fields.contains_key("openid"));
    assert!(!fields.contains_key("buyer_id"));
    // Paying twice is refused.
    let err = sandbox
        .pay(PayRequest {
            alipay_trade_no: Some(trade_no),
            ..PayRequest::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "ORDERPAID"));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_is_retried_until_the_body_is_success_and_faults_apply() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    sandbox.set_notify_faults(NotifyFaults {
        signtest_probe: true,
        duplicates: 1,
        ..NotifyFaults::default()
    });
    let receiver = Receiver::default();
    // The probe's answer, then two refusals of the real callback.
    *receiver.script.lock().unwrap() = vec![(400, "FAIL"), (200, "fail"), (503, "")];
    let url = start_receiver(receiver.clone()).await;
    let client = Client::new(&sandbox);
    let no = "RETRY00000000000000001";
    let resp = client.miniapp(&client.wechat(no, "100", &url)).await;
    sandbox
        .pay(pay_request(&resp["data"]["jsapi"]))
        .await
        .unwrap();
    let records = sandbox.wait_for_attempts(no, 5, WAIT).await.unwrap();
    let kinds: Vec<DeliveryKind> = records.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            DeliveryKind::Probe,
            DeliveryKind::Real,
            DeliveryKind::Real,
            DeliveryKind::Real,
            DeliveryKind::Duplicate
        ]
    );
    assert!(records[3].acknowledged && records[3].final_attempt);
    let got = receiver.got.lock().unwrap().clone();
    let verifies: Vec<bool> = got
        .iter()
        .map(|(_, body)| callback_verifies(body, &client.secret))
        .collect();
    assert_eq!(verifies, [false, true, true, true, true]);
    sandbox.shutdown().await;
}

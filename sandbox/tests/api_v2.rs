//! End-to-end tests of the API v2 emulator over HTTP, with a tiny merchant client written here
//! (its own MD5/HMAC-SHA256 signing and XML handling; nothing shared with the sandbox's code).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use wxpay_sandbox::{
    DeliveryKind, NotifyFaults, PayRequest, Sandbox, SandboxConfig, SandboxError, V2SignType,
};

const WAIT: Duration = Duration::from_secs(20);

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The merchant's own v2 signature.
fn v2_sign(params: &BTreeMap<String, String>, key: &str, hmac: bool) -> String {
    let mut text = String::new();
    for (k, v) in params {
        if k != "sign" && !v.is_empty() {
            text.push_str(&format!("{k}={v}&"));
        }
    }
    text.push_str(&format!("key={key}"));
    if hmac {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        hex_upper(&mac.finalize().into_bytes())
    } else {
        hex_upper(&Md5::digest(text.as_bytes()))
    }
}

fn to_xml(params: &BTreeMap<String, String>) -> String {
    let mut s = String::from("<xml>");
    for (k, v) in params {
        s.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    s.push_str("</xml>");
    s
}

/// A flat XML parser for the test (quick-xml used directly).
fn parse_xml(bytes: &[u8]) -> BTreeMap<String, String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(bytes);
    let mut out = BTreeMap::new();
    let mut key = None;
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf).unwrap() {
            Event::Start(e) => key = Some(String::from_utf8(e.name().as_ref().to_vec()).unwrap()),
            Event::Text(t) => {
                if let Some(k) = &key {
                    out.entry(k.clone())
                        .or_insert_with(String::new)
                        .push_str(&t.decode().unwrap());
                }
            }
            Event::CData(t) => {
                if let Some(k) = &key {
                    out.entry(k.clone())
                        .or_insert_with(String::new)
                        .push_str(&t.decode().unwrap());
                }
            }
            Event::End(_) => key = None,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out.remove("xml");
    out
}

struct Client {
    base: String,
    appid: String,
    mchid: String,
    key: String,
    hmac: bool,
    http: reqwest::Client,
}

impl Client {
    fn new(sandbox: &Sandbox) -> Self {
        Self {
            base: sandbox.base_url().to_owned(),
            appid: sandbox.merchant().appid.clone(),
            mchid: sandbox.merchant().mchid.clone(),
            key: sandbox.v2_api_key().to_owned(),
            hmac: sandbox.v2_sign_type() == V2SignType::HmacSha256,
            http: reqwest::Client::new(),
        }
    }

    fn nonce() -> String {
        format!("{:032x}", rand_u128())
    }

    fn signed(&self, mut p: BTreeMap<String, String>) -> BTreeMap<String, String> {
        p.insert("appid".into(), self.appid.clone());
        p.insert("mch_id".into(), self.mchid.clone());
        p.insert("nonce_str".into(), Self::nonce());
        if self.hmac {
            p.insert("sign_type".into(), "HMAC-SHA256".into());
        }
        let sign = v2_sign(&p, &self.key, self.hmac);
        p.insert("sign".into(), sign);
        p
    }

    async fn post_raw(&self, path: &str, body: String) -> (reqwest::header::HeaderMap, Bytes) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let headers = resp.headers().clone();
        (headers, resp.bytes().await.unwrap())
    }

    /// Posts signed params; checks the reply's signature when `return_code` is SUCCESS.
    async fn call(&self, path: &str, p: BTreeMap<String, String>) -> BTreeMap<String, String> {
        let (headers, body) = self.post_raw(path, to_xml(&self.signed(p))).await;
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/xml")
        );
        let reply = parse_xml(&body);
        if reply["return_code"] == "SUCCESS" {
            assert_eq!(
                reply["sign"],
                v2_sign(&reply, &self.key, self.hmac),
                "reply sign: {reply:?}"
            );
            assert_eq!(reply["appid"], self.appid);
            assert_eq!(reply["mch_id"], self.mchid);
        }
        reply
    }

    fn order(&self, no: &str, total: u32, notify_url: &str) -> BTreeMap<String, String> {
        [
            ("body", "沙箱测试商品".to_owned()),
            ("out_trade_no", no.to_owned()),
            ("total_fee", total.to_string()),
            ("spbill_create_ip", "127.0.0.1".to_owned()),
            ("notify_url", notify_url.to_owned()),
            ("trade_type", "JSAPI".to_owned()),
            ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".to_owned()),
            ("attach", "a&b".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    async fn unified(&self, no: &str, total: u32, url: &str) -> BTreeMap<String, String> {
        self.call("/pay/unifiedorder", self.order(no, total, url))
            .await
    }

    async fn query(&self, no: &str) -> BTreeMap<String, String> {
        let p = [("out_trade_no".to_owned(), no.to_owned())].into();
        self.call("/pay/orderquery", p).await
    }

    async fn close(&self, no: &str) -> BTreeMap<String, String> {
        let p = [("out_trade_no".to_owned(), no.to_owned())].into();
        self.call("/pay/closeorder", p).await
    }

    /// The page's JSAPI parameters for `prepay_id`, as the merchant signs them.
    fn pay_request(&self, prepay_id: &str) -> PayRequest {
        let sign_type = if self.hmac { "HMAC-SHA256" } else { "MD5" };
        let p: BTreeMap<String, String> = [
            ("appId", self.appid.clone()),
            ("timeStamp", "1700000000".to_owned()),
            ("nonceStr", Self::nonce()),
            ("package", format!("prepay_id={prepay_id}")),
            ("signType", sign_type.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        PayRequest {
            app_id: p["appId"].clone(),
            time_stamp: p["timeStamp"].clone(),
            nonce_str: p["nonceStr"].clone(),
            package: p["package"].clone(),
            sign_type: sign_type.to_owned(),
            pay_sign: v2_sign(&p, &self.key, self.hmac),
            outcome: None,
            alipay_trade_no: None,
        }
    }
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let s = std::collections::hash_map::RandomState::new();
    let mut h = s.build_hasher();
    h.write_u64(1);
    let a = h.finish();
    let mut h = s.build_hasher();
    h.write_u64(2);
    (u128::from(a) << 64) | u128::from(h.finish())
}

/// A received notification and whether its sign verified.
type Got = (BTreeMap<String, String>, bool);

/// A notification receiver that checks each notification's sign with the merchant's key and
/// answers from a script of (status, return_code), then (200, SUCCESS).
#[derive(Clone)]
struct Receiver {
    key: String,
    hmac: bool,
    got: Arc<Mutex<Vec<Got>>>,
    script: Arc<Mutex<Vec<(u16, &'static str)>>>,
}

async fn receive(State(r): State<Receiver>, body: Bytes) -> (StatusCode, String) {
    let params = parse_xml(&body);
    let hmac = params.get("sign_type").map(String::as_str) == Some("HMAC-SHA256");
    assert_eq!(hmac, r.hmac, "sign_type in the notification");
    let valid = params.get("sign") == Some(&v2_sign(&params, &r.key, r.hmac));
    r.got.lock().unwrap().push((params, valid));
    let (status, code) = if !valid {
        (200, "FAIL")
    } else {
        let mut script = r.script.lock().unwrap();
        if script.is_empty() {
            (200, "SUCCESS")
        } else {
            script.remove(0)
        }
    };
    (
        StatusCode::from_u16(status).unwrap(),
        format!(
            "<xml><return_code><![CDATA[{code}]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
        ),
    )
}

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

async fn setup(
    config: SandboxConfig,
    script: Vec<(u16, &'static str)>,
) -> (Sandbox, Client, Receiver, String) {
    let sandbox = Sandbox::start(config).await.unwrap();
    let client = Client::new(&sandbox);
    let receiver = Receiver {
        key: client.key.clone(),
        hmac: client.hmac,
        got: Arc::default(),
        script: Arc::new(Mutex::new(script)),
    };
    let url = start_receiver(receiver.clone()).await;
    (sandbox, client, receiver, url)
}

async fn full_flow(config: SandboxConfig) {
    let (sandbox, client, receiver, url) = setup(config, Vec::new()).await;
    let reply = client.unified("V2FLOW000000000001", 2501, &url).await;
    assert_eq!(reply["return_code"], "SUCCESS", "{reply:?}");
    assert_eq!(reply["result_code"], "SUCCESS", "{reply:?}");
    assert_eq!(reply["trade_type"], "JSAPI");
    let prepay_id = reply["prepay_id"].clone();
    assert!(prepay_id.starts_with("wx"));

    let q = client.query("V2FLOW000000000001").await;
    assert_eq!(q["trade_state"], "NOTPAY", "{q:?}");
    assert!(!q.contains_key("transaction_id"));

    let outcome = sandbox.pay(client.pay_request(&prepay_id)).await.unwrap();
    assert_eq!(outcome.out_trade_no, "V2FLOW000000000001");
    let transaction_id = outcome.transaction_id.clone().unwrap();
    let record = sandbox
        .wait_for_delivery("V2FLOW000000000001", WAIT)
        .await
        .unwrap();
    assert!(record.acknowledged);
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (n, valid) = &got[0];
    assert!(valid, "notification sign must verify: {n:?}");
    for (k, v) in [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("trade_type", "JSAPI"),
        ("total_fee", "2501"),
        ("fee_type", "CNY"),
        ("out_trade_no", "V2FLOW000000000001"),
        ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("attach", "a&b"),
    ] {
        assert_eq!(n[k], v, "{k} in {n:?}");
    }
    assert_eq!(n["transaction_id"], transaction_id);
    assert_eq!(n["appid"], client.appid);
    assert_eq!(n["mch_id"], client.mchid);
    assert!(!n["bank_type"].is_empty() && !n["nonce_str"].is_empty());
    assert_eq!(n["time_end"].len(), 14);

    let q = client.query("V2FLOW000000000001").await;
    assert_eq!(q["result_code"], "SUCCESS");
    assert_eq!(q["trade_state"], "SUCCESS", "{q:?}");
    assert_eq!(q["transaction_id"], transaction_id);
    assert_eq!(q["total_fee"], "2501");
    assert_eq!(q["fee_type"], "CNY");
    assert_eq!(q["time_end"], n["time_end"]);
    assert_eq!(q["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");

    // Close: another order closes; a paid one does not; a closed one cannot close again.
    let other = client.unified("V2FLOW000000000002", 100, &url).await;
    assert_eq!(other["result_code"], "SUCCESS");
    let c = client.close("V2FLOW000000000002").await;
    assert_eq!(c["result_code"], "SUCCESS", "{c:?}");
    assert_eq!(
        client.query("V2FLOW000000000002").await["trade_state"],
        "CLOSED"
    );
    assert_eq!(
        client.close("V2FLOW000000000002").await["err_code"],
        "ORDERCLOSED"
    );
    assert_eq!(
        client.close("V2FLOW000000000001").await["err_code"],
        "ORDERPAID"
    );
    assert_eq!(
        client.query("NOSUCHORDER0001").await["err_code"],
        "ORDERNOTEXIST"
    );
    // A closed order's prepay cannot be paid.
    let err = sandbox
        .pay(client.pay_request(&other["prepay_id"]))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "ORDER_CLOSED"));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_unifiedorder_pay_notify_query_close() {
    full_flow(SandboxConfig::for_tests()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_sha256_unifiedorder_pay_notify_query_close() {
    full_flow(SandboxConfig::for_tests().v2_sign_type(V2SignType::HmacSha256)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_parameters_reuse_the_prepay_id_and_changed_ones_are_refused() {
    let (sandbox, client, _r, url) = setup(SandboxConfig::for_tests(), Vec::new()).await;
    let a = client.unified("V2SAME0000000001", 300, &url).await;
    let b = client.unified("V2SAME0000000001", 300, &url).await;
    assert_eq!(a["prepay_id"], b["prepay_id"]);
    assert_ne!(a["nonce_str"], b["nonce_str"]);
    let c = client.unified("V2SAME0000000001", 301, &url).await;
    assert_eq!(c["return_code"], "SUCCESS");
    assert_eq!(c["result_code"], "FAIL");
    assert_eq!(c["err_code"], "INVALID_REQUEST", "{c:?}");
    sandbox
        .pay(client.pay_request(&a["prepay_id"]))
        .await
        .unwrap();
    let d = client.unified("V2SAME0000000001", 300, &url).await;
    assert_eq!(d["err_code"], "ORDERPAID", "{d:?}");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_malformed_xml_and_bad_fields_fail_at_return_code() {
    let (sandbox, client, _r, url) = setup(SandboxConfig::for_tests(), Vec::new()).await;
    let mut p = client.signed(client.order("V2BAD00000000001", 100, &url));
    p.insert("total_fee".into(), "101".into()); // after signing
    let (_, body) = client.post_raw("/pay/unifiedorder", to_xml(&p)).await;
    let r = parse_xml(&body);
    assert_eq!(r["return_code"], "FAIL");
    assert_eq!(r["return_msg"], "签名错误");
    assert!(!r.contains_key("sign"));

    // Signed with the wrong algorithm for the merchant's configuration.
    let mut p = client.order("V2BAD00000000001", 100, &url);
    p.insert("appid".into(), client.appid.clone());
    p.insert("mch_id".into(), client.mchid.clone());
    p.insert("nonce_str".into(), "abc".into());
    p.insert("sign_type".into(), "HMAC-SHA256".into());
    let sign = v2_sign(&p, &client.key, true);
    p.insert("sign".into(), sign);
    let (_, body) = client.post_raw("/pay/unifiedorder", to_xml(&p)).await;
    assert_eq!(parse_xml(&body)["return_code"], "FAIL");

    let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><appid>&x;</appid></xml>"#;
    let (_, body) = client.post_raw("/pay/unifiedorder", xxe.into()).await;
    let r = parse_xml(&body);
    assert_eq!(r["return_code"], "FAIL");
    assert!(r["return_msg"].contains("XML"), "{r:?}");
    let (_, body) = client.post_raw("/pay/orderquery", "not xml <".into()).await;
    assert_eq!(parse_xml(&body)["return_code"], "FAIL");

    for (field, value) in [
        ("total_fee", "0"),
        ("total_fee", "1.5"),
        ("trade_type", "NATIVE"),
        ("openid", ""),
        ("spbill_create_ip", "localhost"),
        ("notify_url", "http://127.0.0.1/notify?x=1"),
    ] {
        let mut p = client.order("V2BAD00000000002", 100, &url);
        p.insert(field.into(), value.into());
        let r = client.call("/pay/unifiedorder", p).await;
        assert_eq!(r["return_code"], "FAIL", "{field}={value}: {r:?}");
    }
    let mut p = client.order("V2BAD00000000003", 100, &url);
    p.remove("body");
    let r = client.call("/pay/unifiedorder", p).await;
    assert_eq!(r["return_code"], "FAIL");
    assert!(r["return_msg"].contains("body"));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_checks_the_v2_pay_sign_and_sign_type() {
    let (sandbox, client, _r, url) = setup(SandboxConfig::for_tests(), Vec::new()).await;
    let prepay = client.unified("V2PAY00000000001", 100, &url).await["prepay_id"].clone();
    let mut req = client.pay_request(&prepay);
    req.pay_sign = req.pay_sign.replace(|c: char| c.is_ascii_digit(), "0");
    let err = sandbox.pay(req).await.unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "PAY_SIGN_ERROR"));
    let mut req = client.pay_request(&prepay);
    req.sign_type = "RSA".into();
    let err = sandbox.pay(req).await.unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "INVALID_SIGN_TYPE"));
    let mut req = client.pay_request(&prepay);
    req.sign_type = "HMAC-SHA256".into();
    let err = sandbox.pay(req).await.unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "INVALID_SIGN_TYPE"));

    // Over HTTP, as the browser shim does (a lower-case paySign is accepted too).
    let mut req = client.pay_request(&prepay);
    req.pay_sign = req.pay_sign.to_ascii_lowercase();
    let resp = reqwest::Client::new()
        .post(format!("{}/sandbox/pay", sandbox.base_url()))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["trade_state"], "SUCCESS");
    assert_eq!(v["out_trade_no"], "V2PAY00000000001");
    let info: serde_json::Value =
        reqwest::get(format!("{}/sandbox/prepay/{prepay}", sandbox.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(info["amount"]["total"], 100);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_notifications_are_retried_and_a_forged_one_is_sent_first() {
    // 500, then 200 with FAIL (v2: not an acknowledgement), then SUCCESS.
    let (sandbox, client, receiver, url) = setup(
        SandboxConfig::for_tests(),
        vec![(500, "SUCCESS"), (200, "FAIL")],
    )
    .await;
    sandbox.set_notify_faults(NotifyFaults {
        signtest_probe: true,
        duplicates: 2,
        ..NotifyFaults::default()
    });
    let prepay = client.unified("V2RETRY000000001", 100, &url).await["prepay_id"].clone();
    sandbox.pay(client.pay_request(&prepay)).await.unwrap();
    let records = sandbox
        .wait_for_attempts("V2RETRY000000001", 6, WAIT)
        .await
        .unwrap();
    let probe: Vec<_> = records
        .iter()
        .filter(|r| r.kind == DeliveryKind::Probe)
        .collect();
    assert_eq!(probe.len(), 1);
    assert!(!probe[0].acknowledged);
    let real: Vec<_> = records
        .iter()
        .filter(|r| r.kind == DeliveryKind::Real)
        .collect();
    assert_eq!(real.len(), 3, "{records:?}");
    assert_eq!(
        real.iter().map(|r| r.acknowledged).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(real[2].final_attempt);
    let got = receiver.got.lock().unwrap().clone();
    assert!(!got[0].1, "the forged copy comes first and does not verify");
    assert!(got[1..].iter().all(|(_, valid)| *valid));
    // Same notification each time (same nonce_str and sign).
    assert!(got[1..].windows(2).all(|w| w[0].0 == w[1].0));
    sandbox.shutdown().await;
}

//! End-to-end tests of the QFPay emulator, with the shop side written here from QFPay's public
//! documentation (seed 002's `make_req_sign`; "Asynchronous Notifications" for the callback's
//! `X-QF-SIGN`), not from wxpay-core.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::Value;
use wxpay_sandbox::{
    DeliveryKind, NotifyFaults, PayRequest, Sandbox, SandboxConfig, SandboxError, SimulatedOutcome,
};

/// A change to a request: set (`Some`) or remove (`None`) a parameter.
type Edit<'a> = (&'a str, Option<&'a str>);

const WAIT: Duration = Duration::from_secs(20);

fn md5_upper(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The seed's `make_req_sign`: sorted `k=v` joined by `&`, the key appended, MD5 upper-case
/// (empty values left out, as QFPay's "Signature Generation" says).
fn make_req_sign(params: &BTreeMap<String, String>, key: &str) -> String {
    let text = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    md5_upper(format!("{text}{key}").as_bytes())
}

/// A tiny QFPay client.
struct Client {
    base: String,
    app_code: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    fn new(sandbox: &Sandbox) -> Self {
        Self {
            base: sandbox.base_url().to_owned(),
            app_code: sandbox.qfpay().app_code.clone(),
            key: sandbox.qfpay().client_key.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// Posts `params` as a signed form.
    async fn post(&self, path: &str, params: &BTreeMap<String, String>) -> Value {
        let sign = make_req_sign(params, &self.key);
        self.post_signed(path, params, Some(&sign), &self.app_code)
            .await
    }

    async fn post_signed(
        &self,
        path: &str,
        params: &BTreeMap<String, String>,
        sign: Option<&str>,
        app_code: &str,
    ) -> Value {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-QF-APPCODE", app_code)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encode_form(params));
        if let Some(sign) = sign {
            req = req.header("X-QF-SIGN", sign);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn query(&self, out_trade_no: &str) -> Value {
        let params = map(&[("out_trade_no", out_trade_no)]);
        self.post("/trade/v1/query", &params).await
    }
}

/// `application/x-www-form-urlencoded` text of `params`.
fn encode_form(params: &BTreeMap<String, String>) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn payment_params(
    out_trade_no: &str,
    txamt: &str,
    notify_url: Option<&str>,
) -> BTreeMap<String, String> {
    let mut p = map(&[
        ("txamt", txamt),
        ("txcurrcd", "CNY"),
        ("pay_type", "800207"),
        ("out_trade_no", out_trade_no),
        ("txdtm", "2026-11-23 20:00:00"),
        ("sub_openid", "oSandboxPayer0000000000000001"),
        ("goods_name", "Pet food & toys"),
    ]);
    if let Some(url) = notify_url {
        p.insert("notify_url".into(), url.into());
    }
    p
}

fn pay_request(pay_params: &Value) -> PayRequest {
    serde_json::from_value(pay_params.clone()).unwrap()
}

#[derive(Clone, Debug)]
struct Received {
    sign: Option<String>,
    content_type: String,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Replies to give, in order (then `200 SUCCESS`).
    script: Arc<Mutex<Vec<(u16, &'static str)>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    r.got.lock().unwrap().push(Received {
        sign: headers
            .get("X-QF-SIGN")
            .map(|v| v.to_str().unwrap().to_owned()),
        content_type: headers["content-type"].to_str().unwrap().to_owned(),
        body,
    });
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
        .route("/notify", post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/notify")
}

/// QFPay's notification check: MD5(raw body + client_key), upper-case, against `X-QF-SIGN`.
fn notification_verifies(received: &Received, client_key: &str) -> bool {
    let mut signed = received.body.to_vec();
    signed.extend_from_slice(client_key.as_bytes());
    received.sign.as_deref() == Some(md5_upper(&signed).as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_pay_and_signed_json_notification() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let client = Client::new(&sandbox);
    let no = "QFTEST000000000000000001";
    let resp = client
        .post("/trade/v1/payment", &payment_params(no, "8360", Some(&url)))
        .await;
    assert_eq!(resp["respcd"], "0000", "{resp}");
    assert_eq!(resp["out_trade_no"], no);
    assert_eq!(resp["txamt"], "8360");
    assert_eq!(resp["txcurrcd"], "CNY");
    assert_eq!(resp["pay_type"], "800207");
    assert_eq!(resp["txdtm"], "2026-11-23 20:00:00");
    let syssn = resp["syssn"].as_str().unwrap().to_owned();
    assert!(!syssn.is_empty());
    let pp = &resp["pay_params"];
    assert_eq!(pp["appId"], sandbox.merchant().appid);
    assert_eq!(pp["signType"], "MD5");
    assert!(pp["package"].as_str().unwrap().starts_with("prepay_id="));
    for k in ["timeStamp", "nonceStr", "paySign"] {
        assert!(pp[k].as_str().is_some_and(|v| !v.is_empty()), "{k}");
    }

    // Unpaid: the query says 1143, not cancelled.
    let q = client.query(no).await;
    assert_eq!(q["respcd"], "0000", "{q}");
    assert_eq!(q["data"][0]["respcd"], "1143");
    assert_eq!(q["data"][0]["cancel"], "0");

    let outcome = sandbox.pay(pay_request(pp)).await.unwrap();
    assert_eq!(outcome.out_trade_no, no);
    assert_eq!(outcome.transaction_id.as_deref(), Some(syssn.as_str()));
    let record = sandbox.wait_for_delivery(no, WAIT).await.unwrap();
    assert_eq!(record.kind, DeliveryKind::Real);
    assert_eq!(record.response_body, "SUCCESS");

    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].content_type.starts_with("application/json"));
    assert!(notification_verifies(&got[0], &sandbox.qfpay().client_key));
    let n: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(n["status"], "1");
    assert_eq!(n["notify_type"], "payment");
    assert_eq!(n["pay_type"], "800207");
    assert_eq!(n["syssn"], syssn.as_str());
    assert_eq!(n["out_trade_no"], no);
    assert_eq!(n["txamt"], "8360");
    assert_eq!(n["txcurrcd"], "CNY");
    assert_eq!(n["respcd"], "0000");
    assert_eq!(n["cancel"], "0");
    assert_eq!(n["goods_name"], "Pet food & toys");
    assert!(n["chnlsn"].as_str().unwrap().starts_with("42000"));
    assert!(n["paydtm"].is_string() && n["sysdtm"].is_string());
    assert!(n.get("mchid").is_none());

    // Paid: the query says 0000 with the payment time and WeChat's number.
    let q = client.query(no).await;
    let entry = &q["data"][0];
    assert_eq!(entry["respcd"], "0000");
    assert_eq!(entry["syssn"], syssn.as_str());
    assert_eq!(entry["chnlsn"], n["chnlsn"]);
    // The same query by syssn finds the same single payment.
    let by_syssn = client
        .post(
            "/trade/v1/query",
            &map(&[("syssn", &syssn), ("out_trade_no", no)]),
        )
        .await;
    assert_eq!(by_syssn["data"].as_array().unwrap().len(), 1);
    // A repeated request for a paid order is refused ("order already paid").
    let again = client
        .post("/trade/v1/payment", &payment_params(no, "8360", Some(&url)))
        .await;
    assert_eq!(again["respcd"], "1260", "{again}");
    // Paying twice is refused.
    let err = sandbox.pay(pay_request(pp)).await.unwrap_err();
    assert!(
        matches!(err, SandboxError::Pay { ref code, .. } if code == "ORDERPAID"),
        "{err}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn every_invalid_request_is_refused_and_creates_nothing() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let client = Client::new(&sandbox);
    let no = "QFBAD0000000000000000001";
    let base = payment_params(no, "100", Some("http://127.0.0.1:9/notify"));
    let long_no = "N".repeat(129);
    let long_goods = "g".repeat(65);
    let cases: Vec<(&str, Vec<Edit<'_>>, &str)> = vec![
        ("no pay_type", vec![("pay_type", None)], "1104"),
        ("other pay_type", vec![("pay_type", Some("800201"))], "1104"),
        ("no sub_openid", vec![("sub_openid", None)], "1104"),
        ("no txamt", vec![("txamt", None)], "1104"),
        ("zero txamt", vec![("txamt", Some("0"))], "1104"),
        ("negative txamt", vec![("txamt", Some("-1"))], "1104"),
        ("decimal txamt", vec![("txamt", Some("1.5"))], "1104"),
        ("text txamt", vec![("txamt", Some("abc"))], "1104"),
        (
            "lower-case currency",
            vec![("txcurrcd", Some("cny"))],
            "1104",
        ),
        (
            "4-letter currency",
            vec![("txcurrcd", Some("CNYY"))],
            "1104",
        ),
        ("no currency", vec![("txcurrcd", None)], "1104"),
        (
            "bad txdtm",
            vec![("txdtm", Some("2026/11/23 20:00:00"))],
            "1104",
        ),
        ("no txdtm", vec![("txdtm", None)], "1104"),
        (
            "long out_trade_no",
            vec![("out_trade_no", Some(&long_no))],
            "1104",
        ),
        ("no out_trade_no", vec![("out_trade_no", None)], "1104"),
        (
            "long goods_name",
            vec![("goods_name", Some(&long_goods))],
            "1104",
        ),
        ("mchid without one", vec![("mchid", Some("MCH1"))], "1104"),
        (
            "ftp notify_url",
            vec![("notify_url", Some("ftp://x/notify"))],
            "1104",
        ),
        (
            "relative notify_url",
            vec![("notify_url", Some("/notify"))],
            "1104",
        ),
    ];
    for (name, edits, want) in cases {
        let mut p = base.clone();
        for (k, v) in edits {
            match v {
                Some(v) => p.insert(k.to_owned(), v.to_owned()),
                None => p.remove(k),
            };
        }
        let resp = client.post("/trade/v1/payment", &p).await;
        assert_eq!(resp["respcd"], want, "{name}: {resp}");
        assert!(
            resp["respmsg"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }
    // Signature: wrong, missing, made with another key; unknown app_code.
    let good = make_req_sign(&base, &client.key);
    let wrong = make_req_sign(&base, "not-the-client-key");
    for (sign, app_code, want) in [
        (Some(wrong.as_str()), client.app_code.as_str(), "1108"),
        (None, client.app_code.as_str(), "1108"),
        (Some(good.as_str()), "UNKNOWNAPPCODE", "1104"),
    ] {
        let resp = client
            .post_signed("/trade/v1/payment", &base, sign, app_code)
            .await;
        assert_eq!(resp["respcd"], want, "{resp}");
    }
    // A changed parameter under the old signature.
    let mut tampered = base.clone();
    tampered.insert("txamt".into(), "1".into());
    let resp = client
        .post_signed(
            "/trade/v1/payment",
            &tampered,
            Some(&good),
            &client.app_code,
        )
        .await;
    assert_eq!(resp["respcd"], "1108");
    // Not a form; a parameter both in the query string and in the body.
    let resp: Value = client
        .http
        .post(format!("{}/trade/v1/payment", client.base))
        .header("X-QF-APPCODE", &client.app_code)
        .header("X-QF-SIGN", &good)
        .json(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["respcd"], "1103", "{resp}");
    let resp: Value = client
        .http
        .post(format!("{}/trade/v1/payment?txamt=100", client.base))
        .header("X-QF-APPCODE", &client.app_code)
        .header("X-QF-SIGN", &good)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encode_form(&base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["respcd"], "1103", "{resp}");
    // Nothing was created.
    let q = client.query(no).await;
    assert_eq!(q["respcd"], "0000");
    assert_eq!(q["data"], Value::Array(Vec::new()));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn https_is_required_unless_http_notify_urls_are_allowed() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = Client::new(&sandbox);
    let http = payment_params(
        "QFHTTP00000000000000001",
        "100",
        Some("http://shop.test/notify"),
    );
    let resp = client.post("/trade/v1/payment", &http).await;
    assert_eq!(resp["respcd"], "1104", "{resp}");
    let https = payment_params(
        "QFHTTP00000000000000002",
        "100",
        Some("https://shop.test/notify"),
    );
    let resp = client.post("/trade/v1/payment", &https).await;
    assert_eq!(resp["respcd"], "0000", "{resp}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn params_in_the_query_string_as_the_seed_sends_them() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let client = Client::new(&sandbox);
    let p = payment_params("QFQUERYSTRING000000001", "200", None);
    let sign = make_req_sign(&p, &client.key);
    let resp: Value = client
        .http
        .post(format!(
            "{}/trade/v1/payment?{}",
            client.base,
            encode_form(&p)
        ))
        .header("X-QF-APPCODE", &client.app_code)
        .header("X-QF-SIGN", sign.to_ascii_lowercase())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["respcd"], "0000", "{resp}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn identical_retry_is_idempotent_and_a_changed_one_is_refused() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let client = Client::new(&sandbox);
    let p = payment_params(
        "QFIDEMPOTENT0000000001",
        "500",
        Some("http://127.0.0.1:9/n"),
    );
    let first = client.post("/trade/v1/payment", &p).await;
    let second = client.post("/trade/v1/payment", &p).await;
    assert_eq!(first["respcd"], "0000");
    assert_eq!(second["respcd"], "0000");
    assert_eq!(first["syssn"], second["syssn"]);
    assert_eq!(
        first["pay_params"]["package"],
        second["pay_params"]["package"]
    );
    // The repeated reply's pay_params pay the order too.
    sandbox
        .pay(PayRequest {
            outcome: Some(SimulatedOutcome::Expire),
            ..pay_request(&second["pay_params"])
        })
        .await
        .unwrap();
    let mut changed = p.clone();
    changed.insert("txamt".into(), "501".into());
    let resp = client.post("/trade/v1/payment", &changed).await;
    assert_eq!(resp["respcd"], "2011", "{resp}");
    let q = client.query("QFIDEMPOTENT0000000001").await;
    assert_eq!(q["data"].as_array().unwrap().len(), 1);
    assert_eq!(q["data"][0]["txamt"], "500");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_is_retried_until_the_body_is_success() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let receiver = Receiver::default();
    *receiver.script.lock().unwrap() = vec![(200, "FAIL"), (500, "SUCCESS"), (200, " SUCCESS\n")];
    let url = start_receiver(receiver.clone()).await;
    let client = Client::new(&sandbox);
    let no = "QFRETRY000000000000001";
    let resp = client
        .post("/trade/v1/payment", &payment_params(no, "100", Some(&url)))
        .await;
    sandbox.pay(pay_request(&resp["pay_params"])).await.unwrap();
    let records = sandbox.wait_for_delivery_finished(no, WAIT).await.unwrap();
    let real: Vec<_> = records
        .iter()
        .filter(|r| r.kind == DeliveryKind::Real)
        .collect();
    assert_eq!(real.len(), 3, "{records:?}");
    assert!(!real[0].acknowledged && !real[1].acknowledged);
    assert!(real[2].acknowledged && real[2].final_attempt);
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    // Every attempt carries the same, correctly signed body.
    assert!(got.iter().all(|r| r.body == got[0].body));
    assert!(
        got.iter()
            .all(|r| notification_verifies(r, &sandbox.qfpay().client_key))
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_probe_and_duplicates() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    sandbox.set_notify_faults(NotifyFaults {
        duplicates: 1,
        concurrent_duplicates: 1,
        signtest_probe: true,
        ..NotifyFaults::default()
    });
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let client = Client::new(&sandbox);
    let no = "QFFAULTS00000000000001";
    let resp = client
        .post("/trade/v1/payment", &payment_params(no, "100", Some(&url)))
        .await;
    sandbox.pay(pay_request(&resp["pay_params"])).await.unwrap();
    let records = sandbox.wait_for_attempts(no, 4, WAIT).await.unwrap();
    let probe = records
        .iter()
        .filter(|r| r.kind == DeliveryKind::Probe)
        .count();
    let duplicates = records
        .iter()
        .filter(|r| r.kind == DeliveryKind::Duplicate)
        .count();
    assert_eq!((probe, duplicates), (1, 2), "{records:?}");
    let got = receiver.got.lock().unwrap().clone();
    let key = &sandbox.qfpay().client_key;
    // The probe comes first and does not verify; every other copy does.
    assert!(!notification_verifies(&got[0], key));
    assert_eq!(
        got.iter().filter(|r| notification_verifies(r, key)).count(),
        3
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn without_notify_url_nothing_is_notified() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let client = Client::new(&sandbox);
    let no = "QFSILENT00000000000001";
    let resp = client
        .post("/trade/v1/payment", &payment_params(no, "100", None))
        .await;
    assert_eq!(resp["respcd"], "0000");
    let outcome = sandbox.pay(pay_request(&resp["pay_params"])).await.unwrap();
    assert_eq!(outcome.trade_state, "SUCCESS");
    assert_eq!(outcome.notification_id, None);
    assert!(sandbox.deliveries().iter().all(|r| r.out_trade_no != no));
    assert_eq!(client.query(no).await["data"][0]["respcd"], "0000");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn close_and_reversal_of_unpaid_orders() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let client = Client::new(&sandbox);
    let no = "QFCLOSE000000000000001";
    let p = payment_params(no, "300", None);
    let resp = client.post("/trade/v1/payment", &p).await;
    let pay_params = resp["pay_params"].clone();
    let close = |extra: &[(&str, &str)]| {
        let mut params = map(&[("out_trade_no", no)]);
        for (k, v) in extra {
            params.insert((*k).to_owned(), (*v).to_owned());
        }
        params
    };
    // The amount or time of another payment is refused and changes nothing.
    let bad = client
        .post("/trade/v1/close", &close(&[("txamt", "301")]))
        .await;
    assert_eq!(bad["respcd"], "1104", "{bad}");
    let bad = client
        .post(
            "/trade/v1/close",
            &close(&[("txdtm", "2026-11-23 20:00:01")]),
        )
        .await;
    assert_eq!(bad["respcd"], "1104", "{bad}");
    assert_eq!(client.query(no).await["data"][0]["cancel"], "0");
    // Close (with txdtm, as the contract sends it).
    let ok = client
        .post(
            "/trade/v1/close",
            &close(&[("txdtm", "2026-11-23 20:00:00")]),
        )
        .await;
    assert_eq!(ok["respcd"], "0000", "{ok}");
    assert_eq!(ok["orig_syssn"], resp["syssn"]);
    // Closing again is a success too.
    assert_eq!(
        client.post("/trade/v1/close", &close(&[])).await["respcd"],
        "0000"
    );
    let q = client.query(no).await;
    assert_eq!(q["data"][0]["respcd"], "1142");
    assert_eq!(q["data"][0]["cancel"], "1");
    // A closed order can be neither paid nor requested again.
    let err = sandbox.pay(pay_request(&pay_params)).await.unwrap_err();
    assert!(
        matches!(err, SandboxError::Pay { ref code, .. } if code == "ORDER_CLOSED"),
        "{err}"
    );
    assert_eq!(client.post("/trade/v1/payment", &p).await["respcd"], "1142");
    // Unknown orders.
    let unknown = client
        .post("/trade/v1/close", &map(&[("out_trade_no", "NOSUCHORDER")]))
        .await;
    assert_eq!(unknown["respcd"], "1136");
    let neither = client.post("/trade/v1/close", &map(&[])).await;
    assert_eq!(neither["respcd"], "1104");
    // The documented reversal, by syssn with txamt and txdtm, on another order.
    let other = client
        .post(
            "/trade/v1/payment",
            &payment_params("QFCLOSE000000000000002", "400", None),
        )
        .await;
    let syssn = other["syssn"].as_str().unwrap();
    let reversal = client
        .post(
            "/trade/v1/reversal",
            &map(&[
                ("syssn", syssn),
                ("txamt", "400"),
                ("txdtm", "2026-11-23 20:00:00"),
            ]),
        )
        .await;
    assert_eq!(reversal["respcd"], "0000", "{reversal}");
    assert_eq!(
        client.query("QFCLOSE000000000000002").await["data"][0]["cancel"],
        "1"
    );
    // A paid order cannot be closed.
    let paid = client
        .post(
            "/trade/v1/payment",
            &payment_params("QFCLOSE000000000000003", "500", None),
        )
        .await;
    sandbox.pay(pay_request(&paid["pay_params"])).await.unwrap();
    let refused = client
        .post(
            "/trade/v1/close",
            &map(&[("out_trade_no", "QFCLOSE000000000000003")]),
        )
        .await;
    assert_eq!(refused["respcd"], "1260", "{refused}");
    // Query and close are signed like payment.
    let q = client
        .post_signed(
            "/trade/v1/query",
            &map(&[("out_trade_no", no)]),
            Some("0123456789ABCDEF0123456789ABCDEF"),
            &client.app_code,
        )
        .await;
    assert_eq!(q["respcd"], "1108");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_configured_mchid_must_be_sent() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests().qfpay_mchid("MNxMp11FV35qQN"))
        .await
        .unwrap();
    assert_eq!(sandbox.qfpay().mchid.as_deref(), Some("MNxMp11FV35qQN"));
    let client = Client::new(&sandbox);
    let mut p = payment_params("QFMCHID000000000000001", "100", None);
    assert_eq!(client.post("/trade/v1/payment", &p).await["respcd"], "1104");
    p.insert("mchid".into(), "SomeoneElse".into());
    assert_eq!(client.post("/trade/v1/payment", &p).await["respcd"], "1104");
    p.insert("mchid".into(), "MNxMp11FV35qQN".into());
    let resp = client.post("/trade/v1/payment", &p).await;
    assert_eq!(resp["respcd"], "0000", "{resp}");
    let q = client
        .post(
            "/trade/v1/query",
            &map(&[
                ("out_trade_no", "QFMCHID000000000000001"),
                ("mchid", "MNxMp11FV35qQN"),
            ]),
        )
        .await;
    assert_eq!(q["data"][0]["mchid"], "MNxMp11FV35qQN");
    assert!(
        Sandbox::start(SandboxConfig::for_tests().qfpay_mchid("not valid!"))
            .await
            .is_err()
    );
    sandbox.shutdown().await;
}

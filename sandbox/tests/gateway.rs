//! End-to-end tests of the seed-001 gateway emulator, with the shop side written here: the
//! callback is checked by a line-by-line port of the seed's Java `checkOpenSign`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use wxpay_sandbox::{
    DeliveryKind, NotifyFaults, PayRequest, RetrySchedule, Sandbox, SandboxConfig, SandboxError,
};

const WAIT: Duration = Duration::from_secs(20);

/// The seed's `openSign`.
fn open_sign(app_key: &str, params: &HashMap<String, String>) -> String {
    let sorted: BTreeMap<&String, &String> = params.iter().collect();
    let kv: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let source = format!("{}&app_key={app_key}", kv.join("&"));
    Md5::digest(source.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The seed's `checkOpenSign`, Java semantics (split drops trailing empty strings).
fn check_open_sign(app_key: &str, sign: &str, req_body: &str) -> bool {
    let mut field_map = HashMap::new();
    for field in req_body.split('&') {
        let mut pair: Vec<&str> = field.split('=').collect();
        while pair.last() == Some(&"") {
            pair.pop();
        }
        if pair.len() != 2 {
            continue;
        }
        if pair[0] != "sign" && !pair[1].trim().is_empty() {
            field_map.insert(pair[0].to_owned(), pair[1].to_owned());
        }
    }
    open_sign(app_key, &field_map) == sign
}

fn form_fields(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .unwrap()
                    .into_owned(),
            )
        })
        .collect()
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, String)>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ct = headers["content-type"].to_str().unwrap().to_owned();
    r.got
        .lock()
        .unwrap()
        .push((ct, String::from_utf8(body.to_vec()).unwrap()));
    let mut script = r.script.lock().unwrap();
    StatusCode::from_u16(if script.is_empty() {
        200
    } else {
        script.remove(0)
    })
    .unwrap()
}

async fn start_receiver(r: Receiver) -> String {
    let app = axum::Router::new()
        .route("/callback", post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/callback")
}

async fn precreate(sandbox: &Sandbox, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/open/trade/wx/jsapi/precreate",
            sandbox.base_url()
        ))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn request(sandbox: &Sandbox, order: &str, amount: u64, url: &str) -> Value {
    json!({
        "ucid": "102579",
        "ip": "127.0.0.1",
        "openid": "o_xsewew131SGS",
        "biz_order_id": order,
        "pay_amount": amount,
        "title": "云队长 医药 & 连锁",
        "notify_url": url,
        "biz_id": sandbox.gateway().biz_id,
        "extra": "342rewrs",
    })
}

fn pay_request(params: &Value) -> PayRequest {
    serde_json::from_value(params.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precreate_pay_and_signed_form_callbacks_repeated() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    sandbox.set_notify_faults(NotifyFaults {
        duplicates: 2,
        ..NotifyFaults::default()
    });
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let (status, params) = precreate(&sandbox, &request(&sandbox, "21-364535", 83601, &url)).await;
    assert_eq!(status, 200);
    assert_eq!(params["signType"], "MD5", "{params}");
    assert_eq!(params["appId"], sandbox.merchant().appid);
    assert!(
        params["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=")
    );
    assert!(params["timeStamp"].is_string() && params["nonceStr"].is_string());
    assert_eq!(params["paySign"].as_str().unwrap().len(), 32);

    // The pay sheet shows the order; paying goes through /sandbox/pay.
    let prepay = params["package"]
        .as_str()
        .unwrap()
        .trim_start_matches("prepay_id=");
    let info: Value = reqwest::get(format!("{}/sandbox/prepay/{prepay}", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["amount"]["total"], 83601);
    assert_eq!(info["out_trade_no"], "21-364535");
    let resp = reqwest::Client::new()
        .post(format!("{}/sandbox/pay", sandbox.base_url()))
        .json(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let outcome: Value = resp.json().await.unwrap();
    assert_eq!(outcome["out_trade_no"], "21-364535");
    let trade_id = outcome["transaction_id"].as_str().unwrap().to_owned();

    let records = sandbox
        .wait_for_attempts("21-364535", 3, WAIT)
        .await
        .unwrap();
    assert!(records.iter().all(|r| r.acknowledged), "{records:?}");
    assert_eq!(
        records
            .iter()
            .filter(|r| r.kind == DeliveryKind::Duplicate)
            .count(),
        2
    );
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let app_key = &sandbox.gateway().app_key;
    for (ct, body) in &got {
        assert_eq!(ct, "application/x-www-form-urlencoded");
        let f = form_fields(body);
        assert!(check_open_sign(app_key, &f["sign"], body), "{body}");
        assert!(!check_open_sign("wrong", &f["sign"], body));
    }
    let body = &got[0].1;
    // Values are URL-encoded in the body: biz_content starts %7B, spaces are %20.
    assert!(
        body.contains("biz_content=%7B%22uid%22%3A%22102579%22"),
        "{body}"
    );
    assert!(!body.contains('+') && !body.contains(' '));
    let f = form_fields(body);
    assert_eq!(f["biz_id"], sandbox.gateway().biz_id);
    assert_eq!(f["client_id"], sandbox.gateway().client_id);
    assert_eq!(f["sign_type"], "MD5");
    assert_eq!(f["version"], "1.0");
    assert_eq!(f["nonce_str"].len(), 32);
    assert!(f["timestamp"].len() >= 13 && f["timestamp"].bytes().all(|b| b.is_ascii_digit()));
    let biz: Value = serde_json::from_str(&f["biz_content"]).unwrap();
    assert_eq!(biz["uid"], "102579");
    assert_eq!(biz["trade_id"], trade_id.as_str());
    assert_eq!(biz["total_amount"], 83601);
    assert_eq!(biz["trade_status"], "SUCCESS");
    assert_eq!(biz["pay_type"], "113");
    assert_eq!(biz["title"], "云队长 医药 & 连锁");
    assert_eq!(biz["biz_order_id"], "21-364535");
    let t = biz["trade_pay_time"].as_str().unwrap();
    assert_eq!(t.len(), 19);
    assert_eq!(&t[4..5], "-");
    assert_eq!(&t[10..11], " ");
    let xml = biz["callback_content"].as_str().unwrap();
    assert!(xml.starts_with("<xml>") && xml.contains("83601") && xml.contains("SUCCESS"));
    // The keys appear in the seed's order.
    let keys: Vec<&str> = f["biz_content"]
        .split("\":")
        .filter_map(|s| s.rsplit('"').next())
        .collect();
    assert_eq!(
        &keys[..9],
        [
            "uid",
            "trade_id",
            "total_amount",
            "trade_pay_time",
            "trade_status",
            "pay_type",
            "callback_content",
            "title",
            "biz_order_id"
        ]
    );

    // Re-precreate of the paid order fails in the seed's error shape.
    let (status, err) = precreate(&sandbox, &request(&sandbox, "21-364535", 83601, &url)).await;
    assert_eq!(status, 200);
    assert_eq!(err["status"], 500);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_seed_shape_with_http_200() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let url = "http://127.0.0.1:9/callback";
    let mut cases = Vec::new();
    for (field, value) in [
        ("openid", json!("")),
        ("biz_id", json!("someone_else")),
        ("pay_amount", json!(0)),
        ("pay_amount", json!("1")),
        ("ip", json!("not-an-ip")),
        ("notify_url", json!("ftp://x")),
        ("title", Value::Null),
    ] {
        let mut body = request(&sandbox, "ERR0001", 100, url);
        body[field] = value;
        cases.push((field, body));
    }
    for (field, body) in cases {
        let (status, v) = precreate(&sandbox, &body).await;
        assert_eq!(status, 200, "{field}");
        assert_eq!(v["status"], 500, "{field}: {v}");
        assert_eq!(v["error"], "Internal Server Error");
        assert_eq!(v["path"], "/open/trade/wx/jsapi/precreate");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("第三方返回失败, errorMsg = "),
            "{v}"
        );
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.ends_with("+0000") && ts.len() == 28, "{ts}");
    }
    let (_, v) = precreate(&sandbox, &request(&sandbox, "ERR0002", 100, url)).await;
    assert!(v.get("paySign").is_some());
    // Same biz_order_id, other parameters.
    let (_, v) = precreate(&sandbox, &request(&sandbox, "ERR0002", 101, url)).await;
    assert_eq!(v["status"], 500);
    // Same parameters: a fresh set of parameters for the same prepay.
    let (_, a) = precreate(&sandbox, &request(&sandbox, "ERR0003", 100, url)).await;
    let (_, b) = precreate(&sandbox, &request(&sandbox, "ERR0003", 100, url)).await;
    assert_eq!(a["package"], b["package"]);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_is_retried_and_a_forged_callback_does_not_verify() {
    let sandbox = Sandbox::start(
        SandboxConfig::for_tests()
            .gateway_biz_id("ydrug")
            .gateway_app_key("k3y")
            .gateway_client_id("yeshan")
            .notify_retry_schedule(RetrySchedule::new(vec![Duration::from_millis(10); 3])),
    )
    .await
    .unwrap();
    assert_eq!(sandbox.gateway().app_key, "k3y");
    sandbox.set_notify_faults(NotifyFaults {
        signtest_probe: true,
        ..NotifyFaults::default()
    });
    let receiver = Receiver::default();
    *receiver.script.lock().unwrap() = vec![200, 500, 404];
    let url = start_receiver(receiver.clone()).await;
    let (_, params) = precreate(&sandbox, &request(&sandbox, "RETRY-1", 5, &url)).await;
    // A tampered paySign is refused by the payer's client.
    let mut bad = pay_request(&params);
    bad.pay_sign = "0".repeat(32);
    let err = sandbox.pay(bad).await.unwrap_err();
    assert!(matches!(err, SandboxError::Pay { ref code, .. } if code == "PAY_SIGN_ERROR"));
    sandbox.pay(pay_request(&params)).await.unwrap();
    let records = sandbox
        .wait_for_delivery_finished("RETRY-1", WAIT)
        .await
        .unwrap();
    let real: Vec<_> = records
        .iter()
        .filter(|r| r.kind == DeliveryKind::Real)
        .collect();
    assert_eq!(
        real.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(500), Some(404), Some(200)]
    );
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let forged = form_fields(&got[0].1);
    assert!(!check_open_sign("k3y", &forged["sign"], &got[0].1));
    assert_eq!(forged["client_id"], "yeshan");
    assert_eq!(forged["biz_id"], "ydrug");
    for (_, body) in &got[1..] {
        assert!(check_open_sign("k3y", &form_fields(body)["sign"], body));
    }
    sandbox.shutdown().await;
}

//! `WeidoufuClient` / `WeidoufuProvider` against a loopback server standing in for weidoufu's
//! `POST /pay/miniapp`. The mock reads the JSON body the live service takes and checks the `sign`
//! with its own implementation of the live rule (sorted `k=v&…&secret_key=`), remembers orders (identical retries get the same payment, changed ones
//! `订单号重复`), and can fail in every way the client must map: `code: 0`, 5xx, no answer, an
//! oversized or unreadable answer. Seed 004's example answers are read verbatim.
#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use wxpay_core::clock::ManualClock;
use wxpay_core::fields::{Amount, NotifyUrl, OutTradeNo};
use wxpay_core::order::{NewOrder, Order};
use wxpay_core::provider::weidoufu::{PREPAY_VALIDITY, WeidoufuProvider};
use wxpay_core::provider::{AlipayParams, PaymentParams, Provider, ProviderErrorKind};
use wxpay_core::weidoufu::client::interpret;
use wxpay_core::weidoufu::{
    MiniappPayRequest, PayType, SecretKey, WeidoufuClient, WeidoufuConfig, WeidoufuError,
};

const ACCESS_KEY: &str = "f9ce7161e186c5362198524320650236";
const SECRET: &str = "sk_4e1f0b7c9a2d8e3f5a6b7c8d9e0f1a2b";
const NOTIFY: &str = "http://127.0.0.1:9/wxpay/notify";
const ORDER_NO: &str = "20261123191100AbCdEf1234";
const OPENID: &str = "oSandbox0123456789abcdefghij";
const BUYER_ID: &str = "2088102177846880";
const NOW: i64 = 1_763_900_000;

/// The sign rule, written again from the evidence (not with the crate's code): non-empty params
/// except `sign`, sorted by name, `k=v` joined by `&`, `&secret_key=SECRET`, MD5, upper-case hex.
fn reference_sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    let mut text = String::new();
    for (k, v) in params {
        if k != "sign" && !v.is_empty() {
            text.push_str(&format!("{k}={v}&"));
        }
    }
    text.push_str(&format!("secret_key={secret}"));
    format!("{:X}", Md5::digest(text.as_bytes()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Normal,
    Http500,
    Silent,
    Huge,
    NotJson,
    OtherOrderNo,
}

/// A request's fields, by name (JSON numbers in decimal).
type Form = BTreeMap<String, String>;

/// The JSON object of a request as its fields; `None` when it is not a flat JSON object.
fn json_fields(body: &str) -> Option<Form> {
    let Value::Object(object) = serde_json::from_str(body).ok()? else {
        return None;
    };
    object
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Number(n) => Some((k, n.to_string())),
            _ => None,
        })
        .collect()
}

#[derive(Clone)]
struct Upstream {
    mode: Arc<Mutex<Mode>>,
    /// Every request's form fields and content type.
    requests: Arc<Mutex<Vec<(String, Form)>>>,
    /// out_order_no → (the unsigned params, mch_trade_no).
    orders: Arc<Mutex<HashMap<String, (Form, String)>>>,
}

fn refusal(message: &str, out_order_no: &str) -> Value {
    json!({
        "code": 0,
        "message": message,
        "data": {"mch_trade_no": "", "out_order_no": out_order_no, "jsapi": ""}
    })
}

async fn miniapp(
    State(up): State<Upstream>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let fields = json_fields(&body).unwrap_or_default();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    up.requests
        .lock()
        .unwrap()
        .push((content_type, fields.clone()));
    let mode = *up.mode.lock().unwrap();
    match mode {
        Mode::Http500 => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "<html>500</html>".into());
        }
        Mode::Silent => std::future::pending::<()>().await,
        Mode::Huge => return (StatusCode::OK, "x".repeat(100 * 1024)),
        Mode::NotJson => return (StatusCode::OK, "{code: 1, message: '成功'".into()),
        Mode::Normal | Mode::OtherOrderNo => {}
    }
    let out_order_no = fields.get("out_order_no").cloned().unwrap_or_default();
    let sign_ok =
        fields.get("sign").map(String::as_str) == Some(reference_sign(&fields, SECRET).as_str());
    if !sign_ok || fields.get("access_key").map(String::as_str) != Some(ACCESS_KEY) {
        return (
            StatusCode::OK,
            refusal("签名错误", &out_order_no).to_string(),
        );
    }
    let mut unsigned = fields.clone();
    unsigned.remove("sign");
    let mch_trade_no = {
        let mut orders = up.orders.lock().unwrap();
        let next = format!("2026112355137166484866{:02}", orders.len());
        let (stored, mch) = orders
            .entry(out_order_no.clone())
            .or_insert_with(|| (unsigned.clone(), next));
        if *stored != unsigned {
            return (
                StatusCode::OK,
                refusal("订单号重复", &out_order_no).to_string(),
            );
        }
        mch.clone()
    };
    let jsapi = if fields.get("pay_type").map(String::as_str) == Some("2") {
        json!({"trade_no": format!("2026112322{mch_trade_no}")})
    } else {
        json!({
            "app_id": "wx369ab4160391bvbgg",
            "timestamp": "1620895076",
            "nonce_str": "82aafec92844bd7b7575e5d642911ac9",
            "package": format!("prepay_id=wx{mch_trade_no}"),
            "sign_type": "MD5",
            "pay_sign": "E1BDB03ECDC44F48CE1D4D353819318A"
        })
    };
    let echoed = if mode == Mode::OtherOrderNo {
        "999999999999999999".to_owned()
    } else {
        out_order_no
    };
    (
        StatusCode::OK,
        json!({
            "code": 1,
            "message": "成功",
            "data": {"mch_trade_no": mch_trade_no, "out_order_no": echoed, "jsapi": jsapi}
        })
        .to_string(),
    )
}

async fn upstream(mode: Mode) -> (Upstream, String) {
    let up = Upstream {
        mode: Arc::new(Mutex::new(mode)),
        requests: Arc::default(),
        orders: Arc::default(),
    };
    let app = Router::new()
        .route("/wdf/pay/miniapp", post(miniapp))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (up, format!("http://{addr}/wdf/"))
}

fn config(url: &str, secret: &str, pay_type: PayType) -> WeidoufuConfig {
    let mut config = WeidoufuConfig::new(
        url,
        ACCESS_KEY,
        SecretKey::new(secret).unwrap(),
        NotifyUrl::parse_for_local_development(NOTIFY).unwrap(),
    );
    config.pay_type = pay_type;
    config
}

fn client_with(url: &str, secret: &str, pay_type: PayType) -> WeidoufuClient {
    WeidoufuClient::builder(config(url, secret, pay_type))
        .clock(Arc::new(ManualClock::at(NOW)))
        .build()
        .unwrap()
}

/// A client that gives up quickly, for the upstream that never answers.
fn impatient_client(url: &str) -> WeidoufuClient {
    WeidoufuClient::builder(config(url, SECRET, PayType::Wechat))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

fn client(url: &str) -> WeidoufuClient {
    client_with(url, SECRET, PayType::Wechat)
}

fn request(pay_type: PayType) -> MiniappPayRequest {
    MiniappPayRequest {
        out_order_no: ORDER_NO.into(),
        body: "QQ 会员充值".into(),
        total_fee: 83601,
        pay_type,
        payer_id: match pay_type {
            PayType::Wechat => OPENID.into(),
            PayType::Alipay => BUYER_ID.into(),
        },
        attach: Some("{test:'test1_params'}".into()),
    }
}

fn order(out_trade_no: &str, payer: &str, description: &str) -> Order {
    let mut new = NewOrder::new(
        out_trade_no.parse().unwrap(),
        payer.parse().unwrap(),
        Amount::from_fen(83601).unwrap(),
        description.parse().unwrap(),
    );
    new.provider = "weidoufu".into();
    new.mchid = Some(ACCESS_KEY.into());
    new.attach = Some("342rewrs".parse().unwrap());
    new.into_order(time::OffsetDateTime::from_unix_timestamp(NOW).unwrap())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn wechat_payment_posts_signed_json_and_reads_the_jsapi_block() {
    let (up, url) = upstream(Mode::Normal).await;
    let payment = client(&url).pay(&request(PayType::Wechat)).await.unwrap();
    assert_eq!(payment.mch_trade_no, "202611235513716648486600");
    assert_eq!(payment.out_order_no, ORDER_NO);
    let PaymentParams::Wechat(params) = &payment.jsapi else {
        panic!("WeChat parameters expected: {payment:?}");
    };
    assert_eq!(params.app_id, "wx369ab4160391bvbgg");
    assert_eq!(params.time_stamp, "1620895076");
    assert_eq!(params.nonce_str, "82aafec92844bd7b7575e5d642911ac9");
    assert_eq!(params.package, "prepay_id=wx202611235513716648486600");
    assert_eq!(params.sign_type, "MD5");
    assert_eq!(params.pay_sign, "E1BDB03ECDC44F48CE1D4D353819318A");
    assert_eq!(payment.prepay_id(), "wx202611235513716648486600");

    let requests = up.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (content_type, fields) = &requests[0];
    assert_eq!(content_type, "application/json");
    let sign = fields.get("sign").unwrap().clone();
    assert_eq!(sign, reference_sign(fields, SECRET));
    assert_eq!(sign, sign.to_ascii_uppercase());
    let mut expected = map(&[
        ("access_key", ACCESS_KEY),
        ("body", "QQ 会员充值"),
        ("out_order_no", ORDER_NO),
        ("pay_type", "1"),
        ("total_fee", "83601"),
        ("openid", OPENID),
        ("notify_url", NOTIFY),
        ("attach", "{test:'test1_params'}"),
    ]);
    expected.insert("sign".into(), sign);
    assert_eq!(fields, &expected);
}

#[tokio::test]
async fn alipay_payment_sends_the_buyer_id_and_reads_the_trade_no() {
    let (up, url) = upstream(Mode::Normal).await;
    let client = client_with(&url, SECRET, PayType::Alipay);
    let payment = client.pay(&request(PayType::Alipay)).await.unwrap();
    assert_eq!(
        payment.jsapi,
        PaymentParams::Alipay(AlipayParams {
            trade_no: "2026112322202611235513716648486600".into()
        })
    );
    assert_eq!(payment.prepay_id(), "2026112322202611235513716648486600");
    let fields = up.requests.lock().unwrap()[0].1.clone();
    assert_eq!(fields.get("pay_type").unwrap(), "2");
    assert_eq!(fields.get("buyer_id").unwrap(), BUYER_ID);
    assert!(!fields.contains_key("openid"));
    assert_eq!(
        fields.get("sign").unwrap(),
        &reference_sign(&fields, SECRET)
    );
}

#[test]
fn seed_004_example_answers_are_read() {
    // Seed 004's three examples, in JSON (the seed writes them as JS object literals), values
    // unchanged.
    let wechat = r#"{
        "code": 1, "message": "成功",
        "data": {
            "mch_trade_no": "202105135513716648486662",
            "out_order_no": "180901620895069445",
            "jsapi": {
                "app_id": "wx369ab4160391bvbgg",
                "timestamp": "1620895076",
                "nonce_str": "82aafec92844bd7b7575e5d642911ac9",
                "package": "prepay_id=wx1316375652779615245693f173dedb0000",
                "sign_type": "MD5",
                "pay_sign": "E1BDB03ECDC44F48CE1D4D353819318A"
            }
        }
    }"#;
    let payment = interpret(
        StatusCode::OK,
        wechat.as_bytes(),
        PayType::Wechat,
        "180901620895069445",
    )
    .unwrap();
    assert_eq!(payment.mch_trade_no, "202105135513716648486662");
    assert_eq!(payment.prepay_id(), "wx1316375652779615245693f173dedb0000");
    let params = payment.jsapi.wechat().unwrap();
    assert_eq!(params.pay_sign, "E1BDB03ECDC44F48CE1D4D353819318A");
    // What a mini program passes to wx.requestPayment, with WeChat's names.
    assert_eq!(
        serde_json::to_value(&payment.jsapi).unwrap(),
        json!({
            "appId": "wx369ab4160391bvbgg",
            "timeStamp": "1620895076",
            "nonceStr": "82aafec92844bd7b7575e5d642911ac9",
            "package": "prepay_id=wx1316375652779615245693f173dedb0000",
            "signType": "MD5",
            "paySign": "E1BDB03ECDC44F48CE1D4D353819318A"
        })
    );

    let alipay = r#"{
        "code": 1, "message": "成功",
        "data": {
            "mch_trade_no": "202105135513716648486662",
            "out_order_no": "180901620895069445",
            "jsapi": {"trade_no": "20211127220461494775747063371"}
        }
    }"#;
    let payment = interpret(
        StatusCode::OK,
        alipay.as_bytes(),
        PayType::Alipay,
        "180901620895069445",
    )
    .unwrap();
    assert_eq!(payment.prepay_id(), "20211127220461494775747063371");
    assert_eq!(
        serde_json::to_value(&payment.jsapi).unwrap(),
        json!({"tradeNO": "20211127220461494775747063371"})
    );
    // The WeChat block is not accepted for an Alipay payment, nor the other way round.
    assert!(matches!(
        interpret(
            StatusCode::OK,
            wechat.as_bytes(),
            PayType::Alipay,
            "180901620895069445"
        ),
        Err(WeidoufuError::Malformed(_))
    ));
    assert!(matches!(
        interpret(
            StatusCode::OK,
            alipay.as_bytes(),
            PayType::Wechat,
            "180901620895069445"
        ),
        Err(WeidoufuError::Malformed(_))
    ));

    let failure = r#"{
        "code": 0, "message": "签名错误",
        "data": {
            "mch_trade_no": "202105135513716100622151",
            "out_order_no": "1809016208199613140",
            "jsapi": ""
        }
    }"#;
    let error = interpret(
        StatusCode::OK,
        failure.as_bytes(),
        PayType::Wechat,
        "1809016208199613140",
    )
    .unwrap_err();
    let WeidoufuError::Rejected {
        message,
        mch_trade_no,
        ..
    } = &error
    else {
        panic!("a refusal expected: {error:?}");
    };
    assert_eq!(message, "签名错误");
    assert_eq!(mch_trade_no.as_deref(), Some("202105135513716100622151"));
    assert!(!error.may_have_taken_effect());
}

#[test]
fn odd_answers_are_classified() {
    let read = |status: StatusCode, body: &str| {
        interpret(
            status,
            body.as_bytes(),
            PayType::Wechat,
            "180901620895069445",
        )
        .unwrap_err()
    };
    // A refusal with a 4xx is still a refusal with its message; a 5xx is weidoufu failing.
    assert!(matches!(
        read(StatusCode::BAD_REQUEST, r#"{"code":0,"message":"参数错误"}"#),
        WeidoufuError::Rejected { message, .. } if message == "参数错误"
    ));
    let error = read(
        StatusCode::BAD_GATEWAY,
        r#"{"code":0,"message":"上游错误"}"#,
    );
    assert!(matches!(error, WeidoufuError::Http(s) if s == StatusCode::BAD_GATEWAY));
    assert!(error.may_have_taken_effect());
    assert!(matches!(
        read(StatusCode::NOT_FOUND, "<html>"),
        WeidoufuError::Http(_)
    ));
    for body in [
        "",
        "[]",
        r#"{"code":2,"message":"?"}"#,
        r#"{"code":1,"message":"成功"}"#,
        r#"{"code":1,"data":{"mch_trade_no":"1","out_order_no":"180901620895069445","jsapi":""}}"#,
        r#"{"code":1,"data":{"mch_trade_no":"1","out_order_no":"180901620895069445","jsapi":{"app_id":"wx"}}}"#,
    ] {
        let error = read(StatusCode::OK, body);
        assert!(
            matches!(error, WeidoufuError::Malformed(_)),
            "{body}: {error:?}"
        );
        assert!(error.may_have_taken_effect(), "{body}");
    }
}

#[tokio::test]
async fn code_0_is_a_refusal_with_weidoufu_s_message() {
    let (_up, url) = upstream(Mode::Normal).await;
    let wrong_key = client_with(&url, "sk_not_the_one_weidoufu_has", PayType::Wechat);
    let error = wrong_key.pay(&request(PayType::Wechat)).await.unwrap_err();
    assert!(
        matches!(&error, WeidoufuError::Rejected { message, .. } if message == "签名错误"),
        "{error:?}"
    );
    assert!(!error.may_have_taken_effect());
    // Through the provider: a rejection naming weidoufu's message.
    let provider = WeidoufuProvider::new(wrong_key);
    let error = provider
        .prepay(&order(ORDER_NO, OPENID, "t"), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Rejected);
    assert_eq!(error.message, "签名错误");
    assert_eq!(error.upstream_code.as_deref(), Some("0"));
    assert!(!error.may_have_taken_effect);
}

#[tokio::test]
async fn identical_retries_get_the_same_payment_and_changed_ones_are_refused() {
    let (up, url) = upstream(Mode::Normal).await;
    let provider = WeidoufuProvider::new(client(&url));
    let first = provider
        .prepay(&order(ORDER_NO, OPENID, "云队长医药"), None)
        .await
        .unwrap();
    let again = provider
        .prepay(&order(ORDER_NO, OPENID, "云队长医药"), None)
        .await
        .unwrap();
    assert_eq!(again, first);
    let requests = up.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], requests[1], "a retry sends identical bytes");
    let error = provider
        .prepay(&order(ORDER_NO, OPENID, "另一个商品"), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Rejected);
    assert_eq!(error.message, "订单号重复");
}

#[tokio::test]
async fn transport_failures_are_mapped() {
    for (mode, kind, may_have_taken_effect) in [
        (Mode::Http500, ProviderErrorKind::Unavailable, true),
        (Mode::Silent, ProviderErrorKind::Timeout, true),
        (Mode::Huge, ProviderErrorKind::BadResponse, true),
        (Mode::NotJson, ProviderErrorKind::BadResponse, true),
        (Mode::OtherOrderNo, ProviderErrorKind::BadResponse, true),
    ] {
        let (up, url) = upstream(mode).await;
        let provider = WeidoufuProvider::new(if mode == Mode::Silent {
            impatient_client(&url)
        } else {
            client(&url)
        });
        let error = provider
            .prepay(&order(ORDER_NO, OPENID, "t"), None)
            .await
            .unwrap_err();
        assert_eq!(error.kind, kind, "{mode:?}: {error:?}");
        assert_eq!(
            error.may_have_taken_effect, may_have_taken_effect,
            "{mode:?}"
        );
        if mode != Mode::Silent {
            assert_eq!(up.requests.lock().unwrap().len(), 1, "{mode:?}");
        }
    }
    let huge = client(&upstream(Mode::Huge).await.1);
    assert!(matches!(
        huge.pay(&request(PayType::Wechat)).await,
        Err(WeidoufuError::ResponseTooLarge(_))
    ));
    let silent = impatient_client(&upstream(Mode::Silent).await.1);
    assert!(matches!(
        silent.pay(&request(PayType::Wechat)).await,
        Err(WeidoufuError::Deadline(_))
    ));
    // Nothing listens on port 9: the request never left, so nothing can have taken effect.
    let error = client("http://127.0.0.1:9")
        .pay(&request(PayType::Wechat))
        .await
        .unwrap_err();
    assert!(
        matches!(error, WeidoufuError::Transport { .. }),
        "{error:?}"
    );
    assert!(!error.may_have_taken_effect());
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_sent() {
    let (up, url) = upstream(Mode::Normal).await;
    let client = client(&url);
    let cases: Vec<(&str, MiniappPayRequest)> = vec![
        (
            "out_order_no",
            MiniappPayRequest {
                out_order_no: "12345678901234567".into(),
                ..request(PayType::Wechat)
            },
        ),
        (
            "out_order_no",
            MiniappPayRequest {
                out_order_no: "2026112319110000_abcdef".into(),
                ..request(PayType::Wechat)
            },
        ),
        (
            "out_order_no",
            MiniappPayRequest {
                out_order_no: "a".repeat(33),
                ..request(PayType::Wechat)
            },
        ),
        (
            "body",
            MiniappPayRequest {
                body: "  ".into(),
                ..request(PayType::Wechat)
            },
        ),
        (
            "total_fee",
            MiniappPayRequest {
                total_fee: 0,
                ..request(PayType::Wechat)
            },
        ),
        (
            "total_fee",
            MiniappPayRequest {
                total_fee: 1_000_000_000,
                ..request(PayType::Wechat)
            },
        ),
        (
            "openid",
            MiniappPayRequest {
                payer_id: "o".repeat(33),
                ..request(PayType::Wechat)
            },
        ),
        (
            "buyer_id",
            MiniappPayRequest {
                payer_id: String::new(),
                ..request(PayType::Alipay)
            },
        ),
        (
            "attach",
            MiniappPayRequest {
                attach: Some("a".repeat(129)),
                ..request(PayType::Wechat)
            },
        ),
    ];
    for (expected_field, bad) in cases {
        let error = client.pay(&bad).await.unwrap_err();
        assert!(
            matches!(&error, WeidoufuError::InvalidRequest { field, .. } if *field == expected_field),
            "{expected_field}: {error:?}"
        );
        assert!(!error.may_have_taken_effect());
    }
    assert!(up.requests.lock().unwrap().is_empty());

    // A long description is cut to 32 characters (on a character boundary), not refused.
    let long = MiniappPayRequest {
        body: format!("{}{}", "云".repeat(31), "队长医药"),
        attach: Some("a".repeat(128)),
        out_order_no: "a".repeat(32),
        ..request(PayType::Wechat)
    };
    client.pay(&long).await.unwrap();
    let fields = up.requests.lock().unwrap()[0].1.clone();
    assert_eq!(
        fields.get("body").unwrap(),
        &format!("{}队", "云".repeat(31))
    );
    assert_eq!(fields.get("attach").unwrap().len(), 128);
}

#[tokio::test]
async fn the_configuration_is_checked() {
    let bad_url = WeidoufuClient::builder(config("ftp://x", SECRET, PayType::Wechat)).build();
    assert!(matches!(bad_url, Err(WeidoufuError::Local(_))));
    let with_query =
        WeidoufuClient::builder(config("https://x/?a=1", SECRET, PayType::Wechat)).build();
    assert!(matches!(with_query, Err(WeidoufuError::Local(_))));
    let mut long_key = config("https://open.weidoufu.com", SECRET, PayType::Wechat);
    long_key.access_key = "k".repeat(33);
    assert!(WeidoufuClient::builder(long_key).build().is_err());
    let mut long_notify = config("https://open.weidoufu.com", SECRET, PayType::Wechat);
    long_notify.notify_url =
        NotifyUrl::try_from(format!("https://shop.example.com/{}", "n".repeat(110))).unwrap();
    assert!(WeidoufuClient::builder(long_notify).build().is_err());
    // The secret never shows in Debug output.
    let client = client("https://open.weidoufu.com/");
    assert!(!format!("{client:?}").contains(SECRET));
    assert_eq!(client.config().base_url, "https://open.weidoufu.com");
}

#[tokio::test]
async fn the_provider_prepays_in_the_configured_wallet() {
    let (up, url) = upstream(Mode::Normal).await;
    let wechat = WeidoufuProvider::new(client(&url));
    assert_eq!(wechat.name(), "weidoufu");
    assert_eq!(wechat.merchant().mchid.as_deref(), Some(ACCESS_KEY));
    assert_eq!(wechat.merchant().appid, None);
    let prepay = wechat
        .prepay(&order(ORDER_NO, OPENID, "云队长医药连锁管理系统"), None)
        .await
        .unwrap();
    assert_eq!(prepay.prepay_id, "wx202611235513716648486600");
    assert_eq!(
        prepay.expires_at,
        time::OffsetDateTime::from_unix_timestamp(NOW).unwrap() + PREPAY_VALIDITY
    );
    assert_eq!(PREPAY_VALIDITY, time::Duration::hours(2));
    assert!(prepay.params.wechat().is_some());
    assert!(
        wechat
            .client_params(&order(ORDER_NO, OPENID, "t"), "x")
            .is_none()
    );
    let fields = up.requests.lock().unwrap()[0].1.clone();
    assert_eq!(fields.get("body").unwrap(), "云队长医药连锁管理系统");
    assert_eq!(fields.get("total_fee").unwrap(), "83601");
    assert_eq!(fields.get("attach").unwrap(), "342rewrs");
    assert_eq!(fields.get("openid").unwrap(), OPENID);

    // Alipay: the order's openid field carries the buyer_id.
    let alipay = WeidoufuProvider::new(client_with(&url, SECRET, PayType::Alipay));
    let other_no = "20261123191100AbCdEf9999";
    let prepay = alipay
        .prepay(&order(other_no, BUYER_ID, "t"), None)
        .await
        .unwrap();
    let PaymentParams::Alipay(params) = &prepay.params else {
        panic!("Alipay parameters expected");
    };
    assert_eq!(prepay.prepay_id, params.trade_no);
    let fields = up.requests.lock().unwrap()[1].1.clone();
    assert_eq!(fields.get("buyer_id").unwrap(), BUYER_ID);
    assert_eq!(fields.get("pay_type").unwrap(), "2");
}

#[tokio::test]
async fn query_and_close_are_unsupported_without_calling_anything() {
    let (up, url) = upstream(Mode::Normal).await;
    let provider = WeidoufuProvider::new(client(&url));
    for error in [
        provider
            .query(&order(ORDER_NO, OPENID, "t"))
            .await
            .unwrap_err(),
        provider
            .close(&order(ORDER_NO, OPENID, "t"))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(error.kind, ProviderErrorKind::Local);
        assert_eq!(error.upstream_code.as_deref(), Some("UNSUPPORTED"));
        assert!(!error.may_have_taken_effect);
    }
    assert!(up.requests.lock().unwrap().is_empty());
}

#[test]
fn check_order_applies_weidoufu_s_order_number_rule() {
    let provider = WeidoufuProvider::new(client("https://open.weidoufu.com"));
    let new_order = |no: &str, payer: &str| {
        NewOrder::new(
            no.parse().unwrap(),
            payer.parse().unwrap(),
            Amount::from_fen(1).unwrap(),
            "t".parse().unwrap(),
        )
    };
    for good in [
        "180901620895069445",
        "1809016208199613140",
        "abcdefghijABCDEFGHIJ0123456789xy",
        OutTradeNo::generate().as_str(),
    ] {
        assert_eq!(
            provider.check_order(&new_order(good, OPENID)),
            Ok(()),
            "{good}"
        );
    }
    for bad in [
        "18090162089506944",
        "123456",
        "2026112319110000_abcdef",
        "2026112319110000-abcdef",
        "2026112319110000*abcdef",
    ] {
        let error = provider.check_order(&new_order(bad, OPENID)).unwrap_err();
        assert_eq!(error.field, "out_trade_no", "{bad}");
    }
    let error = provider
        .check_order(&new_order("180901620895069445", &"o".repeat(33)))
        .unwrap_err();
    assert_eq!(error.field, "openid");
}

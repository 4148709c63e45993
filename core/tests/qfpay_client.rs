//! `QfpayClient` and `QfpayProvider` against a loopback server standing in for QFPay. The mock
//! checks `X-QF-APPCODE` and `X-QF-SIGN` exactly as QFPay's "Signature Generation" page
//! describes, recomputed here independently of the crate (sorted `k=v&…` of the non-empty
//! parameters, the `client_key` appended, MD5, upper-case hex), and answers `1108` (QFPay's
//! "Signature error") when they do not match.
#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wxpay_core::clock::ManualClock;
use wxpay_core::fields::{Amount, Currency, NotifyUrl};
use wxpay_core::order::{NewOrder, Order};
use wxpay_core::provider::qfpay::QfpayProvider;
use wxpay_core::provider::{PaymentState, Provider, ProviderErrorKind};
use wxpay_core::qfpay::{
    ClientKey, CloseRequest, PaymentRequest, QfpayClient, QfpayConfig, QfpayError, RespcdClass,
};

const APP_CODE: &str = "D5589D2A1F2E42A9A60C37AB12CD34EF";
const KEY: &str = "0E32A59A8B454940A2FF39AB12CD34EF";
const MCHID: &str = "ZaMVg12345";
const OPENID: &str = "oo3Lss8d0hLOuyTuSJMVwLTk68JE";
/// 2026-11-23 12:00:00 UTC = 20:00:00 at UTC+8.
const NOW: i64 = 1_795_435_200;

/// QFPay's request signature, written from the docs without the crate's code.
fn independent_sign(params: &[(String, String)], key: &str) -> String {
    let mut pairs: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| !v.is_empty() && k != "sign")
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let digest = Md5::digest(format!("{}{key}", joined.join("&")).as_bytes());
    digest.iter().map(|b| format!("{b:02X}")).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Success,
    Respcd(&'static str),
    Plain502,
    NotJson,
    NoPayParams,
    Slow,
    Huge,
}

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: String,
    body: String,
    sign: String,
}

#[derive(Clone)]
struct Mock {
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// The `data` the enquiry answers with.
    query_data: Arc<Mutex<Value>>,
}

fn error(respcd: &str, message: &str) -> Value {
    json!({"respcd": respcd, "respmsg": "", "resperr": message})
}

async fn qfpay(
    State(mock): State<Mock>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let query = uri.query().unwrap_or("").to_owned();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .chain(form_urlencoded::parse(body.as_bytes()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let sign = headers
        .get("X-QF-SIGN")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    mock.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query,
        body,
        sign: sign.clone(),
    });
    let appcode_ok = headers.get("X-QF-APPCODE").is_some_and(|v| v == APP_CODE);
    if !appcode_ok || sign != independent_sign(&params, KEY) {
        return (StatusCode::OK, error("1108", "签名错误").to_string());
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mode = *mock.mode.lock().unwrap();
    match mode {
        Mode::Respcd(code) => return (StatusCode::OK, error(code, "refused").to_string()),
        Mode::Plain502 => return (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>".into()),
        Mode::NotJson => return (StatusCode::OK, "ok".into()),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Mode::Huge => return (StatusCode::OK, "x".repeat(2 << 20)),
        Mode::Success | Mode::NoPayParams => {}
    }
    let answer = match (method.as_str(), uri.path()) {
        ("POST", "/qf/trade/v1/payment") => {
            let mut answer = json!({
                "respcd": "0000", "respmsg": "", "resperr": "",
                "syssn": "20261123000200020012345678",
                "out_trade_no": get("out_trade_no"),
                "txamt": get("txamt"), "txcurrcd": get("txcurrcd"), "txdtm": get("txdtm"),
                "sysdtm": "2026-11-23 20:00:01", "pay_type": "800207",
                "pay_params": {
                    "appId": "wx2421b1c4370ec43b", "timeStamp": "1795435201",
                    "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                    "package": "prepay_id=wx201410272009395522657a690389285100",
                    "signType": "MD5", "paySign": "C380BEC2BFD727A4B6845133519F3AD6"
                }
            });
            if mode == Mode::NoPayParams {
                answer.as_object_mut().unwrap().remove("pay_params");
            }
            answer
        }
        ("POST", "/qf/trade/v1/query") => {
            json!({"respcd": "0000", "resperr": "", "data": mock.query_data.lock().unwrap().clone()})
        }
        ("POST", "/qf/trade/v1/close") => json!({
            "respcd": "0000", "resperr": "success", "orig_syssn": "20261123000200020012345678",
            "syssn": "20261123000200020012345679", "txamt": get("txamt")
        }),
        ("GET", "/qf/tool/v1/get_weixin_openid") if get("code") == "good-code" => {
            json!({"respcd": "0000", "respmsg": "", "resperr": "", "openid": OPENID})
        }
        ("GET", "/qf/tool/v1/get_weixin_openid") => error("1104", "invalid code"),
        _ => return (StatusCode::NOT_FOUND, "no such route".into()),
    };
    (StatusCode::OK, answer.to_string())
}

async fn mock(mode: Mode) -> (Mock, String) {
    let mock = Mock {
        mode: Arc::new(Mutex::new(mode)),
        requests: Arc::default(),
        query_data: Arc::new(Mutex::new(json!([]))),
    };
    let app = Router::new().fallback(qfpay).with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (mock, format!("http://{addr}/qf/"))
}

fn config(url: &str, key: &str, mchid: Option<&str>) -> QfpayConfig {
    let mut config = QfpayConfig::new(url, APP_CODE, ClientKey::new(key).unwrap());
    config.mchid = mchid.map(str::to_owned);
    config.currency = Currency::try_from("HKD").unwrap();
    config.notify_url =
        Some(NotifyUrl::parse_for_local_development("http://127.0.0.1:9/wxpay/notify").unwrap());
    config
}

fn client_with(url: &str, key: &str, clock: Arc<ManualClock>) -> QfpayClient {
    QfpayClient::builder(config(url, key, Some(MCHID)))
        .timeout(Duration::from_millis(800))
        .clock(clock)
        .build()
        .unwrap()
}

fn client(url: &str) -> QfpayClient {
    client_with(url, KEY, Arc::new(ManualClock::at(NOW)))
}

fn order_created_at(unix: i64) -> Order {
    let mut new = NewOrder::new(
        "20261123ABCDEF123456".parse().unwrap(),
        OPENID.parse().unwrap(),
        Amount::from_fen(888).unwrap(),
        "Pet food, 2 kg".parse().unwrap(),
    );
    new.provider = "qfpay".into();
    new.currency = Currency::try_from("HKD").unwrap();
    new.into_order(OffsetDateTime::from_unix_timestamp(unix).unwrap())
}

fn order() -> Order {
    order_created_at(NOW - 60)
}

#[tokio::test]
async fn payment_posts_the_documented_signed_form_byte_for_byte() {
    let (mock, url) = mock(Mode::Success).await;
    let provider = QfpayProvider::new(client(&url));
    let prepay = provider.prepay(&order(), None).await.unwrap();
    let params = prepay.params.wechat().expect("WeChat parameters");
    assert_eq!(prepay.prepay_id, "wx201410272009395522657a690389285100");
    assert_eq!(params.app_id, "wx2421b1c4370ec43b");
    assert_eq!(params.time_stamp, "1795435201");
    assert_eq!(params.nonce_str, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS");
    assert_eq!(
        params.package,
        "prepay_id=wx201410272009395522657a690389285100"
    );
    assert_eq!(params.sign_type, "MD5");
    assert_eq!(params.pay_sign, "C380BEC2BFD727A4B6845133519F3AD6");
    // Valid for WeChat's 2 hours from the client's clock.
    assert_eq!(prepay.expires_at.unix_timestamp(), NOW + 7200);
    assert!(provider.client_params(&order(), "x").is_none());
    assert_eq!(provider.name(), "qfpay");
    assert_eq!(provider.currency().as_str(), "HKD");
    assert_eq!(provider.merchant().mchid.as_deref(), Some(MCHID));

    let requests = mock.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.path, "/qf/trade/v1/payment");
    assert_eq!(sent.query, "");
    // Sorted by name; txdtm is the order's creation (NOW - 60 s) at UTC+8.
    assert_eq!(
        sent.body,
        "goods_name=Pet+food+2+kg&mchid=ZaMVg12345\
         &notify_url=http%3A%2F%2F127.0.0.1%3A9%2Fwxpay%2Fnotify\
         &out_trade_no=20261123ABCDEF123456&pay_type=800207\
         &sub_openid=oo3Lss8d0hLOuyTuSJMVwLTk68JE&txamt=888&txcurrcd=HKD\
         &txdtm=2026-11-23+19%3A59%3A00"
    );
    // The signature over the plain values, computed by hand from the docs' rule.
    let text = "goods_name=Pet food 2 kg&mchid=ZaMVg12345\
                &notify_url=http://127.0.0.1:9/wxpay/notify\
                &out_trade_no=20261123ABCDEF123456&pay_type=800207\
                &sub_openid=oo3Lss8d0hLOuyTuSJMVwLTk68JE&txamt=888&txcurrcd=HKD\
                &txdtm=2026-11-23 19:59:00";
    let digest = Md5::digest(format!("{text}{KEY}").as_bytes());
    let expected: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(sent.sign, expected);
}

#[tokio::test]
async fn identical_retries_send_identical_requests() {
    let (mock, url) = mock(Mode::Success).await;
    let clock = Arc::new(ManualClock::at(NOW));
    let provider = QfpayProvider::new(client_with(&url, KEY, clock.clone()));
    let order = order();
    provider.prepay(&order, None).await.unwrap();
    // Later, from another address: nothing of the moment or the payer's IP goes in.
    clock.advance(3600);
    let again = provider
        .prepay(&order, Some("203.0.113.9".parse().unwrap()))
        .await
        .unwrap();
    // The answer's parameters date from QFPay's sysdtm (20:00:01 at UTC+8, NOW + 1 s), not
    // from this second call: they stay valid 2 h from then.
    assert_eq!(again.expires_at.unix_timestamp(), NOW + 1 + 7200);
    let requests = mock.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(requests[0].sign, requests[1].sign);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_qfpays_signature_error() {
    let (_mock, url) = mock(Mode::Success).await;
    let clock = Arc::new(ManualClock::at(NOW));
    let provider = QfpayProvider::new(client_with(&url, "WRONGKEY", clock));
    let error = provider.prepay(&order(), None).await.unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Rejected);
    assert_eq!(error.upstream_code.as_deref(), Some("1108"));
    assert_eq!(error.message, "签名错误");
    assert!(!error.may_have_taken_effect);
}

#[tokio::test]
async fn each_class_of_failure() {
    for (mode, kind, code, may_have_taken_effect) in [
        (
            Mode::Respcd("1104"),
            ProviderErrorKind::Rejected,
            Some("1104"),
            false,
        ),
        (
            Mode::Respcd("1260"),
            ProviderErrorKind::Rejected,
            Some("1260"),
            false,
        ),
        (
            Mode::Respcd("1145"),
            ProviderErrorKind::Unavailable,
            Some("1145"),
            true,
        ),
        (
            Mode::Respcd("1143"),
            ProviderErrorKind::Unavailable,
            Some("1143"),
            true,
        ),
        (
            Mode::Respcd("1297"),
            ProviderErrorKind::Unavailable,
            Some("1297"),
            true,
        ),
        (Mode::Plain502, ProviderErrorKind::Unavailable, None, true),
        (Mode::NotJson, ProviderErrorKind::BadResponse, None, true),
        (
            Mode::NoPayParams,
            ProviderErrorKind::BadResponse,
            None,
            true,
        ),
        (Mode::Slow, ProviderErrorKind::Timeout, None, true),
        (Mode::Huge, ProviderErrorKind::BadResponse, None, true),
    ] {
        let (_mock, url) = mock(mode).await;
        let error = QfpayProvider::new(client(&url))
            .prepay(&order(), None)
            .await
            .unwrap_err();
        assert_eq!(error.kind, kind, "{mode:?}: {error:?}");
        assert_eq!(error.upstream_code.as_deref(), code, "{mode:?}");
        assert_eq!(
            error.may_have_taken_effect, may_have_taken_effect,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn client_errors_name_their_cause() {
    let (_mock, url) = mock(Mode::Slow).await;
    let request = QfpayProvider::payment_request(&order());
    let error = client(&url).payment(&request).await.unwrap_err();
    assert!(matches!(error, QfpayError::Deadline(_)), "{error:?}");
    let (_mock, url) = mock(Mode::Huge).await;
    let error = client(&url).payment(&request).await.unwrap_err();
    assert!(
        matches!(error, QfpayError::ResponseTooLarge(limit) if limit == 1 << 20),
        "{error:?}"
    );
    let (_mock, url) = mock(Mode::Respcd("1145")).await;
    let error = client(&url).payment(&request).await.unwrap_err();
    assert!(matches!(
        &error,
        QfpayError::Upstream { respcd, class: RespcdClass::InProgress, .. } if respcd == "1145"
    ));
    assert!(error.may_have_taken_effect());
    // Nothing listens on port 9: nothing was sent.
    let error = client("http://127.0.0.1:9")
        .payment(&request)
        .await
        .unwrap_err();
    assert!(!error.may_have_taken_effect(), "{error:?}");
}

#[tokio::test]
async fn configuration_is_checked() {
    let key = || ClientKey::new(KEY).unwrap();
    for url in ["ftp://x", "http://x/?a=1", "not a url"] {
        assert!(
            QfpayClient::builder(QfpayConfig::new(url, APP_CODE, key()))
                .build()
                .is_err(),
            "{url}"
        );
    }
    assert!(
        QfpayClient::builder(QfpayConfig::new("https://x", "", key()))
            .build()
            .is_err()
    );
    let mut config = QfpayConfig::new("https://x///", APP_CODE, key());
    config.mchid = Some(String::new());
    assert!(QfpayClient::builder(config.clone()).build().is_err());
    config.mchid = None;
    let client = QfpayClient::builder(config).build().unwrap();
    assert_eq!(client.config().base_url, "https://x");
    assert_eq!(client.config().currency.as_str(), "CNY");
    // The key never shows in Debug output.
    assert!(!format!("{client:?}").contains(KEY));
}

fn payment_entry(respcd: &str, cancel: &str) -> Value {
    json!({
        "syssn": "20261123000200020012345678", "out_trade_no": "20261123ABCDEF123456",
        "txamt": "888", "txcurrcd": "HKD", "respcd": respcd, "errmsg": "msg",
        "pay_type": "800207", "order_type": "payment", "txdtm": "2026-11-23 19:59:00",
        "sysdtm": "2026-11-23 20:00:01", "paydtm": "2026-11-23 20:01:02", "cancel": cancel,
        "chnlsn": "4200001234202611231234567890"
    })
}

#[tokio::test]
async fn query_reports_the_payment() {
    let (mock, url) = mock(Mode::Success).await;
    let provider = QfpayProvider::new(client(&url));
    let refund = json!({
        "syssn": "20261123000200020099999999", "out_trade_no": "20261123ABCDEF123456",
        "txamt": "888", "respcd": "0000", "order_type": "refund", "cancel": "0"
    });
    *mock.query_data.lock().unwrap() = json!([refund, payment_entry("0000", "0")]);
    let report = provider.query(&order()).await.unwrap();
    assert_eq!(report.state, PaymentState::Paid);
    assert_eq!(report.out_trade_no, "20261123ABCDEF123456");
    assert_eq!(
        report.transaction_id.as_deref(),
        Some("20261123000200020012345678")
    );
    assert_eq!(report.amount_total, Some(888));
    assert_eq!(report.currency.as_deref(), Some("HKD"));
    // paydtm read at UTC+8: 20:01:02 local is 12:01:02 UTC.
    assert_eq!(report.paid_at.unwrap().unix_timestamp(), NOW + 62);
    let sent = mock.requests.lock().unwrap()[0].clone();
    assert_eq!(sent.path, "/qf/trade/v1/query");
    assert_eq!(
        sent.body,
        "mchid=ZaMVg12345&out_trade_no=20261123ABCDEF123456"
    );

    for (entry, state) in [
        (payment_entry("1143", "0"), PaymentState::NotPaid),
        (payment_entry("1145", "0"), PaymentState::NotPaid),
        (payment_entry("0000", "3"), PaymentState::Refunded),
        (payment_entry("1143", "2"), PaymentState::Closed),
        (
            payment_entry("1205", "0"),
            PaymentState::Failed("1205: msg".into()),
        ),
    ] {
        *mock.query_data.lock().unwrap() = json!([entry]);
        assert_eq!(provider.query(&order()).await.unwrap().state, state);
    }
    // No entry: QFPay never recorded the payment request, so it is not paid (and reconcile
    // may close the order once its parameters expire).
    *mock.query_data.lock().unwrap() = json!([]);
    let report = provider.query(&order()).await.unwrap();
    assert_eq!(report.state, PaymentState::NotPaid);
    assert!(report.transaction_id.is_none());
}

#[tokio::test]
async fn query_of_an_earlier_month_sends_the_time_window() {
    let (mock, url) = mock(Mode::Success).await;
    let provider = QfpayProvider::new(client(&url));
    *mock.query_data.lock().unwrap() = json!([payment_entry("1143", "0")]);
    // 2026-10-20 04:00:00 UTC = 12:00:00 at UTC+8, a month before NOW.
    provider
        .query(&order_created_at(1_792_468_800))
        .await
        .unwrap();
    // 2026-10-31 17:30 UTC is already 2026-11-01 01:30 at UTC+8: the same month as NOW.
    provider
        .query(&order_created_at(1_793_467_800))
        .await
        .unwrap();
    let requests = mock.requests.lock().unwrap().clone();
    assert_eq!(
        requests[0].body,
        "end_time=2026-11-23+20%3A00%3A00&mchid=ZaMVg12345\
         &out_trade_no=20261123ABCDEF123456&start_time=2026-10-20+12%3A00%3A00"
    );
    assert_eq!(
        requests[1].body,
        "mchid=ZaMVg12345&out_trade_no=20261123ABCDEF123456"
    );
}

#[tokio::test]
async fn close_sends_the_amount_and_original_time() {
    let (mock, url) = mock(Mode::Success).await;
    let client = client(&url);
    let request = CloseRequest {
        out_trade_no: "20261123ABCDEF123456".into(),
        txamt: 888,
        txdtm: order().created_at,
    };
    let answer = client.close(&request).await.unwrap();
    assert_eq!(answer["respcd"], "0000");
    let sent = mock.requests.lock().unwrap()[0].clone();
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.path, "/qf/trade/v1/close");
    assert_eq!(
        sent.body,
        "mchid=ZaMVg12345&out_trade_no=20261123ABCDEF123456&txamt=888\
         &txdtm=2026-11-23+19%3A59%3A00"
    );
    let provider = QfpayProvider::new(client.clone());
    provider.close(&order()).await.unwrap();
    // Already closed: nothing left to do.
    *mock.mode.lock().unwrap() = Mode::Respcd("1142");
    provider.close(&order()).await.unwrap();
    // Cancel in progress: the outcome is unknown.
    *mock.mode.lock().unwrap() = Mode::Respcd("1145");
    let error = provider.close(&order()).await.unwrap_err();
    assert!(error.may_have_taken_effect);
    assert_eq!(error.upstream_code.as_deref(), Some("1145"));
    *mock.mode.lock().unwrap() = Mode::Respcd("1260");
    let error = provider.close(&order()).await.unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Rejected);
}

#[tokio::test]
async fn oauth_code_url_is_signed_over_the_plain_values() {
    let redirect = "https://shop.example/wxpay/openid/callback?x=1&y=a b";
    for mchid in [None, Some(MCHID)] {
        let client = QfpayClient::builder(config("https://test-openapi-hk.qfapi.com/", KEY, mchid))
            .build()
            .unwrap();
        let url = reqwest::Url::parse(&client.oauth_code_url(redirect)).unwrap();
        assert_eq!(url.host_str(), Some("test-openapi-hk.qfapi.com"));
        assert_eq!(url.path(), "/tool/v1/get_weixin_oauth_code");
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("app_code").as_deref(), Some(APP_CODE));
        assert_eq!(get("redirect_uri").as_deref(), Some(redirect));
        assert_eq!(get("mchid").as_deref(), mchid);
        let mut signed: Vec<(String, String)> = vec![
            ("app_code".into(), APP_CODE.into()),
            ("redirect_uri".into(), redirect.into()),
        ];
        if let Some(mchid) = mchid {
            signed.push(("mchid".into(), mchid.into()));
        }
        assert_eq!(get("sign"), Some(independent_sign(&signed, KEY)));
        assert_eq!(pairs.len(), signed.len() + 1);
    }
}

#[tokio::test]
async fn openid_exchanges_a_code_with_signed_headers() {
    let (mock, url) = mock(Mode::Success).await;
    let client = client(&url);
    assert_eq!(client.openid("good-code").await.unwrap(), OPENID);
    let sent = mock.requests.lock().unwrap()[0].clone();
    assert_eq!(sent.method, Method::GET);
    assert_eq!(sent.path, "/qf/tool/v1/get_weixin_openid");
    assert_eq!(sent.query, "code=good-code&mchid=ZaMVg12345");
    assert_eq!(sent.body, "");
    assert_eq!(
        sent.sign,
        independent_sign(
            &[
                ("code".into(), "good-code".into()),
                ("mchid".into(), MCHID.into())
            ],
            KEY
        )
    );
    let error = client.openid("used-code").await.unwrap_err();
    assert!(
        matches!(&error, QfpayError::Upstream { respcd, message, class: RespcdClass::Rejected }
            if respcd == "1104" && message == "invalid code"),
        "{error:?}"
    );
    assert!(matches!(
        client.openid("").await.unwrap_err(),
        QfpayError::Local(_)
    ));
}

#[tokio::test]
async fn payment_request_from_an_order() {
    let request: PaymentRequest = QfpayProvider::payment_request(&order());
    assert_eq!(request.txamt, 888);
    assert_eq!(request.txcurrcd, "HKD");
    assert_eq!(request.sub_openid, OPENID);
    assert_eq!(request.goods_name.as_deref(), Some("Pet food 2 kg"));
    assert_eq!(request.txdtm, order().created_at);
}

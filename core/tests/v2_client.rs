//! `V2Client` / `V2Provider` against a loopback server standing in for WeChat Pay API v2:
//! unified order success, `return_code` FAIL, `result_code` FAIL, a bad response signature,
//! an oversized answer, order query and close.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use wxpay_core::fields::{Amount, NotifyUrl};
use wxpay_core::order::{NewOrder, Order};
use wxpay_core::provider::v2::V2Provider;
use wxpay_core::provider::{PaymentState, Provider, ProviderErrorKind};
use wxpay_core::v2::{ApiKey, Params, SignType, V2Client, V2Config, sign, xml};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const APPID: &str = "wxd930ea5d5a258f4f";
const MCHID: &str = "10000100";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Success,
    ReturnFail,
    ResultFail(&'static str),
    BadSign,
    OtherMchid,
    Huge,
    Http500,
}

#[derive(Clone)]
struct Upstream {
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<(String, Params)>>>,
}

fn key() -> ApiKey {
    ApiKey::new(KEY).unwrap()
}

fn answer(mode: Mode, mut fields: Params) -> (axum::http::StatusCode, String) {
    let mut p = Params::new();
    p.insert("return_code".into(), "SUCCESS".into());
    p.insert("return_msg".into(), "OK".into());
    p.insert("appid".into(), APPID.into());
    p.insert(
        "mch_id".into(),
        if mode == Mode::OtherMchid {
            "999"
        } else {
            MCHID
        }
        .into(),
    );
    p.insert("nonce_str".into(), "IITRi8Iabbblz1Jc".into());
    match mode {
        Mode::ResultFail(code) => {
            p.insert("result_code".into(), "FAIL".into());
            p.insert("err_code".into(), code.into());
            p.insert("err_code_des".into(), format!("{code} described"));
        }
        _ => {
            p.insert("result_code".into(), "SUCCESS".into());
            p.append(&mut fields);
        }
    }
    let s = sign::sign_params(&p, &key(), SignType::HmacSha256);
    p.insert(
        "sign".into(),
        if mode == Mode::BadSign {
            "0".repeat(64)
        } else {
            s
        },
    );
    match mode {
        Mode::ReturnFail => (
            axum::http::StatusCode::OK,
            "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名错误]]></return_msg></xml>".into(),
        ),
        Mode::Huge => (axum::http::StatusCode::OK, "x".repeat(2 << 20)),
        Mode::Http500 => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        _ => (axum::http::StatusCode::OK, xml::write(&p).unwrap()),
    }
}

async fn handle(
    path: &'static str,
    State(up): State<Upstream>,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    let request = xml::parse(&body).unwrap();
    // Every request is signed with the configured algorithm, named in sign_type.
    assert_eq!(request["sign_type"], "HMAC-SHA256");
    assert_eq!(sign::verify(&request, &key()), Ok(SignType::HmacSha256));
    up.requests
        .lock()
        .unwrap()
        .push((path.to_owned(), request.clone()));
    let mode = *up.mode.lock().unwrap();
    let mut fields = Params::new();
    match path {
        "unifiedorder" => {
            fields.insert("trade_type".into(), "JSAPI".into());
            fields.insert(
                "prepay_id".into(),
                "wx201410272009395522657a690389285100".into(),
            );
        }
        "orderquery" => {
            for (k, v) in [
                ("trade_state", "SUCCESS"),
                ("out_trade_no", request["out_trade_no"].as_str()),
                ("transaction_id", "1008450740201411110005820873"),
                ("total_fee", "1"),
                ("openid", "oUpF8uN95-Ptaags6E_roPHg7AG0"),
                ("time_end", "20141111170043"),
            ] {
                fields.insert(k.into(), v.into());
            }
        }
        _ => {}
    }
    answer(mode, fields)
}

async fn upstream(mode: Mode) -> (Upstream, String) {
    let up = Upstream {
        mode: Arc::new(Mutex::new(mode)),
        requests: Arc::default(),
    };
    let app = Router::new()
        .route(
            "/pay/unifiedorder",
            post(|s, b| handle("unifiedorder", s, b)),
        )
        .route("/pay/orderquery", post(|s, b| handle("orderquery", s, b)))
        .route("/pay/closeorder", post(|s, b| handle("closeorder", s, b)))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (up, format!("http://{addr}"))
}

fn provider(base: &str) -> V2Provider {
    let mut config = V2Config::new(
        APPID,
        MCHID,
        key(),
        SignType::HmacSha256,
        NotifyUrl::parse_for_local_development("http://127.0.0.1:9/wxpay/notify").unwrap(),
    );
    config.api_base = format!("{base}/");
    V2Provider::new(
        V2Client::builder(config)
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap(),
    )
}

fn order() -> Order {
    let mut new = NewOrder::new(
        "20250308abcdef123456".parse().unwrap(),
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".parse().unwrap(),
        Amount::from_fen(1).unwrap(),
        "Tencent-game".parse().unwrap(),
    );
    new.provider = "v2".into();
    new.attach = Some("cart=42".parse().unwrap());
    new.into_order(time::OffsetDateTime::now_utc())
}

#[tokio::test]
async fn unified_order_success_gives_signed_jsapi_params_and_identical_retries() {
    let (up, base) = upstream(Mode::Success).await;
    let provider = provider(&base);
    let prepay = provider.prepay(&order(), None).await.unwrap();
    let params = prepay.params.wechat().expect("WeChat parameters");
    assert_eq!(prepay.prepay_id, "wx201410272009395522657a690389285100");
    assert_eq!(params.app_id, APPID);
    assert_eq!(
        params.package,
        "prepay_id=wx201410272009395522657a690389285100"
    );
    assert_eq!(params.sign_type, "HMAC-SHA256");
    let mut signed = Params::new();
    signed.insert("appId".into(), params.app_id.clone());
    signed.insert("timeStamp".into(), params.time_stamp.clone());
    signed.insert("nonceStr".into(), params.nonce_str.clone());
    signed.insert("package".into(), params.package.clone());
    signed.insert("signType".into(), params.sign_type.clone());
    signed.insert("sign".into(), params.pay_sign.clone());
    assert_eq!(sign::verify(&signed, &key()), Ok(SignType::HmacSha256));
    let remaining = prepay.expires_at - time::OffsetDateTime::now_utc();
    assert!(remaining > time::Duration::minutes(119) && remaining <= time::Duration::hours(2));

    // A second prepay (after an unknown outcome) sends the same business fields.
    provider
        .prepay(&order(), Some("10.1.2.3".parse().unwrap()))
        .await
        .unwrap();
    let requests = up.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let strip = |p: &Params| {
        let mut p = p.clone();
        p.remove("nonce_str");
        p.remove("sign");
        p
    };
    assert_eq!(strip(&requests[0].1), strip(&requests[1].1));
    let first = &requests[0].1;
    for (k, v) in [
        ("appid", APPID),
        ("mch_id", MCHID),
        ("body", "Tencent-game"),
        ("out_trade_no", "20250308abcdef123456"),
        ("total_fee", "1"),
        ("fee_type", "CNY"),
        ("attach", "cart=42"),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", "http://127.0.0.1:9/wxpay/notify"),
        ("trade_type", "JSAPI"),
        ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
    ] {
        assert_eq!(first[k], v, "{k}");
    }
}

#[tokio::test]
async fn unified_order_failures_are_clear_provider_errors() {
    let cases = [
        (
            Mode::ReturnFail,
            ProviderErrorKind::Rejected,
            Some("FAIL"),
            false,
        ),
        (
            Mode::ResultFail("ORDERPAID"),
            ProviderErrorKind::Rejected,
            Some("ORDERPAID"),
            false,
        ),
        (
            Mode::ResultFail("SYSTEMERROR"),
            ProviderErrorKind::Unavailable,
            Some("SYSTEMERROR"),
            true,
        ),
        (Mode::BadSign, ProviderErrorKind::BadResponse, None, true),
        (Mode::OtherMchid, ProviderErrorKind::BadResponse, None, true),
        (Mode::Huge, ProviderErrorKind::BadResponse, None, true),
        (Mode::Http500, ProviderErrorKind::Unavailable, None, true),
    ];
    for (mode, kind, code, effect) in cases {
        let (_up, base) = upstream(mode).await;
        let error = provider(&base).prepay(&order(), None).await.unwrap_err();
        assert_eq!(error.kind, kind, "{mode:?}: {error:?}");
        assert_eq!(error.upstream_code.as_deref(), code, "{mode:?}");
        assert_eq!(error.may_have_taken_effect, effect, "{mode:?}");
        if mode == Mode::ReturnFail {
            assert_eq!(error.message, "签名错误");
        }
        if mode == Mode::ResultFail("ORDERPAID") {
            assert_eq!(error.message, "ORDERPAID described");
        }
    }
}

#[tokio::test]
async fn unreachable_upstream_is_a_transport_error_that_did_not_take_effect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = provider(&base).prepay(&order(), None).await.unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Transport);
    assert!(!error.may_have_taken_effect);
}

#[tokio::test]
async fn query_and_close() {
    let (up, base) = upstream(Mode::Success).await;
    let provider = provider(&base);
    let report = provider.query(&order()).await.unwrap();
    assert_eq!(report.state, PaymentState::Paid);
    assert_eq!(report.out_trade_no, "20250308abcdef123456");
    assert_eq!(
        report.transaction_id.as_deref(),
        Some("1008450740201411110005820873")
    );
    assert_eq!(report.amount_total, Some(1));
    assert_eq!(report.mchid.as_deref(), Some(MCHID));
    provider.close(&order()).await.unwrap();
    let paths: Vec<String> = up
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(paths, ["orderquery", "closeorder"]);

    *up.mode.lock().unwrap() = Mode::ResultFail("ORDERCLOSED");
    provider.close(&order()).await.unwrap();
    *up.mode.lock().unwrap() = Mode::ResultFail("ORDERPAID");
    let error = provider.close(&order()).await.unwrap_err();
    assert_eq!(error.upstream_code.as_deref(), Some("ORDERPAID"));
    *up.mode.lock().unwrap() = Mode::ResultFail("ORDERNOTEXIST");
    let error = provider.query(&order()).await.unwrap_err();
    assert_eq!(error.upstream_code.as_deref(), Some("ORDERNOTEXIST"));
}

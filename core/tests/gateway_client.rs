//! `GatewayProvider` against a loopback server standing in for the seed-001 gateway: precreate
//! success, the error shape with HTTP 200 and 500, other failures; callbacks through the
//! provider (event ids, amounts, replies); query and close unsupported.
#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use http::HeaderMap;
use serde_json::{Value, json};
use wxpay_core::clock::SystemClock;
use wxpay_core::fields::{Amount, NotifyUrl};
use wxpay_core::gateway::sign::signed_fields;
use wxpay_core::gateway::{AppKey, GatewayClient, GatewayConfig, open_sign};
use wxpay_core::order::{NewOrder, Order};
use wxpay_core::provider::gateway::{GATEWAY_ACK_BODY, GatewayProvider};
use wxpay_core::provider::{PaymentState, Provider, ProviderErrorKind, RejectionKind};

const KEY: &str = "test_app_key_0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Success,
    Error200,
    Error500,
    Plain502,
    Unknown,
    Incomplete,
}

#[derive(Clone)]
struct Gateway {
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

fn error_shape() -> Value {
    json!({
        "timestamp": "2025-03-08T01:55:14.480+0000",
        "status": 500,
        "error": "Internal Server Error",
        "message": "第三方返回失败, errorMsg = 第三方返回失败, errorMsg = 无效的openid",
        "path": "/open/trade/wx/jsapi/precreate"
    })
}

async fn precreate(State(gw): State<Gateway>, body: String) -> (StatusCode, String) {
    let request: Value = serde_json::from_str(&body).unwrap();
    gw.requests.lock().unwrap().push(request);
    match *gw.mode.lock().unwrap() {
        Mode::Success => (
            StatusCode::OK,
            json!({
                "appId": "wx2421b1c4370ec43b",
                "timeStamp": "1741394916",
                "nonceStr": "e61463f8efa94090b1f366cccfbbb444",
                "package": "prepay_id=wx21201855730335ac86f8c43d1889123400",
                "signType": "RSA",
                "paySign": "oR9d8PuhnIc+YZ8cBHFCwfgpaK9gd7vaRvkYD7rthRAZ"
            })
            .to_string(),
        ),
        Mode::Error200 => (StatusCode::OK, error_shape().to_string()),
        Mode::Error500 => (StatusCode::INTERNAL_SERVER_ERROR, error_shape().to_string()),
        Mode::Plain502 => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>".into()),
        Mode::Unknown => (StatusCode::OK, "{\"ok\":true}".into()),
        Mode::Incomplete => (
            StatusCode::OK,
            json!({"appId": "wx", "package": "prepay_id=1"}).to_string(),
        ),
    }
}

async fn gateway(mode: Mode) -> (Gateway, String) {
    let gw = Gateway {
        mode: Arc::new(Mutex::new(mode)),
        requests: Arc::default(),
    };
    let app = Router::new()
        .route("/gw/open/trade/wx/jsapi/precreate", post(precreate))
        .with_state(gw.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (gw, format!("http://{addr}/gw/"))
}

fn provider(url: &str) -> GatewayProvider {
    let config = GatewayConfig {
        url: url.to_owned(),
        biz_id: "ydrug".into(),
        app_key: AppKey::new(KEY).unwrap(),
        notify_url: NotifyUrl::parse_for_local_development("http://127.0.0.1:9/wxpay/notify")
            .unwrap(),
        ip: "10.0.0.7".parse().unwrap(),
    };
    GatewayProvider::new(
        GatewayClient::with_options(config, Duration::from_secs(3), Arc::new(SystemClock), None)
            .unwrap(),
    )
}

fn order(amount: u64) -> Order {
    let mut new = NewOrder::new(
        "21-364535".parse().unwrap(),
        "o_xsewew131SGS".parse().unwrap(),
        Amount::from_fen(amount).unwrap(),
        "云队长医药连锁管理系统".parse().unwrap(),
    );
    new.provider = "gateway".into();
    new.mchid = Some("ydrug".into());
    new.attach = Some("342rewrs".parse().unwrap());
    new.into_order(time::OffsetDateTime::now_utc())
}

#[tokio::test]
async fn precreate_sends_the_documented_body_and_passes_the_parameters_through() {
    let (gw, url) = gateway(Mode::Success).await;
    let provider = provider(&url);
    let prepay = provider.prepay(&order(83601), None).await.unwrap();
    let params = prepay.params.wechat().expect("WeChat parameters");
    assert_eq!(prepay.prepay_id, "wx21201855730335ac86f8c43d1889123400");
    assert_eq!(params.app_id, "wx2421b1c4370ec43b");
    assert_eq!(params.sign_type, "RSA");
    assert_eq!(
        params.pay_sign,
        "oR9d8PuhnIc+YZ8cBHFCwfgpaK9gd7vaRvkYD7rthRAZ"
    );
    assert!(provider.client_params(&order(83601), "x").is_none());
    let requests = gw.requests.lock().unwrap().clone();
    assert_eq!(
        requests[0],
        json!({
            "ip": "10.0.0.7",
            "openid": "o_xsewew131SGS",
            "biz_order_id": "21-364535",
            "pay_amount": 83601,
            "title": "云队长医药连锁管理系统",
            "notify_url": "http://127.0.0.1:9/wxpay/notify",
            "biz_id": "ydrug",
            "extra": "342rewrs"
        })
    );
}

#[tokio::test]
async fn precreate_errors_are_clear() {
    for (mode, kind, code) in [
        (Mode::Error200, ProviderErrorKind::Rejected, Some("500")),
        (Mode::Error500, ProviderErrorKind::Rejected, Some("500")),
        (Mode::Plain502, ProviderErrorKind::Unavailable, None),
        (Mode::Unknown, ProviderErrorKind::BadResponse, None),
        (Mode::Incomplete, ProviderErrorKind::BadResponse, None),
    ] {
        let (_gw, url) = gateway(mode).await;
        let error = provider(&url).prepay(&order(1), None).await.unwrap_err();
        assert_eq!(error.kind, kind, "{mode:?}: {error:?}");
        assert_eq!(error.upstream_code.as_deref(), code, "{mode:?}");
        if matches!(mode, Mode::Error200 | Mode::Error500) {
            assert_eq!(
                error.message,
                "第三方返回失败, errorMsg = 第三方返回失败, errorMsg = 无效的openid"
            );
        }
    }
}

#[tokio::test]
async fn query_and_close_are_unsupported_without_calling_anything() {
    let provider = provider("http://127.0.0.1:9");
    let error = provider.query(&order(1)).await.unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Local);
    assert_eq!(error.upstream_code.as_deref(), Some("UNSUPPORTED"));
    assert!(!error.may_have_taken_effect);
    let error = provider.close(&order(1)).await.unwrap_err();
    assert_eq!(error.kind, ProviderErrorKind::Local);
}

/// A callback body as the gateway would send it, signed with `KEY`.
fn callback(biz_content: &Value, biz_id: &str) -> String {
    let encoded: String =
        form_urlencoded::byte_serialize(biz_content.to_string().as_bytes()).collect();
    let unsigned = format!(
        "biz_content={encoded}&nonce_str=11961acffe074c7da556a18e8549027f&biz_id={biz_id}&sign_type=MD5&version=1.0&client_id=yeshan&timestamp=1741394916159"
    );
    let sign = open_sign(signed_fields(&unsigned), &AppKey::new(KEY).unwrap());
    format!("{unsigned}&sign={sign}")
}

fn content(status: &str, amount: Value) -> Value {
    json!({
        "uid": "102579", "trade_id": "1501822040", "total_amount": amount,
        "trade_pay_time": "2025-03-08 08:48:35", "trade_status": status, "pay_type": "113",
        "callback_content": "<xml>略</xml>", "title": "t", "biz_order_id": "21-364535"
    })
}

#[tokio::test]
async fn callbacks_through_the_provider() {
    let provider = provider("http://127.0.0.1:9");
    let body = callback(&content("SUCCESS", json!(83601)), "ydrug");
    let first = provider
        .verify_notification(&HeaderMap::new(), body.as_bytes())
        .await
        .unwrap();
    assert_eq!(first.event_id, "gateway-1501822040");
    assert_eq!(first.report.state, PaymentState::Paid);
    assert_eq!(first.report.out_trade_no, "21-364535");
    assert_eq!(first.report.amount_total, Some(83601));
    assert_eq!(first.report.transaction_id.as_deref(), Some("1501822040"));
    assert_eq!(first.report.mchid.as_deref(), Some("ydrug"));
    assert_eq!(
        first.report.paid_at.unwrap().unix_timestamp(),
        1_741_394_915
    );
    assert_eq!(first.details["biz_content"]["pay_type"], "113");
    // The gateway calls back several times: the same event id each time, for the inbox.
    let again = provider
        .verify_notification(&HeaderMap::new(), body.as_bytes())
        .await
        .unwrap();
    assert_eq!(again, first);
    // Another biz_id is reported as such, for the engine's cross-check.
    let other = callback(&content("SUCCESS", json!(83601)), "other");
    let n = provider
        .verify_notification(&HeaderMap::new(), other.as_bytes())
        .await
        .unwrap();
    assert_eq!(n.report.mchid.as_deref(), Some("other"));
    // A non-success status is not a payment and does not shadow a later SUCCESS.
    let pending = callback(&content("NOTPAY", json!(83601)), "ydrug");
    let n = provider
        .verify_notification(&HeaderMap::new(), pending.as_bytes())
        .await
        .unwrap();
    assert_eq!(n.report.state, PaymentState::Other("NOTPAY".into()));
    assert_ne!(n.event_id, first.event_id);

    for (bad, kind) in [
        (
            body.replace("biz_id=ydrug", "biz_id=ydrug2"),
            RejectionKind::BadSignature,
        ),
        (format!("{body}&x=1"), RejectionKind::BadSignature),
        (
            callback(&content("SUCCESS", json!("eighty")), "ydrug"),
            RejectionKind::Malformed,
        ),
        (
            callback(&content("SUCCESS", json!(1.5)), "ydrug"),
            RejectionKind::Malformed,
        ),
    ] {
        let rejection = provider
            .verify_notification(&HeaderMap::new(), bad.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(rejection.kind, kind);
        let reply = rejection.into_response();
        assert!(!reply.status().is_success());
        assert_eq!(reply.body().as_ref(), b"fail");
    }
    let ack = provider.acknowledge();
    assert_eq!(ack.status(), StatusCode::OK);
    assert_eq!(ack.body().as_ref(), GATEWAY_ACK_BODY.as_bytes());
    assert_eq!(GATEWAY_ACK_BODY, "success");
    let fail = provider.failure_reply(StatusCode::SERVICE_UNAVAILABLE, "store down");
    assert_eq!(fail.status(), StatusCode::SERVICE_UNAVAILABLE);
}

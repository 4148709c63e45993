//! `QfpayClient` and `QfpayProvider` against `wxpay-sandbox`'s QFPay, a second implementation
//! of the same wire rules written independently from QFPay's docs: payment and its identical
//! repeat, enquiry before and after the payer pays, the signed notification, close, and the
//! openid flow.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use bytes::Bytes;
use time::OffsetDateTime;
use wxpay_core::fields::{Amount, NotifyUrl};
use wxpay_core::order::{NewOrder, Order};
use wxpay_core::provider::qfpay::QfpayProvider;
use wxpay_core::provider::{PaymentState, Provider};
use wxpay_core::qfpay::{ClientKey, QfpayClient, QfpayConfig};
use wxpay_sandbox::{PayRequest, Sandbox, SandboxConfig};

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (Received, String) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/notify",
            post(
                |State(received): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    received.lock().unwrap().push((headers, body));
                    "SUCCESS"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (received, format!("http://{addr}/notify"))
}

fn provider(sandbox: &Sandbox, notify_url: &str) -> QfpayProvider {
    let material = sandbox.qfpay();
    let mut config = QfpayConfig::new(
        sandbox.base_url(),
        material.app_code.clone(),
        ClientKey::new(material.client_key.clone()).unwrap(),
    );
    config.mchid.clone_from(&material.mchid);
    config.notify_url = Some(NotifyUrl::parse_for_local_development(notify_url).unwrap());
    QfpayProvider::new(QfpayClient::builder(config).build().unwrap())
}

fn order(out_trade_no: &str, openid: &str) -> Order {
    let mut new = NewOrder::new(
        out_trade_no.parse().unwrap(),
        openid.parse().unwrap(),
        Amount::from_fen(1234).unwrap(),
        "Sandbox order".parse().unwrap(),
    );
    new.provider = "qfpay".into();
    new.into_order(OffsetDateTime::now_utc())
}

#[tokio::test]
async fn pay_notify_query_and_close_through_the_sandbox() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let (received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url);
    let openid = sandbox.default_openid().to_owned();
    let order = order("QF20261123000000000001", &openid);

    let first = provider.prepay(&order, None).await.unwrap();
    let again = provider.prepay(&order, None).await.unwrap();
    assert_eq!(first.prepay_id, again.prepay_id);
    assert_eq!(
        provider.query(&order).await.unwrap().state,
        PaymentState::NotPaid
    );

    let params = first.params.wechat().unwrap().clone();
    let outcome = sandbox
        .pay(PayRequest {
            app_id: params.app_id,
            time_stamp: params.time_stamp,
            nonce_str: params.nonce_str,
            package: params.package,
            sign_type: params.sign_type,
            pay_sign: params.pay_sign,
            ..PayRequest::default()
        })
        .await
        .unwrap();
    let report = provider.query(&order).await.unwrap();
    assert_eq!(report.state, PaymentState::Paid);
    assert_eq!(report.amount_total, Some(1234));
    assert_eq!(report.transaction_id, outcome.transaction_id);

    sandbox
        .wait_for_delivery(order.out_trade_no.as_str(), Duration::from_secs(10))
        .await
        .unwrap();
    let (headers, body) = received.lock().unwrap()[0].clone();
    let notification = provider.verify_notification(&headers, &body).await.unwrap();
    assert_eq!(notification.report.state, PaymentState::Paid);
    assert_eq!(
        notification.report.out_trade_no,
        order.out_trade_no.as_str()
    );
    assert_eq!(notification.report.amount_total, Some(1234));
    assert_eq!(
        notification.report.transaction_id, report.transaction_id,
        "a notification and a query name the payment alike"
    );

    let unpaid = self::order("QF20261123000000000002", &openid);
    provider.prepay(&unpaid, None).await.unwrap();
    provider.close(&unpaid).await.unwrap();
    provider.close(&unpaid).await.unwrap();
    assert_eq!(
        provider.query(&unpaid).await.unwrap().state,
        PaymentState::Closed
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn openid_flow_through_the_sandbox() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let provider = provider(&sandbox, "http://127.0.0.1:9/notify");
    let client = provider.client();
    let url = client.oauth_code_url("http://shop.example/wxpay/openid/callback?return_to=%2F");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{}", answer.text().await.unwrap());
    let location =
        reqwest::Url::parse(answer.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/wxpay/openid/callback");
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(
        client.openid(&code).await.unwrap(),
        sandbox.default_openid()
    );
    // Single use.
    let error = client.openid(&code).await.unwrap_err();
    assert!(error.respcd().is_some(), "{error:?}");
    // A tampered URL is refused.
    let tampered = url.replace("callback", "elsewhere");
    let answer = http.get(&tampered).send().await.unwrap();
    assert_ne!(answer.status(), 302);
    sandbox.shutdown().await;
}

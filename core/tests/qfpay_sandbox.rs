//! `QfpayClient` and `QfpayProvider` against `wxpay-sandbox`'s QFPay, a second implementation
//! of the same wire rules written independently from QFPay's docs: payment and its identical
//! repeat, enquiry before and after the payer pays, the signed notification, close, refunds
//! (processing, settled, notified, refused, lost answers), and the openid flow.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use bytes::Bytes;
use time::OffsetDateTime;
use wxpay_core::fields::{Amount, NotifyUrl, OutRefundNo};
use wxpay_core::order::{NewOrder, Order};
use wxpay_core::provider::qfpay::QfpayProvider;
use wxpay_core::provider::{PaymentState, Provider, ProviderErrorKind};
use wxpay_core::qfpay::{ClientKey, QfpayClient, QfpayConfig};
use wxpay_core::refund::{NewRefund, Refund, RefundStatus};
use wxpay_sandbox::{
    PayRequest, RefundBehaviour, RefundOutcome, RefundState, Sandbox, SandboxConfig,
};

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

fn refund_of(order: &Order, no: &str, fen: u64) -> Refund {
    NewRefund {
        out_refund_no: OutRefundNo::try_from(no).unwrap(),
        out_trade_no: order.out_trade_no.clone(),
        amount: Amount::from_fen(fen).unwrap(),
        reason: None,
    }
    .into_refund(OffsetDateTime::now_utc())
}

/// A QFPay order paid through the sandbox, with the `syssn` QFPay gave it as its
/// `transaction_id`.
async fn paid(sandbox: &Sandbox, provider: &QfpayProvider, no: &str) -> Order {
    let mut order = order(no, sandbox.default_openid());
    let prepay = provider.prepay(&order, None).await.unwrap();
    let params = prepay.params.wechat().unwrap().clone();
    sandbox
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
    order.transaction_id = provider.query(&order).await.unwrap().transaction_id;
    order
}

#[tokio::test]
async fn refunds_process_settle_notify_and_are_refused_beyond_the_payment() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    sandbox.set_refund_behaviour(RefundBehaviour {
        outcome: RefundOutcome::Processing,
        ..RefundBehaviour::default()
    });
    let (received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url);
    let order = paid(&sandbox, &provider, "QF20261207000000000001").await;
    let syssn = order.transaction_id.clone().unwrap();

    // Unknown before it is asked for: the reconciler would submit it.
    let first = refund_of(&order, "QFR20261207000001", 1000);
    let unknown = provider.query_refund(&order, &first).await.unwrap_err();
    assert!(unknown.is_not_found(), "{unknown:?}");

    // Accepted while processing (1145), the same answer for the identical repeat.
    let accepted = provider.refund(&order, &first).await.unwrap();
    assert_eq!(accepted.status, RefundStatus::Processing);
    assert_eq!(accepted.amount, Some(1000));
    assert_eq!(accepted.transaction_id.as_deref(), Some(syssn.as_str()));
    let refund_id = accepted.refund_id.clone().unwrap();
    let repeat = provider.refund(&order, &first).await.unwrap();
    assert_eq!(repeat.refund_id.as_deref(), Some(refund_id.as_str()));
    assert_eq!(
        provider.query_refund(&order, &first).await.unwrap().status,
        RefundStatus::Processing
    );

    // More than what is left: 1272, a definite refusal.
    let over = provider
        .refund(&order, &refund_of(&order, "QFR20261207000002", 235))
        .await
        .unwrap_err();
    assert_eq!(over.kind, ProviderErrorKind::Rejected);
    assert_eq!(over.upstream_code.as_deref(), Some("1272"));

    // Settled: the enquiry says success and a signed refund notification arrives.
    sandbox
        .settle_refund("QFR20261207000001", RefundState::Success)
        .unwrap();
    let settled = provider.query_refund(&order, &first).await.unwrap();
    assert_eq!(settled.status, RefundStatus::Success);
    assert!(settled.succeeded_at.is_some());
    assert_eq!(settled.refund_id.as_deref(), Some(refund_id.as_str()));
    let again = provider.refund(&order, &first).await.unwrap();
    assert_eq!(
        again.status,
        RefundStatus::Success,
        "a settled refund answers 0000"
    );

    let notification = wait_until_received(&received, 2).await;
    let (headers, body) = notification;
    let verified = provider.verify_notification(&headers, &body).await.unwrap();
    let report = verified.refund.expect("a refund notification");
    assert_eq!(report.out_refund_no, "QFR20261207000001");
    assert_eq!(report.status, RefundStatus::Success);
    assert_eq!(report.amount, Some(1000));
    assert_eq!(report.refund_id.as_deref(), Some(refund_id.as_str()));
    assert_eq!(report.transaction_id.as_deref(), Some(syssn.as_str()));
    assert_eq!(verified.report.state, PaymentState::Refunded);
    assert!(verified.event_id.starts_with("qfpay-"));

    // The payment itself now reads partly refunded, and still paid.
    assert_eq!(
        provider.query(&order).await.unwrap().state,
        PaymentState::Paid
    );

    // A tampered refund notification is refused.
    let mut forged = body.to_vec();
    let at = forged.len() - 3;
    forged[at] ^= 1;
    assert!(
        provider
            .verify_notification(&headers, &forged)
            .await
            .is_err()
    );

    // An injected refusal is QFPay's "refund request denied".
    sandbox.set_refund_behaviour(RefundBehaviour {
        refuse_next: 1,
        ..RefundBehaviour::default()
    });
    let denied = provider
        .refund(&order, &refund_of(&order, "QFR20261207000003", 1))
        .await
        .unwrap_err();
    assert_eq!(denied.upstream_code.as_deref(), Some("1155"));
    assert_eq!(denied.kind, ProviderErrorKind::Rejected);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_lost_refund_answer_is_unknown_not_refused_and_an_unpaid_order_cannot_refund() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let (_received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url);
    let order = paid(&sandbox, &provider, "QF20261207000000000002").await;
    sandbox.set_refund_behaviour(RefundBehaviour {
        lose_answer_next: 1,
        ..RefundBehaviour::default()
    });
    let refund = refund_of(&order, "QFR20261207000010", 34);
    let lost = provider.refund(&order, &refund).await.unwrap_err();
    assert_eq!(lost.kind, ProviderErrorKind::Unavailable, "{lost:?}");
    assert!(lost.may_have_taken_effect);
    // The refund stands upstream: the enquiry finds it, so the reconciler never submits twice.
    let found = provider.query_refund(&order, &refund).await.unwrap();
    assert_eq!(found.amount, Some(34));

    // Without the payment's syssn there is nothing to refund against: refused locally.
    let unpaid = self::order("QF20261207000000000003", sandbox.default_openid());
    let local = provider
        .refund(&unpaid, &refund_of(&unpaid, "QFR20261207000011", 1))
        .await
        .unwrap_err();
    assert_eq!(local.kind, ProviderErrorKind::Local);
    sandbox.shutdown().await;
}

/// Waits until `count` notifications arrived and returns the last.
async fn wait_until_received(received: &Received, count: usize) -> (HeaderMap, Bytes) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(last) = {
            let seen = received.lock().unwrap();
            (seen.len() >= count).then(|| seen[count - 1].clone())
        } {
            return last;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

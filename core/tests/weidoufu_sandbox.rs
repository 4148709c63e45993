//! `WeidoufuClient` and `WeidoufuProvider` against `wxpay-sandbox`'s weidoufu, a second
//! implementation of the same wire rules (issue-8 contract B) written independently: WeChat and
//! Alipay payments and their identical repeats, then the signed callback the sandbox posts once
//! the payer pays, verified by the provider.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use http::HeaderMap;
use time::OffsetDateTime;
use wxpay_core::fields::{Amount, NotifyUrl};
use wxpay_core::order::{NewOrder, Order};
use wxpay_core::provider::weidoufu::WeidoufuProvider;
use wxpay_core::provider::{PaymentParams, PaymentState, Provider, RejectionKind};
use wxpay_core::weidoufu::{PayType, SecretKey, WeidoufuClient, WeidoufuConfig};
use wxpay_sandbox::{PayRequest, Sandbox, SandboxConfig};

type Received = Arc<Mutex<Vec<Bytes>>>;

/// The shop's notify route: records each callback body and acknowledges it.
async fn receiver() -> (Received, String) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/notify",
            post(|State(received): State<Received>, body: Bytes| async move {
                received.lock().unwrap().push(body);
                "SUCCESS"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (received, format!("http://{addr}/notify"))
}

fn provider(sandbox: &Sandbox, notify_url: &str, pay_type: PayType) -> WeidoufuProvider {
    let material = sandbox.weidoufu();
    let mut config = WeidoufuConfig::new(
        sandbox.base_url(),
        material.access_key.clone(),
        SecretKey::new(material.secret_key.clone()).unwrap(),
        NotifyUrl::parse_for_local_development(notify_url).unwrap(),
    );
    config.pay_type = pay_type;
    WeidoufuProvider::new(WeidoufuClient::builder(config).build().unwrap())
}

fn order(out_trade_no: &str, payer: &str) -> Order {
    let mut new = NewOrder::new(
        out_trade_no.parse().unwrap(),
        payer.parse().unwrap(),
        Amount::from_fen(1234).unwrap(),
        // 40 characters: cut to 32 before it is sent, which the sandbox requires.
        "云队长医药连锁管理系统 sandbox order with a long name"
            .parse()
            .unwrap(),
    );
    new.provider = "weidoufu".into();
    new.attach = Some("a+b&c=d 中文".parse().unwrap());
    new.into_order(OffsetDateTime::now_utc())
}

/// Waits for the callback of `out_trade_no`, then verifies it through `provider`.
async fn verified_callback(
    sandbox: &Sandbox,
    received: &Received,
    provider: &WeidoufuProvider,
    out_trade_no: &str,
) -> wxpay_core::provider::PaymentNotification {
    sandbox
        .wait_for_delivery(out_trade_no, Duration::from_secs(10))
        .await
        .unwrap();
    let bodies = received.lock().unwrap().clone();
    let mut verified = Vec::new();
    for body in bodies {
        // The sandbox may also send a probe signed with a random key: it must be refused.
        match provider.verify_notification(&HeaderMap::new(), &body).await {
            Ok(notification) if notification.report.out_trade_no == out_trade_no => {
                verified.push(notification);
            }
            Ok(_) => {}
            Err(rejection) => assert_eq!(rejection.kind, RejectionKind::BadSignature),
        }
    }
    assert!(!verified.is_empty(), "no callback for {out_trade_no}");
    verified.remove(0)
}

#[tokio::test]
async fn wechat_payment_and_callback_through_the_sandbox() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let (received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url, PayType::Wechat);
    let openid = sandbox.default_openid().to_owned();
    let order = order("WDF20261123000000000001", &openid);
    assert_eq!(
        provider.check_order(&NewOrder::new(
            order.out_trade_no.clone(),
            order.openid.clone(),
            order.amount,
            order.description.clone(),
        )),
        Ok(())
    );

    let first = provider.prepay(&order, None).await.unwrap();
    let again = provider.prepay(&order, None).await.unwrap();
    assert_eq!(
        first.prepay_id, again.prepay_id,
        "an identical repeat is the same payment"
    );
    let params = first.params.wechat().unwrap().clone();
    assert_eq!(params.package, format!("prepay_id={}", first.prepay_id));

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
    let notification =
        verified_callback(&sandbox, &received, &provider, order.out_trade_no.as_str()).await;
    let report = &notification.report;
    assert_eq!(report.state, PaymentState::Paid);
    assert_eq!(report.amount_total, Some(1234));
    // The live callback names neither the payer nor the access_key (the store has both).
    assert_eq!(report.payer, None);
    assert_eq!(report.mchid, None);
    assert_eq!(notification.details["status"], 2);
    assert_eq!(notification.details["trade_type"], 9);
    assert!(report.transaction_id.is_some());
    assert!(report.paid_at.is_some());
    assert!(notification.event_id.starts_with("weidoufu-"));
    assert_eq!(notification.details["attach"], "a+b&c=d 中文");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn alipay_payment_and_callback_through_the_sandbox() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let (received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url, PayType::Alipay);
    let buyer_id = "2088102177846880";
    let order = order("WDF20261123000000000002", buyer_id);

    let first = provider.prepay(&order, None).await.unwrap();
    let again = provider.prepay(&order, None).await.unwrap();
    assert_eq!(first.prepay_id, again.prepay_id);
    let PaymentParams::Alipay(params) = &first.params else {
        panic!("Alipay parameters expected: {first:?}");
    };
    assert_eq!(params.trade_no, first.prepay_id);

    sandbox
        .pay(PayRequest {
            alipay_trade_no: Some(params.trade_no.clone()),
            ..PayRequest::default()
        })
        .await
        .unwrap();
    let notification =
        verified_callback(&sandbox, &received, &provider, order.out_trade_no.as_str()).await;
    let report = &notification.report;
    assert_eq!(report.state, PaymentState::Paid);
    assert_eq!(report.amount_total, Some(1234));
    assert_eq!(report.payer, None);
    assert_eq!(
        notification.details["transaction_id"],
        params.trade_no.as_str(),
        "Alipay's trade number"
    );
    assert!(report.transaction_id.is_some());
    sandbox.shutdown().await;
}

fn refund_of(order: &Order, no: &str, fen: u64) -> wxpay_core::refund::Refund {
    wxpay_core::refund::NewRefund {
        out_refund_no: wxpay_core::fields::OutRefundNo::try_from(no).unwrap(),
        out_trade_no: order.out_trade_no.clone(),
        amount: Amount::from_fen(fen).unwrap(),
        reason: None,
    }
    .into_refund(OffsetDateTime::now_utc())
}

#[tokio::test]
async fn refunds_are_taken_refused_beyond_the_payment_and_never_resent_blind() {
    use wxpay_core::provider::ProviderErrorKind;
    use wxpay_core::refund::RefundStatus;
    use wxpay_sandbox::RefundBehaviour;

    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let (_received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url, PayType::Wechat);
    let order = order("WDF20261207000000000001", sandbox.default_openid());

    // Not paid yet: refused with weidoufu's code 0, a definite refusal.
    let unpaid = provider
        .refund(&order, &refund_of(&order, "WDFR0001", 100))
        .await
        .unwrap_err();
    assert_eq!(unpaid.kind, ProviderErrorKind::Rejected, "{unpaid:?}");

    let params = provider.prepay(&order, None).await.unwrap();
    let params = params.params.wechat().unwrap().clone();
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

    let taken = provider
        .refund(&order, &refund_of(&order, "WDFR0002", 1000))
        .await
        .unwrap();
    assert_eq!(taken.status, RefundStatus::Success);
    assert_eq!(taken.out_refund_no, "WDFR0002");
    assert!(
        taken.refund_id.is_some(),
        "weidoufu's refund number is kept"
    );
    assert_eq!(sandbox.refunds().len(), 1);
    assert_eq!(sandbox.refunds()[0].amount, 1000);

    // 234 fen are left of 1234.
    let over = provider
        .refund(&order, &refund_of(&order, "WDFR0003", 235))
        .await
        .unwrap_err();
    assert_eq!(over.kind, ProviderErrorKind::Rejected);
    assert!(over.message.contains("234"), "{over:?}");

    // A lost answer is unknown, not refused; there is no query to settle it by.
    sandbox.set_refund_behaviour(RefundBehaviour {
        lose_answer_next: 1,
        ..RefundBehaviour::default()
    });
    let refund = refund_of(&order, "WDFR0004", 34);
    let lost = provider.refund(&order, &refund).await.unwrap_err();
    assert_eq!(lost.kind, ProviderErrorKind::Unavailable, "{lost:?}");
    assert!(lost.may_have_taken_effect);
    let query = provider.query_refund(&order, &refund).await.unwrap_err();
    assert_eq!(query.kind, ProviderErrorKind::Unsupported);
    assert!(!query.is_not_found(), "never read as 'submit it again'");
    assert_eq!(
        sandbox.refunds().len(),
        2,
        "the lost refund stands upstream"
    );
    sandbox.shutdown().await;
}

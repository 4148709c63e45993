//! API v2 refunds against `wxpay-sandbox`, which checks the merchant's TLS client certificate
//! like `api.mch.weixin.qq.com`: `/secapi/pay/refund` with and without the certificate,
//! `/pay/refundquery`, refusals, a lost answer, and the `req_info`-sealed refund notification.
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
use wxpay_core::provider::v2::V2Provider;
use wxpay_core::provider::{PaymentState, Provider, ProviderErrorKind, RejectionKind};
use wxpay_core::refund::{NewRefund, Refund, RefundStatus};
use wxpay_core::v2::{ApiKey, MerchantCertificate, SignType, V2Client, V2Config};
use wxpay_sandbox::{
    PayRequest, RefundBehaviour, RefundOutcome, RefundState, Sandbox, SandboxConfig,
};

type Received = Arc<Mutex<Vec<Bytes>>>;

async fn receiver() -> (Received, String) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/notify",
            post(|State(received): State<Received>, body: Bytes| async move {
                received.lock().unwrap().push(body);
                "<xml><return_code>SUCCESS</return_code></xml>"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (received, format!("http://{addr}/notify"))
}

/// How the provider reaches the sandbox's certificate endpoint.
#[derive(Clone, Copy)]
enum Certificate<'a> {
    /// The sandbox's merchant certificate, to its HTTPS listener.
    Merchant,
    /// None configured.
    Absent,
    /// The merchant certificate, but to the plain HTTP listener (no TLS, so none presented).
    OverPlainHttp,
    /// A certificate another sandbox (another CA) issued.
    Foreign(&'a Sandbox),
}

fn provider(sandbox: &Sandbox, notify_url: &str, certificate: Certificate<'_>) -> V2Provider {
    let merchant = sandbox.merchant();
    let mut config = V2Config::new(
        &merchant.appid,
        &merchant.mchid,
        ApiKey::new(sandbox.v2_api_key()).unwrap(),
        SignType::Md5,
        NotifyUrl::parse_for_local_development(notify_url).unwrap(),
    );
    config.api_base = sandbox.base_url().to_owned();
    let tls = sandbox.v2_certificates();
    config.secapi_root_certificate_pem = Some(tls.ca_certificate_pem.clone());
    let issued_by = |s: &Sandbox| {
        let material = s.v2_certificates();
        MerchantCertificate::from_pem(
            &material.merchant_certificate_pem,
            &material.merchant_key_pem,
        )
        .unwrap()
    };
    match certificate {
        Certificate::Merchant => {
            config.merchant_certificate = Some(issued_by(sandbox));
            config.secapi_base = Some(sandbox.v2_secure_base_url().to_owned());
        }
        Certificate::Absent => {}
        Certificate::OverPlainHttp => {
            config.merchant_certificate = Some(issued_by(sandbox));
        }
        Certificate::Foreign(other) => {
            config.merchant_certificate = Some(issued_by(other));
            config.secapi_base = Some(sandbox.v2_secure_base_url().to_owned());
        }
    }
    V2Provider::new(V2Client::builder(config).build().unwrap())
}

async fn paid(sandbox: &Sandbox, provider: &V2Provider, no: &str) -> Order {
    let mut new = NewOrder::new(
        no.parse().unwrap(),
        sandbox.default_openid().parse().unwrap(),
        Amount::from_fen(1234).unwrap(),
        "Sandbox order".parse().unwrap(),
    );
    new.provider = "v2".into();
    let mut order = new.into_order(OffsetDateTime::now_utc());
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

fn refund_of(order: &Order, no: &str, fen: u64) -> Refund {
    NewRefund {
        out_refund_no: no.parse::<OutRefundNo>().unwrap(),
        out_trade_no: order.out_trade_no.clone(),
        amount: Amount::from_fen(fen).unwrap(),
        reason: Some("sandbox refund".parse().unwrap()),
    }
    .into_refund(OffsetDateTime::now_utc())
}

/// Waits until `count` bodies arrived and returns the last.
async fn wait_until_received(received: &Received, count: usize) -> Bytes {
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

#[tokio::test]
async fn refunds_with_the_merchant_certificate_process_settle_and_notify() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    sandbox.set_refund_behaviour(RefundBehaviour {
        outcome: RefundOutcome::Processing,
        ..RefundBehaviour::default()
    });
    let (received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url, Certificate::Merchant);
    assert!(provider.refunds_supported());
    let order = paid(&sandbox, &provider, "V2R20261207000000001").await;
    let paid_notifications = wait_until_received(&received, 1).await;
    assert!(!paid_notifications.is_empty());
    let transaction_id = order.transaction_id.clone().unwrap();

    // Unknown before it is asked for (REFUNDNOTEXIST): the reconciler would submit it.
    let first = refund_of(&order, "V2RF20261207000001", 1000);
    let unknown = provider.query_refund(&order, &first).await.unwrap_err();
    assert!(unknown.is_not_found(), "{unknown:?}");

    // Accepted (result_code SUCCESS) is PROCESSING; the identical repeat is the same refund.
    let accepted = provider.refund(&order, &first).await.unwrap();
    assert_eq!(accepted.status, RefundStatus::Processing);
    assert_eq!(accepted.amount, Some(1000));
    assert_eq!(accepted.total, Some(1234));
    assert_eq!(
        accepted.transaction_id.as_deref(),
        Some(transaction_id.as_str())
    );
    let refund_id = accepted.refund_id.clone().unwrap();
    let repeat = provider.refund(&order, &first).await.unwrap();
    assert_eq!(repeat.refund_id.as_deref(), Some(refund_id.as_str()));
    let queried = provider.query_refund(&order, &first).await.unwrap();
    assert_eq!(queried.status, RefundStatus::Processing);
    assert_eq!(queried.refund_id.as_deref(), Some(refund_id.as_str()));

    // More than what is left, and the same number with another amount: definite refusals.
    let over = provider
        .refund(&order, &refund_of(&order, "V2RF20261207000002", 235))
        .await
        .unwrap_err();
    assert_eq!(over.kind, ProviderErrorKind::Rejected, "{over:?}");
    assert_eq!(over.upstream_code.as_deref(), Some("ERROR"));
    assert!(!over.may_have_taken_effect);
    let mismatch = provider
        .refund(&order, &refund_of(&order, "V2RF20261207000001", 999))
        .await
        .unwrap_err();
    assert_eq!(
        mismatch.upstream_code.as_deref(),
        Some("REFUND_FEE_MISMATCH")
    );

    // Settled: the query says SUCCESS, and the sealed notification decrypts to the same.
    sandbox
        .settle_refund("V2RF20261207000001", RefundState::Success)
        .unwrap();
    let settled = provider.query_refund(&order, &first).await.unwrap();
    assert_eq!(settled.status, RefundStatus::Success);
    assert!(settled.succeeded_at.is_some());
    assert!(settled.user_received_account.is_some());

    let body = wait_until_received(&received, 2).await;
    let text = std::str::from_utf8(&body).unwrap();
    assert!(
        text.contains("<req_info>") && !text.contains("<sign>"),
        "{text}"
    );
    let verified = provider
        .verify_notification(&HeaderMap::new(), &body)
        .await
        .unwrap();
    let report = verified.refund.clone().expect("a refund notification");
    assert_eq!(report.out_refund_no, "V2RF20261207000001");
    assert_eq!(
        report.out_trade_no.as_deref(),
        Some(order.out_trade_no.as_str())
    );
    assert_eq!(report.status, RefundStatus::Success);
    assert_eq!(report.amount, Some(1000));
    assert_eq!(report.total, Some(1234));
    assert_eq!(report.refund_id.as_deref(), Some(refund_id.as_str()));
    assert_eq!(
        report.transaction_id.as_deref(),
        Some(transaction_id.as_str())
    );
    assert!(report.succeeded_at.is_some());
    assert_eq!(verified.report.state, PaymentState::Refunded);
    assert_eq!(verified.event_id, format!("v2-refund-{refund_id}-SUCCESS"));

    // A req_info that does not decrypt with the API key is refused as forged.
    let forged = text.replacen("<req_info><![CDATA[", "<req_info><![CDATA[AAAA", 1);
    let refused = provider
        .verify_notification(&HeaderMap::new(), forged.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(refused.kind, RejectionKind::BadSignature, "{refused}");

    // An abnormal refund is CHANGE upstream, ABNORMAL here.
    let second = refund_of(&order, "V2RF20261207000003", 234);
    provider.refund(&order, &second).await.unwrap();
    sandbox
        .settle_refund("V2RF20261207000003", RefundState::Abnormal)
        .unwrap();
    let abnormal = provider.query_refund(&order, &second).await.unwrap();
    assert_eq!(abnormal.status, RefundStatus::Abnormal);
    assert!(abnormal.failure.unwrap().starts_with("CHANGE"));
    let body = wait_until_received(&received, 3).await;
    let verified = provider
        .verify_notification(&HeaderMap::new(), &body)
        .await
        .unwrap();
    assert_eq!(verified.refund.unwrap().status, RefundStatus::Abnormal);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_lost_refund_answer_is_unknown_and_found_by_the_query() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let (_received, notify_url) = receiver().await;
    let provider = provider(&sandbox, &notify_url, Certificate::Merchant);
    let order = paid(&sandbox, &provider, "V2R20261207000000002").await;
    sandbox.set_refund_behaviour(RefundBehaviour {
        lose_answer_next: 1,
        outcome: RefundOutcome::Processing,
        ..RefundBehaviour::default()
    });
    let refund = refund_of(&order, "V2RF20261207000010", 34);
    let lost = provider.refund(&order, &refund).await.unwrap_err();
    assert_eq!(lost.kind, ProviderErrorKind::Unavailable, "{lost:?}");
    assert!(lost.may_have_taken_effect);
    let found = provider.query_refund(&order, &refund).await.unwrap();
    assert_eq!(found.amount, Some(34));
    assert_eq!(found.status, RefundStatus::Processing);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn refunds_need_the_merchants_own_certificate_on_tls() {
    let sandbox = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let other = Sandbox::start(SandboxConfig::for_tests()).await.unwrap();
    let (_received, notify_url) = receiver().await;
    let with_certificate = provider(&sandbox, &notify_url, Certificate::Merchant);
    let order = paid(&sandbox, &with_certificate, "V2R20261207000000003").await;
    let refund = refund_of(&order, "V2RF20261207000020", 1);

    // No certificate configured: the provider says it cannot refund, and the client refuses
    // locally, before anything is sent.
    let absent = provider(&sandbox, &notify_url, Certificate::Absent);
    assert!(!absent.refunds_supported());
    let local = absent.refund(&order, &refund).await.unwrap_err();
    assert_eq!(local.kind, ProviderErrorKind::Local);
    assert!(local.message.contains("WXPAY_V2_CERT_FILE"), "{local}");

    // Over plain HTTP no certificate is presented: WeChat Pay's return_code FAIL.
    let plain = provider(&sandbox, &notify_url, Certificate::OverPlainHttp);
    let refused = plain.refund(&order, &refund).await.unwrap_err();
    assert_eq!(refused.kind, ProviderErrorKind::Rejected, "{refused:?}");
    assert_eq!(refused.upstream_code.as_deref(), Some("FAIL"));

    // Another CA's certificate fails the handshake: nothing was sent, so nothing was refunded.
    let foreign = provider(&sandbox, &notify_url, Certificate::Foreign(&other));
    let handshake = foreign.refund(&order, &refund).await.unwrap_err();
    assert_eq!(
        handshake.kind,
        ProviderErrorKind::Transport,
        "{handshake:?}"
    );
    assert!(!handshake.may_have_taken_effect, "{handshake:?}");
    assert!(sandbox.refunds().is_empty(), "no refund was made");

    let material = sandbox.v2_certificates();
    let certificate = MerchantCertificate::from_pem(
        &material.merchant_certificate_pem,
        &material.merchant_key_pem,
    )
    .unwrap();
    assert_eq!(
        format!("{certificate:?}"),
        "MerchantCertificate(<redacted>)"
    );

    // With its own certificate the same refund goes through.
    let accepted = with_certificate.refund(&order, &refund).await.unwrap();
    assert_eq!(accepted.status, RefundStatus::Processing);
    assert_eq!(sandbox.refunds().len(), 1);
    other.shutdown().await;
    sandbox.shutdown().await;
}

#[test]
fn a_merchant_certificate_must_be_pem_and_is_never_printed() {
    let error = MerchantCertificate::from_pem("not a certificate", "not a key").unwrap_err();
    assert!(error.to_string().contains("apiclient_cert.pem"), "{error}");
    let missing = MerchantCertificate::from_files("/nonexistent/cert.pem", "/nonexistent/key.pem")
        .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/cert.pem"),
        "{missing}"
    );
}

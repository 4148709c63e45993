//! QFPay's asynchronous notifications: the signature over the raw body (recomputed here
//! independently of the crate: MD5 of the body bytes followed by the `client_key`, upper-case
//! hex), refused inputs, refund notifications, and what `QfpayProvider` makes of them.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode};
use md5::{Digest, Md5};
use serde_json::json;
use wxpay_core::clock::ManualClock;
use wxpay_core::provider::qfpay::{QFPAY_ACK_BODY, QFPAY_FAIL_BODY, QfpayProvider};
use wxpay_core::provider::{PaymentState, Provider, RejectionKind};
use wxpay_core::qfpay::notification::MAX_NOTIFICATION_BYTES;
use wxpay_core::qfpay::{
    ClientKey, NotifyType, QfpayClient, QfpayConfig, QfpayNotificationError, verify_notification,
};
use wxpay_core::refund::RefundStatus;

const KEY: &str = "3ABB1BFFE2E0497BB9270978B0B12345";

/// The payment notification of QFPay's "Asynchronous Notifications" page, byte for byte as
/// Python's `json.dumps` writes it (`", "` and `": "` separators).
const DOCUMENTED_PAYMENT: &str = r#"{"status": "1", "pay_type": "800101", "sysdtm": "2020-06-15 10:32:58", "paydtm": "2020-06-15 10:33:35", "goods_name": "", "txcurrcd": "HKD", "txdtm": "2020-06-15 10:32:58", "mchid": "O37MRh6Qq5", "txamt": "10", "exchange_rate": "", "chnlsn2": "", "out_trade_no": "9G3ZIWTG1R3IVSC2AH2O5EGKJQ7I72QO", "syssn": "20200615000200020000641807", "cash_fee_type": "", "cancel": "0", "respcd": "0000", "goods_info": "", "cash_fee": "0", "notify_type": "payment", "chnlsn": "2020061522001453561406303428", "cardcd": "2088032341453564"}"#;

fn independent_sign(body: &[u8], key: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(body);
    hasher.update(key.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn headers(sign: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("X-QF-SIGN", HeaderValue::from_str(sign).unwrap());
    headers
}

fn signed(body: &str) -> HeaderMap {
    headers(&independent_sign(body.as_bytes(), KEY))
}

fn key() -> ClientKey {
    ClientKey::new(KEY).unwrap()
}

fn provider(mchid: Option<&str>) -> QfpayProvider {
    let mut config = QfpayConfig::new("http://127.0.0.1:9", "APPCODE", key());
    config.mchid = mchid.map(str::to_owned);
    QfpayProvider::new(
        QfpayClient::builder(config)
            .clock(Arc::new(ManualClock::at(1_592_188_415)))
            .build()
            .unwrap(),
    )
}

#[test]
fn the_documented_payment_verifies_and_reads() {
    let n = verify_notification(
        &signed(DOCUMENTED_PAYMENT),
        DOCUMENTED_PAYMENT.as_bytes(),
        &key(),
    )
    .unwrap();
    assert!(n.is_paid());
    assert_eq!(n.notify_type, NotifyType::Payment);
    assert_eq!(n.syssn, "20200615000200020000641807");
    assert_eq!(n.out_trade_no, "9G3ZIWTG1R3IVSC2AH2O5EGKJQ7I72QO");
    assert_eq!(n.txamt, 10);
    assert_eq!(n.txcurrcd.as_deref(), Some("HKD"));
    assert_eq!(n.paydtm.as_deref(), Some("2020-06-15 10:33:35"));
    assert_eq!(n.chnlsn.as_deref(), Some("2020061522001453561406303428"));
    assert_eq!(n.mchid.as_deref(), Some("O37MRh6Qq5"));
    assert_eq!(n.cancel.as_deref(), Some("0"));
    // Empty fields read as absent; unknown ones are kept.
    assert_eq!(n.goods_name, None);
    assert_eq!(n.fields["cardcd"], "2088032341453564");
}

#[test]
fn lower_case_hex_is_accepted() {
    let sign = independent_sign(DOCUMENTED_PAYMENT.as_bytes(), KEY).to_ascii_lowercase();
    assert!(verify_notification(&headers(&sign), DOCUMENTED_PAYMENT.as_bytes(), &key()).is_ok());
}

#[test]
fn refused_before_parsing() {
    let body = DOCUMENTED_PAYMENT.as_bytes();
    // One byte changed (the amount), same signature.
    let tampered = DOCUMENTED_PAYMENT.replace(r#""txamt": "10""#, r#""txamt": "1000""#);
    assert_eq!(
        verify_notification(&signed(DOCUMENTED_PAYMENT), tampered.as_bytes(), &key()).unwrap_err(),
        QfpayNotificationError::BadSignature
    );
    // Re-serialised JSON (same content, other bytes) does not verify either.
    let compact = serde_json::to_string(
        &serde_json::from_str::<serde_json::Value>(DOCUMENTED_PAYMENT).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify_notification(&signed(DOCUMENTED_PAYMENT), compact.as_bytes(), &key()).unwrap_err(),
        QfpayNotificationError::BadSignature
    );
    // Signed with another key.
    let other = headers(&independent_sign(body, "ANOTHERKEY"));
    assert_eq!(
        verify_notification(&other, body, &key()).unwrap_err(),
        QfpayNotificationError::BadSignature
    );
    // No header, an empty one, a truncated one.
    let mut none = HeaderMap::new();
    none.insert("content-type", HeaderValue::from_static("application/json"));
    assert_eq!(
        verify_notification(&none, body, &key()).unwrap_err(),
        QfpayNotificationError::MissingSignature
    );
    assert_eq!(
        verify_notification(&headers(""), body, &key()).unwrap_err(),
        QfpayNotificationError::BadSignature
    );
    let sign = independent_sign(body, KEY);
    assert_eq!(
        verify_notification(&headers(&sign[..31]), body, &key()).unwrap_err(),
        QfpayNotificationError::BadSignature
    );
    // A body signed correctly but not JSON is refused only after the signature check.
    let junk = b"not json";
    assert!(matches!(
        verify_notification(&headers(&independent_sign(junk, KEY)), junk, &key()).unwrap_err(),
        QfpayNotificationError::Malformed(_)
    ));
    assert_eq!(
        verify_notification(&headers("00"), junk, &key()).unwrap_err(),
        QfpayNotificationError::BadSignature
    );
}

#[test]
fn oversized_bodies_are_refused() {
    let padding = "x".repeat(MAX_NOTIFICATION_BYTES);
    let body = format!(r#"{{"notify_type":"payment","pad":"{padding}"}}"#);
    assert_eq!(
        verify_notification(&signed(&body), body.as_bytes(), &key()).unwrap_err(),
        QfpayNotificationError::TooLarge(MAX_NOTIFICATION_BYTES)
    );
}

#[test]
fn amounts_as_numbers_or_text_and_required_fields() {
    let base = json!({
        "status": "1", "notify_type": "payment", "respcd": "0000", "syssn": "S1",
        "out_trade_no": "O1", "txamt": 888, "txcurrcd": "CNY", "new_field": {"nested": true}
    });
    let body = base.to_string();
    let n = verify_notification(&signed(&body), body.as_bytes(), &key()).unwrap();
    assert_eq!(n.txamt, 888);
    for (field, value) in [
        ("txamt", json!("8.88")),
        ("txamt", json!(-1)),
        ("txamt", json!(1.5)),
        ("syssn", json!("")),
        ("out_trade_no", json!(null)),
        ("notify_type", json!("")),
    ] {
        let mut bad = base.clone();
        bad[field] = value.clone();
        let body = bad.to_string();
        assert!(
            matches!(
                verify_notification(&signed(&body), body.as_bytes(), &key()).unwrap_err(),
                QfpayNotificationError::Malformed(_)
            ),
            "{field}: {value}"
        );
    }
}

#[tokio::test]
async fn the_provider_reports_the_payment() {
    let provider = provider(Some("O37MRh6Qq5"));
    let body = DOCUMENTED_PAYMENT.as_bytes();
    let n = provider
        .verify_notification(&signed(DOCUMENTED_PAYMENT), body)
        .await
        .unwrap();
    assert_eq!(n.event_id, "qfpay-20200615000200020000641807");
    assert_eq!(n.report.state, PaymentState::Paid);
    assert_eq!(n.report.out_trade_no, "9G3ZIWTG1R3IVSC2AH2O5EGKJQ7I72QO");
    assert_eq!(n.report.amount_total, Some(10));
    assert_eq!(n.report.currency.as_deref(), Some("HKD"));
    assert_eq!(
        n.report.transaction_id.as_deref(),
        Some("20200615000200020000641807")
    );
    assert_eq!(n.report.mchid.as_deref(), Some("O37MRh6Qq5"));
    // paydtm 2020-06-15 10:33:35 at UTC+8 = 02:33:35 UTC.
    assert_eq!(n.report.paid_at.unwrap().unix_timestamp(), 1_592_188_415);
    assert_eq!(n.details["chnlsn"], "2020061522001453561406303428");
    // QFPay retries: the same event id each time.
    let again = provider
        .verify_notification(&signed(DOCUMENTED_PAYMENT), body)
        .await
        .unwrap();
    assert_eq!(again, n);
    assert_eq!(provider.merchant().mchid.as_deref(), Some("O37MRh6Qq5"));

    let ack = provider.acknowledge();
    assert_eq!(ack.status(), StatusCode::OK);
    assert_eq!(ack.body().as_ref(), b"SUCCESS");
    assert_eq!(QFPAY_ACK_BODY, "SUCCESS");
    let fail = provider.failure_reply(StatusCode::SERVICE_UNAVAILABLE, "store down");
    assert_eq!(fail.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fail.body().as_ref(), QFPAY_FAIL_BODY.as_bytes());
    // A failure is never a 2xx, whatever the caller passes.
    assert_eq!(
        provider.failure_reply(StatusCode::OK, "x").status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn refunds_verify_but_are_not_payments() {
    let refund = DOCUMENTED_PAYMENT
        .replace(r#""notify_type": "payment""#, r#""notify_type": "refund""#)
        .replace("20200615000200020000641807", "20200615000200020000641999")
        .replace("9G3ZIWTG1R3IVSC2AH2O5EGKJQ7I72QO", "REFUND0001");
    let n = verify_notification(&signed(&refund), refund.as_bytes(), &key()).unwrap();
    assert_eq!(n.notify_type, NotifyType::Refund);
    assert!(!n.is_paid());
    let provider = provider(None);
    let n = provider
        .verify_notification(&signed(&refund), refund.as_bytes())
        .await
        .unwrap();
    // Not a payment: the refund's own number and id go into the refund report, which the
    // engine applies to the stored refund (the order is never marked paid from it).
    assert_eq!(n.report.state, PaymentState::Refunded);
    let report = n.refund.expect("a refund report");
    assert_eq!(report.out_refund_no, "REFUND0001");
    assert_eq!(report.status, RefundStatus::Success);
    assert_eq!(
        report.refund_id.as_deref(),
        Some("20200615000200020000641999")
    );
    assert_eq!(n.event_id, "qfpay-20200615000200020000641999-refund-0000");
    // A payment notification that is not a success never shares the payment's event id.
    let odd = DOCUMENTED_PAYMENT.replace(r#""status": "1""#, r#""status": "0""#);
    let n = provider
        .verify_notification(&signed(&odd), odd.as_bytes())
        .await
        .unwrap();
    assert!(matches!(n.report.state, PaymentState::Failed(_)));
    assert_ne!(n.event_id, "qfpay-20200615000200020000641807");
}

#[tokio::test]
async fn the_provider_refuses_with_a_non_2xx_fail() {
    let provider = provider(None);
    let body = DOCUMENTED_PAYMENT.as_bytes();
    let tampered = DOCUMENTED_PAYMENT.replace("HKD", "CNY");
    let big = "x".repeat(MAX_NOTIFICATION_BYTES + 1);
    for (headers, body, kind) in [
        (
            signed(DOCUMENTED_PAYMENT),
            tampered.as_bytes(),
            RejectionKind::BadSignature,
        ),
        (HeaderMap::new(), body, RejectionKind::BadSignature),
        (signed("x"), b"x".as_slice(), RejectionKind::Malformed),
        (signed(&big), big.as_bytes(), RejectionKind::TooLarge),
    ] {
        let rejection = provider
            .verify_notification(&headers, body)
            .await
            .unwrap_err();
        assert_eq!(rejection.kind, kind);
        assert!(!rejection.message.contains(KEY));
        let reply = rejection.into_response();
        assert!(!reply.status().is_success());
        assert_eq!(reply.body().as_ref(), b"FAIL");
    }
}

//! weidoufu's payment callback as the live service sends it: JSON `{"sign", "content": {…}}`,
//! `sign` = upper-case MD5 of the lower-case hex HMAC-SHA256 of the content text keyed by the
//! secret key. Bodies are signed here with an independent implementation (hmac + md-5 directly),
//! verified by `verify_callback` and through `WeidoufuProvider` (event ids, reports, details,
//! replies); tampered, wrongly keyed, unsigned and malformed callbacks are refused, each next to
//! a control that the same content correctly signed is accepted.
#![allow(clippy::unwrap_used)]

use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use md5::{Digest, Md5};
use sha2::Sha256;
use wxpay_core::fields::NotifyUrl;
use wxpay_core::provider::weidoufu::{WEIDOUFU_ACK_BODY, WEIDOUFU_FAIL_BODY, WeidoufuProvider};
use wxpay_core::provider::{PaymentState, Provider, RejectionKind};
use wxpay_core::weidoufu::{
    CallbackError, PayType, STATUS_PAID, SecretKey, WeidoufuClient, WeidoufuConfig, verify_callback,
};

const ACCESS_KEY: &str = "f9ce7161e186c5362198524320650236";
const SECRET: &str = "sk_4e1f0b7c9a2d8e3f5a6b7c8d9e0f1a2b";

fn secret() -> SecretKey {
    SecretKey::new(SECRET).unwrap()
}

/// The callback rule, written again from the evidence: MD5(lower hex(HMAC-SHA256(secret,
/// content))), upper-case hex.
fn reference_sign(content: &str, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(content.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{:X}", Md5::digest(hex.as_bytes()))
}

/// A paid WeChat callback's content, compact, in the live field order.
fn paid_content() -> String {
    paid_content_with(2, "83601")
}

fn paid_content_with(status: u64, total_fee: &str) -> String {
    format!(
        r#"{{"mch_trade_no":"202105135513716648486662","out_order_no":"20261123191100AbCdEf1234","transaction_id":"4200001234202611238888888888","total_fee":{total_fee},"attach":"cart=42","trade_type":9,"pay_type":1,"bank_type":"OTHERS","pay_time":"2026-11-23 19:11:00","status":{status},"nonce_str":"82aafec92844bd7b7575e5d642911ac9"}}"#
    )
}

/// The body of `content` with `sign`.
fn body(content: &str, sign: &str) -> Vec<u8> {
    format!(r#"{{"sign":"{sign}","content":{content}}}"#).into_bytes()
}

/// `content` signed with `secret`.
fn signed(content: &str, secret: &str) -> Vec<u8> {
    body(content, &reference_sign(content, secret))
}

fn provider() -> WeidoufuProvider {
    let config = WeidoufuConfig::new(
        "http://127.0.0.1:9",
        ACCESS_KEY,
        secret(),
        NotifyUrl::parse_for_local_development("http://127.0.0.1:9/wxpay/notify").unwrap(),
    );
    WeidoufuProvider::new(WeidoufuClient::builder(config).build().unwrap())
}

#[test]
fn a_signed_callback_verifies_and_is_read() {
    let callback = verify_callback(&signed(&paid_content(), SECRET), &secret()).unwrap();
    assert!(callback.is_paid());
    assert_eq!(callback.status, STATUS_PAID);
    assert_eq!(callback.out_order_no, "20261123191100AbCdEf1234");
    assert_eq!(callback.mch_trade_no, "202105135513716648486662");
    assert_eq!(
        callback.transaction_id.as_deref(),
        Some("4200001234202611238888888888")
    );
    assert_eq!(callback.pay_type, PayType::Wechat);
    assert_eq!(callback.total_fee, 83601);
    assert_eq!(callback.attach.as_deref(), Some("cart=42"));
    assert_eq!(
        callback.paid_at().unwrap(),
        time::macros::datetime!(2026-11-23 19:11:00 +8)
    );
}

#[test]
fn every_variant_the_evidence_shows_is_accepted() {
    let content = paid_content();
    // Lower-case hex of the same signature.
    let lower = body(
        &content,
        &reference_sign(&content, SECRET).to_ascii_lowercase(),
    );
    assert!(verify_callback(&lower, &secret()).is_ok());
    // MD5 over the raw HMAC bytes (the first version of the public client).
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(content.as_bytes());
    let raw = format!("{:X}", Md5::digest(mac.finalize().into_bytes()));
    assert!(verify_callback(&body(&content, &raw), &secret()).is_ok());
    // `content` sent as a JSON string: its value is what was signed.
    let quoted = serde_json::to_string(&content).unwrap();
    let as_string = format!(
        r#"{{"sign":"{}","content":{quoted}}}"#,
        reference_sign(&content, SECRET)
    );
    let callback = verify_callback(as_string.as_bytes(), &secret()).unwrap();
    assert_eq!(callback.total_fee, 83601);
    // Numbers sent as strings, and `sign` after `content`.
    let stringly = paid_content_with(2, r#""83601""#);
    let reordered = format!(
        r#"{{"content":{stringly},"sign":"{}"}}"#,
        reference_sign(&stringly, SECRET)
    );
    assert_eq!(
        verify_callback(reordered.as_bytes(), &secret())
            .unwrap()
            .total_fee,
        83601
    );
}

#[test]
fn tampered_or_wrongly_keyed_callbacks_are_refused() {
    let genuine = reference_sign(&paid_content(), SECRET);
    // The amount changed after signing.
    let tampered = body(&paid_content_with(2, "1"), &genuine);
    assert_eq!(
        verify_callback(&tampered, &secret()),
        Err(CallbackError::BadSignature)
    );
    // Whitespace added inside the content changes the signed bytes.
    let spaced = body(
        &paid_content().replace(",\"status\"", ", \"status\""),
        &genuine,
    );
    assert_eq!(
        verify_callback(&spaced, &secret()),
        Err(CallbackError::BadSignature)
    );
    assert_eq!(
        verify_callback(&signed(&paid_content(), "sk_someone_else"), &secret()),
        Err(CallbackError::BadSignature)
    );
    // Control: the genuine body verifies.
    assert!(verify_callback(&body(&paid_content(), &genuine), &secret()).is_ok());
}

#[test]
fn unsigned_or_malformed_callbacks_are_refused() {
    let content = paid_content();
    assert_eq!(
        verify_callback(format!(r#"{{"content":{content}}}"#).as_bytes(), &secret()),
        Err(CallbackError::MissingSign)
    );
    assert_eq!(
        verify_callback(&body(&content, ""), &secret()),
        Err(CallbackError::MissingSign)
    );
    for bad in [
        b"sign=ABC&out_order_no=1".to_vec(),
        b"{\"sign\":\"ABC\"}".to_vec(),
        b"[1,2]".to_vec(),
    ] {
        assert!(
            matches!(
                verify_callback(&bad, &secret()),
                Err(CallbackError::Malformed(_))
            ),
            "{}",
            String::from_utf8_lossy(&bad)
        );
    }
    assert_eq!(
        verify_callback(&[0xff, 0xfe], &secret()),
        Err(CallbackError::NotUtf8)
    );
    // Signed, but a paid status without the wallet's transaction id, or an unknown pay type.
    let no_transaction = content.replace(r#""transaction_id":"4200001234202611238888888888","#, "");
    assert!(matches!(
        verify_callback(&signed(&no_transaction, SECRET), &secret()),
        Err(CallbackError::Malformed(_))
    ));
    let unknown_pay_type = content.replace(r#""pay_type":1"#, r#""pay_type":7"#);
    assert!(matches!(
        verify_callback(&signed(&unknown_pay_type, SECRET), &secret()),
        Err(CallbackError::Malformed(_))
    ));
}

#[test]
fn an_alipay_callback_carries_alipays_trade_number() {
    let content = paid_content()
        .replace(r#""pay_type":1"#, r#""pay_type":2"#)
        .replace(
            "4200001234202611238888888888",
            "2026112322001400000000000001",
        );
    let callback = verify_callback(&signed(&content, SECRET), &secret()).unwrap();
    assert_eq!(callback.pay_type, PayType::Alipay);
    assert_eq!(
        callback.transaction_id.as_deref(),
        Some("2026112322001400000000000001")
    );
}

#[tokio::test]
async fn callbacks_through_the_provider() {
    let provider = provider();
    let paid = signed(&paid_content(), SECRET);
    let first = provider
        .verify_notification(&HeaderMap::new(), &paid)
        .await
        .unwrap();
    assert_eq!(first.event_id, "weidoufu-202105135513716648486662");
    let report = &first.report;
    assert_eq!(report.state, PaymentState::Paid);
    assert_eq!(report.out_trade_no, "20261123191100AbCdEf1234");
    assert_eq!(
        report.transaction_id.as_deref(),
        Some("202105135513716648486662"),
        "weidoufu's own number for the payment"
    );
    assert_eq!(
        first.details["transaction_id"], "4200001234202611238888888888",
        "the wallet's number stays in the details"
    );
    assert_eq!(report.amount_total, Some(83601));
    assert_eq!(report.mchid, None, "the live callback names no access_key");
    assert_eq!(report.appid, None);
    assert_eq!(report.currency, None);
    assert_eq!(
        report.paid_at.unwrap(),
        time::macros::datetime!(2026-11-23 19:11:00 +8)
    );
    let expected: serde_json::Value = serde_json::from_str(&paid_content()).unwrap();
    assert_eq!(first.details, expected);
    // weidoufu repeats callbacks: the same event id each time, for the inbox.
    let again = provider
        .verify_notification(&HeaderMap::new(), &paid)
        .await
        .unwrap();
    assert_eq!(again, first);
    // A pending status is not a payment and does not shadow a later paid one.
    let pending = paid_content_with(1, "83601");
    let n = provider
        .verify_notification(&HeaderMap::new(), &signed(&pending, SECRET))
        .await
        .unwrap();
    assert_eq!(n.report.state, PaymentState::Other("status 1".into()));
    assert_ne!(n.event_id, first.event_id);

    let genuine = reference_sign(&paid_content(), SECRET);
    for (bad, kind, status) in [
        (
            body(&paid_content_with(2, "1"), &genuine),
            RejectionKind::BadSignature,
            StatusCode::UNAUTHORIZED,
        ),
        (
            signed(&paid_content(), "sk_someone_else"),
            RejectionKind::BadSignature,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!(r#"{{"content":{}}}"#, paid_content()).into_bytes(),
            RejectionKind::BadSignature,
            StatusCode::UNAUTHORIZED,
        ),
        (
            b"not json".to_vec(),
            RejectionKind::Malformed,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let rejection = provider
            .verify_notification(&HeaderMap::new(), &bad)
            .await
            .unwrap_err();
        assert_eq!(rejection.kind, kind);
        let reply = rejection.into_response();
        assert_eq!(reply.status(), status);
        assert_eq!(reply.body().as_ref(), WEIDOUFU_FAIL_BODY.as_bytes());
    }

    let ack = provider.acknowledge();
    assert_eq!(ack.status(), StatusCode::OK);
    assert_eq!(ack.body().as_ref(), b"SUCCESS");
    assert_eq!(WEIDOUFU_ACK_BODY, "SUCCESS");
    let fail = provider.failure_reply(StatusCode::SERVICE_UNAVAILABLE, "store down");
    assert_eq!(fail.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fail.body().as_ref(), b"FAIL");
    // A failure is never a 2xx, which weidoufu would take as received.
    let fail = provider.failure_reply(StatusCode::OK, "confused caller");
    assert!(!fail.status().is_success());
}

//! weidoufu's payment callback (issue-8 contract B): form bodies signed here with an independent
//! implementation of the rule, verified by `verify_callback` and through `WeidoufuProvider`
//! (event ids, reports, details, replies); tampered, wrongly keyed, foreign, unsigned and
//! malformed callbacks are refused, each next to a control that the same body correctly signed
//! is accepted.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use http::{HeaderMap, StatusCode};
use md5::{Digest, Md5};
use wxpay_core::fields::NotifyUrl;
use wxpay_core::provider::weidoufu::{WEIDOUFU_ACK_BODY, WEIDOUFU_FAIL_BODY, WeidoufuProvider};
use wxpay_core::provider::{PaymentState, Provider, RejectionKind};
use wxpay_core::weidoufu::{
    CallbackError, PayType, SecretKey, WeidoufuClient, WeidoufuConfig, verify_callback,
};

const ACCESS_KEY: &str = "f9ce7161e186c5362198524320650236";
const SECRET: &str = "sk_4e1f0b7c9a2d8e3f5a6b7c8d9e0f1a2b";
const OPENID: &str = "oSandbox0123456789abcdefghij";

fn secret() -> SecretKey {
    SecretKey::new(SECRET).unwrap()
}

/// The sign rule, written again from the contract's text: non-empty fields except `sign`, sorted
/// by name, `k=v` joined by `&`, `&key=SECRET`, MD5, upper-case hex.
fn reference_sign(fields: &BTreeMap<String, String>, secret: &str) -> String {
    let mut text = String::new();
    for (k, v) in fields {
        if k != "sign" && !v.is_empty() {
            text.push_str(&format!("{k}={v}&"));
        }
    }
    text.push_str(&format!("key={secret}"));
    format!("{:X}", Md5::digest(text.as_bytes()))
}

/// A paid WeChat callback's fields, as weidoufu would send them.
fn paid_fields() -> BTreeMap<String, String> {
    [
        ("access_key", ACCESS_KEY),
        ("out_order_no", "20261123191100AbCdEf1234"),
        ("mch_trade_no", "202105135513716648486662"),
        ("trade_no", "4200001234202611238888888888"),
        ("pay_type", "1"),
        ("total_fee", "83601"),
        ("openid", OPENID),
        ("attach", "{test:'a&b=c'} 中文"),
        ("trade_status", "SUCCESS"),
        ("pay_time", "2026-11-23 19:11:00"),
        ("nonce_str", "82aafec92844bd7b7575e5d642911ac9"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// The form body of `fields`, with `sign` (when given) last.
fn form(fields: &BTreeMap<String, String>, sign: Option<&str>) -> Vec<u8> {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    serializer.extend_pairs(fields.iter());
    if let Some(sign) = sign {
        serializer.append_pair("sign", sign);
    }
    serializer.finish().into_bytes()
}

/// `fields` signed with `secret`.
fn signed(fields: &BTreeMap<String, String>, secret: &str) -> Vec<u8> {
    form(fields, Some(&reference_sign(fields, secret)))
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
    let body = signed(&paid_fields(), SECRET);
    let callback = verify_callback(&body, &secret(), ACCESS_KEY).unwrap();
    assert!(callback.is_paid());
    assert_eq!(callback.out_order_no, "20261123191100AbCdEf1234");
    assert_eq!(callback.mch_trade_no, "202105135513716648486662");
    assert_eq!(
        callback.trade_no.as_deref(),
        Some("4200001234202611238888888888")
    );
    assert_eq!(callback.pay_type, PayType::Wechat);
    assert_eq!(callback.total_fee, 83601);
    assert_eq!(callback.payer_id.as_deref(), Some(OPENID));
    // Values are signed and read decoded (the attach went through the form's escaping).
    assert_eq!(callback.attach.as_deref(), Some("{test:'a&b=c'} 中文"));
    // 19:11:00 in Beijing is 11:11:00 UTC.
    assert_eq!(
        callback.paid_at().unwrap(),
        time::macros::datetime!(2026-11-23 11:11:00 UTC)
    );
    assert!(!callback.fields.contains_key("sign"));
}

#[test]
fn the_sign_may_come_anywhere_and_in_lower_case_hex() {
    let fields = paid_fields();
    let sign = reference_sign(&fields, SECRET);
    // `sign` first rather than last.
    let mut body = format!("sign={sign}&").into_bytes();
    body.extend(form(&fields, None));
    assert!(verify_callback(&body, &secret(), ACCESS_KEY).is_ok());
    // The same digest in lower-case hex carries the same proof of the key: accepted.
    let lower = form(&fields, Some(&sign.to_ascii_lowercase()));
    assert!(verify_callback(&lower, &secret(), ACCESS_KEY).is_ok());
}

#[test]
fn tampered_or_wrongly_keyed_callbacks_are_refused() {
    let fields = paid_fields();
    let good_sign = reference_sign(&fields, SECRET);
    // Control: the untouched body verifies.
    assert!(verify_callback(&form(&fields, Some(&good_sign)), &secret(), ACCESS_KEY).is_ok());

    for (name, value) in [
        ("total_fee", "1"),
        ("out_order_no", "20261123191100AbCdEf9999"),
        ("trade_status", "SUCCESS "),
        ("extra", "added"),
    ] {
        let mut tampered = fields.clone();
        tampered.insert(name.into(), value.into());
        assert_eq!(
            verify_callback(&form(&tampered, Some(&good_sign)), &secret(), ACCESS_KEY),
            Err(CallbackError::BadSignature),
            "{name}"
        );
    }
    // Signed with another secret key.
    assert_eq!(
        verify_callback(&signed(&fields, "sk_someone_else"), &secret(), ACCESS_KEY),
        Err(CallbackError::BadSignature)
    );
    // A signature of the wrong length or not hex at all.
    for sign in [&good_sign[..31], "not-a-signature", "ＡＢＣ"] {
        assert_eq!(
            verify_callback(&form(&fields, Some(sign)), &secret(), ACCESS_KEY),
            Err(CallbackError::BadSignature),
            "{sign}"
        );
    }
}

#[test]
fn a_callback_for_another_access_key_is_refused_even_when_signed() {
    let mut fields = paid_fields();
    fields.insert("access_key".into(), "another_application_key".into());
    let body = signed(&fields, SECRET);
    assert_eq!(
        verify_callback(&body, &secret(), ACCESS_KEY),
        Err(CallbackError::WrongAccessKey)
    );
    // Control: the same body is accepted by the application it names.
    assert!(verify_callback(&body, &secret(), "another_application_key").is_ok());
    // Without any access_key.
    fields.remove("access_key");
    assert_eq!(
        verify_callback(&signed(&fields, SECRET), &secret(), ACCESS_KEY),
        Err(CallbackError::WrongAccessKey)
    );
}

#[test]
fn unsigned_or_ambiguous_callbacks_are_refused() {
    let fields = paid_fields();
    assert_eq!(
        verify_callback(&form(&fields, None), &secret(), ACCESS_KEY),
        Err(CallbackError::MissingSign)
    );
    assert_eq!(
        verify_callback(&form(&fields, Some("")), &secret(), ACCESS_KEY),
        Err(CallbackError::MissingSign)
    );
    assert_eq!(
        verify_callback(b"", &secret(), ACCESS_KEY),
        Err(CallbackError::MissingSign)
    );
    // A field given twice: which one was signed would be a guess.
    let mut twice = signed(&fields, SECRET);
    twice.extend_from_slice(b"&total_fee=1");
    assert!(matches!(
        verify_callback(&twice, &secret(), ACCESS_KEY),
        Err(CallbackError::Malformed(_))
    ));
    // Not UTF-8, raw or once decoded.
    assert_eq!(
        verify_callback(b"a=\xff", &secret(), ACCESS_KEY),
        Err(CallbackError::NotUtf8)
    );
    assert_eq!(
        verify_callback(b"a=%ff&sign=X", &secret(), ACCESS_KEY),
        Err(CallbackError::NotUtf8)
    );
}

#[test]
fn signed_but_unreadable_callbacks_are_malformed() {
    for (name, value) in [
        ("total_fee", "eighty"),
        ("total_fee", "-1"),
        ("total_fee", "1.5"),
        ("total_fee", ""),
        ("pay_type", "3"),
        ("mch_trade_no", ""),
        ("out_order_no", ""),
        ("trade_no", ""),
        ("trade_status", ""),
    ] {
        let mut fields = paid_fields();
        fields.insert(name.into(), value.into());
        let result = verify_callback(&signed(&fields, SECRET), &secret(), ACCESS_KEY);
        assert!(
            matches!(result, Err(CallbackError::Malformed(_))),
            "{name}={value}: {result:?}"
        );
    }
}

#[test]
fn an_alipay_callback_reports_the_buyer_id() {
    let mut fields = paid_fields();
    fields.remove("openid");
    fields.insert("pay_type".into(), "2".into());
    fields.insert("buyer_id".into(), "2088102177846880".into());
    fields.insert("trade_no".into(), "2026112322001446880500012345".into());
    let callback = verify_callback(&signed(&fields, SECRET), &secret(), ACCESS_KEY).unwrap();
    assert_eq!(callback.pay_type, PayType::Alipay);
    assert_eq!(callback.payer_id.as_deref(), Some("2088102177846880"));
    assert_eq!(
        callback.trade_no.as_deref(),
        Some("2026112322001446880500012345")
    );
}

#[tokio::test]
async fn callbacks_through_the_provider() {
    let provider = provider();
    let body = signed(&paid_fields(), SECRET);
    let first = provider
        .verify_notification(&HeaderMap::new(), &body)
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
        first.details["trade_no"], "4200001234202611238888888888",
        "the wallet's number stays in the details"
    );
    assert_eq!(report.amount_total, Some(83601));
    assert_eq!(report.mchid.as_deref(), Some(ACCESS_KEY));
    assert_eq!(report.appid, None);
    assert_eq!(report.currency, None);
    assert_eq!(report.payer.as_deref(), Some(OPENID));
    assert_eq!(
        report.paid_at.unwrap(),
        time::macros::datetime!(2026-11-23 19:11:00 +8)
    );
    // The details are the fields without the signature.
    let expected: serde_json::Map<String, serde_json::Value> = paid_fields()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    assert_eq!(first.details, serde_json::Value::Object(expected));
    // weidoufu repeats callbacks: the same event id each time, for the inbox.
    let again = provider
        .verify_notification(&HeaderMap::new(), &body)
        .await
        .unwrap();
    assert_eq!(again, first);
    // A status other than SUCCESS is not a payment and does not shadow a later SUCCESS.
    let mut pending = paid_fields();
    pending.insert("trade_status".into(), "NOTPAY".into());
    pending.remove("trade_no");
    let n = provider
        .verify_notification(&HeaderMap::new(), &signed(&pending, SECRET))
        .await
        .unwrap();
    assert_eq!(n.report.state, PaymentState::Other("NOTPAY".into()));
    assert_ne!(n.event_id, first.event_id);

    let mut foreign = paid_fields();
    foreign.insert("access_key".into(), "another_application_key".into());
    let mut tampered = paid_fields();
    tampered.insert("total_fee".into(), "1".into());
    for (bad, kind, status) in [
        (
            form(&tampered, Some(&reference_sign(&paid_fields(), SECRET))),
            RejectionKind::BadSignature,
            StatusCode::UNAUTHORIZED,
        ),
        (
            signed(&paid_fields(), "sk_someone_else"),
            RejectionKind::BadSignature,
            StatusCode::UNAUTHORIZED,
        ),
        (
            form(&paid_fields(), None),
            RejectionKind::BadSignature,
            StatusCode::UNAUTHORIZED,
        ),
        (
            signed(&foreign, SECRET),
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

//! API v2 against the published vectors (`testdata/vectors/vectors.json`: `v2_sign`,
//! `v2_refund_req_info`) and signed notifications through [`V2Provider`].
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use serde_json::Value;
use wxpay_core::clock::ManualClock;
use wxpay_core::fields::NotifyUrl;
use wxpay_core::nonce::FixedNonce;
use wxpay_core::provider::v2::V2Provider;
use wxpay_core::provider::{PaymentState, Provider, RejectionKind};
use wxpay_core::v2::sign::{self, string_to_sign};
use wxpay_core::v2::{
    ACK_XML, ApiKey, Params, SignError, SignType, V2Client, V2Config, decrypt_refund_req_info,
    jsapi_params, xml,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/vectors/vectors.json"
    )))
    .unwrap()
}

fn sign_vector() -> (Params, ApiKey, Value) {
    let v = vectors()["v2_sign"].clone();
    let params: Params = v["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let key = ApiKey::new(v["key"].as_str().unwrap()).unwrap();
    (params, key, v)
}

#[test]
fn v2_sign_vector_md5_and_hmac_sha256() {
    let (params, key, v) = sign_vector();
    let text = string_to_sign(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key);
    assert_eq!(text.as_str(), v["string_to_sign"].as_str().unwrap());
    assert_eq!(
        sign::sign_params(&params, &key, SignType::Md5),
        v["md5"].as_str().unwrap()
    );
    assert_eq!(
        sign::sign_params(&params, &key, SignType::HmacSha256),
        v["hmac_sha256"].as_str().unwrap()
    );
}

#[test]
fn v2_sign_vector_verifies_by_detected_algorithm() {
    let (params, key, v) = sign_vector();
    for (field, sign_type) in [
        ("md5", SignType::Md5),
        ("hmac_sha256", SignType::HmacSha256),
    ] {
        let mut signed = params.clone();
        signed.insert("sign".into(), v[field].as_str().unwrap().to_owned());
        assert_eq!(sign::verify(&signed, &key), Ok(sign_type));
        // An empty field does not take part; a changed one breaks the signature.
        signed.insert("attach".into(), String::new());
        assert_eq!(sign::verify(&signed, &key), Ok(sign_type));
        signed.insert("body".into(), "test2".into());
        assert_eq!(sign::verify(&signed, &key), Err(SignError::Mismatch));
    }
    let wrong_key = ApiKey::new("292006250b4c09247ec02edce69f6a2d").unwrap();
    let mut signed = params;
    signed.insert("sign".into(), v["md5"].as_str().unwrap().to_owned());
    assert_eq!(sign::verify(&signed, &wrong_key), Err(SignError::Mismatch));
}

#[test]
fn v2_refund_req_info_vector() {
    let v = vectors()["v2_refund_req_info"].clone();
    let key = ApiKey::new(v["api_key"].as_str().unwrap()).unwrap();
    let ciphertext = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/vectors/gopay_reqinfo.txt"
    ));
    let expected = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/vectors/gopay_reqinfo_plain.xml"
    ));
    let plain = decrypt_refund_req_info(ciphertext, &key).unwrap();
    assert_eq!(plain.trim_end(), expected.trim_end());
    let fields = xml::parse(plain.as_bytes()).unwrap();
    assert_eq!(fields["out_refund_no"], "50fd012ed1b311e7af7800163e32c503");
    assert_eq!(fields["refund_fee"], "6");
    // The wrong key fails on the padding, never with garbage.
    let wrong = ApiKey::new("ziR0QKsTUfMOuochC9RfCdmfHECorQAQ").unwrap();
    assert!(decrypt_refund_req_info(ciphertext, &wrong).is_err());
    assert!(decrypt_refund_req_info("not base64!", &key).is_err());
    assert!(decrypt_refund_req_info("AAAA", &key).is_err());
}

#[test]
fn jsapi_pay_sign_signs_the_five_fields() {
    let (_, key, _) = sign_vector();
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let p = jsapi_params(
            "wxd930ea5d5a258f4f",
            "wx201410272009395522657a690389285100",
            "1414561699",
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
            &key,
            sign_type,
        );
        assert_eq!(p.package, "prepay_id=wx201410272009395522657a690389285100");
        assert_eq!(p.sign_type, sign_type.as_str());
        let text = format!(
            "appId=wxd930ea5d5a258f4f&nonceStr=5K8264ILTKCH16CQ2502SI8ZNMTM67VS&package=prepay_id=wx201410272009395522657a690389285100&signType={}&timeStamp=1414561699&key={}",
            sign_type.as_str(),
            key.expose()
        );
        let mut map = BTreeMap::new();
        map.insert("appId".to_owned(), p.app_id.clone());
        map.insert("timeStamp".to_owned(), p.time_stamp.clone());
        map.insert("nonceStr".to_owned(), p.nonce_str.clone());
        map.insert("package".to_owned(), p.package.clone());
        map.insert("signType".to_owned(), p.sign_type.clone());
        let signed = string_to_sign(map.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key);
        assert_eq!(signed.as_str(), text);
        assert_eq!(p.pay_sign, sign::sign_params(&map, &key, sign_type));
        assert_eq!(p.pay_sign.len(), sign_type.hex_len());
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications through the provider

const APPID: &str = "wxd930ea5d5a258f4f";
const MCHID: &str = "10000100";

fn provider(sign_type: SignType) -> V2Provider {
    let (_, key, _) = sign_vector();
    let config = V2Config::new(
        APPID,
        MCHID,
        key,
        sign_type,
        NotifyUrl::try_from("https://shop.example.com/wxpay/notify").unwrap(),
    );
    V2Provider::new(
        V2Client::builder(config)
            .clock(Arc::new(ManualClock::at(1_414_561_699)))
            .nonces(Arc::new(FixedNonce(
                "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".into(),
            )))
            .build()
            .unwrap(),
    )
}

fn notification(sign_type: Option<SignType>, signing: SignType) -> String {
    let (_, key, _) = sign_vector();
    let mut p = Params::new();
    for (k, v) in [
        ("return_code", "SUCCESS"),
        ("appid", APPID),
        ("mch_id", MCHID),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("result_code", "SUCCESS"),
        ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE"),
        ("is_subscribe", "Y"),
        ("trade_type", "JSAPI"),
        ("bank_type", "CFT"),
        ("total_fee", "1"),
        ("fee_type", "CNY"),
        ("cash_fee", "1"),
        ("transaction_id", "1004400740201409030005092168"),
        ("out_trade_no", "1409811653"),
        ("attach", ""),
        ("time_end", "20140903131540"),
        ("coupon_fee_0", "0"),
    ] {
        p.insert(k.into(), v.into());
    }
    if let Some(t) = sign_type {
        p.insert("sign_type".into(), t.as_str().into());
    }
    let s = sign::sign_params(&p, &key, signing);
    p.insert("sign".into(), s);
    xml::write(&p).unwrap()
}

/// A notification verifies with the merchant's sign type, named in it or not; one signed with
/// the other algorithm is refused although the key is right, since WeChat signs a merchant's
/// notifications with the merchant's sign type (issue 16 §4; this test accepted both before).
#[tokio::test]
async fn notifications_must_carry_the_merchants_sign_type() {
    for (configured, other) in [
        (SignType::Md5, SignType::HmacSha256),
        (SignType::HmacSha256, SignType::Md5),
    ] {
        let provider = provider(configured);
        for named in [None, Some(other)] {
            let body = notification(named, other);
            let rejection = provider
                .verify_notification(&HeaderMap::new(), body.as_bytes())
                .await
                .unwrap_err();
            assert_eq!(
                rejection.kind,
                RejectionKind::BadSignature,
                "{configured:?}"
            );
        }
    }
    let provider = provider(SignType::Md5);
    for (named, signing) in [(None, SignType::Md5), (Some(SignType::Md5), SignType::Md5)] {
        let body = notification(named, signing);
        let n = provider
            .verify_notification(&HeaderMap::new(), body.as_bytes())
            .await
            .unwrap();
        assert_eq!(n.event_id, "v2-1004400740201409030005092168");
        assert_eq!(n.report.state, PaymentState::Paid);
        assert_eq!(n.report.out_trade_no, "1409811653");
        assert_eq!(n.report.amount_total, Some(1));
        assert_eq!(n.report.currency.as_deref(), Some("CNY"));
        assert_eq!(n.report.appid.as_deref(), Some(APPID));
        assert_eq!(n.report.mchid.as_deref(), Some(MCHID));
        assert_eq!(
            n.report.payer.as_deref(),
            Some("oUpF8uMEb4qRXf22hE3X68TekukE")
        );
        assert_eq!(
            n.report.paid_at.unwrap().unix_timestamp(),
            1_409_721_340 // 2014-09-03 13:15:40 +08:00
        );
        assert_eq!(n.details["coupon_fee_0"], "0");
        assert!(n.details.get("sign").is_none());
    }
}

#[tokio::test]
async fn forged_and_malformed_notifications_are_refused_with_a_retryable_reply() {
    let provider = provider(SignType::HmacSha256);
    let good = notification(None, SignType::Md5);
    let forged = good.replace("<total_fee><![CDATA[1]]>", "<total_fee><![CDATA[100]]>");
    assert_ne!(forged, good);
    let cases: Vec<(String, RejectionKind)> = vec![
        (forged, RejectionKind::BadSignature),
        (
            good.replacen("<sign><![CDATA[", "<sign><![CDATA[00", 1),
            RejectionKind::BadSignature,
        ),
        (
            format!("<!DOCTYPE xml [<!ENTITY x \"y\">]>{good}"),
            RejectionKind::Malformed,
        ),
        (
            "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>x</return_msg></xml>"
                .to_owned(),
            RejectionKind::Malformed,
        ),
        ("{\"json\":true}".to_owned(), RejectionKind::Malformed),
    ];
    for (body, kind) in cases.into_iter().filter(|(b, _)| b != &good) {
        let rejection = provider
            .verify_notification(&HeaderMap::new(), body.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(rejection.kind, kind, "{body}");
        let response = rejection.into_response();
        assert!(!response.status().is_success());
        let reply = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(
            reply.starts_with("<xml><return_code><![CDATA[FAIL]]>"),
            "{reply}"
        );
    }
}

#[test]
fn replies_are_exact() {
    let provider = provider(SignType::Md5);
    let ack = provider.acknowledge();
    assert_eq!(ack.status(), StatusCode::OK);
    assert_eq!(
        ack.body().as_ref(),
        b"<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
    );
    assert_eq!(ACK_XML.as_bytes(), ack.body().as_ref());
    let fail = provider.failure_reply(StatusCode::SERVICE_UNAVAILABLE, "store down");
    assert_eq!(fail.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        fail.body().as_ref(),
        b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[store down]]></return_msg></xml>"
    );
}

#[test]
fn client_params_are_signed_locally_and_deterministic_with_fixed_clock_and_nonce() {
    let provider = provider(SignType::HmacSha256);
    let (_, key, _) = sign_vector();
    let order = wxpay_core::order::NewOrder::new(
        "1409811653".parse().unwrap(),
        "oUpF8uMEb4qRXf22hE3X68TekukE".parse().unwrap(),
        wxpay_core::fields::Amount::from_fen(1).unwrap(),
        "test".parse().unwrap(),
    )
    .into_order(time::OffsetDateTime::UNIX_EPOCH);
    let params = provider.client_params(&order, "wx2014").unwrap();
    assert_eq!(
        params,
        jsapi_params(
            APPID,
            "wx2014",
            "1414561699",
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
            &key,
            SignType::HmacSha256
        )
        .into()
    );
}

//! Criterion benchmarks of the protocol's cryptographic hot paths, on the published test key
//! and vectors in `testdata/vectors/`:
//!
//! - API v3: request signing (`Authorization`), JSAPI `paySign`, response verification,
//!   notification verify + decrypt, the bare RSA and AES-256-GCM steps (the "crypto floor" the
//!   load test divides by);
//! - API v2: MD5 and HMAC-SHA256 `sign`, and verification with detection;
//! - the seed-001 gateway's callback check (`checkOpenSign` + `biz_content`).
//!
//! With `--features bench-rsa-crate` the same RSA-SHA256 sign and verify also run on the pure
//! Rust `rsa` crate, for the ratio in BENCHMARKS.md (that crate is vulnerable to
//! RUSTSEC-2023-0071 and is never part of the library).
//!
//! ```sh
//! cargo bench -p wxpay-core --bench crypto
//! cargo bench -p wxpay-core --bench crypto --features bench-rsa-crate
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use wxpay_core::clock::ManualClock;
use wxpay_core::gateway::{AppKey, check_open_sign, verify_callback};
use wxpay_core::v2::sign::{self as v2sign, ApiKey, Params, SignType};
use wxpay_core::v3::aead::ALGORITHM;
use wxpay_core::v3::jsapi::pay_sign_message;
use wxpay_core::v3::sign::RequestSigner;
use wxpay_core::v3::verify::platform_message;
use wxpay_core::v3::{
    ApiV3Key, EncryptedResource, MerchantCredentials, MerchantPrivateKey, NotificationParser,
    PlatformPublicKey, PlatformTrust, SignatureHeaders,
};

/// The time every signed message of this file claims (the verifier's clock is pinned to it).
const NOW: i64 = 1_700_000_000;
const KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000001";
const API_V3_KEY: &str = "0123456789abcdefghijklmnopqrstuv";
const MCHID: &str = "1230000109";
const APPID: &str = "wxd678efh567hg6787";
const SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

/// A JSAPI prepay body as the engine sends it.
const PREPAY_BODY: &str = r#"{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Green tea (250 g)","out_trade_no":"1217752501201407033233368018","notify_url":"https://shop.example.com/wxpay/notify","amount":{"total":3800,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"attach":"green-tea"}"#;
/// The answer to it.
const PREPAY_RESPONSE: &str = r#"{"prepay_id":"wx26112221580621e9b071c00d9e093b0000"}"#;
/// The decrypted resource of a `TRANSACTION.SUCCESS` notification.
const TRANSACTION: &str = r#"{"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"green-tea","success_time":"2023-11-15T06:13:20+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":3800,"payer_total":3800,"currency":"CNY","payer_currency":"CNY"}}"#;

/// The seed-001 gateway's example callback, re-signed under [`GATEWAY_KEY`] (the same
/// constants as `tests/gateway_sign.rs`).
const GATEWAY_CALLBACK: &str = "biz_content=%7B%22uid%22%3A%22102579%22%2C%22trade_id%22%3A%221501822040%22%2C%22total_amount%22%3A83601%2C%22trade_pay_time%22%3A%222025-03-08%2008%3A48%3A35%22%2C%22trade_status%22%3A%22SUCCESS%22%2C%22pay_type%22%3A%22113%22%2C%22callback_content%22%3A%22%3Cxml%3E%E7%95%A5%3C%2Fxml%3E%22%2C%22title%22%3A%22%E4%BA%91%E9%98%9F%E9%95%BF%E5%8C%BB%E8%8D%AF%E8%BF%9E%E9%94%81%E7%AE%A1%E7%90%86%E7%B3%BB%E7%BB%9F%22%2C%22biz_order_id%22%3A%2221-364535%22%7D&nonce_str=11961acffe074c7da556a18e8549027f&sign=510d6635b2bdd95364ea64501e0ec43a&biz_id=ydrug&sign_type=MD5&version=1.0&client_id=yeshan&timestamp=1741394916159";
const GATEWAY_KEY: &str = "test_app_key_0123456789";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(vectors_dir().join(name)).unwrap()
}

fn vectors() -> Value {
    serde_json::from_str(&read("vectors.json")).unwrap()
}

fn test_key() -> MerchantPrivateKey {
    MerchantPrivateKey::from_pem(&read("test_key_pkcs8.pem")).unwrap()
}

fn credentials() -> MerchantCredentials {
    MerchantCredentials::new(MCHID, APPID, SERIAL, test_key()).unwrap()
}

/// Trust in the published test key as a WeChat Pay public key.
fn trust() -> PlatformTrust {
    PlatformTrust::public_key(
        PlatformPublicKey::from_pem(KEY_ID, &read("test_pubkey.pem")).unwrap(),
    )
    .unwrap()
}

fn at_now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

/// `Wechatpay-*` headers of `body`, signed with the test key as WeChat Pay would.
fn signed_headers(body: &[u8]) -> HeaderMap {
    let timestamp = NOW.to_string();
    let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
    let signature = test_key().sign_base64(&platform_message(&timestamp, nonce, body));
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("wechatpay-timestamp", timestamp.as_str()),
        ("wechatpay-nonce", nonce),
        ("wechatpay-signature", signature.as_str()),
        ("wechatpay-serial", KEY_ID),
        ("wechatpay-signature-type", "WECHATPAY2-SHA256-RSA2048"),
    ] {
        headers.insert(name, HeaderValue::from_str(value).unwrap());
    }
    headers
}

/// A `TRANSACTION.SUCCESS` notification body with [`TRANSACTION`] encrypted under
/// [`API_V3_KEY`].
fn notification_body() -> String {
    let nonce = "fdasflkja484";
    let aad = "transaction";
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(API_V3_KEY.as_bytes()).unwrap();
    let ciphertext = cipher
        .encrypt(
            aes_gcm::Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: TRANSACTION.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    serde_json::json!({
        "id": "EV-2018022511223320873",
        "create_time": "2023-11-15T06:13:21+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": ALGORITHM,
            "ciphertext": BASE64.encode(ciphertext),
            "associated_data": aad,
            "nonce": nonce,
        }
    })
    .to_string()
}

fn v3(c: &mut Criterion) {
    let key = test_key();
    let signer = RequestSigner::new(credentials());
    let credentials = credentials();
    let trust = trust();
    let now = at_now();

    let mut group = c.benchmark_group("v3");
    group.bench_function("request_signing", |b| {
        b.iter(|| {
            signer.authorization_at(
                black_box("POST"),
                black_box("/v3/pay/transactions/jsapi"),
                black_box(PREPAY_BODY.as_bytes()),
                NOW,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
            )
        });
    });
    group.bench_function("pay_sign", |b| {
        b.iter(|| {
            let message = pay_sign_message(
                credentials.appid(),
                black_box("1700000000"),
                black_box("593BEC0C930BF1AFEB40B4A08C8FB242"),
                black_box("prepay_id=wx26112221580621e9b071c00d9e093b0000"),
            );
            credentials.private_key().sign_base64(&message)
        });
    });

    let response_headers =
        SignatureHeaders::from_headers(&signed_headers(PREPAY_RESPONSE.as_bytes())).unwrap();
    group.bench_function("response_verification", |b| {
        b.iter(|| {
            trust
                .verify(
                    black_box(&response_headers),
                    black_box(PREPAY_RESPONSE.as_bytes()),
                    now,
                )
                .unwrap();
        });
    });

    let body = notification_body();
    let headers = signed_headers(body.as_bytes());
    let parser = NotificationParser::new(trust, ApiV3Key::new(API_V3_KEY).unwrap())
        .with_clock(Arc::new(ManualClock::at(NOW)));
    assert_eq!(
        parser
            .parse_transaction(&headers, body.as_bytes())
            .unwrap()
            .resource
            .out_trade_no,
        "1217752501201407033233368018"
    );
    group.bench_function("notification_verify_decrypt", |b| {
        b.iter(|| {
            parser
                .parse_transaction(black_box(&headers), black_box(body.as_bytes()))
                .unwrap()
        });
    });

    // The bare primitives: what the load test's crypto floor is made of.
    let message = platform_message("1700000000", "593BEC0C930BF1AFEB40B4A08C8FB242", b"{}");
    group.bench_function("rsa2048_sign", |b| {
        b.iter(|| key.sign_base64(black_box(&message)));
    });
    let v = &vectors()["aead_aes_256_gcm"];
    let resource = EncryptedResource {
        algorithm: ALGORITHM.into(),
        ciphertext: v["ciphertext"].as_str().unwrap().into(),
        associated_data: Some(v["associated_data"].as_str().unwrap().into()),
        nonce: v["nonce"].as_str().unwrap().into(),
        original_type: None,
    };
    let vector_key = ApiV3Key::new(v["key"].as_str().unwrap()).unwrap();
    group.bench_function("aes256gcm_decrypt_vector", |b| {
        b.iter(|| black_box(&resource).decrypt(&vector_key).unwrap());
    });
    group.finish();
}

fn v2_sign_vector() -> (Params, ApiKey) {
    let v = vectors()["v2_sign"].clone();
    let params: Params = v["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    (params, ApiKey::new(v["key"].as_str().unwrap()).unwrap())
}

fn v2(c: &mut Criterion) {
    let (params, key) = v2_sign_vector();
    let mut group = c.benchmark_group("v2");
    for (name, sign_type) in [
        ("sign_md5", SignType::Md5),
        ("sign_hmac_sha256", SignType::HmacSha256),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| v2sign::sign_params(black_box(&params), &key, sign_type));
        });
    }
    for (name, sign_type) in [
        ("verify_md5", SignType::Md5),
        ("verify_hmac_sha256", SignType::HmacSha256),
    ] {
        let mut signed = params.clone();
        signed.insert("sign".into(), v2sign::sign_params(&params, &key, sign_type));
        group.bench_function(name, |b| {
            b.iter(|| v2sign::verify(black_box(&signed), &key).unwrap());
        });
    }
    group.finish();
}

fn gateway(c: &mut Criterion) {
    let key = AppKey::new(GATEWAY_KEY).unwrap();
    assert!(check_open_sign(
        &key,
        "510d6635b2bdd95364ea64501e0ec43a",
        GATEWAY_CALLBACK
    ));
    let mut group = c.benchmark_group("gateway");
    group.bench_function("check_open_sign", |b| {
        b.iter(|| {
            check_open_sign(
                &key,
                black_box("510d6635b2bdd95364ea64501e0ec43a"),
                black_box(GATEWAY_CALLBACK),
            )
        });
    });
    group.bench_function("verify_callback", |b| {
        b.iter(|| verify_callback(black_box(GATEWAY_CALLBACK.as_bytes()), &key).unwrap());
    });
    group.finish();
}

/// aws-lc-rs (the library's backend) against the `rsa` crate on the same key and message.
#[cfg(feature = "bench-rsa-crate")]
fn rsa_backends(c: &mut Criterion) {
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
    use sha2::{Digest, Sha256};

    let aws = test_key();
    let trust = trust();
    let now = at_now();
    let private = RsaPrivateKey::from_pkcs8_pem(&read("test_key_pkcs8.pem")).unwrap();
    let public = RsaPublicKey::from_public_key_pem(&read("test_pubkey.pem")).unwrap();
    let message = platform_message("1700000000", "593BEC0C930BF1AFEB40B4A08C8FB242", b"{}");
    let signature = BASE64.decode(aws.sign_base64(&message)).unwrap();
    // PKCS#1 v1.5 is deterministic: both backends must produce the same bytes.
    let rsa_signature = private
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&message))
        .unwrap();
    assert_eq!(rsa_signature, signature);
    let headers = SignatureHeaders {
        timestamp: "1700000000".into(),
        nonce: "593BEC0C930BF1AFEB40B4A08C8FB242".into(),
        signature: BASE64.encode(&signature),
        serial: KEY_ID.into(),
        signature_type: None,
    };
    trust.verify(&headers, b"{}", now).unwrap();

    let mut group = c.benchmark_group("rsa_backend");
    group.bench_function("sign_aws-lc-rs", |b| {
        b.iter(|| aws.sign_base64(black_box(&message)));
    });
    group.bench_function("sign_rsa-crate", |b| {
        b.iter(|| {
            let sig = private
                .sign(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(black_box(&message)),
                )
                .unwrap();
            BASE64.encode(sig)
        });
    });
    group.bench_function("verify_aws-lc-rs", |b| {
        b.iter(|| trust.verify(black_box(&headers), b"{}", now).unwrap());
    });
    group.bench_function("verify_rsa-crate", |b| {
        b.iter(|| {
            let sig = BASE64.decode(black_box(&headers.signature)).unwrap();
            public
                .verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(black_box(&message)),
                    &sig,
                )
                .unwrap();
        });
    });
    group.finish();
}

#[cfg(not(feature = "bench-rsa-crate"))]
fn rsa_backends(_: &mut Criterion) {}

criterion_group!(benches, v3, v2, gateway, rsa_backends);
criterion_main!(benches);

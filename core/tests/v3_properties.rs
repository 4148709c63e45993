//! Property tests: signing round-trips for any request, and no input makes the notification
//! path panic.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use wxpay_core::clock::ManualClock;
use wxpay_core::nonce::FixedNonce;
use wxpay_core::v3::sign::authorization_message;
use wxpay_core::v3::verify::{platform_message, verify_rsa_sha256};
use wxpay_core::v3::{
    ApiV3Key, EncryptedResource, MerchantCredentials, MerchantPrivateKey, NotificationParser,
    PlatformPublicKey, PlatformTrust, RequestSigner, Transaction,
};

const NOW: i64 = 1_700_000_000;
const KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000001";

fn read(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/vectors")
            .join(name),
    )
    .unwrap()
}

fn key() -> &'static MerchantPrivateKey {
    static KEY: OnceLock<MerchantPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| MerchantPrivateKey::from_pem(&read("test_key_pkcs8.pem")).unwrap())
}

fn public_key() -> &'static ParsedPublicKey {
    static KEY: OnceLock<ParsedPublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        ParsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            pem::parse(read("test_pubkey.pem")).unwrap().contents(),
        )
        .unwrap()
    })
}

fn parser() -> NotificationParser {
    let trust = PlatformTrust::public_key(
        PlatformPublicKey::from_pem(KEY_ID, &read("test_pubkey.pem")).unwrap(),
    )
    .unwrap();
    NotificationParser::new(trust, ApiV3Key::new([7u8; 32]).unwrap())
        .with_clock(Arc::new(ManualClock::at(NOW)))
}

fn signed_headers(body: &[u8], nonce: &str) -> HeaderMap {
    let timestamp = NOW.to_string();
    let signature = key().sign_base64(&platform_message(&timestamp, nonce, body));
    let mut headers = HeaderMap::new();
    headers.insert(
        "wechatpay-timestamp",
        HeaderValue::from_str(&timestamp).unwrap(),
    );
    headers.insert("wechatpay-nonce", HeaderValue::from_str(nonce).unwrap());
    headers.insert(
        "wechatpay-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    headers.insert("wechatpay-serial", HeaderValue::from_static(KEY_ID));
    headers
}

fn field(header: &str, name: &str) -> String {
    header
        .split(',')
        .find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.ends_with(name)
                .then(|| value.trim_matches('"').to_owned())
        })
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_request_signs_and_verifies(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]),
        path in "/v3(/[A-Za-z0-9_.~-]{0,12}){0,4}",
        query in prop::option::of("[A-Za-z0-9_=&%-]{0,40}"),
        body in prop::collection::vec(any::<u8>(), 0..512),
        nonce in "[A-Za-z0-9]{32}",
        timestamp in 0i64..=4_102_444_800,
    ) {
        let credentials = MerchantCredentials::new("1900000001", "wxappid", "SERIAL", key().clone()).unwrap();
        let signer = RequestSigner::new(credentials)
            .with_clock(Arc::new(ManualClock::at(timestamp)))
            .with_nonces(Arc::new(FixedNonce(nonce.clone())));
        let target = match &query {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let header = signer.authorization(method, &target, &body);
        prop_assert_eq!(field(&header, "timestamp"), timestamp.to_string());
        prop_assert_eq!(field(&header, "nonce_str"), nonce.as_str());
        let signature = field(&header, "signature");
        let message = authorization_message(method, &target, timestamp, &nonce, &body);
        prop_assert!(verify_rsa_sha256(public_key(), &message, &signature).is_ok());
        let mut other = body;
        other.push(b'x');
        let tampered = authorization_message(method, &target, timestamp, &nonce, &other);
        prop_assert!(verify_rsa_sha256(public_key(), &tampered, &signature).is_err());
    }

    #[test]
    fn any_bytes_with_any_headers_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        timestamp in ".{0,24}",
        signature in ".{0,64}",
        serial in ".{0,48}",
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("wechatpay-timestamp", &timestamp),
            ("wechatpay-nonce", &signature),
            ("wechatpay-signature", &signature),
            ("wechatpay-serial", &serial),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
        prop_assert!(parser().parse_transaction(&headers, &body).is_err());
    }

    #[test]
    fn any_signed_bytes_are_parsed_without_panicking(
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        // A correct signature takes arbitrary bytes past verification into JSON parsing and
        // decryption.
        let headers = signed_headers(&body, "propnonce");
        let _ = parser().parse_transaction(&headers, &body);
    }

    #[test]
    fn any_signed_envelope_shape_is_parsed_without_panicking(
        algorithm in prop::sample::select(vec!["AEAD_AES_256_GCM".to_owned(), "x".to_owned()]),
        ciphertext in "[A-Za-z0-9+/=]{0,120}",
        nonce in ".{0,16}",
        associated_data in prop::option::of(".{0,16}"),
    ) {
        let resource = EncryptedResource { algorithm, ciphertext, associated_data, nonce, original_type: None };
        let body = serde_json::json!({
            "id": "n1", "event_type": "TRANSACTION.SUCCESS", "resource": resource,
        })
        .to_string();
        let headers = signed_headers(body.as_bytes(), "propnonce");
        let result = parser().parse::<Transaction>(&headers, body.as_bytes());
        prop_assert!(result.is_err());
    }
}

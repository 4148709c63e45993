//! Any headers and body through notification verification, parsing and decryption.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use wxpay_core::clock::ManualClock;
use wxpay_core::v3::{ApiV3Key, NotificationParser, PlatformPublicKey, PlatformTrust};

const NOW: i64 = 1_700_000_000;

fn parser() -> &'static NotificationParser {
    static PARSER: OnceLock<NotificationParser> = OnceLock::new();
    PARSER.get_or_init(|| {
        let key = PlatformPublicKey::from_pem(
            "PUB_KEY_ID_0114232134912410000000000001",
            include_str!("../../../testdata/vectors/test_pubkey.pem"),
        )
        .expect("test key");
        NotificationParser::new(
            PlatformTrust::public_key(key).expect("trust"),
            ApiV3Key::new([7u8; 32]).expect("key"),
        )
        .with_clock(Arc::new(ManualClock::at(NOW)))
    })
}

fuzz_target!(|input: (String, String, String, String, &[u8])| {
    let (timestamp, nonce, signature, serial, body) = input;
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("wechatpay-timestamp", timestamp),
        ("wechatpay-nonce", nonce),
        ("wechatpay-signature", signature),
        ("wechatpay-serial", serial),
    ] {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let _ = parser().parse_transaction(&headers, body);
});

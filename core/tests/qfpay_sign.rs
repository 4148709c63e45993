//! QFPay's request signature: the documented example of its "Signature Generation" page
//! (https://sdk.qfapi.com/docs/api-reference/signature-generation), whose MD5 was computed
//! independently of this crate (`hashlib.md5(b"mchid=ZaMVg12345&txamt=100&txcurrcd=HKDabcd1234")`),
//! and properties of the rule.
#![allow(clippy::unwrap_used)]

use md5::{Digest, Md5};
use proptest::prelude::*;
use wxpay_core::qfpay::sign::{sign, sign_body, signature_matches, string_to_sign};

/// MD5("mchid=ZaMVg12345&txamt=100&txcurrcd=HKDabcd1234"), upper-case hex.
const DOCUMENTED_SIGN: &str = "3CB3AA9C21D818AB4CAFAA8FA3FEACF4";

#[test]
fn the_documented_example() {
    let params = [
        ("txcurrcd", "HKD"),
        ("txamt", "100"),
        ("mchid", "ZaMVg12345"),
    ];
    assert_eq!(
        string_to_sign(params),
        "mchid=ZaMVg12345&txamt=100&txcurrcd=HKD"
    );
    assert_eq!(sign(params, "abcd1234"), DOCUMENTED_SIGN);
    // Empty values and a `sign` parameter are not signed.
    let padded = [
        ("txcurrcd", "HKD"),
        ("udid", ""),
        ("txamt", "100"),
        ("sign", "whatever"),
        ("mchid", "ZaMVg12345"),
    ];
    assert_eq!(sign(padded, "abcd1234"), DOCUMENTED_SIGN);
    assert_ne!(sign(params, "abcd1235"), DOCUMENTED_SIGN);
}

#[test]
fn seed_openid_flow_signs_the_raw_values() {
    // Seed 002's make_req_sign over {app_code, redirect_uri}: the URL is signed as is.
    let params = [
        ("app_code", "5D81D64E602043F7AF51CE0000000000"),
        ("redirect_uri", "http://49ae4dbd47a6.ngrok.io/getcode"),
    ];
    let text = "app_code=5D81D64E602043F7AF51CE0000000000\
                &redirect_uri=http://49ae4dbd47a6.ngrok.io/getcode";
    assert_eq!(string_to_sign(params), text);
    let digest = Md5::digest(format!("{text}KEY").as_bytes());
    let expected: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(sign(params, "KEY"), expected);
}

#[test]
fn body_signatures_cover_the_raw_bytes() {
    let digest = Md5::digest(b"{\"a\": 1}k");
    let expected: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(sign_body(b"{\"a\": 1}", "k"), expected);
    assert_ne!(sign_body(b"{\"a\":1}", "k"), expected);
    assert!(signature_matches(&expected, &expected));
    assert!(signature_matches(&expected, &expected.to_ascii_lowercase()));
    assert!(!signature_matches(&expected, &expected[..31]));
    assert!(!signature_matches(&expected, ""));
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::btree_map("[a-z_]{1,12}", "[ -~]{0,16}|[\\p{Han}]{1,4}", 0..12)
        .prop_map(|map| map.into_iter().collect())
}

proptest! {
    #[test]
    fn sign_is_independent_of_parameter_order(
        params in params(),
        seed in any::<u64>(),
        key in "[0-9A-F]{32}",
    ) {
        let mut shuffled = params.clone();
        // A deterministic shuffle driven by `seed`.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = usize::try_from(state % (i as u64 + 1)).unwrap();
            shuffled.swap(i, j);
        }
        let a = sign(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key);
        let b = sign(shuffled.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key);
        prop_assert_eq!(&a, &b);
        // And it is the MD5 of the sorted non-empty pairs with the key appended.
        let mut kept: Vec<&(String, String)> = params.iter().filter(|(_, v)| !v.is_empty()).collect();
        kept.sort();
        let text: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let digest = Md5::digest(format!("{}{key}", text.join("&")).as_bytes());
        let expected: String = digest.iter().map(|b| format!("{b:02X}")).collect();
        prop_assert_eq!(a, expected);
    }
}

//! The seed-001 gateway's `checkOpenSign`, ported: the seed's example callback, and vectors with
//! a known `app_key` whose expected digests were computed independently of this crate (a short
//! script following the Java listing: `String.split` semantics, `isNotBlank`, `TreeMap`, MD5).
#![allow(clippy::unwrap_used)]

use wxpay_core::gateway::sign::{signed_fields, source_text};
use wxpay_core::gateway::{AppKey, CallbackError, check_open_sign, open_sign, verify_callback};

const KEY: &str = "test_app_key_0123456789";

/// The callback example of seed 001, verbatim (its sign was made with the gateway's real
/// app_key, which we do not have).
const SEED_EXAMPLE: &str = "biz_content=%7B%22uid%22%3A%22102579%22%2C%22trade_id%22%3A%221501822040%22%2C%22total_amount%22%3A83601%2C%22trade_pay_time%22%3A%222025-03-08%2008%3A48%3A35%22%2C%22trade_status%22%3A%22SUCCESS%22%2C%22pay_type%22%3A%22113%22%2C%22callback_content%22%3A%22%3Cxml%3E%E7%95%A5%3C%2Fxml%3E%22%2C%22title%22%3A%22%E4%BA%91%E9%98%9F%E9%95%BF%E5%8C%BB%E8%8D%AF%E8%BF%9E%E9%94%81%E7%AE%A1%E7%90%86%E7%B3%BB%E7%BB%9F%22%2C%22biz_order_id%22%3A%2221-364535%22%7D&nonce_str=11961acffe074c7da556a18e8549027f&sign=5ec91e8d3f4feb4b3c273e5512a7d7c3&biz_id=ydrug&sign_type=MD5&version=1.0&client_id=yeshan&timestamp=1741394916159";

/// The seed example's source text under [`KEY`] and its MD5.
const SEED_SOURCE_TEXT: &str = "biz_content=%7B%22uid%22%3A%22102579%22%2C%22trade_id%22%3A%221501822040%22%2C%22total_amount%22%3A83601%2C%22trade_pay_time%22%3A%222025-03-08%2008%3A48%3A35%22%2C%22trade_status%22%3A%22SUCCESS%22%2C%22pay_type%22%3A%22113%22%2C%22callback_content%22%3A%22%3Cxml%3E%E7%95%A5%3C%2Fxml%3E%22%2C%22title%22%3A%22%E4%BA%91%E9%98%9F%E9%95%BF%E5%8C%BB%E8%8D%AF%E8%BF%9E%E9%94%81%E7%AE%A1%E7%90%86%E7%B3%BB%E7%BB%9F%22%2C%22biz_order_id%22%3A%2221-364535%22%7D&biz_id=ydrug&client_id=yeshan&nonce_str=11961acffe074c7da556a18e8549027f&sign_type=MD5&timestamp=1741394916159&version=1.0&app_key=test_app_key_0123456789";
const SEED_SIGN_UNDER_KEY: &str = "510d6635b2bdd95364ea64501e0ec43a";

/// Every edge case of the listing in one body: a URL-encoded value with `+`, `k=` (one part),
/// a raw `%20` (not blank: the value is not decoded), a whitespace-only value (blank), `k=a=b`
/// (three parts), `k=a=` (two parts: kept as `a`), `=v` (an empty key, kept), a key twice (the
/// last wins), an empty field, and `sign` twice (the first is the one compared).
const EDGE_BODY: &str = "b=2&a=%E4%B8%AD+x&empty=&blank=%20&ws= &eq=a=b&sign=56ff4485d78a163485b74d623e571cf9&trail=a=&=v&dup=1&dup=2&&sign=other";
const EDGE_SOURCE_TEXT: &str =
    "=v&a=%E4%B8%AD+x&b=2&blank=%20&dup=2&trail=a&app_key=test_app_key_0123456789";
const EDGE_SIGN: &str = "56ff4485d78a163485b74d623e571cf9";

/// No field at all: the text is just `&app_key=KEY`.
const EMPTY_SIGN: &str = "f539d4d7400afa60fc5590dcf5fbef57";

fn key() -> AppKey {
    AppKey::new(KEY).unwrap()
}

fn with_sign(body: &str, sign: &str) -> String {
    body.replace("5ec91e8d3f4feb4b3c273e5512a7d7c3", sign)
}

#[test]
fn seed_example_source_text_and_sign_under_a_known_key() {
    let fields = signed_fields(SEED_EXAMPLE);
    assert_eq!(fields.len(), 7);
    assert!(!fields.contains_key("sign"));
    assert_eq!(
        source_text(fields.clone(), &key()).as_str(),
        SEED_SOURCE_TEXT
    );
    assert_eq!(open_sign(fields, &key()), SEED_SIGN_UNDER_KEY);
    // Its published sign needs the gateway's real key: with ours it does not verify.
    assert!(!check_open_sign(
        &key(),
        "5ec91e8d3f4feb4b3c273e5512a7d7c3",
        SEED_EXAMPLE
    ));
    let resigned = with_sign(SEED_EXAMPLE, SEED_SIGN_UNDER_KEY);
    assert!(check_open_sign(&key(), SEED_SIGN_UNDER_KEY, &resigned));
}

#[test]
fn edge_cases_follow_the_java_listing() {
    let fields = signed_fields(EDGE_BODY);
    assert_eq!(
        source_text(fields.clone(), &key()).as_str(),
        EDGE_SOURCE_TEXT
    );
    assert_eq!(open_sign(fields, &key()), EDGE_SIGN);
    assert!(check_open_sign(&key(), EDGE_SIGN, EDGE_BODY));
    // Compared exactly, as Objects.equals does: upper-case hex is not the same string.
    assert!(!check_open_sign(
        &key(),
        &EDGE_SIGN.to_uppercase(),
        EDGE_BODY
    ));
    assert!(!check_open_sign(
        &AppKey::new("other").unwrap(),
        EDGE_SIGN,
        EDGE_BODY
    ));
    assert_eq!(open_sign(signed_fields(""), &key()), EMPTY_SIGN);
    assert_eq!(
        open_sign(signed_fields("sign=abc&x=&y=a=b"), &key()),
        EMPTY_SIGN
    );
}

#[test]
fn fields_the_listing_skips_can_be_added_without_breaking_the_sign_others_cannot() {
    let body = with_sign(SEED_EXAMPLE, SEED_SIGN_UNDER_KEY);
    // Skipped by the listing: blank values, three-part pairs, empty fields.
    for extra in ["&x=", "&x=%20", "&x= ", "&x=a=b", "&&"] {
        let extended = format!("{body}{extra}");
        if extra == "&x=%20" {
            // A raw %20 is not blank: it is signed, so adding it breaks the sign.
            assert!(verify_callback(extended.as_bytes(), &key()).is_err());
        } else {
            assert!(
                verify_callback(extended.as_bytes(), &key()).is_ok(),
                "{extra}"
            );
        }
    }
    // Signed: any other field, a changed value, a second biz_content.
    for tamper in [
        format!("{body}&x=1"),
        body.replace("83601", "1"),
        format!("{body}&biz_content=%7B%7D"),
        body.replace("biz_id=ydrug", "biz_id=other"),
    ] {
        assert_eq!(
            verify_callback(tamper.as_bytes(), &key()).unwrap_err(),
            CallbackError::BadSignature
        );
    }
    let unsigned = SEED_EXAMPLE.replace("&sign=5ec91e8d3f4feb4b3c273e5512a7d7c3", "");
    assert_eq!(
        verify_callback(unsigned.as_bytes(), &key()).unwrap_err(),
        CallbackError::MissingSign
    );
    assert_eq!(
        verify_callback(b"\xff\xfe", &key()).unwrap_err(),
        CallbackError::NotUtf8
    );
}

#[test]
fn verified_seed_example_reads_biz_content() {
    let body = with_sign(SEED_EXAMPLE, SEED_SIGN_UNDER_KEY);
    let verified = verify_callback(body.as_bytes(), &key()).unwrap();
    let content = &verified.biz_content;
    assert_eq!(content.uid.as_deref(), Some("102579"));
    assert_eq!(content.trade_id, "1501822040");
    assert_eq!(content.total_amount, 83601);
    assert_eq!(content.trade_status, "SUCCESS");
    assert_eq!(content.pay_type.as_deref(), Some("113"));
    assert_eq!(content.callback_content.as_deref(), Some("<xml>略</xml>"));
    assert_eq!(content.title.as_deref(), Some("云队长医药连锁管理系统"));
    assert_eq!(content.biz_order_id, "21-364535");
    assert_eq!(content.paid_at().unwrap().unix_timestamp(), 1_741_394_915);
    assert_eq!(verified.fields["biz_id"], "ydrug");
    assert_eq!(verified.fields["timestamp"], "1741394916159");
}

//! Any bytes as a QFPay notification body: the `X-QF-SIGN` check, then (with the body signed by
//! the test key, so the parser behind the check is reached too) the JSON fields and times.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wxpay_core::qfpay::notification::{SIGN_HEADER, verify_notification};
use wxpay_core::qfpay::sign::{ClientKey, sign_body};

fuzz_target!(|data: &[u8]| {
    let key = ClientKey::new("FUZZCLIENTKEY0123456789ABCDEF").expect("test key");
    let mut headers = HeaderMap::new();
    headers.insert(SIGN_HEADER, HeaderValue::from_static("00000000000000000000000000000000"));
    let _ = verify_notification(&headers, data, &key);
    let sign = sign_body(data, key.expose());
    headers.insert(SIGN_HEADER, HeaderValue::from_str(&sign).expect("hex"));
    if let Ok(notification) = verify_notification(&headers, data, &key) {
        let _ = notification.is_paid();
    }
});

//! Any bytes as a seed-001 gateway callback: form splitting, `checkOpenSign`, URL decoding and
//! the `biz_content` JSON. The body is also re-signed with the test key (a `sign` appended) so
//! that the parsing behind the signature check is reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay_core::gateway::callback::url_decode;
use wxpay_core::gateway::sign::signed_fields;
use wxpay_core::gateway::{AppKey, open_sign, verify_callback};

fuzz_target!(|data: &[u8]| {
    let key = AppKey::new("fuzz-app-key-0123456789").expect("test key");
    let _ = verify_callback(data, &key);
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let _ = url_decode(body);
    let sign = open_sign(signed_fields(body), &key);
    let signed = format!("{body}&sign={sign}");
    if let Ok(callback) = verify_callback(signed.as_bytes(), &key) {
        let _ = callback.biz_content.paid_at();
    }
});

//! Any bytes as a weidoufu callback: the JSON envelope and the `sign` check, then (with the bytes
//! wrapped as the content of a body signed by the test key, so the parser behind the check is
//! reached too) the typed fields and times.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay_core::weidoufu::sign::{SecretKey, callback_sign};
use wxpay_core::weidoufu::verify_callback;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::new("fuzz-secret-key-0123456789").expect("test key");
    let _ = verify_callback(data, &key);
    let Ok(content) = std::str::from_utf8(data) else {
        return;
    };
    let signed = format!(
        r#"{{"sign":"{}","content":{content}}}"#,
        callback_sign(content.as_bytes(), &key)
    );
    if let Ok(callback) = verify_callback(signed.as_bytes(), &key) {
        let _ = (callback.is_paid(), callback.paid_at());
    }
});

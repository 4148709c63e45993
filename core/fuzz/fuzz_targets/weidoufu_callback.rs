//! Any bytes as a weidoufu callback form: the `sign` check, then (with the fields re-signed by
//! the test key, so the parser behind the check is reached too) the typed fields and times.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay_core::weidoufu::sign::{SecretKey, sign};
use wxpay_core::weidoufu::verify_callback;

const ACCESS_KEY: &str = "fuzzaccesskey";

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::new("fuzz-secret-key-0123456789").expect("test key");
    let _ = verify_callback(data, &key, ACCESS_KEY);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(data)
        .filter(|(name, _)| name != "sign")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let signature = sign(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key);
    let mut signed = form_urlencoded::Serializer::new(String::new());
    for (name, value) in &pairs {
        signed.append_pair(name, value);
    }
    signed.append_pair("sign", &signature);
    if let Ok(callback) = verify_callback(signed.finish().as_bytes(), &key, ACCESS_KEY) {
        let _ = (callback.is_paid(), callback.paid_at());
    }
});

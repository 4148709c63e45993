//! Any bytes as an API v2 notification: the XML reader (no DTDs, no entities), then signature
//! detection and verification. Whatever parses is also re-signed with the test key (both
//! algorithms) so that the verified path past the signature check is reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay_core::v2::notification::{parse_time_end, verify_notification};
use wxpay_core::v2::sign::sign_params;
use wxpay_core::v2::{ApiKey, SignType, xml};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

fuzz_target!(|data: &[u8]| {
    let key = ApiKey::new(KEY).expect("test key");
    let _ = verify_notification(data, &key);
    let Ok(mut params) = xml::parse(data) else {
        return;
    };
    if let Some(time_end) = params.get("time_end") {
        let _ = parse_time_end(time_end);
    }
    params.remove("sign");
    params.insert("return_code".to_owned(), "SUCCESS".to_owned());
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let mut signed = params.clone();
        signed.insert("sign_type".to_owned(), sign_type.as_str().to_owned());
        let sign = sign_params(&signed, &key, sign_type);
        signed.insert("sign".to_owned(), sign);
        if let Ok(text) = xml::write(&signed) {
            let _ = verify_notification(text.as_bytes(), &key);
        }
    }
});

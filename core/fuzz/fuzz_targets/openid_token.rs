//! Any text as an openid token (a cookie or header value from the client): decoding, the MAC
//! check and the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use wxpay_core::openid::{OpenidToken, OpenidTokenKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = OpenidTokenKey::new(b"fuzz openid token key of 32 bytes!!".to_vec()).expect("key");
    let _ = OpenidToken::verify(&key, text, OffsetDateTime::UNIX_EPOCH, &["wechat:wxfuzz"]);
});

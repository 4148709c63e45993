//! Any bytes as a platform certificate (DER and PEM) and as a platform public key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay_core::v3::{PlatformCertificate, PlatformPublicKey};

fuzz_target!(|data: &[u8]| {
    let _ = PlatformCertificate::from_der(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PlatformCertificate::from_pem(text);
        let _ = PlatformPublicKey::from_pem("PUB_KEY_ID_1", text);
    }
});

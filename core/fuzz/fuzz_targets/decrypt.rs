//! Any resource fields through AEAD_AES_256_GCM decryption.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay_core::v3::{ApiV3Key, EncryptedResource};

fuzz_target!(|input: (String, String, Option<String>, String, [u8; 32])| {
    let (algorithm, ciphertext, associated_data, nonce, key) = input;
    let resource = EncryptedResource {
        algorithm,
        ciphertext,
        associated_data,
        nonce,
        original_type: None,
    };
    if let Ok(key) = ApiV3Key::new(key) {
        let _ = resource.decrypt(&key);
    }
});

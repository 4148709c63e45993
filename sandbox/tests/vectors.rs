//! The sandbox's own crypto checked against the published vectors in `testdata/vectors/`.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use wxpay_sandbox::crypto::{self, RsaSigner, RsaVerifier};
use wxpay_sandbox::v3::{authorization_message, response_message};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors/");

fn file(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}{name}")).unwrap()
}

fn vectors() -> Value {
    serde_json::from_str(&file("vectors.json")).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} missing"))
}

#[test]
fn rsa_sha256_signature_matches_and_verifies() {
    let v = &vectors()["rsa_sha256"];
    let signer = RsaSigner::from_pkcs8_pem(&file(s(v, "key"))).unwrap();
    // PKCS#1 v1.5 is deterministic: the sandbox produces the published signature exactly.
    assert_eq!(
        signer.sign_base64(s(v, "message").as_bytes()).unwrap(),
        s(v, "signature")
    );
    let verifier = RsaVerifier::from_pem(&file("test_pubkey.pem")).unwrap();
    verifier
        .verify_base64(s(v, "message").as_bytes(), s(v, "signature"))
        .unwrap();
    for wrong in v["must_not_verify"].as_array().unwrap() {
        assert!(
            verifier
                .verify_base64(wrong.as_str().unwrap().as_bytes(), s(v, "signature"))
                .is_err()
        );
    }
    // The certificates carry the same key.
    RsaVerifier::from_pem(&file("test_cert_D7CE59D1F522D701.pem"))
        .unwrap()
        .verify_base64(s(v, "message").as_bytes(), s(v, "signature"))
        .unwrap();
}

#[test]
fn authorization_messages_are_byte_exact() {
    let all = vectors();
    let list = all["authorization_message"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for v in list {
        let built = authorization_message(
            s(v, "method"),
            s(v, "url"),
            s(v, "timestamp"),
            s(v, "nonce"),
            s(v, "body").as_bytes(),
        );
        assert_eq!(built, s(v, "message").as_bytes());
    }
}

#[test]
fn aead_aes_256_gcm_decrypts_and_must_fail_cases_fail() {
    let v = &vectors()["aead_aes_256_gcm"];
    let key = s(v, "key").as_bytes();
    let plain = crypto::aes_256_gcm_decrypt(
        key,
        s(v, "nonce").as_bytes(),
        s(v, "associated_data").as_bytes(),
        s(v, "ciphertext"),
    )
    .unwrap();
    assert_eq!(plain, s(v, "plaintext").as_bytes());
    // Encryption is deterministic for a given nonce: the sandbox reproduces the vector.
    assert_eq!(
        crypto::aes_256_gcm_encrypt(
            key,
            s(v, "nonce").as_bytes(),
            s(v, "associated_data").as_bytes(),
            s(v, "plaintext").as_bytes(),
        )
        .unwrap(),
        s(v, "ciphertext")
    );
    let cases = v["must_fail"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let nonce = case["nonce"].as_str().unwrap_or(s(v, "nonce"));
        let ad = case["associated_data"]
            .as_str()
            .unwrap_or(s(v, "associated_data"));
        assert!(
            crypto::aes_256_gcm_decrypt(key, nonce.as_bytes(), ad.as_bytes(), s(v, "ciphertext"))
                .is_err(),
            "{case}"
        );
    }
}

#[test]
fn certificate_download_decrypts_to_the_published_certificate() {
    let v = &vectors()["certificate_download"];
    let enc = &v["encrypt_certificate"];
    assert_eq!(s(enc, "algorithm"), "AEAD_AES_256_GCM");
    let plain = crypto::aes_256_gcm_decrypt(
        s(v, "apiv3_key").as_bytes(),
        s(enc, "nonce").as_bytes(),
        s(enc, "associated_data").as_bytes(),
        s(enc, "ciphertext"),
    )
    .unwrap();
    let plain = String::from_utf8(plain).unwrap();
    assert_eq!(plain.trim(), file(s(v, "plaintext_file")).trim());
    // Its serial is the entry's serial_no.
    let der = crypto::pem_contents(&plain, "CERTIFICATE").unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.raw_serial_as_string().replace(':', "").to_uppercase(),
        s(v, "serial_no")
    );
}

/// Ignored: the published vector is defective. Its signature was not made with
/// `yansongda_cert.pem`'s key (OpenSSL reports "invalid padding" for the raw body, the body plus a
/// newline and the trimmed body, and it verifies with none of the other vector keys either);
/// yansongda/pay's own test stubs signature verification out, so it never checked. Kept so it
/// runs again once the vector is fixed: `cargo test -p wxpay-sandbox -- --ignored`.
#[test]
#[ignore = "vector defect: the signature is not by yansongda_cert.pem's key"]
fn escaped_slash_notification_verifies_over_raw_bytes() {
    let v = &vectors()["escaped_slash_notification"];
    let h = &v["headers"];
    let body = std::fs::read(format!("{DIR}{}", s(v, "body_file"))).unwrap();
    let message = response_message(s(h, "Wechatpay-Timestamp"), s(h, "Wechatpay-Nonce"), &body);
    let verifier = RsaVerifier::from_pem(&file(s(v, "verify_with"))).unwrap();
    verifier
        .verify_base64(&message, s(h, "Wechatpay-Signature"))
        .unwrap();
    // Re-serialised JSON (slashes unescaped) no longer verifies.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialised, body);
    let message = response_message(
        s(h, "Wechatpay-Timestamp"),
        s(h, "Wechatpay-Nonce"),
        &reserialised,
    );
    assert!(
        verifier
            .verify_base64(&message, s(h, "Wechatpay-Signature"))
            .is_err()
    );
}

#[test]
fn escaped_slash_body_differs_when_reserialised() {
    let v = &vectors()["escaped_slash_notification"];
    let body = std::fs::read(format!("{DIR}{}", s(v, "body_file"))).unwrap();
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialised, body, "raw bytes must be what is verified");
    assert!(body.windows(2).any(|w| w == b"\\/"));
}

#[test]
fn notification_aes128_signature_verifies() {
    let v = &vectors()["notification_aes128"];
    let h = &v["headers"];
    let body = std::fs::read(format!("{DIR}{}", s(v, "body_file"))).unwrap();
    let message = response_message(s(h, "Wechatpay-Timestamp"), s(h, "Wechatpay-Nonce"), &body);
    RsaVerifier::from_pem(&file(s(v, "verify_with")))
        .unwrap()
        .verify_base64(&message, s(h, "Wechatpay-Signature"))
        .unwrap();
}

#[test]
fn v2_sign_matches_the_published_md5_and_hmac_sha256() {
    use wxpay_sandbox::v2::{SignType, sign, string_to_sign, verify};
    let all = vectors();
    let v = &all["v2_sign"];
    let params: Vec<(&str, &str)> = v["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, val)| (k.as_str(), val.as_str().unwrap()))
        .collect();
    let key = s(v, "key");
    assert_eq!(
        string_to_sign(params.iter().copied(), key),
        s(v, "string_to_sign")
    );
    assert_eq!(
        sign(params.iter().copied(), key, SignType::Md5),
        s(v, "md5")
    );
    assert_eq!(
        sign(params.iter().copied(), key, SignType::HmacSha256),
        s(v, "hmac_sha256")
    );
    // Empty values and an existing `sign` do not take part; verification is case-insensitive.
    let mut with = params.clone();
    with.push(("empty", ""));
    with.push(("sign", s(v, "md5")));
    assert!(verify(with.iter().copied(), key, SignType::Md5));
    let lower = s(v, "md5").to_ascii_lowercase();
    with.pop();
    with.push(("sign", &lower));
    assert!(verify(with.iter().copied(), key, SignType::Md5));
    assert!(!verify(with.iter().copied(), key, SignType::HmacSha256));
    with.push(("device_info", "1001"));
    assert!(!verify(with.iter().copied(), key, SignType::Md5));
}

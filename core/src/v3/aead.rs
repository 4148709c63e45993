//! `AEAD_AES_256_GCM`: how WeChat Pay encrypts notification resources and downloaded
//! certificates with the API v3 key.
//!
//! The key is the 32-byte API v3 key, the nonce 12 bytes, the associated data the
//! `associated_data` field (possibly empty), and `ciphertext` is base64 of ciphertext ‖ 16-byte tag.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::credentials::ApiV3Key;

/// The only algorithm name API v3 uses.
pub const ALGORITHM: &str = "AEAD_AES_256_GCM";

/// The nonce length AEAD_AES_256_GCM takes here.
pub const NONCE_LEN: usize = 12;

/// The GCM tag length.
pub const TAG_LEN: usize = 16;

/// Ciphertexts longer than this are refused before decoding (a notification body is bounded
/// far below this anyway).
pub const MAX_CIPHERTEXT_BASE64_LEN: usize = 1 << 20;

/// Why a resource could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The algorithm is not `AEAD_AES_256_GCM`.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The nonce is not 12 bytes.
    #[error("nonce must be 12 bytes, got {0}")]
    NonceLength(usize),
    /// The ciphertext is not base64, or is too short to hold the tag, or too long.
    #[error("ciphertext is malformed")]
    MalformedCiphertext,
    /// Authentication failed: wrong key, tampered data, or wrong associated data.
    #[error("authentication tag mismatch")]
    Authentication,
}

/// An encrypted resource as it appears in notifications (`resource`) and certificate
/// downloads (`encrypt_certificate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedResource {
    /// `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// base64 of ciphertext ‖ tag.
    pub ciphertext: String,
    /// Associated data; absent means empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associated_data: Option<String>,
    /// The 12-byte nonce, as text.
    pub nonce: String,
    /// The type of the plaintext (`transaction`, `certificate`, …), in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_type: Option<String>,
}

impl EncryptedResource {
    /// Decrypts with the API v3 key, checking every field strictly.
    pub fn decrypt(&self, key: &ApiV3Key) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        if self.algorithm != ALGORITHM {
            return Err(DecryptError::UnsupportedAlgorithm(self.algorithm.clone()));
        }
        decrypt_aes_gcm::<Aes256Gcm>(
            key.expose(),
            self.nonce.as_bytes(),
            self.associated_data.as_deref().unwrap_or("").as_bytes(),
            &self.ciphertext,
        )
    }
}

/// AES-GCM decryption of a base64 ciphertext ‖ tag; generic over the key size so the published
/// AES-128 vector can exercise the same code in tests. Never panics.
pub(crate) fn decrypt_aes_gcm<C>(
    key: &[u8],
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext_base64: &str,
) -> Result<Zeroizing<Vec<u8>>, DecryptError>
where
    C: Aead + KeyInit + aes_gcm::aead::AeadCore<NonceSize = aes_gcm::aead::consts::U12>,
{
    if nonce.len() != NONCE_LEN {
        return Err(DecryptError::NonceLength(nonce.len()));
    }
    if ciphertext_base64.len() > MAX_CIPHERTEXT_BASE64_LEN {
        return Err(DecryptError::MalformedCiphertext);
    }
    let sealed = BASE64
        .decode(ciphertext_base64)
        .map_err(|_| DecryptError::MalformedCiphertext)?;
    if sealed.len() < TAG_LEN {
        return Err(DecryptError::MalformedCiphertext);
    }
    let cipher = C::new_from_slice(key).map_err(|_| DecryptError::Authentication)?;
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &sealed,
                aad: associated_data,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| DecryptError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_resource() -> (ApiV3Key, EncryptedResource) {
        (
            ApiV3Key::new("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb").unwrap(),
            EncryptedResource {
                algorithm: ALGORITHM.into(),
                ciphertext: "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=".into(),
                associated_data: Some("associatedData".into()),
                nonce: "uluk4a9R25RW".into(),
                original_type: None,
            },
        )
    }

    #[test]
    fn strict_field_checks() {
        let (key, resource) = vector_resource();
        assert_eq!(resource.decrypt(&key).unwrap().as_slice(), b"message");

        let mut other = resource.clone();
        other.algorithm = "AEAD_AES_128_GCM".into();
        assert!(matches!(
            other.decrypt(&key),
            Err(DecryptError::UnsupportedAlgorithm(_))
        ));

        let mut short = resource.clone();
        short.nonce = "uluk4a9R25R".into();
        assert_eq!(short.decrypt(&key), Err(DecryptError::NonceLength(11)));

        let mut tiny = resource.clone();
        tiny.ciphertext = "AAAA".into();
        assert_eq!(tiny.decrypt(&key), Err(DecryptError::MalformedCiphertext));

        let mut bad_b64 = resource;
        bad_b64.ciphertext = "not base64!".into();
        assert_eq!(
            bad_b64.decrypt(&key),
            Err(DecryptError::MalformedCiphertext)
        );
    }
}

//! The encrypted `req_info` of API v2 refund notifications.
//!
//! Official docs (退款结果通知, `chapter=9_16`): base64-decode `req_info`, then AES-256-ECB with
//! PKCS#7 padding, keyed with the lower-case hex MD5 of the API key (its 32 ASCII characters are
//! the 32 key bytes); the plaintext is a `<root>…</root>` XML document.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use super::sign::{ApiKey, md5_hex_lower};

/// A `req_info` that could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decrypt req_info: {0}")]
pub struct RefundDecryptError(String);

/// Decrypts a refund notification's `req_info` into its XML text.
pub fn decrypt_refund_req_info(req_info: &str, key: &ApiKey) -> Result<String, RefundDecryptError> {
    let mut data = BASE64
        .decode(req_info.trim())
        .map_err(|e| RefundDecryptError(format!("not base64: {e}")))?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(RefundDecryptError(format!(
            "{} bytes is not a whole number of AES blocks",
            data.len()
        )));
    }
    let aes_key = Zeroizing::new(md5_hex_lower(key.expose().as_bytes()));
    let cipher = Aes256::new_from_slice(aes_key.as_bytes())
        .map_err(|_| RefundDecryptError("bad key length".to_owned()))?;
    for block in data.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let pad = usize::from(*data.last().unwrap_or(&0));
    if pad == 0
        || pad > 16
        || !data[data.len() - pad..]
            .iter()
            .all(|b| usize::from(*b) == pad)
    {
        return Err(RefundDecryptError(
            "bad padding (wrong key or corrupted data)".to_owned(),
        ));
    }
    data.truncate(data.len() - pad);
    String::from_utf8(data).map_err(|_| RefundDecryptError("plaintext is not UTF-8".to_owned()))
}

//! QFPay signatures.
//!
//! - Requests (seed 002's `make_req_sign`; QFPay's "Signature Generation" page): the parameters
//!   sorted by name in ASCII order, `k=v` joined by `&`, the `client_key` appended directly (no
//!   separator), MD5, upper-case hex. QFPay's page adds: parameters with an empty value are left
//!   out, and the signature itself is never signed.
//! - Asynchronous notifications (QFPay's "Asynchronous Notifications" page): MD5 of the raw
//!   body bytes followed by the `client_key`, compared with the `X-QF-SIGN` header.

use std::fmt;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The `client_key` QFPay issues with the `app_code` (`WXPAY_QFPAY_CLIENT_KEY`): it keys every
/// request and notification signature. Its `Debug` prints nothing of it and its memory is wiped
/// on drop.
#[derive(Clone)]
pub struct ClientKey(Zeroizing<String>);

/// A client key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the QFPay client_key must be non-empty and without whitespace")]
pub struct ClientKeyError;

impl ClientKey {
    /// The key as QFPay issued it (32 upper-case hex characters in QFPay's examples; any
    /// non-blank text without whitespace is accepted).
    pub fn new(key: impl Into<String>) -> Result<Self, ClientKeyError> {
        let key = Zeroizing::new(key.into());
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(ClientKeyError);
        }
        Ok(Self(key))
    }

    /// The key itself (never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

/// The text QFPay signs for request parameters (without the key): sorted `k=v&…`, empty values
/// left out.
pub fn string_to_sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(name, value)| !value.is_empty() && *name != "sign")
        .collect();
    pairs.sort_unstable();
    let mut text = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            text.push('&');
        }
        text.push_str(name);
        text.push('=');
        text.push_str(value);
    }
    text
}

/// The `X-QF-SIGN` of request parameters: upper-case hex MD5 of [`string_to_sign`] followed by
/// the `client_key`.
pub fn sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, client_key: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(string_to_sign(params).as_bytes());
    hasher.update(client_key.as_bytes());
    hex_upper(&hasher.finalize())
}

/// The signature of a notification body: upper-case hex MD5 of the raw body followed by the
/// `client_key`.
pub fn sign_body(body: &[u8], client_key: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(body);
    hasher.update(client_key.as_bytes());
    hex_upper(&hasher.finalize())
}

/// Whether `presented` is `expected`, in constant time. Hex case is ignored: QFPay's examples
/// show upper case, its notification page does not say.
pub fn signature_matches(expected: &str, presented: &str) -> bool {
    let presented = presented.trim().to_ascii_uppercase();
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02X}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_skips_empty_and_appends_the_key_without_separator() {
        let params = [
            ("txcurrcd", "HKD"),
            ("mchid", "ZaMVg12345"),
            ("txamt", "100"),
            ("udid", ""),
        ];
        assert_eq!(
            string_to_sign(params),
            "mchid=ZaMVg12345&txamt=100&txcurrcd=HKD"
        );
        let mut hasher = Md5::new();
        hasher.update(b"mchid=ZaMVg12345&txamt=100&txcurrcd=HKDabcd1234");
        assert_eq!(sign(params, "abcd1234"), hex_upper(&hasher.finalize()));
    }

    #[test]
    fn client_keys_are_never_printed() {
        let key = ClientKey::new("abcd1234").unwrap();
        assert_eq!(format!("{key:?}"), "ClientKey(<redacted>)");
        assert_eq!(key.expose(), "abcd1234");
        assert!(ClientKey::new("").is_err());
        assert!(ClientKey::new("ab cd").is_err());
    }

    #[test]
    fn compares_ignoring_hex_case() {
        let expected = sign_body(b"{}", "k");
        assert!(signature_matches(&expected, &expected.to_ascii_lowercase()));
        assert!(!signature_matches(&expected, "00"));
    }
}

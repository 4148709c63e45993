//! weidoufu's `sign`, and the [`SecretKey`] that keys it.
//!
//! Seed 004 says only "签名结果(大写)" and links a 签名算法 page we could not read. **Our choice**
//! (pinned in the issue-8 contract, section B) is the WeChat Pay API v2 rule that weidoufu's field
//! names follow (<https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=4_3>):
//!
//! - every parameter with a non-empty value, except `sign` itself;
//! - sorted by name in ASCII (byte) order;
//! - written `k=v` with the plain values (not URL-encoded; integers in decimal), joined by `&`;
//! - then `&key=SECRET_KEY` appended;
//! - MD5 of the UTF-8 bytes, written in upper-case hex.
//!
//! [`crate::v2::sign`] implements the same rule but only over a 32-character WeChat API key;
//! weidoufu's secret key has no documented length, so the rule is restated here over
//! [`SecretKey`].

use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Parameters of a weidoufu message, sorted by name (byte order: the ASCII order of the rule).
pub type Params = BTreeMap<String, String>;

/// The name of the signature parameter, left out of what is signed.
pub const SIGN_FIELD: &str = "sign";

/// The `secret_key` (SK) of a weidoufu application, paired with its `access_key` (AK).
///
/// Its `Debug` prints nothing of it and its memory is wiped on drop.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

/// A secret key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the weidoufu secret_key must be non-empty printable ASCII without spaces")]
pub struct SecretKeyError;

impl SecretKey {
    /// The key as weidoufu issued it. An empty key, or one with spaces or characters outside
    /// printable ASCII (a mis-pasted value), is refused so that it fails at start-up rather than
    /// at the first signature.
    pub fn new(key: impl Into<String>) -> Result<Self, SecretKeyError> {
        let key = Zeroizing::new(key.into());
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretKeyError);
        }
        Ok(Self(key))
    }

    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The text that is hashed: `k=v&…&key=SECRET_KEY` over the non-empty parameters except `sign`.
///
/// It contains the key: never log it.
pub fn string_to_sign<'a, I>(params: I, key: &SecretKey) -> Zeroizing<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| *k != SIGN_FIELD && !v.is_empty())
        .collect();
    pairs.sort_unstable();
    let mut text = Zeroizing::new(String::new());
    for (k, v) in pairs {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('&');
    }
    text.push_str("key=");
    text.push_str(key.expose());
    text
}

/// The upper-case hex MD5 signature of `params`.
pub fn sign<'a, I>(params: I, key: &SecretKey) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let text = string_to_sign(params, key);
    let digest = Md5::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for byte in digest {
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// Signs a parameter map.
pub fn sign_params(params: &Params, key: &SecretKey) -> String {
    sign(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), key)
}

/// Whether `signature` is the signature of `params` (whose own `sign`, if any, is ignored),
/// compared in constant time.
///
/// Hex letters are accepted in either case: the rule writes upper case, and a lower-case
/// rendering of the same digest proves the same knowledge of the key (our choice, as
/// [`crate::v2::sign::verify`] does).
pub fn signature_matches(params: &Params, signature: &str, key: &SecretKey) -> bool {
    let expected = sign_params(params, key);
    let received = signature.to_ascii_uppercase();
    bool::from(expected.as_bytes().ct_eq(received.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> SecretKey {
        SecretKey::new("sk_test_0123456789").unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_values_and_sign_are_left_out_and_names_sorted() {
        let p = params(&[
            ("total_fee", "1"),
            ("body", "QQ 会员充值"),
            ("attach", ""),
            ("sign", "X"),
            ("Zeta", "z"),
        ]);
        let text = string_to_sign(p.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key());
        assert_eq!(
            text.as_str(),
            "Zeta=z&body=QQ 会员充值&total_fee=1&key=sk_test_0123456789"
        );
    }

    #[test]
    fn the_signature_is_upper_case_md5_and_verifies_in_either_case() {
        let p = params(&[("access_key", "ak"), ("total_fee", "1")]);
        // MD5("access_key=ak&total_fee=1&key=sk_test_0123456789"), computed apart.
        let expected = format!(
            "{:X}",
            Md5::digest(b"access_key=ak&total_fee=1&key=sk_test_0123456789")
        );
        let signature = sign_params(&p, &key());
        assert_eq!(signature, expected);
        assert_eq!(signature.len(), 32);
        assert!(signature_matches(&p, &signature, &key()));
        assert!(signature_matches(
            &p,
            &signature.to_ascii_lowercase(),
            &key()
        ));
        assert!(!signature_matches(&p, &signature[..31], &key()));
        let other = SecretKey::new("sk_other").unwrap();
        assert!(!signature_matches(&p, &signature, &other));
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        assert!(SecretKey::new("").is_err());
        assert!(SecretKey::new("a b").is_err());
        assert!(SecretKey::new("密钥").is_err());
        assert_eq!(format!("{:?}", key()), "SecretKey(<redacted>)");
    }
}

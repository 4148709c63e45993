//! weidoufu's two signatures, and the [`SecretKey`] that keys them.
//!
//! Seed 004 says only "签名结果(大写)" and links a 签名算法 page we could not read, so the rules
//! here are those of the public clients of the live service (`open.weidoufu.com`). Evidence:
//! the .NET client `hudingwen/MyDotnet` (`Controllers/Ns/PayController.cs`, its `PayCodeDto`
//! and `OrderNotifyMsg` types), whose callback code was fixed once and then kept unchanged.
//!
//! **Requests** ([`sign_params`]):
//! - every parameter with a non-empty value, except `sign` itself;
//! - sorted by name in ASCII (byte) order;
//! - written `k=v` with the plain values (not URL-encoded; integers in decimal), joined by `&`;
//! - then `&secret_key=SECRET_KEY` appended (that client's rule; an earlier guess of ours, the
//!   WeChat v2 `&key=`, is not what the service checks);
//! - MD5 of the UTF-8 bytes, written in upper-case hex.
//!
//! The one public refund call (a browser admin page) signs an unsorted string without the
//! secret, which nothing shows to work; refunds are signed like payments here.
//!
//! **Callbacks** ([`callback_sign`]): the body is `{"sign", "content": {…}}`, and `sign` is the
//! upper-case hex MD5 of the **lower-case hex text** of HMAC-SHA256(`secret_key`, content), the
//! content being the JSON text of `content`. We hash that text exactly as received (the client
//! re-serialises it, which gives the same bytes for the compact JSON the service sends). The
//! same client's first version took the MD5 of the raw 32 HMAC bytes instead; a callback signed
//! that way is accepted too ([`callback_signature_matches`]), as is a `content` sent as a JSON
//! string (that first version's type), whose string value is then what is hashed.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
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

/// The text that is hashed: `k=v&…&secret_key=SECRET_KEY` over the non-empty parameters except
/// `sign`.
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
    text.push_str("secret_key=");
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

fn hmac_sha256(content: &[u8], key: &SecretKey) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(content);
    mac.finalize().into_bytes().into()
}

fn md5_upper(data: &[u8]) -> String {
    let digest = Md5::digest(data);
    let mut out = String::with_capacity(32);
    for byte in digest {
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// A callback's `sign`: upper-case hex MD5 of the lower-case hex HMAC-SHA256 of `content` (the
/// JSON text of the callback's `content`) keyed by the secret key.
pub fn callback_sign(content: &[u8], key: &SecretKey) -> String {
    let mac = hmac_sha256(content, key);
    let mut hex = String::with_capacity(64);
    for byte in mac {
        hex.push_str(&format!("{byte:02x}"));
    }
    md5_upper(hex.as_bytes())
}

/// Whether `signature` signs `content` by [`callback_sign`], or by the variant that takes the
/// MD5 of the raw HMAC bytes; constant-time, hex letters in either case.
pub fn callback_signature_matches(content: &[u8], signature: &str, key: &SecretKey) -> bool {
    let received = signature.to_ascii_uppercase();
    let hex_form = callback_sign(content, key);
    let raw_form = md5_upper(&hmac_sha256(content, key));
    let hex_ok = hex_form.as_bytes().ct_eq(received.as_bytes());
    let raw_ok = raw_form.as_bytes().ct_eq(received.as_bytes());
    bool::from(hex_ok | raw_ok)
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
            "Zeta=z&body=QQ 会员充值&total_fee=1&secret_key=sk_test_0123456789"
        );
    }

    #[test]
    fn the_signature_is_upper_case_md5_and_verifies_in_either_case() {
        let p = params(&[("access_key", "ak"), ("total_fee", "1")]);
        // MD5("access_key=ak&total_fee=1&secret_key=sk_test_0123456789"), computed apart.
        let expected = format!(
            "{:X}",
            Md5::digest(b"access_key=ak&total_fee=1&secret_key=sk_test_0123456789")
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

    /// Seed 004's example payment, signed by the live rule; the expected value was computed apart
    /// (Python hashlib) from the text below.
    #[test]
    fn a_request_vector_from_the_seeds_example() {
        let p = params(&[
            ("access_key", "ak"),
            ("body", "QQ 会员充值"),
            ("notify_url", "http://www.your.com/notify_url"),
            ("out_order_no", "180901620895069445"),
            ("pay_type", "1"),
            ("total_fee", "1"),
        ]);
        let text = string_to_sign(p.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key());
        assert_eq!(
            text.as_str(),
            "access_key=ak&body=QQ 会员充值&notify_url=http://www.your.com/notify_url\
             &out_order_no=180901620895069445&pay_type=1&total_fee=1&secret_key=sk_test_0123456789"
        );
        assert_eq!(sign_params(&p, &key()), "D9CE6599AD1E8C43F5399D1354EFF715");
    }

    /// A callback content in the live field order, signed both ways; the expected values were
    /// computed apart (Python hmac/hashlib).
    #[test]
    fn callback_vectors() {
        let content = br#"{"mch_trade_no":"202105135513716648486662","out_order_no":"180901620895069445","transaction_id":"4200001234567890","total_fee":1,"attach":null,"trade_type":9,"pay_type":1,"bank_type":"OTHERS","pay_time":"2021-05-11 11:31:08","status":2,"nonce_str":"82aafec92844bd7b7575e5d642911ac9"}"#;
        assert_eq!(
            callback_sign(content, &key()),
            "92305F2C278B12B0ECE8B87AF9B958EE"
        );
        for accepted in [
            "92305F2C278B12B0ECE8B87AF9B958EE",
            "92305f2c278b12b0ece8b87af9b958ee",
            // The raw-bytes variant.
            "DC06CB8A46F7295C30AB03FF19B455C2",
        ] {
            assert!(
                callback_signature_matches(content, accepted, &key()),
                "{accepted}"
            );
        }
        assert!(!callback_signature_matches(
            content,
            "92305F2C278B12B0ECE8B87AF9B958EF",
            &key()
        ));
        let other = SecretKey::new("sk_other").unwrap();
        assert!(!callback_signature_matches(
            content,
            "92305F2C278B12B0ECE8B87AF9B958EE",
            &other
        ));
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        assert!(SecretKey::new("").is_err());
        assert!(SecretKey::new("a b").is_err());
        assert!(SecretKey::new("密钥").is_err());
        assert_eq!(format!("{:?}", key()), "SecretKey(<redacted>)");
    }
}

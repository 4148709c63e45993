//! API v2 signatures: the `sign` of requests, responses and notifications, and the JSAPI
//! `paySign`.
//!
//! The rule (official docs, 安全规范 / 签名算法, `chapter=4_3`): every parameter whose value is not
//! empty, except `sign` itself, sorted by key in ASCII order, written `k=v` and joined with `&`;
//! then `&key=API_KEY` is appended. The digest is MD5 of that string, or HMAC-SHA256 of it keyed
//! with the API key; either is written in upper-case hex. Values are signed as they stand (not
//! URL-encoded, not trimmed).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Parameters of an API v2 message, sorted by key (byte order, which is the ASCII order the
/// signature rule asks for).
pub type Params = BTreeMap<String, String>;

/// The API key (API密钥) of an API v2 merchant: 32 characters set in the merchant platform.
///
/// Its `Debug` prints nothing of it and its memory is wiped on drop.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

/// An API key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the API v2 key must be 32 printable ASCII characters without spaces ({reason})")]
pub struct ApiKeyError {
    reason: String,
}

impl ApiKey {
    /// The key as set in the merchant platform. The official docs make it 32 characters; any
    /// other length, or a character outside printable ASCII, is refused so that a truncated or
    /// mis-pasted key fails at start-up rather than at the first signature.
    pub fn new(key: impl Into<String>) -> Result<Self, ApiKeyError> {
        let key = Zeroizing::new(key.into());
        if key.len() != 32 {
            return Err(ApiKeyError {
                reason: format!("got {} bytes", key.len()),
            });
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiKeyError {
                reason: "found a character that is not printable ASCII".to_owned(),
            });
        }
        Ok(Self(key))
    }

    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The signature algorithm of API v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignType {
    /// `MD5`: the default when a message names none.
    #[default]
    Md5,
    /// `HMAC-SHA256`.
    HmacSha256,
}

impl SignType {
    /// The wire spelling: `MD5` or `HMAC-SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// The length of a signature in hex.
    pub fn hex_len(self) -> usize {
        match self {
            SignType::Md5 => 32,
            SignType::HmacSha256 => 64,
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sign type that is neither `MD5` nor `HMAC-SHA256`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sign_type {0:?} (expected MD5 or HMAC-SHA256)")]
pub struct UnknownSignType(pub String);

impl FromStr for SignType {
    type Err = UnknownSignType;

    /// `MD5` or `HMAC-SHA256` (ASCII case-insensitive, as the env contract is typed by hand).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(SignType::Md5)
        } else if s.eq_ignore_ascii_case("HMAC-SHA256") {
            Ok(SignType::HmacSha256)
        } else {
            Err(UnknownSignType(s.to_owned()))
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The message has no `sign`.
    #[error("the message has no sign")]
    Missing,
    /// The message names a `sign_type` this crate does not know.
    #[error(transparent)]
    UnknownType(#[from] UnknownSignType),
    /// The signature has neither the length of an MD5 (32 hex) nor of an HMAC-SHA256 (64 hex).
    #[error("the sign has {0} characters: neither MD5 (32) nor HMAC-SHA256 (64)")]
    BadLength(usize),
    /// The signature is not the one the API key gives.
    #[error("the sign does not match")]
    Mismatch,
}

/// The string that is signed: `k=v&…&key=API_KEY` over the non-empty parameters except `sign`.
///
/// It contains the key: never log it.
pub fn string_to_sign<'a, I>(params: I, key: &ApiKey) -> Zeroizing<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_unstable();
    let mut out = Zeroizing::new(String::new());
    for (k, v) in pairs {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('&');
    }
    out.push_str("key=");
    out.push_str(key.expose());
    out
}

/// The upper-case hex signature of `params` (entries with an empty value and `sign` are left
/// out).
pub fn sign<'a, I>(params: I, key: &ApiKey, sign_type: SignType) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let text = string_to_sign(params, key);
    let digest = match sign_type {
        SignType::Md5 => Md5::digest(text.as_bytes()).to_vec(),
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(text.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    hex_upper(&digest)
}

/// Signs a parameter map.
pub fn sign_params(params: &Params, key: &ApiKey, sign_type: SignType) -> String {
    sign(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        key,
        sign_type,
    )
}

/// The algorithm a signed message was signed with: its `sign_type` field when present, else
/// the length of its `sign` (32 hex characters = MD5, 64 = HMAC-SHA256).
pub fn detect_sign_type(params: &Params) -> Result<SignType, SignError> {
    let signature = params.get("sign").ok_or(SignError::Missing)?;
    let named = match params.get("sign_type").map(String::as_str) {
        Some("MD5") => Some(SignType::Md5),
        Some("HMAC-SHA256") => Some(SignType::HmacSha256),
        None | Some("") => None,
        Some(other) => return Err(UnknownSignType(other.to_owned()).into()),
    };
    let by_length = match signature.len() {
        32 => SignType::Md5,
        64 => SignType::HmacSha256,
        other => return Err(SignError::BadLength(other)),
    };
    match named {
        // A sign whose length contradicts its sign_type cannot match; say so plainly.
        Some(named) if named != by_length => Err(SignError::Mismatch),
        _ => Ok(by_length),
    }
}

/// Verifies the `sign` of a received message, detecting the algorithm with
/// [`detect_sign_type`], comparing in constant time (hex letters in either case).
pub fn verify(params: &Params, key: &ApiKey) -> Result<SignType, SignError> {
    let sign_type = detect_sign_type(params)?;
    let received = params
        .get("sign")
        .ok_or(SignError::Missing)?
        .to_ascii_uppercase();
    let expected = sign_params(params, key, sign_type);
    if bool::from(expected.as_bytes().ct_eq(received.as_bytes())) {
        Ok(sign_type)
    } else {
        Err(SignError::Mismatch)
    }
}

/// Lower-case hex MD5 of `data`.
pub(crate) fn md5_hex_lower(data: &[u8]) -> String {
    hex_lower(&Md5::digest(data))
}

fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    hex_upper(bytes).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> ApiKey {
        ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_values_and_sign_are_left_out_and_keys_sorted() {
        let p = params(&[("b", "2"), ("a", "1"), ("c", ""), ("sign", "X")]);
        let text = string_to_sign(p.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key());
        assert_eq!(
            text.as_str(),
            "a=1&b=2&key=192006250b4c09247ec02edce69f6a2d"
        );
    }

    /// WeChat's rule joins raw values: an attach holding `&` and `=` is signed as is (no
    /// escaping), and survives the XML round trip so the signature still verifies. The
    /// expected signatures were computed apart (Python hashlib/hmac over the same text).
    #[test]
    fn values_with_ampersands_and_equals_are_signed_raw() {
        let p = params(&[
            ("appid", "wxd930ea5d5a258f4f"),
            ("attach", "cart=42&note=测试"),
            ("body", "test"),
            ("mch_id", "10000100"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        let text = string_to_sign(p.iter().map(|(k, v)| (k.as_str(), v.as_str())), &key());
        assert_eq!(
            text.as_str(),
            "appid=wxd930ea5d5a258f4f&attach=cart=42&note=测试&body=test&mch_id=10000100\
             &nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d"
        );
        assert_eq!(
            sign_params(&p, &key(), SignType::Md5),
            "C6EE692414BB6A75087DA68438598C54"
        );
        assert_eq!(
            sign_params(&p, &key(), SignType::HmacSha256),
            "526F0E5BE32670EAFDD31096964A88E2748018B5E4F8851BB4654F5D7B43490A"
        );
        let mut signed = p.clone();
        signed.insert("sign".into(), sign_params(&p, &key(), SignType::Md5));
        let parsed =
            crate::v2::xml::parse(crate::v2::xml::write(&signed).unwrap().as_bytes()).unwrap();
        assert_eq!(parsed["attach"], "cart=42&note=测试");
        assert_eq!(verify(&parsed, &key()), Ok(SignType::Md5));
    }

    #[test]
    fn verify_detects_the_algorithm_and_accepts_lower_case_hex() {
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            // Without sign_type: detected by the length of the sign.
            let mut p = params(&[("appid", "wx1"), ("total_fee", "1")]);
            let s = sign_params(&p, &key(), sign_type);
            p.insert("sign".into(), s.to_ascii_lowercase());
            assert_eq!(verify(&p, &key()), Ok(sign_type));
            // With sign_type, which is signed like any other field.
            let mut p = params(&[("appid", "wx1"), ("sign_type", sign_type.as_str())]);
            let s = sign_params(&p, &key(), sign_type);
            p.insert("sign".into(), s);
            assert_eq!(verify(&p, &key()), Ok(sign_type));
        }
    }

    #[test]
    fn verify_refuses_tampering_and_odd_signatures() {
        let mut p = params(&[("appid", "wx1"), ("total_fee", "1")]);
        p.insert("sign".into(), sign_params(&p, &key(), SignType::Md5));
        let mut tampered = p.clone();
        tampered.insert("total_fee".into(), "2".into());
        assert_eq!(verify(&tampered, &key()), Err(SignError::Mismatch));
        let mut named_wrong = p.clone();
        named_wrong.insert("sign_type".into(), "HMAC-SHA256".into());
        assert_eq!(verify(&named_wrong, &key()), Err(SignError::Mismatch));
        let mut unknown = p.clone();
        unknown.insert("sign_type".into(), "SHA1".into());
        assert!(matches!(
            verify(&unknown, &key()),
            Err(SignError::UnknownType(_))
        ));
        let mut short = p.clone();
        short.insert("sign".into(), "ABC".into());
        assert_eq!(verify(&short, &key()), Err(SignError::BadLength(3)));
        p.remove("sign");
        assert_eq!(verify(&p, &key()), Err(SignError::Missing));
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        assert!(ApiKey::new("short").is_err());
        assert!(ApiKey::new("192006250b4c09247ec02edce69f6a2 ").is_err());
        assert_eq!(format!("{:?}", key()), "ApiKey(<redacted>)");
        assert_eq!("hmac-sha256".parse::<SignType>(), Ok(SignType::HmacSha256));
        assert!("SHA1".parse::<SignType>().is_err());
    }
}

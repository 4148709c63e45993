//! The API v2 signature: every non-empty parameter except `sign`, sorted by key, joined as
//! `k=v&…`, then `&key=API_KEY`; MD5 or HMAC-SHA256 (keyed with the API key), upper-case hex.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// The v2 signature algorithms (`sign_type` / JSAPI `signType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignType {
    /// `MD5`, the default when `sign_type` is absent.
    #[default]
    Md5,
    /// `HMAC-SHA256`.
    HmacSha256,
}

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// Parses the wire name (exactly `MD5` or `HMAC-SHA256`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MD5" => Some(Self::Md5),
            "HMAC-SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
}

impl std::fmt::Display for SignType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string to sign: non-empty pairs except `sign`, sorted by key (byte order), `k=v`
/// joined by `&`, then `&key=API_KEY`.
pub fn string_to_sign<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    api_key: &str,
) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_unstable();
    let mut s = String::new();
    for (k, v) in pairs {
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('&');
    }
    s.push_str("key=");
    s.push_str(api_key);
    s
}

/// Upper-case hex.
pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Signs `params` with `api_key`: upper-case hex MD5 or HMAC-SHA256 of [`string_to_sign`].
pub fn sign<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    api_key: &str,
    sign_type: SignType,
) -> String {
    let text = string_to_sign(params, api_key);
    match sign_type {
        SignType::Md5 => hex_upper(&Md5::digest(text.as_bytes())),
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(api_key.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(text.as_bytes());
            hex_upper(&mac.finalize().into_bytes())
        }
    }
}

/// Constant-time string equality (the length is not secret).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `params` carries a valid `sign` (compared upper-case, in constant time).
pub fn verify<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    api_key: &str,
    sign_type: SignType,
) -> bool {
    let Some(given) = params
        .clone()
        .into_iter()
        .find(|(k, _)| *k == "sign")
        .map(|(_, v)| v.to_ascii_uppercase())
    else {
        return false;
    };
    ct_eq(&sign(params, api_key, sign_type), &given)
}

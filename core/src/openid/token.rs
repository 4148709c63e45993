//! Signed, expiring openid tokens, and the sealing they share with the OAuth state cookie.
//!
//! OUR CHOICE (no public standard applies; the one place this format is defined): a sealed
//! value is `BASE64URL(payload JSON) "." BASE64URL(HMAC-SHA256(key, PURPOSE "\n" BASE64URL(payload)))`,
//! without padding, so it is safe in a cookie, a header and a URL. The purpose label keeps an
//! OAuth state from ever passing as an openid token, and the other way round. A token's payload
//! is `{"v":1,"sub":openid,"aud":binding,"exp":unix_seconds}`: readable by whoever holds it
//! (it only says who they are), unforgeable without the server key, compared in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::fields::OpenId;

/// The shortest server key accepted: 32 bytes, the HMAC-SHA256 output size.
pub const MIN_KEY_BYTES: usize = 32;

/// The longest sealed value looked at; anything longer is refused before any work.
pub const MAX_SEALED_BYTES: usize = 2048;

const TOKEN_VERSION: u8 = 1;

/// The server key that signs openid tokens and OAuth states (`WXPAY_OPENID_TOKEN_KEY`). Its
/// `Debug` prints nothing of it and its memory is wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OpenidTokenKey(Vec<u8>);

/// A key shorter than [`MIN_KEY_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the openid token key must be at least {MIN_KEY_BYTES} bytes, got {0}")]
pub struct KeyTooShort(pub usize);

impl OpenidTokenKey {
    /// A key from secret bytes (at least [`MIN_KEY_BYTES`]); an environment variable's text is
    /// taken as its UTF-8 bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyTooShort> {
        let mut bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            let len = bytes.len();
            bytes.zeroize();
            return Err(KeyTooShort(len));
        }
        Ok(Self(bytes))
    }

    /// A fresh random key of 32 bytes. Tokens it signs do not survive a restart and are not
    /// accepted by other instances: for development, or a single process.
    ///
    /// # Panics
    /// Only if the operating system cannot provide random bytes.
    pub fn generate() -> Self {
        use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
        let mut bytes = vec![0u8; MIN_KEY_BYTES];
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the operating system's random source failed");
        Self(bytes)
    }

    fn mac(&self, purpose: Purpose, encoded_payload: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.label());
        mac.update(b"\n");
        mac.update(encoded_payload.as_bytes());
        mac
    }
}

impl fmt::Debug for OpenidTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpenidTokenKey(<redacted>)")
    }
}

/// What a sealed value is for: part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// An openid token.
    Token,
    /// An OAuth state cookie.
    State,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Token => b"wxpay-openid-token-v1",
            Purpose::State => b"wxpay-openid-state-v1",
        }
    }
}

/// Why a token (or state) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a sealed value of ours (shape, encoding, size or payload).
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match: tampered with, or signed with another key.
    #[error("the token's signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Issued for another app or provider than this server accepts.
    #[error("the token was issued for another app")]
    ForeignBinding,
}

/// Seals `payload` with `key` for `purpose`.
pub(crate) fn seal<T: Serialize>(key: &OpenidTokenKey, purpose: Purpose, payload: &T) -> String {
    let json = serde_json::to_vec(payload).unwrap_or_default();
    let encoded = URL_SAFE_NO_PAD.encode(json);
    let tag = key.mac(purpose, &encoded).finalize().into_bytes();
    format!("{encoded}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Opens a value sealed by [`seal`] with the same key and purpose: the signature is checked
/// (in constant time) before the payload is parsed.
pub(crate) fn open<T: DeserializeOwned>(
    key: &OpenidTokenKey,
    purpose: Purpose,
    sealed: &str,
) -> Result<T, TokenError> {
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(TokenError::Malformed);
    }
    let (encoded, tag) = sealed.split_once('.').ok_or(TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TokenError::Malformed)?;
    key.mac(purpose, encoded)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

#[derive(Serialize, Deserialize)]
struct TokenPayload {
    v: u8,
    sub: String,
    aud: String,
    exp: i64,
}

/// A verified openid token: who the payer is, for which app, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenidToken {
    /// The payer's openid.
    pub openid: OpenId,
    /// What the openid was resolved for (see [`super::OpenidResolver::binding`]).
    pub binding: String,
    /// When the token stops being accepted.
    pub expires_at: OffsetDateTime,
}

impl OpenidToken {
    /// Signs a token for `openid` under `binding`, valid until `expires_at`.
    pub fn issue(
        key: &OpenidTokenKey,
        openid: &OpenId,
        binding: &str,
        expires_at: OffsetDateTime,
    ) -> String {
        seal(
            key,
            Purpose::Token,
            &TokenPayload {
                v: TOKEN_VERSION,
                sub: openid.as_str().to_owned(),
                aud: binding.to_owned(),
                exp: expires_at.unix_timestamp(),
            },
        )
    }

    /// Verifies `token` at `now`: our signature, not expired, and bound to one of
    /// `accepted_bindings`.
    pub fn verify(
        key: &OpenidTokenKey,
        token: &str,
        now: OffsetDateTime,
        accepted_bindings: &[&str],
    ) -> Result<OpenidToken, TokenError> {
        let payload: TokenPayload = open(key, Purpose::Token, token)?;
        if payload.v != TOKEN_VERSION {
            return Err(TokenError::Malformed);
        }
        if payload.exp <= now.unix_timestamp() {
            return Err(TokenError::Expired);
        }
        if !accepted_bindings.contains(&payload.aud.as_str()) {
            return Err(TokenError::ForeignBinding);
        }
        let openid = OpenId::try_from(payload.sub).map_err(|_| TokenError::Malformed)?;
        let expires_at =
            OffsetDateTime::from_unix_timestamp(payload.exp).map_err(|_| TokenError::Malformed)?;
        Ok(OpenidToken {
            openid,
            binding: payload.aud,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> OpenidTokenKey {
        OpenidTokenKey::new(vec![byte; 32]).unwrap()
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    #[test]
    fn short_keys_are_refused_and_the_key_is_redacted() {
        assert_eq!(
            OpenidTokenKey::new(vec![1u8; 31]).unwrap_err(),
            KeyTooShort(31)
        );
        assert_eq!(format!("{:?}", key(7)), "OpenidTokenKey(<redacted>)");
        assert_ne!(
            OpenidTokenKey::generate().0,
            OpenidTokenKey::generate().0,
            "random keys"
        );
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_only_for_its_binding() {
        let openid = OpenId::try_from("oUser_1").unwrap();
        let token = OpenidToken::issue(&key(1), &openid, "wechat:wx1", at(1_000));
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
        let verified = OpenidToken::verify(&key(1), &token, at(999), &["wechat:wx1"]).unwrap();
        assert_eq!(verified.openid, openid);
        assert_eq!(verified.binding, "wechat:wx1");
        assert_eq!(verified.expires_at, at(1_000));
        assert_eq!(
            OpenidToken::verify(&key(1), &token, at(1_000), &["wechat:wx1"]),
            Err(TokenError::Expired)
        );
        assert_eq!(
            OpenidToken::verify(&key(1), &token, at(0), &["wechat:wx2"]),
            Err(TokenError::ForeignBinding)
        );
        assert_eq!(
            OpenidToken::verify(&key(2), &token, at(0), &["wechat:wx1"]),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_tokens_and_states_posing_as_tokens_are_refused() {
        let openid = OpenId::try_from("oUser_1").unwrap();
        let token = OpenidToken::issue(&key(1), &openid, "b", at(1_000));
        let (payload, tag) = token.split_once('.').unwrap();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"v":1,"sub":"oOther","aud":"b","exp":1000}"#);
        for forged in [
            format!("{forged_payload}.{tag}"),
            format!("{payload}.{}", &tag[1..]),
            format!("{payload}x.{tag}"),
            payload.to_owned(),
            String::new(),
            "a".repeat(MAX_SEALED_BYTES + 1),
        ] {
            assert!(
                OpenidToken::verify(&key(1), &forged, at(0), &["b"]).is_err(),
                "{forged}"
            );
        }
        let state = seal(
            &key(1),
            Purpose::State,
            &TokenPayload {
                v: 1,
                sub: "oUser_1".into(),
                aud: "b".into(),
                exp: 1_000,
            },
        );
        assert_eq!(
            OpenidToken::verify(&key(1), &state, at(0), &["b"]),
            Err(TokenError::BadSignature)
        );
    }
}

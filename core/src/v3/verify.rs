//! Verification of WeChat Pay's signatures on responses and notifications.
//!
//! WeChat Pay signs `TIMESTAMP\nNONCE\nRAW_BODY\n` with the key named by `Wechatpay-Serial`:
//! the platform public key (`PUB_KEY_ID_…`, public-key mode) or a platform certificate (hex
//! serial, certificate mode). A merchant migrating between the two trusts both at once.
//! Verification always runs on the raw bytes received, never on re-serialised JSON.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use time::OffsetDateTime;

use super::certificate::{PUBLIC_KEY_ID_PREFIX, PlatformCertificate, PlatformPublicKey};
use super::credentials::ConfigError;

/// How far a signature's timestamp may be from our clock, in seconds (exclusive).
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 300;

/// Signatures with this prefix are probes WeChat Pay sends to check that merchants verify
/// signatures: they must fail verification.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// The signature algorithm WeChat Pay names in `Wechatpay-Signature-Type`.
pub const SIGNATURE_TYPE: &str = "WECHATPAY2-SHA256-RSA2048";

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A signature header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A signature header is not visible ASCII or is too long.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// `Wechatpay-Signature-Type` names an algorithm we do not accept.
    #[error("unsupported signature type")]
    UnsupportedSignatureType,
    /// `Wechatpay-Timestamp` is not a decimal number of seconds.
    #[error("Wechatpay-Timestamp is not a number")]
    MalformedTimestamp,
    /// The timestamp is 300 s or more away from our clock: a replay or a badly wrong clock.
    #[error("timestamp {timestamp} is outside the ±300 s window around {now}")]
    StaleTimestamp {
        /// The timestamp received.
        timestamp: i64,
        /// Our clock.
        now: i64,
    },
    /// A `WECHATPAY/SIGNTEST/` probe: WeChat Pay checking that we refuse bad signatures.
    #[error("signature probe (WECHATPAY/SIGNTEST), refused as WeChat Pay expects")]
    Probe,
    /// No trusted key has this serial or id.
    #[error("no trusted platform key has serial {0}")]
    UnknownSerial(String),
    /// The platform certificate with this serial is outside its validity period.
    #[error("platform certificate {0} is expired or not yet valid")]
    CertificateNotValid(String),
    /// The signature is not base64.
    #[error("Wechatpay-Signature is not base64")]
    MalformedSignature,
    /// The signature does not match the message.
    #[error("signature does not match")]
    BadSignature,
}

impl VerifyError {
    /// Whether this was a deliberate `WECHATPAY/SIGNTEST/` probe rather than an attack or a bug.
    pub fn is_probe(&self) -> bool {
        matches!(self, Self::Probe)
    }
}

/// The signature headers of a response or notification.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Wechatpay-Timestamp`, as received.
    pub timestamp: String,
    /// `Wechatpay-Nonce`.
    pub nonce: String,
    /// `Wechatpay-Signature` (base64).
    pub signature: String,
    /// `Wechatpay-Serial`: a certificate serial or a `PUB_KEY_ID_…`.
    pub serial: String,
    /// `Wechatpay-Signature-Type`, when present.
    pub signature_type: Option<String>,
}

impl fmt::Debug for SignatureHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A full signature is never logged: its first characters are enough to correlate.
        let prefix: String = self.signature.chars().take(8).collect();
        f.debug_struct("SignatureHeaders")
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .field("signature", &format_args!("{prefix}…"))
            .field("serial", &self.serial)
            .field("signature_type", &self.signature_type)
            .finish()
    }
}

/// Header values longer than this are refused before any work is done on them.
const MAX_HEADER_LEN: usize = 1024;

impl SignatureHeaders {
    /// Reads the `Wechatpay-*` headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, VerifyError> {
        Ok(Self {
            timestamp: header(headers, "wechatpay-timestamp", "Wechatpay-Timestamp")?,
            nonce: header(headers, "wechatpay-nonce", "Wechatpay-Nonce")?,
            signature: header(headers, "wechatpay-signature", "Wechatpay-Signature")?,
            serial: header(headers, "wechatpay-serial", "Wechatpay-Serial")?,
            signature_type: match header(
                headers,
                "wechatpay-signature-type",
                "Wechatpay-Signature-Type",
            ) {
                Ok(value) => Some(value),
                Err(VerifyError::MissingHeader(_)) => None,
                Err(other) => return Err(other),
            },
        })
    }
}

fn header(headers: &HeaderMap, key: &str, name: &'static str) -> Result<String, VerifyError> {
    let value = headers.get(key).ok_or(VerifyError::MissingHeader(name))?;
    let text = value
        .to_str()
        .map_err(|_| VerifyError::MalformedHeader(name))?;
    if text.is_empty() || text.len() > MAX_HEADER_LEN {
        return Err(VerifyError::MalformedHeader(name));
    }
    Ok(text.to_owned())
}

/// The message a platform signature covers: `TIMESTAMP\nNONCE\nBODY\n`.
pub fn platform_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(nonce.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// Checks that `der` is an RSA public key (SubjectPublicKeyInfo or PKCS#1) we can verify with.
pub(crate) fn check_rsa_public_key(der: &[u8]) -> Result<(), String> {
    ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
        .map(|_| ())
        .map_err(|e| format!("not an RSA public key of 2048 to 8192 bits: {e}"))
}

/// Verifies an RSA-SHA256 (PKCS#1 v1.5) signature given in base64.
pub fn verify_rsa_sha256(
    public_key: &ParsedPublicKey,
    message: &[u8],
    signature_base64: &str,
) -> Result<(), VerifyError> {
    let signature = BASE64
        .decode(signature_base64)
        .map_err(|_| VerifyError::MalformedSignature)?;
    public_key
        .verify_sig(message, &signature)
        .map_err(|_| VerifyError::BadSignature)
}

#[derive(Clone)]
struct TrustedCertificate {
    certificate: PlatformCertificate,
    key: ParsedPublicKey,
}

/// The platform keys we trust: a public key, platform certificates, or both.
///
/// Cheap to share (`Arc` inside); certificates can be added while requests are verified.
#[derive(Clone)]
pub struct PlatformTrust {
    inner: Arc<TrustInner>,
}

struct TrustInner {
    public_key: Option<(PlatformPublicKey, ParsedPublicKey)>,
    certificate_mode: bool,
    certificates: RwLock<HashMap<String, TrustedCertificate>>,
}

impl fmt::Debug for PlatformTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformTrust")
            .field("public_key_id", &self.public_key_id())
            .field("certificate_mode", &self.inner.certificate_mode)
            .field("certificate_serials", &self.certificate_serials())
            .finish()
    }
}

impl PlatformTrust {
    /// Public-key mode: trust the platform public key only.
    pub fn public_key(key: PlatformPublicKey) -> Result<Self, ConfigError> {
        Self::build(Some(key), false, Vec::new())
    }

    /// Certificate mode: trust platform certificates (given now or downloaded later).
    pub fn certificates(
        certificates: impl IntoIterator<Item = PlatformCertificate>,
    ) -> Result<Self, ConfigError> {
        Self::build(None, true, certificates.into_iter().collect())
    }

    /// Both at once, for merchants migrating from certificates to the public key.
    pub fn public_key_and_certificates(
        key: PlatformPublicKey,
        certificates: impl IntoIterator<Item = PlatformCertificate>,
    ) -> Result<Self, ConfigError> {
        Self::build(Some(key), true, certificates.into_iter().collect())
    }

    fn build(
        public_key: Option<PlatformPublicKey>,
        certificate_mode: bool,
        certificates: Vec<PlatformCertificate>,
    ) -> Result<Self, ConfigError> {
        let public_key = public_key
            .map(|key| {
                ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.spki_der())
                    .map(|parsed| (key, parsed))
                    .map_err(|e| ConfigError::PublicKey(e.to_string()))
            })
            .transpose()?;
        let trust = Self {
            inner: Arc::new(TrustInner {
                public_key,
                certificate_mode,
                certificates: RwLock::new(HashMap::new()),
            }),
        };
        for certificate in certificates {
            trust.add_certificate(certificate)?;
        }
        Ok(trust)
    }

    /// Adds (or replaces) a trusted platform certificate.
    pub fn add_certificate(&self, certificate: PlatformCertificate) -> Result<(), ConfigError> {
        let key = ParsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            certificate.public_key_spki_der(),
        )
        .map_err(|e| ConfigError::Certificate(format!("unusable public key: {e}")))?;
        self.write_certificates().insert(
            certificate.serial().to_owned(),
            TrustedCertificate { certificate, key },
        );
        Ok(())
    }

    /// A separate trust holding these keys plus `extra` certificates: used to check a certificate
    /// download with the certificates it brings before trusting any of them.
    pub(crate) fn clone_with(&self, extra: &[PlatformCertificate]) -> Self {
        let certificates = self.read_certificates().clone();
        let candidate = Self {
            inner: Arc::new(TrustInner {
                public_key: self.inner.public_key.clone(),
                certificate_mode: self.inner.certificate_mode,
                certificates: RwLock::new(certificates),
            }),
        };
        for certificate in extra {
            // A certificate whose key cannot be parsed simply cannot vouch for the download.
            let _ = candidate.add_certificate(certificate.clone());
        }
        candidate
    }

    /// Whether platform certificates are in use (so an unknown serial may mean a new
    /// certificate to download).
    pub fn uses_certificates(&self) -> bool {
        self.inner.certificate_mode
    }

    /// The platform public key id, in public-key mode.
    pub fn public_key_id(&self) -> Option<&str> {
        self.inner.public_key.as_ref().map(|(key, _)| key.id())
    }

    /// Serials of the trusted certificates.
    pub fn certificate_serials(&self) -> Vec<String> {
        let mut serials: Vec<String> = self.read_certificates().keys().cloned().collect();
        serials.sort();
        serials
    }

    /// Whether `serial` names a trusted key.
    pub fn knows(&self, serial: &str) -> bool {
        self.public_key_id() == Some(serial) || self.read_certificates().contains_key(serial)
    }

    /// The serial to send as `Wechatpay-Serial` so responses are signed with a key we trust:
    /// the public key id if there is one, else the certificate valid the longest.
    pub fn preferred_serial(&self, now: OffsetDateTime) -> Option<String> {
        if let Some(id) = self.public_key_id() {
            return Some(id.to_owned());
        }
        self.read_certificates()
            .values()
            .filter(|trusted| trusted.certificate.is_valid_at(now))
            .max_by_key(|trusted| trusted.certificate.not_after())
            .map(|trusted| trusted.certificate.serial().to_owned())
    }

    /// Verifies a signature over `body` at time `now`.
    pub fn verify(
        &self,
        headers: &SignatureHeaders,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), VerifyError> {
        if let Some(signature_type) = &headers.signature_type
            && signature_type != SIGNATURE_TYPE
        {
            return Err(VerifyError::UnsupportedSignatureType);
        }
        if headers.signature.starts_with(SIGNTEST_PREFIX) {
            return Err(VerifyError::Probe);
        }
        check_timestamp(&headers.timestamp, now.unix_timestamp())?;
        let message = platform_message(&headers.timestamp, &headers.nonce, body);
        if headers.serial.starts_with(PUBLIC_KEY_ID_PREFIX) {
            return match &self.inner.public_key {
                Some((key, parsed)) if key.id() == headers.serial => {
                    verify_rsa_sha256(parsed, &message, &headers.signature)
                }
                _ => Err(VerifyError::UnknownSerial(headers.serial.clone())),
            };
        }
        let trusted = self
            .read_certificates()
            .get(&headers.serial)
            .cloned()
            .ok_or_else(|| VerifyError::UnknownSerial(headers.serial.clone()))?;
        if !trusted.certificate.is_valid_at(now) {
            return Err(VerifyError::CertificateNotValid(headers.serial.clone()));
        }
        verify_rsa_sha256(&trusted.key, &message, &headers.signature)
    }

    fn read_certificates(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, TrustedCertificate>> {
        // A panic while holding the lock cannot leave the map half-written (inserts are
        // atomic), so a poisoned lock is still safe to use.
        self.inner
            .certificates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_certificates(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TrustedCertificate>> {
        self.inner
            .certificates
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Refuses a timestamp that is not a number or lies 300 s or more from `now`.
pub fn check_timestamp(timestamp: &str, now: i64) -> Result<(), VerifyError> {
    if timestamp.is_empty()
        || timestamp.len() > 20
        || !timestamp
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
    {
        return Err(VerifyError::MalformedTimestamp);
    }
    let value: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::MalformedTimestamp)?;
    // abs_diff works in u64, so i64::MIN against i64::MAX cannot overflow.
    if value.abs_diff(now) >= MAX_CLOCK_SKEW_SECONDS {
        return Err(VerifyError::StaleTimestamp {
            timestamp: value,
            now,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_window_is_exclusive_and_overflow_free() {
        assert!(check_timestamp("1000", 1000).is_ok());
        assert!(check_timestamp("1299", 1000).is_ok());
        assert!(check_timestamp("701", 1000).is_ok());
        assert!(check_timestamp("1300", 1000).is_err());
        assert!(check_timestamp("700", 1000).is_err());
        assert!(matches!(
            check_timestamp(&i64::MIN.to_string(), i64::MAX),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            check_timestamp(&i64::MAX.to_string(), i64::MIN),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        for bad in [
            "",
            "12a",
            "+12",
            " 12",
            "1.5",
            "99999999999999999999999",
            "--1",
        ] {
            assert_eq!(
                check_timestamp(bad, 0),
                Err(VerifyError::MalformedTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_prints_the_whole_signature() {
        let headers = SignatureHeaders {
            timestamp: "1".into(),
            nonce: "n".into(),
            signature: "ABCDEFGHIJKLMNOPQRSTUVWXYZ".into(),
            serial: "S".into(),
            signature_type: None,
        };
        let debug = format!("{headers:?}");
        assert!(debug.contains("ABCDEFGH"));
        assert!(!debug.contains("ABCDEFGHI"));
    }
}

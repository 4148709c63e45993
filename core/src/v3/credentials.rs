//! Merchant credentials: ids, the merchant private key and the API v3 key.
//!
//! Secrets live in newtypes whose `Debug` prints nothing of the secret and whose memory is wiped
//! on drop, so that neither a log line nor a core dump of a long-gone value gives them away.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::{Zeroize, Zeroizing};

/// A credential or key that cannot be used as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The API v3 key is not exactly 32 bytes.
    #[error("the API v3 key must be exactly 32 bytes, got {len}")]
    ApiV3KeyLength {
        /// The length that was given.
        len: usize,
    },
    /// The merchant private key could not be read.
    #[error("invalid merchant private key: {0}")]
    PrivateKey(String),
    /// A platform public key could not be read.
    #[error("invalid platform public key: {0}")]
    PublicKey(String),
    /// A platform certificate could not be read.
    #[error("invalid platform certificate: {0}")]
    Certificate(String),
    /// A required value is empty or malformed.
    #[error("invalid {field}: {reason}")]
    Field {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The API v3 key (APIv3密钥): 32 bytes set in the merchant platform, used to decrypt
/// notification resources and downloaded certificates.
#[derive(Clone)]
pub struct ApiV3Key(Zeroizing<[u8; 32]>);

impl ApiV3Key {
    /// The key from its 32 bytes (usually 32 ASCII characters); any other length is refused.
    pub fn new(key: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let bytes = key.as_ref();
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ConfigError::ApiV3KeyLength { len: bytes.len() })?;
        Ok(Self(Zeroizing::new(array)))
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key(<redacted>)")
    }
}

/// The merchant's RSA private key (商户API私钥), which signs requests and JSAPI parameters.
///
/// RSA work runs on aws-lc-rs: constant-time, unlike the `rsa` crate (RUSTSEC-2023-0071).
#[derive(Clone)]
pub struct MerchantPrivateKey {
    key: Arc<RsaKeyPair>,
}

impl MerchantPrivateKey {
    /// Reads a PEM private key: PKCS#8 (`-----BEGIN PRIVATE KEY-----`, the format of the
    /// `apiclient_key.pem` that the merchant platform issues) or PKCS#1
    /// (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn from_pem(pem_text: &str) -> Result<Self, ConfigError> {
        let parsed = pem::parse(pem_text)
            .map_err(|e| ConfigError::PrivateKey(format!("not a PEM block: {e}")))?;
        let der = Zeroizing::new(parsed.contents().to_vec());
        match parsed.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => Self::from_pkcs1_der(&der),
            other => Err(ConfigError::PrivateKey(format!(
                "expected a PRIVATE KEY or RSA PRIVATE KEY block, found {other}"
            ))),
        }
    }

    /// Reads a DER-encoded PKCS#8 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ConfigError> {
        RsaKeyPair::from_pkcs8(der)
            .map(Self::from_key_pair)
            .map_err(|e| ConfigError::PrivateKey(format!("not an RSA PKCS#8 key: {e}")))
    }

    /// Reads a DER-encoded PKCS#1 `RSAPrivateKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, ConfigError> {
        RsaKeyPair::from_der(der)
            .map(Self::from_key_pair)
            .map_err(|e| ConfigError::PrivateKey(format!("not an RSA PKCS#1 key: {e}")))
    }

    fn from_key_pair(key: RsaKeyPair) -> Self {
        Self { key: Arc::new(key) }
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 SHA-256 and returns the signature in base64, the
    /// form every WeChat Pay v3 signature takes.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        // Signing with a key that parsed cannot fail for any message; if the library ever
        // reports otherwise, an empty signature is refused upstream rather than crashing here.
        if self
            .key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .is_err()
        {
            tracing::error!("RSA signing failed; sending an empty signature");
            signature.zeroize();
            signature.clear();
        }
        BASE64.encode(&signature)
    }

    /// The DER-encoded public key (`SubjectPublicKeyInfo`) of this key pair, for configuring a
    /// verifier or the sandbox.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair;
        self.key
            .public_key()
            .as_der()
            .map(|der| der.as_ref().to_vec())
            .unwrap_or_default()
    }
}

impl fmt::Debug for MerchantPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MerchantPrivateKey(<redacted>)")
    }
}

/// Who the merchant is and how it signs: everything a request or JSAPI signature needs.
#[derive(Debug, Clone)]
pub struct MerchantCredentials {
    mchid: String,
    appid: String,
    serial: String,
    private_key: MerchantPrivateKey,
}

impl MerchantCredentials {
    /// The merchant id (商户号), the appid the payments are for (公众号 or 小程序), the serial
    /// number of the merchant API certificate, and its private key.
    pub fn new(
        mchid: impl Into<String>,
        appid: impl Into<String>,
        serial: impl Into<String>,
        private_key: MerchantPrivateKey,
    ) -> Result<Self, ConfigError> {
        let mchid = mchid.into();
        let appid = appid.into();
        let serial = serial.into();
        require_token("mchid", &mchid, 32)?;
        require_token("appid", &appid, 32)?;
        require_token("merchant serial", &serial, 64)?;
        Ok(Self {
            mchid,
            appid,
            serial,
            private_key,
        })
    }

    /// The merchant id.
    pub fn mchid(&self) -> &str {
        &self.mchid
    }

    /// The appid.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// The merchant certificate serial number.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The merchant private key.
    pub fn private_key(&self) -> &MerchantPrivateKey {
        &self.private_key
    }
}

/// Ids go into a header between double quotes: only plain printable tokens are safe there.
fn require_token(field: &'static str, value: &str, max_len: usize) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > max_len {
        return Err(ConfigError::Field {
            field,
            reason: format!("must be 1 to {max_len} characters"),
        });
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(ConfigError::Field {
            field,
            reason: "may only contain letters, digits, _ and -".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_v3_key_must_be_32_bytes() {
        assert!(ApiV3Key::new("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb").is_ok());
        assert_eq!(
            ApiV3Key::new("testMchAPIv3Key0").unwrap_err(),
            ConfigError::ApiV3KeyLength { len: 16 }
        );
        assert!(ApiV3Key::new([0u8; 33]).is_err());
        let debug = format!("{:?}", ApiV3Key::new([b'k'; 32]).unwrap());
        assert!(!debug.contains("kkkk"));
    }

    #[test]
    fn credentials_reject_header_breaking_ids() {
        let key = MerchantPrivateKey::from_pem(include_str!(
            "../../../testdata/vectors/test_key_pkcs8.pem"
        ))
        .unwrap();
        assert!(MerchantCredentials::new("1900000001", "wx123", "ABC", key.clone()).is_ok());
        assert!(MerchantCredentials::new("19\"00", "wx123", "ABC", key.clone()).is_err());
        assert!(MerchantCredentials::new("", "wx123", "ABC", key).is_err());
    }

    #[test]
    fn private_key_debug_is_redacted() {
        let key = MerchantPrivateKey::from_pem(include_str!(
            "../../../testdata/vectors/test_key_pkcs8.pem"
        ))
        .unwrap();
        assert_eq!(format!("{key:?}"), "MerchantPrivateKey(<redacted>)");
    }

    #[test]
    fn private_key_rejects_garbage() {
        assert!(MerchantPrivateKey::from_pem("hello").is_err());
        assert!(
            MerchantPrivateKey::from_pem(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        assert!(
            MerchantPrivateKey::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )
            .is_err()
        );
    }
}

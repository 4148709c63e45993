//! Platform certificates (平台证书) and the WeChat Pay platform public key (微信支付公钥).

use std::fmt;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::credentials::ConfigError;

/// A platform certificate: its serial (upper-case hex, as WeChat Pay writes it), validity and
/// public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformCertificate {
    serial: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    public_key_spki_der: Vec<u8>,
}

impl PlatformCertificate {
    /// Reads a PEM certificate.
    pub fn from_pem(pem_text: &str) -> Result<Self, ConfigError> {
        let parsed = pem::parse(pem_text)
            .map_err(|e| ConfigError::Certificate(format!("not a PEM block: {e}")))?;
        if parsed.tag() != "CERTIFICATE" {
            return Err(ConfigError::Certificate(format!(
                "expected a CERTIFICATE block, found {}",
                parsed.tag()
            )));
        }
        Self::from_der(parsed.contents())
    }

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, ConfigError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| ConfigError::Certificate(format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(ConfigError::Certificate(
                "trailing bytes after the certificate".to_owned(),
            ));
        }
        let validity = cert.validity();
        Ok(Self {
            serial: format!("{:X}", cert.tbs_certificate.serial),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            public_key_spki_der: cert.public_key().raw.to_vec(),
        })
    }

    /// The serial number in upper-case hex without leading zeros, as in `Wechatpay-Serial`.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether the certificate is valid at `now`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// The DER `SubjectPublicKeyInfo` of the certificate's key.
    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.public_key_spki_der
    }
}

impl fmt::Debug for PlatformCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformCertificate")
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The WeChat Pay platform public key and its id (`PUB_KEY_ID_…`), the key of public-key mode.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformPublicKey {
    id: String,
    spki_der: Vec<u8>,
}

/// The prefix of every platform public-key id.
pub const PUBLIC_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";

impl PlatformPublicKey {
    /// The public key from its id and a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block, as
    /// downloaded from the merchant platform.
    pub fn from_pem(id: impl Into<String>, pem_text: &str) -> Result<Self, ConfigError> {
        let id = id.into();
        if !id.starts_with(PUBLIC_KEY_ID_PREFIX) {
            return Err(ConfigError::PublicKey(format!(
                "the public key id must start with {PUBLIC_KEY_ID_PREFIX}"
            )));
        }
        let parsed = pem::parse(pem_text)
            .map_err(|e| ConfigError::PublicKey(format!("not a PEM block: {e}")))?;
        if parsed.tag() != "PUBLIC KEY" {
            return Err(ConfigError::PublicKey(format!(
                "expected a PUBLIC KEY block, found {}",
                parsed.tag()
            )));
        }
        let spki_der = parsed.contents().to_vec();
        super::verify::check_rsa_public_key(&spki_der).map_err(ConfigError::PublicKey)?;
        Ok(Self { id, spki_der })
    }

    /// The key id, `PUB_KEY_ID_…`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

impl fmt::Debug for PlatformPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformPublicKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_upper_hex_without_leading_zero() {
        let cert = PlatformCertificate::from_pem(include_str!(
            "../../../testdata/vectors/test_cert_D7CE59D1F522D701.pem"
        ))
        .unwrap();
        assert_eq!(cert.serial(), "D7CE59D1F522D701");
        let cert = PlatformCertificate::from_pem(include_str!(
            "../../../testdata/vectors/yansongda_cert.pem"
        ))
        .unwrap();
        assert_eq!(cert.serial(), "45F59D4DABF31918AFCEC556D5D2C6E376675D57");
        assert_eq!(cert.not_after().year(), 2026);
    }

    #[test]
    fn public_key_needs_id_prefix_and_rsa_key() {
        let pem = include_str!("../../../testdata/vectors/test_pubkey.pem");
        assert!(
            PlatformPublicKey::from_pem("PUB_KEY_ID_0114232134912410000000000001", pem).is_ok()
        );
        assert!(PlatformPublicKey::from_pem("D7CE59D1F522D701", pem).is_err());
        assert!(PlatformPublicKey::from_pem("PUB_KEY_ID_1", "garbage").is_err());
    }
}

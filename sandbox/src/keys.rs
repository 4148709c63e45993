//! Merchant and platform key material.

use time::OffsetDateTime;

use crate::config::{MerchantKeyConfig, PlatformMode};
use crate::crypto::{self, CryptoError, RsaSigner, RsaVerifier};
use crate::error::SandboxError;

/// The merchant side: what a shop configures to talk to this sandbox.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MerchantMaterial {
    /// Merchant id (`mchid`).
    pub mchid: String,
    /// App id (`appid`) the merchant is bound to.
    pub appid: String,
    /// Merchant certificate serial (`serial_no` in the `Authorization` header).
    pub serial: String,
    /// The merchant private key as PKCS#8 PEM, when the sandbox generated or was given it.
    pub private_key_pem: Option<String>,
    /// The merchant public key as SubjectPublicKeyInfo PEM (or the PEM it was given).
    pub public_key_pem: String,
}

/// The platform side: what a shop uses to verify responses and notifications.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlatformMaterial {
    /// The signing mode.
    pub mode: PlatformMode,
    /// The WeChat Pay public key id, `PUB_KEY_ID_` followed by digits. Used as
    /// `Wechatpay-Serial` in [`PlatformMode::PublicKey`] and [`PlatformMode::Both`]; in
    /// [`PlatformMode::Certificate`] this key exists but never signs.
    pub public_key_id: String,
    /// The WeChat Pay public key, SubjectPublicKeyInfo PEM.
    pub public_key_pem: String,
    /// The platform certificate serial (upper-case hex), in certificate and both modes.
    pub certificate_serial: Option<String>,
    /// The self-signed platform certificate, PEM, in certificate and both modes.
    pub certificate_pem: Option<String>,
}

pub(crate) struct PlatformCert {
    pub(crate) signer: RsaSigner,
    pub(crate) serial: String,
    pub(crate) pem: String,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

/// The platform private keys.
pub(crate) struct PlatformKeys {
    pub(crate) mode: PlatformMode,
    pub(crate) public_key_id: String,
    pub(crate) public_key: RsaSigner,
    pub(crate) cert: Option<PlatformCert>,
}

impl PlatformKeys {
    pub(crate) fn generate(mode: PlatformMode) -> Result<(Self, PlatformMaterial), SandboxError> {
        let public_key = RsaSigner::generate()?;
        let public_key_id = format!("PUB_KEY_ID_0119{}", crypto::random_digits(22)?);
        let cert = if mode.has_certificate() {
            Some(generate_cert()?)
        } else {
            None
        };
        let material = PlatformMaterial {
            mode,
            public_key_id: public_key_id.clone(),
            public_key_pem: public_key.public_key_pem()?,
            certificate_serial: cert.as_ref().map(|c| c.serial.clone()),
            certificate_pem: cert.as_ref().map(|c| c.pem.clone()),
        };
        Ok((
            Self {
                mode,
                public_key_id,
                public_key,
                cert,
            },
            material,
        ))
    }

    /// The key and serial to sign with. In both mode WeChat keeps certificate clients working
    /// while a merchant switches: the public key signs only for a request whose
    /// `Wechatpay-Serial` names it; the certificate signs everything else (a request naming the
    /// certificate or nothing, as a certificate client's first `/v3/certificates` does).
    /// Notifications answer no request: they pass the serial the merchant's requests last named.
    pub(crate) fn signer_for(&self, requested: Option<&str>) -> (&RsaSigner, &str) {
        match (self.mode, &self.cert) {
            (PlatformMode::Certificate, Some(c)) => (&c.signer, &c.serial),
            (PlatformMode::Both, Some(c)) if requested != Some(self.public_key_id.as_str()) => {
                (&c.signer, &c.serial)
            }
            _ => (&self.public_key, &self.public_key_id),
        }
    }
}

fn generate_cert() -> Result<PlatformCert, SandboxError> {
    let signer = RsaSigner::generate()?;
    let key_pem = signer.pkcs8_pem()?;
    let cert_key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| CryptoError::Key(e.to_string()))?;
    // 20 random bytes, first byte in 0x10..=0x7F: positive and exactly 40 hex digits.
    let mut serial = [0u8; 20];
    crypto::random_bytes(&mut serial)?;
    serial[0] = (serial[0] & 0x6F) | 0x10;
    let serial_hex: String = serial.iter().map(|b| format!("{b:02X}")).collect();
    let now = OffsetDateTime::now_utc();
    let not_before = now - time::Duration::days(1);
    let not_after = now + time::Duration::days(5 * 365);
    let mut params = rcgen::CertificateParams::default();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.not_before = not_before;
    params.not_after = not_after;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "CN");
    dn.push(rcgen::DnType::OrganizationName, "wxpay-sandbox");
    dn.push(
        rcgen::DnType::OrganizationalUnitName,
        "Wechatpay Sandbox Platform",
    );
    dn.push(
        rcgen::DnType::CommonName,
        "Wechatpay Sandbox Platform Certificate",
    );
    params.distinguished_name = dn;
    let cert = params
        .self_signed(&cert_key)
        .map_err(|e| CryptoError::Key(e.to_string()))?;
    Ok(PlatformCert {
        signer,
        serial: serial_hex,
        pem: cert.pem().replace("\r\n", "\n"),
        not_before,
        not_after,
    })
}

/// The merchant key as the sandbox holds it: a verifier plus the published material.
pub(crate) fn merchant_material(
    mchid: &str,
    appid: &str,
    config: &MerchantKeyConfig,
) -> Result<(RsaVerifier, MerchantMaterial), SandboxError> {
    let (serial, private_key_pem, public_key_pem) = match config {
        MerchantKeyConfig::Generate => {
            let signer = RsaSigner::generate()?;
            (
                crypto::random_upper_hex(40)?,
                Some(signer.pkcs8_pem()?),
                signer.public_key_pem()?,
            )
        }
        MerchantKeyConfig::PrivateKey {
            serial,
            private_key_pem,
        } => {
            let signer = RsaSigner::from_pkcs8_pem(private_key_pem)?;
            (
                serial.clone(),
                Some(private_key_pem.clone()),
                signer.public_key_pem()?,
            )
        }
        MerchantKeyConfig::Provided {
            serial,
            public_key_pem,
        } => (serial.clone(), None, public_key_pem.clone()),
    };
    if serial.is_empty() {
        return Err(SandboxError::Config(
            "merchant serial must not be empty".into(),
        ));
    }
    let verifier = RsaVerifier::from_pem(&public_key_pem)?;
    Ok((
        verifier,
        MerchantMaterial {
            mchid: mchid.to_owned(),
            appid: appid.to_owned(),
            serial,
            private_key_pem,
            public_key_pem,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_serial_and_key_match() {
        let (keys, material) = PlatformKeys::generate(PlatformMode::Both).unwrap();
        let pem_text = material.certificate_pem.unwrap();
        let der = crypto::pem_contents(&pem_text, "CERTIFICATE").unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let serial = material.certificate_serial.unwrap();
        assert_eq!(
            cert.raw_serial_as_string().replace(':', "").to_uppercase(),
            serial
        );
        assert_eq!(serial.len(), 40);
        let (signer, s) = keys.signer_for(Some(&serial));
        assert_eq!(s, serial);
        let sig = signer.sign_base64(b"m").unwrap();
        RsaVerifier::from_pem(&pem_text)
            .unwrap()
            .verify_base64(b"m", &sig)
            .unwrap();
        // Both mode: the certificate unless the request names the public key.
        let (_, s) = keys.signer_for(None);
        assert_eq!(s, serial);
        let (_, s) = keys.signer_for(Some("4C0FFEE"));
        assert_eq!(s, serial);
        let (_, s) = keys.signer_for(Some(&material.public_key_id));
        assert!(s.starts_with("PUB_KEY_ID_"));
    }
}

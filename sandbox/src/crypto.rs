//! Cryptographic primitives of the sandbox, written independently of wxpay-core.
//!
//! Everything WeChat Pay API v3 needs: RSA PKCS#1 v1.5 SHA-256 signatures (aws-lc-rs),
//! AEAD_AES_256_GCM with the API v3 key (`aes-gcm`), random strings and PEM helpers.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// An error of the sandbox's own cryptography.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key could not be generated, parsed or encoded.
    #[error("bad key: {0}")]
    Key(String),
    /// Signing failed.
    #[error("signing failed")]
    Sign,
    /// A signature or an AEAD tag did not verify, or a value was malformed.
    #[error("verification failed: {0}")]
    Verify(&'static str),
    /// The system random source failed.
    #[error("random source failed")]
    Random,
}

/// An RSA private key used to sign messages with RSA PKCS#1 v1.5 SHA-256 (`SHA256withRSA`).
pub struct RsaSigner {
    key: KeyPair,
}

impl std::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaSigner").finish_non_exhaustive()
    }
}

impl RsaSigner {
    /// Generates a fresh RSA-2048 key.
    pub fn generate() -> Result<Self, CryptoError> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| CryptoError::Key("RSA key generation failed".into()))?;
        Ok(Self { key })
    }

    /// Loads a PKCS#8 (`-----BEGIN PRIVATE KEY-----`) PEM.
    pub fn from_pkcs8_pem(pem_text: &str) -> Result<Self, CryptoError> {
        let der = pem_contents(pem_text, "PRIVATE KEY")?;
        let key = KeyPair::from_pkcs8(&der).map_err(|e| CryptoError::Key(e.to_string()))?;
        Ok(Self { key })
    }

    /// The private key as a PKCS#8 PEM.
    pub fn pkcs8_pem(&self) -> Result<String, CryptoError> {
        let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = self
            .key
            .as_der()
            .map_err(|_| CryptoError::Key("PKCS#8 encoding failed".into()))?;
        Ok(pem_encode("PRIVATE KEY", der.as_ref()))
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_spki_der(&self) -> Result<Vec<u8>, CryptoError> {
        let der: aws_lc_rs::encoding::PublicKeyX509Der<'static> = self
            .key
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Key("SPKI encoding failed".into()))?;
        Ok(der.as_ref().to_vec())
    }

    /// The public key as a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> Result<String, CryptoError> {
        Ok(pem_encode("PUBLIC KEY", &self.public_key_spki_der()?))
    }

    /// Signs `message`, returning the raw signature bytes.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| CryptoError::Sign)?;
        Ok(sig)
    }

    /// Signs `message`, returning the signature in standard base64.
    pub fn sign_base64(&self, message: &[u8]) -> Result<String, CryptoError> {
        Ok(B64.encode(self.sign(message)?))
    }
}

/// An RSA public key that verifies RSA PKCS#1 v1.5 SHA-256 signatures (2048 to 8192 bits).
#[derive(Clone, Debug)]
pub struct RsaVerifier {
    spki_der: Vec<u8>,
}

impl RsaVerifier {
    /// From SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: Vec<u8>) -> Self {
        Self { spki_der: der }
    }

    /// From a PEM: a `PUBLIC KEY` (SPKI), an `RSA PUBLIC KEY` (PKCS#1) or a `CERTIFICATE`
    /// (its subject public key is used).
    pub fn from_pem(pem_text: &str) -> Result<Self, CryptoError> {
        let parsed = pem::parse(pem_text.trim()).map_err(|e| CryptoError::Key(e.to_string()))?;
        match parsed.tag() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Ok(Self::from_spki_der(parsed.contents().to_vec())),
            "CERTIFICATE" => {
                let (_, cert) = x509_parser::parse_x509_certificate(parsed.contents())
                    .map_err(|e| CryptoError::Key(e.to_string()))?;
                Ok(Self::from_spki_der(cert.public_key().raw.to_vec()))
            }
            other => Err(CryptoError::Key(format!("unexpected PEM tag {other}"))),
        }
    }

    /// Verifies a raw signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.spki_der)
            .verify(message, signature)
            .map_err(|_| CryptoError::Verify("signature does not match"))
    }

    /// Verifies a standard-base64 signature over `message`.
    pub fn verify_base64(&self, message: &[u8], signature_b64: &str) -> Result<(), CryptoError> {
        let sig = B64
            .decode(signature_b64.as_bytes())
            .map_err(|_| CryptoError::Verify("signature is not base64"))?;
        self.verify(message, &sig)
    }
}

/// Encrypts with AEAD_AES_256_GCM as WeChat Pay does: returns base64(ciphertext ‖ tag).
///
/// `key` must be 32 bytes and `nonce` 12 bytes.
pub fn aes_256_gcm_encrypt(
    key: &[u8],
    nonce: &[u8],
    associated_data: &[u8],
    plaintext: &[u8],
) -> Result<String, CryptoError> {
    let cipher = gcm(key)?;
    if nonce.len() != 12 {
        return Err(CryptoError::Key("nonce must be 12 bytes".into()));
    }
    let ct = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad: associated_data,
            },
        )
        .map_err(|_| CryptoError::Key("encryption failed".into()))?;
    Ok(B64.encode(ct))
}

/// Decrypts AEAD_AES_256_GCM: `ciphertext_b64` is base64(ciphertext ‖ 16-byte tag).
pub fn aes_256_gcm_decrypt(
    key: &[u8],
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext_b64: &str,
) -> Result<Vec<u8>, CryptoError> {
    let cipher = gcm(key)?;
    if nonce.len() != 12 {
        return Err(CryptoError::Verify("nonce must be 12 bytes"));
    }
    let ct = B64
        .decode(ciphertext_b64.as_bytes())
        .map_err(|_| CryptoError::Verify("ciphertext is not base64"))?;
    if ct.len() < 16 {
        return Err(CryptoError::Verify("ciphertext shorter than the tag"));
    }
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &ct,
                aad: associated_data,
            },
        )
        .map_err(|_| CryptoError::Verify("AEAD tag does not match"))
}

fn gcm(key: &[u8]) -> Result<Aes256Gcm, CryptoError> {
    Aes256Gcm::new_from_slice(key)
        .map_err(|_| CryptoError::Key("AES-256 key must be 32 bytes".into()))
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` from the system random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Random)
}

/// A random string of `len` characters drawn uniformly from `alphabet` (at most 256 symbols).
pub fn random_from(alphabet: &[u8], len: usize) -> Result<String, CryptoError> {
    let n = alphabet.len();
    if n == 0 || n > 256 {
        return Err(CryptoError::Random);
    }
    // Rejection sampling: accept bytes below the largest multiple of n.
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        random_bytes(&mut buf)?;
        for &b in &buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % n]));
            }
        }
    }
    Ok(out)
}

/// A random alphanumeric (`[A-Za-z0-9]`) string.
pub fn random_alnum(len: usize) -> Result<String, CryptoError> {
    random_from(ALNUM, len)
}

/// A random string of decimal digits.
pub fn random_digits(len: usize) -> Result<String, CryptoError> {
    random_from(b"0123456789", len)
}

/// A random upper-case hexadecimal string.
pub fn random_upper_hex(len: usize) -> Result<String, CryptoError> {
    random_from(b"0123456789ABCDEF", len)
}

/// A random UUID (version 4 layout), lower-case with dashes.
pub fn random_uuid() -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Standard base64 encoding.
pub fn base64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The contents of a PEM block with the given tag.
pub fn pem_contents(pem_text: &str, tag: &str) -> Result<Vec<u8>, CryptoError> {
    let parsed = pem::parse(pem_text.trim()).map_err(|e| CryptoError::Key(e.to_string()))?;
    if parsed.tag() != tag {
        return Err(CryptoError::Key(format!(
            "expected PEM tag {tag}, found {}",
            parsed.tag()
        )));
    }
    Ok(parsed.contents().to_vec())
}

/// Encodes DER as PEM with `\n` line endings.
pub fn pem_encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_pem() {
        let signer = RsaSigner::generate().unwrap();
        let sig = signer.sign_base64(b"hello").unwrap();
        let pem_text = signer.public_key_pem().unwrap();
        let verifier = RsaVerifier::from_pem(&pem_text).unwrap();
        verifier.verify_base64(b"hello", &sig).unwrap();
        assert!(verifier.verify_base64(b"hellO", &sig).is_err());
        let again = RsaSigner::from_pkcs8_pem(&signer.pkcs8_pem().unwrap()).unwrap();
        verifier
            .verify_base64(b"x", &again.sign_base64(b"x").unwrap())
            .unwrap();
    }

    #[test]
    fn gcm_roundtrip() {
        let key = [7u8; 32];
        let ct = aes_256_gcm_encrypt(&key, b"123456789012", b"ad", b"plain").unwrap();
        assert_eq!(
            aes_256_gcm_decrypt(&key, b"123456789012", b"ad", &ct).unwrap(),
            b"plain"
        );
        assert!(aes_256_gcm_decrypt(&key, b"123456789012", b"ae", &ct).is_err());
    }

    #[test]
    fn random_strings() {
        let s = random_alnum(100).unwrap();
        assert_eq!(s.len(), 100);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        let u = random_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}

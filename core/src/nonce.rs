//! Random strings for nonces and identifiers, from the operating system's CSPRNG.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

const ALPHANUMERIC: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from `[0-9A-Za-z]` by the system CSPRNG.
///
/// # Panics
/// Only if the operating system cannot provide random bytes, in which case no nonce or key could
/// be trusted anyway.
pub fn random_alphanumeric(len: usize) -> String {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        #[allow(clippy::expect_used)]
        rng.fill(&mut buf)
            .expect("the operating system's random source failed");
        // Rejection sampling: 248 = 4 × 62, so bytes below it map to the alphabet without bias.
        for byte in buf.iter().copied().filter(|b| *b < 248) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHANUMERIC[usize::from(byte % 62)]));
        }
    }
    out
}

/// Where request and payment nonces come from; tests inject a fixed one to get byte-exact output.
pub trait NonceSource: Send + Sync + fmt::Debug {
    /// A fresh nonce of 32 characters.
    fn nonce(&self) -> String;
}

/// 32 alphanumerics from the system CSPRNG: the nonce source to use in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemNonce;

impl NonceSource for SystemNonce {
    fn nonce(&self) -> String {
        random_alphanumeric(32)
    }
}

/// Always the same nonce. For tests and vectors only: a fixed nonce in production lets requests
/// be replayed.
#[derive(Debug, Clone)]
pub struct FixedNonce(pub String);

impl NonceSource for FixedNonce {
    fn nonce(&self) -> String {
        self.0.clone()
    }
}

/// The nonce source used when none is configured.
pub(crate) fn system() -> Arc<dyn NonceSource> {
    Arc::new(SystemNonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_alphanumeric_and_distinct() {
        let a = SystemNonce.nonce();
        let b = SystemNonce.nonce();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(random_alphanumeric(0), "");
        assert_eq!(random_alphanumeric(100).len(), 100);
    }
}

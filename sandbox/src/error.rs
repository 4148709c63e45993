//! The sandbox's error type.

use crate::crypto::CryptoError;

/// An error starting, driving or asking the sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The configuration is invalid.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("sandbox I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Key generation, signing or encryption failed.
    #[error("sandbox crypto error: {0}")]
    Crypto(#[from] CryptoError),
    /// A simulated payment was refused (same code and message as the HTTP endpoint's 400).
    #[error("payment refused: {code}: {message}")]
    Pay {
        /// Upper-snake code, e.g. `PAY_SIGN_ERROR`.
        code: String,
        /// Human-readable explanation.
        message: String,
    },
    /// A refund control (settling a refund) was refused.
    #[error("refund control refused: {code}: {message}")]
    Refund {
        /// Upper-snake code, e.g. `REFUND_NOT_FOUND`.
        code: String,
        /// Human-readable explanation.
        message: String,
    },
    /// Waiting for something timed out.
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

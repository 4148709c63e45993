//! Payment notifications: verify the signature on the raw bytes, then parse, then decrypt.
//!
//! Nothing in a notification body is looked at before its signature has verified.

use std::sync::Arc;

use http::HeaderMap;
use serde::de::DeserializeOwned;

use crate::clock::{self, Clock};

use super::aead::DecryptError;
use super::credentials::ApiV3Key;
use super::model::{NotificationEnvelope, Transaction};
use super::refund::RefundNotice;
use super::verify::{PlatformTrust, SignatureHeaders, VerifyError};

/// The largest notification body accepted by default (WeChat's are a few KiB).
pub const DEFAULT_MAX_NOTIFICATION_BYTES: usize = 64 * 1024;

/// Why a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// The body is larger than the limit.
    #[error("notification body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The signature did not verify (or was a SIGNTEST probe).
    #[error("notification signature: {0}")]
    Verify(#[from] VerifyError),
    /// The body verified but is not a notification envelope.
    #[error("malformed notification: {0}")]
    MalformedEnvelope(String),
    /// The resource could not be decrypted.
    #[error("notification resource: {0}")]
    Decrypt(#[from] DecryptError),
    /// The decrypted resource is not what the event type promises.
    #[error("malformed notification resource: {0}")]
    MalformedResource(String),
}

/// A notification whose signature verified and whose resource decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNotification<T> {
    /// The envelope (id, event type, …).
    pub envelope: NotificationEnvelope,
    /// The decrypted resource.
    pub resource: T,
}

/// What a verified notification is about, by its `event_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationResource {
    /// `TRANSACTION.*`: a payment.
    Transaction(Transaction),
    /// `REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`: a refund.
    Refund(RefundNotice),
}

impl NotificationResource {
    /// The resource as JSON, for apps that want fields the engine does not read.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            NotificationResource::Transaction(transaction) => serde_json::to_value(transaction),
            NotificationResource::Refund(refund) => serde_json::to_value(refund),
        }
        .unwrap_or_default()
    }
}

/// The event types of refund notifications start with this.
pub const REFUND_EVENT_PREFIX: &str = "REFUND.";

/// Verifies and decrypts notifications with the platform keys and the API v3 key.
#[derive(Debug, Clone)]
pub struct NotificationParser {
    trust: PlatformTrust,
    api_v3_key: ApiV3Key,
    clock: Arc<dyn Clock>,
    max_body_bytes: usize,
}

impl NotificationParser {
    /// A parser on the system clock with the default body limit.
    pub fn new(trust: PlatformTrust, api_v3_key: ApiV3Key) -> Self {
        Self {
            trust,
            api_v3_key,
            clock: clock::system(),
            max_body_bytes: DEFAULT_MAX_NOTIFICATION_BYTES,
        }
    }

    /// Replaces the clock (tests, or replaying a recorded notification).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the body limit.
    #[must_use]
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The platform keys in use.
    pub fn trust(&self) -> &PlatformTrust {
        &self.trust
    }

    /// Verifies the signature over the raw body, then parses the envelope.
    pub fn verify_envelope(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<NotificationEnvelope, NotificationError> {
        if body.len() > self.max_body_bytes {
            return Err(NotificationError::TooLarge {
                limit: self.max_body_bytes,
            });
        }
        let signature = SignatureHeaders::from_headers(headers)?;
        self.trust.verify(&signature, body, self.clock.now())?;
        serde_json::from_slice(body)
            .map_err(|e| NotificationError::MalformedEnvelope(e.to_string()))
    }

    /// Verifies, then decrypts the resource and parses it as `T`.
    pub fn parse<T: DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedNotification<T>, NotificationError> {
        let envelope = self.verify_envelope(headers, body)?;
        let plaintext = envelope.resource.decrypt(&self.api_v3_key)?;
        let resource = serde_json::from_slice(&plaintext)
            .map_err(|e| NotificationError::MalformedResource(e.to_string()))?;
        Ok(VerifiedNotification { envelope, resource })
    }

    /// Verifies and decrypts any notification, payment or refund, by its `event_type`.
    pub fn parse_any(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedNotification<NotificationResource>, NotificationError> {
        let envelope = self.verify_envelope(headers, body)?;
        let plaintext = envelope.resource.decrypt(&self.api_v3_key)?;
        let malformed = |e: serde_json::Error| NotificationError::MalformedResource(e.to_string());
        let resource = if envelope.event_type.starts_with(REFUND_EVENT_PREFIX) {
            NotificationResource::Refund(serde_json::from_slice(&plaintext).map_err(malformed)?)
        } else {
            NotificationResource::Transaction(
                serde_json::from_slice(&plaintext).map_err(malformed)?,
            )
        };
        Ok(VerifiedNotification { envelope, resource })
    }

    /// Verifies and decrypts a payment notification (`TRANSACTION.*`).
    pub fn parse_transaction(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedNotification<Transaction>, NotificationError> {
        self.parse(headers, body)
    }
}

//! WeChat Pay API v3: the protocol and the HTTP client.
//!
//! - [`credentials`]: merchant ids, the merchant private key, the API v3 key.
//! - [`sign`]: the `Authorization` header of requests.
//! - [`jsapi`]: the signed parameters for `WeixinJSBridge` / `wx.requestPayment`.
//! - [`verify`]: verification of WeChat Pay's signatures (public key, certificates, or both).
//! - [`aead`]: `AEAD_AES_256_GCM` decryption of resources.
//! - [`notification`]: verified, decrypted payment notifications.
//! - [`model`]: typed request and response bodies.
//! - [`refund`]: typed refund requests, records and notifications.
//! - [`client`]: [`V3Client`], the HTTP client.

pub mod aead;
pub mod certificate;
pub mod client;
pub mod credentials;
pub mod jsapi;
pub mod model;
pub mod notification;
pub mod refund;
pub mod sign;
pub mod verify;

pub use aead::{DecryptError, EncryptedResource};
pub use certificate::{PlatformCertificate, PlatformPublicKey};
pub use client::{ApiError, ClientError, RetryPolicy, V3Client, V3ClientBuilder};
pub use credentials::{ApiV3Key, ConfigError, MerchantCredentials, MerchantPrivateKey};
pub use jsapi::JsapiParams;
pub use model::{JsapiPrepayRequest, PrepayResponse, TradeState, Transaction};
pub use notification::{
    NotificationError, NotificationParser, NotificationResource, VerifiedNotification,
};
pub use refund::{DomesticRefundRequest, RefundNotice, RefundRecord, UpstreamRefundStatus};
pub use sign::RequestSigner;
pub use verify::{PlatformTrust, SignatureHeaders, VerifyError};

//! WeChat Pay API v2 (seed 003; official docs at `pay.weixin.qq.com/wiki/doc/api/jsapi.php`):
//! the protocol of legacy merchants.
//!
//! - [`sign`]: the MD5 / HMAC-SHA256 `sign` with `&key=`, detection and constant-time checks.
//! - [`xml`]: the flat XML messages, read with no DTD and no entity expansion.
//! - [`client`]: [`V2Client`]: unified order, order query, close, refund (with the merchant's
//!   API certificate), refund query, JSAPI `paySign`.
//! - [`notification`]: verified payment and refund notifications and the exact reply.
//! - [`refund`]: decryption of the `req_info` of refund notifications.

pub mod client;
pub mod notification;
pub mod refund;
pub mod sign;
pub mod xml;

pub use client::{
    MerchantCertificate, RefundRequest, UnifiedOrderRequest, V2Client, V2ClientBuilder, V2Config,
    V2Error, jsapi_params,
};
pub use notification::{
    ACK_XML, DecryptedV2Refund, V2Notification, V2NotificationError, VerifiedV2Notification,
    read_notification, verify_notification,
};
pub use refund::{RefundDecryptError, decrypt_refund_req_info};
pub use sign::{ApiKey, ApiKeyError, Params, SignError, SignType};

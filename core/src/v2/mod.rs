//! WeChat Pay API v2 (seed 003; official docs at `pay.weixin.qq.com/wiki/doc/api/jsapi.php`):
//! the protocol of legacy merchants.
//!
//! - [`sign`]: the MD5 / HMAC-SHA256 `sign` with `&key=`, detection and constant-time checks.
//! - [`xml`]: the flat XML messages, read with no DTD and no entity expansion.
//! - [`client`]: [`V2Client`]: unified order, order query, close, JSAPI `paySign`.
//! - [`notification`]: verified payment notifications and the exact reply.
//! - [`refund`]: decryption of the `req_info` of refund notifications.

pub mod client;
pub mod notification;
pub mod refund;
pub mod sign;
pub mod xml;

pub use client::{UnifiedOrderRequest, V2Client, V2ClientBuilder, V2Config, V2Error, jsapi_params};
pub use notification::{ACK_XML, V2NotificationError, VerifiedV2Notification, verify_notification};
pub use refund::{RefundDecryptError, decrypt_refund_req_info};
pub use sign::{ApiKey, ApiKeyError, Params, SignError, SignType};

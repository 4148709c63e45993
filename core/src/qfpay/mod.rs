//! QFPay (seed 002): `POST /trade/v1/payment` with `pay_type` 800207 (WeChat JSAPI) and
//! `sub_openid`, requests signed in the `X-QF-SIGN` header, asynchronous notifications signed
//! over the raw body, and the `get_weixin_oauth_code` / `get_weixin_openid` openid flow.
//!
//! - [`sign`] holds the request and notification signatures, and the [`ClientKey`];
//! - [`client`] holds [`QfpayClient`] (payment, enquiry, close, refund, the openid flow) and
//!   [`QfpayError`];
//! - [`notification`] holds [`verify_notification`];
//! - [`local_time`] reads and writes QFPay's zone-less date-times at a configurable offset
//!   (UTC+08:00 by default).
//!
//! Reference: seed 002 and QFPay's public documentation, <https://sdk.qfapi.com>.

pub mod client;
pub mod local_time;
pub mod notification;
pub mod sign;

pub use client::{
    CloseRequest, PaymentRequest, PaymentResponse, QfpayClient, QfpayClientBuilder, QfpayConfig,
    QfpayError, RefundRequest, RefundResponse, RespcdClass, Transaction, classify,
};
pub use notification::{
    NotifyType, QfpayNotification, QfpayNotificationError, verify_notification,
};
pub use sign::{ClientKey, ClientKeyError};

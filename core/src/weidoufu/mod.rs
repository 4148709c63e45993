//! weidoufu (seed 004): `POST /pay/miniapp` for WeChat (`pay_type` 1, `openid`) and Alipay
//! (`pay_type` 2, `buyer_id`) mini programs, signed with the `secret_key`, and its payment
//! callback.
//!
//! - [`sign`]: the request `sign` (sorted `k=v&…&secret_key=SECRET_KEY`, upper-case MD5), the
//!   callback `sign` (MD5 of the hex HMAC-SHA256 of the content) and the [`SecretKey`], as the
//!   live service's public clients show them (sources in [`sign`]).
//! - [`client`]: [`WeidoufuClient`]: `/pay/miniapp` and `/pay/refund` as JSON, with seed 004's
//!   field checks.
//! - [`callback`]: verified payment callbacks, JSON `{sign, content}` ([`verify_callback`]).
//!
//! weidoufu documents no query or close API (seed 004), so orders settle through the callback.

pub mod callback;
pub mod client;
pub mod sign;

pub use callback::{
    CallbackError, STATUS_CLOSED, STATUS_PAID, STATUS_PENDING, WeidoufuCallback, verify_callback,
};
pub use client::{
    MiniappPayRequest, MiniappPayment, PayType, RefundAnswer, RefundRequest, UnknownPayType,
    WeidoufuClient, WeidoufuClientBuilder, WeidoufuConfig, WeidoufuError, check_out_order_no,
};
pub use sign::{
    SecretKey, SecretKeyError, callback_sign, callback_signature_matches, sign_params,
    signature_matches,
};

//! weidoufu (seed 004): `POST /pay/miniapp` for WeChat (`pay_type` 1, `openid`) and Alipay
//! (`pay_type` 2, `buyer_id`) mini programs, signed with the `secret_key`, and its payment
//! callback.
//!
//! - [`sign`]: the `sign` rule (our choice: the WeChat Pay v2 rule, upper-case MD5 with
//!   `&key=SECRET_KEY`) and the [`SecretKey`].
//! - [`client`]: [`WeidoufuClient`] and its `/pay/miniapp` call, with seed 004's field checks.
//! - [`callback`]: verified payment callbacks ([`verify_callback`]).
//!
//! weidoufu documents no query or close API (seed 004), so orders settle through the callback.

pub mod callback;
pub mod client;
pub mod sign;

pub use callback::{CallbackError, TRADE_STATUS_SUCCESS, WeidoufuCallback, verify_callback};
pub use client::{
    MiniappPayRequest, MiniappPayment, PayType, RefundAnswer, RefundRequest, UnknownPayType,
    WeidoufuClient, WeidoufuClientBuilder, WeidoufuConfig, WeidoufuError, check_out_order_no,
};
pub use sign::{SecretKey, SecretKeyError, sign_params, signature_matches};

//! The payment gateway of seed 001: precreate through `POST /open/trade/wx/jsapi/precreate`,
//! and form-encoded callbacks signed with MD5 as its Java `checkOpenSign` listing does.
//!
//! - [`sign`]: `checkOpenSign` / `openSign`, ported rule by rule, and the [`AppKey`].
//! - [`callback`]: verified callbacks and their `biz_content`.
//! - [`client`]: [`GatewayClient`] and its precreate call.

pub mod callback;
pub mod client;
pub mod sign;

pub use callback::{BizContent, CallbackError, VerifiedCallback, verify_callback};
pub use client::{GatewayClient, GatewayConfig, GatewayError, PrecreateRequest};
pub use sign::{AppKey, AppKeyError, check_open_sign, open_sign};

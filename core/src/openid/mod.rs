//! Getting the payer's openid from a source the server trusts, and binding it to the client.
//!
//! An [`OpenidResolver`] turns a one-time code into an openid by asking the upstream that issued
//! the code; an [`OAuthResolver`] also sends a browser to get such a code:
//!
//! - [`MiniProgramLogin`]: 小程序 `wx.login` codes, exchanged at WeChat's `sns/jscode2session`;
//! - [`OfficialAccountOAuth`]: 公众号 H5 pages, through WeChat's OAuth2 `snsapi_base` redirect
//!   and `sns/oauth2/access_token`;
//! - [`QfpayOAuth`]: QFPay's `get_weixin_oauth_code` redirect and `get_weixin_openid` (seed 002).
//!
//! The engine ([`crate::engine::OpenidConfig`]) mounts the routes that use them, and binds the
//! openid to the client with an [`OpenidToken`]: signed with an [`OpenidTokenKey`], expiring,
//! naming the app it was resolved for.

use std::fmt;

use async_trait::async_trait;

use crate::fields::OpenId;

mod fetch;
mod qfpay;
mod token;
mod wechat;

pub use qfpay::QfpayOAuth;
pub use token::{
    KeyTooShort, MAX_SEALED_BYTES, MIN_KEY_BYTES, OpenidToken, OpenidTokenKey, TokenError,
};
pub(crate) use token::{Purpose, open, seal};
pub use wechat::{
    AppSecret, DEFAULT_API_BASE, DEFAULT_OPEN_BASE, DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES,
    MiniProgramLogin, OfficialAccountOAuth,
};

/// Resolves a one-time code into the openid of the user it was issued for.
#[async_trait]
pub trait OpenidResolver: Send + Sync + fmt::Debug {
    /// What the openids it resolves belong to, e.g. `wechat:wx8888888888888888` (an openid is
    /// only meaningful under one appid). Tokens carry it; a token bound to something this
    /// server does not resolve for is refused.
    fn binding(&self) -> &str;

    /// Exchanges `code` (single use) for the openid.
    async fn resolve(&self, code: &str) -> Result<OpenId, OpenidError>;
}

/// A resolver whose codes come from sending the browser through an authorization redirect.
pub trait OAuthResolver: OpenidResolver {
    /// Where to send the browser so that it comes back to `redirect_uri` with `code` and `state`
    /// in the query (`state`: up to 128 characters of `[0-9A-Za-z]`).
    fn authorize_url(&self, redirect_uri: &str, state: &str) -> Result<String, OpenidError>;
}

/// Why an openid could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenidError {
    /// The upstream refused the code: unknown, expired or already used. The client should get
    /// a new one.
    #[error("the code was refused: {upstream_code}: {message}")]
    CodeRejected {
        /// The upstream's error code (WeChat `errcode`, QFPay `respcd`).
        upstream_code: String,
        /// The upstream's message.
        message: String,
    },
    /// The upstream refused the request for another reason (credentials, rate limit).
    #[error("the upstream refused: {upstream_code}: {message}")]
    Rejected {
        /// The upstream's error code.
        upstream_code: String,
        /// The upstream's message.
        message: String,
    },
    /// No answer in time.
    #[error("no answer from the upstream in time")]
    Timeout,
    /// Sending or receiving failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The answer could not be understood (or was too large).
    #[error("unexpected answer: {0}")]
    BadResponse(String),
    /// The resolver is misconfigured (an invalid base URL, an empty appid).
    #[error("invalid configuration: {0}")]
    Config(String),
}

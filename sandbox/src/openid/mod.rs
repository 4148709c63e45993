//! Where a payer's openid comes from: WeChat's `sns/jscode2session` (小程序 `wx.login` codes),
//! the OAuth2 `snsapi_base` redirect and `sns/oauth2/access_token` (公众号 H5), and QFPay's
//! `get_weixin_oauth_code` / `get_weixin_openid`. Implemented from WeChat's and QFPay's public
//! documentation, independently of wxpay-core.

use std::sync::Arc;

use axum::Router;

use crate::crypto;
use crate::error::SandboxError;
use crate::state::Shared;

/// The identity service's state: the app secret and the codes issued.
#[derive(Debug)]
pub(crate) struct OpenidState {
    /// The AppSecret of the merchant's appid (公众号 and 小程序 alike, in the sandbox).
    pub(crate) app_secret: String,
}

impl OpenidState {
    /// A fresh app secret and no codes.
    pub(crate) fn generate() -> Result<Self, SandboxError> {
        Ok(Self {
            app_secret: crypto::random_upper_hex(32)?.to_ascii_lowercase(),
        })
    }
}

/// The identity routes.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
}

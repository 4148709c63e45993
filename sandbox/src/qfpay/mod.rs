//! QFPay (seed 002): `POST /trade/v1/payment` (`pay_type` 800207) and its asynchronous
//! notifications. Implemented from seed 002 and QFPay's public documentation, independently of
//! wxpay-core.

use std::sync::Arc;

use axum::Router;

use crate::crypto;
use crate::error::SandboxError;
use crate::state::Shared;

/// The shop's credentials at the emulated QFPay.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QfpayMaterial {
    /// `app_code`, sent in `X-QF-APPCODE`.
    pub app_code: String,
    /// `client_key`: the secret that keys every signature.
    pub client_key: String,
    /// `mchid`, when the shop is an agent's sub-merchant (`None`: not sent).
    pub mchid: Option<String>,
}

impl std::fmt::Debug for QfpayMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QfpayMaterial")
            .field("app_code", &self.app_code)
            .field("client_key", &"<redacted>")
            .field("mchid", &self.mchid)
            .finish()
    }
}

impl QfpayMaterial {
    /// Fresh random credentials.
    pub(crate) fn generate() -> Result<Self, SandboxError> {
        Ok(Self {
            app_code: crypto::random_upper_hex(32)?,
            client_key: crypto::random_upper_hex(32)?,
            mchid: None,
        })
    }
}

/// The QFPay routes.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
}

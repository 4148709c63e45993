//! The payment gateway of seed 001: `POST /open/trade/wx/jsapi/precreate` (JSON) returns JSAPI
//! parameters for the gateway's own WeChat merchant; after payment the gateway calls the shop's
//! `notify_url` back with a form body signed by MD5 with the shop's `app_key`, verified by the
//! seed's Java `checkOpenSign`.
//!
//! Implemented from seed 001 independently of wxpay-core. The seed documents no request
//! signature for precreate: only `biz_id` must be the shop's. Choices where the seed is silent
//! are marked "sandbox choice".

mod callback;
mod precreate;

use std::ops::RangeInclusive;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use md5::{Digest, Md5};

pub(crate) use callback::payment_success;

use crate::state::Shared;

/// What the gateway considers "the shop received the callback": any HTTP 2xx status, whatever
/// the body. Sandbox choice: seed 001 says only that the gateway "may call back several times"
/// and documents no success reply, so the callback is retried on the retry schedule after a
/// non-2xx status or a transport error, and a 2xx ends delivery.
pub const CALLBACK_RECEIVED: RangeInclusive<u16> = 200..=299;

/// The seed's `pay_type` for JSAPI payments.
pub const PAY_TYPE_JSAPI: &str = "113";

/// The `version` field of callbacks.
pub const VERSION: &str = "1.0";

/// The WeChat merchant id the emulated gateway collects payments on (sandbox choice).
pub(crate) const GATEWAY_MCHID: &str = "1900000109";

/// The shop's credentials at the gateway.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayMaterial {
    /// `biz_id`: the gateway's id for the shop (must be sent in precreate, comes back in
    /// callbacks).
    pub biz_id: String,
    /// `app_key`: the secret paired with `biz_id`, keys the callbacks' MD5 `sign`.
    pub app_key: String,
    /// `client_id` sent in callbacks.
    pub client_id: String,
}

impl std::fmt::Debug for GatewayMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayMaterial")
            .field("biz_id", &self.biz_id)
            .field("app_key", &"<redacted>")
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// The gateway routes.
pub(crate) fn router(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new().route(
        precreate::PATH,
        crate::prepay_faults::applied(shared, post(precreate::precreate)),
    )
}

/// Lower-case hex.
fn hex_lower(bytes: &[u8]) -> String {
    crate::v2::hex_upper(bytes).to_ascii_lowercase()
}

/// The seed's `openSign`: pairs sorted by key (a `TreeMap`, so a repeated key keeps the last
/// value), `k=v` joined by `&`, then `&app_key=KEY`; MD5 of the UTF-8 bytes, lower-case hex.
/// The values are used exactly as given (for callbacks: still URL-encoded).
pub fn open_sign<'a>(
    app_key: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let sorted: std::collections::BTreeMap<&str, &str> = params.into_iter().collect();
    let mut text = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    text.push_str("&app_key=");
    text.push_str(app_key);
    hex_lower(&Md5::digest(text.as_bytes()))
}

/// The seed's `checkOpenSign` over a raw callback body: split on `&`, each field on `=`; fields
/// that do not split into exactly two parts, `sign` and blank values are skipped; the rest are
/// signed with [`open_sign`] and compared with `sign` (case-sensitive, as `Objects.equals`).
pub fn check_open_sign(app_key: &str, sign: &str, body: &str) -> bool {
    let fields = body.split('&').filter_map(|field| {
        // Java's split("=") drops trailing empty parts: "k=" has length 1 and is skipped.
        let mut parts: Vec<&str> = field.split('=').collect();
        while parts.last() == Some(&"") {
            parts.pop();
        }
        match parts.as_slice() {
            [k, v] if *k != "sign" && !v.trim().is_empty() => Some((*k, *v)),
            _ => None,
        }
    });
    crate::v2::ct_eq(&open_sign(app_key, fields), sign)
}

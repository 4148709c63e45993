//! weidoufu (seed 004): `POST /pay/miniapp` (WeChat `pay_type` 1, Alipay `pay_type` 2), its
//! payment callback, and `POST /pay/refund` (see "Refunds" below). Implemented from seed 004
//! and from what the public clients of the live service (`open.weidoufu.com`) send and accept,
//! independently of wxpay-core.
//!
//! ## Wire format (the live service's, as its public clients show it)
//! - Requests are JSON objects (`Content-Type: application/json`); integers may come as JSON
//!   numbers or strings and are signed in decimal.
//! - Request `sign`: every parameter with a non-empty value except `sign`, sorted by name,
//!   `k=v` joined by `&`, then `&secret_key=SECRET_KEY`; MD5, upper-case hex. Checked in
//!   constant time.
//! - The callback is JSON `{"sign", "content": {…}}`, `content` compact JSON with
//!   `mch_trade_no`, `out_order_no`, `transaction_id`, `total_fee`, `attach`, `trade_type` (9),
//!   `pay_type`, `bank_type`, `pay_time` (`YYYY-MM-DD hh:mm:ss`, +08:00), `status` (2 = paid),
//!   `nonce_str`; `sign` is the upper-case MD5 of the lower-case hex HMAC-SHA256 of the content
//!   text keyed by the secret key.
//!
//! ## Sandbox choices (the sources are silent)
//! - Replies are HTTP 200 JSON in the seed's shapes: `{"code":1,"message":"成功","data":{…}}`,
//!   failures `{"code":0,"message":"…","data":{"mch_trade_no","out_order_no","jsapi":""}}`
//!   (a failure's `mch_trade_no` is a fresh number, as in the seed's example).
//! - `pay_type` 1 makes a WeChat JSAPI order on weidoufu's own WeChat merchant
//!   ([`WEIDOUFU_WECHAT_MCHID`]), its `pay_sign` MD5 with a key the shop never sees;
//!   `pay_type` 2 makes an Alipay trade (`trade_no`, 29 digits like the seed's), paid with
//!   `PayRequest::alipay_trade_no` (`/sandbox/pay` `{"alipay_trade_no": …}`).
//! - The same `out_order_no` with identical parameters returns the same `mch_trade_no` and
//!   payment (a fresh `prepay_id` once the old one expired); other parameters get `订单号重复`;
//!   a paid order gets `订单已支付`.
//! - `openid`/`buyer_id` may be up to 64 characters (the seed says `string(32)`; real openids
//!   are 28, the sandbox accepts the longer ones other upstreams allow).
//! - The shop acknowledges a callback with HTTP 200 and the body `SUCCESS`; anything else is
//!   retried on the sandbox's retry schedule.
//!
//! ## Refunds
//! `POST /pay/refund` with `access_key`, `out_order_no`, `refund_fee` (fen) and `sign`, encoded
//! and signed like `/pay/miniapp` (seed 004 has no refund; the fields are those of the one
//! public weidoufu client that refunds). `code` `1` means taken; there is no refund query and
//! no refund callback. Over-refunds, unpaid orders and injected refusals are `code` `0`; a lost
//! answer is HTTP 502 (the refund stands).

mod callback;
mod miniapp;
mod refund;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;

pub(crate) use callback::payment_success;

use crate::crypto;
use crate::error::SandboxError;
use crate::state::Shared;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::v2;

/// The WeChat merchant id the emulated weidoufu collects payments on (sandbox choice).
pub const WEIDOUFU_WECHAT_MCHID: &str = "1900000404";

/// The shop's application keys at the emulated weidoufu.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WeidoufuMaterial {
    /// `access_key` (AK), sent in every request.
    pub access_key: String,
    /// `secret_key` (SK): keys every signature, never sent.
    pub secret_key: String,
    /// The API v2 key of weidoufu's own WeChat merchant (signs `pay_sign`; never shown).
    pub(crate) wechat_key: String,
}

impl std::fmt::Debug for WeidoufuMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeidoufuMaterial")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl WeidoufuMaterial {
    /// Fresh random keys.
    pub(crate) fn generate() -> Result<Self, SandboxError> {
        Ok(Self {
            access_key: crypto::random_alnum(32)?,
            secret_key: crypto::random_alnum(32)?,
            wechat_key: crypto::random_alnum(32)?,
        })
    }
}

/// The weidoufu routes.
pub(crate) fn router(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/pay/miniapp",
            crate::prepay_faults::applied(shared, post(miniapp::miniapp)),
        )
        .route("/pay/refund", post(refund::refund))
}

/// Parses a signed JSON request and checks its `access_key` and `sign` (constant time). On
/// failure: the `out_order_no` sent (or empty) and the message to answer with.
pub(crate) fn authenticate(
    shared: &Shared,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<BTreeMap<String, String>, (String, String)> {
    if !miniapp::is_json(headers) {
        return Err((String::new(), "请求格式错误：须为application/json".into()));
    }
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) else {
        return Err((String::new(), "请求格式错误：须为JSON对象".into()));
    };
    let mut params = BTreeMap::new();
    for (name, value) in object {
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Null => continue,
            _ => {
                return Err((
                    String::new(),
                    format!("请求格式错误：{name}须为字符串或数字"),
                ));
            }
        };
        params.insert(name, text);
    }
    let out_order_no = params.get("out_order_no").cloned().unwrap_or_default();
    if params.get("access_key") != Some(&shared.weidoufu.access_key) {
        return Err((out_order_no, "access_key错误".into()));
    }
    let Some(given) = params.get("sign") else {
        return Err((out_order_no, "签名错误".into()));
    };
    let want = sign(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &shared.weidoufu.secret_key,
    );
    if !v2::ct_eq(&want, &given.to_ascii_uppercase()) {
        return Err((out_order_no, "签名错误".into()));
    }
    Ok(params)
}

/// The weidoufu request signature of `params` (see the module docs).
pub fn sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, secret_key: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_unstable();
    let mut text = String::new();
    for (k, v) in pairs {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('&');
    }
    text.push_str("secret_key=");
    text.push_str(secret_key);
    v2::hex_upper(&Md5::digest(text.as_bytes()))
}

/// The callback signature of `content` (its JSON text): upper-case hex MD5 of the lower-case
/// hex HMAC-SHA256 keyed by the secret key.
pub fn callback_sign(content: &[u8], secret_key: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(content);
    let hex = v2::hex_upper(&mac.finalize().into_bytes()).to_ascii_lowercase();
    v2::hex_upper(&Md5::digest(hex.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sorted_pairs_with_the_secret_key() {
        let text = "access_key=AK&body=x y&pay_type=1&secret_key=SK";
        let want = v2::hex_upper(&Md5::digest(text.as_bytes()));
        let params = [
            ("pay_type", "1"),
            ("body", "x y"),
            ("attach", ""),
            ("access_key", "AK"),
            ("sign", "whatever"),
        ];
        assert_eq!(sign(params, "SK"), want);
    }

    /// Computed apart (Python hmac/hashlib) over the same content and key.
    #[test]
    fn callback_signature_vector() {
        let content = br#"{"mch_trade_no":"202105135513716648486662","out_order_no":"180901620895069445","transaction_id":"4200001234567890","total_fee":1,"attach":null,"trade_type":9,"pay_type":1,"bank_type":"OTHERS","pay_time":"2021-05-11 11:31:08","status":2,"nonce_str":"82aafec92844bd7b7575e5d642911ac9"}"#;
        assert_eq!(
            callback_sign(content, "sk_test_0123456789"),
            "92305F2C278B12B0ECE8B87AF9B958EE"
        );
    }
}

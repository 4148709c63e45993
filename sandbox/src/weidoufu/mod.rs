//! weidoufu (seed 004): `POST /pay/miniapp` (WeChat `pay_type` 1, Alipay `pay_type` 2), its
//! payment callback, and `POST /pay/refund` (see "Refunds" below). Implemented from seed 004 independently of wxpay-core.
//!
//! ## Signature (OUR CHOICE: the seed says only "签名结果(大写)")
//! The WeChat Pay v2 rule its field names follow: every parameter with a non-empty value except
//! `sign`, sorted by name, `k=v` joined by `&`, then `&key=SECRET_KEY`; MD5, upper-case hex;
//! values are the plain (decoded) text. Requests are verified in constant time; callbacks are
//! signed the same way.
//!
//! ## Sandbox choices (the seed is silent)
//! - The request is a form body (`application/x-www-form-urlencoded`).
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
//! - After payment the shop's `notify_url` gets a signed form callback: `access_key`,
//!   `out_order_no`, `mch_trade_no`, `trade_no` (WeChat's transaction id or the Alipay trade
//!   number), `pay_type`, `total_fee`, `openid` or `buyer_id`, `attach` (if any),
//!   `trade_status` `SUCCESS`, `pay_time` (`YYYY-MM-DD hh:mm:ss`, +08:00), `nonce_str`,
//!   `sign`. The shop acknowledges with HTTP 200 and the body `SUCCESS`; anything else is
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
use crate::v2::{self, SignType};

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
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/pay/miniapp", post(miniapp::miniapp))
        .route("/pay/refund", post(refund::refund))
}

/// Parses a signed form request and checks its `access_key` and `sign` (constant time). On
/// failure: the `out_order_no` sent (or empty) and the message to answer with.
pub(crate) fn authenticate(
    shared: &Shared,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<BTreeMap<String, String>, (String, String)> {
    if !miniapp::is_form(headers) {
        return Err((
            String::new(),
            "请求格式错误：须为application/x-www-form-urlencoded".into(),
        ));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err((String::new(), "请求格式错误：不是UTF-8".into()));
    };
    let mut params = BTreeMap::new();
    if let Err(message) = crate::qfpay::parse_form(text, &mut params) {
        return Err((String::new(), format!("请求格式错误：{message}")));
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

/// The weidoufu signature of `params` (see the module docs).
pub fn sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, secret_key: &str) -> String {
    v2::sign(params, secret_key, SignType::Md5)
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use super::*;

    #[test]
    fn signature_is_the_v2_rule_with_the_secret_key() {
        let text = "access_key=AK&body=x y&pay_type=1&key=SK";
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
}

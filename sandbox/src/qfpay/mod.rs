//! QFPay (seed 002): `POST /trade/v1/payment` (`pay_type` 800207, WeChat JSAPI), `POST
//! /trade/v1/query`, `POST /trade/v1/close`, `POST /trade/v1/reversal` and `POST
//! /trade/v1/refund`, and the asynchronous payment and refund notifications. Implemented from seed 002 and QFPay's public documentation
//! (<https://sdk.qfapi.com>), independently of wxpay-core.
//!
//! ## Requests
//! Every request carries `X-QF-APPCODE` (the shop's `app_code`) and `X-QF-SIGN`: the parameters
//! with a non-empty value, sorted by name, `k=v` joined by `&`, the `client_key` appended
//! directly, MD5, upper-case hex (QFPay "Signature Generation", the seed's `make_req_sign`),
//! compared in constant time. Parameters come in the form body
//! (`application/x-www-form-urlencoded`, as QFPay documents) and, as the seed's python
//! `requests.post(params=…)` sends them, in the query string: the sandbox signs over both (a
//! parameter given twice is refused). `mchid` must be sent exactly when the shop has one
//! ("if mchid is not provided, merchants shall not pass the mchid field", QFPay "Transaction
//! Enquiry").
//!
//! Replies are JSON with HTTP 200, `respcd` `0000` on success. The error `respcd`s, from QFPay's
//! status codes page (<https://sdk.qfapi.com/docs/api-reference/status-codes> and
//! <https://sdk.qfapi.com/integration/api-reference/status-codes>), are the constants below.
//!
//! ## Sandbox choices (QFPay's docs are silent)
//! - Only `pay_type` 800207 (WeChat JSAPI) is emulated. QFPay collects on its own WeChat
//!   merchant ([`QFPAY_WECHAT_MCHID`]): `pay_params` are signed MD5 with that merchant's key,
//!   which the shop never sees; `/sandbox/pay` and the browser shim pay them.
//! - The same `out_trade_no` with identical parameters returns the same `syssn` and prepay
//!   (a fresh `prepay_id` once the old one has expired); with other parameters it is refused
//!   with [`RESPCD_ORDER_NUMBER_REUSED`].
//! - The notification goes to the `notify_url` of the payment request (QFPay configures one
//!   per `app_code` by e-mail); without a `notify_url` nothing is notified.
//! - `/trade/v1/close` (the contract's close) and `/trade/v1/reversal` (QFPay's documented
//!   cancel of an unfinished transaction) both close an unpaid order: `out_trade_no` or
//!   `syssn`; `txamt` and `txdtm`, when sent, must be the payment's.
//! - In query results `cancel` is `"0"`, `"1"` once the order was closed or reversed, `"5"`
//!   once partly refunded and `"3"` once fully refunded. A query by a refund's `syssn` or
//!   `out_trade_no` lists the refund (`order_type` `refund`, with `orig_syssn`).

mod close;
mod notify;
mod payment;
mod query;
mod refund;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

pub(crate) use notify::payment_success;
pub use refund::{
    RESPCD_EXCEEDS_REFUNDABLE, RESPCD_ORDER_NOT_PAID, RESPCD_PROCESSING, RESPCD_REFUND_DENIED,
};

use crate::config::SandboxConfig;
use crate::crypto;
use crate::error::SandboxError;
use crate::state::Shared;
use crate::v2::{ct_eq, hex_upper};

/// Success.
pub const RESPCD_SUCCESS: &str = "0000";
/// "Request format error": the body is not a form, or a parameter is given twice.
pub const RESPCD_FORMAT_ERROR: &str = "1103";
/// "Request parameter error": an unknown `app_code`, a missing or invalid parameter, an
/// `mchid` that is not the shop's.
pub const RESPCD_PARAMETER_ERROR: &str = "1104";
/// "Signature error": `X-QF-SIGN` missing or wrong.
pub const RESPCD_SIGNATURE_ERROR: &str = "1108";
/// "The transaction does not exist or is not operational": close/reversal of an unknown order.
pub const RESPCD_NO_SUCH_TRANSACTION: &str = "1136";
/// "Order already closed".
pub const RESPCD_ORDER_CLOSED: &str = "1142";
/// "The order has not been paid for": a query's per-order `respcd` while unpaid.
pub const RESPCD_NOT_PAID: &str = "1143";
/// "WeChat Pay transaction error": a query's per-order `respcd` after a failed payment.
pub const RESPCD_WECHAT_ERROR: &str = "1147";
/// "Order already paid": a repeated payment request or a close of a paid order.
pub const RESPCD_ORDER_PAID: &str = "1260";
/// "Transaction serial number repeats": the same `out_trade_no` with other parameters.
pub const RESPCD_ORDER_NUMBER_REUSED: &str = "2011";
/// "The transaction failed. Please try again later": the sandbox could not make the payment
/// (its random number source failed); nothing was stored.
pub const RESPCD_TRY_AGAIN: &str = "1205";

/// The only `pay_type` emulated: WeChat JSAPI (公众号支付).
pub const PAY_TYPE_WECHAT_JSAPI: &str = "800207";

/// The WeChat merchant id the emulated QFPay collects payments on (sandbox choice).
pub const QFPAY_WECHAT_MCHID: &str = "1900000207";

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
    /// The API v2 key of QFPay's own WeChat merchant (signs `pay_params`; never shown).
    pub(crate) wechat_key: String,
}

impl std::fmt::Debug for QfpayMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QfpayMaterial")
            .field("app_code", &self.app_code)
            .field("client_key", &"<redacted>")
            .field("mchid", &self.mchid)
            .finish_non_exhaustive()
    }
}

impl QfpayMaterial {
    /// Fresh random credentials, with the configured `mchid` (1 to 16 letters and digits).
    pub(crate) fn generate(config: &SandboxConfig) -> Result<Self, SandboxError> {
        if let Some(mchid) = &config.qfpay_mchid
            && !((1..=16).contains(&mchid.len())
                && mchid.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(SandboxError::Config(
                "the QFPay mchid must be 1 to 16 letters and digits".into(),
            ));
        }
        Ok(Self {
            app_code: crypto::random_upper_hex(32)?,
            client_key: crypto::random_upper_hex(32)?,
            mchid: config.qfpay_mchid.clone(),
            wechat_key: crypto::random_alnum(32)?,
        })
    }
}

/// The QFPay routes.
pub(crate) fn router(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/trade/v1/payment",
            crate::prepay_faults::applied(shared, post(payment::payment)),
        )
        .route("/trade/v1/query", post(query::query))
        .route("/trade/v1/close", post(close::close))
        .route("/trade/v1/reversal", post(close::close))
        .route("/trade/v1/refund", post(refund::refund))
}

/// A QFPay JSON reply (HTTP 200).
fn reply(value: &Value) -> Response {
    crate::v3::json_response(StatusCode::OK, value)
}

/// A refusal: `respcd` with the message in `respmsg` and `resperr`.
fn refuse(respcd: &str, message: &str) -> Response {
    reply(&json!({ "respcd": respcd, "respmsg": message, "resperr": message }))
}

/// [`refuse`], boxed (an `Err` variant stays small).
fn refusal(respcd: &str, message: &str) -> Box<Response> {
    Box::new(refuse(respcd, message))
}

/// The request signature (`make_req_sign`) over `params` (non-empty values, `sign` excluded).
pub(crate) fn request_sign<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    client_key: &str,
) -> String {
    let sorted: BTreeMap<&str, &str> = params
        .into_iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    let mut text = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    text.push_str(client_key);
    hex_upper(&Md5::digest(text.as_bytes()))
}

/// The notification signature: upper-case hex MD5 of the raw body followed by the
/// `client_key` (QFPay "Asynchronous Notifications", "Signature Verification").
pub(crate) fn body_sign(body: &[u8], client_key: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(body);
    md5.update(client_key.as_bytes());
    hex_upper(&md5.finalize())
}

/// An authenticated request's parameters (decoded; empty values dropped).
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    /// The value of `name`, if sent non-empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// All parameters.
    pub(crate) fn all(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// Parses one `application/x-www-form-urlencoded` text into `into`; a name given twice (here
/// or in an earlier text) is an error.
pub(crate) fn parse_form(text: &str, into: &mut BTreeMap<String, String>) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for field in text.split('&').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        if seen.contains(&k) || into.contains_key(&k) {
            return Err(format!("the parameter {k} is given more than once"));
        }
        seen.push(k.clone());
        if !v.is_empty() {
            into.insert(k, v);
        }
    }
    Ok(())
}

fn decode(text: &str) -> Result<String, String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "the parameters are not valid UTF-8".to_owned())
}

/// Checks `X-QF-APPCODE`, parses the query string and form body, verifies `X-QF-SIGN` over
/// them and checks `mchid`. On failure, the reply to send.
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Params, Box<Response>> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header("X-QF-APPCODE") != Some(shared.qfpay.app_code.as_str()) {
        return Err(refusal(
            RESPCD_PARAMETER_ERROR,
            "X-QF-APPCODE is missing or unknown",
        ));
    }
    let form = header(http::header::CONTENT_TYPE.as_str()).is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !body.is_empty() && !form {
        return Err(refusal(
            RESPCD_FORMAT_ERROR,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let Ok(body) = std::str::from_utf8(body) else {
        return Err(refusal(RESPCD_FORMAT_ERROR, "the body is not valid UTF-8"));
    };
    let mut params = BTreeMap::new();
    if let Err(message) = parse_form(query.unwrap_or_default(), &mut params)
        .and_then(|()| parse_form(body, &mut params))
    {
        return Err(refusal(RESPCD_FORMAT_ERROR, &message));
    }
    let Some(given) = header("X-QF-SIGN") else {
        return Err(refusal(RESPCD_SIGNATURE_ERROR, "X-QF-SIGN is missing"));
    };
    let want = request_sign(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &shared.qfpay.client_key,
    );
    if !ct_eq(&want, &given.trim().to_ascii_uppercase()) {
        return Err(refusal(RESPCD_SIGNATURE_ERROR, "signature error"));
    }
    let params = Params(params);
    match (shared.qfpay.mchid.as_deref(), params.get("mchid")) {
        (None, None) => {}
        (Some(mine), Some(given)) if mine == given => {}
        (Some(_), None) => {
            return Err(refusal(
                RESPCD_PARAMETER_ERROR,
                "mchid is required for this app_code",
            ));
        }
        (None, Some(_)) | (Some(_), Some(_)) => {
            return Err(refusal(
                RESPCD_PARAMETER_ERROR,
                "mchid is not a merchant of this app_code",
            ));
        }
    }
    Ok(params)
}

const TXDTM: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Whether `s` is a `YYYY-MM-DD hh:mm:ss` time.
fn valid_txdtm(s: &str) -> bool {
    s.len() == 19 && PrimitiveDateTime::parse(s, TXDTM).is_ok()
}

/// `YYYY-MM-DD hh:mm:ss` in China Standard Time (`sysdtm`, `paydtm`; sandbox choice: QFPay
/// does not name the zone of its own times).
fn cst(t: time::OffsetDateTime) -> String {
    t.to_offset(crate::timefmt::CST)
        .format(TXDTM)
        .unwrap_or_else(|_| String::from("1970-01-01 08:00:00"))
}

/// Parses a positive amount of fen (`txamt`): decimal digits only, 1 to `i32::MAX` (what a
/// WeChat order can carry).
fn parse_txamt(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 11 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>()
        .ok()
        .filter(|a| (1..=i64::from(i32::MAX)).contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_make_req_sign() {
        let text = "out_trade_no=1&pay_type=800207&txamt=10KEY";
        let want = hex_upper(&Md5::digest(text.as_bytes()));
        let params = [
            ("txamt", "10"),
            ("pay_type", "800207"),
            ("out_trade_no", "1"),
            ("goods_name", ""),
        ];
        assert_eq!(request_sign(params, "KEY"), want);
        assert_eq!(
            body_sign(b"{\"a\":1}", "KEY"),
            hex_upper(&Md5::digest(b"{\"a\":1}KEY"))
        );
    }

    #[test]
    fn forms_parse_and_refuse_repeats() {
        let mut p = BTreeMap::new();
        parse_form("a=1&b=x+y%21&c=", &mut p).unwrap();
        assert_eq!(p.get("b").map(String::as_str), Some("x y!"));
        assert!(!p.contains_key("c"));
        assert!(parse_form("a=2", &mut p).is_err());
        assert!(parse_form("d=1&d=2", &mut BTreeMap::new()).is_err());
    }

    #[test]
    fn txdtm_and_txamt() {
        assert!(valid_txdtm("2024-05-01 12:00:00"));
        assert!(!valid_txdtm("2024-05-01T12:00:00"));
        assert!(!valid_txdtm("2024-13-01 12:00:00"));
        assert_eq!(parse_txamt("1"), Some(1));
        assert_eq!(parse_txamt("0"), None);
        assert_eq!(parse_txamt("-1"), None);
        assert_eq!(parse_txamt("1.5"), None);
        assert_eq!(parse_txamt("2147483648"), None);
    }
}

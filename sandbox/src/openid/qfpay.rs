//! QFPay's openid flow for merchants without their own verified 公众号 (seed 002, "获取微信
//! oauth_code" / "获取微信openid"; <https://sdk.qfapi.com>): the browser is sent to
//! `get_weixin_oauth_code`, which redirects back with `code`; the shop's server exchanges it at
//! `get_weixin_openid`.
//!
//! Signature (QFPay "Signature Generation", the seed's `make_req_sign`): the parameters with a
//! non-empty value except `sign`, sorted by name, `k=v` joined by `&`, the `client_key` appended
//! directly, MD5, upper-case hex; compared in constant time. `get_weixin_oauth_code` carries it
//! in the `sign` parameter, `get_weixin_openid` in the `X-QF-SIGN` header (with
//! `X-QF-APPCODE`). The sandbox-only `sandbox_openid` is not signed.
//!
//! `respcd`s, from QFPay's status codes page
//! (<https://sdk.qfapi.com/docs/api-reference/status-codes>): `1108` signature error (a missing
//! or wrong signature); `1104` request parameter error (an unknown `app_code`, a missing or bad
//! `redirect_uri` or `code`, an `mchid` that is not the merchant's, and a code that is unknown,
//! expired or already used — QFPay documents no code of its own for those).
//! `get_weixin_openid` answers them with HTTP 200, as QFPay's JSON APIs do; the browser-facing
//! `get_weixin_oauth_code` cannot redirect without a valid request, so it answers them with a 400
//! (OUR CHOICE: QFPay does not document its error page).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use md5::{Digest, Md5};
use serde_json::json;

use super::codes::{CodeFamily, RedeemError};
use super::{QueryParams, found, is_absolute_http_url, redirect_with};
use crate::state::Shared;
use crate::v2::{ct_eq, hex_upper};

/// Signature error.
const RESPCD_SIGNATURE_ERROR: &str = "1108";
/// Request parameter error.
const RESPCD_PARAMETER_ERROR: &str = "1104";

/// The longest `redirect_uri` QFPay takes (`String(512)`).
const MAX_REDIRECT_URI_LEN: usize = 512;

/// The QFPay request signature over `params` (already without `sign` and empty values).
fn request_sign<'a>(params: impl Iterator<Item = (&'a str, &'a str)>, client_key: &str) -> String {
    let mut sorted: Vec<(&str, &str)> = params.collect();
    sorted.sort_unstable();
    let mut text = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    text.push_str(client_key);
    hex_upper(&Md5::digest(text.as_bytes()))
}

/// Whether `given` is the signature of `params` (case-insensitive hex, constant time).
fn signature_matches<'a>(
    params: impl Iterator<Item = (&'a str, &'a str)>,
    client_key: &str,
    given: &str,
) -> bool {
    ct_eq(
        &request_sign(params, client_key),
        &given.to_ascii_uppercase(),
    )
}

fn respond(status: StatusCode, respcd: &str, resperr: &str) -> Response {
    crate::v3::json_response(
        status,
        &json!({ "respcd": respcd, "respmsg": resperr, "resperr": resperr }),
    )
}

/// The `mchid` sent must be the merchant's (when it has one) and must be sent then.
fn check_mchid(shared: &Shared, given: Option<&str>) -> Result<(), &'static str> {
    match (shared.qfpay.mchid.as_deref(), given) {
        (None, None) => Ok(()),
        (Some(mine), Some(given)) if mine == given => Ok(()),
        (Some(_), None) => Err("mchid is required for this app_code"),
        (None, Some(_)) | (Some(_), Some(_)) => Err("mchid is not a merchant of this app_code"),
    }
}

/// `GET /tool/v1/get_weixin_oauth_code`: 302 to `redirect_uri` with `code`.
pub(super) async fn get_weixin_oauth_code(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let bad = |respcd, message: &str| respond(StatusCode::BAD_REQUEST, respcd, message);
    let q = match QueryParams::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return bad(RESPCD_PARAMETER_ERROR, &message),
    };
    if q.get("app_code") != Some(shared.qfpay.app_code.as_str()) {
        return bad(RESPCD_PARAMETER_ERROR, "app_code is missing or unknown");
    }
    let Some(sign) = q.get("sign") else {
        return bad(RESPCD_SIGNATURE_ERROR, "sign is missing");
    };
    let signed = q
        .non_empty()
        .filter(|(k, _)| *k != "sign" && *k != "sandbox_openid");
    if !signature_matches(signed, &shared.qfpay.client_key, sign) {
        return bad(RESPCD_SIGNATURE_ERROR, "signature error");
    }
    let Some(redirect_uri) = q
        .get("redirect_uri")
        .filter(|u| u.len() <= MAX_REDIRECT_URI_LEN && is_absolute_http_url(u))
    else {
        return bad(
            RESPCD_PARAMETER_ERROR,
            "redirect_uri must be an absolute http(s) URL of at most 512 characters",
        );
    };
    if let Err(message) = check_mchid(&shared, q.get("mchid")) {
        return bad(RESPCD_PARAMETER_ERROR, message);
    }
    let payer = match shared.openid.payer(q.get("sandbox_openid")) {
        Ok(p) => p,
        Err(message) => return bad(RESPCD_PARAMETER_ERROR, &message),
    };
    match shared.openid.issue(CodeFamily::Qfpay, payer, None) {
        Ok(code) => found(&redirect_with(redirect_uri, &[("code", &code)])),
        Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, "1254", &e.to_string()),
    }
}

/// `GET /tool/v1/get_weixin_openid`: exchanges a code from `get_weixin_oauth_code` for the
/// payer's openid.
pub(super) async fn get_weixin_openid(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let refuse = |respcd, message: &str| respond(StatusCode::OK, respcd, message);
    let q = match QueryParams::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return refuse(RESPCD_PARAMETER_ERROR, &message),
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header("X-QF-APPCODE") != Some(shared.qfpay.app_code.as_str()) {
        return refuse(RESPCD_PARAMETER_ERROR, "X-QF-APPCODE is missing or unknown");
    }
    let Some(sign) = header("X-QF-SIGN") else {
        return refuse(RESPCD_SIGNATURE_ERROR, "X-QF-SIGN is missing");
    };
    let signed = q.non_empty().filter(|(k, _)| *k != "sign");
    if !signature_matches(signed, &shared.qfpay.client_key, sign) {
        return refuse(RESPCD_SIGNATURE_ERROR, "signature error");
    }
    let Some(code) = q.get("code") else {
        return refuse(RESPCD_PARAMETER_ERROR, "code is missing");
    };
    if let Err(message) = check_mchid(&shared, q.get("mchid")) {
        return refuse(RESPCD_PARAMETER_ERROR, message);
    }
    match shared.openid.redeem(code, CodeFamily::Qfpay) {
        Ok(grant) => crate::v3::json_response(
            StatusCode::OK,
            &json!({ "respcd": "0000", "respmsg": "", "resperr": "", "openid": grant.openid }),
        ),
        Err(RedeemError::Invalid) => refuse(
            RESPCD_PARAMETER_ERROR,
            "code is invalid or expired (valid 5 minutes)",
        ),
        Err(RedeemError::Used) => refuse(
            RESPCD_PARAMETER_ERROR,
            "code has been used (each code is usable once)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_the_seed_make_req_sign() {
        // make_req_sign({'app_code': 'A', 'redirect_uri': 'http://x/getcode'}, 'KEY') is
        // MD5("app_code=A&redirect_uri=http://x/getcode" + "KEY"), upper-case.
        let text = "app_code=A&redirect_uri=http://x/getcode".to_owned() + "KEY";
        let want = hex_upper(&Md5::digest(text.as_bytes()));
        let params = [("redirect_uri", "http://x/getcode"), ("app_code", "A")];
        assert_eq!(request_sign(params.into_iter(), "KEY"), want);
        assert!(signature_matches(
            params.into_iter(),
            "KEY",
            &want.to_ascii_lowercase()
        ));
        assert!(!signature_matches(params.into_iter(), "KEY2", &want));
    }
}

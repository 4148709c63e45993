//! WeChat's identity endpoints: the 公众号 OAuth2 redirect and code exchange
//! (<https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html>)
//! and the mini program's `code2Session`
//! (<https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html>).
//!
//! The two exchanges answer errors as WeChat does: HTTP 200 with `{"errcode","errmsg"}`. The
//! codes are WeChat's global return codes
//! (<https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html>):
//! 41002 appid missing, 40013 invalid appid, 41004 secret missing, 40125 invalid appsecret,
//! 41008 code missing, 40002 invalid grant_type, 40029 invalid code (unknown, expired, or issued
//! for the other exchange), 40163 code been used; 40035 invalid args (an undecodable or repeated
//! parameter) and -1 system error. Parameters are checked in that order; a refused
//! exchange leaves the code redeemable.
//!
//! OUR CHOICES where the docs leave room: the payer always agrees (there is no "refused"
//! redirect); the 网页授权域名 allow-list is not emulated (any absolute `http(s)` `redirect_uri`
//! is accepted); `state` may hold any characters (the docs suggest `[A-Za-z0-9]` and cap it at
//! 128 bytes; the cap is enforced) and is carried back percent-encoded.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::codes::{CodeFamily, RedeemError};
use super::{QueryParams, found, is_absolute_http_url, redirect_with};
use crate::crypto;
use crate::state::Shared;
use crate::v2::ct_eq;

/// Lifetime of a web access token, seconds (WeChat: `"expires_in":7200`).
const ACCESS_TOKEN_EXPIRES_IN: u32 = 7200;

/// The longest `state` WeChat carries back (the OAuth2 page: "最多128字节").
const MAX_STATE_LEN: usize = 128;

/// `code2Session` is answered `text/plain` on purpose: WeChat's API gateway is known to label
/// this JSON body so, and a client must parse the body whatever the label says. (OUR CHOICE for
/// the sandbox, to catch a client that insists on `application/json`.)
const JSCODE2SESSION_CONTENT_TYPE: &str = "text/plain";

/// The content type WeChat's `sns/oauth2/access_token` answers with.
const API_CONTENT_TYPE: &str = "application/json; encoding=utf-8";

fn reply(content_type: &'static str, body: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.to_string(),
    )
        .into_response()
}

fn errcode(content_type: &'static str, code: i32, message: &str) -> Response {
    reply(content_type, &json!({ "errcode": code, "errmsg": message }))
}

/// The error page `authorize` shows instead of redirecting (WeChat shows an HTML page naming
/// the bad parameter, e.g. "appid参数错误").
fn error_page(message: &str) -> Response {
    // The message can quote a parameter name from the request: escape it.
    let message = html_escape(message);
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>微信网页授权 (sandbox)</title>\
         </head><body><h1>Oops! Something went wrong:(</h1><p id=\"wxpay-sandbox-error\">{message}</p>\
         </body></html>"
    );
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /connect/oauth2/authorize`: the payer agrees at once; 302 to `redirect_uri` with
/// `code=…&state=…`.
pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match QueryParams::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return error_page(&message),
    };
    if q.get("appid") != Some(shared.merchant.appid.as_str()) {
        return error_page("appid参数错误");
    }
    let Some(redirect_uri) = q.get("redirect_uri").filter(|u| is_absolute_http_url(u)) else {
        return error_page("redirect_uri参数错误");
    };
    if q.get("response_type") != Some("code") {
        return error_page("response_type参数错误");
    }
    let scope = match q.get("scope") {
        Some(s @ ("snsapi_base" | "snsapi_userinfo")) => s,
        _ => return error_page("scope参数错误或没有scope权限"),
    };
    let state = q.get("state");
    if state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return error_page("state参数错误: 最多128字节");
    }
    let payer = match shared.openid.payer(q.get("sandbox_openid")) {
        Ok(p) => p,
        Err(message) => return error_page(&format!("sandbox_openid参数错误: {message}")),
    };
    let code = match shared
        .openid
        .issue(CodeFamily::OfficialAccountOauth, payer, Some(scope))
    {
        Ok(c) => c,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    found(&redirect_with(redirect_uri, &params))
}

/// Checks `appid`, `secret` and `grant_type` as both exchanges do; `Err` is the errcode reply.
fn check_app(
    shared: &Shared,
    q: &QueryParams,
    content_type: &'static str,
) -> Result<(), Box<Response>> {
    let fail = |code, message: &str| Err(Box::new(errcode(content_type, code, message)));
    match q.get("appid") {
        None => return fail(41002, "appid missing"),
        Some(appid) if appid != shared.merchant.appid => return fail(40013, "invalid appid"),
        Some(_) => {}
    }
    match q.get("secret") {
        None => return fail(41004, "appsecret missing"),
        Some(secret) if !ct_eq(secret, &shared.openid.app_secret) => {
            return fail(40125, "invalid appsecret");
        }
        Some(_) => {}
    }
    Ok(())
}

/// Checks `grant_type=authorization_code`.
fn check_grant_type(q: &QueryParams, content_type: &'static str) -> Result<(), Box<Response>> {
    if q.get("grant_type") == Some("authorization_code") {
        Ok(())
    } else {
        Err(Box::new(errcode(content_type, 40002, "invalid grant_type")))
    }
}

fn redeem_error(content_type: &'static str, e: RedeemError) -> Response {
    match e {
        RedeemError::Invalid => errcode(content_type, 40029, "invalid code"),
        RedeemError::Used => errcode(content_type, 40163, "code been used"),
    }
}

/// `GET /sns/oauth2/access_token`: exchanges an OAuth2 code for a web access token and the
/// payer's openid.
pub(super) async fn access_token(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let ct = API_CONTENT_TYPE;
    let q = match QueryParams::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return errcode(ct, 40035, &format!("invalid args: {message}")),
    };
    if let Err(r) = check_app(&shared, &q, ct) {
        return *r;
    }
    let Some(code) = q.get("code") else {
        return errcode(ct, 41008, "missing code");
    };
    if let Err(r) = check_grant_type(&q, ct) {
        return *r;
    }
    let grant = match shared.openid.redeem(code, CodeFamily::OfficialAccountOauth) {
        Ok(g) => g,
        Err(e) => return redeem_error(ct, e),
    };
    let tokens = crypto::random_alnum(86).and_then(|a| Ok((a, crypto::random_alnum(86)?)));
    let Ok((access, refresh)) = tokens else {
        return errcode(ct, -1, "system error");
    };
    reply(
        ct,
        &json!({
            "access_token": access,
            "expires_in": ACCESS_TOKEN_EXPIRES_IN,
            "refresh_token": refresh,
            "openid": grant.openid,
            "scope": grant.scope.unwrap_or_else(|| "snsapi_base".to_owned()),
        }),
    )
}

/// `GET /sns/jscode2session`: exchanges a `wx.login` code for the payer's openid and a session
/// key.
pub(super) async fn jscode2session(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let ct = JSCODE2SESSION_CONTENT_TYPE;
    let q = match QueryParams::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return errcode(ct, 40035, &format!("invalid args: {message}")),
    };
    if let Err(r) = check_app(&shared, &q, ct) {
        return *r;
    }
    let Some(code) = q.get("js_code") else {
        return errcode(ct, 41008, "missing code");
    };
    if let Err(r) = check_grant_type(&q, ct) {
        return *r;
    }
    let grant = match shared.openid.redeem(code, CodeFamily::MiniProgramLogin) {
        Ok(g) => g,
        Err(e) => return redeem_error(ct, e),
    };
    // A session key is 16 random bytes, base64 (24 characters), as WeChat's.
    let mut key = [0u8; 16];
    if crypto::random_bytes(&mut key).is_err() {
        return errcode(ct, -1, "system error");
    }
    reply(
        ct,
        &json!({
            "session_key": crypto::base64_encode(&key),
            "openid": grant.openid,
        }),
    )
}

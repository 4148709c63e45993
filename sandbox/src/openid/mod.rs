//! Where a payer's openid comes from: WeChat's `sns/jscode2session` (小程序 `wx.login` codes),
//! the OAuth2 `snsapi_base` redirect and `sns/oauth2/access_token` (公众号 H5), and QFPay's
//! `get_weixin_oauth_code` / `get_weixin_openid`. Implemented from WeChat's and QFPay's public
//! documentation, independently of wxpay-core.
//!
//! ## Endpoints
//! - `GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state` — the
//!   payer "agrees" at once: 302 to `redirect_uri` with `code` (and `state`). A bad parameter
//!   gets a 400 page naming it, as WeChat's error page does (`appid参数错误`, …).
//! - `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code` →
//!   `{"access_token","expires_in":7200,"refresh_token","openid","scope"}`.
//! - `GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code` →
//!   `{"openid","session_key"}`.
//! - `POST /sandbox/wx-login` `{"openid"?}` → `{"code"}`: what `wx.login` gives a mini program
//!   (CORS open; the browser shim's `wx.login` calls it).
//! - `GET /tool/v1/get_weixin_oauth_code?app_code&redirect_uri&sign[&mchid]` — QFPay: 302 to
//!   `redirect_uri` with `code`.
//! - `GET /tool/v1/get_weixin_openid?code[&mchid]` with `X-QF-APPCODE` and `X-QF-SIGN` — QFPay:
//!   `{"respcd":"0000","respmsg":"","resperr":"","openid"}`.
//!
//! Codes are single use, valid 5 minutes, and bound to the exchange they were issued for (the
//! `codes` submodule). The exchanges answer errors with WeChat's `errcode`s (HTTP 200, as WeChat
//! does; the `wechat` submodule) and QFPay's `respcd`s (the `qfpay` submodule).
//!
//! ## Which payer
//! The sandbox has one default payer, [`crate::Sandbox::default_openid`] (`oSandbox` + 20
//! random letters and digits: 28 characters, the length of a real openid). The sandbox-only
//! query parameter `sandbox_openid` on the two authorize endpoints, or `{"openid"}` in
//! `/sandbox/wx-login`, picks another: 1 to 64 of `[A-Za-z0-9_-]` (QFPay's `openid` is
//! `String(64)`; WeChat's are 28 of those characters). `sandbox_openid` is not part of QFPay's
//! signed parameters: a test appends it to the URL the shop built.

pub(crate) mod codes;
mod qfpay;
mod wechat;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use crate::crypto;
use crate::error::SandboxError;
use crate::state::{Shared, lock};

use codes::{CodeFamily, CodeStore, Grant};

/// The prefix of the default payer's openid; the rest is random.
const DEFAULT_OPENID_PREFIX: &str = "oSandbox";

/// A real openid is 28 characters long.
const OPENID_LEN: usize = 28;

/// The longest openid the sandbox accepts from a caller (QFPay: `String(64)`).
const MAX_OPENID_LEN: usize = 64;

/// The identity service's state: the app secret, the default payer and the codes issued.
pub(crate) struct OpenidState {
    /// The AppSecret of the merchant's appid (公众号 and 小程序 alike, in the sandbox).
    pub(crate) app_secret: String,
    /// The payer identified when a caller names none.
    pub(crate) default_openid: String,
    /// Codes issued by the authorize endpoints and `wx.login`.
    codes: std::sync::Mutex<CodeStore>,
}

impl std::fmt::Debug for OpenidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenidState")
            .field("app_secret", &"<redacted>")
            .field("default_openid", &self.default_openid)
            .finish_non_exhaustive()
    }
}

impl OpenidState {
    /// A fresh app secret, a fresh default payer and no codes.
    pub(crate) fn generate() -> Result<Self, SandboxError> {
        let suffix = crypto::random_alnum(OPENID_LEN - DEFAULT_OPENID_PREFIX.len())?;
        Ok(Self {
            app_secret: crypto::random_upper_hex(32)?.to_ascii_lowercase(),
            default_openid: format!("{DEFAULT_OPENID_PREFIX}{suffix}"),
            codes: std::sync::Mutex::default(),
        })
    }

    /// Issues a code identifying `openid` (already checked) for `family`'s exchange.
    pub(crate) fn issue(
        &self,
        family: CodeFamily,
        openid: &str,
        scope: Option<&str>,
    ) -> Result<String, crypto::CryptoError> {
        lock(&self.codes).issue(
            family,
            Grant {
                openid: openid.to_owned(),
                scope: scope.map(str::to_owned),
            },
            Instant::now(),
        )
    }

    /// Redeems `code` at `family`'s exchange (see [`CodeStore::redeem`]).
    pub(crate) fn redeem(
        &self,
        code: &str,
        family: CodeFamily,
    ) -> Result<Grant, codes::RedeemError> {
        lock(&self.codes).redeem(code, family, Instant::now())
    }

    /// The payer a caller asked for (checked), or the default payer.
    pub(crate) fn payer<'a>(&'a self, requested: Option<&'a str>) -> Result<&'a str, String> {
        match requested {
            None => Ok(&self.default_openid),
            Some(openid) if is_valid_openid(openid) => Ok(openid),
            Some(_) => Err(format!(
                "an openid must be 1 to {MAX_OPENID_LEN} characters of [A-Za-z0-9_-]"
            )),
        }
    }
}

/// Whether `openid` looks like an openid: 1 to 64 of `[A-Za-z0-9_-]`.
fn is_valid_openid(openid: &str) -> bool {
    !openid.is_empty()
        && openid.len() <= MAX_OPENID_LEN
        && openid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Issues a `wx.login` code for `openid` (or the default payer), as `POST /sandbox/wx-login`
/// does.
pub(crate) fn wx_login(shared: &Shared, openid: Option<&str>) -> Result<String, SandboxError> {
    let payer = shared.openid.payer(openid).map_err(SandboxError::Config)?;
    Ok(shared
        .openid
        .issue(CodeFamily::MiniProgramLogin, payer, None)?)
}

/// A query string's parameters, percent-decoded (`+` is a space, as in a form).
#[derive(Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses `raw`; refuses invalid UTF-8 and a parameter given twice (which value would be
    /// signed or used would be ambiguous).
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for field in raw.unwrap_or("").split('&').filter(|f| !f.is_empty()) {
            let (k, v) = field.split_once('=').unwrap_or((field, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(format!("the parameter {k} is given more than once"));
            }
            pairs.push((k, v));
        }
        Ok(Self(pairs))
    }

    /// The value of `name`, if given and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// All parameters with a non-empty value.
    pub(crate) fn non_empty(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn decode(text: &str) -> Result<String, String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "the query string is not valid UTF-8".to_owned())
}

/// `redirect_uri` with `params` added to its query (before any `#fragment`), values
/// percent-encoded.
pub(crate) fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let (base, fragment) = match redirect_uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (redirect_uri, None),
    };
    let mut out = base.to_owned();
    for (k, v) in params {
        if !(out.ends_with('?') || out.ends_with('&')) {
            out.push(if out.contains('?') { '&' } else { '?' });
        }
        out.push_str(k);
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(
            v,
            percent_encoding::NON_ALPHANUMERIC,
        ));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Whether `uri` is an absolute `http`/`https` URL with a host and nothing a `Location` header
/// cannot carry.
pub(crate) fn is_absolute_http_url(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        r
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty()
        && !host.starts_with(':')
        && uri.len() <= 2048
        && uri.bytes().all(|b| b.is_ascii_graphic())
}

/// A 302 to `location` (already checked by [`is_absolute_http_url`] and built by
/// [`redirect_with`], so it is a valid header value).
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "redirect_uri is not a valid URL").into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WxLoginBody {
    #[serde(default)]
    openid: Option<String>,
}

fn sandbox_error(status: StatusCode, code: &str, message: &str) -> Response {
    crate::v3::json_response(status, &json!({ "code": code, "message": message }))
}

async fn wx_login_handler(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        WxLoginBody { openid: None }
    } else {
        match serde_json::from_slice::<WxLoginBody>(&body) {
            Ok(r) => r,
            Err(e) => {
                return sandbox_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.to_string());
            }
        }
    };
    let payer = match shared.openid.payer(req.openid.as_deref()) {
        Ok(p) => p,
        Err(message) => {
            return sandbox_error(StatusCode::BAD_REQUEST, "INVALID_OPENID", &message);
        }
    };
    match shared
        .openid
        .issue(CodeFamily::MiniProgramLogin, payer, None)
    {
        Ok(code) => crate::v3::json_response(StatusCode::OK, &json!({ "code": code })),
        Err(e) => sandbox_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            &e.to_string(),
        ),
    }
}

/// Lets pages on other origins call `/sandbox/wx-login`, like the other `/sandbox/…` routes.
async fn cors(req: Request, next: Next) -> Response {
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    resp
}

/// The identity routes.
pub(crate) fn router() -> Router<Arc<Shared>> {
    let sandbox_controls = Router::new()
        .route("/sandbox/wx-login", post(wx_login_handler))
        .layer(middleware::from_fn(cors));
    Router::new()
        .route("/connect/oauth2/authorize", get(wechat::authorize))
        .route("/sns/oauth2/access_token", get(wechat::access_token))
        .route("/sns/jscode2session", get(wechat::jscode2session))
        .route(
            "/tool/v1/get_weixin_oauth_code",
            get(qfpay::get_weixin_oauth_code),
        )
        .route("/tool/v1/get_weixin_openid", get(qfpay::get_weixin_openid))
        .merge(sandbox_controls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_the_query_and_the_fragment() {
        assert_eq!(
            redirect_with(
                "https://shop.example/cb",
                &[("code", "C1"), ("state", "a b")]
            ),
            "https://shop.example/cb?code=C1&state=a%20b"
        );
        assert_eq!(
            redirect_with("https://shop.example/cb?x=1#top", &[("code", "C1")]),
            "https://shop.example/cb?x=1&code=C1#top"
        );
        assert_eq!(
            redirect_with("https://shop.example/cb?", &[("code", "C1")]),
            "https://shop.example/cb?code=C1"
        );
    }

    #[test]
    fn only_absolute_http_urls_are_redirect_targets() {
        for ok in [
            "http://127.0.0.1:8080/cb",
            "https://shop.example/a?b=c",
            "HTTPS://shop.example",
        ] {
            assert!(is_absolute_http_url(ok), "{ok}");
        }
        for bad in [
            "/relative",
            "javascript:alert(1)",
            "ftp://x/y",
            "https:///path",
            "https://",
            "https://shop.example/a b",
            "https://:80/",
        ] {
            assert!(!is_absolute_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn query_params_are_decoded_and_duplicates_refused() {
        let q = QueryParams::parse(Some("a=1&b=x%20y+z&c=&d")).unwrap();
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get("b"), Some("x y z"));
        assert_eq!(q.get("c"), None);
        assert_eq!(q.non_empty().count(), 2);
        assert!(QueryParams::parse(Some("a=1&a=2")).is_err());
        assert!(QueryParams::parse(Some("a=%ff")).is_err());
    }

    #[test]
    fn the_default_payer_looks_like_an_openid() {
        let state = OpenidState::generate().unwrap();
        assert_eq!(state.default_openid.len(), OPENID_LEN);
        assert!(state.default_openid.starts_with(DEFAULT_OPENID_PREFIX));
        assert!(is_valid_openid(&state.default_openid));
        assert!(state.payer(Some("bad openid")).is_err());
        assert_eq!(state.payer(Some("o-x_1")), Ok("o-x_1"));
    }
}

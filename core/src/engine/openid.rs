//! The openid routes (`{prefix}/openid/session`, `/authorize`, `/callback`, `/me`) and the
//! openid a precreate may take from a token.
//!
//! OUR CHOICES, where neither WeChat nor the seeds say (the one place they are written down):
//! - The routes exist only on an engine built with an [`OpenidConfig`]; without one they are
//!   the app's paths. A flow the config does not set up (session without a mini program
//!   resolver, authorize/callback without an OAuth resolver) answers 404
//!   `OPENID_NOT_CONFIGURED`.
//! - Cookies: [`TOKEN_COOKIE`] (the token, `Max-Age` = its lifetime) and [`STATE_COOKIE`] (the
//!   OAuth state, [`STATE_TTL`]); both `Path=/; HttpOnly; SameSite=Lax` (Lax: the callback is a
//!   top-level navigation coming back from WeChat, which Lax lets through), plus `Secure` when
//!   the public base URL is https.
//! - OAuth state: WeChat's `state` takes up to 128 bytes of `[a-zA-Z0-9]`, so what goes upstream
//!   is a random 32-character nonce; the state cookie seals `{nonce, return_to, binding,
//!   expiry}` with the token key (a purpose apart from tokens). The callback needs both, equal
//!   (compared in constant time): a callback URL replayed in another browser, or a forged
//!   one, is refused.
//! - `return_to`: a path on this site: it starts with `/`, not `//`, has no `\`, only visible
//!   ASCII, at most [`MAX_RETURN_TO_BYTES`]; default `/`. Anything else is a 400, never a redirect.
//! - Callback failures are JSON errors like every engine route, and set no cookie.
//! - A precreate reads the token from the body field `openid_token`, else the
//!   `X-WxPay-Openid-Token` header, else the `wxpay_openid` cookie (the first that verifies);
//!   the most explicit place wins. In [`OpenidMode::Body`] an invalid token next to a body
//!   `openid` is ignored (a stale cookie must not break the seeds' clients); with no body
//!   `openid` it is a 401, so that the client knows to sign in again.
//! - `POST /openid/session` takes only `Content-Type: application/json` (415 otherwise): a
//!   cross-site HTML form cannot send that type, so another site cannot sign a visitor in
//!   as someone else.
//! - `GET /openid/me` answers `expires_at` in RFC 3339.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use crate::fields::{FieldError, OpenId};
use crate::openid::{
    OAuthResolver, OpenidError, OpenidResolver, OpenidToken, OpenidTokenKey, Purpose, TokenError,
};

use super::reply::{self, ErrorBody};
use super::{EngineError, Inner};

/// The cookie that carries the openid token.
pub const TOKEN_COOKIE: &str = "wxpay_openid";
/// The cookie that binds an OAuth round trip to the browser that started it.
pub const STATE_COOKIE: &str = "wxpay_openid_state";
/// The request header that may carry the openid token.
pub const TOKEN_HEADER: &str = "x-wxpay-openid-token";
/// The precreate body field that may carry the openid token.
pub const TOKEN_BODY_FIELD: &str = "openid_token";
/// The default lifetime of an openid token: 2 hours.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// The longest token lifetime accepted: 30 days.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How long an OAuth round trip may take (WeChat's codes live 5 minutes).
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// The longest `return_to` accepted.
pub const MAX_RETURN_TO_BYTES: usize = 1024;
/// The body limit of `POST {prefix}/openid/session`.
pub const SESSION_BODY_LIMIT: usize = 4 * 1024;
/// The longest code accepted from a client.
const MAX_CODE_BYTES: usize = 256;
const STATE_NONCE_LEN: usize = 32;

/// Where a precreate's openid must come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenidMode {
    /// The seeds' behaviour: the body's `openid` is used; a valid token, when one is presented,
    /// must agree with it or stands in for it.
    #[default]
    Body,
    /// A valid token is required (401 `OPENID_REQUIRED` otherwise); a body `openid` must equal
    /// the token's (400 `OPENID_MISMATCH` otherwise).
    TokenRequired,
}

/// A `WXPAY_OPENID_MODE` that is neither `body` nor `token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown openid mode {0:?}: use \"body\" or \"token\"")]
pub struct UnknownOpenidMode(pub String);

impl std::str::FromStr for OpenidMode {
    type Err = UnknownOpenidMode;

    /// `body` → [`OpenidMode::Body`], `token` → [`OpenidMode::TokenRequired`] (the values of
    /// `WXPAY_OPENID_MODE`), ignoring case and surrounding blanks.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "body" => Ok(OpenidMode::Body),
            "token" => Ok(OpenidMode::TokenRequired),
            _ => Err(UnknownOpenidMode(text.to_owned())),
        }
    }
}

/// The openid routes' configuration, for [`super::EngineBuilder::openid`].
///
/// ```
/// use std::sync::Arc;
/// use wxpay_core::engine::{OpenidConfig, OpenidMode};
/// use wxpay_core::openid::{AppSecret, MiniProgramLogin, OfficialAccountOAuth, OpenidTokenKey};
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let key = OpenidTokenKey::new(b"a server secret of at least 32 bytes!".to_vec())?;
/// let secret = AppSecret::new("the-app-secret")?;
/// let config = OpenidConfig::new(key)
///     .mini_program(Arc::new(MiniProgramLogin::new("wx1234567890", secret.clone())?))
///     .oauth(Arc::new(OfficialAccountOAuth::new("wx1234567890", secret)?))
///     .public_base_url("https://shop.example.com")
///     .mode(OpenidMode::TokenRequired);
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenidConfig {
    key: OpenidTokenKey,
    mini_program: Option<Arc<dyn OpenidResolver>>,
    oauth: Option<Arc<dyn OAuthResolver>>,
    public_base_url: Option<String>,
    token_ttl: Duration,
    mode: OpenidMode,
}

impl fmt::Debug for OpenidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenidConfig")
            .field("mini_program", &self.mini_program)
            .field("oauth", &self.oauth)
            .field("public_base_url", &self.public_base_url)
            .field("token_ttl", &self.token_ttl)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl OpenidConfig {
    /// Tokens signed with `key`, living [`DEFAULT_TOKEN_TTL`], in [`OpenidMode::Body`]; add at
    /// least one resolver.
    pub fn new(key: OpenidTokenKey) -> Self {
        Self {
            key,
            mini_program: None,
            oauth: None,
            public_base_url: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            mode: OpenidMode::Body,
        }
    }

    /// Enables `POST {prefix}/openid/session` (`{"code"}` from `wx.login`) with `resolver`,
    /// usually a [`crate::openid::MiniProgramLogin`].
    #[must_use]
    pub fn mini_program(mut self, resolver: Arc<dyn OpenidResolver>) -> Self {
        self.mini_program = Some(resolver);
        self
    }

    /// Enables `GET {prefix}/openid/authorize` and `/callback` with `resolver`
    /// ([`crate::openid::OfficialAccountOAuth`] or [`crate::openid::QfpayOAuth`]); needs
    /// [`OpenidConfig::public_base_url`].
    #[must_use]
    pub fn oauth(mut self, resolver: Arc<dyn OAuthResolver>) -> Self {
        self.oauth = Some(resolver);
        self
    }

    /// The shop's public base URL as the browser sees it (`WXPAY_PUBLIC_URL`, e.g.
    /// `https://shop.example.com`): the OAuth `redirect_uri` is
    /// `{public_base_url}{prefix}/openid/callback`, and cookies are `Secure` when it is https.
    /// Include any path the routes are mounted under (an actix-web scope, an axum `nest`):
    /// `https://shop.example.com/api` for routes at `/api{prefix}/…`.
    #[must_use]
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// How long a token is accepted (default 2 h, at most 30 days).
    #[must_use]
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Where a precreate's openid must come from (default [`OpenidMode::Body`]).
    #[must_use]
    pub fn mode(mut self, mode: OpenidMode) -> Self {
        self.mode = mode;
        self
    }

    pub(super) fn into_settings(self, prefix: &str) -> Result<OpenidSettings, EngineError> {
        let invalid = |message: String| EngineError::Openid(message);
        if self.mini_program.is_none() && self.oauth.is_none() {
            return Err(invalid(
                "no resolver: add a mini program or an OAuth resolver".to_owned(),
            ));
        }
        if self.token_ttl < Duration::from_secs(1) || self.token_ttl > MAX_TOKEN_TTL {
            return Err(invalid(format!(
                "the token lifetime must be 1 s to 30 days, got {:?}",
                self.token_ttl
            )));
        }
        let (callback_url, secure) = match &self.public_base_url {
            Some(url) => {
                let base = public_base(url).map_err(invalid)?;
                (
                    Some(format!("{base}{prefix}/openid/callback")),
                    base.starts_with("https://"),
                )
            }
            None if self.oauth.is_some() => {
                return Err(invalid(
                    "the OAuth flow needs the public base URL (WXPAY_PUBLIC_URL)".to_owned(),
                ));
            }
            None => (None, false),
        };
        let mut bindings: Vec<String> = Vec::new();
        for binding in self
            .mini_program
            .iter()
            .map(|r| r.binding())
            .chain(self.oauth.iter().map(|r| r.binding()))
        {
            if !bindings.iter().any(|b| b == binding) {
                bindings.push(binding.to_owned());
            }
        }
        Ok(OpenidSettings {
            key: self.key,
            mini_program: self.mini_program,
            oauth: self.oauth,
            callback_url,
            secure,
            token_ttl: time::Duration::seconds(
                i64::try_from(self.token_ttl.as_secs()).unwrap_or(i64::MAX),
            ),
            mode: self.mode,
            bindings,
        })
    }
}

/// The public base URL, checked: http(s), a host, no query or fragment; no trailing `/`.
fn public_base(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|e| format!("invalid public base URL {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(format!(
            "the public base URL must be http(s)://host[/path] without a query: {url:?}"
        ));
    }
    Ok(trimmed.to_owned())
}

/// The validated openid configuration the engine runs with.
pub(crate) struct OpenidSettings {
    key: OpenidTokenKey,
    mini_program: Option<Arc<dyn OpenidResolver>>,
    oauth: Option<Arc<dyn OAuthResolver>>,
    callback_url: Option<String>,
    secure: bool,
    token_ttl: time::Duration,
    pub(crate) mode: OpenidMode,
    bindings: Vec<String>,
}

impl fmt::Debug for OpenidSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenidSettings")
            .field("callback_url", &self.callback_url)
            .field("mode", &self.mode)
            .field("bindings", &self.bindings)
            .finish_non_exhaustive()
    }
}

impl OpenidSettings {
    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<OpenidToken, TokenError> {
        let accepted: Vec<&str> = self.bindings.iter().map(String::as_str).collect();
        OpenidToken::verify(&self.key, token, now, &accepted)
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .ok()
    }

    /// A fresh token for `openid` and its `Set-Cookie`.
    fn issue(
        &self,
        openid: &OpenId,
        binding: &str,
        now: OffsetDateTime,
    ) -> (String, Option<HeaderValue>) {
        let token = OpenidToken::issue(&self.key, openid, binding, now + self.token_ttl);
        let cookie = self.cookie(TOKEN_COOKIE, &token, self.token_ttl.whole_seconds());
        (token, cookie)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading tokens

/// The values of cookie `name` in the request, in order.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        })
}

/// What the client presented as an openid token.
enum Presented {
    Nothing,
    Valid(OpenidToken),
    Invalid(TokenError),
}

/// The token from the body field, else the header, else the first cookie that verifies.
fn presented_token(
    settings: &OpenidSettings,
    headers: &HeaderMap,
    body_token: Option<&str>,
    now: OffsetDateTime,
) -> Presented {
    let explicit = body_token.or_else(|| {
        headers
            .get(TOKEN_HEADER)
            .map(|value| value.to_str().unwrap_or("\u{0}"))
    });
    if let Some(token) = explicit {
        return match settings.verify(token.trim(), now) {
            Ok(token) => Presented::Valid(token),
            Err(error) => Presented::Invalid(error),
        };
    }
    let mut outcome = Presented::Nothing;
    for value in cookies(headers, TOKEN_COOKIE) {
        match settings.verify(value, now) {
            Ok(token) => return Presented::Valid(token),
            Err(error) => outcome = Presented::Invalid(error),
        }
    }
    outcome
}

fn openid_required(reason: Option<TokenError>, prefix: &str) -> Response<Bytes> {
    let message = match reason {
        None => format!(
            "no openid token: get one from {prefix}/openid/session or {prefix}/openid/authorize"
        ),
        Some(TokenError::Expired) => "the openid token has expired: sign in again".to_owned(),
        Some(TokenError::ForeignBinding) => {
            "the openid token was issued for another app: sign in again".to_owned()
        }
        Some(_) => "the openid token is invalid: sign in again".to_owned(),
    };
    reply::error(StatusCode::UNAUTHORIZED, "OPENID_REQUIRED", message)
}

/// Why a precreate's openid was refused.
pub(super) enum OpenidRefusal {
    /// No valid token where one is needed (401), and why the presented one failed, if any.
    Required(Option<TokenError>),
    /// The body's openid is not the token's (400).
    Mismatch,
}

impl OpenidRefusal {
    pub(super) fn into_response(self, prefix: &str) -> Response<Bytes> {
        match self {
            OpenidRefusal::Required(reason) => openid_required(reason, prefix),
            OpenidRefusal::Mismatch => reply::error(
                StatusCode::BAD_REQUEST,
                "OPENID_MISMATCH",
                "the body's openid is not the one the openid token was issued for",
            ),
        }
    }
}

/// The openid a precreate uses, given the body's `openid` and `openid_token`: `Ok(None)` when
/// there is none at all (the caller answers "openid required" as without openid routes).
pub(super) fn precreate_openid(
    inner: &Inner,
    settings: &OpenidSettings,
    headers: &HeaderMap,
    body_openid: Option<OpenId>,
    body_token: Option<&str>,
) -> Result<Option<OpenId>, OpenidRefusal> {
    let presented = presented_token(settings, headers, body_token, inner.clock.now());
    match (presented, body_openid) {
        (Presented::Valid(token), Some(body)) if body != token.openid => {
            Err(OpenidRefusal::Mismatch)
        }
        (Presented::Valid(token), _) => Ok(Some(token.openid)),
        (Presented::Nothing, _) if settings.mode == OpenidMode::TokenRequired => {
            Err(OpenidRefusal::Required(None))
        }
        (Presented::Invalid(error), _) if settings.mode == OpenidMode::TokenRequired => {
            Err(OpenidRefusal::Required(Some(error)))
        }
        (_, Some(body)) => Ok(Some(body)),
        (Presented::Invalid(error), None) => Err(OpenidRefusal::Required(Some(error))),
        (Presented::Nothing, None) => Ok(None),
    }
}

/// Whose order a status request may see, from its openid token.
pub(super) enum StatusViewer {
    /// A valid token for this openid.
    Payer(OpenId),
    /// No valid token, and none is required (body mode).
    Anyone,
    /// Token mode, and no valid token (401), with why the presented one failed, if it did.
    Required(Option<TokenError>),
}

/// Who asks the status route, by the token presented as for a precreate (header, then cookie).
pub(super) fn status_viewer(
    inner: &Inner,
    settings: &OpenidSettings,
    headers: &HeaderMap,
) -> StatusViewer {
    match presented_token(settings, headers, None, inner.clock.now()) {
        Presented::Valid(token) => StatusViewer::Payer(token.openid),
        Presented::Nothing if settings.mode == OpenidMode::TokenRequired => {
            StatusViewer::Required(None)
        }
        Presented::Invalid(error) if settings.mode == OpenidMode::TokenRequired => {
            StatusViewer::Required(Some(error))
        }
        Presented::Nothing | Presented::Invalid(_) => StatusViewer::Anyone,
    }
}

/// The 401 of a status request that needs a token.
pub(super) fn status_token_required(reason: Option<TokenError>, prefix: &str) -> Response<Bytes> {
    openid_required(reason, prefix)
}

// ---------------------------------------------------------------------------------------------
// Routes

fn not_configured(what: &str) -> Response<Bytes> {
    reply::error(
        StatusCode::NOT_FOUND,
        "OPENID_NOT_CONFIGURED",
        format!("the {what} openid flow is not configured on this server"),
    )
}

fn with_headers(
    mut response: Response<Bytes>,
    headers: impl IntoIterator<Item = (header::HeaderName, Option<HeaderValue>)>,
) -> Response<Bytes> {
    for (name, value) in headers {
        if let Some(value) = value {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn redirect(location: &str) -> Response<Bytes> {
    match HeaderValue::from_str(location) {
        Ok(location) => {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = StatusCode::FOUND;
            response.headers_mut().insert(header::LOCATION, location);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OPENID_MISCONFIGURED",
            "the redirect location is not a valid header value",
        ),
    }
}

/// The reply for a failed resolution: the client's code (400) or the upstream (5xx).
fn resolve_failed(error: &OpenidError) -> Response<Bytes> {
    let (status, code, upstream) = match error {
        OpenidError::CodeRejected {
            upstream_code,
            message,
        } => (
            StatusCode::BAD_REQUEST,
            "OPENID_CODE_REJECTED",
            Some((upstream_code, message)),
        ),
        OpenidError::Rejected {
            upstream_code,
            message,
        } => (
            StatusCode::BAD_GATEWAY,
            "UPSTREAM_REJECTED",
            Some((upstream_code, message)),
        ),
        OpenidError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT", None),
        OpenidError::Transport(_) => (StatusCode::BAD_GATEWAY, "UPSTREAM_UNAVAILABLE", None),
        OpenidError::BadResponse(_) => (StatusCode::BAD_GATEWAY, "UPSTREAM_BAD_RESPONSE", None),
        OpenidError::Config(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "OPENID_MISCONFIGURED",
            None,
        ),
    };
    tracing::warn!(%error, "resolving an openid failed");
    reply::json(
        status,
        &ErrorBody {
            code: code.to_owned(),
            message: format!("the openid could not be resolved: {error}"),
            field: None,
            upstream_code: upstream.map(|(code, _)| code.clone()),
            upstream_message: upstream.map(|(_, message)| message.clone()),
        },
    )
}

/// A code as a client may send it: 1 to 256 visible ASCII characters.
fn check_code(code: &str) -> Result<(), FieldError> {
    if code.is_empty() || code.len() > MAX_CODE_BYTES || !code.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(FieldError::new(
            "code",
            "must be 1 to 256 visible ASCII characters",
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct SessionReply<'a> {
    openid: &'a str,
    openid_token: &'a str,
    expires_in: i64,
}

/// `POST {prefix}/openid/session` `{"code"}`: a `wx.login` code → openid, token and cookie.
pub(super) async fn session(
    inner: &Inner,
    settings: &OpenidSettings,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Bytes> {
    let Some(resolver) = &settings.mini_program else {
        return not_configured("mini program");
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the code as Content-Type: application/json",
        );
    }
    let code = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => match fields.get("code") {
            Some(Value::String(code)) => code.clone(),
            _ => {
                return reply::field_error(&FieldError::new("code", "required, a string"));
            }
        },
        _ => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                "INVALID_JSON",
                "the body must be a JSON object {\"code\": \"…\"}",
            );
        }
    };
    if let Err(error) = check_code(&code) {
        return reply::field_error(&error);
    }
    let openid = match resolver.resolve(&code).await {
        Ok(openid) => openid,
        Err(error) => return resolve_failed(&error),
    };
    let (token, cookie) = settings.issue(&openid, resolver.binding(), inner.clock.now());
    let response = reply::json(
        StatusCode::OK,
        &SessionReply {
            openid: openid.as_str(),
            openid_token: &token,
            expires_in: settings.token_ttl.whole_seconds(),
        },
    );
    with_headers(response, [(header::SET_COOKIE, cookie)])
}

/// What the state cookie seals.
#[derive(Serialize, Deserialize)]
struct StatePayload {
    v: u8,
    /// The nonce sent upstream as `state`.
    n: String,
    /// Where to send the browser at the end.
    r: String,
    aud: String,
    exp: i64,
}

/// Whether `path` is a path on this site (see the module's choices).
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= MAX_RETURN_TO_BYTES
        && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// The first value of `name` in a query string.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET {prefix}/openid/authorize?return_to=/path`: 302 to the upstream's authorization page,
/// with the state cookie.
pub(super) fn authorize(
    inner: &Inner,
    settings: &OpenidSettings,
    query: Option<&str>,
) -> Response<Bytes> {
    let (Some(resolver), Some(callback_url)) = (&settings.oauth, &settings.callback_url) else {
        return not_configured("OAuth");
    };
    let return_to = query_value(query, "return_to").unwrap_or_else(|| "/".to_owned());
    if !is_local_path(&return_to) {
        return reply::json(
            StatusCode::BAD_REQUEST,
            &ErrorBody {
                code: "INVALID_RETURN_TO".to_owned(),
                message: "return_to must be a path on this site: starting with '/', not '//', \
                          without '\\', visible ASCII"
                    .to_owned(),
                field: Some("return_to"),
                upstream_code: None,
                upstream_message: None,
            },
        );
    }
    let nonce = crate::nonce::random_alphanumeric(STATE_NONCE_LEN);
    let location = match resolver.authorize_url(callback_url, &nonce) {
        Ok(location) => location,
        Err(error) => return resolve_failed(&error),
    };
    let state_ttl = i64::try_from(STATE_TTL.as_secs()).unwrap_or(600);
    let state = crate::openid::seal(
        &settings.key,
        Purpose::State,
        &StatePayload {
            v: 1,
            n: nonce,
            r: return_to,
            aud: resolver.binding().to_owned(),
            exp: inner.clock.unix_seconds().saturating_add(state_ttl),
        },
    );
    with_headers(
        redirect(&location),
        [(
            header::SET_COOKIE,
            settings.cookie(STATE_COOKIE, &state, state_ttl),
        )],
    )
}

/// The `return_to` of the state cookie that matches the `state` of the callback.
fn matching_state(
    inner: &Inner,
    settings: &OpenidSettings,
    binding: &str,
    headers: &HeaderMap,
    state: &str,
) -> Option<String> {
    let now = inner.clock.unix_seconds();
    cookies(headers, STATE_COOKIE)
        .filter_map(|sealed| {
            crate::openid::open::<StatePayload>(&settings.key, Purpose::State, sealed).ok()
        })
        .find(|payload| {
            payload.v == 1
                && payload.exp > now
                && payload.aud == binding
                && payload.n.len() == state.len()
                && bool::from(payload.n.as_bytes().ct_eq(state.as_bytes()))
                && is_local_path(&payload.r)
        })
        .map(|payload| payload.r)
}

/// `GET {prefix}/openid/callback?code&state`: the code → openid, token cookie, 302 `return_to`.
pub(super) async fn callback(
    inner: &Inner,
    settings: &OpenidSettings,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response<Bytes> {
    let Some(resolver) = &settings.oauth else {
        return not_configured("OAuth");
    };
    let state = query_value(query, "state").unwrap_or_default();
    let Some(return_to) = matching_state(inner, settings, resolver.binding(), headers, &state)
    else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            "OPENID_STATE_INVALID",
            "this sign-in was not started in this browser, or took too long: start it again",
        );
    };
    let code = query_value(query, "code").unwrap_or_default();
    if let Err(error) = check_code(&code) {
        return reply::field_error(&error);
    }
    let openid = match resolver.resolve(&code).await {
        Ok(openid) => openid,
        Err(error) => return resolve_failed(&error),
    };
    let (_, cookie) = settings.issue(&openid, resolver.binding(), inner.clock.now());
    with_headers(
        redirect(&return_to),
        [
            (header::SET_COOKIE, cookie),
            // The round trip is over: the state cookie is spent.
            (header::SET_COOKIE, settings.cookie(STATE_COOKIE, "", 0)),
        ],
    )
}

#[derive(Serialize)]
struct MeReply<'a> {
    openid: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// `GET {prefix}/openid/me`: the token's openid and expiry, or 401.
pub(super) fn me(inner: &Inner, settings: &OpenidSettings, headers: &HeaderMap) -> Response<Bytes> {
    match presented_token(settings, headers, None, inner.clock.now()) {
        Presented::Valid(token) => reply::json(
            StatusCode::OK,
            &MeReply {
                openid: token.openid.as_str(),
                expires_at: token.expires_at,
            },
        ),
        Presented::Invalid(error) => openid_required(Some(error), &inner.settings.prefix),
        Presented::Nothing => openid_required(None, &inner.settings.prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_return_targets() {
        for good in ["/", "/shop", "/shop/pay?item=1&x=%2F%2F", "/a/b#c"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "",
            "shop",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/a b",
            "/\tx",
            "/caf\u{e9}",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
        assert!(!is_local_path(&format!(
            "/{}",
            "a".repeat(MAX_RETURN_TO_BYTES)
        )));
    }

    #[test]
    fn the_mode_reads_the_environment_values() {
        assert_eq!(" Body ".parse(), Ok(OpenidMode::Body));
        assert_eq!("token".parse(), Ok(OpenidMode::TokenRequired));
        assert!("strict".parse::<OpenidMode>().is_err());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; wxpay_openid=T1"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("wxpay_openid=\"T2\""),
        );
        let found: Vec<_> = cookies(&headers, TOKEN_COOKIE).collect();
        assert_eq!(found, ["T1", "T2"]);
        assert_eq!(cookies(&headers, STATE_COOKIE).count(), 0);
    }
}

//! WeChat's own identity endpoints.
//!
//! - 小程序 login: `GET {api}/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code`
//!   (<https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html>).
//! - 公众号 web authorization, `snsapi_base` (silent, openid only):
//!   `{open}/connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope=snsapi_base&state#wechat_redirect`,
//!   then `GET {api}/sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
//!   (<https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html>).
//!
//! Both answer HTTP 200, with `{"errcode", "errmsg"}` on failure; 40029 (invalid code) and
//! 40163 (code already used) mean the client must get a new code.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::fields::OpenId;

use super::fetch;
use super::{OAuthResolver, OpenidError, OpenidResolver};

/// WeChat's API host (`WXPAY_WECHAT_API_URL`).
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// WeChat's web-authorization host (`WXPAY_WECHAT_OPEN_URL`).
pub const DEFAULT_OPEN_BASE: &str = "https://open.weixin.qq.com";
/// The default deadline of one identity call (a page is waiting).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);
/// The largest identity answer read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// `errcode`s meaning the code itself is bad: 40029 invalid code, 40163 code been used.
const CODE_ERRCODES: [i64; 2] = [40029, 40163];

/// An appid's AppSecret (`WXPAY_APP_SECRET`). Its `Debug` prints nothing of it and its memory is
/// wiped on drop.
#[derive(Clone)]
pub struct AppSecret(Zeroizing<String>);

impl AppSecret {
    /// The secret as the WeChat platform shows it; empty or whitespace-bearing secrets are
    /// refused.
    pub fn new(secret: impl Into<String>) -> Result<Self, OpenidError> {
        let secret = Zeroizing::new(secret.into());
        if secret.is_empty() || secret.chars().any(char::is_whitespace) {
            return Err(OpenidError::Config(
                "the app secret must be non-empty, without whitespace".to_owned(),
            ));
        }
        Ok(Self(secret))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret(<redacted>)")
    }
}

/// An appid, its secret, and where WeChat's API is.
#[derive(Clone)]
struct WechatApp {
    appid: String,
    secret: AppSecret,
    binding: String,
    api_base: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl fmt::Debug for WechatApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatApp")
            .field("appid", &self.appid)
            .field("secret", &self.secret)
            .field("api_base", &self.api_base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WechatApp {
    fn new(appid: impl Into<String>, secret: AppSecret) -> Result<Self, OpenidError> {
        let appid = appid.into();
        if appid.is_empty() || !appid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(OpenidError::Config(format!("invalid appid {appid:?}")));
        }
        Ok(Self {
            binding: format!("wechat:{appid}"),
            appid,
            secret,
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            http: fetch::client(DEFAULT_TIMEOUT)?,
        })
    }

    /// `GET {api}{path}?appid&secret&{code_param}=code&grant_type=authorization_code` → openid.
    async fn exchange(
        &self,
        path: &str,
        code_param: &str,
        code: &str,
    ) -> Result<OpenId, OpenidError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.api_base))
            .map_err(|e| OpenidError::Config(format!("invalid API URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose())
            .append_pair(code_param, code)
            .append_pair("grant_type", "authorization_code");
        let fields =
            fetch::get_json(&self.http, url, &[], self.timeout, MAX_RESPONSE_BYTES).await?;
        let errcode = fields
            .get("errcode")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if errcode != 0 {
            let upstream_code = errcode.to_string();
            let message = fields
                .get("errmsg")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Err(if CODE_ERRCODES.contains(&errcode) {
                OpenidError::CodeRejected {
                    upstream_code,
                    message,
                }
            } else {
                OpenidError::Rejected {
                    upstream_code,
                    message,
                }
            });
        }
        let openid = fetch::text_field(&fields, "openid")?;
        OpenId::try_from(openid)
            .map_err(|e| OpenidError::BadResponse(format!("the openid is not valid: {e}")))
    }
}

macro_rules! wechat_settings {
    () => {
        /// Uses another API host than [`DEFAULT_API_BASE`] (a sandbox, a proxy).
        pub fn with_api_base(mut self, url: &str) -> Result<Self, OpenidError> {
            self.app.api_base = fetch::base_url(url, "WeChat API URL")?;
            Ok(self)
        }

        /// Sets the deadline of one call (default [`DEFAULT_TIMEOUT`]).
        #[must_use]
        pub fn with_timeout(mut self, timeout: Duration) -> Self {
            self.app.timeout = timeout;
            self
        }

        /// Uses a preconfigured HTTP client (proxies, TLS roots). Redirects should stay off.
        #[must_use]
        pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
            self.app.http = http;
            self
        }

        /// The appid.
        pub fn appid(&self) -> &str {
            &self.app.appid
        }
    };
}

/// 小程序 login: a `wx.login` code, exchanged at `sns/jscode2session`. Binding
/// `wechat:{appid}`.
#[derive(Debug, Clone)]
pub struct MiniProgramLogin {
    app: WechatApp,
}

impl MiniProgramLogin {
    /// For the mini program `appid` with its AppSecret, at WeChat's API host.
    pub fn new(appid: impl Into<String>, secret: AppSecret) -> Result<Self, OpenidError> {
        Ok(Self {
            app: WechatApp::new(appid, secret)?,
        })
    }

    wechat_settings!();
}

#[async_trait]
impl OpenidResolver for MiniProgramLogin {
    fn binding(&self) -> &str {
        &self.app.binding
    }

    async fn resolve(&self, code: &str) -> Result<OpenId, OpenidError> {
        self.app
            .exchange("/sns/jscode2session", "js_code", code)
            .await
    }
}

/// 公众号 web authorization with `scope=snsapi_base` (silent: the payer sees no consent page).
/// Binding `wechat:{appid}`.
#[derive(Debug, Clone)]
pub struct OfficialAccountOAuth {
    app: WechatApp,
    open_base: String,
}

impl OfficialAccountOAuth {
    /// For the official account `appid` with its AppSecret, at WeChat's hosts.
    pub fn new(appid: impl Into<String>, secret: AppSecret) -> Result<Self, OpenidError> {
        Ok(Self {
            app: WechatApp::new(appid, secret)?,
            open_base: DEFAULT_OPEN_BASE.to_owned(),
        })
    }

    /// Uses another authorization host than [`DEFAULT_OPEN_BASE`] (a sandbox).
    pub fn with_open_base(mut self, url: &str) -> Result<Self, OpenidError> {
        self.open_base = fetch::base_url(url, "WeChat open URL")?;
        Ok(self)
    }

    wechat_settings!();
}

#[async_trait]
impl OpenidResolver for OfficialAccountOAuth {
    fn binding(&self) -> &str {
        &self.app.binding
    }

    async fn resolve(&self, code: &str) -> Result<OpenId, OpenidError> {
        self.app
            .exchange("/sns/oauth2/access_token", "code", code)
            .await
    }
}

impl OAuthResolver for OfficialAccountOAuth {
    fn authorize_url(&self, redirect_uri: &str, state: &str) -> Result<String, OpenidError> {
        let mut url = reqwest::Url::parse(&format!("{}/connect/oauth2/authorize", self.open_base))
            .map_err(|e| OpenidError::Config(format!("invalid open URL: {e}")))?;
        // WeChat's page lists the parameters in this order, and asks for it.
        url.query_pairs_mut()
            .append_pair("appid", &self.app.appid)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "snsapi_base")
            .append_pair("state", state);
        url.set_fragment(Some("wechat_redirect"));
        Ok(url.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_follows_wechats_page_and_secrets_stay_redacted() {
        let oauth = OfficialAccountOAuth::new("wx123", AppSecret::new("s3cret").unwrap())
            .unwrap()
            .with_open_base("http://127.0.0.1:9/")
            .unwrap();
        let url = oauth
            .authorize_url("https://shop.example/wxpay/openid/callback", "abc123")
            .unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9/connect/oauth2/authorize?appid=wx123&redirect_uri=https%3A%2F%2Fshop.example%2Fwxpay%2Fopenid%2Fcallback&response_type=code&scope=snsapi_base&state=abc123#wechat_redirect"
        );
        assert_eq!(oauth.binding(), "wechat:wx123");
        assert!(!format!("{oauth:?}").contains("s3cret"));
        assert!(AppSecret::new("").is_err());
        assert!(MiniProgramLogin::new("wx/1", AppSecret::new("s").unwrap()).is_err());
        assert!(
            MiniProgramLogin::new("wx1", AppSecret::new("s").unwrap())
                .unwrap()
                .with_api_base("ftp://x")
                .is_err()
        );
    }
}

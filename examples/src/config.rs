//! The shops' configuration, from environment variables.
//!
//! `WXPAY_PROVIDER` picks the upstream: `v3` (WeChat Pay API v3, the default), `v2` (WeChat Pay
//! API v2, legacy merchants), `gateway` (the seed-001 payment gateway), `qfpay` (QFPay, seed 002)
//! or `weidoufu` (weidoufu mini-program payments, seed 004). Each has a sandbox mode (the upstream
//! emulated in process) and a production mode.
//!
//! Common to every provider:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_PROVIDER` | `v3`, `v2`, `gateway`, `qfpay` or `weidoufu` | `v3` |
//! | `WXPAY_BIND` | address to listen on | `127.0.0.1:3000` |
//! | `DATABASE_URL` | order store: `sqlite://FILE`, `postgres://…`, `mysql://…` | `sqlite://wxpay-shop.db` (created if missing) |
//! | `WXPAY_NOTIFY_URL` | the public `https://…/wxpay/notify` URL | required in production |
//!
//! `v3` (**`WXPAY_MCHID` unset = sandbox mode**):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_MCHID` | merchant id | — |
//! | `WXPAY_APPID` | app id (公众号 / 小程序) | required in production |
//! | `WXPAY_MERCHANT_SERIAL` | merchant API certificate serial | required in production |
//! | `WXPAY_MERCHANT_KEY_FILE` | merchant private key, PEM file | required in production |
//! | `WXPAY_APIV3_KEY` | API v3 key, 32 characters | required in production |
//! | `WXPAY_PLATFORM_PUBLIC_KEY_FILE` + `WXPAY_PLATFORM_PUBLIC_KEY_ID` | WeChat Pay public key (PEM) and its `PUB_KEY_ID_…` | — |
//! | `WXPAY_PLATFORM_CERT_FILE` | platform certificate(s), PEM (certificate mode) | downloaded |
//! | `WXPAY_API_BASE` | WeChat Pay API v3 base URL | `https://api.mch.weixin.qq.com` |
//!
//! With neither a platform public key nor a certificate file, the shop runs in certificate mode
//! and downloads the platform certificates from `GET /v3/certificates` on start.
//!
//! `v2` (**`WXPAY_MCHID` unset = sandbox mode**):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_MCHID` | merchant id (`mch_id`) | — |
//! | `WXPAY_APPID` | app id | required in production |
//! | `WXPAY_API_KEY` | API key (API密钥), 32 characters | required in production |
//! | `WXPAY_SIGN_TYPE` | `MD5` or `HMAC-SHA256` (also honoured in sandbox mode) | `MD5` |
//! | `WXPAY_API_BASE` | WeChat Pay API v2 base URL | `https://api.mch.weixin.qq.com` |
//! | `WXPAY_V2_CERT_FILE` + `WXPAY_V2_KEY_FILE` | merchant API certificate and key (`apiclient_cert.pem`, `apiclient_key.pem`); refunds need them | — (no refunds) |
//! | `WXPAY_V2_SECAPI_BASE` | base URL of certificate calls (refunds) | `WXPAY_API_BASE` |
//! | `WXPAY_V2_CA_FILE` | the only CA trusted for certificate calls (a test upstream's) | system roots |
//!
//! `gateway` (**`WXPAY_GATEWAY_URL` unset = sandbox mode**):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_GATEWAY_URL` | the gateway's base URL (`/open/trade/wx/jsapi/precreate` is appended) | — |
//! | `WXPAY_GATEWAY_BIZ_ID` | the `biz_id` the gateway assigned | required in production |
//! | `WXPAY_GATEWAY_APP_KEY` | the `app_key` paired with it (signs callbacks) | required in production |
//! | `WXPAY_GATEWAY_IP` | this server's IP, sent as the gateway's required `ip` field | `127.0.0.1` |
//!
//! `qfpay` (**`WXPAY_QFPAY_URL` unset = sandbox mode**):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_QFPAY_URL` | QFPay's API host, e.g. `https://openapi-hk.qfapi.com` | — |
//! | `WXPAY_QFPAY_APP_CODE` | the `app_code` QFPay assigned | required in production |
//! | `WXPAY_QFPAY_CLIENT_KEY` | the `client_key` paired with it | required in production |
//! | `WXPAY_QFPAY_MCHID` | the `mchid`, only if QFPay assigned one | — |
//! | `WXPAY_QFPAY_CURRENCY` | the `txcurrcd` of orders | `CNY` |
//!
//! `weidoufu` (**`WXPAY_WEIDOUFU_URL` unset = sandbox mode**):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_WEIDOUFU_URL` | weidoufu's base URL, e.g. `https://open.weidoufu.com` | — |
//! | `WXPAY_WEIDOUFU_ACCESS_KEY` | the application's AccessKey | required in production |
//! | `WXPAY_WEIDOUFU_SECRET_KEY` | its SecretKey | required in production |
//! | `WXPAY_WEIDOUFU_PAY_TYPE` | `wechat` or `alipay` (the wallet of the mini program) | `wechat` |
//!
//! Getting the payer's openid (the `{prefix}/openid/…` routes):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_OPENID_MODE` | `token`: precreate requires the openid the server resolved (cookie or token); `body`: the page sends the openid | `token` in sandbox mode, `body` in production |
//! | `WXPAY_APP_SECRET` | the AppSecret of `WXPAY_APPID` (jscode2session, OAuth2 `snsapi_base`) | — (QFPay uses its own flow) |
//! | `WXPAY_OPENID_TOKEN_KEY` | the server key that signs openid tokens, ≥ 32 bytes, the same on every instance; enables the openid routes in production | required with `token` in production |
//! | `WXPAY_PUBLIC_URL` | the shop's public base URL (OAuth2 `redirect_uri`) | required with `WXPAY_OPENID_TOKEN_KEY` in production |
//! | `WXPAY_WECHAT_API_URL` / `WXPAY_WECHAT_OPEN_URL` | WeChat's API / OAuth hosts | `https://api.weixin.qq.com` / `https://open.weixin.qq.com` |
//!
//! The openid routes exist in sandbox mode always, and in production when
//! `WXPAY_OPENID_TOKEN_KEY` is set (then `WXPAY_PUBLIC_URL` is required, and a resolver: QFPay's
//! flow with `qfpay`, WeChat's with `WXPAY_APPID` + `WXPAY_APP_SECRET`). Without them the page
//! sends the openid of its `?openid=` query.
//!
//! Checkout (how an order is priced):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_CHECKOUT` | `catalog`: the page sends `{product_id}` and the shop's catalog sets the price (an `amount` other than it is `400 AMOUNT_MISMATCH`); `amount`: the client's amount in fen, as seed 000 (`{openid, amount}`) and seed 001 (`pay_amount`) send it | `catalog` |
//! | `WXPAY_SEED000_COMPAT` | `1`: also mount seed 000's own route, `POST /wx_payment.WxPaymentService/jsapi` (`{openid, amount}` in, `{timestamp, nonceStr, package, signType, paySign}` out, gRPC-gateway errors); use it with `amount` | off |
//! | `WXPAY_AMOUNT_MIN` / `WXPAY_AMOUNT_MAX` | in `amount` mode, the accepted range in fen (outside it: `400 AMOUNT_OUT_OF_RANGE`; 0, negatives, fractions and strings: `400 INVALID_FIELD`) | `1` / `1000000` |
//!
//! Operations:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_RECONCILE_AFTER` / `WXPAY_RECONCILE_EVERY` | seconds: how old a `PENDING` order (or `PROCESSING` refund) must be before the reconciler asks the upstream about it, and how often the reconciler runs (on one instance at a time when several share the database) | `300` / `60` |
//! | `WXPAY_ADMIN_TOKEN` | the operator's bearer token (≥ 32 characters, no spaces): mounts the refund routes `POST`/`GET {prefix}/orders/{out_trade_no}/refunds`, the admin API `{prefix}/admin/…` (metrics included), which require `Authorization: Bearer <token>`, and the console at `{prefix}/admin/console` | unset: no operator routes |
//!
//! Secrets (`WXPAY_ADMIN_TOKEN`, `WXPAY_APIV3_KEY`, `WXPAY_API_KEY`, `WXPAY_GATEWAY_APP_KEY`, `WXPAY_QFPAY_CLIENT_KEY`,
//! `WXPAY_WEIDOUFU_SECRET_KEY`, `WXPAY_APP_SECRET`, `WXPAY_OPENID_TOKEN_KEY`, key files) are never
//! printed, not even in error messages.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use wxpay_core::engine::{AdminToken, OpenidMode};
use wxpay_core::fields::{Amount, Currency, NotifyUrl};
use wxpay_core::gateway::{AppKey, GatewayConfig};
use wxpay_core::openid::{AppSecret, OpenidTokenKey};
use wxpay_core::qfpay::{ClientKey, QfpayConfig};
use wxpay_core::v2::{ApiKey, MerchantCertificate, SignType, V2Config};
use wxpay_core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformCertificate, PlatformPublicKey,
    PlatformTrust,
};
use wxpay_core::weidoufu::{PayType, SecretKey, WeidoufuConfig};

/// The default `WXPAY_BIND`.
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
/// The default `DATABASE_URL`: a SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://wxpay-shop.db";
/// The default `WXPAY_API_BASE`: the real WeChat Pay API host.
pub const DEFAULT_API_BASE: &str = "https://api.mch.weixin.qq.com";
/// The largest key or certificate file read.
const MAX_PEM_FILE: u64 = 64 * 1024;

/// A variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it (never its secret value).
    pub message: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The upstream protocol (`WXPAY_PROVIDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderKind {
    /// `v3`: WeChat Pay API v3 (the default).
    #[default]
    V3,
    /// `v2`: WeChat Pay API v2 (XML, MD5 / HMAC-SHA256 with the API key).
    V2,
    /// `gateway`: the seed-001 payment gateway.
    Gateway,
    /// `qfpay`: QFPay (seed 002).
    Qfpay,
    /// `weidoufu`: weidoufu mini-program payments (seed 004).
    Weidoufu,
}

/// Every provider, in `WXPAY_PROVIDER` order.
const PROVIDERS: [ProviderKind; 5] = [
    ProviderKind::V3,
    ProviderKind::V2,
    ProviderKind::Gateway,
    ProviderKind::Qfpay,
    ProviderKind::Weidoufu,
];

impl ProviderKind {
    /// The `WXPAY_PROVIDER` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::V3 => "v3",
            ProviderKind::V2 => "v2",
            ProviderKind::Gateway => "gateway",
            ProviderKind::Qfpay => "qfpay",
            ProviderKind::Weidoufu => "weidoufu",
        }
    }

    /// What it is, for humans.
    pub fn description(self) -> &'static str {
        match self {
            ProviderKind::V3 => "WeChat Pay API v3",
            ProviderKind::V2 => "WeChat Pay API v2",
            ProviderKind::Gateway => "the seed-001 payment gateway",
            ProviderKind::Qfpay => "QFPay",
            ProviderKind::Weidoufu => "weidoufu",
        }
    }

    /// The variable whose presence selects production mode.
    pub fn production_switch(self) -> &'static str {
        match self {
            ProviderKind::V3 | ProviderKind::V2 => "WXPAY_MCHID",
            ProviderKind::Gateway => "WXPAY_GATEWAY_URL",
            ProviderKind::Qfpay => "WXPAY_QFPAY_URL",
            ProviderKind::Weidoufu => "WXPAY_WEIDOUFU_URL",
        }
    }

    /// The production variables that sandbox mode ignores (besides the switch).
    fn production_variables(self) -> &'static [&'static str] {
        match self {
            ProviderKind::V3 => PRODUCTION_VARIABLES,
            ProviderKind::V2 => &[
                "WXPAY_APPID",
                "WXPAY_API_KEY",
                "WXPAY_API_BASE",
                "WXPAY_V2_CERT_FILE",
                "WXPAY_V2_KEY_FILE",
                "WXPAY_V2_SECAPI_BASE",
                "WXPAY_V2_CA_FILE",
            ],
            ProviderKind::Gateway => &[
                "WXPAY_GATEWAY_BIZ_ID",
                "WXPAY_GATEWAY_APP_KEY",
                "WXPAY_GATEWAY_IP",
            ],
            ProviderKind::Qfpay => &[
                "WXPAY_QFPAY_APP_CODE",
                "WXPAY_QFPAY_CLIENT_KEY",
                "WXPAY_QFPAY_MCHID",
            ],
            ProviderKind::Weidoufu => &["WXPAY_WEIDOUFU_ACCESS_KEY", "WXPAY_WEIDOUFU_SECRET_KEY"],
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = ConfigError;

    /// `v3`, `v2`, `gateway`, `qfpay` or `weidoufu` (ASCII case-insensitive).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        PROVIDERS
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                ConfigError::new(
                    "WXPAY_PROVIDER",
                    format!(
                        "{value:?} is not a provider: expected v3 (the default), v2, gateway, qfpay or weidoufu"
                    ),
                )
            })
    }
}

/// Where the payments go.
#[derive(Debug)]
pub enum Upstream {
    /// Sandbox mode: the sandbox runs in process with generated keys and emulates the chosen
    /// provider's upstream.
    Sandbox,
    /// Production mode: a server that speaks WeChat Pay API v3.
    Production(Box<ProductionConfig>),
    /// Production mode: a server that speaks WeChat Pay API v2.
    V2(Box<V2Config>),
    /// Production mode: the payment gateway.
    Gateway(Box<GatewayConfig>),
    /// Production mode: QFPay.
    Qfpay(Box<QfpayConfig>),
    /// Production mode: weidoufu.
    Weidoufu(Box<WeidoufuConfig>),
}

/// How the shop gets the payer's openid (`WXPAY_OPENID_*`, `WXPAY_APP_SECRET`, `WXPAY_PUBLIC_URL`).
#[derive(Debug)]
pub struct OpenidSettings {
    /// `WXPAY_OPENID_MODE`.
    pub mode: OpenidMode,
    /// `WXPAY_OPENID_TOKEN_KEY`; `None` in sandbox mode (a random key is generated).
    pub token_key: Option<OpenidTokenKey>,
    /// `WXPAY_PUBLIC_URL`; `None` in sandbox mode (the bound address).
    pub public_url: Option<String>,
    /// `WXPAY_APPID` + `WXPAY_APP_SECRET`, for WeChat's jscode2session and OAuth2.
    pub wechat: Option<(String, AppSecret)>,
    /// `WXPAY_WECHAT_API_URL`.
    pub wechat_api_url: Option<String>,
    /// `WXPAY_WECHAT_OPEN_URL`.
    pub wechat_open_url: Option<String>,
}

/// The merchant's production settings.
#[derive(Debug)]
pub struct ProductionConfig {
    /// Merchant id, app id, serial and private key.
    pub credentials: MerchantCredentials,
    /// The API v3 key.
    pub api_v3_key: ApiV3Key,
    /// The platform keys trusted from configuration.
    pub trust: PlatformTrust,
    /// Certificate mode: download (and refresh) the platform certificates.
    pub certificate_mode: bool,
    /// The public notify URL.
    pub notify_url: NotifyUrl,
    /// The WeChat Pay API v3 base URL, without a trailing slash.
    pub api_base: String,
}

/// When the reconciler looks at an order, and how often it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileTiming {
    /// `WXPAY_RECONCILE_AFTER`: the age of a `PENDING` order before it is queried.
    pub after: std::time::Duration,
    /// `WXPAY_RECONCILE_EVERY`: the interval between passes.
    pub every: std::time::Duration,
}

impl Default for ReconcileTiming {
    fn default() -> Self {
        Self {
            after: std::time::Duration::from_secs(300),
            every: std::time::Duration::from_secs(60),
        }
    }
}

fn reconcile_timing(get: &impl Fn(&str) -> Option<String>) -> Result<ReconcileTiming, ConfigError> {
    let seconds = |name: &'static str, default: std::time::Duration, least: u64| match get(name) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<u64>() {
            Ok(secs) if secs >= least => Ok(std::time::Duration::from_secs(secs)),
            _ => Err(ConfigError::new(
                name,
                format!("{value:?} is not a whole number of seconds, at least {least}"),
            )),
        },
    };
    let defaults = ReconcileTiming::default();
    Ok(ReconcileTiming {
        after: seconds("WXPAY_RECONCILE_AFTER", defaults.after, 0)?,
        every: seconds("WXPAY_RECONCILE_EVERY", defaults.every, 1)?,
    })
}

/// The whole configuration of a shop.
#[derive(Debug)]
pub struct ShopConfig {
    /// `WXPAY_BIND`.
    pub bind: SocketAddr,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `WXPAY_ADMIN_TOKEN`: mounts the operator routes (refunds, admin API, console) when set.
    pub admin_token: Option<AdminToken>,
    /// `WXPAY_CHECKOUT`, `WXPAY_AMOUNT_MIN`, `WXPAY_AMOUNT_MAX`.
    pub checkout: CheckoutMode,
    /// `WXPAY_SEED000_COMPAT=1`: mount seed 000's own route.
    pub seed000_compat: bool,
    /// `WXPAY_RECONCILE_AFTER`, `WXPAY_RECONCILE_EVERY`.
    pub reconcile: ReconcileTiming,
    /// `WXPAY_PROVIDER`.
    pub provider: ProviderKind,
    /// `WXPAY_SIGN_TYPE` for `v2` in sandbox mode (the sandbox merchant is set up with it).
    pub sandbox_sign_type: SignType,
    /// `WXPAY_WEIDOUFU_PAY_TYPE` (the sandbox honours it too).
    pub weidoufu_pay_type: PayType,
    /// `WXPAY_NOTIFY_URL` in sandbox mode (optional there; derived from the bound address).
    pub sandbox_notify_url: Option<String>,
    /// Sandbox or production.
    pub upstream: Upstream,
    /// Where payers' openids come from.
    pub openid: OpenidSettings,
    /// Production variables that were set although the production switch (`WXPAY_MCHID`, or
    /// `WXPAY_GATEWAY_URL` for the gateway) is not (sandbox mode ignores them; the banner says so).
    pub ignored: Vec<&'static str>,
}

/// The variables of production mode besides `WXPAY_MCHID`.
const PRODUCTION_VARIABLES: &[&str] = &[
    "WXPAY_APPID",
    "WXPAY_MERCHANT_SERIAL",
    "WXPAY_MERCHANT_KEY_FILE",
    "WXPAY_APIV3_KEY",
    "WXPAY_PLATFORM_PUBLIC_KEY_FILE",
    "WXPAY_PLATFORM_PUBLIC_KEY_ID",
    "WXPAY_PLATFORM_CERT_FILE",
    "WXPAY_API_BASE",
];

impl ShopConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bind = match get("WXPAY_BIND") {
            Some(value) => value.trim().parse().map_err(|_| {
                ConfigError::new(
                    "WXPAY_BIND",
                    format!("{value:?} is not an address like 127.0.0.1:3000"),
                )
            })?,
            None => DEFAULT_BIND
                .parse()
                .map_err(|_| ConfigError::new("WXPAY_BIND", "bad default"))?,
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let admin_token = get("WXPAY_ADMIN_TOKEN")
            .map(|token| {
                AdminToken::new(token.trim()).map_err(|e| {
                    ConfigError::new(
                        "WXPAY_ADMIN_TOKEN",
                        e.to_string().replace("invalid admin token: ", ""),
                    )
                })
            })
            .transpose()?;
        let scheme = database_url.split_once(':').map_or("", |(s, _)| s);
        if !matches!(
            scheme,
            "sqlite" | "postgres" | "postgresql" | "mysql" | "mariadb"
        ) {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must start with sqlite:, postgres:, postgresql:, mysql: or mariadb:",
            ));
        }
        let provider = match get("WXPAY_PROVIDER") {
            Some(value) => value.parse()?,
            None => ProviderKind::default(),
        };
        let sign_type = match get("WXPAY_SIGN_TYPE") {
            Some(value) if provider == ProviderKind::V2 => value
                .trim()
                .parse()
                .map_err(|_| ConfigError::new("WXPAY_SIGN_TYPE", "must be MD5 or HMAC-SHA256"))?,
            _ => SignType::Md5,
        };
        let weidoufu_pay_type = weidoufu_pay_type(&get)?;
        let checkout = checkout_mode(&get)?;
        let reconcile = reconcile_timing(&get)?;
        let seed000_compat = match get("WXPAY_SEED000_COMPAT").as_deref().map(str::trim) {
            None | Some("0") => false,
            Some("1") => true,
            Some(_) => {
                return Err(ConfigError::new(
                    "WXPAY_SEED000_COMPAT",
                    "must be 1 (mount /wx_payment.WxPaymentService/jsapi) or 0",
                ));
            }
        };
        let Some(switch) = get(provider.production_switch()) else {
            let sandbox_notify_url = get("WXPAY_NOTIFY_URL");
            if let Some(url) = &sandbox_notify_url {
                NotifyUrl::parse_for_local_development(url)
                    .map_err(|e| ConfigError::new("WXPAY_NOTIFY_URL", e.to_string()))?;
            }
            let ignored = provider
                .production_variables()
                .iter()
                .copied()
                .filter(|name| get(name).is_some())
                .collect();
            let openid = openid_settings(&get, true)?;
            return Ok(Self {
                bind,
                database_url,
                admin_token,
                checkout,
                seed000_compat,
                reconcile,
                provider,
                sandbox_sign_type: sign_type,
                weidoufu_pay_type,
                sandbox_notify_url,
                upstream: Upstream::Sandbox,
                openid,
                ignored,
            });
        };
        let upstream = match provider {
            ProviderKind::V3 => Upstream::Production(Box::new(production(&get, switch)?)),
            ProviderKind::V2 => Upstream::V2(Box::new(production_v2(&get, &switch, sign_type)?)),
            ProviderKind::Gateway => {
                Upstream::Gateway(Box::new(production_gateway(&get, &switch)?))
            }
            ProviderKind::Qfpay => Upstream::Qfpay(Box::new(production_qfpay(&get, &switch)?)),
            ProviderKind::Weidoufu => {
                Upstream::Weidoufu(Box::new(production_weidoufu(&get, &switch)?))
            }
        };
        let openid = openid_settings(&get, false)?;
        if openid.token_key.is_some() && openid.wechat.is_none() && provider != ProviderKind::Qfpay
        {
            return Err(ConfigError::new(
                "WXPAY_APP_SECRET",
                "the openid routes (WXPAY_OPENID_TOKEN_KEY is set) need a way to resolve \
                 openids: set WXPAY_APPID and WXPAY_APP_SECRET (WeChat jscode2session / OAuth2)",
            ));
        }
        Ok(Self {
            bind,
            database_url,
            admin_token,
            checkout,
            seed000_compat,
            reconcile,
            provider,
            sandbox_sign_type: sign_type,
            weidoufu_pay_type,
            sandbox_notify_url: None,
            upstream,
            openid,
            ignored: Vec::new(),
        })
    }

    /// Whether this is sandbox mode.
    pub fn is_sandbox(&self) -> bool {
        matches!(self.upstream, Upstream::Sandbox)
    }
}

fn production(
    get: &impl Fn(&str) -> Option<String>,
    mchid: String,
) -> Result<ProductionConfig, ConfigError> {
    let required = |name: &'static str| {
        get(name).ok_or_else(|| {
            ConfigError::new(
                name,
                "is required in production mode (WXPAY_MCHID is set); unset WXPAY_MCHID for sandbox mode",
            )
        })
    };
    let appid = required("WXPAY_APPID")?;
    let serial = required("WXPAY_MERCHANT_SERIAL")?;
    let key_file = required("WXPAY_MERCHANT_KEY_FILE")?;
    let api_v3_key = required("WXPAY_APIV3_KEY")?;
    let notify_url = required("WXPAY_NOTIFY_URL")?;

    let private_key =
        MerchantPrivateKey::from_pem(&read_pem("WXPAY_MERCHANT_KEY_FILE", &key_file)?)
            .map_err(|e| ConfigError::new("WXPAY_MERCHANT_KEY_FILE", e.to_string()))?;
    check_identifiers(&[
        ("WXPAY_MCHID", &mchid, 32),
        ("WXPAY_APPID", &appid, 32),
        ("WXPAY_MERCHANT_SERIAL", &serial, 64),
    ])?;
    let credentials = MerchantCredentials::new(mchid, appid, serial, private_key)
        .map_err(|e| ConfigError::new("WXPAY_MCHID", e.to_string()))?;
    let api_v3_key = ApiV3Key::new(api_v3_key.trim().as_bytes()).map_err(|_| {
        ConfigError::new(
            "WXPAY_APIV3_KEY",
            "must be exactly 32 characters (the API v3 key set in the merchant platform)",
        )
    })?;

    let public_key =
        match (
            get("WXPAY_PLATFORM_PUBLIC_KEY_FILE"),
            get("WXPAY_PLATFORM_PUBLIC_KEY_ID"),
        ) {
            (Some(file), Some(id)) => {
                if !id.starts_with("PUB_KEY_ID_") {
                    return Err(ConfigError::new(
                        "WXPAY_PLATFORM_PUBLIC_KEY_ID",
                        "must be the key's id, PUB_KEY_ID_ followed by digits",
                    ));
                }
                let pem = read_pem("WXPAY_PLATFORM_PUBLIC_KEY_FILE", &file)?;
                Some(PlatformPublicKey::from_pem(id, &pem).map_err(|e| {
                    ConfigError::new("WXPAY_PLATFORM_PUBLIC_KEY_FILE", e.to_string())
                })?)
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "WXPAY_PLATFORM_PUBLIC_KEY_ID",
                    "is required with WXPAY_PLATFORM_PUBLIC_KEY_FILE",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "WXPAY_PLATFORM_PUBLIC_KEY_FILE",
                    "is required with WXPAY_PLATFORM_PUBLIC_KEY_ID",
                ));
            }
            (None, None) => None,
        };
    let certificates = match get("WXPAY_PLATFORM_CERT_FILE") {
        Some(file) => {
            let text = read_pem("WXPAY_PLATFORM_CERT_FILE", &file)?;
            let blocks = pem_blocks(&text);
            if blocks.is_empty() {
                return Err(ConfigError::new(
                    "WXPAY_PLATFORM_CERT_FILE",
                    "holds no -----BEGIN CERTIFICATE----- block",
                ));
            }
            blocks
                .iter()
                .map(|block| PlatformCertificate::from_pem(block))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::new("WXPAY_PLATFORM_CERT_FILE", e.to_string()))?
        }
        None => Vec::new(),
    };
    let certificate_mode = public_key.is_none() || !certificates.is_empty();
    let trust = match public_key {
        Some(key) if certificates.is_empty() => PlatformTrust::public_key(key),
        Some(key) => PlatformTrust::public_key_and_certificates(key, certificates),
        None => PlatformTrust::certificates(certificates),
    }
    .map_err(|e| ConfigError::new("WXPAY_PLATFORM_PUBLIC_KEY_FILE", e.to_string()))?;

    let notify_url = parse_notify_url(&notify_url)?;
    let api_base = parse_api_base(get("WXPAY_API_BASE").as_deref())?;
    Ok(ProductionConfig {
        credentials,
        api_v3_key,
        trust,
        certificate_mode,
        notify_url,
        api_base,
    })
}

/// Each value is at most `max` letters, digits or `_`.
fn check_identifiers(values: &[(&'static str, &str, usize)]) -> Result<(), ConfigError> {
    for &(name, value, max) in values {
        if value.len() > max
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ConfigError::new(
                name,
                format!("must be at most {max} letters, digits or '_'"),
            ));
        }
    }
    Ok(())
}

/// Production mode of `WXPAY_PROVIDER=v2`.
fn production_v2(
    get: &impl Fn(&str) -> Option<String>,
    mchid: &str,
    sign_type: SignType,
) -> Result<V2Config, ConfigError> {
    let required = |name: &'static str| {
        get(name).ok_or_else(|| {
            ConfigError::new(
                name,
                "is required in production mode (WXPAY_PROVIDER=v2 and WXPAY_MCHID is set); \
                 unset WXPAY_MCHID for sandbox mode",
            )
        })
    };
    let appid = required("WXPAY_APPID")?;
    let api_key = required("WXPAY_API_KEY")?;
    let notify_url = required("WXPAY_NOTIFY_URL")?;
    let mchid = mchid.trim().to_owned();
    let appid = appid.trim().to_owned();
    check_identifiers(&[("WXPAY_MCHID", &mchid, 32), ("WXPAY_APPID", &appid, 32)])?;
    // The error says what is wrong (length, character class), never the key.
    let api_key = ApiKey::new(api_key.trim())
        .map_err(|e| ConfigError::new("WXPAY_API_KEY", e.to_string()))?;
    let notify_url = parse_notify_url(&notify_url)?;
    let mut config = V2Config::new(appid, mchid, api_key, sign_type, notify_url);
    config.api_base = parse_api_base(get("WXPAY_API_BASE").as_deref())?;
    config.merchant_certificate = match (get("WXPAY_V2_CERT_FILE"), get("WXPAY_V2_KEY_FILE")) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let cert_pem = read_pem("WXPAY_V2_CERT_FILE", cert.trim())?;
            let key_pem = zeroize::Zeroizing::new(read_pem("WXPAY_V2_KEY_FILE", key.trim())?);
            Some(
                MerchantCertificate::from_pem(&cert_pem, &key_pem)
                    .map_err(|e| ConfigError::new("WXPAY_V2_CERT_FILE", e.to_string()))?,
            )
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "WXPAY_V2_KEY_FILE",
                "is required with WXPAY_V2_CERT_FILE (apiclient_key.pem)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "WXPAY_V2_CERT_FILE",
                "is required with WXPAY_V2_KEY_FILE (apiclient_cert.pem)",
            ));
        }
    };
    if let Some(base) = get("WXPAY_V2_SECAPI_BASE") {
        config.secapi_base = Some(
            parse_api_base(Some(&base))
                .map_err(|e| ConfigError::new("WXPAY_V2_SECAPI_BASE", e.message))?,
        );
    }
    if let Some(path) = get("WXPAY_V2_CA_FILE") {
        config.secapi_root_certificate_pem = Some(read_pem("WXPAY_V2_CA_FILE", path.trim())?);
    }
    Ok(config)
}

/// Production mode of `WXPAY_PROVIDER=gateway`.
fn production_gateway(
    get: &impl Fn(&str) -> Option<String>,
    url: &str,
) -> Result<GatewayConfig, ConfigError> {
    let required = |name: &'static str| {
        get(name).ok_or_else(|| {
            ConfigError::new(
                name,
                "is required in production mode (WXPAY_PROVIDER=gateway and WXPAY_GATEWAY_URL \
                 is set); unset WXPAY_GATEWAY_URL for sandbox mode",
            )
        })
    };
    let url = parse_gateway_url(url)?;
    let biz_id = required("WXPAY_GATEWAY_BIZ_ID")?.trim().to_owned();
    let app_key = required("WXPAY_GATEWAY_APP_KEY")?;
    let notify_url = required("WXPAY_NOTIFY_URL")?;
    let app_key = AppKey::new(app_key.trim())
        .map_err(|e| ConfigError::new("WXPAY_GATEWAY_APP_KEY", e.to_string()))?;
    let ip = match get("WXPAY_GATEWAY_IP") {
        Some(value) => value.trim().parse().map_err(|_| {
            ConfigError::new(
                "WXPAY_GATEWAY_IP",
                format!("{value:?} is not an IP address like 203.0.113.7"),
            )
        })?,
        None => IpAddr::from([127, 0, 0, 1]),
    };
    Ok(GatewayConfig {
        url,
        biz_id,
        app_key,
        notify_url: parse_notify_url(&notify_url)?,
        ip,
    })
}

/// Production mode of `WXPAY_PROVIDER=qfpay`.
fn production_qfpay(
    get: &impl Fn(&str) -> Option<String>,
    url: &str,
) -> Result<QfpayConfig, ConfigError> {
    let required = |name: &'static str| {
        get(name).ok_or_else(|| {
            ConfigError::new(
                name,
                "is required in production mode (WXPAY_PROVIDER=qfpay and WXPAY_QFPAY_URL is \
                 set); unset WXPAY_QFPAY_URL for sandbox mode",
            )
        })
    };
    let url = parse_base_url(
        "WXPAY_QFPAY_URL",
        url,
        "QFPay's API host, e.g. https://openapi-hk.qfapi.com",
    )?;
    let app_code = required("WXPAY_QFPAY_APP_CODE")?.trim().to_owned();
    let client_key = ClientKey::new(required("WXPAY_QFPAY_CLIENT_KEY")?.trim())
        .map_err(|e| ConfigError::new("WXPAY_QFPAY_CLIENT_KEY", e.to_string()))?;
    let notify_url = required("WXPAY_NOTIFY_URL")?;
    check_identifiers(&[("WXPAY_QFPAY_APP_CODE", &app_code, 64)])?;
    let mut config = QfpayConfig::new(url, app_code, client_key);
    if let Some(mchid) = get("WXPAY_QFPAY_MCHID") {
        let mchid = mchid.trim().to_owned();
        check_identifiers(&[("WXPAY_QFPAY_MCHID", &mchid, 16)])?;
        config.mchid = Some(mchid);
    }
    if let Some(currency) = get("WXPAY_QFPAY_CURRENCY") {
        config.currency = Currency::try_from(currency.trim().to_ascii_uppercase())
            .map_err(|e| ConfigError::new("WXPAY_QFPAY_CURRENCY", e.to_string()))?;
    }
    config.notify_url = Some(parse_notify_url(&notify_url)?);
    Ok(config)
}

/// Production mode of `WXPAY_PROVIDER=weidoufu`.
fn production_weidoufu(
    get: &impl Fn(&str) -> Option<String>,
    url: &str,
) -> Result<WeidoufuConfig, ConfigError> {
    let required = |name: &'static str| {
        get(name).ok_or_else(|| {
            ConfigError::new(
                name,
                "is required in production mode (WXPAY_PROVIDER=weidoufu and WXPAY_WEIDOUFU_URL \
                 is set); unset WXPAY_WEIDOUFU_URL for sandbox mode",
            )
        })
    };
    let url = parse_base_url(
        "WXPAY_WEIDOUFU_URL",
        url,
        "weidoufu's base URL, e.g. https://open.weidoufu.com",
    )?;
    let access_key = required("WXPAY_WEIDOUFU_ACCESS_KEY")?.trim().to_owned();
    check_identifiers(&[("WXPAY_WEIDOUFU_ACCESS_KEY", &access_key, 32)])?;
    let secret_key = SecretKey::new(required("WXPAY_WEIDOUFU_SECRET_KEY")?.trim())
        .map_err(|e| ConfigError::new("WXPAY_WEIDOUFU_SECRET_KEY", e.to_string()))?;
    let notify_url = parse_notify_url(&required("WXPAY_NOTIFY_URL")?)?;
    let mut config = WeidoufuConfig::new(url, access_key, secret_key, notify_url);
    config.pay_type = weidoufu_pay_type(get)?;
    Ok(config)
}

/// `WXPAY_WEIDOUFU_PAY_TYPE` (also honoured in sandbox mode).
pub fn weidoufu_pay_type(get: &impl Fn(&str) -> Option<String>) -> Result<PayType, ConfigError> {
    match get("WXPAY_WEIDOUFU_PAY_TYPE") {
        Some(value) => value.trim().to_ascii_lowercase().parse().map_err(
            |e: wxpay_core::weidoufu::UnknownPayType| {
                ConfigError::new("WXPAY_WEIDOUFU_PAY_TYPE", e.to_string())
            },
        ),
        None => Ok(PayType::Wechat),
    }
}

/// How the shop prices orders (`WXPAY_CHECKOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutMode {
    /// `catalog`: the product catalog sets the price of `{product_id}`.
    Catalog,
    /// `amount`: the client's amount, accepted from `min` to `max` fen.
    Amount {
        /// `WXPAY_AMOUNT_MIN`.
        min: Amount,
        /// `WXPAY_AMOUNT_MAX`.
        max: Amount,
    },
}

/// The default range of `amount` mode: 1 fen to 10 000 yuan.
const DEFAULT_AMOUNT_RANGE: (u64, u64) = (1, 1_000_000);

/// Reads `WXPAY_CHECKOUT` and, in `amount` mode, its range.
pub fn checkout_mode(get: &impl Fn(&str) -> Option<String>) -> Result<CheckoutMode, ConfigError> {
    let fen = |name: &'static str, default: u64| -> Result<Amount, ConfigError> {
        let Some(text) = get(name) else {
            return Amount::from_fen(default).map_err(|e| ConfigError::new(name, e.to_string()));
        };
        let value: u64 = text.trim().parse().map_err(|_| {
            ConfigError::new(name, format!("{text:?} is not a whole number of fen"))
        })?;
        Amount::from_fen(value)
            .map_err(|e| ConfigError::new(name, e.to_string().replace("invalid amount: ", "")))
    };
    match get("WXPAY_CHECKOUT").map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(CheckoutMode::Catalog),
        Some(mode) if mode == "catalog" => Ok(CheckoutMode::Catalog),
        Some(mode) if mode == "amount" => {
            let min = fen("WXPAY_AMOUNT_MIN", DEFAULT_AMOUNT_RANGE.0)?;
            let max = fen("WXPAY_AMOUNT_MAX", DEFAULT_AMOUNT_RANGE.1)?;
            if min > max {
                return Err(ConfigError::new(
                    "WXPAY_AMOUNT_MIN",
                    format!(
                        "{} fen is above WXPAY_AMOUNT_MAX ({} fen)",
                        min.fen(),
                        max.fen()
                    ),
                ));
            }
            Ok(CheckoutMode::Amount { min, max })
        }
        Some(_) => Err(ConfigError::new(
            "WXPAY_CHECKOUT",
            "must be catalog (the shop's products set the price) or amount (the client's \
             amount in fen, as seeds 000 and 001 send it)",
        )),
    }
}

/// The openid settings; `sandbox` picks the defaults of sandbox mode (token mode, generated key,
/// the sandbox's WeChat app).
fn openid_settings(
    get: &impl Fn(&str) -> Option<String>,
    sandbox: bool,
) -> Result<OpenidSettings, ConfigError> {
    let mode = match get("WXPAY_OPENID_MODE").map(|v| v.trim().to_ascii_lowercase()) {
        None if sandbox => OpenidMode::TokenRequired,
        None => OpenidMode::Body,
        Some(value) if value == "token" => OpenidMode::TokenRequired,
        Some(value) if value == "body" => OpenidMode::Body,
        Some(_) => {
            return Err(ConfigError::new(
                "WXPAY_OPENID_MODE",
                "must be token (precreate requires the openid the server resolved) or body \
                 (the page sends the openid)",
            ));
        }
    };
    let token_key = match get("WXPAY_OPENID_TOKEN_KEY") {
        Some(key) => Some(
            OpenidTokenKey::new(key.trim().as_bytes().to_vec())
                .map_err(|e| ConfigError::new("WXPAY_OPENID_TOKEN_KEY", e.to_string()))?,
        ),
        None if !sandbox && mode == OpenidMode::TokenRequired => {
            return Err(ConfigError::new(
                "WXPAY_OPENID_TOKEN_KEY",
                "is required with WXPAY_OPENID_MODE=token in production mode (at least 32 \
                 random bytes, the same on every instance)",
            ));
        }
        None => None,
    };
    let public_url = match get("WXPAY_PUBLIC_URL") {
        Some(url) => Some(parse_base_url(
            "WXPAY_PUBLIC_URL",
            &url,
            "the shop's public base URL, e.g. https://shop.example.com",
        )?),
        None if !sandbox && token_key.is_some() => {
            return Err(ConfigError::new(
                "WXPAY_PUBLIC_URL",
                "is required with WXPAY_OPENID_TOKEN_KEY in production mode (the OAuth2 \
                 redirect comes back to it)",
            ));
        }
        None => None,
    };
    let wechat = match (get("WXPAY_APPID"), get("WXPAY_APP_SECRET")) {
        (Some(appid), Some(secret)) if !sandbox => Some((
            appid.trim().to_owned(),
            AppSecret::new(secret.trim())
                .map_err(|e| ConfigError::new("WXPAY_APP_SECRET", e.to_string()))?,
        )),
        _ => None,
    };
    let url = |name: &'static str| {
        get(name)
            .map(|value| parse_base_url(name, &value, "an absolute http(s) URL"))
            .transpose()
    };
    Ok(OpenidSettings {
        mode,
        token_key,
        public_url,
        wechat,
        wechat_api_url: url("WXPAY_WECHAT_API_URL")?,
        wechat_open_url: url("WXPAY_WECHAT_OPEN_URL")?,
    })
}

/// An absolute http(s) base URL without a query, with no trailing slash.
fn parse_base_url(variable: &'static str, value: &str, what: &str) -> Result<String, ConfigError> {
    let value = value.trim().trim_end_matches('/');
    let uri: http::Uri = value
        .parse()
        .map_err(|_| ConfigError::new(variable, format!("is not a URL: it must be {what}")))?;
    if !matches!(uri.scheme_str(), Some("https" | "http"))
        || uri.authority().is_none()
        || uri.query().is_some()
    {
        return Err(ConfigError::new(
            variable,
            format!("must be {what}, without a query"),
        ));
    }
    Ok(value.to_owned())
}

/// The gateway's base URL: absolute http(s), no query, no trailing slash.
fn parse_gateway_url(value: &str) -> Result<String, ConfigError> {
    let value = value.trim().trim_end_matches('/');
    let uri: http::Uri = value
        .parse()
        .map_err(|_| ConfigError::new("WXPAY_GATEWAY_URL", "is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("https" | "http"))
        || uri.authority().is_none()
        || uri.query().is_some()
    {
        return Err(ConfigError::new(
            "WXPAY_GATEWAY_URL",
            "must be the gateway's absolute http(s) base URL, without a query \
             (/open/trade/wx/jsapi/precreate is appended to it)",
        ));
    }
    Ok(value.to_owned())
}

/// `https://…`, or `http://` to a loopback host (a local sandbox: WeChat Pay itself refuses
/// `http` and could not reach a loopback address anyway).
fn parse_notify_url(value: &str) -> Result<NotifyUrl, ConfigError> {
    let error =
        |e: wxpay_core::fields::FieldError| ConfigError::new("WXPAY_NOTIFY_URL", e.to_string());
    if let Some(rest) = value.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(ConfigError::new(
                "WXPAY_NOTIFY_URL",
                "must be https:// (http:// is accepted only for a loopback host, e.g. a local sandbox)",
            ));
        }
        return NotifyUrl::parse_for_local_development(value).map_err(error);
    }
    NotifyUrl::try_from(value).map_err(error)
}

fn parse_api_base(value: Option<&str>) -> Result<String, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_API_BASE.to_owned());
    };
    let value = value.trim().trim_end_matches('/');
    let uri: http::Uri = value
        .parse()
        .map_err(|_| ConfigError::new("WXPAY_API_BASE", "is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.authority().is_none() {
        return Err(ConfigError::new(
            "WXPAY_API_BASE",
            "must be an absolute http(s) URL such as https://api.mch.weixin.qq.com",
        ));
    }
    Ok(value.to_owned())
}

/// Reads a PEM file named by `variable`, at most 64 KiB. The content is never logged.
fn read_pem(variable: &'static str, path: &str) -> Result<String, ConfigError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| ConfigError::new(variable, format!("cannot open {path}: {e}")))?;
    let mut text = String::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| ConfigError::new(variable, format!("cannot read {path}: {e}")))?;
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_PEM_FILE {
        return Err(ConfigError::new(
            variable,
            format!("{path} is larger than 64 KiB: not a PEM key or certificate"),
        ));
    }
    Ok(text)
}

/// The `-----BEGIN CERTIFICATE-----` blocks of a PEM file.
fn pem_blocks(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        blocks.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ShopConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ShopConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn nothing_set_is_sandbox_mode_with_defaults() {
        let c = config(&[]).unwrap();
        assert!(c.is_sandbox());
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert!(c.ignored.is_empty());
    }

    #[test]
    fn reconcile_timing_is_read_in_seconds() {
        let secs = std::time::Duration::from_secs;
        assert_eq!(config(&[]).unwrap().reconcile, ReconcileTiming::default());
        assert_eq!(
            config(&[
                ("WXPAY_RECONCILE_AFTER", "0"),
                ("WXPAY_RECONCILE_EVERY", " 2 ")
            ])
            .unwrap()
            .reconcile,
            ReconcileTiming {
                after: secs(0),
                every: secs(2)
            }
        );
        for (key, value) in [
            ("WXPAY_RECONCILE_EVERY", "0"),
            ("WXPAY_RECONCILE_EVERY", "1.5"),
            ("WXPAY_RECONCILE_AFTER", "-1"),
        ] {
            let err = config(&[(key, value)]).unwrap_err();
            assert_eq!(err.variable, key, "{err}");
        }
    }

    #[test]
    fn checkout_is_catalog_by_default_and_amount_mode_has_a_range() {
        assert_eq!(config(&[]).unwrap().checkout, CheckoutMode::Catalog);
        let fen = |n| Amount::from_fen(n).unwrap();
        assert_eq!(
            config(&[("WXPAY_CHECKOUT", "amount")]).unwrap().checkout,
            CheckoutMode::Amount {
                min: fen(1),
                max: fen(1_000_000)
            }
        );
        assert_eq!(
            config(&[
                ("WXPAY_CHECKOUT", " Amount "),
                ("WXPAY_AMOUNT_MIN", "100"),
                ("WXPAY_AMOUNT_MAX", "500"),
            ])
            .unwrap()
            .checkout,
            CheckoutMode::Amount {
                min: fen(100),
                max: fen(500)
            }
        );
        for (vars, key) in [
            (&[("WXPAY_CHECKOUT", "free")][..], "WXPAY_CHECKOUT"),
            (
                &[("WXPAY_CHECKOUT", "amount"), ("WXPAY_AMOUNT_MIN", "0")][..],
                "WXPAY_AMOUNT_MIN",
            ),
            (
                &[("WXPAY_CHECKOUT", "amount"), ("WXPAY_AMOUNT_MAX", "1.5")][..],
                "WXPAY_AMOUNT_MAX",
            ),
            (
                &[
                    ("WXPAY_CHECKOUT", "amount"),
                    ("WXPAY_AMOUNT_MAX", "4294967296"),
                ][..],
                "WXPAY_AMOUNT_MAX",
            ),
            (
                &[
                    ("WXPAY_CHECKOUT", "amount"),
                    ("WXPAY_AMOUNT_MIN", "500"),
                    ("WXPAY_AMOUNT_MAX", "100"),
                ][..],
                "WXPAY_AMOUNT_MIN",
            ),
        ] {
            let error = config(vars).unwrap_err();
            assert_eq!(error.variable, key, "{vars:?}: {error}");
        }
    }

    #[test]
    fn sandbox_mode_lists_ignored_production_variables() {
        let c = config(&[("WXPAY_APPID", "wx123"), ("WXPAY_BIND", "0.0.0.0:8080")]).unwrap();
        assert!(c.is_sandbox());
        assert_eq!(c.ignored, vec!["WXPAY_APPID"]);
        assert_eq!(c.bind.port(), 8080);
    }

    #[test]
    fn invalid_values_name_their_variable() {
        assert_eq!(
            config(&[("WXPAY_BIND", "nope")]).unwrap_err().variable,
            "WXPAY_BIND"
        );
        assert_eq!(
            config(&[("DATABASE_URL", "redis://x")])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
        assert_eq!(
            config(&[("WXPAY_MCHID", "1900000001")])
                .unwrap_err()
                .variable,
            "WXPAY_APPID"
        );
        let missing_file = config(&[
            ("WXPAY_MCHID", "1900000001"),
            ("WXPAY_APPID", "wx1"),
            ("WXPAY_MERCHANT_SERIAL", "ABC"),
            ("WXPAY_MERCHANT_KEY_FILE", "/nonexistent/key.pem"),
            ("WXPAY_APIV3_KEY", "0123456789abcdef0123456789abcdef"),
            ("WXPAY_NOTIFY_URL", "https://shop.example/wxpay/notify"),
        ])
        .unwrap_err();
        assert_eq!(missing_file.variable, "WXPAY_MERCHANT_KEY_FILE");
        assert!(missing_file.message.contains("/nonexistent/key.pem"));
    }

    #[test]
    fn notify_url_http_only_for_loopback() {
        assert!(parse_notify_url("https://shop.example/wxpay/notify").is_ok());
        assert!(parse_notify_url("http://127.0.0.1:3000/wxpay/notify").is_ok());
        assert!(parse_notify_url("http://localhost/wxpay/notify").is_ok());
        assert!(parse_notify_url("http://[::1]:3000/wxpay/notify").is_ok());
        let e = parse_notify_url("http://shop.example/wxpay/notify").unwrap_err();
        assert_eq!(e.variable, "WXPAY_NOTIFY_URL");
        assert!(parse_notify_url("https://shop.example/wxpay/notify?x=1").is_err());
    }

    #[test]
    fn api_base_is_checked_and_trimmed() {
        assert_eq!(parse_api_base(None).unwrap(), DEFAULT_API_BASE);
        assert_eq!(
            parse_api_base(Some("http://127.0.0.1:9000/")).unwrap(),
            "http://127.0.0.1:9000"
        );
        assert!(parse_api_base(Some("ftp://x")).is_err());
        assert!(parse_api_base(Some("not a url")).is_err());
    }

    #[test]
    fn pem_blocks_are_split() {
        let text = "x\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].contains("BBB"));
    }

    #[test]
    fn provider_is_v3_by_default_and_anything_else_is_named() {
        assert_eq!(config(&[]).unwrap().provider, ProviderKind::V3);
        for (value, kind) in [
            ("v3", ProviderKind::V3),
            ("V2", ProviderKind::V2),
            (" gateway ", ProviderKind::Gateway),
            ("qfpay", ProviderKind::Qfpay),
            ("WEIDOUFU", ProviderKind::Weidoufu),
        ] {
            let c = config(&[("WXPAY_PROVIDER", value)]).unwrap();
            assert_eq!(c.provider, kind);
            assert!(c.is_sandbox());
        }
        let e = config(&[("WXPAY_PROVIDER", "alipay")]).unwrap_err();
        assert_eq!(e.variable, "WXPAY_PROVIDER");
        assert!(e.message.contains("v3") && e.message.contains("weidoufu"));
    }

    #[test]
    fn openid_settings_by_mode() {
        // Sandbox mode: token mode by default, a generated key, the bound address.
        let c = config(&[]).unwrap();
        assert_eq!(c.openid.mode, OpenidMode::TokenRequired);
        assert!(c.openid.token_key.is_none() && c.openid.public_url.is_none());
        let c = config(&[("WXPAY_OPENID_MODE", "body")]).unwrap();
        assert_eq!(c.openid.mode, OpenidMode::Body);
        let e = config(&[("WXPAY_OPENID_MODE", "cookie")]).unwrap_err();
        assert_eq!(e.variable, "WXPAY_OPENID_MODE");

        // Production (QFPay): body mode by default; token mode needs a key and a public URL.
        let production = [
            ("WXPAY_PROVIDER", "qfpay"),
            ("WXPAY_QFPAY_URL", "https://openapi-hk.qfapi.com"),
            ("WXPAY_QFPAY_APP_CODE", "APPCODE0123"),
            ("WXPAY_QFPAY_CLIENT_KEY", "CLIENTKEY0123"),
            ("WXPAY_NOTIFY_URL", "https://shop.example/wxpay/notify"),
        ];
        let c = config(&production).unwrap();
        assert_eq!(c.openid.mode, OpenidMode::Body);
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = production.to_vec();
            vars.extend_from_slice(extra);
            config(&vars)
        };
        let e = with(&[("WXPAY_OPENID_MODE", "token")]).unwrap_err();
        assert_eq!(e.variable, "WXPAY_OPENID_TOKEN_KEY");
        let e = with(&[("WXPAY_OPENID_TOKEN_KEY", "short")]).unwrap_err();
        assert_eq!(e.variable, "WXPAY_OPENID_TOKEN_KEY");
        assert!(!e.message.contains("short"), "the key is never printed");
        let key = (
            "WXPAY_OPENID_TOKEN_KEY",
            "0123456789abcdef0123456789abcdef!",
        );
        let e = with(&[key]).unwrap_err();
        assert_eq!(e.variable, "WXPAY_PUBLIC_URL");
        let c = with(&[
            key,
            ("WXPAY_PUBLIC_URL", "https://shop.example/"),
            ("WXPAY_OPENID_MODE", "token"),
        ])
        .unwrap();
        assert_eq!(c.openid.mode, OpenidMode::TokenRequired);
        assert_eq!(c.openid.public_url.as_deref(), Some("https://shop.example"));

        // Other providers resolve openids with WeChat: the app secret is required.
        let v2 = [
            ("WXPAY_PROVIDER", "v2"),
            ("WXPAY_MCHID", "1900000109"),
            ("WXPAY_APPID", "wxd678efh567hg6787"),
            ("WXPAY_API_KEY", V2_KEY),
            ("WXPAY_NOTIFY_URL", "https://shop.example/wxpay/notify"),
            key,
            ("WXPAY_PUBLIC_URL", "https://shop.example"),
        ];
        let e = config(&v2).unwrap_err();
        assert_eq!(e.variable, "WXPAY_APP_SECRET");
        let mut vars = v2.to_vec();
        vars.push(("WXPAY_APP_SECRET", "an-app-secret"));
        assert!(config(&vars).unwrap().openid.wechat.is_some());
    }

    const V2_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    #[test]
    fn v2_sandbox_and_production() {
        let c = config(&[
            ("WXPAY_PROVIDER", "v2"),
            ("WXPAY_SIGN_TYPE", "hmac-sha256"),
            ("WXPAY_API_KEY", V2_KEY),
        ])
        .unwrap();
        assert!(c.is_sandbox());
        assert_eq!(c.sandbox_sign_type, SignType::HmacSha256);
        assert_eq!(c.ignored, vec!["WXPAY_API_KEY"]);

        let vars = [
            ("WXPAY_PROVIDER", "v2"),
            ("WXPAY_MCHID", "1900000001"),
            ("WXPAY_APPID", "wx1234"),
            ("WXPAY_API_KEY", V2_KEY),
            ("WXPAY_NOTIFY_URL", "https://shop.example/wxpay/notify"),
        ];
        let c = config(&vars).unwrap();
        let Upstream::V2(v2) = &c.upstream else {
            panic!("{c:?}")
        };
        assert_eq!(v2.sign_type, SignType::Md5);
        assert_eq!(v2.api_base, DEFAULT_API_BASE);
        assert_eq!(v2.mchid, "1900000001");
        assert!(
            !format!("{c:?}").contains(V2_KEY),
            "the key is never printed"
        );

        let e = config(&[&vars[..], &[("WXPAY_SIGN_TYPE", "SHA1")]].concat()).unwrap_err();
        assert_eq!(e.variable, "WXPAY_SIGN_TYPE");
        let e = config(&[&vars[..], &[("WXPAY_API_KEY", "short")]].concat()).unwrap_err();
        assert_eq!(e.variable, "WXPAY_API_KEY");
        assert!(!e.message.contains("short"));
        let e = config(&vars[..3]).unwrap_err();
        assert_eq!(e.variable, "WXPAY_API_KEY");
        assert!(e.message.contains("WXPAY_MCHID"), "{e}");
    }

    #[test]
    fn gateway_sandbox_and_production() {
        let c = config(&[
            ("WXPAY_PROVIDER", "gateway"),
            ("WXPAY_MCHID", "1900000001"),
            ("WXPAY_GATEWAY_BIZ_ID", "biz"),
        ])
        .unwrap();
        assert!(c.is_sandbox(), "WXPAY_GATEWAY_URL selects production");
        assert_eq!(c.ignored, vec!["WXPAY_GATEWAY_BIZ_ID"]);

        let vars = [
            ("WXPAY_PROVIDER", "gateway"),
            ("WXPAY_GATEWAY_URL", "https://pay.example/"),
            ("WXPAY_GATEWAY_BIZ_ID", "shop-1"),
            ("WXPAY_GATEWAY_APP_KEY", "secret-app-key"),
            ("WXPAY_NOTIFY_URL", "https://shop.example/wxpay/notify"),
        ];
        let c = config(&vars).unwrap();
        let Upstream::Gateway(gateway) = &c.upstream else {
            panic!("{c:?}")
        };
        assert_eq!(gateway.url, "https://pay.example");
        assert_eq!(gateway.ip.to_string(), "127.0.0.1");
        assert!(!format!("{c:?}").contains("secret-app-key"));
        let c = config(&[&vars[..], &[("WXPAY_GATEWAY_IP", "203.0.113.7")]].concat()).unwrap();
        let Upstream::Gateway(gateway) = &c.upstream else {
            panic!("{c:?}")
        };
        assert_eq!(gateway.ip.to_string(), "203.0.113.7");

        let e = config(&[&vars[..], &[("WXPAY_GATEWAY_IP", "nope")]].concat()).unwrap_err();
        assert_eq!(e.variable, "WXPAY_GATEWAY_IP");
        let e = config(&vars[..3]).unwrap_err();
        assert_eq!(e.variable, "WXPAY_GATEWAY_APP_KEY");
        assert!(e.message.contains("WXPAY_GATEWAY_URL"), "{e}");
        let e = config(&[
            ("WXPAY_PROVIDER", "gateway"),
            ("WXPAY_GATEWAY_URL", "ftp://x"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "WXPAY_GATEWAY_URL");
        assert!(parse_gateway_url("https://pay.example/x?y=1").is_err());
    }
}

//! The shops' configuration, from environment variables.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WXPAY_BIND` | address to listen on | `127.0.0.1:3000` |
//! | `DATABASE_URL` | order store: `sqlite://FILE`, `postgres://…`, `mysql://…` | `sqlite://wxpay-shop.db` (created if missing) |
//! | `WXPAY_MCHID` | merchant id; **unset = sandbox mode** | — |
//! | `WXPAY_APPID` | app id (公众号 / 小程序) | required in production |
//! | `WXPAY_MERCHANT_SERIAL` | merchant API certificate serial | required in production |
//! | `WXPAY_MERCHANT_KEY_FILE` | merchant private key, PEM file | required in production |
//! | `WXPAY_APIV3_KEY` | API v3 key, 32 characters | required in production |
//! | `WXPAY_PLATFORM_PUBLIC_KEY_FILE` + `WXPAY_PLATFORM_PUBLIC_KEY_ID` | WeChat Pay public key (PEM) and its `PUB_KEY_ID_…` | — |
//! | `WXPAY_PLATFORM_CERT_FILE` | platform certificate(s), PEM (certificate mode) | downloaded |
//! | `WXPAY_NOTIFY_URL` | the public `https://…/wxpay/notify` URL | required in production |
//! | `WXPAY_API_BASE` | WeChat Pay API v3 base URL | `https://api.mch.weixin.qq.com` |
//!
//! With neither a platform public key nor a certificate file, the shop runs in certificate mode
//! and downloads the platform certificates from `GET /v3/certificates` on start.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use wxpay_core::fields::NotifyUrl;
use wxpay_core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformCertificate, PlatformPublicKey,
    PlatformTrust,
};

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

/// Where the payments go.
#[derive(Debug)]
pub enum Upstream {
    /// Sandbox mode: the sandbox runs in process with generated keys.
    Sandbox,
    /// Production mode: a server that speaks WeChat Pay API v3.
    Production(Box<ProductionConfig>),
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

/// The whole configuration of a shop.
#[derive(Debug)]
pub struct ShopConfig {
    /// `WXPAY_BIND`.
    pub bind: SocketAddr,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `WXPAY_NOTIFY_URL` in sandbox mode (optional there; derived from the bound address).
    pub sandbox_notify_url: Option<String>,
    /// Sandbox or production.
    pub upstream: Upstream,
    /// Production variables that were set although `WXPAY_MCHID` is not (sandbox mode ignores
    /// them; the banner says so).
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
        let Some(mchid) = get("WXPAY_MCHID") else {
            let sandbox_notify_url = get("WXPAY_NOTIFY_URL");
            if let Some(url) = &sandbox_notify_url {
                NotifyUrl::parse_for_local_development(url)
                    .map_err(|e| ConfigError::new("WXPAY_NOTIFY_URL", e.to_string()))?;
            }
            let ignored = PRODUCTION_VARIABLES
                .iter()
                .copied()
                .filter(|name| get(name).is_some())
                .collect();
            return Ok(Self {
                bind,
                database_url,
                sandbox_notify_url,
                upstream: Upstream::Sandbox,
                ignored,
            });
        };
        let production = production(&get, mchid)?;
        Ok(Self {
            bind,
            database_url,
            sandbox_notify_url: None,
            upstream: Upstream::Production(Box::new(production)),
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
    for (name, value, max) in [
        ("WXPAY_MCHID", &mchid, 32),
        ("WXPAY_APPID", &appid, 32),
        ("WXPAY_MERCHANT_SERIAL", &serial, 64),
    ] {
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
}

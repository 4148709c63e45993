//! Everything a shop needs besides its web framework: the upstream (the in-process sandbox or
//! WeChat Pay), the order store, the engine with the catalog policy, and the background tasks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use wxpay_core::engine::{Engine, HookError, PaidHook};
use wxpay_core::fields::NotifyUrl;
use wxpay_core::provider::v3::V3Provider;
use wxpay_core::store::{PaidEvent, SqlxStore};
use wxpay_core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformPublicKey, PlatformTrust, V3Client,
};
use wxpay_sandbox::{Sandbox, SandboxConfig};

use crate::catalog::{Catalog, CatalogPolicy};
use crate::config::{ConfigError, ShopConfig, Upstream};

/// The demo payer's openid in sandbox mode (real apps get it through WeChat OAuth).
pub const SANDBOX_OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// A running shop's payment side.
pub struct Shop {
    engine: Engine,
    catalog: Catalog,
    sandbox: Option<Sandbox>,
    notify_url: String,
    api_base: String,
    database_url: String,
    ignored: Vec<&'static str>,
    _tasks: wxpay_core::engine::BackgroundTasks,
    certificate_refresh: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for Shop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shop")
            .field("sandbox", &self.sandbox.is_some())
            .field("notify_url", &self.notify_url)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Why a shop could not start: a configuration error naming its variable.
pub type StartError = ConfigError;

/// Logs each paid order; a real shop would fulfil it here (dedupe on `event_id`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogPaidHook;

#[async_trait]
impl PaidHook for LogPaidHook {
    async fn on_paid(&self, event: &PaidEvent) -> Result<(), HookError> {
        tracing::info!(
            event_id = %event.event_id,
            out_trade_no = %event.out_trade_no,
            amount_fen = event.amount.fen(),
            product = event.attach.as_ref().map(|a| a.as_str()).unwrap_or("-"),
            "order paid: fulfil it"
        );
        Ok(())
    }
}

/// The address other local processes (and the sandbox) reach `bound` at.
fn reachable(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

impl Shop {
    /// Starts the payment side of a shop listening on `bound` (the listener's actual address):
    /// in sandbox mode the sandbox starts in process with generated keys.
    pub async fn start(config: ShopConfig, bound: SocketAddr) -> Result<Self, StartError> {
        let store = SqlxStore::connect(&config.database_url)
            .await
            .map_err(|e| ConfigError::new("DATABASE_URL", format!("cannot open the store: {e}")))?;
        let (client, notify_url, sandbox, certificate_mode) = match config.upstream {
            Upstream::Sandbox => {
                let notify_url = config
                    .sandbox_notify_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}/wxpay/notify", reachable(bound)));
                let sandbox = Sandbox::start(SandboxConfig::default().allow_http_notify_url(true))
                    .await
                    .map_err(|e| ConfigError::new("WXPAY_MCHID", format!("sandbox: {e}")))?;
                let client = sandbox_client(&sandbox)?;
                let notify_url = NotifyUrl::parse_for_local_development(&notify_url)
                    .map_err(|e| ConfigError::new("WXPAY_NOTIFY_URL", e.to_string()))?;
                (client, notify_url, Some(sandbox), false)
            }
            Upstream::Production(production) => {
                let production = *production;
                let client = V3Client::builder(
                    production.credentials,
                    production.api_v3_key,
                    production.trust,
                )
                .base_url(&production.api_base)
                .build()
                .map_err(|e| ConfigError::new("WXPAY_API_BASE", e.to_string()))?;
                (
                    client,
                    production.notify_url,
                    None,
                    production.certificate_mode,
                )
            }
        };
        let certificate_refresh = if certificate_mode {
            client.refresh_certificates().await.map_err(|e| {
                ConfigError::new(
                    "WXPAY_PLATFORM_CERT_FILE",
                    format!(
                        "no platform public key is configured and the platform certificates \
                         could not be downloaded: {e}"
                    ),
                )
            })?;
            Some(client.spawn_certificate_refresh(Duration::from_secs(12 * 3600)))
        } else {
            None
        };
        let api_base = client.base_url().to_owned();
        let catalog = Catalog::demo();
        let provider = V3Provider::new(client, notify_url.clone());
        let engine = Engine::builder(Arc::new(provider), Arc::new(store))
            .checkout_policy(Arc::new(CatalogPolicy::new(catalog.clone())))
            .paid_hook(Arc::new(LogPaidHook))
            .build()
            .map_err(|e| ConfigError::new("WXPAY_MCHID", format!("engine: {e}")))?;
        let tasks = engine.spawn_background_tasks();
        Ok(Self {
            engine,
            catalog,
            sandbox,
            notify_url: notify_url.as_str().to_owned(),
            api_base,
            database_url: config.database_url,
            ignored: config.ignored,
            _tasks: tasks,
            certificate_refresh,
        })
    }

    /// The engine to mount.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The products.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The in-process sandbox, in sandbox mode.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// The sandbox's origin (`http://127.0.0.1:PORT`), in sandbox mode: the page loads the
    /// `WeixinJSBridge` shim from it.
    pub fn sandbox_origin(&self) -> Option<&str> {
        self.sandbox.as_ref().map(Sandbox::base_url)
    }

    /// What the checkout page needs: `{mode, jsbridge, openid, prefix}`. In sandbox mode
    /// `jsbridge` is the sandbox's `WeixinJSBridge` shim and `openid` the demo payer; in
    /// production both are null (WeChat's browser provides the bridge; the page takes the
    /// openid from its `?openid=` query, which a real app fills in after WeChat OAuth).
    pub fn page_config(&self) -> serde_json::Value {
        match &self.sandbox {
            Some(sandbox) => json!({
                "mode": "sandbox",
                "jsbridge": format!("{}/sandbox/jsbridge.js", sandbox.base_url()),
                "openid": SANDBOX_OPENID,
                "prefix": self.engine.prefix(),
            }),
            None => json!({
                "mode": "production",
                "jsbridge": null,
                "openid": null,
                "prefix": self.engine.prefix(),
            }),
        }
    }

    /// The products as JSON: `[{id, name, blurb, price_fen}]`.
    pub fn products_json(&self) -> serde_json::Value {
        json!(self.catalog.products())
    }

    /// The start-up banner for a shop listening on `bound`.
    pub fn banner(&self, bound: SocketAddr) -> String {
        let url = format!("http://{}", reachable(bound));
        let mut lines = Vec::new();
        match &self.sandbox {
            Some(sandbox) => {
                lines.push(format!(
                    "wxpay shop running in SANDBOX MODE (WXPAY_MCHID is unset): WeChat Pay is \
                     emulated in process at {} with generated keys; no real money moves.",
                    sandbox.base_url()
                ));
                if !self.ignored.is_empty() {
                    lines.push(format!(
                        "  ignored in sandbox mode: {} (set WXPAY_MCHID for production mode)",
                        self.ignored.join(", ")
                    ));
                }
            }
            None => lines.push(format!(
                "wxpay shop running in PRODUCTION MODE against {}",
                self.api_base
            )),
        }
        lines.push(format!("  shop:        {url}/"));
        lines.push(format!("  notify URL:  {}", self.notify_url));
        lines.push(format!("  store:       {}", redact_url(&self.database_url)));
        lines.push(format!(
            "  routes:      POST {p}/precreate, POST {p}/notify, GET {p}/orders/{{out_trade_no}}",
            p = self.engine.prefix()
        ));
        lines.join("\n")
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        if let Some(task) = self.certificate_refresh.take() {
            task.abort();
        }
    }
}

/// A database URL without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A client for the in-process sandbox's merchant.
fn sandbox_client(sandbox: &Sandbox) -> Result<V3Client, ConfigError> {
    let error =
        |e: &dyn fmt::Display| ConfigError::new("WXPAY_MCHID", format!("sandbox keys: {e}"));
    let merchant = sandbox.merchant();
    let platform = sandbox.platform();
    let private_key = merchant
        .private_key_pem
        .as_deref()
        .ok_or_else(|| error(&"the sandbox has no merchant private key"))?;
    let credentials = MerchantCredentials::new(
        &merchant.mchid,
        &merchant.appid,
        &merchant.serial,
        MerchantPrivateKey::from_pem(private_key).map_err(|e| error(&e))?,
    )
    .map_err(|e| error(&e))?;
    let trust = PlatformTrust::public_key(
        PlatformPublicKey::from_pem(&platform.public_key_id, &platform.public_key_pem)
            .map_err(|e| error(&e))?,
    )
    .map_err(|e| error(&e))?;
    V3Client::builder(
        credentials,
        ApiV3Key::new(sandbox.api_v3_key()).map_err(|e| error(&e))?,
        trust,
    )
    .base_url(sandbox.base_url())
    .build()
    .map_err(|e| error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://user:secret@db:5432/shop"),
            "postgres://user:***@db:5432/shop"
        );
        assert_eq!(
            redact_url("sqlite://wxpay-shop.db"),
            "sqlite://wxpay-shop.db"
        );
    }

    #[test]
    fn unspecified_addresses_are_reached_on_loopback() {
        let bound: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        assert_eq!(reachable(bound).to_string(), "127.0.0.1:3000");
    }
}

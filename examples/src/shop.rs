//! Everything a shop needs besides its web framework: the upstream (the in-process sandbox or
//! WeChat Pay), the order store, the engine with the catalog policy, and the background tasks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use wxpay_core::engine::{
    AmountRange, CheckoutPolicy, Engine, EventHook, HookError, OpenidConfig, OpenidMode,
};
use wxpay_core::fields::{Description, NotifyUrl};
use wxpay_core::gateway::{AppKey, GatewayClient, GatewayConfig};
use wxpay_core::openid::{
    AppSecret, MiniProgramLogin, OfficialAccountOAuth, OpenidTokenKey, QfpayOAuth,
};
use wxpay_core::provider::Provider;
use wxpay_core::provider::gateway::GatewayProvider;
use wxpay_core::provider::qfpay::QfpayProvider;
use wxpay_core::provider::v2::V2Provider;
use wxpay_core::provider::v3::V3Provider;
use wxpay_core::provider::weidoufu::WeidoufuProvider;
use wxpay_core::qfpay::{ClientKey, QfpayClient, QfpayConfig};
use wxpay_core::store::{Event, SqlxStore};
use wxpay_core::v2::{ApiKey, MerchantCertificate, SignType, V2Client, V2Config};
use wxpay_core::v3::{
    ApiV3Key, MerchantCredentials, MerchantPrivateKey, PlatformPublicKey, PlatformTrust, V3Client,
};
use wxpay_core::weidoufu::{PayType, SecretKey, WeidoufuClient, WeidoufuConfig};
use wxpay_sandbox::{Sandbox, SandboxConfig, V2SignType};

use crate::catalog::{Catalog, CatalogPolicy};
use crate::config::{
    CheckoutMode, ConfigError, OpenidSettings, ProviderKind, ShopConfig, Upstream,
};

/// The demo payer's openid in sandbox mode (real apps get it through WeChat OAuth).
pub const SANDBOX_OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// A running shop's payment side.
pub struct Shop {
    engine: Engine,
    catalog: Catalog,
    provider: ProviderKind,
    sandbox: Option<Sandbox>,
    notify_url: String,
    api_base: String,
    openid_mode: Option<OpenidMode>,
    /// Whether the operator routes are mounted (`WXPAY_ADMIN_TOKEN`).
    admin_routes: bool,
    /// How orders are priced (`WXPAY_CHECKOUT`).
    checkout: CheckoutMode,
    /// Whether seed 000's own route is mounted (`WXPAY_SEED000_COMPAT`).
    seed000_compat: bool,
    database_url: String,
    ignored: Vec<&'static str>,
    _tasks: wxpay_core::engine::BackgroundTasks,
    certificate_refresh: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for Shop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shop")
            .field("provider", &self.provider)
            .field("sandbox", &self.sandbox.is_some())
            .field("notify_url", &self.notify_url)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Why a shop could not start: a configuration error naming its variable.
pub type StartError = ConfigError;

/// Logs each paid order and settled refund; a real shop would fulfil or adjust the order here
/// (dedupe on `event_id`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogEventsHook;

#[async_trait]
impl EventHook for LogEventsHook {
    async fn on_event(&self, event: &Event) -> Result<(), HookError> {
        match event {
            Event::Paid(paid) => tracing::info!(
                event_id = %paid.event_id,
                out_trade_no = %paid.out_trade_no,
                amount_fen = paid.amount.fen(),
                product = paid.attach.as_ref().map(|a| a.as_str()).unwrap_or("-"),
                "order paid: fulfil it"
            ),
            Event::Refund(refund) => tracing::info!(
                event_id = %refund.event_id,
                out_trade_no = %refund.out_trade_no,
                out_refund_no = %refund.out_refund_no,
                amount_fen = refund.amount.fen(),
                status = %refund.status,
                "refund settled: adjust the order"
            ),
            other => tracing::info!(event_id = other.event_id(), "event"),
        }
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
        let kind = config.provider;
        let switch = kind.production_switch();
        let (upstream, sandbox) = match config.upstream {
            Upstream::Sandbox => {
                let notify_url = config
                    .sandbox_notify_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}/wxpay/notify", reachable(bound)));
                let sign_type = match config.sandbox_sign_type {
                    SignType::HmacSha256 => V2SignType::HmacSha256,
                    _ => V2SignType::Md5,
                };
                let sandbox = Sandbox::start(
                    SandboxConfig::default()
                        .allow_http_notify_url(true)
                        .v2_sign_type(sign_type),
                )
                .await
                .map_err(|e| ConfigError::new(switch, format!("sandbox: {e}")))?;
                let notify_url = NotifyUrl::parse_for_local_development(&notify_url)
                    .map_err(|e| ConfigError::new("WXPAY_NOTIFY_URL", e.to_string()))?;
                let upstream = sandbox_upstream(
                    &sandbox,
                    kind,
                    config.sandbox_sign_type,
                    config.weidoufu_pay_type,
                    notify_url,
                )?;
                (upstream, Some(sandbox))
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
                    Built::V3 {
                        client,
                        notify_url: production.notify_url,
                        certificate_mode: production.certificate_mode,
                    },
                    None,
                )
            }
            Upstream::V2(v2) => (Built::V2(*v2), None),
            Upstream::Gateway(gateway) => (Built::Gateway(*gateway), None),
            Upstream::Qfpay(qfpay) => (Built::Qfpay(*qfpay), None),
            Upstream::Weidoufu(weidoufu) => (Built::Weidoufu(*weidoufu), None),
        };
        let mut qfpay_client = None;
        let (provider, notify_url, api_base, certificate_refresh): (Arc<dyn Provider>, _, _, _) =
            match upstream {
                Built::V3 {
                    client,
                    notify_url,
                    certificate_mode,
                } => {
                    let certificate_refresh = if certificate_mode {
                        client.refresh_certificates().await.map_err(|e| {
                            ConfigError::new(
                                "WXPAY_PLATFORM_CERT_FILE",
                                format!(
                                    "no platform public key is configured and the platform \
                                     certificates could not be downloaded: {e}"
                                ),
                            )
                        })?;
                        Some(client.spawn_certificate_refresh(Duration::from_secs(12 * 3600)))
                    } else {
                        None
                    };
                    let api_base = client.base_url().to_owned();
                    (
                        Arc::new(V3Provider::new(client, notify_url.clone())),
                        notify_url,
                        api_base,
                        certificate_refresh,
                    )
                }
                Built::V2(v2) => {
                    let notify_url = v2.notify_url.clone();
                    let api_base = v2.api_base.clone();
                    let client = V2Client::builder(v2)
                        .build()
                        .map_err(|e| ConfigError::new("WXPAY_API_BASE", e.to_string()))?;
                    (
                        Arc::new(V2Provider::new(client)),
                        notify_url,
                        api_base,
                        None,
                    )
                }
                Built::Gateway(gateway) => {
                    let notify_url = gateway.notify_url.clone();
                    let client = GatewayClient::new(gateway)
                        .map_err(|e| ConfigError::new("WXPAY_GATEWAY_URL", e.to_string()))?;
                    let api_base = client.config().url.clone();
                    (
                        Arc::new(GatewayProvider::new(client)),
                        notify_url,
                        api_base,
                        None,
                    )
                }
                Built::Qfpay(qfpay) => {
                    let notify_url = qfpay.notify_url.clone().ok_or_else(|| {
                        ConfigError::new("WXPAY_NOTIFY_URL", "is required with QFPay")
                    })?;
                    let api_base = qfpay.base_url.clone();
                    let client = QfpayClient::builder(qfpay)
                        .build()
                        .map_err(|e| ConfigError::new("WXPAY_QFPAY_URL", e.to_string()))?;
                    qfpay_client = Some(client.clone());
                    (
                        Arc::new(QfpayProvider::new(client)),
                        notify_url,
                        api_base,
                        None,
                    )
                }
                Built::Weidoufu(weidoufu) => {
                    let notify_url = weidoufu.notify_url.clone();
                    let api_base = weidoufu.base_url.clone();
                    let client = WeidoufuClient::builder(weidoufu)
                        .build()
                        .map_err(|e| ConfigError::new("WXPAY_WEIDOUFU_URL", e.to_string()))?;
                    (
                        Arc::new(WeidoufuProvider::new(client)),
                        notify_url,
                        api_base,
                        None,
                    )
                }
            };
        let catalog = Catalog::demo();
        let policy: Arc<dyn CheckoutPolicy> = match config.checkout {
            CheckoutMode::Catalog => Arc::new(CatalogPolicy::new(catalog.clone())),
            CheckoutMode::Amount { min, max } => Arc::new(AmountRange::new(
                min,
                max,
                Description::try_from("Payment")
                    .map_err(|e| ConfigError::new("WXPAY_CHECKOUT", e.to_string()))?,
            )),
        };
        let mut builder = Engine::builder(provider, Arc::new(store))
            .checkout_policy(policy)
            .seed000_compat(config.seed000_compat)
            .reconcile(config.reconcile.after, config.reconcile.every)
            .event_hook(Arc::new(LogEventsHook));
        let openid = openid_config(
            config.openid,
            sandbox.as_ref(),
            qfpay_client,
            &format!("http://{}", reachable(bound)),
        )?;
        let openid_mode = openid.as_ref().map(|(_, mode)| *mode);
        let admin_routes = config.admin_token.is_some();
        if let Some(token) = config.admin_token {
            builder = builder.admin_token(token);
        }
        if let Some((openid, _)) = openid {
            builder = builder.openid(openid);
        }
        let engine = builder
            .build()
            .map_err(|e| ConfigError::new(switch, format!("engine: {e}")))?;
        let tasks = engine.spawn_background_tasks();
        Ok(Self {
            engine,
            catalog,
            provider: kind,
            sandbox,
            notify_url: notify_url.as_str().to_owned(),
            api_base,
            openid_mode,
            admin_routes,
            checkout: config.checkout,
            seed000_compat: config.seed000_compat,
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

    /// The upstream provider (`WXPAY_PROVIDER`).
    pub fn provider(&self) -> ProviderKind {
        self.provider
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

    /// What the checkout page needs: `{mode, jsbridge, openid, openid_flow, openid_mode,
    /// prefix}`. With `openid_flow` the server resolves the payer's openid itself: the page
    /// goes through `{prefix}/openid/authorize` (WeChat's OAuth2 redirect, or QFPay's) and
    /// precreate reads the resulting cookie; `openid_mode` `token` means precreate requires it.
    /// Without the flow the page sends an openid (`openid`, the demo payer in sandbox mode; in
    /// production the page's `?openid=` query).
    /// `jsbridge` is the sandbox's `WeixinJSBridge` shim in sandbox mode, null in production
    /// (WeChat's browser provides the bridge).
    pub fn page_config(&self) -> serde_json::Value {
        let openid_mode = match self.openid_mode {
            Some(OpenidMode::TokenRequired) => "token",
            _ => "body",
        };
        match &self.sandbox {
            Some(sandbox) => json!({
                "mode": "sandbox",
                "jsbridge": format!("{}/sandbox/jsbridge.js", sandbox.base_url()),
                "openid": SANDBOX_OPENID,
                "openid_flow": self.openid_mode.is_some(),
                "openid_mode": openid_mode,
                "prefix": self.engine.prefix(),
            }),
            None => json!({
                "mode": "production",
                "jsbridge": null,
                "openid": null,
                "openid_flow": self.openid_mode.is_some(),
                "openid_mode": openid_mode,
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
                let switch = self.provider.production_switch();
                lines.push(format!(
                    "wxpay shop running in SANDBOX MODE ({switch} is unset): {} is \
                     emulated in process at {} with generated keys; no real money moves.",
                    match self.provider {
                        ProviderKind::V3 => "WeChat Pay",
                        _ => self.provider.description(),
                    },
                    sandbox.base_url()
                ));
                if !self.ignored.is_empty() {
                    lines.push(format!(
                        "  ignored in sandbox mode: {} (set {switch} for production mode)",
                        self.ignored.join(", ")
                    ));
                }
            }
            None => lines.push(format!(
                "wxpay shop running in PRODUCTION MODE against {}",
                self.api_base
            )),
        }
        lines.push(match self.checkout {
            CheckoutMode::Catalog => {
                "  checkout:    WXPAY_CHECKOUT=catalog (the catalog sets the price)".to_owned()
            }
            CheckoutMode::Amount { min, max } => format!(
                "  checkout:    WXPAY_CHECKOUT=amount (the client's amount, {}..={} fen)",
                min.fen(),
                max.fen()
            ),
        });
        if self.seed000_compat {
            lines.push(format!(
                "  seed 000:    POST {} (WXPAY_SEED000_COMPAT=1)",
                wxpay_core::engine::SEED000_JSAPI_PATH
            ));
        }
        lines.push(format!(
            "  provider:    WXPAY_PROVIDER={} ({})",
            self.provider,
            self.provider.description()
        ));
        lines.push(format!("  shop:        {url}/"));
        lines.push(format!("  notify URL:  {}", self.notify_url));
        lines.push(format!("  store:       {}", redact_url(&self.database_url)));
        lines.push(format!(
            "  routes:      POST {p}/precreate, POST {p}/notify, GET {p}/orders/{{out_trade_no}}",
            p = self.engine.prefix()
        ));
        if let Some(mode) = self.openid_mode {
            lines.push(format!(
                "  openid:      {p}/openid/authorize (OAuth2), POST {p}/openid/session (wx.login), \
                 GET {p}/openid/me; precreate {}",
                if mode == OpenidMode::TokenRequired {
                    "requires the resolved openid"
                } else {
                    "takes the openid from the body"
                },
                p = self.engine.prefix()
            ));
        }
        lines.push(if self.admin_routes {
            format!(
                "  operator:    POST/GET {p}/orders/{{out_trade_no}}/refunds, {p}/admin/… \
                 (Authorization: Bearer $WXPAY_ADMIN_TOKEN)\n  console:     {p}/admin/console \
                 (sign in with $WXPAY_ADMIN_TOKEN)",
                p = self.engine.prefix()
            )
        } else {
            "  operator:    off (set WXPAY_ADMIN_TOKEN for refunds, the admin API and the console)"
                .to_owned()
        });
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

/// A production or sandbox upstream, before its provider is built.
enum Built {
    V3 {
        client: V3Client,
        notify_url: NotifyUrl,
        certificate_mode: bool,
    },
    V2(V2Config),
    Gateway(GatewayConfig),
    Qfpay(QfpayConfig),
    Weidoufu(WeidoufuConfig),
}

/// The openid routes' configuration and mode, or `None` when they are not mounted (production
/// without `WXPAY_OPENID_TOKEN_KEY`, or without a resolver).
fn openid_config(
    settings: OpenidSettings,
    sandbox: Option<&Sandbox>,
    qfpay: Option<QfpayClient>,
    bound_url: &str,
) -> Result<Option<(OpenidConfig, OpenidMode)>, ConfigError> {
    let error = |variable: &'static str| {
        move |e: wxpay_core::openid::OpenidError| ConfigError::new(variable, e.to_string())
    };
    let (wechat, api_url, open_url) = match sandbox {
        Some(sandbox) => (
            Some((
                sandbox.merchant().appid.clone(),
                AppSecret::new(sandbox.app_secret()).map_err(error("WXPAY_APP_SECRET"))?,
            )),
            Some(sandbox.base_url().to_owned()),
            Some(sandbox.base_url().to_owned()),
        ),
        None => (
            settings.wechat,
            settings.wechat_api_url,
            settings.wechat_open_url,
        ),
    };
    if wechat.is_none() && qfpay.is_none() {
        return Ok(None);
    }
    // Production mounts the routes only with a configured key: a generated one would not
    // survive a restart nor be shared by the instances behind a load balancer.
    let key = match (settings.token_key, sandbox) {
        (Some(key), _) => key,
        (None, Some(_)) => OpenidTokenKey::generate(),
        (None, None) => return Ok(None),
    };
    let mut config = OpenidConfig::new(key)
        .public_base_url(settings.public_url.unwrap_or_else(|| bound_url.to_owned()))
        .mode(settings.mode);
    if let Some((appid, secret)) = wechat {
        let mut login =
            MiniProgramLogin::new(appid.clone(), secret.clone()).map_err(error("WXPAY_APPID"))?;
        let mut oauth = OfficialAccountOAuth::new(appid, secret).map_err(error("WXPAY_APPID"))?;
        if let Some(url) = &api_url {
            login = login
                .with_api_base(url)
                .map_err(error("WXPAY_WECHAT_API_URL"))?;
            oauth = oauth
                .with_api_base(url)
                .map_err(error("WXPAY_WECHAT_API_URL"))?;
        }
        if let Some(url) = &open_url {
            oauth = oauth
                .with_open_base(url)
                .map_err(error("WXPAY_WECHAT_OPEN_URL"))?;
        }
        config = config.mini_program(Arc::new(login));
        if qfpay.is_none() {
            config = config.oauth(Arc::new(oauth));
        }
    }
    if let Some(client) = qfpay {
        // QFPay pays with the openids of its own official account: its OAuth flow, not ours.
        config = config.oauth(Arc::new(QfpayOAuth::new(client)));
    }
    Ok(Some((config, settings.mode)))
}

/// The chosen provider's configuration against the in-process sandbox.
fn sandbox_upstream(
    sandbox: &Sandbox,
    kind: ProviderKind,
    sign_type: SignType,
    weidoufu_pay_type: PayType,
    notify_url: NotifyUrl,
) -> Result<Built, ConfigError> {
    let switch = kind.production_switch();
    let error = |e: &dyn fmt::Display| ConfigError::new(switch, format!("sandbox keys: {e}"));
    Ok(match kind {
        ProviderKind::V3 => Built::V3 {
            client: sandbox_client(sandbox)?,
            notify_url,
            certificate_mode: false,
        },
        ProviderKind::V2 => {
            let merchant = sandbox.merchant();
            let mut config = V2Config::new(
                &merchant.appid,
                &merchant.mchid,
                ApiKey::new(sandbox.v2_api_key()).map_err(|e| error(&e))?,
                sign_type,
                notify_url,
            );
            sandbox.base_url().clone_into(&mut config.api_base);
            let tls = sandbox.v2_certificates();
            config.merchant_certificate = Some(
                MerchantCertificate::from_pem(&tls.merchant_certificate_pem, &tls.merchant_key_pem)
                    .map_err(|e| error(&e))?,
            );
            config.secapi_base = Some(sandbox.v2_secure_base_url().to_owned());
            config.secapi_root_certificate_pem = Some(tls.ca_certificate_pem.clone());
            Built::V2(config)
        }
        ProviderKind::Gateway => {
            let material = sandbox.gateway();
            Built::Gateway(GatewayConfig {
                url: sandbox.base_url().to_owned(),
                biz_id: material.biz_id.clone(),
                app_key: AppKey::new(material.app_key.as_str()).map_err(|e| error(&e))?,
                notify_url,
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            })
        }
        ProviderKind::Qfpay => {
            let material = sandbox.qfpay();
            let mut config = QfpayConfig::new(
                sandbox.base_url(),
                material.app_code.as_str(),
                ClientKey::new(material.client_key.as_str()).map_err(|e| error(&e))?,
            );
            config.mchid.clone_from(&material.mchid);
            config.notify_url = Some(notify_url);
            Built::Qfpay(config)
        }
        ProviderKind::Weidoufu => {
            let material = sandbox.weidoufu();
            let mut config = WeidoufuConfig::new(
                sandbox.base_url(),
                material.access_key.as_str(),
                SecretKey::new(material.secret_key.as_str()).map_err(|e| error(&e))?,
                notify_url,
            );
            config.pay_type = weidoufu_pay_type;
            Built::Weidoufu(config)
        }
    })
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

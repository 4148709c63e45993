//! # wxpay-sandbox
//!
//! A local emulator of **WeChat Pay API v3**, **WeChat Pay API v2** ([`v2`]), the seed-001
//! **payment gateway** ([`gateway`]), **QFPay** ([`qfpay`]) and **weidoufu** ([`weidoufu`]) for
//! tests, examples and frontend development. It listens on loopback, verifies merchant requests
//! exactly as the upstream does, signs every response, simulates the payer (`/sandbox/pay`, or
//! a browser pay sheet through `/sandbox/jsbridge.js`) and delivers the upstream's notification
//! (v3: encrypted, signed `TRANSACTION.SUCCESS`; v2: signed XML; gateway: MD5-signed form
//! callback; QFPay: JSON signed in `X-QF-SIGN`; weidoufu: MD5-signed form callback) with the
//! configured retry schedule (WeChat's by default) and optional faults.
//!
//! It is a second, independent implementation of the wire protocol: it shares no code with
//! wxpay-core, so a misunderstanding in one is caught by the other.
//!
//! ```no_run
//! use std::time::Duration;
//! use wxpay_sandbox::{RetrySchedule, Sandbox, SandboxConfig};
//!
//! # async fn demo() -> Result<(), wxpay_sandbox::SandboxError> {
//! let sandbox = Sandbox::start(
//!     SandboxConfig::default()
//!         .allow_http_notify_url(true)
//!         .notify_retry_schedule(RetrySchedule::wechat().scaled_down(1000)),
//! )
//! .await?;
//! // Point the shop at the sandbox:
//! let api_base = sandbox.base_url();
//! let merchant = sandbox.merchant();
//! let _private_key = merchant.private_key_pem.as_deref();
//! let _platform_key = &sandbox.platform().public_key_pem;
//! let _api_v3_key = sandbox.api_v3_key();
//! # let _ = api_base;
//! // … the shop creates an order and hands the client parameters to the page; then:
//! // let outcome = sandbox.pay(pay_request).await?;
//! // let delivered = sandbox.wait_for_delivery(&outcome.out_trade_no, Duration::from_secs(5)).await?;
//! # let _ = Duration::from_secs(1);
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Endpoints
//! - `POST /v3/pay/transactions/jsapi`, `GET /v3/pay/transactions/out-trade-no/{no}?mchid=`,
//!   `GET /v3/pay/transactions/id/{id}?mchid=`, `POST /v3/pay/transactions/out-trade-no/{no}/close`,
//!   `POST /v3/refund/domestic/refunds`, `GET /v3/refund/domestic/refunds/{out_refund_no}`,
//!   `GET /v3/certificates` — authenticated with `Authorization: WECHATPAY2-SHA256-RSA2048 …`,
//!   every response signed (`Wechatpay-*` headers). A refund never exceeds what is left of
//!   the payment (`403 NOT_ENOUGH`), the same `out_refund_no` is the same refund, and a settled
//!   refund is notified as an encrypted, signed `REFUND.SUCCESS | ABNORMAL | CLOSED`.
//! - `POST /pay/unifiedorder`, `POST /pay/orderquery`, `POST /pay/closeorder`,
//!   `POST /pay/refundquery`, `POST /secapi/pay/refund` — API v2, XML signed with the v2 key
//!   ([`Sandbox::v2_api_key`], [`Sandbox::v2_sign_type`]). The refund is a certificate call:
//!   it is answered only on the HTTPS listener ([`Sandbox::v2_secure_base_url`]) to a client
//!   presenting the merchant's certificate ([`Sandbox::v2_certificates`]), like WeChat Pay's.
//!   Refunds settle as below and are notified with the refund fields sealed in `req_info`
//!   (AES-256-ECB under the MD5 of the API key).
//! - `POST /open/trade/wx/jsapi/precreate` — the gateway ([`Sandbox::gateway`]).
//! - `POST /trade/v1/payment` (`pay_type` 800207), `POST /trade/v1/query`,
//!   `POST /trade/v1/close`, `POST /trade/v1/reversal`, `POST /trade/v1/refund` — QFPay
//!   ([`qfpay`], [`Sandbox::qfpay`]): form parameters signed in `X-QF-SIGN`; JSON payment and
//!   refund notifications signed in `X-QF-SIGN` to the payment's `notify_url`. Refunds answer
//!   `1145` while processing and `0000` once settled, over-refunds `1272`, and the enquiry lists
//!   them by their own `syssn` or `out_trade_no`.
//! - `POST /pay/miniapp`, `POST /pay/refund` — weidoufu ([`weidoufu`], [`Sandbox::weidoufu`]):
//!   WeChat (`pay_type` 1) or Alipay (`pay_type` 2, paid with [`PayRequest::alipay_trade_no`]);
//!   signed form callback; refunds by `out_order_no` and `refund_fee`, `code` 1 when taken.
//! - `POST /sandbox/pay`, `GET /sandbox/prepay/{prepay_id}`, `GET /sandbox/deliveries`,
//!   `POST /sandbox/faults`, `POST /sandbox/refund-behaviour`, `POST /sandbox/prepay-faults`,
//!   `GET /sandbox/refunds`,
//!   `POST /sandbox/refunds/{out_refund_no}/settle`, `GET /sandbox/info`,
//!   `GET /sandbox/jsbridge.js` — the sandbox's own controls (CORS open, unsigned).
//!   `/sandbox/pay` takes the JSAPI parameters ([`PayRequest`]), or `{"alipay_trade_no": …}`
//!   for a weidoufu Alipay trade. `/sandbox/refund-behaviour` takes `{"outcome": "SUCCESS" |
//!   "ABNORMAL" | "CLOSED" | "PROCESSING", "delay_ms", "refuse_next", "lose_answer_next"}`
//!   ([`RefundBehaviour`]); `/settle` takes `{"status": "SUCCESS" | "ABNORMAL" | "CLOSED"}`;
//!   `/sandbox/prepay-faults` takes `{"fail_next", "slow_next", "slow_delay_ms"}`
//!   ([`PrepayFaults`]): the next prepay requests of any protocol answer `500` without creating
//!   anything, or create the payment and answer late.
//!
//! ## Browser shim
//! Load `{base_url}/sandbox/jsbridge.js` in an ordinary browser page: it defines
//! `WeixinJSBridge.invoke('getBrandWCPayRequest', params, cb)` and `wx.requestPayment({…})`,
//! shows a pay sheet (amount, description; buttons `#wxpay-sandbox-pay`,
//! `#wxpay-sandbox-fail`, `#wxpay-sandbox-cancel`) and answers
//! `get_brand_wcpay_request:ok|cancel|fail` / `requestPayment:ok|fail cancel|fail …`. It
//! pays prepays of every upstream (`signType` `RSA`, `MD5` or `HMAC-SHA256`).

mod config;
pub mod crypto;
mod delivery;
mod error;
pub mod gateway;
mod jsbridge;
mod keys;
pub mod openid;
mod prepay_faults;
pub mod qfpay;
mod refunds;
mod server;
mod simulate;
mod state;
mod timefmt;
mod tls;
pub mod v2;
pub mod v3;
pub mod weidoufu;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub use config::{MerchantKeyConfig, NotifyFaults, PlatformMode, RetrySchedule, SandboxConfig};
pub use delivery::{DeliveryKind, DeliveryRecord};
pub use error::SandboxError;
pub use gateway::GatewayMaterial;
pub use keys::{MerchantMaterial, PlatformMaterial};
pub use prepay_faults::PrepayFaults;
pub use qfpay::QfpayMaterial;
pub use refunds::{RefundBehaviour, RefundOutcome, RefundState, RefundView};
pub use simulate::{PayOutcome, PayRequest, SimulatedOutcome, pay_sign_message};
pub use state::TradeView;
pub use tls::V2CertificateMaterial;
pub use v2::SignType as V2SignType;
pub use weidoufu::WeidoufuMaterial;

use state::{Shared, lock};

/// A running sandbox. The server runs on a tokio task; [`Sandbox::shutdown`] or dropping the
/// handle stops it and any notification still being delivered.
pub struct Sandbox {
    shared: Arc<Shared>,
    base_url: String,
    v2_secure_base_url: String,
    v2_certificates: V2CertificateMaterial,
    server: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url)
            .field("mchid", &self.shared.merchant.mchid)
            .finish_non_exhaustive()
    }
}

fn check_api_v3_key(key: &str) -> Result<(), SandboxError> {
    if key.len() == 32 && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(SandboxError::Config(
            "the API v3 key must be 32 printable ASCII characters".into(),
        ))
    }
}

impl Sandbox {
    /// Generates the keys, binds the listener and starts serving.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let (merchant_verifier, merchant) =
            keys::merchant_material(&config.mchid, &config.appid, &config.merchant_key)?;
        let (platform, platform_material) = keys::PlatformKeys::generate(config.platform_mode)?;
        let api_v3_key = match &config.api_v3_key {
            Some(k) => k.clone(),
            None => crypto::random_alnum(32)?,
        };
        check_api_v3_key(&api_v3_key)?;
        let v2_api_key = match &config.v2_api_key {
            Some(k) => k.clone(),
            None => crypto::random_alnum(32)?,
        };
        if !(v2_api_key.len() == 32 && v2_api_key.bytes().all(|b| b.is_ascii_graphic())) {
            return Err(SandboxError::Config(
                "the API v2 key must be 32 printable ASCII characters".into(),
            ));
        }
        let gateway = GatewayMaterial {
            biz_id: config.gateway_biz_id.clone(),
            app_key: match &config.gateway_app_key {
                Some(k) => k.clone(),
                None => crypto::random_alnum(32)?,
            },
            client_id: config.gateway_client_id.clone(),
        };
        if gateway.app_key.is_empty() || !gateway.app_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SandboxError::Config(
                "the gateway app_key must be non-empty printable ASCII".into(),
            ));
        }
        if gateway.biz_id.trim().is_empty() {
            return Err(SandboxError::Config(
                "the gateway biz_id must not be blank".into(),
            ));
        }
        let gateway_wechat_key = crypto::random_alnum(32)?;
        let qfpay = qfpay::QfpayMaterial::generate(&config)?;
        let weidoufu = weidoufu::WeidoufuMaterial::generate()?;
        let openid = openid::OpenidState::generate()?;
        let http = reqwest::Client::builder()
            .timeout(config.notify_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SandboxError::Config(format!("HTTP client: {e}")))?;
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let tls = tls::generate(&merchant.mchid)?;
        let secure_listener =
            tokio::net::TcpListener::bind(std::net::SocketAddr::new(addr.ip(), 0)).await?;
        let v2_secure_base_url = format!("https://{}", secure_listener.local_addr()?);
        let shared = Arc::new(Shared {
            faults: Mutex::new(config.notify_faults.clone()),
            refund_behaviour: Mutex::default(),
            prepay_faults: Mutex::default(),
            config,
            merchant,
            merchant_verifier,
            platform,
            platform_material,
            api_v3_key,
            v2_api_key,
            gateway,
            gateway_wechat_key,
            qfpay,
            weidoufu,
            openid,
            orders: Mutex::default(),
            deliveries: delivery::DeliveryLog::new(),
            http,
            tasks: Mutex::new(JoinSet::new()),
            started: Instant::now(),
            merchant_serial: Mutex::new(None),
        });
        let (stop, stopped) = oneshot::channel();
        let app = server::app(Arc::clone(&shared));
        shared.spawn(tls::serve(secure_listener, tls.acceptor, app.clone()));
        let server = server::spawn(listener, app, stopped);
        tracing::info!(%base_url, %v2_secure_base_url, "wxpay sandbox listening");
        Ok(Sandbox {
            shared,
            base_url,
            v2_secure_base_url,
            v2_certificates: tls.material,
            server: Some(server),
            stop: Some(stop),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:43121` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The merchant's identity and keys.
    pub fn merchant(&self) -> &MerchantMaterial {
        &self.shared.merchant
    }

    /// The platform's public key and certificate, to verify responses and notifications.
    pub fn platform(&self) -> &PlatformMaterial {
        &self.shared.platform_material
    }

    /// The API v3 key (32 ASCII characters).
    pub fn api_v3_key(&self) -> &str {
        &self.shared.api_v3_key
    }

    /// The API v2 key (`key`, 32 ASCII characters) that signs v2 requests, replies, JSAPI
    /// `paySign`s and notifications.
    pub fn v2_api_key(&self) -> &str {
        &self.shared.v2_api_key
    }

    /// The API v2 signature type the merchant is configured for.
    pub fn v2_sign_type(&self) -> V2SignType {
        self.shared.config.v2_sign_type
    }

    /// The HTTPS address of API v2's certificate calls (`https://127.0.0.1:port`, serving the
    /// same endpoints as [`Self::base_url`]): `POST /secapi/pay/refund` answers only a client
    /// that presents [`V2CertificateMaterial::merchant_certificate_pem`]. Trust
    /// [`V2CertificateMaterial::ca_certificate_pem`] to connect.
    pub fn v2_secure_base_url(&self) -> &str {
        &self.v2_secure_base_url
    }

    /// The certificates of API v2's certificate calls: the sandbox CA, and the merchant's API
    /// certificate and key (`apiclient_cert.pem`, `apiclient_key.pem`).
    pub fn v2_certificates(&self) -> &V2CertificateMaterial {
        &self.v2_certificates
    }

    /// The shop's credentials at the emulated gateway (`biz_id`, `app_key`, `client_id`). Its
    /// endpoint is `{base_url}/open/trade/wx/jsapi/precreate`.
    pub fn gateway(&self) -> &GatewayMaterial {
        &self.shared.gateway
    }

    /// The shop's credentials at the emulated QFPay (`app_code`, `client_key`, `mchid`).
    pub fn qfpay(&self) -> &QfpayMaterial {
        &self.shared.qfpay
    }

    /// The shop's application keys at the emulated weidoufu (`access_key`, `secret_key`).
    pub fn weidoufu(&self) -> &WeidoufuMaterial {
        &self.shared.weidoufu
    }

    /// The AppSecret of the merchant's appid, for `sns/jscode2session` and
    /// `sns/oauth2/access_token`.
    pub fn app_secret(&self) -> &str {
        &self.shared.openid.app_secret
    }

    /// The payer the identity endpoints name when the caller picks none (`sandbox_openid`):
    /// generated at start, 28 characters (`oSandbox…`).
    pub fn default_openid(&self) -> &str {
        &self.shared.openid.default_openid
    }

    /// What `wx.login` gives a mini program: a code for `sns/jscode2session` identifying
    /// `openid` (default: [`Sandbox::default_openid`]), single use, valid 5 minutes. An openid
    /// that is not 1 to 64 of `[A-Za-z0-9_-]` is refused ([`SandboxError::Config`]).
    pub fn wx_login(&self, openid: Option<&str>) -> Result<String, SandboxError> {
        openid::wx_login(&self.shared, openid)
    }

    /// Simulates the payer confirming (or failing) the payment, as `POST /sandbox/pay` does.
    pub async fn pay(&self, req: PayRequest) -> Result<PayOutcome, SandboxError> {
        simulate::pay(&self.shared, &req)
    }

    /// The notification delivery log, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.deliveries.snapshot()
    }

    /// Replaces the faults applied to notifications of payments made from now on.
    pub fn set_notify_faults(&self, faults: NotifyFaults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Replaces how refunds accepted from now on behave (outcome, delay, injected refusals and
    /// lost answers), as `POST /sandbox/refund-behaviour` does.
    pub fn set_refund_behaviour(&self, behaviour: RefundBehaviour) {
        *lock(&self.shared.refund_behaviour) = behaviour;
    }

    /// Replaces the faults applied to the next prepay requests of every protocol (a server
    /// error, or an answer slower than the client waits), as `POST /sandbox/prepay-faults` does.
    pub fn set_prepay_faults(&self, faults: PrepayFaults) {
        *lock(&self.shared.prepay_faults) = faults;
    }

    /// The trade the sandbox holds for the shop's order `shop_order_no` (any protocol): its
    /// state and every prepay id it issued for it, to check that a retried precreate did not
    /// create a second payment.
    pub fn trade(&self, shop_order_no: &str) -> Option<TradeView> {
        let orders = lock(&self.shared.orders);
        let (key, order) = orders
            .by_out_trade_no
            .iter()
            .find(|(_, order)| order.shop_order_no() == shop_order_no)?;
        let mut prepay_ids: Vec<String> = orders
            .by_prepay_id
            .iter()
            .filter(|(_, owner)| *owner == key)
            .map(|(prepay_id, _)| prepay_id.clone())
            .collect();
        prepay_ids.sort_unstable();
        Some(TradeView {
            state: order.state.as_str(),
            total: order.total,
            prepay_ids,
        })
    }

    /// The shop's numbers of every order the sandbox was asked to create (any protocol), sorted:
    /// what a test reads to see whether a request reached the upstream.
    pub fn order_numbers(&self) -> Vec<String> {
        let orders = lock(&self.shared.orders);
        let mut numbers: Vec<String> = orders
            .by_out_trade_no
            .values()
            .map(|order| order.shop_order_no().to_owned())
            .collect();
        numbers.sort_unstable();
        numbers
    }

    /// Every refund the sandbox holds, oldest first, as `GET /sandbox/refunds` lists them.
    pub fn refunds(&self) -> Vec<RefundView> {
        refunds::all(&self.shared)
    }

    /// Settles a `PROCESSING` or `ABNORMAL` refund as `state` and sends its notification, as
    /// `POST /sandbox/refunds/{out_refund_no}/settle` does (what an operator does in the
    /// merchant platform for an abnormal refund).
    pub fn settle_refund(
        &self,
        out_refund_no: &str,
        state: RefundState,
    ) -> Result<RefundView, SandboxError> {
        refunds::settle(&self.shared, out_refund_no, state)
    }

    /// Waits until a real notification for `out_trade_no` has been acknowledged and returns
    /// its log record.
    pub async fn wait_for_delivery(
        &self,
        out_trade_no: &str,
        timeout: Duration,
    ) -> Result<DeliveryRecord, SandboxError> {
        self.shared
            .deliveries
            .wait_until(
                timeout,
                &format!("an acknowledged notification for {out_trade_no}"),
                |records| {
                    records
                        .iter()
                        .find(|r| {
                            r.out_trade_no == out_trade_no
                                && r.kind == DeliveryKind::Real
                                && r.acknowledged
                        })
                        .cloned()
                },
            )
            .await
    }

    /// Waits until delivery of the notification for `out_trade_no` has finished (acknowledged
    /// or the retry schedule exhausted) and returns all its log records.
    pub async fn wait_for_delivery_finished(
        &self,
        out_trade_no: &str,
        timeout: Duration,
    ) -> Result<Vec<DeliveryRecord>, SandboxError> {
        self.shared
            .deliveries
            .wait_until(
                timeout,
                &format!("the end of delivery for {out_trade_no}"),
                |records| {
                    records
                        .iter()
                        .any(|r| r.out_trade_no == out_trade_no && r.final_attempt)
                        .then(|| {
                            records
                                .iter()
                                .filter(|r| r.out_trade_no == out_trade_no)
                                .cloned()
                                .collect()
                        })
                },
            )
            .await
    }

    /// Waits until at least `count` delivery attempts of any kind (real, duplicate, probe) for
    /// `out_trade_no` are in the log and returns that order's records.
    pub async fn wait_for_attempts(
        &self,
        out_trade_no: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<DeliveryRecord>, SandboxError> {
        self.shared
            .deliveries
            .wait_until(
                timeout,
                &format!("{count} delivery attempts for {out_trade_no}"),
                |records| {
                    let mine: Vec<DeliveryRecord> = records
                        .iter()
                        .filter(|r| r.out_trade_no == out_trade_no)
                        .cloned()
                        .collect();
                    (mine.len() >= count).then_some(mine)
                },
            )
            .await
    }

    /// Stops the server gracefully and aborts notification deliveries in progress.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        lock(&self.shared.tasks).abort_all();
        if let Some(mut server) = self.server.take() {
            // Graceful first; connections that linger past the grace period are cut.
            if tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        lock(&self.shared.tasks).abort_all();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

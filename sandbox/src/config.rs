//! Configuration of a [`Sandbox`](crate::Sandbox).

use std::net::SocketAddr;
use std::time::Duration;

use crate::v2::SignType;

/// How the emulated platform signs its responses and notifications.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlatformMode {
    /// A WeChat Pay public key identified by `PUB_KEY_ID_…` (the mode of new merchants).
    #[default]
    PublicKey,
    /// A platform certificate (hex serial), downloadable from `GET /v3/certificates`.
    Certificate,
    /// Both at once, as while a merchant switches from certificates to the public key: a
    /// response is signed with the public key when the request's `Wechatpay-Serial` names it,
    /// with the certificate otherwise (so a certificate-only client, which names the certificate
    /// or nothing, keeps working); notifications are signed with the key the merchant's requests
    /// last named (the certificate until they name the public key).
    Both,
}

impl PlatformMode {
    /// Whether a platform certificate exists in this mode.
    pub fn has_certificate(self) -> bool {
        matches!(self, Self::Certificate | Self::Both)
    }
}

/// The delays between notification attempts: attempt 1 is immediate, attempt `n + 1` follows
/// attempt `n` after `delays[n - 1]`; after the last delay's attempt fails, delivery stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// WeChat Pay's documented schedule: 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h,
    /// 3h, 3h, 6h, 6h (16 attempts in all).
    pub fn wechat() -> Self {
        const M: u64 = 60;
        const H: u64 = 3600;
        let secs = [
            15,
            15,
            30,
            3 * M,
            10 * M,
            20 * M,
            30 * M,
            30 * M,
            30 * M,
            60 * M,
            3 * H,
            3 * H,
            3 * H,
            6 * H,
            6 * H,
        ];
        Self {
            delays: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
        }
    }

    /// QFPay's documented notification schedule: 2m, 10m, 10m, 60m, 2h, 6h, 15h after the
    /// first attempt (8 attempts in all; QFPay "Asynchronous Notifications",
    /// <https://sdk.qfapi.com/docs/common-api/async-notifications>). The sandbox uses the
    /// configured schedule for every upstream; pass this one to emulate QFPay's timing.
    pub fn qfpay() -> Self {
        const M: u64 = 60;
        const H: u64 = 3600;
        let secs = [2 * M, 10 * M, 10 * M, 60 * M, 2 * H, 6 * H, 15 * H];
        Self {
            delays: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
        }
    }

    /// A schedule with the given delays.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// No retries: one attempt only.
    pub fn none() -> Self {
        Self { delays: Vec::new() }
    }

    /// Every delay divided by `divisor` (integer division of the nanoseconds; a divisor of 0
    /// is treated as 1). `RetrySchedule::wechat().scaled_down(1000)` turns 15 s into 15 ms.
    #[must_use]
    pub fn scaled_down(mut self, divisor: u32) -> Self {
        let d = divisor.max(1);
        for delay in &mut self.delays {
            *delay /= d;
        }
        self
    }

    /// Keeps only the first `n` delays (so at most `n + 1` attempts).
    #[must_use]
    pub fn truncated(mut self, n: usize) -> Self {
        self.delays.truncate(n);
        self
    }

    /// The delays.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::wechat()
    }
}

impl From<Vec<Duration>> for RetrySchedule {
    fn from(delays: Vec<Duration>) -> Self {
        Self::new(delays)
    }
}

/// Faults injected into notification delivery, to exercise a receiver's idempotency and
/// verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyFaults {
    /// Extra deliveries of the same notification, one after the other, after it was acknowledged
    /// (the gateway's "may call back several times").
    pub duplicates: u32,
    /// Extra deliveries sent at the same moment as the first real attempt.
    pub concurrent_duplicates: u32,
    /// Send a probe first whose `Wechatpay-Signature` starts `WECHATPAY/SIGNTEST/` (it must be
    /// rejected by the receiver; its answer does not count). For API v2, the gateway and
    /// weidoufu, whose signature is in the body, the probe is a forged copy of the notification
    /// whose `sign` is wrong (the "forged callback" fault); for QFPay, the notification with a
    /// wrong `X-QF-SIGN`. Logged as [`DeliveryKind::Probe`](crate::DeliveryKind).
    pub signtest_probe: bool,
    /// Wait this long after the payment before the first delivery.
    pub delay: Duration,
}

/// The merchant key the sandbox verifies requests and `paySign`s with.
#[derive(Clone, Debug, Default)]
pub enum MerchantKeyConfig {
    /// Generate an RSA-2048 key pair and a 40-hex-character serial (the private key is then
    /// available from [`MerchantMaterial::private_key_pem`](crate::MerchantMaterial)).
    #[default]
    Generate,
    /// Use the merchant's own public key (a `PUBLIC KEY` or `CERTIFICATE` PEM) and serial.
    Provided {
        /// The merchant certificate serial the `Authorization` header must name.
        serial: String,
        /// The merchant public key or certificate, PEM.
        public_key_pem: String,
    },
    /// Use the given private key (PKCS#8 PEM) and serial, e.g. a fixed key across runs.
    PrivateKey {
        /// The merchant certificate serial the `Authorization` header must name.
        serial: String,
        /// The merchant private key, PKCS#8 PEM.
        private_key_pem: String,
    },
}

/// Configuration of a [`Sandbox`](crate::Sandbox), built with the `with_…`/setter methods from
/// [`SandboxConfig::default`].
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub(crate) mchid: String,
    pub(crate) appid: String,
    pub(crate) merchant_key: MerchantKeyConfig,
    pub(crate) api_v3_key: Option<String>,
    pub(crate) platform_mode: PlatformMode,
    pub(crate) allow_http_notify_url: bool,
    pub(crate) notify_retry_schedule: RetrySchedule,
    pub(crate) notify_faults: NotifyFaults,
    pub(crate) notify_timeout: Duration,
    pub(crate) bind: SocketAddr,
    pub(crate) body_limit: usize,
    pub(crate) prepay_ttl: Duration,
    pub(crate) v2_api_key: Option<String>,
    pub(crate) v2_sign_type: SignType,
    pub(crate) gateway_biz_id: String,
    pub(crate) gateway_app_key: Option<String>,
    pub(crate) gateway_client_id: String,
    pub(crate) qfpay_mchid: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mchid: "1900000001".into(),
            appid: "wxd678efh567hg6787".into(),
            merchant_key: MerchantKeyConfig::Generate,
            api_v3_key: None,
            platform_mode: PlatformMode::PublicKey,
            allow_http_notify_url: false,
            notify_retry_schedule: RetrySchedule::wechat(),
            notify_faults: NotifyFaults::default(),
            notify_timeout: Duration::from_secs(5),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            body_limit: 64 * 1024,
            prepay_ttl: Duration::from_secs(2 * 3600),
            v2_api_key: None,
            v2_sign_type: SignType::Md5,
            gateway_biz_id: "sandbox_biz".into(),
            gateway_app_key: None,
            gateway_client_id: "wxpay-sandbox".into(),
            qfpay_mchid: None,
        }
    }
}

impl SandboxConfig {
    /// The defaults (same as [`Default::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A configuration for tests: like the default, but notifications may go to `http://`
    /// URLs and the retry schedule is WeChat's divided by 1000 (15 ms, 15 ms, 30 ms, …).
    pub fn for_tests() -> Self {
        Self::default()
            .allow_http_notify_url(true)
            .notify_retry_schedule(RetrySchedule::wechat().scaled_down(1000))
    }

    /// The merchant id (`mchid`), default `1900000001`.
    #[must_use]
    pub fn mchid(mut self, mchid: impl Into<String>) -> Self {
        self.mchid = mchid.into();
        self
    }

    /// The app id (`appid`), default `wxd678efh567hg6787`.
    #[must_use]
    pub fn appid(mut self, appid: impl Into<String>) -> Self {
        self.appid = appid.into();
        self
    }

    /// The merchant key; generated by default.
    #[must_use]
    pub fn merchant_key(mut self, key: MerchantKeyConfig) -> Self {
        self.merchant_key = key;
        self
    }

    /// The API v3 key: 32 ASCII bytes (checked at start). Generated (alphanumeric) when unset.
    #[must_use]
    pub fn api_v3_key(mut self, key: impl Into<String>) -> Self {
        self.api_v3_key = Some(key.into());
        self
    }

    /// How the platform signs (default [`PlatformMode::PublicKey`]).
    #[must_use]
    pub fn platform_mode(mut self, mode: PlatformMode) -> Self {
        self.platform_mode = mode;
        self
    }

    /// Accept `http://` notify URLs (real WeChat Pay requires `https://`). Default false.
    #[must_use]
    pub fn allow_http_notify_url(mut self, allow: bool) -> Self {
        self.allow_http_notify_url = allow;
        self
    }

    /// The notification retry schedule (default [`RetrySchedule::wechat`]).
    #[must_use]
    pub fn notify_retry_schedule(mut self, schedule: impl Into<RetrySchedule>) -> Self {
        self.notify_retry_schedule = schedule.into();
        self
    }

    /// Faults injected into notification delivery (none by default); can be changed later with
    /// [`Sandbox::set_notify_faults`](crate::Sandbox::set_notify_faults).
    #[must_use]
    pub fn notify_faults(mut self, faults: NotifyFaults) -> Self {
        self.notify_faults = faults;
        self
    }

    /// How long one notification attempt may take before it counts as failed (default 5 s).
    #[must_use]
    pub fn notify_timeout(mut self, timeout: Duration) -> Self {
        self.notify_timeout = timeout;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, an ephemeral port).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// How long a `prepay_id` stays valid (default 2 hours, as at WeChat Pay). A prepay request
    /// with the same parameters after that gets a new `prepay_id`.
    #[must_use]
    pub fn prepay_ttl(mut self, ttl: Duration) -> Self {
        self.prepay_ttl = ttl;
        self
    }

    /// The API v2 key (`key`): 32 printable ASCII characters (checked at start). Generated
    /// (alphanumeric) when unset.
    #[must_use]
    pub fn v2_api_key(mut self, key: impl Into<String>) -> Self {
        self.v2_api_key = Some(key.into());
        self
    }

    /// The API v2 signature type the merchant is configured for (default
    /// [`SignType::Md5`]): v2 requests must declare it in `sign_type` (absent means `MD5`) and
    /// are signed with it, and so are the sandbox's replies and notifications.
    #[must_use]
    pub fn v2_sign_type(mut self, sign_type: SignType) -> Self {
        self.v2_sign_type = sign_type;
        self
    }

    /// The gateway's `biz_id` for the shop (default `sandbox_biz`).
    #[must_use]
    pub fn gateway_biz_id(mut self, biz_id: impl Into<String>) -> Self {
        self.gateway_biz_id = biz_id.into();
        self
    }

    /// The gateway's `app_key` paired with the `biz_id` (signs callbacks). Generated (32
    /// alphanumerics) when unset; must be non-empty printable ASCII.
    #[must_use]
    pub fn gateway_app_key(mut self, key: impl Into<String>) -> Self {
        self.gateway_app_key = Some(key.into());
        self
    }

    /// The gateway's `client_id` sent in callbacks (default `wxpay-sandbox`).
    #[must_use]
    pub fn gateway_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.gateway_client_id = client_id.into();
        self
    }

    /// The shop's QFPay `mchid` (default none). With one, every QFPay request must carry it;
    /// without, none may (QFPay: "if mchid is not provided, merchants shall not pass the mchid
    /// field"). Must be 1 to 16 letters and digits (QFPay `String(16)`; checked at start).
    #[must_use]
    pub fn qfpay_mchid(mut self, mchid: impl Into<String>) -> Self {
        self.qfpay_mchid = Some(mchid.into());
        self
    }

    /// The largest accepted request body in bytes (default 64 KiB); larger requests get 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_schedule_scales_down() {
        let s = RetrySchedule::wechat();
        assert_eq!(s.delays().len(), 15);
        let scaled = s.scaled_down(1000);
        assert_eq!(scaled.delays()[0], Duration::from_millis(15));
        assert_eq!(scaled.delays()[14], Duration::from_millis(21_600));
        assert_eq!(
            RetrySchedule::wechat().scaled_down(0),
            RetrySchedule::wechat()
        );
        let qfpay = RetrySchedule::qfpay();
        assert_eq!(qfpay.delays().len(), 7);
        assert_eq!(qfpay.delays()[0], Duration::from_secs(120));
        assert_eq!(qfpay.delays()[6], Duration::from_secs(15 * 3600));
    }
}

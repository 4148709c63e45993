//! The API v2 HTTP client: unified order, order query, close, refund, refund query, and the
//! JSAPI `paySign`.
//!
//! Refunds (`/secapi/pay/refund`) are a certificate call: WeChat Pay accepts them only on a TLS
//! connection that presents the merchant's API certificate ([`MerchantCertificate`],
//! `apiclient_cert.pem` with `apiclient_key.pem`). The client keeps a second HTTP client with
//! that identity for them, and only for them.
//!
//! Requests are XML posted to `{api_base}{path}`, signed with the configured [`SignType`].
//! Answers are read up to [`MAX_RESPONSE_BYTES`], parsed with the restricted reader of
//! [`super::xml`], and trusted only after three checks (official docs, 统一下单 `chapter=9_1`):
//! `return_code` is `SUCCESS` (else the communication failed and `return_msg` says why), the
//! `sign` verifies with the API key, and the answer names our `appid` and `mch_id`; then
//! `result_code` says whether the business call succeeded (`err_code` / `err_code_des`).
//!
//! There are no automatic retries: every call has one total deadline (default 4 s, within the 5 s
//! a WeChat page waits for precreate), and the engine repeats a failed prepay with identical
//! business parameters when the page asks again.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::fields::NotifyUrl;
use crate::nonce::NonceSource;
use crate::provider::ClientParams;
use crate::transport;

use super::sign::{self, ApiKey, Params, SignError, SignType};
use super::xml::{self, XmlError};

/// The production API host.
pub const DEFAULT_API_BASE: &str = "https://api.mch.weixin.qq.com";

/// The default total deadline of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// The largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// What an API v2 merchant is configured with (the `WXPAY_*` variables of the env contract).
#[derive(Debug, Clone)]
pub struct V2Config {
    /// `WXPAY_APPID`: the appid of the official account or mini program.
    pub appid: String,
    /// `WXPAY_MCHID`: the merchant id (`mch_id`).
    pub mchid: String,
    /// `WXPAY_API_KEY`: the API key (API密钥).
    pub api_key: ApiKey,
    /// `WXPAY_SIGN_TYPE`: `MD5` or `HMAC-SHA256`.
    pub sign_type: SignType,
    /// `WXPAY_NOTIFY_URL`: where WeChat Pay posts payment notifications.
    pub notify_url: NotifyUrl,
    /// `WXPAY_API_BASE`: the API host, default [`DEFAULT_API_BASE`].
    pub api_base: String,
    /// The `spbill_create_ip` sent with every unified order (default `127.0.0.1`).
    ///
    /// API v2 requires the field; the official docs describe it as the payer's IP but check it
    /// only for H5 (MWEB) payments, not JSAPI. A fixed value keeps a repeated unified order
    /// byte-identical in its business fields, which is what makes WeChat answer a retry with
    /// the same `prepay_id` instead of `INVALID_REQUEST` (商户订单号重复): the payer's address is
    /// not stored with the order and changes between attempts (mobile networks, proxies).
    pub spbill_create_ip: IpAddr,
    /// `WXPAY_V2_CERT_FILE` and `WXPAY_V2_KEY_FILE`: the merchant's API certificate, which
    /// refunds need. Without it the client cannot refund ([`V2Client::can_refund`]).
    pub merchant_certificate: Option<MerchantCertificate>,
    /// `WXPAY_V2_SECAPI_BASE`: where certificate calls go, when not to [`Self::api_base`]
    /// (WeChat Pay serves both on one host; a test upstream may not).
    pub secapi_base: Option<String>,
    /// `WXPAY_V2_CA_FILE`: the only CA (PEM) trusted for certificate calls, instead of the
    /// system's roots — for a test upstream with its own CA, such as the sandbox.
    pub secapi_root_certificate_pem: Option<String>,
}

/// The merchant's API certificate and its private key (商户API证书: `apiclient_cert.pem` and
/// `apiclient_key.pem` from the merchant platform), presented on the TLS connection of API v2's
/// certificate calls. The key is kept zeroized on drop and never printed.
#[derive(Clone)]
pub struct MerchantCertificate {
    identity_pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MerchantCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MerchantCertificate(<redacted>)")
    }
}

impl MerchantCertificate {
    /// The certificate and key as PEM text (the key PKCS#8 `PRIVATE KEY` or PKCS#1
    /// `RSA PRIVATE KEY`), checked to be a usable TLS identity.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Self, V2Error> {
        if !certificate_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(V2Error::Local(
                "the merchant certificate is not a PEM CERTIFICATE (apiclient_cert.pem)".into(),
            ));
        }
        if !private_key_pem.contains("PRIVATE KEY-----") {
            return Err(V2Error::Local(
                "the merchant certificate key is not a PEM PRIVATE KEY (apiclient_key.pem)".into(),
            ));
        }
        let mut identity_pem = Zeroizing::new(Vec::with_capacity(
            certificate_pem.len() + private_key_pem.len() + 1,
        ));
        identity_pem.extend_from_slice(private_key_pem.trim().as_bytes());
        identity_pem.push(b'\n');
        identity_pem.extend_from_slice(certificate_pem.trim().as_bytes());
        identity_pem.push(b'\n');
        let certificate = Self { identity_pem };
        certificate.identity()?;
        Ok(certificate)
    }

    /// Reads [`Self::from_pem`]'s two PEM files; the error names the file that failed.
    pub fn from_files(
        certificate_path: impl AsRef<Path>,
        private_key_path: impl AsRef<Path>,
    ) -> Result<Self, V2Error> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map(Zeroizing::new)
                .map_err(|e| V2Error::Local(format!("cannot read {}: {e}", path.display())))
        };
        let certificate = read(certificate_path.as_ref())?;
        let key = read(private_key_path.as_ref())?;
        Self::from_pem(&certificate, &key)
    }

    fn identity(&self) -> Result<reqwest::Identity, V2Error> {
        reqwest::Identity::from_pem(&self.identity_pem).map_err(|e| {
            V2Error::Local(format!(
                "the merchant certificate and key are not a TLS identity: {e}"
            ))
        })
    }
}

impl V2Config {
    /// A configuration with the default API host and `spbill_create_ip`.
    pub fn new(
        appid: impl Into<String>,
        mchid: impl Into<String>,
        api_key: ApiKey,
        sign_type: SignType,
        notify_url: NotifyUrl,
    ) -> Self {
        Self {
            appid: appid.into(),
            mchid: mchid.into(),
            api_key,
            sign_type,
            notify_url,
            api_base: DEFAULT_API_BASE.to_owned(),
            spbill_create_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            merchant_certificate: None,
            secapi_base: None,
            secapi_root_certificate_pem: None,
        }
    }
}

/// A failed API v2 call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum V2Error {
    /// The request could not be sent or the answer not received.
    #[error("transport error talking to WeChat Pay: {source}")]
    Transport {
        /// What failed.
        #[source]
        source: reqwest::Error,
        /// Whether WeChat Pay may have received the request.
        request_may_have_been_sent: bool,
    },
    /// No answer within the deadline.
    #[error("no answer from WeChat Pay within {0:?}")]
    Deadline(Duration),
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    #[error("response body exceeds {0} bytes")]
    ResponseTooLarge(usize),
    /// A non-2xx HTTP status.
    #[error("WeChat Pay answered HTTP {0}")]
    Http(StatusCode),
    /// `return_code` was not `SUCCESS`: the request itself was refused (bad signature, bad XML,
    /// missing parameter…).
    #[error("WeChat Pay refused the request: {return_code}: {return_msg}")]
    Return {
        /// `return_code` (`FAIL`).
        return_code: String,
        /// `return_msg`.
        return_msg: String,
    },
    /// `result_code` was not `SUCCESS`.
    #[error("WeChat Pay answered {err_code}: {err_code_des}")]
    Business {
        /// `err_code` (`ORDERPAID`, `SYSTEMERROR`, …).
        err_code: String,
        /// `err_code_des`.
        err_code_des: String,
    },
    /// The answer's signature did not verify: nothing in it can be trusted.
    #[error("response signature did not verify: {0}")]
    Signature(#[source] SignError),
    /// The answer is not what the API documents.
    #[error("unexpected response from WeChat Pay: {0}")]
    Malformed(String),
    /// The request could not be built (configuration).
    #[error("{0}")]
    Local(String),
}

impl V2Error {
    /// Whether a write (unified order, close) may still have taken effect: then query (or repeat
    /// with identical parameters), never create the order again with other ones.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Transport {
                request_may_have_been_sent,
                ..
            } => *request_may_have_been_sent,
            Self::Http(status) => status.is_server_error(),
            // SYSTEMERROR: "系统超时/异常，请用相同参数重新调用"; BIZERR_NEED_RETRY (refunds):
            // "并发情况下，业务被拒绝，商户重试即可解决" (official docs).
            Self::Business { err_code, .. } => RETRY_SAME_CODES.contains(&err_code.as_str()),
            Self::Deadline(_) | Self::ResponseTooLarge(_) | Self::Signature(_) => true,
            Self::Malformed(_) => true,
            Self::Return { .. } | Self::Local(_) => false,
        }
    }
}

/// `err_code`s the docs answer with "call again with the same parameters".
pub const RETRY_SAME_CODES: [&str; 2] = ["SYSTEMERROR", "BIZERR_NEED_RETRY"];

/// The business fields of a refund (申请退款, `chapter=9_4`); the client adds the common fields,
/// `notify_url` and `sign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// `transaction_id` of the payment; WeChat Pay prefers it to `out_trade_no`.
    pub transaction_id: Option<String>,
    /// `out_trade_no` of the payment.
    pub out_trade_no: String,
    /// `out_refund_no`: the merchant's refund number; the same number is the same refund.
    pub out_refund_no: String,
    /// `total_fee`: the order's total in fen.
    pub total_fee: u64,
    /// `refund_fee`: the refund in fen.
    pub refund_fee: u64,
    /// `refund_fee_type` (ISO 4217).
    pub refund_fee_type: String,
    /// `refund_desc`: the reason shown to the payer (≤ 80 characters).
    pub refund_desc: Option<String>,
}

/// The business fields of a JSAPI unified order; the client adds `appid`, `mch_id`,
/// `nonce_str`, `sign_type`, `notify_url`, `spbill_create_ip`, `trade_type` and `sign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedOrderRequest {
    /// `body`: what the payer sees.
    pub body: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `total_fee`, in fen.
    pub total_fee: u64,
    /// `fee_type` (ISO 4217, `CNY` by default).
    pub fee_type: String,
    /// `attach`, returned in the notification.
    pub attach: Option<String>,
    /// `openid` of the payer under the appid (required for JSAPI).
    pub openid: String,
}

/// Builds a [`V2Client`].
#[derive(Debug)]
pub struct V2ClientBuilder {
    config: V2Config,
    timeout: Duration,
    clock: Option<Arc<dyn Clock>>,
    nonces: Option<Arc<dyn NonceSource>>,
    http: Option<reqwest::Client>,
}

impl V2ClientBuilder {
    /// Sets the total deadline of one call.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Replaces the nonce source (tests).
    #[must_use]
    pub fn nonces(mut self, nonces: Arc<dyn NonceSource>) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Uses a preconfigured reqwest client.
    #[must_use]
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client; the API base must be an http(s) URL without a query.
    pub fn build(mut self) -> Result<V2Client, V2Error> {
        let base =
            transport::base_url(&self.config.api_base, "WXPAY_API_BASE").map_err(V2Error::Local)?;
        for (name, value) in [
            ("WXPAY_APPID", &self.config.appid),
            ("WXPAY_MCHID", &self.config.mchid),
        ] {
            if value.trim().is_empty() || value.trim() != value.as_str() {
                return Err(V2Error::Local(format!(
                    "{name} must be non-empty without surrounding spaces"
                )));
            }
        }
        self.config.api_base = base;
        if let Some(secapi) = &self.config.secapi_base {
            self.config.secapi_base =
                Some(transport::base_url(secapi, "WXPAY_V2_SECAPI_BASE").map_err(V2Error::Local)?);
        }
        let secure_http = match &self.config.merchant_certificate {
            Some(certificate) => Some(secure_client(
                certificate,
                self.config.secapi_root_certificate_pem.as_deref(),
            )?),
            None => None,
        };
        let http = transport::http_client(self.http).map_err(V2Error::Local)?;
        Ok(V2Client {
            inner: Arc::new(Inner {
                http,
                secure_http,
                config: self.config,
                timeout: self.timeout,
                clock: self.clock.unwrap_or_else(crate::clock::system),
                nonces: self.nonces.unwrap_or_else(crate::nonce::system),
            }),
        })
    }
}

/// The API v2 client. Cheap to clone.
#[derive(Clone)]
pub struct V2Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The client with the merchant's TLS identity, for certificate calls.
    secure_http: Option<reqwest::Client>,
    config: V2Config,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    nonces: Arc<dyn NonceSource>,
}

impl fmt::Debug for V2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2Client")
            .field("config", &self.inner.config)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl V2Client {
    /// Starts building a client.
    pub fn builder(config: V2Config) -> V2ClientBuilder {
        V2ClientBuilder {
            config,
            timeout: DEFAULT_TIMEOUT,
            clock: None,
            nonces: None,
            http: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &V2Config {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The signed request parameters for `params` (the common fields and `sign` added): what
    /// [`Self::unified_order`] and the others post, as XML.
    pub fn signed_request(&self, mut params: Params) -> Params {
        let config = &self.inner.config;
        params.insert("appid".into(), config.appid.clone());
        params.insert("mch_id".into(), config.mchid.clone());
        params.insert("nonce_str".into(), self.inner.nonces.nonce());
        params.insert("sign_type".into(), config.sign_type.as_str().into());
        params.remove("sign");
        let signature = sign::sign_params(&params, &config.api_key, config.sign_type);
        params.insert("sign".into(), signature);
        params
    }

    /// The parameters of a JSAPI unified order (before the common fields and `sign`).
    pub fn unified_order_params(&self, request: &UnifiedOrderRequest) -> Params {
        let config = &self.inner.config;
        let mut params = Params::new();
        params.insert("body".into(), request.body.clone());
        params.insert("out_trade_no".into(), request.out_trade_no.clone());
        params.insert("total_fee".into(), request.total_fee.to_string());
        params.insert("fee_type".into(), request.fee_type.clone());
        if let Some(attach) = &request.attach {
            params.insert("attach".into(), attach.clone());
        }
        params.insert(
            "spbill_create_ip".into(),
            config.spbill_create_ip.to_string(),
        );
        params.insert("notify_url".into(), config.notify_url.as_str().to_owned());
        params.insert("trade_type".into(), "JSAPI".into());
        params.insert("openid".into(), request.openid.clone());
        params
    }

    /// `POST /pay/unifiedorder` (`trade_type=JSAPI`): the verified answer, whose `prepay_id` is
    /// returned first.
    pub async fn unified_order(
        &self,
        request: &UnifiedOrderRequest,
    ) -> Result<(String, Params), V2Error> {
        let answer = self
            .call("/pay/unifiedorder", self.unified_order_params(request))
            .await?;
        let prepay_id = answer
            .get("prepay_id")
            .filter(|id| !id.is_empty())
            .cloned()
            .ok_or_else(|| V2Error::Malformed("unified order answer without prepay_id".into()))?;
        Ok((prepay_id, answer))
    }

    /// `POST /pay/orderquery` by `out_trade_no`: the verified answer (`trade_state`, …).
    pub async fn order_query(&self, out_trade_no: &str) -> Result<Params, V2Error> {
        let mut params = Params::new();
        params.insert("out_trade_no".into(), out_trade_no.to_owned());
        self.call("/pay/orderquery", params).await
    }

    /// `POST /pay/closeorder`. `ORDERCLOSED` (already closed) counts as success.
    pub async fn close_order(&self, out_trade_no: &str) -> Result<(), V2Error> {
        let mut params = Params::new();
        params.insert("out_trade_no".into(), out_trade_no.to_owned());
        match self.call("/pay/closeorder", params).await {
            Ok(_) => Ok(()),
            Err(V2Error::Business { err_code, .. }) if err_code == "ORDERCLOSED" => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Whether the merchant's API certificate is configured, which refunds need.
    pub fn can_refund(&self) -> bool {
        self.inner.secure_http.is_some()
    }

    /// The parameters of a refund (before the common fields and `sign`).
    pub fn refund_params(&self, request: &RefundRequest) -> Params {
        let mut params = Params::new();
        if let Some(id) = request.transaction_id.as_ref().filter(|id| !id.is_empty()) {
            params.insert("transaction_id".into(), id.clone());
        }
        params.insert("out_trade_no".into(), request.out_trade_no.clone());
        params.insert("out_refund_no".into(), request.out_refund_no.clone());
        params.insert("total_fee".into(), request.total_fee.to_string());
        params.insert("refund_fee".into(), request.refund_fee.to_string());
        params.insert("refund_fee_type".into(), request.refund_fee_type.clone());
        if let Some(desc) = &request.refund_desc {
            params.insert("refund_desc".into(), desc.clone());
        }
        params.insert(
            "notify_url".into(),
            self.inner.config.notify_url.as_str().to_owned(),
        );
        params
    }

    /// `POST /secapi/pay/refund` over the merchant certificate's TLS connection: the verified
    /// answer (`refund_id`, …). `result_code` `SUCCESS` means WeChat Pay took the refund, not
    /// that the money is back: [`Self::refund_query`] or the refund notification says that.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Params, V2Error> {
        let Some(secure) = &self.inner.secure_http else {
            return Err(V2Error::Local(
                "API v2 refunds need the merchant's API certificate \
                 (V2Config::merchant_certificate; WXPAY_V2_CERT_FILE and WXPAY_V2_KEY_FILE)"
                    .into(),
            ));
        };
        let config = &self.inner.config;
        let base = config.secapi_base.as_deref().unwrap_or(&config.api_base);
        let answer = self
            .call_on(
                secure,
                base,
                "/secapi/pay/refund",
                self.refund_params(request),
            )
            .await?;
        if answer.get("out_refund_no") != Some(&request.out_refund_no) {
            return Err(V2Error::Malformed(format!(
                "the refund answer names another out_refund_no: {:?}",
                answer.get("out_refund_no")
            )));
        }
        Ok(answer)
    }

    /// `POST /pay/refundquery` by `out_refund_no`: the verified answer, whose refunds are
    /// numbered `out_refund_no_$n`, `refund_status_$n`, … (`REFUNDNOTEXIST` when WeChat Pay has
    /// no such refund).
    pub async fn refund_query(&self, out_refund_no: &str) -> Result<Params, V2Error> {
        let mut params = Params::new();
        params.insert("out_refund_no".into(), out_refund_no.to_owned());
        self.call("/pay/refundquery", params).await
    }

    /// The JSAPI client parameters for `prepay_id` (official docs, 网页端调起支付API
    /// `chapter=7_7`): `appId`, `timeStamp` (seconds), `nonceStr`, `package=prepay_id=…` and
    /// `signType` (the configured one), signed the API v2 way into `paySign`.
    pub fn jsapi_params(&self, prepay_id: &str) -> ClientParams {
        let config = &self.inner.config;
        jsapi_params(
            &config.appid,
            prepay_id,
            &self.inner.clock.unix_seconds().to_string(),
            &self.inner.nonces.nonce(),
            &config.api_key,
            config.sign_type,
        )
    }

    /// Posts `params` (common fields and `sign` added) to `path` and checks the answer.
    async fn call(&self, path: &str, params: Params) -> Result<Params, V2Error> {
        let inner = &self.inner;
        self.call_on(&inner.http, &inner.config.api_base, path, params)
            .await
    }

    /// [`Self::call`] with `http` to `base`.
    async fn call_on(
        &self,
        http: &reqwest::Client,
        base: &str,
        path: &str,
        params: Params,
    ) -> Result<Params, V2Error> {
        let body =
            xml::write(&self.signed_request(params)).map_err(|e| V2Error::Local(e.to_string()))?;
        let deadline = self.inner.timeout;
        let url = format!("{base}{path}");
        let (status, bytes) = tokio::time::timeout(deadline, post(http, url, body))
            .await
            .unwrap_or(Err(V2Error::Deadline(deadline)))?;
        if !status.is_success() {
            return Err(V2Error::Http(status));
        }
        self.check_answer(&bytes)
    }

    fn check_answer(&self, bytes: &[u8]) -> Result<Params, V2Error> {
        let answer = xml::parse(bytes).map_err(|e: XmlError| V2Error::Malformed(e.to_string()))?;
        let return_code = answer.get("return_code").map(String::as_str).unwrap_or("");
        if return_code != "SUCCESS" {
            return Err(V2Error::Return {
                return_code: if return_code.is_empty() {
                    "(none)".to_owned()
                } else {
                    return_code.to_owned()
                },
                return_msg: answer.get("return_msg").cloned().unwrap_or_default(),
            });
        }
        sign::verify(&answer, &self.inner.config.api_key).map_err(V2Error::Signature)?;
        let config = &self.inner.config;
        for (field, ours) in [("appid", &config.appid), ("mch_id", &config.mchid)] {
            if let Some(theirs) = answer.get(field).filter(|v| !v.is_empty())
                && theirs != ours
            {
                return Err(V2Error::Malformed(format!(
                    "the answer names another {field}: {theirs:?}"
                )));
            }
        }
        if answer.get("result_code").map(String::as_str) != Some("SUCCESS") {
            return Err(V2Error::Business {
                err_code: answer
                    .get("err_code")
                    .cloned()
                    .unwrap_or_else(|| "FAIL".to_owned()),
                err_code_des: answer.get("err_code_des").cloned().unwrap_or_default(),
            });
        }
        Ok(answer)
    }
}

/// The HTTP client of certificate calls: the merchant's TLS identity, and `root_pem` as the
/// only trusted CA when given.
fn secure_client(
    certificate: &MerchantCertificate,
    root_pem: Option<&str>,
) -> Result<reqwest::Client, V2Error> {
    let mut builder = transport::client_builder().identity(certificate.identity()?);
    if let Some(root_pem) = root_pem {
        let roots = reqwest::Certificate::from_pem_bundle(root_pem.as_bytes()).map_err(|e| {
            V2Error::Local(format!("WXPAY_V2_CA_FILE is not PEM certificates: {e}"))
        })?;
        if roots.is_empty() {
            return Err(V2Error::Local(
                "WXPAY_V2_CA_FILE holds no certificate".into(),
            ));
        }
        builder = builder.tls_certs_only(roots);
    }
    builder
        .build()
        .map_err(|e| V2Error::Local(format!("cannot build the certificate HTTP client: {e}")))
}

/// Posts the XML `body` to `url`, reading the answer within [`MAX_RESPONSE_BYTES`].
async fn post(
    http: &reqwest::Client,
    url: String,
    body: String,
) -> Result<(StatusCode, Bytes), V2Error> {
    let request = http
        .post(url)
        .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header(http::header::ACCEPT, "text/xml, application/xml")
        .body(body);
    let answer = transport::exchange(request, MAX_RESPONSE_BYTES)
        .await
        .map_err(transport_error)?;
    Ok((answer.status, answer.body))
}

/// Signs JSAPI client parameters the API v2 way: `appId`, `timeStamp`, `nonceStr`, `package`
/// (`prepay_id=…`) and `signType`, with the rule of [`sign::sign`], into `paySign`.
pub fn jsapi_params(
    appid: &str,
    prepay_id: &str,
    time_stamp: &str,
    nonce_str: &str,
    key: &ApiKey,
    sign_type: SignType,
) -> ClientParams {
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = sign::sign(
        [
            ("appId", appid),
            ("timeStamp", time_stamp),
            ("nonceStr", nonce_str),
            ("package", package.as_str()),
            ("signType", sign_type.as_str()),
        ],
        key,
        sign_type,
    );
    ClientParams {
        app_id: appid.to_owned(),
        time_stamp: time_stamp.to_owned(),
        nonce_str: nonce_str.to_owned(),
        package,
        sign_type: sign_type.as_str().to_owned(),
        pay_sign,
    }
}

/// Maps a transport failure onto this client's errors.
fn transport_error(error: transport::TransportError) -> V2Error {
    match error {
        transport::TransportError::Failed {
            source,
            request_may_have_been_sent,
        } => V2Error::Transport {
            source,
            request_may_have_been_sent,
        },
        transport::TransportError::TooLarge(limit) => V2Error::ResponseTooLarge(limit),
    }
}

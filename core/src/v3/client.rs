//! The API v3 HTTP client: JSAPI prepay, query, close and platform certificates.
//!
//! Every call has one total deadline (default 4 s, so a route that makes one call still answers
//! within the 5 s a WeChat page waits). Every 2xx response, 204 included, is verified before a
//! byte of it is used. Retries happen only where they are safe: reads, connection failures before
//! anything was sent, and 5xx answers, always with identical parameters and a fresh signature.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::fields::{OutRefundNo, OutTradeNo};
use crate::nonce::NonceSource;
use crate::transport;

use super::certificate::PlatformCertificate;
use super::credentials::{ApiV3Key, MerchantCredentials};
use super::jsapi::{self, JsapiParams};
use super::model::{
    CertificateList, CloseRequest, ErrorEnvelope, JsapiPrepayRequest, PrepayResponse, Transaction,
};
use super::notification::{
    NotificationError, NotificationParser, NotificationResource, VerifiedNotification,
};
use super::refund::{DomesticRefundRequest, RefundRecord};
use super::sign::RequestSigner;
use super::verify::{PlatformTrust, SIGNATURE_TYPE, SignatureHeaders, VerifyError};

/// The production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// The default total deadline of one call, retries included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// The default interval of the background certificate refresh (WeChat asks for under 12 h).
pub const DEFAULT_CERTIFICATE_REFRESH: Duration = Duration::from_secs(6 * 60 * 60);

/// The least time between two refreshes triggered by an unknown serial, so that forged serials
/// cannot make us hammer the certificate API.
pub const DEFAULT_UNKNOWN_SERIAL_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// A failed call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request could not be sent or the response not received.
    #[error("transport error talking to WeChat Pay: {source}")]
    Transport {
        /// What failed.
        #[source]
        source: reqwest::Error,
        /// Whether WeChat Pay may have received the request.
        request_may_have_been_sent: bool,
    },
    /// WeChat Pay answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// A 2xx response did not verify: its content cannot be trusted.
    #[error("response signature did not verify: {0}")]
    Verification(#[source] VerifyError),
    /// No answer within the call's deadline.
    #[error("no answer from WeChat Pay within {0:?}")]
    Deadline(Duration),
    /// A verified response did not have the expected shape.
    #[error("unexpected response from WeChat Pay: {0}")]
    Decode(String),
    /// The response body was larger than the client reads.
    #[error("response body exceeds {0} bytes")]
    ResponseTooLarge(usize),
    /// The request could not be built.
    #[error("{0}")]
    Local(String),
}

impl ClientError {
    /// Whether a failed write (prepay, close) may still have taken effect at WeChat Pay. When it
    /// may have, query the order before doing anything else; never create it again with other
    /// parameters.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Transport {
                request_may_have_been_sent,
                ..
            } => *request_may_have_been_sent,
            Self::Api(error) => error.status.is_server_error(),
            Self::Verification(_)
            | Self::Deadline(_)
            | Self::Decode(_)
            | Self::ResponseTooLarge(_) => true,
            Self::Local(_) => false,
        }
    }

    /// The API error, when WeChat Pay answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }
}

/// An error answer of WeChat Pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code (`PARAM_ERROR`, `ORDERPAID`, …); `HTTP_<status>` when the body had none.
    pub code: String,
    /// The message.
    pub message: String,
    /// The detail, when given.
    pub detail: Option<serde_json::Value>,
    /// The `Request-ID` header, to quote to WeChat Pay support.
    pub request_id: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WeChat Pay answered {} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )?;
        if let Some(request_id) = &self.request_id {
            write!(f, " (Request-ID {request_id})")?;
        }
        Ok(())
    }
}

/// When a failed attempt is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The pause before the second attempt; it doubles for each one after.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    /// Safe to repeat on any failure.
    Read,
    /// Repeated only when WeChat Pay certainly did not act on it, or asked for a retry (5xx).
    Write,
}

/// A response as received, not yet verified.
#[derive(Debug)]
struct RawResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Builds a [`V3Client`].
#[derive(Debug)]
pub struct V3ClientBuilder {
    credentials: MerchantCredentials,
    api_v3_key: ApiV3Key,
    trust: PlatformTrust,
    base_url: String,
    timeout: Duration,
    retry: RetryPolicy,
    unknown_serial_refresh_interval: Duration,
    clock: Option<Arc<dyn Clock>>,
    nonces: Option<Arc<dyn NonceSource>>,
    http: Option<reqwest::Client>,
}

impl V3ClientBuilder {
    /// Sets the API base URL (default [`DEFAULT_BASE_URL`]); the sandbox and tests point it at
    /// loopback.
    #[must_use]
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the total deadline of one call, retries included.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the least time between refreshes triggered by an unknown serial.
    #[must_use]
    pub fn unknown_serial_refresh_interval(mut self, interval: Duration) -> Self {
        self.unknown_serial_refresh_interval = interval;
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

    /// Uses a preconfigured reqwest client (proxies, TLS roots, connection pool settings).
    #[must_use]
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<V3Client, ClientError> {
        let base_url =
            transport::base_url(&self.base_url, "base URL").map_err(ClientError::Local)?;
        let http = transport::http_client(self.http).map_err(ClientError::Local)?;
        let mut signer = RequestSigner::new(self.credentials);
        if let Some(clock) = self.clock {
            signer = signer.with_clock(clock);
        }
        if let Some(nonces) = self.nonces {
            signer = signer.with_nonces(nonces);
        }
        let notifications = NotificationParser::new(self.trust.clone(), self.api_v3_key.clone())
            .with_clock(signer.clock().clone());
        Ok(V3Client {
            inner: Arc::new(ClientInner {
                http,
                base_url,
                signer,
                api_v3_key: self.api_v3_key,
                trust: self.trust,
                notifications,
                timeout: self.timeout,
                retry: self.retry,
                refresh: RefreshGate::new(self.unknown_serial_refresh_interval),
            }),
        })
    }
}

/// The WeChat Pay API v3 client. Cheap to clone; clones share connections and trusted keys.
#[derive(Debug, Clone)]
pub struct V3Client {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    http: reqwest::Client,
    base_url: String,
    signer: RequestSigner,
    api_v3_key: ApiV3Key,
    trust: PlatformTrust,
    notifications: NotificationParser,
    timeout: Duration,
    retry: RetryPolicy,
    refresh: RefreshGate,
}

impl V3Client {
    /// Starts building a client for a merchant, its API v3 key and the platform keys it trusts.
    pub fn builder(
        credentials: MerchantCredentials,
        api_v3_key: ApiV3Key,
        trust: PlatformTrust,
    ) -> V3ClientBuilder {
        V3ClientBuilder {
            credentials,
            api_v3_key,
            trust,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            unknown_serial_refresh_interval: DEFAULT_UNKNOWN_SERIAL_REFRESH_INTERVAL,
            clock: None,
            nonces: None,
            http: None,
        }
    }

    /// The merchant credentials.
    pub fn credentials(&self) -> &MerchantCredentials {
        self.inner.signer.credentials()
    }

    /// The platform keys trusted now.
    pub fn trust(&self) -> &PlatformTrust {
        &self.inner.trust
    }

    /// The clock the client signs and verifies with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.inner.signer.clock()
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The notification parser, sharing this client's keys and clock.
    pub fn notification_parser(&self) -> &NotificationParser {
        &self.inner.notifications
    }

    /// `POST /v3/pay/transactions/jsapi`: creates (or, with identical parameters, repeats) the
    /// prepay order.
    pub async fn jsapi_prepay(
        &self,
        request: &JsapiPrepayRequest,
    ) -> Result<PrepayResponse, ClientError> {
        let response = self
            .call_json(
                Method::POST,
                "/v3/pay/transactions/jsapi".to_owned(),
                Some(request),
                CallKind::Write,
            )
            .await?;
        decode(&response.body)
    }

    /// Signed client parameters for a prepay id, ready for `WeixinJSBridge` or
    /// `wx.requestPayment`.
    pub fn jsapi_params(&self, prepay_id: &str) -> JsapiParams {
        jsapi::sign(
            self.credentials(),
            prepay_id,
            self.inner.signer.clock().as_ref(),
            self.inner.signer.nonces().as_ref(),
        )
    }

    /// `GET /v3/pay/transactions/out-trade-no/{no}?mchid=…`.
    pub async fn query_by_out_trade_no(
        &self,
        out_trade_no: &OutTradeNo,
    ) -> Result<Transaction, ClientError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            out_trade_no,
            self.credentials().mchid()
        );
        let response = self
            .call_json::<()>(Method::GET, path, None, CallKind::Read)
            .await?;
        decode(&response.body)
    }

    /// `POST /v3/pay/transactions/out-trade-no/{no}/close`: closes an unpaid order (204).
    pub async fn close(&self, out_trade_no: &OutTradeNo) -> Result<(), ClientError> {
        let path = format!("/v3/pay/transactions/out-trade-no/{out_trade_no}/close");
        let body = CloseRequest {
            mchid: self.credentials().mchid(),
        };
        self.call_json(Method::POST, path, Some(&body), CallKind::Write)
            .await?;
        Ok(())
    }

    /// `POST /v3/refund/domestic/refunds`: asks for a refund (or, with the same
    /// `out_refund_no` and parameters, repeats it and gets the same record).
    pub async fn refund(
        &self,
        request: &DomesticRefundRequest,
    ) -> Result<RefundRecord, ClientError> {
        let response = self
            .call_json(
                Method::POST,
                "/v3/refund/domestic/refunds".to_owned(),
                Some(request),
                CallKind::Write,
            )
            .await?;
        decode(&response.body)
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`; a refund WeChat Pay has no record of
    /// is a 404 `RESOURCE_NOT_EXISTS`.
    pub async fn query_refund(
        &self,
        out_refund_no: &OutRefundNo,
    ) -> Result<RefundRecord, ClientError> {
        let path = format!("/v3/refund/domestic/refunds/{out_refund_no}");
        let response = self
            .call_json::<()>(Method::GET, path, None, CallKind::Read)
            .await?;
        decode(&response.body)
    }

    /// Verifies and decrypts a payment notification. An unknown serial in certificate mode
    /// triggers one rate-limited certificate refresh before giving up.
    pub async fn verify_transaction_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedNotification<Transaction>, NotificationError> {
        self.verify_refreshing(|parser| parser.parse_transaction(headers, body))
            .await
    }

    /// Verifies and decrypts a payment or refund notification, refreshing certificates for an
    /// unknown serial as [`verify_transaction_notification`](Self::verify_transaction_notification) does.
    pub async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedNotification<NotificationResource>, NotificationError> {
        self.verify_refreshing(|parser| parser.parse_any(headers, body))
            .await
    }

    async fn verify_refreshing<T>(
        &self,
        parse: impl Fn(&NotificationParser) -> Result<T, NotificationError>,
    ) -> Result<T, NotificationError> {
        match parse(&self.inner.notifications) {
            Err(NotificationError::Verify(VerifyError::UnknownSerial(serial)))
                if self.inner.trust.uses_certificates() =>
            {
                if self.refresh_for_unknown_serial(&serial).await {
                    parse(&self.inner.notifications)
                } else {
                    Err(NotificationError::Verify(VerifyError::UnknownSerial(
                        serial,
                    )))
                }
            }
            other => other,
        }
    }

    /// Downloads the platform certificates now (single-flight: concurrent callers share one
    /// download) and returns the serials trusted afterwards.
    ///
    /// A downloaded certificate is trusted only after it decrypts with the API v3 key and the
    /// download's response signature verifies with a trusted or downloaded certificate. In
    /// public-key mode a 404 `RESOURCE_NOT_EXISTS` is not an error.
    pub async fn refresh_certificates(&self) -> Result<Vec<String>, ClientError> {
        let gate = &self.inner.refresh;
        let seen = gate.generation();
        let mut last_attempt = gate.lock.lock().await;
        if gate.generation() != seen {
            // Another caller refreshed while we waited.
            return Ok(self.inner.trust.certificate_serials());
        }
        *last_attempt = Some(Instant::now());
        let outcome = self.download_certificates().await;
        gate.bump();
        outcome.map(|()| self.inner.trust.certificate_serials())
    }

    /// Refreshes the platform certificates every `every` until the returned task is aborted
    /// (or the runtime ends). A failed refresh is retried after a minute.
    pub fn spawn_certificate_refresh(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let client = self.clone();
        tokio::spawn(async move {
            loop {
                let pause = match client.refresh_certificates().await {
                    Ok(serials) => {
                        tracing::debug!(count = serials.len(), "platform certificates refreshed");
                        every
                    }
                    Err(error) => {
                        tracing::warn!(%error, "platform certificate refresh failed");
                        every.min(Duration::from_secs(60))
                    }
                };
                tokio::time::sleep(pause).await;
            }
        })
    }

    async fn refresh_for_unknown_serial(&self, serial: &str) -> bool {
        let gate = &self.inner.refresh;
        let seen = gate.generation();
        let mut last_attempt = gate.lock.lock().await;
        if gate.generation() != seen {
            return self.inner.trust.knows(serial);
        }
        if last_attempt.is_some_and(|at| at.elapsed() < gate.min_interval) {
            tracing::warn!(
                serial,
                "unknown platform serial; certificate refresh is rate-limited"
            );
            return false;
        }
        *last_attempt = Some(Instant::now());
        let outcome = self.download_certificates().await;
        gate.bump();
        if let Err(error) = outcome {
            tracing::warn!(%error, "certificate refresh for an unknown serial failed");
        }
        self.inner.trust.knows(serial)
    }

    async fn download_certificates(&self) -> Result<(), ClientError> {
        let response = self
            .call_raw(
                Method::GET,
                "/v3/certificates".to_owned(),
                None,
                CallKind::Read,
            )
            .await?;
        if !response.status.is_success() {
            let error = api_error(&response);
            if error.status == StatusCode::NOT_FOUND
                && error.code == "RESOURCE_NOT_EXISTS"
                && self.inner.trust.public_key_id().is_some()
            {
                return Ok(());
            }
            return Err(ClientError::Api(error));
        }
        let signature =
            SignatureHeaders::from_headers(&response.headers).map_err(ClientError::Verification)?;
        require_signature_type(&signature)?;
        let list: CertificateList = decode(&response.body)?;
        let now = self.clock().now();
        let mut downloaded = Vec::with_capacity(list.data.len());
        for entry in &list.data {
            let pem = entry
                .encrypt_certificate
                .decrypt(&self.inner.api_v3_key)
                .map_err(|e| {
                    ClientError::Decode(format!("certificate {}: {e}", entry.serial_no))
                })?;
            let pem = std::str::from_utf8(&pem).map_err(|_| {
                ClientError::Decode(format!("certificate {} is not text", entry.serial_no))
            })?;
            let certificate = PlatformCertificate::from_pem(pem)
                .map_err(|e| ClientError::Decode(e.to_string()))?;
            if certificate.serial() != entry.serial_no {
                return Err(ClientError::Decode(format!(
                    "certificate serial {} does not match serial_no {}",
                    certificate.serial(),
                    entry.serial_no
                )));
            }
            downloaded.push(certificate);
        }
        // Verify the download with the keys trusted so far plus the ones it brings: a
        // certificate is trusted only once the response carrying it has verified.
        let candidate = self.inner.trust.clone_with(&downloaded);
        candidate
            .verify(&signature, &response.body, now)
            .map_err(ClientError::Verification)?;
        for certificate in downloaded {
            if certificate.is_valid_at(now) {
                self.inner
                    .trust
                    .add_certificate(certificate)
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
            }
        }
        Ok(())
    }

    async fn call_json<T: Serialize + ?Sized>(
        &self,
        method: Method,
        path_and_query: String,
        body: Option<&T>,
        kind: CallKind,
    ) -> Result<RawResponse, ClientError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Local(format!("cannot serialise request: {e}")))?;
        let response = self.call_raw(method, path_and_query, body, kind).await?;
        if !response.status.is_success() {
            return Err(ClientError::Api(api_error(&response)));
        }
        self.verify_response(&response).await?;
        Ok(response)
    }

    async fn verify_response(&self, response: &RawResponse) -> Result<(), ClientError> {
        let signature =
            SignatureHeaders::from_headers(&response.headers).map_err(ClientError::Verification)?;
        require_signature_type(&signature)?;
        let now = self.clock().now();
        match self.inner.trust.verify(&signature, &response.body, now) {
            Err(VerifyError::UnknownSerial(serial)) if self.inner.trust.uses_certificates() => {
                if self.refresh_for_unknown_serial(&serial).await {
                    self.inner
                        .trust
                        .verify(&signature, &response.body, self.clock().now())
                        .map_err(ClientError::Verification)
                } else {
                    Err(ClientError::Verification(VerifyError::UnknownSerial(
                        serial,
                    )))
                }
            }
            other => other.map_err(ClientError::Verification),
        }
    }

    /// Sends with retries, all within the call's deadline; the response is not verified here.
    async fn call_raw(
        &self,
        method: Method,
        path_and_query: String,
        body: Option<Vec<u8>>,
        kind: CallKind,
    ) -> Result<RawResponse, ClientError> {
        let deadline = self.inner.timeout;
        let attempts = self.attempts(&method, &path_and_query, body.as_deref(), kind);
        tokio::time::timeout(deadline, attempts)
            .await
            .unwrap_or(Err(ClientError::Deadline(deadline)))
    }

    async fn attempts(
        &self,
        method: &Method,
        path_and_query: &str,
        body: Option<&[u8]>,
        kind: CallKind,
    ) -> Result<RawResponse, ClientError> {
        let retry = self.inner.retry;
        let mut backoff = retry.initial_backoff;
        let mut attempt = 1;
        loop {
            let outcome = self.send_once(method, path_and_query, body).await;
            let retryable = match &outcome {
                Ok(response) => response.status.is_server_error(),
                Err(ClientError::Transport {
                    request_may_have_been_sent,
                    ..
                }) => kind == CallKind::Read || !request_may_have_been_sent,
                Err(_) => false,
            };
            if !retryable || attempt >= retry.max_attempts {
                return outcome;
            }
            tracing::debug!(
                attempt,
                path = path_and_query,
                "retrying WeChat Pay call after a retryable failure"
            );
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<RawResponse, ClientError> {
        let url = format!("{}{}", self.inner.base_url, path_and_query);
        let url = reqwest::Url::parse(&url)
            .map_err(|e| ClientError::Local(format!("invalid request URL: {e}")))?;
        // Sign the target exactly as it goes on the wire, base-URL prefix included.
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let body_bytes = body.unwrap_or_default();
        let authorization = self
            .inner
            .signer
            .authorization(method.as_str(), &target, body_bytes);
        let mut request = self
            .inner
            .http
            .request(method.clone(), url)
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::ACCEPT, "application/json");
        if let Some(serial) = self.inner.trust.preferred_serial(self.clock().now()) {
            request = request.header("Wechatpay-Serial", serial);
        }
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let answer = transport::exchange(request, MAX_RESPONSE_BYTES)
            .await
            .map_err(transport_error)?;
        Ok(RawResponse {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        })
    }
}

/// Maps a transport failure onto this client's errors.
fn transport_error(error: transport::TransportError) -> ClientError {
    match error {
        transport::TransportError::Failed {
            source,
            request_may_have_been_sent,
        } => ClientError::Transport {
            source,
            request_may_have_been_sent,
        },
        transport::TransportError::TooLarge(limit) => ClientError::ResponseTooLarge(limit),
    }
}

fn require_signature_type(signature: &SignatureHeaders) -> Result<(), ClientError> {
    // Real SDKs refuse a response that does not name its signature type.
    match signature.signature_type.as_deref() {
        Some(SIGNATURE_TYPE) => Ok(()),
        Some(_) => Err(ClientError::Verification(
            VerifyError::UnsupportedSignatureType,
        )),
        None => Err(ClientError::Verification(VerifyError::MissingHeader(
            "Wechatpay-Signature-Type",
        ))),
    }
}

fn api_error(response: &RawResponse) -> ApiError {
    let request_id = response
        .headers
        .get("request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    match serde_json::from_slice::<ErrorEnvelope>(&response.body) {
        Ok(envelope) => ApiError {
            status: response.status,
            code: envelope.code,
            message: envelope.message,
            detail: envelope.detail,
            request_id,
        },
        Err(_) => ApiError {
            status: response.status,
            code: format!("HTTP_{}", response.status.as_u16()),
            message: String::from_utf8_lossy(&response.body[..response.body.len().min(256)])
                .into_owned(),
            detail: None,
            request_id,
        },
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Decode(e.to_string()))
}

/// Serialises certificate downloads and remembers when the last one started.
#[derive(Debug)]
struct RefreshGate {
    lock: tokio::sync::Mutex<Option<Instant>>,
    generation: AtomicU64,
    min_interval: Duration,
}

impl RefreshGate {
    fn new(min_interval: Duration) -> Self {
        Self {
            lock: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            min_interval,
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

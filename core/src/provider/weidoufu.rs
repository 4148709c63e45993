//! weidoufu (seed 004) as a [`Provider`], over [`WeidoufuClient`].
//!
//! - The wallet is the configured [`PayType`]. For WeChat the order's `openid` is sent as
//!   `openid`; for Alipay **the order's `openid` field carries the payer's Alipay `buyer_id`**
//!   (sent as `buyer_id`): the engine has one payer field, and an Alipay mini program obtains a
//!   `buyer_id` where a WeChat one obtains an openid.
//! - The merchant identity is the `access_key`, standing in for the merchant id, stored with
//!   each order. The live callback does not repeat it: its HMAC with the secret key is what
//!   ties it to this application ([`verify_callback`]).
//! - An order's `transaction_id` is weidoufu's `mch_trade_no`, the number weidoufu knows the
//!   payment by (as QFPay's `syssn` and the gateway's `trade_id` are for those upstreams); the
//!   wallet's own number (the callback's `transaction_id`: WeChat's transaction id or Alipay's
//!   trade number) stays in the notification's details.
//! - weidoufu documents the payment and its callback only, so [`Provider::query`] and
//!   [`Provider::close`] answer a [`ProviderErrorKind::Local`] error (`UNSUPPORTED`) and
//!   [`Provider::can_query`] is `false`, as for the seed-001 gateway: orders settle through the
//!   callback, which weidoufu repeats until it is acknowledged; reconciliation closes them
//!   locally once their prepay expired.
//! - **Refunds** (`POST /pay/refund`, fields from the one public client that refunds, see
//!   [`crate::weidoufu::client::REFUND_PATH`]): `code: 1` is read as a finished refund
//!   (`SUCCESS`), since weidoufu has neither a refund query nor a refund callback that could
//!   report one later; `code: 0` closes it. weidoufu numbers no refund, so an unknown outcome
//!   (timeout, 5xx) is **never resent**: the refund stays `PROCESSING`, the reconciler cannot
//!   query it, and an operator settles it from weidoufu's merchant console.

use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use time::Duration;

use crate::fields::FieldError;
use crate::order::{NewOrder, Order};
use crate::refund::{Refund, RefundStatus};
use crate::weidoufu::client::PAYER_ID_MAX_CHARS;
use crate::weidoufu::{
    CallbackError, MiniappPayRequest, PayType, RefundRequest, WeidoufuClient, WeidoufuError,
    check_out_order_no, verify_callback,
};

use super::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    PaymentState, Prepay, Provider, ProviderError, ProviderErrorKind, RefundReport, RejectionKind,
    text_reply,
};

/// How long a payment's parameters can be used: a WeChat `prepay_id` is valid for 2 hours
/// (official docs); weidoufu gives no validity for either wallet, so the same is assumed for an
/// Alipay `trade_no` (our choice).
pub const PREPAY_VALIDITY: Duration = Duration::hours(2);

/// The body of the reply that acknowledges a callback: HTTP 200 with the plain text `SUCCESS`
/// (our choice, contract B; seed 004 is silent).
pub const WEIDOUFU_ACK_BODY: &str = "SUCCESS";

/// The body of every failure reply, always with a non-2xx status so that weidoufu retries.
pub const WEIDOUFU_FAIL_BODY: &str = "FAIL";

/// The prefix of notification event ids: `weidoufu-{mch_trade_no}`.
pub const EVENT_ID_PREFIX: &str = "weidoufu-";

/// weidoufu's mini-program payments.
#[derive(Debug, Clone)]
pub struct WeidoufuProvider {
    client: WeidoufuClient,
}

impl WeidoufuProvider {
    /// A provider over `client`, collecting with the client's configured pay type.
    pub fn new(client: WeidoufuClient) -> Self {
        Self { client }
    }

    /// The client.
    pub fn client(&self) -> &WeidoufuClient {
        &self.client
    }

    /// The wallet orders are paid with.
    pub fn pay_type(&self) -> PayType {
        self.client.config().pay_type
    }
}

fn provider_error(error: &WeidoufuError) -> ProviderError {
    let (kind, upstream_code, message) = match error {
        WeidoufuError::Rejected { message, .. } => (
            ProviderErrorKind::Rejected,
            Some("0".to_owned()),
            message.clone(),
        ),
        WeidoufuError::Http(status) if status.is_server_error() => {
            (ProviderErrorKind::Unavailable, None, error.to_string())
        }
        WeidoufuError::Http(_) => (ProviderErrorKind::Rejected, None, error.to_string()),
        WeidoufuError::Deadline(_) => (ProviderErrorKind::Timeout, None, error.to_string()),
        WeidoufuError::Transport { .. } => (ProviderErrorKind::Transport, None, error.to_string()),
        WeidoufuError::ResponseTooLarge(_) | WeidoufuError::Malformed(_) => {
            (ProviderErrorKind::BadResponse, None, error.to_string())
        }
        _ => (ProviderErrorKind::Local, None, error.to_string()),
    };
    ProviderError {
        kind,
        upstream_code,
        message,
        may_have_taken_effect: error.may_have_taken_effect(),
    }
}

fn unsupported(what: &str) -> ProviderError {
    text_reply::unsupported(format!("weidoufu documents no {what} API (seed 004)"))
}

fn failure(status: StatusCode) -> Response<Bytes> {
    text_reply::text_failure(status, WEIDOUFU_FAIL_BODY)
}

fn rejection(error: &CallbackError) -> NotificationRejection {
    let (kind, status) = match error {
        CallbackError::MissingSign | CallbackError::BadSignature => {
            (RejectionKind::BadSignature, StatusCode::UNAUTHORIZED)
        }
        _ => (RejectionKind::Malformed, StatusCode::BAD_REQUEST),
    };
    NotificationRejection::new(kind, error.to_string(), failure(status))
}

#[async_trait]
impl Provider for WeidoufuProvider {
    fn name(&self) -> &'static str {
        "weidoufu"
    }

    /// No appid of ours exists at weidoufu; the `access_key` stands in for the merchant id (the
    /// live callback does not repeat it; its HMAC with the secret key authenticates it).
    fn merchant(&self) -> MerchantIdentity {
        MerchantIdentity {
            appid: None,
            mchid: Some(self.client.config().access_key.clone()),
        }
    }

    /// weidoufu's `out_order_no` takes 18..=32 ASCII letters and digits (seed 004), stricter than
    /// WeChat's rule: a number with `_`, `-`, `|`, `*` or under 18 characters is refused here.
    /// (Numbers the engine generates are 24 alphanumerics.) The payer id (`openid` / `buyer_id`)
    /// is `string(32)`.
    fn check_order(&self, order: &NewOrder) -> Result<(), FieldError> {
        check_out_order_no(order.out_trade_no.as_str())
            .map_err(|reason| FieldError::new("out_trade_no", reason))?;
        let payer_chars = order.openid.as_str().chars().count();
        if payer_chars > PAYER_ID_MAX_CHARS {
            return Err(FieldError::new(
                "openid",
                format!(
                    "weidoufu takes a {} of at most {PAYER_ID_MAX_CHARS} characters, got {payer_chars}",
                    self.pay_type().payer_field()
                ),
            ));
        }
        // The sign rule joins raw values with `&` and `=`: a value holding them makes the
        // signed text ambiguous, and `attach` comes back in the callback.
        if let Some(attach) = &order.attach
            && attach.as_str().contains(['&', '='])
        {
            return Err(FieldError::new(
                "attach",
                "weidoufu signs raw `k=v&…` text: attach must not contain '&' or '='",
            ));
        }
        Ok(())
    }

    async fn prepay(
        &self,
        order: &Order,
        _client_ip: Option<IpAddr>,
    ) -> Result<Prepay, ProviderError> {
        // A function of the stored order and the configuration only, so a repeated call is
        // identical and weidoufu answers it with the same payment.
        let request = MiniappPayRequest {
            out_order_no: order.out_trade_no.as_str().to_owned(),
            body: order.description.as_str().to_owned(),
            total_fee: order.amount.fen(),
            pay_type: self.pay_type(),
            payer_id: order.openid.as_str().to_owned(),
            attach: order.attach.as_ref().map(|a| a.as_str().to_owned()),
        };
        let issued_at = self.client.clock().now();
        let payment = self
            .client
            .pay(&request)
            .await
            .map_err(|e| provider_error(&e))?;
        Ok(Prepay {
            prepay_id: payment.prepay_id().to_owned(),
            expires_at: issued_at + PREPAY_VALIDITY,
            params: payment.jsapi,
        })
    }

    /// `None`: weidoufu signs the parameters with a key we do not have, so the engine asks it
    /// again (with identical parameters).
    fn client_params(&self, _order: &Order, _prepay_id: &str) -> Option<PaymentParams> {
        None
    }

    async fn verify_notification(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        let config = self.client.config();
        let callback = verify_callback(body, &config.secret_key).map_err(|e| rejection(&e))?;
        let (state, event_id) = if callback.is_paid() {
            (
                PaymentState::Paid,
                format!("{EVENT_ID_PREFIX}{}", callback.mch_trade_no),
            )
        } else {
            // Not a payment; its own id, so that it never shadows the later SUCCESS.
            (
                PaymentState::Other(format!("status {}", callback.status)),
                format!(
                    "{EVENT_ID_PREFIX}{}-{}",
                    callback.mch_trade_no, callback.status
                ),
            )
        };
        let report = PaymentReport {
            out_trade_no: callback.out_order_no.clone(),
            state,
            transaction_id: Some(callback.mch_trade_no.clone()),
            amount_total: Some(callback.total_fee),
            currency: None,
            appid: None,
            mchid: None,
            payer: None,
            paid_at: callback.paid_at(),
        };
        Ok(PaymentNotification {
            event_id,
            report,
            refund: None,
            details: serde_json::Value::Object(callback.content),
        })
    }

    fn acknowledge(&self) -> Response<Bytes> {
        text_reply::text_response(StatusCode::OK, WEIDOUFU_ACK_BODY)
    }

    fn failure_reply(&self, status: StatusCode, _message: &str) -> Response<Bytes> {
        failure(status)
    }

    async fn query(&self, _order: &Order) -> Result<PaymentReport, ProviderError> {
        Err(unsupported("order query"))
    }

    async fn close(&self, _order: &Order) -> Result<(), ProviderError> {
        Err(unsupported("close"))
    }

    fn can_query(&self) -> bool {
        false
    }

    fn refunds_supported(&self) -> bool {
        true
    }

    async fn refund(&self, order: &Order, refund: &Refund) -> Result<RefundReport, ProviderError> {
        let request = RefundRequest {
            out_order_no: order.out_trade_no.as_str().to_owned(),
            refund_fee: refund.amount.fen(),
        };
        let answer = self
            .client
            .refund(&request)
            .await
            .map_err(|e| provider_error(&e))?;
        let mut report = RefundReport::new(refund.out_refund_no.as_str(), RefundStatus::Success);
        report.out_trade_no = Some(request.out_order_no);
        report.refund_id = answer.refund_no;
        report.succeeded_at = Some(self.client.clock().now());
        Ok(report)
    }
}

//! WeChat Pay API v3 as a [`Provider`], over [`V3Client`].

use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use time::Duration;

use crate::fields::{NotifyUrl, OutTradeNo};
use crate::order::Order;
use crate::refund::{Refund, RefundStatus};
use crate::v3::model::{PrepayAmount, PrepayPayer};
use crate::v3::refund::{RefundAmount, RefundAmountRequest, parse_time};
use crate::v3::{
    ClientError, DomesticRefundRequest, JsapiPrepayRequest, NotificationError,
    NotificationResource, RefundNotice, RefundRecord, TradeState, Transaction,
    UpstreamRefundStatus, V3Client, VerifyError,
};

use super::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    PaymentState, Prepay, Provider, ProviderError, ProviderErrorKind, RefundReport, RejectionKind,
};

/// How long a `prepay_id` is valid.
pub const PREPAY_ID_VALIDITY: Duration = Duration::hours(2);

/// WeChat Pay API v3 (JSAPI).
#[derive(Debug, Clone)]
pub struct V3Provider {
    client: V3Client,
    notify_url: NotifyUrl,
}

impl V3Provider {
    /// A provider that creates orders with `client` and asks WeChat Pay to notify `notify_url`.
    pub fn new(client: V3Client, notify_url: NotifyUrl) -> Self {
        Self { client, notify_url }
    }

    /// The client.
    pub fn client(&self) -> &V3Client {
        &self.client
    }
}

fn provider_error(error: &ClientError) -> ProviderError {
    let may_have_taken_effect = error.may_have_taken_effect();
    let (kind, upstream_code) = match error {
        // 429 FREQUENCY_LIMITED did nothing and asks to be retried later, like a 5xx.
        ClientError::Api(api)
            if api.status.is_server_error() || api.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            (ProviderErrorKind::Unavailable, Some(api.code.clone()))
        }
        ClientError::Api(api) => (ProviderErrorKind::Rejected, Some(api.code.clone())),
        ClientError::Deadline(_) => (ProviderErrorKind::Timeout, None),
        ClientError::Transport { .. } => (ProviderErrorKind::Transport, None),
        ClientError::Verification(_)
        | ClientError::Decode(_)
        | ClientError::ResponseTooLarge(_) => (ProviderErrorKind::BadResponse, None),
        _ => (ProviderErrorKind::Local, None),
    };
    let message = match error {
        ClientError::Api(api) => api.message.clone(),
        other => other.to_string(),
    };
    ProviderError {
        kind,
        upstream_code,
        message,
        may_have_taken_effect,
    }
}

fn report(transaction: &Transaction) -> PaymentReport {
    let state = match &transaction.trade_state {
        TradeState::Success => PaymentState::Paid,
        TradeState::NotPay | TradeState::UserPaying | TradeState::Accept => PaymentState::NotPaid,
        TradeState::Closed | TradeState::Revoked => PaymentState::Closed,
        TradeState::PayError => PaymentState::Failed(
            transaction
                .trade_state_desc
                .clone()
                .unwrap_or_else(|| "PAYERROR".to_owned()),
        ),
        TradeState::Refund => PaymentState::Refunded,
        TradeState::Unknown(other) => PaymentState::Other(other.clone()),
    };
    PaymentReport {
        out_trade_no: transaction.out_trade_no.clone(),
        state,
        transaction_id: transaction.transaction_id.clone(),
        amount_total: transaction.amount.as_ref().and_then(|a| a.total),
        currency: transaction.amount.as_ref().and_then(|a| a.currency.clone()),
        appid: Some(transaction.appid.clone()),
        mchid: Some(transaction.mchid.clone()),
        payer: transaction.payer.as_ref().and_then(|p| p.openid.clone()),
        paid_at: transaction.success_time(),
    }
}

/// A status WeChat Pay added after this was written is treated as still processing: the
/// reconciler keeps asking rather than guessing an outcome.
fn refund_status(status: &UpstreamRefundStatus) -> RefundStatus {
    match status {
        UpstreamRefundStatus::Known(status) => *status,
        UpstreamRefundStatus::Unknown(other) => {
            tracing::warn!(status = %other, "unknown refund status from WeChat Pay; kept PROCESSING");
            RefundStatus::Processing
        }
    }
}

fn failure_of(status: RefundStatus) -> Option<String> {
    match status {
        RefundStatus::Abnormal => Some(
            "ABNORMAL: the payer's account could not take the refund; resolve it in the merchant platform"
                .to_owned(),
        ),
        RefundStatus::Closed => Some("CLOSED: WeChat Pay closed the refund".to_owned()),
        RefundStatus::Processing | RefundStatus::Success => None,
    }
}

fn amounts(amount: Option<&RefundAmount>) -> (Option<u64>, Option<u64>) {
    (amount.and_then(|a| a.refund), amount.and_then(|a| a.total))
}

fn record_report(record: &RefundRecord) -> RefundReport {
    let status = refund_status(&record.status);
    let (amount, total) = amounts(record.amount.as_ref());
    RefundReport {
        out_refund_no: record.out_refund_no.clone(),
        out_trade_no: record.out_trade_no.clone(),
        transaction_id: record.transaction_id.clone(),
        refund_id: Some(record.refund_id.clone()),
        status,
        amount,
        total,
        mchid: None,
        succeeded_at: parse_time(record.success_time.as_deref()),
        user_received_account: record.user_received_account.clone(),
        failure: failure_of(status),
    }
}

fn notice_report(notice: &RefundNotice) -> RefundReport {
    let status = refund_status(&notice.refund_status);
    let (amount, total) = amounts(notice.amount.as_ref());
    RefundReport {
        out_refund_no: notice.out_refund_no.clone(),
        out_trade_no: Some(notice.out_trade_no.clone()),
        transaction_id: notice.transaction_id.clone(),
        refund_id: notice.refund_id.clone(),
        status,
        amount,
        total,
        mchid: notice.mchid.clone(),
        succeeded_at: parse_time(notice.success_time.as_deref()),
        user_received_account: notice.user_received_account.clone(),
        failure: failure_of(status),
    }
}

/// What a refund notification says about the refunded payment: never a reason to mark it paid.
fn refunded_payment(notice: &RefundNotice) -> PaymentReport {
    PaymentReport {
        out_trade_no: notice.out_trade_no.clone(),
        state: PaymentState::Refunded,
        transaction_id: notice.transaction_id.clone(),
        amount_total: notice.amount.as_ref().and_then(|a| a.total),
        currency: None,
        appid: None,
        mchid: notice.mchid.clone(),
        payer: None,
        paid_at: None,
    }
}

/// WeChat Pay's failure reply: a non-2xx status with `{"code":"FAIL","message":…}`.
fn failure(status: StatusCode, message: &str) -> Response<Bytes> {
    let body = serde_json::json!({"code": "FAIL", "message": message}).to_string();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

#[async_trait]
impl Provider for V3Provider {
    fn name(&self) -> &'static str {
        "v3"
    }

    fn merchant(&self) -> MerchantIdentity {
        let credentials = self.client.credentials();
        MerchantIdentity {
            appid: Some(credentials.appid().to_owned()),
            mchid: Some(credentials.mchid().to_owned()),
        }
    }

    async fn prepay(
        &self,
        order: &Order,
        _client_ip: Option<IpAddr>,
    ) -> Result<Prepay, ProviderError> {
        let credentials = self.client.credentials();
        // The request is a function of the stored order only, so that a retry after a failure
        // (whose effect upstream is unknown) sends identical parameters and gets the same
        // prepay_id instead of OUT_TRADE_NO_USED. Hence no time_expire (WeChat Pay's own 2 h
        // expiry of the prepay_id is what the engine tracks) and no scene_info: the payer's
        // address is not stored and changes between retries (mobile networks, another proxy
        // hop), and it is optional for JSAPI.
        let request = JsapiPrepayRequest {
            appid: credentials.appid().to_owned(),
            mchid: credentials.mchid().to_owned(),
            description: order.description.clone(),
            out_trade_no: order.out_trade_no.clone(),
            time_expire: None,
            attach: order.attach.clone(),
            notify_url: self.notify_url.clone(),
            amount: PrepayAmount {
                total: order.amount,
                currency: order.currency.clone(),
            },
            payer: PrepayPayer {
                openid: order.openid.clone(),
            },
            scene_info: None,
        };
        let issued_at = self.client.clock().now();
        let response = self
            .client
            .jsapi_prepay(&request)
            .await
            .map_err(|e| provider_error(&e))?;
        let params = self.client.jsapi_params(&response.prepay_id);
        Ok(Prepay {
            prepay_id: response.prepay_id,
            expires_at: issued_at + PREPAY_ID_VALIDITY,
            params: params.into(),
        })
    }

    fn client_params(&self, _order: &Order, prepay_id: &str) -> Option<PaymentParams> {
        Some(self.client.jsapi_params(prepay_id).into())
    }

    async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        let verified = self
            .client
            .verify_notification(headers, body)
            .await
            .map_err(|error| {
                let (kind, status) = match &error {
                    NotificationError::TooLarge { .. } => {
                        (RejectionKind::TooLarge, StatusCode::PAYLOAD_TOO_LARGE)
                    }
                    NotificationError::Verify(VerifyError::Probe) => {
                        (RejectionKind::Probe, StatusCode::UNAUTHORIZED)
                    }
                    NotificationError::Verify(VerifyError::UnknownSerial(_)) => {
                        (RejectionKind::Unavailable, StatusCode::UNAUTHORIZED)
                    }
                    NotificationError::Verify(_) => {
                        (RejectionKind::BadSignature, StatusCode::UNAUTHORIZED)
                    }
                    _ => (RejectionKind::Malformed, StatusCode::BAD_REQUEST),
                };
                let message = error.to_string();
                NotificationRejection::new(kind, message.clone(), failure(status, &message))
            })?;
        let details = verified.resource.to_json();
        let (report, refund) = match &verified.resource {
            NotificationResource::Transaction(transaction) => (report(transaction), None),
            NotificationResource::Refund(notice) => {
                (refunded_payment(notice), Some(notice_report(notice)))
            }
        };
        Ok(PaymentNotification {
            event_id: verified.envelope.id,
            report,
            refund,
            details,
        })
    }

    fn acknowledge(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    }

    fn failure_reply(&self, status: StatusCode, message: &str) -> Response<Bytes> {
        failure(status, message)
    }

    async fn query(&self, order: &Order) -> Result<PaymentReport, ProviderError> {
        let out_trade_no: &OutTradeNo = &order.out_trade_no;
        self.client
            .query_by_out_trade_no(out_trade_no)
            .await
            .map(|transaction| report(&transaction))
            .map_err(|e| provider_error(&e))
    }

    async fn close(&self, order: &Order) -> Result<(), ProviderError> {
        self.client
            .close(&order.out_trade_no)
            .await
            .map_err(|e| provider_error(&e))
    }

    fn refunds_supported(&self) -> bool {
        true
    }

    async fn refund(&self, order: &Order, refund: &Refund) -> Result<RefundReport, ProviderError> {
        // The request is a function of the stored order and refund only, so a resubmission by
        // the reconciler is the same refund to WeChat Pay, not a second one.
        let request = DomesticRefundRequest {
            out_trade_no: order
                .transaction_id
                .is_none()
                .then(|| order.out_trade_no.clone()),
            transaction_id: order.transaction_id.clone(),
            out_refund_no: refund.out_refund_no.clone(),
            reason: refund.reason.clone(),
            notify_url: Some(self.notify_url.clone()),
            amount: RefundAmountRequest {
                refund: refund.amount.fen(),
                total: order.amount.fen(),
                currency: order.currency.clone(),
            },
        };
        self.client
            .refund(&request)
            .await
            .map(|record| record_report(&record))
            .map_err(|e| provider_error(&e))
    }

    async fn query_refund(
        &self,
        _order: &Order,
        refund: &Refund,
    ) -> Result<RefundReport, ProviderError> {
        self.client
            .query_refund(&refund.out_refund_no)
            .await
            .map(|record| record_report(&record))
            .map_err(|e| provider_error(&e))
    }
}

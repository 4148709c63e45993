//! WeChat Pay API v2 as a [`Provider`], over [`V2Client`].
//!
//! Refunds: `/secapi/pay/refund` with the merchant's API certificate (without one configured,
//! the provider says it cannot refund and the engine refuses refunds up front);
//! `result_code` `SUCCESS` is an accepted refund, kept `PROCESSING` until `/pay/refundquery` or
//! the refund notification settles it. `refund_status` `SUCCESS` → SUCCESS, `REFUNDCLOSE` →
//! CLOSED, `CHANGE` (退款异常) → ABNORMAL. `SYSTEMERROR` and `BIZERR_NEED_RETRY` ("retry with the
//! same parameters") and `FREQUENCY_LIMITED` leave it PROCESSING for the reconciler, which
//! asks again under the same `out_refund_no`; any other `err_code` is a refusal.

use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use time::Duration;

use crate::fields::FieldError;
use crate::order::{NewOrder, Order};
use crate::refund::{Refund, RefundStatus};
use crate::v2::client::RETRY_SAME_CODES;
use crate::v2::notification::{V2NotificationError, parse_refund_time, parse_time_end};
use crate::v2::{
    ACK_XML, DecryptedV2Refund, Params, RefundRequest, UnifiedOrderRequest, V2Client, V2Error,
    V2Notification,
};

use super::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    PaymentState, Prepay, Provider, ProviderError, ProviderErrorKind, RefundReport, RejectionKind,
};

/// `err_code`s that refuse nothing for good: the same request may be made again later.
const TRY_LATER_CODES: [&str; 1] = ["FREQUENCY_LIMITED"];

/// How long a `prepay_id` is valid (official docs: 2 hours).
pub const PREPAY_ID_VALIDITY: Duration = Duration::hours(2);

/// WeChat Pay API v2 (JSAPI).
#[derive(Debug, Clone)]
pub struct V2Provider {
    client: V2Client,
}

impl V2Provider {
    /// A provider over `client` (whose configuration holds the notify URL).
    pub fn new(client: V2Client) -> Self {
        Self { client }
    }

    /// The client.
    pub fn client(&self) -> &V2Client {
        &self.client
    }
}

fn provider_error(error: &V2Error) -> ProviderError {
    let (kind, upstream_code, message) = match error {
        V2Error::Business {
            err_code,
            err_code_des,
        } => {
            let kind = if RETRY_SAME_CODES.contains(&err_code.as_str())
                || TRY_LATER_CODES.contains(&err_code.as_str())
            {
                ProviderErrorKind::Unavailable
            } else {
                ProviderErrorKind::Rejected
            };
            let message = if err_code_des.is_empty() {
                err_code.clone()
            } else {
                err_code_des.clone()
            };
            (kind, Some(err_code.clone()), message)
        }
        V2Error::Return {
            return_code,
            return_msg,
        } => (
            ProviderErrorKind::Rejected,
            Some(return_code.clone()),
            return_msg.clone(),
        ),
        V2Error::Http(status) if status.is_server_error() => {
            (ProviderErrorKind::Unavailable, None, error.to_string())
        }
        V2Error::Http(_) => (ProviderErrorKind::Rejected, None, error.to_string()),
        V2Error::Deadline(_) => (ProviderErrorKind::Timeout, None, error.to_string()),
        V2Error::Transport { .. } => (ProviderErrorKind::Transport, None, error.to_string()),
        V2Error::ResponseTooLarge(_) | V2Error::Signature(_) | V2Error::Malformed(_) => {
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

fn non_empty(params: &Params, key: &str) -> Option<String> {
    params.get(key).filter(|v| !v.is_empty()).cloned()
}

/// What a verified notification or order query says.
fn report(params: &Params, state: PaymentState) -> PaymentReport {
    PaymentReport {
        out_trade_no: params.get("out_trade_no").cloned().unwrap_or_default(),
        state,
        transaction_id: non_empty(params, "transaction_id"),
        amount_total: params.get("total_fee").and_then(|v| v.parse().ok()),
        // fee_type: "默认人民币：CNY" (official docs) when absent.
        currency: Some(non_empty(params, "fee_type").unwrap_or_else(|| "CNY".to_owned())),
        appid: non_empty(params, "appid"),
        mchid: non_empty(params, "mch_id"),
        payer: non_empty(params, "openid"),
        paid_at: params.get("time_end").and_then(|v| parse_time_end(v)),
    }
}

fn trade_state(params: &Params) -> PaymentState {
    match params.get("trade_state").map(String::as_str).unwrap_or("") {
        "SUCCESS" => PaymentState::Paid,
        "NOTPAY" | "USERPAYING" | "ACCEPT" => PaymentState::NotPaid,
        "CLOSED" | "REVOKED" => PaymentState::Closed,
        "REFUND" => PaymentState::Refunded,
        "PAYERROR" => PaymentState::Failed(
            non_empty(params, "trade_state_desc").unwrap_or_else(|| "PAYERROR".to_owned()),
        ),
        other => PaymentState::Other(other.to_owned()),
    }
}

/// A `refund_status` as the engine spells it; an unknown one is kept PROCESSING.
fn refund_status(value: &str) -> RefundStatus {
    match value {
        "SUCCESS" => RefundStatus::Success,
        "REFUNDCLOSE" => RefundStatus::Closed,
        "CHANGE" => RefundStatus::Abnormal,
        "PROCESSING" => RefundStatus::Processing,
        other => {
            tracing::warn!(status = %other, "unknown API v2 refund status; kept PROCESSING");
            RefundStatus::Processing
        }
    }
}

fn refund_failure(status: RefundStatus) -> Option<String> {
    match status {
        RefundStatus::Abnormal => Some(
            "CHANGE: the payer's account could not take the refund; resolve it in the merchant platform"
                .to_owned(),
        ),
        RefundStatus::Closed => Some("REFUNDCLOSE: WeChat Pay closed the refund".to_owned()),
        RefundStatus::Processing | RefundStatus::Success => None,
    }
}

/// What the verified answer of `/secapi/pay/refund` says: an accepted refund.
fn accepted_refund(answer: &Params, refund: &Refund) -> RefundReport {
    let mut report = RefundReport::new(refund.out_refund_no.as_str(), RefundStatus::Processing);
    report.out_trade_no = non_empty(answer, "out_trade_no");
    report.transaction_id = non_empty(answer, "transaction_id");
    report.refund_id = non_empty(answer, "refund_id");
    report.amount = answer.get("refund_fee").and_then(|v| v.parse().ok());
    report.total = answer.get("total_fee").and_then(|v| v.parse().ok());
    report.mchid = non_empty(answer, "mch_id");
    report
}

/// Entry `_n` of a `/pay/refundquery` answer that is `out_refund_no`, as a report.
fn queried_refund(answer: &Params, out_refund_no: &str) -> Option<RefundReport> {
    let n = (0..crate::refund::MAX_REFUNDS_PER_ORDER).find(|n| {
        answer
            .get(&format!("out_refund_no_{n}"))
            .map(String::as_str)
            == Some(out_refund_no)
    })?;
    let field = |name: &str| non_empty(answer, &format!("{name}_{n}"));
    let status = refund_status(field("refund_status").as_deref().unwrap_or(""));
    let mut report = RefundReport::new(out_refund_no, status);
    report.out_trade_no = non_empty(answer, "out_trade_no");
    report.transaction_id = non_empty(answer, "transaction_id");
    report.refund_id = field("refund_id");
    report.amount = field("refund_fee").and_then(|v| v.parse().ok());
    report.total = answer.get("total_fee").and_then(|v| v.parse().ok());
    report.mchid = non_empty(answer, "mch_id");
    report.succeeded_at = field("refund_success_time").and_then(|v| parse_refund_time(&v));
    report.user_received_account = field("refund_recv_accout");
    report.failure = refund_failure(status);
    Some(report)
}

/// The notification of a refund whose `req_info` decrypted: what it says of the refund, and of
/// the refunded payment.
fn refund_notification(decrypted: DecryptedV2Refund) -> Result<PaymentNotification, &'static str> {
    let DecryptedV2Refund { envelope, info } = decrypted;
    let out_refund_no =
        non_empty(&info, "out_refund_no").ok_or("refund notification without out_refund_no")?;
    let out_trade_no =
        non_empty(&info, "out_trade_no").ok_or("refund notification without out_trade_no")?;
    let status_text =
        non_empty(&info, "refund_status").ok_or("refund notification without refund_status")?;
    let status = refund_status(&status_text);
    let refund_id = non_empty(&info, "refund_id");
    let total = info.get("total_fee").and_then(|v| v.parse().ok());
    let mut refund = RefundReport::new(out_refund_no.clone(), status);
    refund.out_trade_no = Some(out_trade_no.clone());
    refund.transaction_id = non_empty(&info, "transaction_id");
    refund.refund_id.clone_from(&refund_id);
    refund.amount = info.get("refund_fee").and_then(|v| v.parse().ok());
    refund.total = total;
    refund.mchid = non_empty(&envelope, "mch_id");
    refund.succeeded_at = info.get("success_time").and_then(|v| parse_refund_time(v));
    refund.user_received_account = non_empty(&info, "refund_recv_accout");
    refund.failure = refund_failure(status);
    let report = PaymentReport {
        out_trade_no,
        state: PaymentState::Refunded,
        transaction_id: refund.transaction_id.clone(),
        amount_total: total,
        currency: None,
        appid: non_empty(&envelope, "appid"),
        mchid: refund.mchid.clone(),
        payer: None,
        paid_at: None,
    };
    let event_id = format!(
        "v2-refund-{}-{status_text}",
        refund_id.as_deref().unwrap_or(&out_refund_no)
    );
    let details = serde_json::Value::Object(
        info.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    Ok(PaymentNotification {
        event_id,
        report,
        refund: Some(refund),
        details,
    })
}

fn xml_response(status: StatusCode, body: String) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .body(Bytes::from(body))
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

/// The failure reply: the given non-2xx status **and** `return_code` `FAIL`. The official docs
/// (支付结果通知) retry a notification whose answer is not the SUCCESS XML, and WeChat Pay
/// treats a non-2xx answer as not received, so either reading makes it retry.
fn failure(status: StatusCode, message: &str) -> Response<Bytes> {
    let status = if status.is_success() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    xml_response(status, crate::v2::notification::fail_xml(message))
}

/// API v2's `body` is `String(128)` and `attach` `String(127)`, counted in bytes (UTF-8): a
/// Chinese character takes three.
const BODY_MAX_BYTES: usize = 128;
const ATTACH_MAX_BYTES: usize = 127;

#[async_trait]
impl Provider for V2Provider {
    fn name(&self) -> &'static str {
        "v2"
    }

    /// The byte limits of the unified order's `body` and `attach`, which API v3 counts in
    /// characters.
    fn check_order(&self, order: &NewOrder) -> Result<(), FieldError> {
        let body = order.description.as_str().len();
        if body > BODY_MAX_BYTES {
            return Err(FieldError::new(
                "description",
                format!(
                    "API v2 takes a body of at most {BODY_MAX_BYTES} bytes (UTF-8), got {body}"
                ),
            ));
        }
        if let Some(attach) = &order.attach {
            let bytes = attach.as_str().len();
            if bytes > ATTACH_MAX_BYTES {
                return Err(FieldError::new(
                    "attach",
                    format!(
                        "API v2 takes an attach of at most {ATTACH_MAX_BYTES} bytes (UTF-8), got {bytes}"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn merchant(&self) -> MerchantIdentity {
        let config = self.client.config();
        MerchantIdentity {
            appid: Some(config.appid.clone()),
            mchid: Some(config.mchid.clone()),
        }
    }

    async fn prepay(
        &self,
        order: &Order,
        _client_ip: Option<IpAddr>,
    ) -> Result<Prepay, ProviderError> {
        // A function of the stored order only (and the configured spbill_create_ip, see
        // V2Config), so that a retry after an unknown outcome repeats the same business fields
        // and WeChat answers with the same prepay_id.
        let request = UnifiedOrderRequest {
            body: order.description.as_str().to_owned(),
            out_trade_no: order.out_trade_no.as_str().to_owned(),
            total_fee: order.amount.fen(),
            fee_type: order.currency.as_str().to_owned(),
            attach: order.attach.as_ref().map(|a| a.as_str().to_owned()),
            openid: order.openid.as_str().to_owned(),
        };
        let issued_at = self.client.clock().now();
        let (prepay_id, _) = self
            .client
            .unified_order(&request)
            .await
            .map_err(|e| provider_error(&e))?;
        let params = self.client.jsapi_params(&prepay_id);
        Ok(Prepay {
            prepay_id,
            expires_at: issued_at + PREPAY_ID_VALIDITY,
            params: params.into(),
        })
    }

    fn client_params(&self, _order: &Order, prepay_id: &str) -> Option<PaymentParams> {
        Some(self.client.jsapi_params(prepay_id).into())
    }

    async fn verify_notification(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        let notification = crate::v2::read_notification(body, &self.client.config().api_key)
            .map_err(|error| {
                let kind = match &error {
                    V2NotificationError::Signature(_) | V2NotificationError::RefundInfo(_) => {
                        RejectionKind::BadSignature
                    }
                    _ => RejectionKind::Malformed,
                };
                let status = match kind {
                    RejectionKind::BadSignature => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::BAD_REQUEST,
                };
                let message = error.to_string();
                NotificationRejection::new(kind, message.clone(), failure(status, &message))
            })?;
        let malformed = |message: &str| {
            NotificationRejection::new(
                RejectionKind::Malformed,
                message.to_owned(),
                failure(StatusCode::BAD_REQUEST, message),
            )
        };
        let verified = match notification {
            V2Notification::Payment(verified) => verified,
            V2Notification::Refund(decrypted) => {
                return refund_notification(decrypted).map_err(malformed);
            }
        };
        // WeChat signs a merchant's notifications with the merchant's sign type: another one
        // is not WeChat's, even if it verifies with the key.
        let expected = self.client.config().sign_type;
        if verified.sign_type != expected {
            let message = format!(
                "notification signed with {}, this merchant uses {}",
                verified.sign_type.as_str(),
                expected.as_str()
            );
            return Err(NotificationRejection::new(
                RejectionKind::BadSignature,
                message.clone(),
                failure(StatusCode::UNAUTHORIZED, &message),
            ));
        }
        let params = verified.params;
        if non_empty(&params, "out_trade_no").is_none() {
            return Err(malformed("verified notification without out_trade_no"));
        }
        let (state, event_id) = match params.get("result_code").map(String::as_str) {
            Some("SUCCESS") => {
                if params
                    .get("total_fee")
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none()
                {
                    return Err(malformed("payment notification without a valid total_fee"));
                }
                // Without a transaction id the engine records the payment for the operator and
                // lets the order query finish it (see the engine's notify route).
                let event_id = match non_empty(&params, "transaction_id") {
                    Some(transaction_id) => format!("v2-{transaction_id}"),
                    None => format!("v2-{}-SUCCESS-without-transaction", params["out_trade_no"]),
                };
                (PaymentState::Paid, event_id)
            }
            _ => {
                let code = non_empty(&params, "err_code").unwrap_or_else(|| "FAIL".to_owned());
                let description = non_empty(&params, "err_code_des").unwrap_or(code.clone());
                (
                    PaymentState::Failed(description),
                    format!("v2-{}-{code}", params["out_trade_no"]),
                )
            }
        };
        let report = report(&params, state);
        let details = serde_json::Value::Object(
            params
                .iter()
                .filter(|(k, _)| k.as_str() != "sign")
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        );
        Ok(PaymentNotification {
            event_id,
            report,
            refund: None,
            details,
        })
    }

    fn acknowledge(&self) -> Response<Bytes> {
        xml_response(StatusCode::OK, ACK_XML.to_owned())
    }

    fn failure_reply(&self, status: StatusCode, message: &str) -> Response<Bytes> {
        failure(status, message)
    }

    async fn query(&self, order: &Order) -> Result<PaymentReport, ProviderError> {
        let answer = self
            .client
            .order_query(order.out_trade_no.as_str())
            .await
            .map_err(|e| provider_error(&e))?;
        Ok(report(&answer, trade_state(&answer)))
    }

    async fn close(&self, order: &Order) -> Result<(), ProviderError> {
        self.client
            .close_order(order.out_trade_no.as_str())
            .await
            .map_err(|e| provider_error(&e))
    }

    fn refunds_supported(&self) -> bool {
        self.client.can_refund()
    }

    async fn refund(&self, order: &Order, refund: &Refund) -> Result<RefundReport, ProviderError> {
        // A function of the stored order and refund only: a resubmission under the same
        // out_refund_no is the same refund to WeChat Pay.
        let request = RefundRequest {
            transaction_id: order.transaction_id.clone(),
            out_trade_no: order.out_trade_no.as_str().to_owned(),
            out_refund_no: refund.out_refund_no.as_str().to_owned(),
            total_fee: order.amount.fen(),
            refund_fee: refund.amount.fen(),
            refund_fee_type: order.currency.as_str().to_owned(),
            refund_desc: refund.reason.as_ref().map(|r| r.as_str().to_owned()),
        };
        let answer = self
            .client
            .refund(&request)
            .await
            .map_err(|e| provider_error(&e))?;
        Ok(accepted_refund(&answer, refund))
    }

    async fn query_refund(
        &self,
        _order: &Order,
        refund: &Refund,
    ) -> Result<RefundReport, ProviderError> {
        let out_refund_no = refund.out_refund_no.as_str();
        let answer = self
            .client
            .refund_query(out_refund_no)
            .await
            .map_err(|e| provider_error(&e))?;
        queried_refund(&answer, out_refund_no).ok_or_else(|| ProviderError {
            kind: ProviderErrorKind::NotFound,
            upstream_code: None,
            message: format!("WeChat Pay's refund query does not list {out_refund_no}"),
            may_have_taken_effect: false,
        })
    }
}

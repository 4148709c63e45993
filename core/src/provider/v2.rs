//! WeChat Pay API v2 as a [`Provider`], over [`V2Client`].

use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use time::Duration;

use crate::order::Order;
use crate::v2::notification::{V2NotificationError, parse_time_end};
use crate::v2::{ACK_XML, Params, UnifiedOrderRequest, V2Client, V2Error};

use super::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    PaymentState, Prepay, Provider, ProviderError, ProviderErrorKind, RejectionKind,
};

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
            let kind = if err_code == "SYSTEMERROR" {
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

#[async_trait]
impl Provider for V2Provider {
    fn name(&self) -> &'static str {
        "v2"
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
        let verified = crate::v2::verify_notification(body, &self.client.config().api_key)
            .map_err(|error| {
                let kind = match &error {
                    V2NotificationError::Signature(_) => RejectionKind::BadSignature,
                    _ => RejectionKind::Malformed,
                };
                let status = match kind {
                    RejectionKind::BadSignature => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::BAD_REQUEST,
                };
                let message = error.to_string();
                NotificationRejection::new(kind, message.clone(), failure(status, &message))
            })?;
        let params = verified.params;
        let malformed = |message: &str| {
            NotificationRejection::new(
                RejectionKind::Malformed,
                message.to_owned(),
                failure(StatusCode::BAD_REQUEST, message),
            )
        };
        if non_empty(&params, "out_trade_no").is_none() {
            return Err(malformed("verified notification without out_trade_no"));
        }
        let (state, event_id) = match params.get("result_code").map(String::as_str) {
            Some("SUCCESS") => {
                let transaction_id = non_empty(&params, "transaction_id")
                    .ok_or_else(|| malformed("payment notification without transaction_id"))?;
                if params
                    .get("total_fee")
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none()
                {
                    return Err(malformed("payment notification without a valid total_fee"));
                }
                (PaymentState::Paid, format!("v2-{transaction_id}"))
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
}

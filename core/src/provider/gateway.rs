//! The seed-001 payment gateway as a [`Provider`], over [`GatewayClient`].
//!
//! The gateway documents precreate and the callback only, so [`Provider::query`] and
//! [`Provider::close`] answer a [`ProviderErrorKind::Local`] error (`UNSUPPORTED`) and
//! [`Provider::can_query`] is `false`: the engine's status route answers from the store, and
//! reconciliation never asks, closing an order locally once its prepay expired; orders settle
//! through the callback, which the gateway repeats (and which still marks a closed order paid).

use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use time::Duration;

use crate::gateway::{
    CallbackError, GatewayClient, GatewayError, PrecreateRequest, verify_callback,
};
use crate::order::Order;

use super::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    PaymentState, Prepay, Provider, ProviderError, ProviderErrorKind, RejectionKind, text_reply,
};

/// How long the parameters of a precreate can be used: the gateway passes WeChat Pay's JSAPI
/// parameters through, and a WeChat `prepay_id` is valid for 2 hours (official docs).
pub const PREPAY_ID_VALIDITY: Duration = Duration::hours(2);

/// The body of the reply that tells the gateway a callback was received: HTTP 200 with the
/// plain-text body `success`.
///
/// Seed 001 is silent on what the gateway treats as received (it only says the gateway "may
/// call back several times", so we must be idempotent). This is our choice: a 2xx with the
/// `success` word that WeChat-style gateways conventionally look for, and every failure reply is
/// a non-2xx with the body `fail`, so a gateway that looks at either the status or the body
/// reads both the same way.
pub const GATEWAY_ACK_BODY: &str = "success";

/// The body of every failure reply (with a non-2xx status); see [`GATEWAY_ACK_BODY`].
pub const GATEWAY_FAIL_BODY: &str = "fail";

/// The payment gateway of seed 001.
#[derive(Debug, Clone)]
pub struct GatewayProvider {
    client: GatewayClient,
}

impl GatewayProvider {
    /// A provider over `client`.
    pub fn new(client: GatewayClient) -> Self {
        Self { client }
    }

    /// The client.
    pub fn client(&self) -> &GatewayClient {
        &self.client
    }
}

fn provider_error(error: &GatewayError) -> ProviderError {
    let (kind, upstream_code, message) = match error {
        GatewayError::Gateway {
            status, message, ..
        } => (
            ProviderErrorKind::Rejected,
            Some(status.to_string()),
            message.clone(),
        ),
        GatewayError::Http(status) if status.is_server_error() => {
            (ProviderErrorKind::Unavailable, None, error.to_string())
        }
        GatewayError::Http(_) => (ProviderErrorKind::Rejected, None, error.to_string()),
        GatewayError::Deadline(_) => (ProviderErrorKind::Timeout, None, error.to_string()),
        GatewayError::Transport { .. } => (ProviderErrorKind::Transport, None, error.to_string()),
        GatewayError::ResponseTooLarge(_) | GatewayError::Malformed(_) => {
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
    text_reply::unsupported(format!("the gateway documents no {what} API (seed 001)"))
}

fn failure(status: StatusCode) -> Response<Bytes> {
    text_reply::text_failure(status, GATEWAY_FAIL_BODY)
}

#[async_trait]
impl Provider for GatewayProvider {
    fn name(&self) -> &'static str {
        "gateway"
    }

    /// No appid or merchant id of ours exists at the gateway; its `biz_id` stands in for the
    /// merchant id, and is cross-checked against the callback's `biz_id`.
    fn merchant(&self) -> MerchantIdentity {
        MerchantIdentity {
            appid: None,
            mchid: Some(self.client.config().biz_id.clone()),
        }
    }

    async fn prepay(
        &self,
        order: &Order,
        _client_ip: Option<IpAddr>,
    ) -> Result<Prepay, ProviderError> {
        let config = self.client.config();
        // A function of the stored order and the configuration only, so a repeated precreate
        // is identical. `ip` is this server's (seed 001), not the payer's.
        let request = PrecreateRequest {
            ucid: None,
            ip: config.ip.to_string(),
            openid: order.openid.as_str().to_owned(),
            biz_order_id: order.out_trade_no.as_str().to_owned(),
            pay_amount: order.amount.fen(),
            title: order.description.as_str().to_owned(),
            notify_url: config.notify_url.as_str().to_owned(),
            biz_id: config.biz_id.clone(),
            extra: order.attach.as_ref().map(|a| a.as_str().to_owned()),
        };
        let issued_at = self.client.clock().now();
        let params = self
            .client
            .precreate(&request)
            .await
            .map_err(|e| provider_error(&e))?;
        let prepay_id = params
            .package
            .strip_prefix("prepay_id=")
            .unwrap_or(&params.package)
            .to_owned();
        Ok(Prepay {
            prepay_id,
            expires_at: issued_at + PREPAY_ID_VALIDITY,
            params: params.into(),
        })
    }

    /// `None`: the gateway signs the parameters with a key we do not have, so the engine asks it
    /// again.
    fn client_params(&self, _order: &Order, _prepay_id: &str) -> Option<PaymentParams> {
        None
    }

    async fn verify_notification(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        let verified = verify_callback(body, &self.client.config().app_key).map_err(|error| {
            let (kind, status) = match &error {
                CallbackError::MissingSign | CallbackError::BadSignature => {
                    (RejectionKind::BadSignature, StatusCode::UNAUTHORIZED)
                }
                _ => (RejectionKind::Malformed, StatusCode::BAD_REQUEST),
            };
            NotificationRejection::new(kind, error.to_string(), failure(status))
        })?;
        let content = &verified.biz_content;
        let (state, event_id) = if content.trade_status == "SUCCESS" {
            (PaymentState::Paid, format!("gateway-{}", content.trade_id))
        } else {
            (
                PaymentState::Other(content.trade_status.clone()),
                format!("gateway-{}-{}", content.trade_id, content.trade_status),
            )
        };
        let report = PaymentReport {
            out_trade_no: content.biz_order_id.clone(),
            state,
            transaction_id: Some(content.trade_id.clone()),
            amount_total: Some(content.total_amount),
            currency: None,
            appid: None,
            mchid: verified
                .fields
                .get("biz_id")
                .filter(|b| !b.is_empty())
                .cloned(),
            payer: None,
            paid_at: content.paid_at(),
        };
        let mut details: serde_json::Map<String, serde_json::Value> = verified
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        details.insert("biz_content".to_owned(), verified.biz_content_json.clone());
        Ok(PaymentNotification {
            event_id,
            report,
            refund: None,
            details: serde_json::Value::Object(details),
        })
    }

    fn acknowledge(&self) -> Response<Bytes> {
        text_reply::text_response(StatusCode::OK, GATEWAY_ACK_BODY)
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
}

//! QFPay (seed 002) as a [`Provider`], over [`QfpayClient`].
//!
//! Choices where QFPay's documentation is silent, each made once here:
//! - **`txdtm`** is the order's `created_at`, written at the configured UTC offset (default
//!   +08:00, see [`crate::qfpay::local_time`]): a repeated payment must be identical.
//! - **Validity** of the JSAPI parameters: QFPay passes WeChat Pay's through, and a WeChat
//!   `prepay_id` is valid for 2 hours (official WeChat Pay docs): [`PREPAY_ID_VALIDITY`], counted
//!   from QFPay's `sysdtm` when that is earlier than our call (a repeated payment may answer
//!   with the parameters it made the first time).
//! - **`transaction_id`** of a payment is QFPay's `syssn`, not WeChat's `chnlsn`: `syssn` is in
//!   every notification and every enquiry entry (`chnlsn` is optional in both), so a payment
//!   reported by a notification and by a query carries the same id, and it is the number
//!   QFPay's refund API takes. `chnlsn` stays in the notification's details.
//! - **`paid_at`** is `paydtm` read at the configured offset; without it the engine records the
//!   time it learnt of the payment (`sysdtm` is when QFPay created the order, not when it was
//!   paid).
//! - **An enquiry with no entry** for the order means QFPay never recorded the payment request
//!   (the precreate failed before reaching it): the order is reported not paid, so that
//!   reconciliation closes it once its parameters expire, and a close answered "transaction does
//!   not exist" (`1136`) has nothing left to do.
//! - **Event id** of a notification: `qfpay-{syssn}` for a payment (QFPay repeats the same
//!   `syssn` on every retry); other kinds get their type and code in the id, so they can never
//!   shadow the payment's.
//! - **Refunds** (`POST /trade/v1/refund`): the refund's `out_trade_no` is the engine's
//!   `out_refund_no`, `syssn` the payment's (the order's `transaction_id`), and `txdtm` the
//!   stored refund's creation time, so a resubmission by the reconciler is the same request.
//!   `0000` is a finished refund (`SUCCESS`), `1143` / `1145` one still processing; a refusal
//!   closes it with QFPay's code. "Duplicate request" (`1102`) or "serial number repeats"
//!   (`2011`) mean QFPay may hold a refund under this number already, so the enquiry decides,
//!   never a second refund. The enquiry (`/trade/v1/query` by the refund's `out_trade_no`)
//!   reads the entry whose `order_type` is `refund`: `0000` success, in-progress codes
//!   processing, any other code closed; no entry means QFPay never recorded it.
//! - **Refund notifications** (`notify_type` `refund`, only sent for successful refunds) are
//!   reported as a `SUCCESS` [`super::RefundReport`] of the refund numbered by their
//!   `out_trade_no`, with `syssn` as the refund id and `orig_syssn` (when sent) as the refunded
//!   payment.
//! - **`goods_name`** is the order description cut to QFPay's limit (letters, digits and
//!   spaces, at most [`GOODS_NAME_MAX_CHARS`] characters), or left out when nothing remains.

use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use time::Duration;

use crate::order::Order;
use crate::qfpay::client::GOODS_NAME_MAX_CHARS;
use crate::qfpay::local_time;
use crate::qfpay::{
    CloseRequest, NotifyType, PaymentRequest, QfpayClient, QfpayError, QfpayNotification,
    QfpayNotificationError, RefundRequest, RefundResponse, RespcdClass, Transaction,
    verify_notification,
};
use crate::refund::{Refund, RefundStatus};

use super::{
    MerchantIdentity, NotificationRejection, PaymentNotification, PaymentParams, PaymentReport,
    PaymentState, Prepay, Provider, ProviderError, ProviderErrorKind, RefundReport, RejectionKind,
    text_reply,
};

/// How long the parameters of a payment can be used: a WeChat `prepay_id` is valid for 2 hours.
pub const PREPAY_ID_VALIDITY: Duration = Duration::hours(2);

/// The body of the acknowledgement, with HTTP 200: "return 200 OK with body SUCCESS"
/// (<https://sdk.qfapi.com/docs/common-api/async-notifications>).
pub const QFPAY_ACK_BODY: &str = "SUCCESS";

/// The body of every failure reply, with a non-2xx status (anything but 200 + `SUCCESS` makes
/// QFPay retry).
pub const QFPAY_FAIL_BODY: &str = "FAIL";

/// The prefix of QFPay event ids in the engine's inbox.
pub const EVENT_ID_PREFIX: &str = "qfpay-";

/// `respcd` of a close answered for an order that is already closed or cancelled, or that QFPay
/// never recorded (QFPay's status code table: `1142` order already closed, `1263` cancelled,
/// `1264` closed, `1136` transaction does not exist): the close has nothing left to do.
const ALREADY_CLOSED: [&str; 4] = ["1142", "1263", "1264", "1136"];

/// `respcd` of a refund request QFPay may already hold under this `out_trade_no`: `1102`
/// duplicate request, `2011` transaction serial number repeats. The enquiry tells what it is.
const REFUND_NUMBER_KNOWN: [&str; 2] = ["1102", "2011"];

/// QFPay.
#[derive(Debug, Clone)]
pub struct QfpayProvider {
    client: QfpayClient,
}

impl QfpayProvider {
    /// A provider over `client` (whose configuration holds the currency, `mchid` and notify
    /// URL).
    pub fn new(client: QfpayClient) -> Self {
        Self { client }
    }

    /// The client (the openid flow lives there).
    pub fn client(&self) -> &QfpayClient {
        &self.client
    }

    /// The payment request for `order`: a function of the stored order only.
    pub fn payment_request(order: &Order) -> PaymentRequest {
        PaymentRequest {
            out_trade_no: order.out_trade_no.as_str().to_owned(),
            txamt: order.amount.fen(),
            txcurrcd: order.currency.as_str().to_owned(),
            txdtm: order.created_at,
            sub_openid: order.openid.as_str().to_owned(),
            goods_name: goods_name(order.description.as_str()),
        }
    }

    fn parse_time(&self, text: Option<&str>) -> Option<time::OffsetDateTime> {
        local_time::parse(text?, self.client.config().utc_offset)
    }

    /// The refund request for `refund` of `order`: a function of the stored records only.
    pub fn refund_request(order: &Order, refund: &Refund) -> Result<RefundRequest, ProviderError> {
        let Some(syssn) = order.transaction_id.clone() else {
            return Err(ProviderError {
                kind: ProviderErrorKind::Local,
                upstream_code: None,
                message: format!(
                    "order {} has no QFPay syssn to refund against",
                    order.out_trade_no
                ),
                may_have_taken_effect: false,
            });
        };
        Ok(RefundRequest {
            syssn,
            out_trade_no: refund.out_refund_no.as_str().to_owned(),
            txamt: refund.amount.fen(),
            txdtm: refund.created_at,
        })
    }

    fn refund_report(&self, refund: &Refund, response: &RefundResponse) -> RefundReport {
        let status = if response.in_progress {
            RefundStatus::Processing
        } else {
            RefundStatus::Success
        };
        let mut report = RefundReport::new(refund.out_refund_no.as_str(), status);
        report.refund_id.clone_from(&response.syssn);
        report.transaction_id.clone_from(&response.orig_syssn);
        report.amount = response.txamt;
        if status == RefundStatus::Success {
            report.succeeded_at = self.parse_time(response.sysdtm.as_deref());
        }
        report
    }

    /// What an enquiry entry of a refund says about it.
    fn refund_entry_report(&self, refund: &Refund, entry: &Transaction) -> RefundReport {
        let class = crate::qfpay::classify(&entry.respcd);
        let status = match class {
            RespcdClass::Success => RefundStatus::Success,
            RespcdClass::InProgress | RespcdClass::SystemError => RefundStatus::Processing,
            RespcdClass::Rejected => RefundStatus::Closed,
        };
        let mut report = RefundReport::new(refund.out_refund_no.as_str(), status);
        report.refund_id = Some(entry.syssn.clone());
        report.transaction_id.clone_from(&entry.orig_syssn);
        report.amount = entry.txamt;
        match status {
            RefundStatus::Success => {
                report.succeeded_at = self
                    .parse_time(entry.paydtm.as_deref())
                    .or_else(|| self.parse_time(entry.sysdtm.as_deref()));
            }
            RefundStatus::Closed => {
                report.failure = Some(match &entry.message {
                    Some(message) => format!("{}: {message}", entry.respcd),
                    None => entry.respcd.clone(),
                });
            }
            _ => {}
        }
        report
    }

    fn refund_notification_report(&self, notification: &QfpayNotification) -> RefundReport {
        let mut report =
            RefundReport::new(notification.out_trade_no.as_str(), RefundStatus::Success);
        report.refund_id = Some(notification.syssn.clone());
        report.transaction_id.clone_from(&notification.orig_syssn);
        report.amount = Some(notification.txamt);
        report.mchid.clone_from(&notification.mchid);
        report.succeeded_at = self
            .parse_time(notification.paydtm.as_deref())
            .or_else(|| self.parse_time(notification.sysdtm.as_deref()));
        report
    }

    fn report(&self, transaction: &Transaction) -> PaymentReport {
        PaymentReport {
            out_trade_no: transaction.out_trade_no.clone(),
            state: transaction_state(transaction),
            transaction_id: Some(transaction.syssn.clone()),
            amount_total: transaction.txamt,
            currency: transaction.txcurrcd.clone(),
            appid: None,
            mchid: None,
            payer: None,
            paid_at: self.parse_time(transaction.paydtm.as_deref()),
        }
    }
}

/// `description` as a QFPay `goods_name`: letters, digits and spaces only, at most
/// [`GOODS_NAME_MAX_CHARS`] characters, trimmed; `None` when empty.
pub fn goods_name(description: &str) -> Option<String> {
    let kept: String = description
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .take(GOODS_NAME_MAX_CHARS)
        .collect();
    let trimmed = kept.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Where an enquiry entry says the payment stands.
fn transaction_state(transaction: &Transaction) -> PaymentState {
    let cancel = transaction.cancel.as_deref().unwrap_or("0");
    match (transaction.respcd.as_str(), cancel) {
        // 2 = cancelled (MPM), whatever the payment's code.
        (_, "2") => PaymentState::Closed,
        // 1 = reversed or refunded, 3 = refunded.
        ("0000", "1" | "3") => PaymentState::Refunded,
        // 0 = not cancelled, 4 = pre-authorisation finished, 5 = partially refunded: paid.
        ("0000", _) => PaymentState::Paid,
        ("1142" | "1181" | "1263" | "1264", _) => PaymentState::Closed,
        (code, _) => match crate::qfpay::classify(code) {
            RespcdClass::InProgress => PaymentState::NotPaid,
            _ => PaymentState::Failed(match &transaction.message {
                Some(message) => format!("{code}: {message}"),
                None => code.to_owned(),
            }),
        },
    }
}

fn provider_error(error: &QfpayError) -> ProviderError {
    let (kind, upstream_code, message) = match error {
        QfpayError::Upstream {
            respcd,
            message,
            class,
        } => {
            let kind = match class {
                RespcdClass::InProgress | RespcdClass::SystemError => {
                    ProviderErrorKind::Unavailable
                }
                _ => ProviderErrorKind::Rejected,
            };
            (kind, Some(respcd.clone()), message.clone())
        }
        // 408 and 429 are "later", not "no".
        QfpayError::Http(status)
            if status.is_server_error()
                || *status == StatusCode::REQUEST_TIMEOUT
                || *status == StatusCode::TOO_MANY_REQUESTS =>
        {
            (ProviderErrorKind::Unavailable, None, error.to_string())
        }
        QfpayError::Http(_) => (ProviderErrorKind::Rejected, None, error.to_string()),
        QfpayError::Deadline(_) => (ProviderErrorKind::Timeout, None, error.to_string()),
        QfpayError::Transport { .. } => (ProviderErrorKind::Transport, None, error.to_string()),
        QfpayError::ResponseTooLarge(_) | QfpayError::Malformed(_) => {
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

fn failure(status: StatusCode) -> Response<Bytes> {
    text_reply::text_failure(status, QFPAY_FAIL_BODY)
}

fn rejection(error: &QfpayNotificationError) -> NotificationRejection {
    let (kind, status) = match error {
        QfpayNotificationError::TooLarge(_) => {
            (RejectionKind::TooLarge, StatusCode::PAYLOAD_TOO_LARGE)
        }
        QfpayNotificationError::MissingSignature | QfpayNotificationError::BadSignature => {
            (RejectionKind::BadSignature, StatusCode::UNAUTHORIZED)
        }
        _ => (RejectionKind::Malformed, StatusCode::BAD_REQUEST),
    };
    NotificationRejection::new(kind, error.to_string(), failure(status))
}

#[async_trait]
impl Provider for QfpayProvider {
    fn name(&self) -> &'static str {
        "qfpay"
    }

    /// No appid of ours exists at QFPay (the payment runs under QFPay's or the merchant's
    /// official account); the `mchid`, when QFPay assigned one, is cross-checked against the
    /// notification's (which QFPay only sends to agents).
    fn merchant(&self) -> MerchantIdentity {
        MerchantIdentity {
            appid: None,
            mchid: self.client.config().mchid.clone(),
        }
    }

    fn currency(&self) -> crate::fields::Currency {
        self.client.config().currency.clone()
    }

    async fn prepay(
        &self,
        order: &Order,
        _client_ip: Option<IpAddr>,
    ) -> Result<Prepay, ProviderError> {
        let request = Self::payment_request(order);
        let issued_at = self.client.clock().now();
        let response = self
            .client
            .payment(&request)
            .await
            .map_err(|e| provider_error(&e))?;
        // A repeated payment may hand back the parameters QFPay made earlier (its `sysdtm`): count
        // their validity from whichever is earlier.
        let made_at = self
            .parse_time(response.raw.get("sysdtm").and_then(|v| v.as_str()))
            .map_or(issued_at, |sysdtm| sysdtm.min(issued_at));
        Ok(Prepay {
            prepay_id: response.prepay_id().to_owned(),
            expires_at: made_at + PREPAY_ID_VALIDITY,
            params: response.pay_params.into(),
        })
    }

    /// `None`: QFPay signs the parameters with a key we do not have, so the engine asks it
    /// again (with identical parameters, which QFPay answers with the same payment).
    fn client_params(&self, _order: &Order, _prepay_id: &str) -> Option<PaymentParams> {
        None
    }

    async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification, NotificationRejection> {
        let notification = verify_notification(headers, body, &self.client.config().client_key)
            .map_err(|e| rejection(&e))?;
        let (state, event_id) = if notification.is_paid() {
            (
                PaymentState::Paid,
                format!("{EVENT_ID_PREFIX}{}", notification.syssn),
            )
        } else {
            let kind = match &notification.notify_type {
                NotifyType::Payment => "PAYMENT",
                NotifyType::Refund => "REFUND",
                NotifyType::Other(other) => other.as_str(),
            };
            let code = notification.respcd.as_deref().unwrap_or("-");
            let state = match &notification.notify_type {
                NotifyType::Refund => PaymentState::Refunded,
                NotifyType::Payment => PaymentState::Failed(format!(
                    "status {:?}, respcd {code}",
                    notification.status.as_deref().unwrap_or("")
                )),
                NotifyType::Other(other) => PaymentState::Other(other.to_ascii_uppercase()),
            };
            (
                state,
                format!(
                    "{EVENT_ID_PREFIX}{}-{}-{code}",
                    notification.syssn,
                    kind.to_ascii_lowercase()
                ),
            )
        };
        // A refund notification numbers the refund, not the order: the engine finds the order
        // through the stored refund.
        let refund = (notification.notify_type == NotifyType::Refund
            && notification
                .respcd
                .as_deref()
                .is_none_or(|code| code == "0000"))
        .then(|| self.refund_notification_report(&notification));
        let report = PaymentReport {
            out_trade_no: if refund.is_some() {
                String::new()
            } else {
                notification.out_trade_no.clone()
            },
            state,
            transaction_id: Some(notification.syssn.clone()),
            amount_total: Some(notification.txamt),
            currency: notification.txcurrcd.clone(),
            appid: None,
            mchid: notification.mchid.clone(),
            payer: None,
            paid_at: self.parse_time(notification.paydtm.as_deref()),
        };
        Ok(PaymentNotification {
            event_id,
            report,
            refund,
            details: notification.fields,
        })
    }

    fn acknowledge(&self) -> Response<Bytes> {
        text_reply::text_response(StatusCode::OK, QFPAY_ACK_BODY)
    }

    fn failure_reply(&self, status: StatusCode, _message: &str) -> Response<Bytes> {
        failure(status)
    }

    async fn query(&self, order: &Order) -> Result<PaymentReport, ProviderError> {
        let out_trade_no = order.out_trade_no.as_str();
        let transactions = self
            .client
            .query_since(out_trade_no, Some(order.created_at))
            .await
            .map_err(|e| provider_error(&e))?;
        match transactions
            .iter()
            .find(|t| t.is_payment() && t.out_trade_no == out_trade_no)
        {
            Some(payment) => Ok(self.report(payment)),
            None => Ok(PaymentReport {
                out_trade_no: out_trade_no.to_owned(),
                state: PaymentState::NotPaid,
                transaction_id: None,
                amount_total: None,
                currency: None,
                appid: None,
                mchid: None,
                payer: None,
                paid_at: None,
            }),
        }
    }

    async fn close(&self, order: &Order) -> Result<(), ProviderError> {
        let request = CloseRequest {
            out_trade_no: order.out_trade_no.as_str().to_owned(),
            txamt: order.amount.fen(),
            txdtm: order.created_at,
        };
        match self.client.close(&request).await {
            Ok(_) => Ok(()),
            Err(QfpayError::Upstream { respcd, .. })
                if ALREADY_CLOSED.contains(&respcd.as_str()) =>
            {
                Ok(())
            }
            Err(error) => Err(provider_error(&error)),
        }
    }

    fn refunds_supported(&self) -> bool {
        true
    }

    async fn refund(&self, order: &Order, refund: &Refund) -> Result<RefundReport, ProviderError> {
        let request = Self::refund_request(order, refund)?;
        match self.client.refund(&request).await {
            Ok(response) => Ok(self.refund_report(refund, &response)),
            Err(QfpayError::Upstream { respcd, .. })
                if REFUND_NUMBER_KNOWN.contains(&respcd.as_str()) =>
            {
                match self.query_refund(order, refund).await {
                    // QFPay refuses the number but has no refund under it: the number is
                    // spent on something else, so this refund cannot be made with it.
                    Err(error) if error.kind == ProviderErrorKind::NotFound => Err(ProviderError {
                        kind: ProviderErrorKind::Rejected,
                        upstream_code: Some(respcd),
                        message: format!(
                            "QFPay refuses the refund number {} and has no refund under it",
                            refund.out_refund_no
                        ),
                        may_have_taken_effect: false,
                    }),
                    other => other,
                }
            }
            Err(error) => Err(provider_error(&error)),
        }
    }

    async fn query_refund(
        &self,
        _order: &Order,
        refund: &Refund,
    ) -> Result<RefundReport, ProviderError> {
        let out_refund_no = refund.out_refund_no.as_str();
        let transactions = self
            .client
            .query_since(out_refund_no, Some(refund.created_at))
            .await
            .map_err(|e| provider_error(&e))?;
        match transactions
            .iter()
            .find(|t| t.is_refund() && t.out_trade_no == out_refund_no)
        {
            Some(entry) => Ok(self.refund_entry_report(refund, entry)),
            None => Err(ProviderError {
                kind: ProviderErrorKind::NotFound,
                upstream_code: None,
                message: format!("QFPay has no refund {out_refund_no}"),
                may_have_taken_effect: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goods_names_fit_qfpay_limits() {
        assert_eq!(
            goods_name("云队长医药连锁管理系统").as_deref(),
            Some("云队长医药连锁管理系统")
        );
        assert_eq!(
            goods_name("T-shirt (red), size M!").as_deref(),
            Some("Tshirt red size M")
        );
        assert_eq!(
            goods_name("abcdefghijklmnopqrstuvwxyz").as_deref(),
            Some("abcdefghijklmnopqrst")
        );
        assert_eq!(goods_name("!!!"), None);
    }

    fn entry(respcd: &str, cancel: &str) -> Transaction {
        Transaction {
            syssn: "1".into(),
            out_trade_no: "o".into(),
            txamt: Some(1),
            txcurrcd: None,
            pay_type: None,
            respcd: respcd.into(),
            message: Some("m".into()),
            cancel: Some(cancel.into()),
            order_type: None,
            txdtm: None,
            sysdtm: None,
            paydtm: None,
            chnlsn: None,
            orig_syssn: None,
            raw: serde_json::Value::Null,
        }
    }

    #[test]
    fn enquiry_states() {
        assert_eq!(transaction_state(&entry("0000", "0")), PaymentState::Paid);
        assert_eq!(transaction_state(&entry("0000", "5")), PaymentState::Paid);
        assert_eq!(
            transaction_state(&entry("0000", "3")),
            PaymentState::Refunded
        );
        assert_eq!(
            transaction_state(&entry("1143", "0")),
            PaymentState::NotPaid
        );
        assert_eq!(
            transaction_state(&entry("1145", "0")),
            PaymentState::NotPaid
        );
        assert_eq!(transaction_state(&entry("1143", "2")), PaymentState::Closed);
        assert_eq!(transaction_state(&entry("1181", "0")), PaymentState::Closed);
        assert_eq!(
            transaction_state(&entry("1205", "0")),
            PaymentState::Failed("1205: m".into())
        );
    }
}

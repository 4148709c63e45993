//! Operator routes behind the admin token: `POST` and `GET {prefix}/orders/{out_trade_no}/refunds`.
//!
//! They are mounted only when the engine has an [`AdminToken`]; every request must carry it as
//! `Authorization: Bearer <token>`, compared in constant time. Each action is logged (target
//! `wxpay::admin`) with what it changed, never with the token.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::fields::{Amount, OutRefundNo, OutTradeNo, RefundReason};
use crate::refund::Refund;

use super::refund::{RefundError, RefundRequest};
use super::{EngineError, Inner, reply};

/// The most bytes a refund request body may have.
pub const REFUND_BODY_LIMIT: usize = 4 * 1024;

/// The operator's bearer token for the admin routes: at least [`AdminToken::MIN_LEN`]
/// characters. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken {
    /// SHA-256 of the token: comparing digests takes the same time whatever the lengths.
    digest: [u8; 32],
}

impl AdminToken {
    /// The shortest token accepted.
    pub const MIN_LEN: usize = 32;

    /// A token, refused when shorter than [`AdminToken::MIN_LEN`] characters or when it has
    /// whitespace or control characters (it travels in a header).
    pub fn new(token: impl AsRef<str>) -> Result<Self, EngineError> {
        let token = token.as_ref();
        if token.chars().count() < Self::MIN_LEN {
            return Err(EngineError::AdminToken(format!(
                "must be at least {} characters",
                Self::MIN_LEN
            )));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EngineError::AdminToken(
                "must not contain whitespace or control characters".to_owned(),
            ));
        }
        Ok(Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether `headers` carry this token as `Authorization: Bearer …`.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        bool::from(self.digest.ct_eq(&digest))
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The `401` of a request without the admin token.
pub(super) fn unauthorized() -> Response<Bytes> {
    let mut response = reply::error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "this route needs the admin token: Authorization: Bearer <token>",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// The body of `POST …/refunds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    amount: u64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    out_refund_no: Option<String>,
}

/// A refund as the routes answer it.
#[derive(Debug, Serialize)]
struct RefundReply<'a> {
    #[serde(flatten)]
    refund: &'a Refund,
}

/// The answer of `GET …/refunds`.
#[derive(Debug, Serialize)]
struct RefundListReply<'a> {
    out_trade_no: &'a str,
    amount: u64,
    refunded: u64,
    refund_held: u64,
    refundable: u64,
    fully_refunded: bool,
    refunds: Vec<RefundReply<'a>>,
}

/// The answer of a refused refund: the error and the closed refund.
#[derive(Debug, Serialize)]
struct RefusedReply<'a> {
    #[serde(flatten)]
    error: reply::ErrorBody,
    refund: RefundReply<'a>,
}

/// The order number of `…/orders/{out_trade_no}/refunds`, percent-decoded.
pub(super) fn order_number(segment: &str) -> Result<OutTradeNo, crate::fields::FieldError> {
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    OutTradeNo::try_from(decoded.as_ref())
}

pub(super) async fn refunds(
    inner: &Inner,
    method: &http::Method,
    segment: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Bytes> {
    let Some(token) = &inner.admin_token else {
        return reply::error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such wxpay route");
    };
    if !token.authorizes(headers) {
        tracing::warn!(target: "wxpay::admin", "admin route refused: missing or wrong token");
        return unauthorized();
    }
    let out_trade_no = match order_number(segment) {
        Ok(no) => no,
        Err(error) => return reply::field_error(&error),
    };
    if method == http::Method::POST {
        create_refund(inner, &out_trade_no, headers, body).await
    } else {
        list_refunds(inner, &out_trade_no).await
    }
}

async fn create_refund(
    inner: &Inner,
    out_trade_no: &OutTradeNo,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Bytes> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/json"));
    if !is_json {
        return reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the refund as application/json",
        );
    }
    let parsed: RefundBody = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(error) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                "INVALID_BODY",
                format!(
                    "expected {{\"amount\": fen, \"reason\"?: text, \"out_refund_no\"?: text}}: {error}"
                ),
            );
        }
    };
    let request = match refund_request(parsed) {
        Ok(request) => request,
        Err(error) => return reply::field_error(&error),
    };
    let requested = request.amount.fen();
    match super::refund::refund(inner, out_trade_no, request).await {
        Ok(outcome) => {
            tracing::info!(
                target: "wxpay::admin",
                action = "refund",
                out_trade_no = %out_trade_no,
                out_refund_no = %outcome.refund.out_refund_no,
                amount = outcome.refund.amount.fen(),
                status = %outcome.refund.status,
                created = outcome.created,
                "operator refund"
            );
            let status = if outcome.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            reply::json(
                status,
                &RefundReply {
                    refund: &outcome.refund,
                },
            )
        }
        Err(error) => {
            tracing::info!(
                target: "wxpay::admin",
                action = "refund",
                out_trade_no = %out_trade_no,
                amount = requested,
                %error,
                "operator refund refused"
            );
            refund_error(inner, &error)
        }
    }
}

fn refund_request(body: RefundBody) -> Result<RefundRequest, crate::fields::FieldError> {
    Ok(RefundRequest {
        amount: Amount::from_fen(body.amount)?,
        reason: body
            .reason
            .filter(|reason| !reason.is_empty())
            .map(RefundReason::try_from)
            .transpose()?,
        out_refund_no: body.out_refund_no.map(OutRefundNo::try_from).transpose()?,
    })
}

fn refund_error(inner: &Inner, error: &RefundError) -> Response<Bytes> {
    let message = error.to_string();
    match error {
        RefundError::OrderNotFound(_) => {
            reply::error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", message)
        }
        RefundError::OrderNotPaid { .. } => {
            reply::error(StatusCode::CONFLICT, "ORDER_NOT_PAID", message)
        }
        RefundError::ExceedsPaid { .. } => {
            reply::error(StatusCode::CONFLICT, "REFUND_EXCEEDS_PAID", message)
        }
        RefundError::TooManyRefunds(_) => {
            reply::error(StatusCode::CONFLICT, "TOO_MANY_REFUNDS", message)
        }
        RefundError::NumberTaken(_) => {
            reply::error(StatusCode::CONFLICT, "REFUND_NUMBER_TAKEN", message)
        }
        RefundError::NumberReused { .. } => {
            reply::error(StatusCode::CONFLICT, "REFUND_NUMBER_REUSED", message)
        }
        RefundError::Field(field) => reply::field_error(field),
        RefundError::NotSupported(_) => {
            reply::error(StatusCode::NOT_IMPLEMENTED, "REFUND_NOT_SUPPORTED", message)
        }
        RefundError::Refused { refund, error } => reply::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RefusedReply {
                error: reply::ErrorBody {
                    code: "REFUND_REFUSED".to_owned(),
                    message: format!(
                        "{} refused the refund; it is closed and its amount released",
                        inner.provider.name()
                    ),
                    field: None,
                    upstream_code: error.upstream_code.clone(),
                    upstream_message: Some(error.message.clone()),
                },
                refund: RefundReply { refund },
            },
        ),
        RefundError::Store(error) => {
            tracing::error!(%error, "the store failed during a refund");
            reply::store_unavailable()
        }
    }
}

async fn list_refunds(inner: &Inner, out_trade_no: &OutTradeNo) -> Response<Bytes> {
    let order = match inner.store.get(out_trade_no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            return reply::error(
                StatusCode::NOT_FOUND,
                "ORDER_NOT_FOUND",
                format!("no order {out_trade_no}"),
            );
        }
        Err(error) => {
            tracing::error!(%error, "reading the order failed");
            return reply::store_unavailable();
        }
    };
    let refunds = match inner.store.refunds_for_order(out_trade_no).await {
        Ok(refunds) => refunds,
        Err(error) => {
            tracing::error!(%error, "reading the refunds failed");
            return reply::store_unavailable();
        }
    };
    reply::json(
        StatusCode::OK,
        &RefundListReply {
            out_trade_no: order.out_trade_no.as_str(),
            amount: order.amount.fen(),
            refunded: order.refunded_fen,
            refund_held: order.refund_held_fen,
            refundable: order.refundable_fen(),
            fully_refunded: order.is_fully_refunded(),
            refunds: refunds
                .iter()
                .map(|refund| RefundReply { refund })
                .collect(),
        },
    )
}

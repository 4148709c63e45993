//! `POST {prefix}/precreate`: validate → checkout policy → insert CREATED → prepay → PENDING →
//! signed client parameters.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::fields::{FieldError, OpenId, OutTradeNo};
use crate::order::{NewOrder, Order, OrderStatus, Transition};
use crate::provider::PaymentParams;
use crate::store::{InsertOutcome, StoreError};

use super::checkout::CheckoutRequest;
use super::{Inner, reply};

#[derive(Serialize)]
struct PrecreateReply<'a> {
    out_trade_no: &'a str,
    #[serde(flatten)]
    params: &'a PaymentParams,
}

pub(super) async fn handle(
    inner: &Inner,
    headers: &HeaderMap,
    body: &Bytes,
    client_ip: Option<IpAddr>,
) -> Response<Bytes> {
    match create(inner, headers, body, client_ip).await {
        Ok(created) => success(&created.out_trade_no, &created.params),
        Err(refusal) => refusal,
    }
}

/// A `PENDING` order and what its payer's client needs to pay it.
pub(super) struct Created {
    pub(super) out_trade_no: OutTradeNo,
    pub(super) params: PaymentParams,
}

/// Everything of a precreate but the answer's shape: the order and its client parameters, or
/// the error reply (the precreate route's JSON error).
pub(super) async fn create(
    inner: &Inner,
    headers: &HeaderMap,
    body: &Bytes,
    client_ip: Option<IpAddr>,
) -> Result<Created, Response<Bytes>> {
    let request = match parse(inner, headers, body) {
        Ok(request) => request,
        Err(bad) => return Err(bad.into_response()),
    };
    let checkout = match inner.policy.checkout(&request, headers).await {
        Ok(checkout) => checkout,
        Err(rejection) => return Err(reply::rejection(rejection)),
    };
    // The policy decides the number: the client's, one of its own, or a generated one.
    let out_trade_no = checkout
        .out_trade_no
        .clone()
        .unwrap_or_else(OutTradeNo::generate);
    let merchant = inner.provider.merchant();
    let new_order = NewOrder {
        out_trade_no: out_trade_no.clone(),
        provider: inner.provider.name().to_owned(),
        appid: merchant.appid,
        mchid: merchant.mchid,
        openid: request.openid.clone(),
        amount: checkout.amount,
        currency: inner.provider.currency(),
        description: checkout.description,
        attach: checkout.attach,
    };
    if let Err(error) = inner.provider.check_order(&new_order) {
        return Err(reply::field_error(&error));
    }
    let order = match inner.store.insert_if_absent(new_order.clone()).await {
        Ok(InsertOutcome::Inserted(order)) => order,
        Ok(InsertOutcome::Existing(order)) => {
            if let Some(conflict) = existing_conflict(&order, &new_order) {
                return Err(conflict);
            }
            order
        }
        Err(error) => {
            tracing::error!(%error, "storing the order failed");
            return Err(reply::store_unavailable());
        }
    };
    tracing::Span::current().record("out_trade_no", order.out_trade_no.as_str());

    if let Some(params) = reusable_params(inner, &order) {
        return Ok(created(&order, params));
    }
    let prepay = match inner
        .metrics
        .upstream("prepay", inner.provider.prepay(&order, client_ip))
        .await
    {
        Ok(prepay) => prepay,
        Err(error) => {
            // The order stays as it was (CREATED, or PENDING with an expired prepay_id): a retry
            // sends identical parameters, which the upstream answers with the same prepay_id
            // if the failed call did take effect.
            tracing::warn!(
                out_trade_no = %order.out_trade_no,
                kind = ?error.kind,
                upstream_code = error.upstream_code.as_deref(),
                may_have_taken_effect = error.may_have_taken_effect,
                "prepay failed"
            );
            return Err(reply::upstream_error(inner.provider.name(), &error));
        }
    };
    let transition = Transition::Prepared {
        prepay_id: prepay.prepay_id.clone(),
        expires_at: prepay.expires_at,
    };
    match inner
        .store
        .transition(&order.out_trade_no, order.status, transition)
        .await
    {
        Ok(_) => Ok(created(&order, prepay.params)),
        Err(StoreError::Conflict { .. }) => {
            // A concurrent precreate of the same order got there first: answer with its
            // prepay_id so both pages pay the same upstream order.
            match inner.store.get(&order.out_trade_no).await {
                Ok(Some(current)) => match reusable_params(inner, &current) {
                    Some(params) => Ok(created(&current, params)),
                    None => Err(status_conflict(&current)),
                },
                Ok(None) | Err(_) => Err(reply::store_unavailable()),
            }
        }
        Err(error) => {
            tracing::error!(%error, "recording the prepay_id failed");
            Err(reply::store_unavailable())
        }
    }
}

fn created(order: &Order, params: PaymentParams) -> Created {
    Created {
        out_trade_no: order.out_trade_no.clone(),
        params,
    }
}

fn success(out_trade_no: &OutTradeNo, params: &PaymentParams) -> Response<Bytes> {
    reply::json(
        StatusCode::OK,
        &PrecreateReply {
            out_trade_no: out_trade_no.as_str(),
            params,
        },
    )
}

/// Parameters for a `PENDING` order whose `prepay_id` stays valid long enough to pay, signed
/// without an upstream call.
fn reusable_params(inner: &Inner, order: &Order) -> Option<PaymentParams> {
    if order.status != OrderStatus::Pending {
        return None;
    }
    let prepay_id = order.prepay_id.as_deref()?;
    let expires_at = order.prepay_expires_at?;
    if expires_at - inner.settings.prepay_reuse_margin <= inner.clock.now() {
        return None;
    }
    inner.provider.client_params(order, prepay_id)
}

/// A second precreate of an existing order: same payer and amount, and still payable.
fn existing_conflict(existing: &Order, requested: &NewOrder) -> Option<Response<Bytes>> {
    if existing.amount != requested.amount
        || existing.openid != requested.openid
        || existing.provider != requested.provider
    {
        return Some(reply::error(
            StatusCode::CONFLICT,
            "ORDER_MISMATCH",
            format!(
                "order {} exists with another amount, payer or provider",
                existing.out_trade_no
            ),
        ));
    }
    match existing.status {
        OrderStatus::Created | OrderStatus::Pending => None,
        _ => Some(status_conflict(existing)),
    }
}

fn status_conflict(order: &Order) -> Response<Bytes> {
    let (code, message) = match order.status {
        OrderStatus::Paid | OrderStatus::Refunded => ("ORDER_PAID", "the order is already paid"),
        OrderStatus::Closed => ("ORDER_CLOSED", "the order is closed"),
        OrderStatus::Failed => ("ORDER_FAILED", "the order has failed"),
        OrderStatus::Created | OrderStatus::Pending => {
            ("ORDER_BUSY", "the order is being prepared; try again")
        }
    };
    reply::error(
        StatusCode::CONFLICT,
        code,
        format!("{message}: {}", order.out_trade_no),
    )
}

/// Why a precreate body was refused before the policy saw it.
enum BadRequest {
    /// A `Content-Type` other than JSON.
    MediaType,
    Json(String),
    Field(FieldError),
    /// The openid token was missing, invalid or disagreed with the body (401 / 400).
    Openid(super::openid::OpenidRefusal, String),
}

impl BadRequest {
    fn into_response(self) -> Response<Bytes> {
        match self {
            BadRequest::MediaType => reply::error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the order as application/json",
            ),
            BadRequest::Json(message) => {
                reply::error(StatusCode::BAD_REQUEST, "INVALID_JSON", message)
            }
            BadRequest::Field(error) => reply::field_error(&error),
            BadRequest::Openid(refusal, prefix) => refusal.into_response(&prefix),
        }
    }
}

impl From<FieldError> for BadRequest {
    fn from(error: FieldError) -> Self {
        BadRequest::Field(error)
    }
}

/// Reads the precreate body: `{openid, amount?, description?, out_trade_no?, attach?}`, with
/// seed 001's names (`pay_amount`, `title`, `biz_order_id`, `extra`) accepted too. With openid
/// routes, the openid may come from a token instead (see `super::openid`); the token's body
/// field `openid_token` is removed before the policy sees the body.
fn parse(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Result<CheckoutRequest, BadRequest> {
    // A form or text body is a client bug worth naming; a missing type is read as JSON.
    if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(BadRequest::MediaType);
        }
    }
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| BadRequest::Json(format!("the body must be a JSON object: {e}")))?;
    let Value::Object(fields) = &value else {
        return Err(BadRequest::Json(
            "the body must be a JSON object".to_owned(),
        ));
    };
    let pick = |names: &[&'static str]| -> Option<(&'static str, &Value)> {
        names.iter().find_map(|name| {
            fields
                .get(*name)
                .filter(|v| !v.is_null())
                .map(|v| (*name, v))
        })
    };
    let text = |names: &[&'static str]| -> Result<Option<String>, FieldError> {
        match pick(names) {
            None => Ok(None),
            Some((_, Value::String(text))) => Ok(Some(text.clone())),
            Some((name, _)) => Err(FieldError::new(name, "must be a string")),
        }
    };
    let body_openid = text(&["openid"])?.map(OpenId::try_from).transpose()?;
    let openid = match &inner.openid {
        None => body_openid,
        Some(settings) => {
            let body_token = text(&[super::TOKEN_BODY_FIELD])?;
            super::openid::precreate_openid(
                inner,
                settings,
                headers,
                body_openid,
                body_token.as_deref(),
            )
            .map_err(|refusal| BadRequest::Openid(refusal, inner.settings.prefix.clone()))?
        }
    };
    let openid = openid.ok_or_else(|| FieldError::new("openid", "required"))?;
    let amount = match pick(&["amount", "pay_amount"]) {
        None => None,
        Some((name, Value::Number(number))) => Some(
            number
                .as_u64()
                .ok_or_else(|| FieldError::new(name, "must be a whole, positive number of fen"))?,
        ),
        Some((name, _)) => return Err(FieldError::new(name, "must be a number of fen").into()),
    };
    let out_trade_no = text(&["out_trade_no", "biz_order_id"])?
        .map(OutTradeNo::try_from)
        .transpose()?;
    let description = text(&["description", "title"])?;
    let attach = text(&["attach", "extra"])?;
    if inner.openid.is_some()
        && let Value::Object(fields) = &mut value
    {
        fields.remove(super::TOKEN_BODY_FIELD);
    }
    Ok(CheckoutRequest {
        openid,
        amount,
        description,
        attach,
        out_trade_no,
        body: value,
    })
}

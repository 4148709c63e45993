//! The seed-000 drop-in: `POST /wx_payment.WxPaymentService/jsapi`, exactly where and as the
//! membership service of seed 000 answers it, so that its mini program works unchanged against
//! this engine (same store, same policy, same notify route as `{prefix}/precreate`).
//!
//! - Request: `{"openid", "amount"}` (fen), read as the precreate route reads its body.
//! - Answer: exactly `{"timestamp", "nonceStr", "package", "signType", "paySign"}`, the
//!   parameters of `wx.requestPayment` (`paySign` signs the appId, `timestamp`, `nonceStr` and
//!   `package`, as for the precreate route; the mini program knows its own appId).
//! - Errors: as grpc-gateway writes a gRPC status, `{"code": <gRPC code>, "message",
//!   "details": []}`, with grpc-gateway's HTTP status for that code (3 INVALID_ARGUMENT → 400,
//!   16 UNAUTHENTICATED → 401, 14 UNAVAILABLE → 503, 4 DEADLINE_EXCEEDED → 504, 13 INTERNAL →
//!   500, …).
//! - Time: the seed's client gives up after 5 s, so the whole answer comes within [`BUDGET`].
//!   A precreate still running then finishes in the background (its order is stored as usual
//!   and is never handed out), and the client gets `DEADLINE_EXCEEDED`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;

use crate::provider::PaymentParams;

use super::{Inner, precreate, reply};

/// Where seed 000's client posts (relative to the service's `apiAddress`, not to the prefix).
pub const SEED000_JSAPI_PATH: &str = "/wx_payment.WxPaymentService/jsapi";

/// The most time an answer takes: under the 5 s after which seed 000's client disconnects.
pub(super) const BUDGET: Duration = Duration::from_millis(4_500);

/// The answer of seed 000, in its keys.
#[derive(Serialize)]
struct JsapiReply<'a> {
    timestamp: &'a str,
    #[serde(rename = "nonceStr")]
    nonce_str: &'a str,
    package: &'a str,
    #[serde(rename = "signType")]
    sign_type: &'a str,
    #[serde(rename = "paySign")]
    pay_sign: &'a str,
}

/// A gRPC status as grpc-gateway renders it.
#[derive(Serialize)]
struct GrpcStatus<'a> {
    code: u8,
    message: &'a str,
    details: [(); 0],
}

/// The gRPC codes this route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrpcCode {
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The code for one of the engine's HTTP error statuses.
    fn of(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => GrpcCode::Unauthenticated,
            403 => GrpcCode::PermissionDenied,
            404 => GrpcCode::NotFound,
            409 => GrpcCode::Aborted,
            429 => GrpcCode::ResourceExhausted,
            501 => GrpcCode::Unimplemented,
            502 | 503 => GrpcCode::Unavailable,
            408 | 504 => GrpcCode::DeadlineExceeded,
            400..=499 => GrpcCode::InvalidArgument,
            _ => GrpcCode::Internal,
        }
    }

    /// grpc-gateway's HTTP status for the code (`runtime.HTTPStatusFromCode`).
    fn http_status(self) -> StatusCode {
        match self {
            GrpcCode::InvalidArgument | GrpcCode::FailedPrecondition => StatusCode::BAD_REQUEST,
            GrpcCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            GrpcCode::NotFound => StatusCode::NOT_FOUND,
            GrpcCode::PermissionDenied => StatusCode::FORBIDDEN,
            GrpcCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            GrpcCode::Aborted => StatusCode::CONFLICT,
            GrpcCode::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            GrpcCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            GrpcCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            GrpcCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }
}

fn grpc_error(code: GrpcCode, message: &str) -> Response<Bytes> {
    reply::json(
        code.http_status(),
        &GrpcStatus {
            code: code as u8,
            message,
            details: [],
        },
    )
}

/// The engine's JSON error reply in grpc-gateway's shape: the code from its status, the
/// message `CODE: message`.
pub(super) fn engine_error(response: &Response<Bytes>) -> Response<Bytes> {
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    let code = body["code"].as_str().unwrap_or("ERROR");
    let message = body["message"].as_str().unwrap_or("the request failed");
    grpc_error(
        GrpcCode::of(response.status()),
        &format!("{code}: {message}"),
    )
}

fn answer(params: &PaymentParams) -> Response<Bytes> {
    match params.wechat() {
        Some(wechat) => reply::json(
            StatusCode::OK,
            &JsapiReply {
                timestamp: &wechat.time_stamp,
                nonce_str: &wechat.nonce_str,
                package: &wechat.package,
                sign_type: &wechat.sign_type,
                pay_sign: &wechat.pay_sign,
            },
        ),
        None => grpc_error(
            GrpcCode::FailedPrecondition,
            "this upstream answered Alipay parameters; the seed-000 route serves wx.requestPayment",
        ),
    }
}

pub(super) async fn handle(
    inner: Arc<Inner>,
    headers: HeaderMap,
    body: Bytes,
    client_ip: Option<IpAddr>,
    budget: Duration,
) -> Response<Bytes> {
    // Spawned so that a precreate past the budget still finishes its store writes.
    let work =
        tokio::spawn(async move { precreate::create(&inner, &headers, &body, client_ip).await });
    match tokio::time::timeout(budget, work).await {
        Ok(Ok(Ok(created))) => answer(&created.params),
        Ok(Ok(Err(refusal))) => engine_error(&refusal),
        Ok(Err(join_error)) => {
            tracing::error!(%join_error, "the seed-000 precreate task failed");
            grpc_error(GrpcCode::Internal, "INTERNAL: the precreate failed")
        }
        Err(_) => {
            tracing::warn!(
                budget_ms = budget.as_millis(),
                "seed-000 precreate past its budget; answered DEADLINE_EXCEEDED"
            );
            grpc_error(
                GrpcCode::DeadlineExceeded,
                "DEADLINE_EXCEEDED: the upstream did not answer in time; try again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_as_grpc_gateway_maps_them() {
        for (engine, code, http) in [
            (400, 3, 400),
            (413, 3, 400),
            (401, 16, 401),
            (404, 5, 404),
            (409, 10, 409),
            (502, 14, 503),
            (503, 14, 503),
            (504, 4, 504),
            (500, 13, 500),
            (501, 12, 501),
        ] {
            let grpc = GrpcCode::of(StatusCode::from_u16(engine).unwrap());
            assert_eq!(
                (grpc as u8, grpc.http_status().as_u16()),
                (code, http),
                "{engine}"
            );
        }
    }
}

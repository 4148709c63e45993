//! WeChat Pay API v3: request authentication, signed responses, JSAPI transactions,
//! refunds, platform certificates and `TRANSACTION.SUCCESS` / `REFUND.*` notifications.
//!
//! The message formats are implemented here from WeChat Pay's documentation, independently of
//! wxpay-core, so that the two implementations check each other.

mod auth;
mod certificates;
pub(crate) mod notify;
mod refunds;
pub(crate) mod transactions;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};

use crate::crypto;
use crate::error::SandboxError;
use crate::keys::PlatformKeys;
use crate::state::Shared;
use crate::timefmt;

pub use auth::authorization_message;

/// The signature type WeChat Pay names in `Wechatpay-Signature-Type` and the `Authorization`
/// scheme.
pub const SIGNATURE_TYPE: &str = "WECHATPAY2-SHA256-RSA2048";

/// The prefix of deliberately invalid probe signatures.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// The message WeChat Pay signs in responses and notifications:
/// `TIMESTAMP\nNONCE\nBODY\n` over the exact body bytes.
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(nonce.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

/// The `Wechatpay-*` headers signing `body` with the platform key chosen for `requested`.
pub(crate) fn platform_headers(
    keys: &PlatformKeys,
    requested: Option<&str>,
    body: &[u8],
    probe: bool,
) -> Result<Vec<(&'static str, String)>, SandboxError> {
    let (signer, serial) = keys.signer_for(requested);
    let timestamp = timefmt::now_unix().to_string();
    let nonce = crypto::random_upper_hex(32)?;
    let signature = if probe {
        let mut junk = [0u8; 192];
        crypto::random_bytes(&mut junk)?;
        format!("{SIGNTEST_PREFIX}{}", crypto::base64_encode(&junk))
    } else {
        signer.sign_base64(&response_message(&timestamp, &nonce, body))?
    };
    Ok(vec![
        ("Wechatpay-Timestamp", timestamp),
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", signature),
        ("Wechatpay-Serial", serial.to_owned()),
        ("Wechatpay-Signature-Type", SIGNATURE_TYPE.to_owned()),
    ])
}

/// An error response, boxed to keep `Result`s small.
pub(crate) struct ApiError(Box<Response>);

impl From<Response> for ApiError {
    fn from(r: Response) -> Self {
        Self(Box::new(r))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A JSON error in WeChat's envelope `{code, message}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &serde_json::json!({ "code": code, "message": message }),
    )
}

/// A `400 PARAM_ERROR` as WeChat writes it: the message, and a `detail` naming where the bad
/// input was (`location`: the request body) and, when known, its `field` (a JSON pointer) and
/// `value`.
pub(crate) fn param_error_response(
    message: &str,
    field: Option<&str>,
    value: Option<&serde_json::Value>,
) -> Response {
    let mut detail = serde_json::Map::new();
    detail.insert("location".into(), "body".into());
    if let Some(field) = field {
        detail.insert("field".into(), field.into());
    }
    detail.insert(
        "value".into(),
        value.cloned().unwrap_or(serde_json::Value::Null),
    );
    json_response(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "code": "PARAM_ERROR", "message": message, "detail": detail }),
    )
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The API v3 routes, each behind authentication and response signing.
pub(crate) fn router(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/v3/pay/transactions/jsapi",
            crate::prepay_faults::applied(shared, post(transactions::jsapi)),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}",
            get(transactions::query_by_out_trade_no),
        )
        .route(
            "/v3/pay/transactions/id/{transaction_id}",
            get(transactions::query_by_transaction_id),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            post(transactions::close),
        )
        .route("/v3/refund/domestic/refunds", post(refunds::create))
        .route(
            "/v3/refund/domestic/refunds/{out_refund_no}",
            get(refunds::query),
        )
        .route("/v3/certificates", get(certificates::list))
        .layer(middleware::from_fn_with_state(Arc::clone(shared), v3_layer))
}

/// The signed 404 of an unknown `/v3/…` path.
pub(crate) async fn not_found(shared: &Shared, requested_serial: Option<&str>) -> Response {
    let resp = error(StatusCode::NOT_FOUND, "NOT_FOUND", "请求的资源不存在");
    sign_response(shared, requested_serial, resp).await
}

/// Reads the body (bounded), authenticates the request, runs the handler and signs whatever
/// comes out, errors included.
async fn v3_layer(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let requested_serial = req
        .headers()
        .get("Wechatpay-Serial")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let response = match axum::body::to_bytes(body, shared.config.body_limit).await {
        Err(_) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_BODY_TOO_LARGE",
            "请求体过大",
        ),
        Ok(bytes) => match auth::authenticate(&shared, &parts, &bytes) {
            Err(resp) => resp.into_response(),
            Ok(()) => {
                if let Some(serial) = &requested_serial {
                    *crate::state::lock(&shared.merchant_serial) = Some(serial.clone());
                }
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
        },
    };
    sign_response(&shared, requested_serial.as_deref(), response).await
}

/// Adds `Request-ID` and the `Wechatpay-*` signature headers over the exact body bytes.
pub(crate) async fn sign_response(
    shared: &Shared,
    requested_serial: Option<&str>,
    response: Response,
) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let headers = match platform_headers(&shared.platform, requested_serial, &bytes, false) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "signing a response failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(name, v);
        }
    }
    if let Ok(id) = crypto::random_upper_hex(40)
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        parts.headers.insert("Request-ID", v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

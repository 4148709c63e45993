//! `GET /v3/certificates`: the platform certificates, encrypted with the API v3 key.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::{error, json_response};
use crate::crypto;
use crate::state::Shared;
use crate::timefmt;

/// Lists the platform certificate, or 404 `RESOURCE_NOT_EXISTS` in public-key mode.
pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let Some(cert) = &shared.platform.cert else {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_EXISTS",
            "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。可查看指引https://pay.weixin.qq.com/docs/merchant/products/platform-certificate/wxp-pub-key-guide.html",
        );
    };
    let encrypted = crypto::random_alnum(12).and_then(|nonce| {
        crypto::aes_256_gcm_encrypt(
            shared.api_v3_key.as_bytes(),
            nonce.as_bytes(),
            b"certificate",
            cert.pem.as_bytes(),
        )
        .map(|ct| (nonce, ct))
    });
    let (nonce, ciphertext) = match encrypted {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "encrypting the certificate failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SYSTEM_ERROR",
                "系统错误",
            );
        }
    };
    json_response(
        StatusCode::OK,
        &json!({
            "data": [{
                "serial_no": cert.serial,
                "effective_time": timefmt::rfc3339_cst(cert.not_before),
                "expire_time": timefmt::rfc3339_cst(cert.not_after),
                "encrypt_certificate": {
                    "algorithm": "AEAD_AES_256_GCM",
                    "associated_data": "certificate",
                    "nonce": nonce,
                    "ciphertext": ciphertext,
                }
            }]
        }),
    )
}

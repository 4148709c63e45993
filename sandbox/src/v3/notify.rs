//! `TRANSACTION.SUCCESS` and `REFUND.*` notifications: the resource JSON encrypted with the API v3 key,
//! signed with the platform key.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use time::OffsetDateTime;

use super::platform_headers;
use super::transactions::transaction_json;
use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::state::{Order, Shared, lock};
use crate::timefmt;

/// WeChat Pay v3 takes HTTP 200 or 204 as an acknowledgement (a 200 with a `FAIL` body
/// included); any other status, other 2xx too, is retried.
fn acknowledged(status: u16, _body: &[u8]) -> bool {
    status == 200 || status == 204
}

/// Builds the notification of a successful payment of `order`.
pub(crate) fn payment_success(
    shared: &Arc<Shared>,
    order: &Order,
) -> Result<Notification, SandboxError> {
    encrypted(
        shared,
        "TRANSACTION.SUCCESS",
        "支付成功",
        "transaction",
        &transaction_json(order),
        order.notify_url.clone(),
        order.out_trade_no.clone(),
    )
}

/// A notification of `event_type` whose resource is `resource` encrypted with the API v3 key
/// (associated data `original_type`), signed with the platform key when delivered.
pub(crate) fn encrypted(
    shared: &Arc<Shared>,
    event_type: &str,
    summary: &str,
    original_type: &str,
    resource: &serde_json::Value,
    url: String,
    out_trade_no: String,
) -> Result<Notification, SandboxError> {
    let plaintext =
        serde_json::to_vec(resource).map_err(|e| SandboxError::Config(e.to_string()))?;
    let nonce = crypto::random_alnum(12)?;
    let ciphertext = crypto::aes_256_gcm_encrypt(
        shared.api_v3_key.as_bytes(),
        nonce.as_bytes(),
        original_type.as_bytes(),
        &plaintext,
    )?;
    let id = crypto::random_uuid()?;
    let body = json!({
        "id": id,
        "create_time": timefmt::rfc3339_cst(OffsetDateTime::now_utc()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": original_type,
            "nonce": nonce,
        }
    });
    let body = serde_json::to_vec(&body).map_err(|e| SandboxError::Config(e.to_string()))?;
    let signer = Arc::clone(shared);
    Ok(Notification {
        id,
        out_trade_no,
        url,
        content_type: "application/json",
        body: Bytes::from(body),
        probe_body: None,
        sign: Arc::new(move |body: &[u8], probe: bool| {
            let serial = lock(&signer.merchant_serial).clone();
            platform_headers(&signer.platform, serial.as_deref(), body, probe)
        }),
        ack: acknowledged,
    })
}

//! The API v2 payment result notification (docs chapter 9_7): signed XML posted to
//! `notify_url`, acknowledged by `<xml><return_code>SUCCESS</return_code>…</xml>`.

use std::sync::Arc;

use bytes::Bytes;

use super::sign::{SignType, sign};
use super::xml::{parse, to_xml};
use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::state::{Order, Shared};
use crate::timefmt;

/// v2 docs: the merchant acknowledges with HTTP 200 and `return_code` `SUCCESS` in XML;
/// anything else (another status, `FAIL`, a body that is not that XML) is retried.
pub(super) fn acknowledged(status: u16, body: &[u8]) -> bool {
    status == 200 && parse(body).is_ok_and(|m| m.get("return_code").is_some_and(|c| c == "SUCCESS"))
}

/// The signed pairs of the notification for a paid `order`, in WeChat's order, `sign` last.
/// `sign_type` appears only for HMAC-SHA256 (absent means MD5, and it takes part in the sign).
pub(crate) fn notification_pairs(
    order: &Order,
    key: &str,
    sign_type: SignType,
) -> Result<Vec<(&'static str, String)>, SandboxError> {
    let mut pairs: Vec<(&'static str, String)> = vec![
        ("return_code", "SUCCESS".into()),
        ("return_msg", "OK".into()),
        ("appid", order.appid.clone()),
        ("mch_id", order.mchid.clone()),
        ("nonce_str", crypto::random_alnum(32)?),
        ("result_code", "SUCCESS".into()),
        ("openid", order.openid.clone()),
        ("is_subscribe", "N".into()),
        ("trade_type", "JSAPI".into()),
        ("bank_type", "OTHERS".into()),
        ("total_fee", order.total.to_string()),
        ("fee_type", order.currency.clone()),
        ("cash_fee", order.total.to_string()),
        (
            "transaction_id",
            order.transaction_id.clone().unwrap_or_default(),
        ),
        ("out_trade_no", order.out_trade_no.clone()),
        ("attach", order.attach.clone().unwrap_or_default()),
        (
            "time_end",
            order
                .success_time
                .map(timefmt::compact_cst)
                .unwrap_or_default(),
        ),
    ];
    if sign_type == SignType::HmacSha256 {
        pairs.push(("sign_type", sign_type.as_str().into()));
    }
    pairs.retain(|(_, v)| !v.is_empty());
    let signature = sign(pairs.iter().map(|(k, v)| (*k, v.as_str())), key, sign_type);
    pairs.push(("sign", signature));
    Ok(pairs)
}

/// Builds the XML notification of a successful payment of a v2 `order`.
pub(crate) fn payment_success(
    shared: &Arc<Shared>,
    order: &Order,
    sign_type: SignType,
) -> Result<Notification, SandboxError> {
    let pairs = notification_pairs(order, &shared.v2_api_key, sign_type)?;
    let body = to_xml(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    // The forged copy: same fields, `sign` computed with a wrong key.
    let mut forged = pairs.clone();
    if let Some(last) = forged.last_mut() {
        let wrong_key = crypto::random_alnum(32)?;
        last.1 = sign(
            pairs.iter().map(|(k, v)| (*k, v.as_str())),
            &wrong_key,
            sign_type,
        );
    }
    let forged = to_xml(forged.iter().map(|(k, v)| (*k, v.as_str())));
    Ok(Notification {
        id: crypto::random_uuid()?,
        out_trade_no: order.out_trade_no.clone(),
        url: order.notify_url.clone(),
        content_type: "text/xml",
        body: Bytes::from(body),
        probe_body: Some(Bytes::from(forged)),
        sign: Arc::new(|_body: &[u8], _probe: bool| Ok(Vec::new())),
        ack: acknowledged,
    })
}

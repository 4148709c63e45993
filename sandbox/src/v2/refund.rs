//! API v2 refunds: `POST /secapi/pay/refund` (申请退款, docs chapter 9_4), `POST
//! /pay/refundquery` (查询退款, 9_5) and the refund result notification (退款结果通知, 9_16).
//!
//! - The refund call needs the merchant's API certificate on the TLS connection
//!   ([`crate::Sandbox::v2_secure_base_url`]), then the usual v2 `sign`. Without the
//!   certificate, or with another merchant's, it is refused with `return_code` `FAIL` (sandbox
//!   choice of wording: the docs only say the call "需要双向证书").
//! - Accepted refunds are answered `result_code` `SUCCESS` ("退款申请接收成功") and settle on the
//!   shared ledger ([`crate::RefundBehaviour`]). The same `out_refund_no` with the same order and
//!   amount is the same refund; with another amount it is `REFUND_FEE_MISMATCH` (WeChat's answer
//!   in public reports); a `refund_fee` above `total_fee` is `return_code` `FAIL` `invalid
//!   refund_fee` (ditto); more than what is left to refund is `ERROR` with the reason, the code
//!   the docs give for business errors "with a specific reason" (sandbox choice of reason).
//! - `refundquery` by `out_refund_no` answers that refund as entry `_0`; by `out_trade_no` or
//!   `transaction_id` all of the order's refunds. `refund_status_$n` is `PROCESSING`, `SUCCESS`,
//!   `REFUNDCLOSE` or `CHANGE` (退款异常); an unknown refund is `REFUNDNOTEXIST`.
//! - The notification is `return_code`, `appid`, `mch_id`, `nonce_str` and `req_info`: the
//!   refund's fields as `<root>…</root>` XML, AES-256-ECB (PKCS#7) under the lower-case hex MD5
//!   of the API key, base64. It carries no `sign`; a merchant proves it genuine by decrypting it.

use std::sync::Arc;

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use md5::{Digest, Md5};

use super::notify::acknowledged;
use super::sign::SignType;
use super::xml::to_xml;
use super::{Authed, authenticate, business_error, fail, find, signed_reply};
use crate::crypto;
use crate::delivery::Notification;
use crate::error::SandboxError;
use crate::refunds::{self, Refund, RefundAsk, RefundState, Refusal};
use crate::state::{Order, Protocol, Shared, lock};
use crate::timefmt;
use crate::tls::ClientCertificate;

/// `out_refund_no`: String(64) of digits, letters and `_-|*@` (v2 docs).
fn valid_out_refund_no(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@'))
}

fn fee(r: &Authed, key: &str) -> Result<i64, String> {
    let text = r.get(key).ok_or_else(|| format!("缺少参数{key}"))?;
    text.parse::<i64>()
        .ok()
        .filter(|v| *v > 0 && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("{key}参数格式错误：应为大于0的整数（单位分）"))
}

/// Why the connection may not make certificate calls, if it may not.
fn certificate_refusal(shared: &Shared, proof: Option<&ClientCertificate>) -> Option<&'static str> {
    match proof.and_then(|p| p.common_name.as_deref()) {
        None => Some("请使用商户API证书调用此接口（双向证书）"),
        Some(cn) if cn != shared.merchant.mchid => Some("商户API证书与mch_id不匹配"),
        Some(_) => None,
    }
}

/// `POST /secapi/pay/refund`.
pub(super) async fn refund(
    State(shared): State<Arc<Shared>>,
    proof: Option<Extension<ClientCertificate>>,
    body: Bytes,
) -> Response {
    if let Some(message) = certificate_refusal(&shared, proof.as_deref()) {
        return fail(message);
    }
    let r = match authenticate(&shared, &body) {
        Ok(r) => r,
        Err(message) => return fail(&message),
    };
    let Some(out_refund_no) = r.get("out_refund_no").map(str::to_owned) else {
        return fail("缺少参数out_refund_no");
    };
    if !valid_out_refund_no(&out_refund_no) {
        return fail("out_refund_no参数格式错误");
    }
    if r.get("transaction_id").is_none() && r.get("out_trade_no").is_none() {
        return fail("out_trade_no、transaction_id至少填一个");
    }
    let (total_fee, refund_fee) = match (fee(&r, "total_fee"), fee(&r, "refund_fee")) {
        (Ok(total), Ok(refund)) => (total, refund),
        (Err(message), _) | (_, Err(message)) => return fail(&message),
    };
    if refund_fee > total_fee {
        return fail("invalid refund_fee");
    }
    if r.get("refund_fee_type").is_some_and(|t| t != "CNY") {
        return fail("refund_fee_type参数错误：只支持CNY");
    }
    let reason = r.get("refund_desc").map(str::to_owned);
    if reason.as_deref().is_some_and(|d| d.chars().count() > 80) {
        return fail("refund_desc参数长度有误");
    }
    let notify_url = r.get("notify_url").map(str::to_owned);
    if let Some(url) = &notify_url
        && let Err(message) = super::validate_notify_url(url, shared.config.allow_http_notify_url)
    {
        return fail(message);
    }
    let order_key = {
        let orders = lock(&shared.orders);
        find(&shared, &orders, &r)
            .filter(|o| matches!(o.protocol, Protocol::V2 { .. }))
            .map(|o| o.out_trade_no.clone())
    };
    let Some(order_key) = order_key else {
        let (code, des) = if r.get("transaction_id").is_some() {
            ("INVALID_TRANSACTIONID", "无效transaction_id")
        } else {
            ("ORDERNOTEXIST", "此交易订单号不存在")
        };
        return business_error(&shared, r.sign_type, code, des);
    };
    let ask = RefundAsk {
        order_key,
        out_refund_no,
        amount: refund_fee,
        total: Some(total_fee),
        reason,
        notify_url,
    };
    match refunds::accept(&shared, ask, notification) {
        Ok(accepted) if accepted.lose_answer => StatusCode::BAD_GATEWAY.into_response(),
        Ok(accepted) => {
            let (refund, order) = (&accepted.refund, &accepted.order);
            signed_reply(
                &shared,
                r.sign_type,
                &[
                    ("result_code", "SUCCESS".into()),
                    (
                        "transaction_id",
                        order.transaction_id.clone().unwrap_or_default(),
                    ),
                    ("out_trade_no", order.out_trade_no.clone()),
                    ("out_refund_no", refund.out_refund_no.clone()),
                    ("refund_id", refund.refund_id.clone()),
                    ("refund_fee", refund.amount.to_string()),
                    ("total_fee", order.total.to_string()),
                    ("fee_type", order.currency.clone()),
                    ("cash_fee", order.total.to_string()),
                    ("cash_refund_fee", refund.amount.to_string()),
                ],
            )
        }
        Err(refusal) => refusal_reply(&shared, r.sign_type, &refusal),
    }
}

/// A refusal of the ledger, as API v2 words it.
fn refusal_reply(shared: &Shared, sign_type: SignType, refusal: &Refusal) -> Response {
    let (code, des) = match refusal {
        Refusal::OrderNotFound => ("ORDERNOTEXIST", "此交易订单号不存在".to_owned()),
        Refusal::NotPaid => ("ERROR", "订单未支付，不能退款".to_owned()),
        Refusal::InvalidAmount(_) => (
            "INVALID_REQUEST",
            "订单金额total_fee与支付金额不一致".to_owned(),
        ),
        Refusal::ExceedsRefundable { refundable } => (
            "ERROR",
            format!("累计退款金额超过订单金额，剩余可退{refundable}分"),
        ),
        Refusal::NumberReused => (
            "REFUND_FEE_MISMATCH",
            "同一out_refund_no的退款金额须一致".to_owned(),
        ),
        Refusal::Injected => ("ERROR", "退款请求被拒绝".to_owned()),
    };
    business_error(shared, sign_type, code, &des)
}

/// `refund_status_$n`: v2 spells ABNORMAL `CHANGE` and CLOSED `REFUNDCLOSE`.
fn v2_status(state: RefundState) -> &'static str {
    match state {
        RefundState::Processing => "PROCESSING",
        RefundState::Success => "SUCCESS",
        RefundState::Closed => "REFUNDCLOSE",
        RefundState::Abnormal => "CHANGE",
    }
}

/// `POST /pay/refundquery`.
pub(super) async fn refund_query(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let r = match authenticate(&shared, &body) {
        Ok(r) => r,
        Err(message) => return fail(&message),
    };
    let selected: Option<(Order, Vec<Refund>)> = {
        let orders = lock(&shared.orders);
        let v2 = |o: &Order| matches!(o.protocol, Protocol::V2 { .. });
        if let Some(no) = r.get("out_refund_no") {
            orders.refunds.get(no).and_then(|refund| {
                let order = orders.by_out_trade_no.get(&refund.order_key)?;
                v2(order).then(|| (order.clone(), vec![refund.clone()]))
            })
        } else if r.get("transaction_id").is_some() || r.get("out_trade_no").is_some() {
            find(&shared, &orders, &r).filter(|o| v2(o)).map(|order| {
                let mut of_order: Vec<Refund> = orders
                    .refunds
                    .values()
                    .filter(|refund| refund.order_key == order.out_trade_no)
                    .cloned()
                    .collect();
                of_order.sort_by_key(|refund| refund.created_at);
                (order.clone(), of_order)
            })
        } else {
            return fail("out_refund_no、out_trade_no、transaction_id至少填一个");
        }
    };
    let Some((order, list)) = selected.filter(|(_, list)| !list.is_empty()) else {
        return business_error(&shared, r.sign_type, "REFUNDNOTEXIST", "退款订单查询失败");
    };
    let mut fields: Vec<(String, String)> = vec![
        ("result_code".into(), "SUCCESS".into()),
        (
            "transaction_id".into(),
            order.transaction_id.clone().unwrap_or_default(),
        ),
        ("out_trade_no".into(), order.out_trade_no.clone()),
        ("total_fee".into(), order.total.to_string()),
        ("fee_type".into(), order.currency.clone()),
        ("cash_fee".into(), order.total.to_string()),
        ("refund_count".into(), list.len().to_string()),
    ];
    for (n, refund) in list.iter().enumerate() {
        let mut entry = vec![
            ("out_refund_no", refund.out_refund_no.clone()),
            ("refund_id", refund.refund_id.clone()),
            ("refund_channel", "ORIGINAL".to_owned()),
            ("refund_fee", refund.amount.to_string()),
            ("refund_status", v2_status(refund.state).to_owned()),
            ("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS".to_owned()),
        ];
        if let Some(account) = &refund.user_received_account {
            entry.push(("refund_recv_accout", account.clone()));
        }
        if let Some(done) = refund.success_time {
            entry.push(("refund_success_time", timefmt::spaced_cst(done)));
        }
        fields.extend(entry.into_iter().map(|(k, v)| (format!("{k}_{n}"), v)));
    }
    fields.retain(|(_, v)| !v.is_empty());
    let borrowed: Vec<(&str, String)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    signed_reply(&shared, r.sign_type, &borrowed)
}

/// AES-256-ECB with PKCS#7 under `md5_hex_lower(api_key)`, base64: how `req_info` is sealed.
fn seal_req_info(plaintext: &str, api_key: &str) -> Result<String, SandboxError> {
    let key: String = Md5::digest(api_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cipher = Aes256::new_from_slice(key.as_bytes())
        .map_err(|_| SandboxError::Config("req_info key is not 32 bytes".into()))?;
    let mut data = plaintext.as_bytes().to_vec();
    let pad = 16 - data.len() % 16;
    data.extend(std::iter::repeat_n(u8::try_from(pad).unwrap_or(16), pad));
    for block in data.chunks_exact_mut(16) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    Ok(crypto::base64_encode(&data))
}

/// The `<root>` document of a settled refund (docs 9_16's `req_info` fields).
fn req_info_plaintext(order: &Order, refund: &Refund) -> String {
    let mut pairs: Vec<(&str, String)> = vec![
        (
            "transaction_id",
            order.transaction_id.clone().unwrap_or_default(),
        ),
        ("out_trade_no", order.out_trade_no.clone()),
        ("refund_id", refund.refund_id.clone()),
        ("out_refund_no", refund.out_refund_no.clone()),
        ("total_fee", order.total.to_string()),
        ("settlement_total_fee", order.total.to_string()),
        ("refund_fee", refund.amount.to_string()),
        ("settlement_refund_fee", refund.amount.to_string()),
        ("refund_status", v2_status(refund.state).to_owned()),
        ("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS".to_owned()),
        ("refund_request_source", "API".to_owned()),
    ];
    if let Some(done) = refund.success_time {
        pairs.push(("success_time", timefmt::spaced_cst(done)));
    }
    if let Some(account) = &refund.user_received_account {
        pairs.push(("refund_recv_accout", account.clone()));
    }
    pairs.retain(|(_, v)| !v.is_empty());
    let xml = to_xml(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    format!(
        "<root>{}</root>",
        &xml["<xml>".len()..xml.len() - "</xml>".len()]
    )
}

/// The notification of a settled v2 refund: `req_info` sealed with the API key. The probe copy
/// is sealed with another key, which a merchant must refuse.
fn notification(
    shared: &Arc<Shared>,
    order: &Order,
    refund: &Refund,
) -> Result<Option<Notification>, SandboxError> {
    let Some(url) = refund.notify_url.clone() else {
        return Ok(None);
    };
    if refund.state == RefundState::Processing {
        return Ok(None);
    }
    let plaintext = req_info_plaintext(order, refund);
    let envelope = |req_info: &str| -> Result<String, SandboxError> {
        let nonce = crypto::random_alnum(32)?;
        Ok(to_xml([
            ("return_code", "SUCCESS"),
            ("appid", order.appid.as_str()),
            ("mch_id", order.mchid.as_str()),
            ("nonce_str", nonce.as_str()),
            ("req_info", req_info),
        ]))
    };
    let body = envelope(&seal_req_info(&plaintext, &shared.v2_api_key)?)?;
    let forged = envelope(&seal_req_info(&plaintext, &crypto::random_alnum(32)?)?)?;
    Ok(Some(Notification {
        id: crypto::random_uuid()?,
        out_trade_no: order.out_trade_no.clone(),
        url,
        content_type: "text/xml",
        body: Bytes::from(body),
        probe_body: Some(Bytes::from(forged)),
        sign: Arc::new(|_body: &[u8], _probe: bool| Ok(Vec::new())),
        ack: acknowledged,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_req_info_is_whole_blocks_of_base64() {
        let sealed = seal_req_info("<root><a>1</a></root>", "k".repeat(32).as_str()).unwrap();
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sealed).unwrap();
        assert_eq!(raw.len(), 32);
        let exact = seal_req_info(&"x".repeat(16), "k".repeat(32).as_str()).unwrap();
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, exact).unwrap();
        assert_eq!(
            raw.len(),
            32,
            "a whole block of plaintext gains a whole block of padding"
        );
    }

    #[test]
    fn v2_spells_abnormal_and_closed_its_own_way() {
        assert_eq!(v2_status(RefundState::Abnormal), "CHANGE");
        assert_eq!(v2_status(RefundState::Closed), "REFUNDCLOSE");
    }
}

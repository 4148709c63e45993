//! Verification of the merchant's `Authorization: WECHATPAY2-SHA256-RSA2048 …` header.

use http::StatusCode;
use http::request::Parts;

use super::{ApiError, SIGNATURE_TYPE, error, json_response};
use crate::state::Shared;
use crate::timefmt;

/// The largest accepted difference between the request's timestamp and the sandbox's clock.
const MAX_SKEW_SECS: u64 = 300;

/// The message a merchant signs for a request:
/// `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n` (an empty body gives an empty line).
pub fn authorization_message(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(
        method.len() + path_and_query.len() + timestamp.len() + nonce.len() + body.len() + 5,
    );
    for part in [method, path_and_query, timestamp, nonce] {
        m.extend_from_slice(part.as_bytes());
        m.push(b'\n');
    }
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AuthFields {
    pub(crate) mchid: String,
    pub(crate) nonce_str: String,
    pub(crate) timestamp: String,
    pub(crate) serial_no: String,
    pub(crate) signature: String,
}

/// Parses `WECHATPAY2-SHA256-RSA2048 k="v",k="v",…`; every one of the five fields exactly once.
pub(crate) fn parse_authorization(value: &str) -> Option<AuthFields> {
    let rest = value.strip_prefix(SIGNATURE_TYPE)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let mut fields = AuthFields::default();
    let mut seen = [false; 5];
    for item in rest.trim().split(',') {
        let (key, raw) = item.trim().split_once('=')?;
        let v = raw.trim().strip_prefix('"')?.strip_suffix('"')?;
        if v.contains('"') {
            return None;
        }
        let (slot, idx) = match key.trim() {
            "mchid" => (&mut fields.mchid, 0),
            "nonce_str" => (&mut fields.nonce_str, 1),
            "timestamp" => (&mut fields.timestamp, 2),
            "serial_no" => (&mut fields.serial_no, 3),
            "signature" => (&mut fields.signature, 4),
            _ => continue,
        };
        if seen[idx] {
            return None;
        }
        seen[idx] = true;
        *slot = v.to_owned();
    }
    seen.iter().all(|s| *s).then_some(fields)
}

/// Whether `timestamp` is decimal seconds within ±300 s of `now` (overflow-free).
pub(crate) fn timestamp_fresh(timestamp: &str, now: i64) -> bool {
    if timestamp.is_empty()
        || timestamp.len() > 18
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    match timestamp.parse::<i64>() {
        Ok(ts) => ts.abs_diff(now) <= MAX_SKEW_SECS,
        Err(_) => false,
    }
}

fn sign_error(message: &str) -> ApiError {
    error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", message).into()
}

/// Authenticates a request as WeChat Pay does, or returns the 401 to send.
pub(crate) fn authenticate(shared: &Shared, parts: &Parts, body: &[u8]) -> Result<(), ApiError> {
    let Some(value) = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(sign_error(
            "Http头缺少Authorization或格式错误，请参考《接口规则》",
        ));
    };
    let Some(fields) = parse_authorization(value) else {
        return Err(sign_error(
            "Http头Authorization值格式错误，请参考《接口规则》",
        ));
    };
    if fields.mchid != shared.merchant.mchid {
        return Err(sign_error("Authorization中的mchid与商户号不匹配"));
    }
    if fields.nonce_str.is_empty() {
        return Err(sign_error("Http头Authorization中的nonce_str不能为空"));
    }
    if !timestamp_fresh(&fields.timestamp, timefmt::now_unix()) {
        return Err(sign_error(
            "Http头Authorization中的timestamp与当前时间相差过大或格式错误",
        ));
    }
    if !fields
        .serial_no
        .eq_ignore_ascii_case(&shared.merchant.serial)
    {
        return Err(sign_error(
            "商户证书序列号有误。请使用签名私钥匹配的证书序列号",
        ));
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let method = parts.method.as_str();
    let message = authorization_message(
        method,
        &path_and_query,
        &fields.timestamp,
        &fields.nonce_str,
        body,
    );
    if shared
        .merchant_verifier
        .verify_base64(&message, &fields.signature)
        .is_ok()
    {
        return Ok(());
    }
    let shown: String = String::from_utf8_lossy(&message)
        .chars()
        .take(128)
        .collect();
    Err(json_response(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({
            "code": "SIGN_ERROR",
            "message": "签名错误",
            "detail": {
                "detail": { "issue": "sign not match" },
                "field": "signature",
                "location": "authorization",
                "sign_information": {
                    "method": method,
                    "sign_message_length": message.len(),
                    "truncated_sign_message": shown,
                    "url": path_and_query,
                }
            }
        }),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header() {
        let f = parse_authorization(
            r#"WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc", timestamp="123",serial_no="AB",signature="c2ln""#,
        )
        .unwrap();
        assert_eq!(f.mchid, "1900000001");
        assert_eq!(f.nonce_str, "abc");
        assert_eq!(f.timestamp, "123");
        assert_eq!(f.serial_no, "AB");
        assert_eq!(f.signature, "c2ln");
    }

    #[test]
    fn rejects_bad_headers() {
        for bad in [
            "",
            "Bearer x",
            r#"WECHATPAY2-SHA256-RSA2048mchid="1",nonce_str="a",timestamp="1",serial_no="A",signature="s""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="a",timestamp="1",serial_no="A""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="1",nonce_str="a",timestamp="1",serial_no="A",signature="s""#,
            r#"WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str="a",timestamp="1",serial_no="A",signature="s""#,
        ] {
            assert!(parse_authorization(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn timestamp_window_without_overflow() {
        assert!(timestamp_fresh("1000", 1300));
        assert!(timestamp_fresh("1600", 1300));
        assert!(!timestamp_fresh("999", 1300));
        assert!(!timestamp_fresh("1601", 1300));
        assert!(!timestamp_fresh("-5", 0));
        assert!(!timestamp_fresh("+5", 0));
        assert!(!timestamp_fresh("999999999999999999", i64::MIN));
        assert!(!timestamp_fresh("99999999999999999999999", 0));
        assert!(!timestamp_fresh("", 0));
    }
}

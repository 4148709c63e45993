//! The gateway's callback signature: a faithful port of `checkOpenSign` / `openSign` from the
//! Java listing in seed 001, edge cases included.
//!
//! ```java
//! String[] fields = reqBody.split("&");
//! for (String field : fields) {
//!     String[] pair = field.split("=");
//!     if (pair.length != 2) continue;
//!     if (!"sign".equals(pair[0]) && StringUtils.isNotBlank(pair[1])) fieldMap.put(pair[0], pair[1]);
//! }
//! // openSign: new TreeMap<>(params), "k=v" joined by "&", + "&app_key=" + appKey, md5 hex
//! ```
//!
//! What that means, rule by rule (each one tested):
//! - values are used **as they stand in the raw body**, still URL-encoded (seed 001);
//! - Java's `String.split` drops trailing empty strings and keeps a leading one, so `k=` has one
//!   part (skipped), `k=a=b` three (skipped), `k=a=` two (`k`, `a`: kept), `=v` two (an empty
//!   key: kept), and empty fields (`a=1&&b=2`) are skipped;
//! - `sign` and blank values (`StringUtils.isNotBlank`: empty or only Java whitespace) are left
//!   out;
//! - a key given twice keeps its **last** value (`HashMap.put`);
//! - keys are sorted as `TreeMap<String, …>` sorts: by UTF-16 code units;
//! - `k=v` joined by `&`, then `&app_key=KEY` (with no fields at all, the text is just
//!   `&app_key=KEY`), MD5 of the UTF-8 bytes in lower-case hex (seed 001: the example `sign` is
//!   lower-case hex; the listing's `md5` helper is not shown);
//! - compared with the callback's `sign` in constant time (`Objects.equals` in the listing,
//!   which is exact and case-sensitive).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The gateway's `app_key` (`WXPAY_GATEWAY_APP_KEY`), paired with the `biz_id`. Its `Debug`
/// prints nothing of it and its memory is wiped on drop.
#[derive(Clone)]
pub struct AppKey(Zeroizing<String>);

/// An app key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the gateway app_key must be non-empty and without whitespace or '&'")]
pub struct AppKeyError;

impl AppKey {
    /// The key as the gateway issued it.
    pub fn new(key: impl Into<String>) -> Result<Self, AppKeyError> {
        let key = Zeroizing::new(key.into());
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c == '&') {
            return Err(AppKeyError);
        }
        Ok(Self(key))
    }

    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey(<redacted>)")
    }
}

/// Java's `String.split` with a literal one-character separator: trailing empty strings are
/// removed, a leading empty string (from a separator at index 0) is kept, and a string without
/// the separator is returned whole (even when empty).
pub fn java_split(s: &str, separator: char) -> Vec<&str> {
    if !s.contains(separator) {
        return vec![s];
    }
    let mut parts: Vec<&str> = s.split(separator).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Java's `Character.isWhitespace` for one `char`.
fn java_is_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{1680}'
            | '\u{2000}'..='\u{2006}'
            | '\u{2008}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// `StringUtils.isNotBlank`: not empty and not only whitespace.
fn is_not_blank(s: &str) -> bool {
    !s.chars().all(java_is_whitespace)
}

/// `String.compareTo`: UTF-16 code unit order.
fn java_compare(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The fields `checkOpenSign` signs, from the raw body: the map it builds, before sorting.
pub fn signed_fields(raw_body: &str) -> HashMap<&str, &str> {
    let mut map = HashMap::new();
    for field in java_split(raw_body, '&') {
        let pair = java_split(field, '=');
        if pair.len() != 2 {
            continue;
        }
        if pair[0] != "sign" && is_not_blank(pair[1]) {
            map.insert(pair[0], pair[1]);
        }
    }
    map
}

/// `openSign`: the lower-case hex MD5 of the sorted `k=v&…` text with `&app_key=KEY` appended.
pub fn open_sign<'a, I>(fields: I, key: &AppKey) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let text = source_text(fields, key);
    let digest = Md5::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The text `openSign` hashes (it contains the key: never log it).
pub fn source_text<'a, I>(fields: I, key: &AppKey) -> Zeroizing<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = fields.into_iter().collect();
    pairs.sort_by(|a, b| java_compare(a.0, b.0));
    pairs.dedup_by(|a, b| a.0 == b.0);
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut text = Zeroizing::new(joined.join("&"));
    text.push_str("&app_key=");
    text.push_str(key.expose());
    text
}

/// `checkOpenSign(appKey, sign, reqBody)`: whether `sign` is the signature of `raw_body`.
pub fn check_open_sign(key: &AppKey, sign: &str, raw_body: &str) -> bool {
    let expected = open_sign(signed_fields(raw_body), key);
    bool::from(expected.as_bytes().ct_eq(sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn java_split_semantics() {
        assert_eq!(java_split("", '='), vec![""]);
        assert_eq!(java_split("k", '='), vec!["k"]);
        assert_eq!(java_split("k=", '='), vec!["k"]);
        assert_eq!(java_split("k==", '='), vec!["k"]);
        assert_eq!(java_split("=", '='), Vec::<&str>::new());
        assert_eq!(java_split("=v", '='), vec!["", "v"]);
        assert_eq!(java_split("k=a=b", '='), vec!["k", "a", "b"]);
        assert_eq!(java_split("k=a=", '='), vec!["k", "a"]);
        assert_eq!(java_split("a=1&&b=2&", '&'), vec!["a=1", "", "b=2"]);
        assert_eq!(java_split("&a=1", '&'), vec!["", "a=1"]);
    }

    #[test]
    fn blank_is_java_blank() {
        assert!(!is_not_blank(""));
        assert!(!is_not_blank(" \t\u{1F}\u{3000}"));
        assert!(is_not_blank("\u{A0}")); // NBSP is not whitespace to Java
        assert!(is_not_blank("+"));
        assert!(is_not_blank("%20"));
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+FF61 sorts after U+1F600 in UTF-8 byte order but before it in UTF-16.
        assert_eq!(java_compare("\u{FF61}", "\u{1F600}"), Ordering::Greater);
        let key = AppKey::new("k").unwrap();
        let text = source_text([("\u{1F600}", "1"), ("\u{FF61}", "2")], &key);
        assert_eq!(text.as_str(), "\u{1F600}=1&\u{FF61}=2&app_key=k");
    }

    #[test]
    fn keys_are_never_printed() {
        assert_eq!(
            format!("{:?}", AppKey::new("x").unwrap()),
            "AppKey(<redacted>)"
        );
        assert!(AppKey::new("").is_err());
        assert!(AppKey::new("a b").is_err());
    }
}

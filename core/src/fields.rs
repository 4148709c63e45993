//! Validated field types shared by every upstream: order numbers, amounts, texts, openids, URLs.
//!
//! Each type can only hold a value that WeChat Pay accepts, so a bad input is refused where it
//! enters (with the field's name) instead of as an upstream `PARAM_ERROR` after a network round trip.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that does not fit its field's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct FieldError {
    /// The field's wire name, e.g. `out_trade_no`.
    pub field: &'static str,
    /// What is wrong, in words a client developer can act on.
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

macro_rules! string_field {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// For constants known to be valid; checked in debug builds.
            #[allow(dead_code)]
            pub(crate) fn from_known_valid(value: &str) -> Self {
                debug_assert!(Self::check(value).is_ok(), "{value:?}");
                Self(value.to_owned())
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(value: String) -> Result<Self, FieldError> {
                Self::check(&value)?;
                Ok(Self(value))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = FieldError;
            fn try_from(value: &str) -> Result<Self, FieldError> {
                Self::try_from(value.to_owned())
            }
        }

        impl std::str::FromStr for $name {
            type Err = FieldError;
            fn from_str(value: &str) -> Result<Self, FieldError> {
                Self::try_from(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }
    };
}

string_field!(
    /// The merchant's order number: 6–32 characters of `[0-9A-Za-z_-|*]`, unique per merchant.
    ///
    /// [`OutTradeNo::generate`] makes a time-ordered one of 24 alphanumerics, which every
    /// upstream accepts (weidoufu requires at least 18 alphanumerics).
    OutTradeNo
);

impl OutTradeNo {
    /// Shortest order number WeChat Pay accepts.
    pub const MIN_LEN: usize = 6;
    /// Longest order number WeChat Pay accepts.
    pub const MAX_LEN: usize = 32;

    fn check(value: &str) -> Result<(), FieldError> {
        let len = value.len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(FieldError::new(
                "out_trade_no",
                format!("must be 6 to 32 characters, got {len}"),
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '|' | '*')))
        {
            return Err(FieldError::new(
                "out_trade_no",
                format!("may only contain 0-9, A-Z, a-z, _, -, | and *, found {bad:?}"),
            ));
        }
        Ok(())
    }

    /// A new order number: the UTC time to the second (`YYYYMMDDHHMMSS`) followed by 10 random
    /// alphanumerics from the system CSPRNG, so numbers sort by creation time and never collide in
    /// practice.
    pub fn generate() -> Self {
        let now = time::OffsetDateTime::now_utc();
        let mut value = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        value.push_str(&crate::nonce::random_alphanumeric(10));
        Self(value)
    }
}

string_field!(
    /// The merchant's refund number: 1–64 characters of `[0-9A-Za-z_-|*@]`, unique per merchant
    /// (WeChat Pay's `out_refund_no`). The same number asked twice is one refund.
    ///
    /// [`OutRefundNo::generate`] makes a time-ordered one that every upstream accepts.
    OutRefundNo
);

impl OutRefundNo {
    /// Longest refund number WeChat Pay accepts.
    pub const MAX_LEN: usize = 64;

    fn check(value: &str) -> Result<(), FieldError> {
        let len = value.len();
        if !(1..=Self::MAX_LEN).contains(&len) {
            return Err(FieldError::new(
                "out_refund_no",
                format!("must be 1 to 64 characters, got {len}"),
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '|' | '*' | '@')))
        {
            return Err(FieldError::new(
                "out_refund_no",
                format!("may only contain 0-9, A-Z, a-z, _, -, |, * and @, found {bad:?}"),
            ));
        }
        Ok(())
    }

    /// A new refund number: `R`, the UTC time to the second and 10 random alphanumerics (25
    /// alphanumerics, which QFPay's and weidoufu's refund numbers accept too).
    pub fn generate() -> Self {
        let order = OutTradeNo::generate();
        Self(format!("R{}", order.as_str()))
    }
}

string_field!(
    /// Why a refund is made, shown to the payer: at most 80 characters, no control characters.
    RefundReason
);

impl RefundReason {
    /// Longest reason WeChat Pay accepts, in characters.
    pub const MAX_CHARS: usize = 80;

    fn check(value: &str) -> Result<(), FieldError> {
        let chars = value.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(FieldError::new(
                "reason",
                format!("must be at most 80 characters, got {chars}"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "reason",
                "must not contain control characters",
            ));
        }
        Ok(())
    }
}

string_field!(
    /// The order's description, shown to the payer: 1–127 characters.
    Description
);

impl Description {
    /// Longest description WeChat Pay accepts, in characters.
    pub const MAX_CHARS: usize = 127;

    fn check(value: &str) -> Result<(), FieldError> {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            return Err(FieldError::new("description", "must not be empty"));
        }
        if chars > Self::MAX_CHARS {
            return Err(FieldError::new(
                "description",
                format!("must be at most 127 characters, got {chars}"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "description",
                "must not contain control characters",
            ));
        }
        Ok(())
    }
}

string_field!(
    /// Merchant data passed through the payment and returned in the notification: at most 128
    /// characters, no control characters.
    Attach
);

impl Attach {
    /// Longest attach value WeChat Pay accepts, in characters.
    pub const MAX_CHARS: usize = 128;

    fn check(value: &str) -> Result<(), FieldError> {
        let chars = value.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(FieldError::new(
                "attach",
                format!("must be at most 128 characters, got {chars}"),
            ));
        }
        // Upstreams put it in XML, forms and signed text, where control characters are refused
        // or change the meaning.
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "attach",
                "must not contain control characters",
            ));
        }
        Ok(())
    }
}

string_field!(
    /// A payer's openid: the user's id under one appid, 1–128 characters of `[0-9A-Za-z_-]`.
    OpenId
);

impl OpenId {
    /// Longest openid accepted.
    pub const MAX_LEN: usize = 128;

    fn check(value: &str) -> Result<(), FieldError> {
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(FieldError::new("openid", "must be 1 to 128 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(FieldError::new(
                "openid",
                "may only contain 0-9, A-Z, a-z, _ and -",
            ));
        }
        Ok(())
    }
}

string_field!(
    /// A three-letter ISO 4217 currency code; WeChat Pay JSAPI in mainland China takes `CNY`.
    Currency
);

impl Currency {
    /// Renminbi, the only currency of WeChat Pay API v3 JSAPI for mainland merchants.
    pub fn cny() -> Self {
        Self("CNY".to_owned())
    }

    fn check(value: &str) -> Result<(), FieldError> {
        if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(FieldError::new(
                "currency",
                "must be three upper-case letters, e.g. CNY",
            ))
        }
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self::cny()
    }
}

string_field!(
    /// Where WeChat Pay sends the payment notification: an absolute `https` URL without a query
    /// string, at most 255 bytes.
    ///
    /// [`NotifyUrl::parse_for_local_development`] also accepts `http`, for a shop talking to the
    /// local sandbox.
    NotifyUrl
);

impl NotifyUrl {
    /// Longest notify URL WeChat Pay accepts.
    pub const MAX_LEN: usize = 255;

    fn check(value: &str) -> Result<(), FieldError> {
        Self::check_with_schemes(value, &["https"])
    }

    /// Accepts `http` as well as `https`. Real WeChat Pay refuses `http`; use this only against
    /// the sandbox.
    pub fn parse_for_local_development(value: &str) -> Result<Self, FieldError> {
        Self::check_with_schemes(value, &["https", "http"])?;
        Ok(Self(value.to_owned()))
    }

    fn check_with_schemes(value: &str, schemes: &[&str]) -> Result<(), FieldError> {
        if value.len() > Self::MAX_LEN {
            return Err(FieldError::new("notify_url", "must be at most 255 bytes"));
        }
        let url = reqwest::Url::parse(value)
            .map_err(|e| FieldError::new("notify_url", format!("not an absolute URL: {e}")))?;
        if !schemes.contains(&url.scheme()) {
            return Err(FieldError::new(
                "notify_url",
                format!("must use {}, got {}", schemes.join(" or "), url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(FieldError::new("notify_url", "must name a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(FieldError::new(
                "notify_url",
                "must not carry a query string or fragment",
            ));
        }
        Ok(())
    }
}

/// An amount of money in fen (1/100 yuan): WeChat Pay API v3 takes 1..=2 147 483 647.
///
/// Money is never a float here. The public API takes `u64`; the range check happens once, in
/// [`Amount::from_fen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Amount(u64);

impl Amount {
    /// Largest amount WeChat Pay API v3 accepts (`i32::MAX` fen).
    pub const MAX_FEN: u64 = i32::MAX as u64;

    /// An amount in fen, refused when it is 0 or above [`Amount::MAX_FEN`].
    pub fn from_fen(fen: u64) -> Result<Self, FieldError> {
        if fen == 0 {
            return Err(FieldError::new("amount", "must be at least 1 fen"));
        }
        if fen > Self::MAX_FEN {
            return Err(FieldError::new(
                "amount",
                format!("must be at most {} fen, got {fen}", Self::MAX_FEN),
            ));
        }
        Ok(Self(fen))
    }

    /// For constants known to be in range; checked in debug builds.
    pub(crate) const fn from_known_valid(fen: u64) -> Self {
        debug_assert!(fen >= 1 && fen <= Self::MAX_FEN);
        Self(fen)
    }

    /// The amount in fen.
    pub fn fen(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for Amount {
    type Error = FieldError;
    fn try_from(fen: u64) -> Result<Self, FieldError> {
        Self::from_fen(fen)
    }
}

impl From<Amount> for u64 {
    fn from(amount: Amount) -> u64 {
        amount.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} fen", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_trade_no_rules() {
        assert!(OutTradeNo::try_from("123456").is_ok());
        assert!(OutTradeNo::try_from("a_b-c|d*e").is_ok());
        assert!(OutTradeNo::try_from("12345").is_err());
        assert!(OutTradeNo::try_from("x".repeat(33)).is_err());
        let err = OutTradeNo::try_from("abc def").unwrap_err();
        assert_eq!(err.field, "out_trade_no");
        assert!(OutTradeNo::try_from("订单123456").is_err());
    }

    #[test]
    fn generated_out_trade_no_is_accepted_everywhere_and_time_ordered() {
        let a = OutTradeNo::generate();
        let b = OutTradeNo::generate();
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(OutTradeNo::try_from(a.as_str()).is_ok());
        assert!(a.as_str()[..14] <= b.as_str()[..14]);
    }

    #[test]
    fn amount_limits() {
        assert!(Amount::from_fen(0).is_err());
        assert_eq!(Amount::from_fen(1).unwrap().fen(), 1);
        assert!(Amount::from_fen(i32::MAX as u64).is_ok());
        assert!(Amount::from_fen(i32::MAX as u64 + 1).is_err());
        assert!(Amount::from_fen(u64::MAX).is_err());
        assert!(serde_json::from_str::<Amount>("0").is_err());
        assert!(serde_json::from_str::<Amount>("1.5").is_err());
        assert!(serde_json::from_str::<Amount>("-1").is_err());
        assert_eq!(serde_json::from_str::<Amount>("100").unwrap().fen(), 100);
    }

    #[test]
    fn description_counts_characters_not_bytes() {
        assert!(Description::try_from("测".repeat(127)).is_ok());
        assert!(Description::try_from("测".repeat(128)).is_err());
        assert!(Description::try_from("").is_err());
        assert!(Description::try_from("  ").is_err());
        assert!(Description::try_from("a\nb").is_err());
        assert!(Attach::try_from("a".repeat(128)).is_ok());
        assert!(Attach::try_from("a".repeat(129)).is_err());
    }

    #[test]
    fn openid_and_currency() {
        assert!(OpenId::try_from("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o").is_ok());
        assert!(OpenId::try_from("").is_err());
        assert!(OpenId::try_from("o<script>").is_err());
        assert!(Currency::try_from("CNY").is_ok());
        assert!(Currency::try_from("cny").is_err());
        assert_eq!(Currency::default().as_str(), "CNY");
    }

    #[test]
    fn notify_url_rules() {
        assert!(NotifyUrl::try_from("https://shop.example.com/wxpay/notify").is_ok());
        assert!(NotifyUrl::try_from("http://shop.example.com/wxpay/notify").is_err());
        assert!(NotifyUrl::try_from("https://shop.example.com/notify?a=1").is_err());
        assert!(NotifyUrl::try_from("https://shop.example.com/notify#x").is_err());
        assert!(NotifyUrl::try_from("/wxpay/notify").is_err());
        assert!(
            NotifyUrl::parse_for_local_development("http://127.0.0.1:3000/wxpay/notify").is_ok()
        );
        assert!(NotifyUrl::parse_for_local_development("ftp://127.0.0.1/notify").is_err());
    }
}

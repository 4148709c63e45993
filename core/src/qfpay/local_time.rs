//! QFPay's date-times: `YYYY-MM-DD hh:mm:ss` without a zone, in the merchant's local time.
//!
//! QFPay's public pages give `txdtm` as "transaction time" and `sysdtm` / `paydtm` as system
//! and payment times, all as `YYYY-MM-DD hh:mm:ss`, and never name a zone
//! (<https://sdk.qfapi.com/docs/api-reference/request-format>,
//! <https://sdk.qfapi.com/docs/common-api/async-notifications>).
//!
//! **Our choice:** they are read and written at a configurable UTC offset
//! ([`crate::qfpay::QfpayConfig::utc_offset`]) whose default, [`DEFAULT_UTC_OFFSET`], is
//! UTC+08:00: QFPay's API hosts serve Hong Kong and mainland China merchants (both UTC+8), and
//! its examples set `txdtm` from the merchant server's local clock. A merchant elsewhere (e.g.
//! Thailand, UTC+7) configures its own offset.

use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The offset QFPay date-times are read and written at unless configured otherwise: UTC+08:00.
pub const DEFAULT_UTC_OFFSET: UtcOffset = offset!(+8);

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// `at` as QFPay writes date-times (`YYYY-MM-DD hh:mm:ss`) at `offset`; sub-seconds are
/// dropped, so the same instant always gives the same text.
pub fn format(at: OffsetDateTime, offset: UtcOffset) -> String {
    let local = at.to_offset(offset);
    local
        .format(FORMAT)
        // Only years outside 0..=9999 fail to format; QFPay could not take them anyway.
        .unwrap_or_else(|_| String::from("0000-00-00 00:00:00"))
}

/// A QFPay date-time read at `offset`; `None` when it is not `YYYY-MM-DD hh:mm:ss`.
pub fn parse(text: &str, offset: UtcOffset) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text.trim(), FORMAT)
        .ok()
        .map(|local| local.assume_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_at_the_offset() {
        let at = OffsetDateTime::from_unix_timestamp(1_763_924_400).unwrap(); // 2025-11-23 19:00:00 UTC
        assert_eq!(format(at, DEFAULT_UTC_OFFSET), "2025-11-24 03:00:00");
        assert_eq!(format(at, UtcOffset::UTC), "2025-11-23 19:00:00");
        assert_eq!(parse("2025-11-24 03:00:00", DEFAULT_UTC_OFFSET), Some(at));
        assert_eq!(parse("2025-11-24T03:00:00", DEFAULT_UTC_OFFSET), None);
        assert_eq!(parse("", DEFAULT_UTC_OFFSET), None);
    }
}

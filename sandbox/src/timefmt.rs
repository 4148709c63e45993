//! Time helpers: WeChat Pay formats times as RFC 3339 in China Standard Time (`+08:00`).

use time::format_description::BorrowedFormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, UtcOffset};

/// China Standard Time.
pub(crate) const CST: UtcOffset = offset!(+8);

const RFC3339_CST: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);

const COMPACT: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second]");

/// `2024-05-01T12:00:00+08:00`.
pub(crate) fn rfc3339_cst(t: OffsetDateTime) -> String {
    t.to_offset(CST)
        .format(RFC3339_CST)
        .unwrap_or_else(|_| String::from("1970-01-01T08:00:00+08:00"))
}

/// `20240501120000` in China Standard Time.
pub(crate) fn compact_cst(t: OffsetDateTime) -> String {
    t.to_offset(CST)
        .format(COMPACT)
        .unwrap_or_else(|_| String::from("19700101080000"))
}

/// Parses an RFC 3339 time such as `2018-06-08T10:34:56+08:00`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Parses `20240501120000` as China Standard Time (API v2's `time_expire`).
pub(crate) fn parse_compact_cst(s: &str) -> Option<OffsetDateTime> {
    if s.len() != 14 {
        return None;
    }
    time::PrimitiveDateTime::parse(s, COMPACT)
        .ok()
        .map(|t| t.assume_offset(CST))
}

const SPACED: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// `2024-05-01 12:00:00` in China Standard Time (the gateway's `trade_pay_time`).
pub(crate) fn spaced_cst(t: OffsetDateTime) -> String {
    t.to_offset(CST)
        .format(SPACED)
        .unwrap_or_else(|_| String::from("1970-01-01 08:00:00"))
}

const SPRING: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000");

/// `2025-03-08T01:55:14.480+0000` in UTC, as a Spring Boot error body shows it.
pub(crate) fn spring_utc(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(SPRING)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000+0000"))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_unix_millis() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = OffsetDateTime::from_unix_timestamp(1_741_398_914).unwrap()
            + time::Duration::milliseconds(480);
        assert_eq!(spring_utc(t), "2025-03-08T01:55:14.480+0000");
        assert_eq!(spaced_cst(t), "2025-03-08 09:55:14");
        assert_eq!(compact_cst(t), "20250308095514");
        assert_eq!(
            parse_compact_cst("20250308095514")
                .unwrap()
                .unix_timestamp(),
            1_741_398_914
        );
        assert!(parse_compact_cst("2025030809551").is_none());
    }
}

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

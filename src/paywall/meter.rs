//! Meter periods: calendar months in UTC.

use time::{Date, Month, OffsetDateTime, Time};

/// The first instant of the month after `now`'s, in UTC: when the meter resets.
pub fn period_resets_at(now: OffsetDateTime) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    let (year, month) = match now.month() {
        Month::December => (now.year() + 1, Month::January),
        month => (now.year(), month.next()),
    };
    // The first of a month always exists.
    Date::from_calendar_date(year, month, 1)
        .map(|date| date.with_time(Time::MIDNIGHT).assume_utc())
        .unwrap_or(now)
}

/// The first instant of `now`'s month in UTC: the start of the current period.
pub fn period_starts_at(now: OffsetDateTime) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    now.replace_day(1)
        .map(|d| d.replace_time(Time::MIDNIGHT))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn periods_are_calendar_months_in_utc() {
        assert_eq!(
            period_resets_at(datetime!(2026-11-29 23:59:59 UTC)),
            datetime!(2026-12-01 00:00:00 UTC)
        );
        assert_eq!(
            period_resets_at(datetime!(2026-12-31 23:59:59.999 UTC)),
            datetime!(2027-01-01 00:00:00 UTC)
        );
        assert_eq!(
            period_resets_at(datetime!(2028-02-29 12:00 UTC)),
            datetime!(2028-03-01 00:00:00 UTC)
        );
        // 00:30 on 1 December in Paris is still November in UTC.
        assert_eq!(
            period_resets_at(datetime!(2026-12-01 00:30 +01:00)),
            datetime!(2026-12-01 00:00:00 UTC)
        );
        assert_eq!(
            period_starts_at(datetime!(2026-11-29 23:59:59 UTC)),
            datetime!(2026-11-01 00:00:00 UTC)
        );
    }
}

//! Timestamps and durations as people and programs read them: ISO-8601 in UTC for
//! JSON, a shorter UTC form and compact durations for terminals.
//!
//! The store keeps milliseconds since the Unix epoch; converting needs only the civil
//! calendar, so no time-zone database (and no dependency) is involved. Text output stays
//! in UTC too: the same store shows the same times on every machine.

/// `2026-01-01T00:00:00.000Z`: what every JSON output of the client uses.
pub fn iso8601_utc(unix_ms: u64) -> String {
    let (date, time, millis) = split(unix_ms);
    format!("{date}T{time}.{millis:03}Z")
}

/// `2026-01-01 00:00:00`: seconds are enough on a terminal, and the zone is always UTC
/// (said once in the headers that show these).
pub fn human_utc(unix_ms: u64) -> String {
    let (date, time, _) = split(unix_ms);
    format!("{date} {time}")
}

/// A duration for a terminal: `850ms`, `4.2s`, `3m 07s`, `2h 05m`, `3d 04h`.
pub fn human_duration(ms: u64) -> String {
    const SECOND: u64 = 1000;
    const MINUTE: u64 = 60 * SECOND;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    if ms < SECOND {
        format!("{ms}ms")
    } else if ms < MINUTE {
        // Tenths, truncated: a task that took 59.96 s never shows as "60.0s".
        format!("{}.{}s", ms / SECOND, ms % SECOND / 100)
    } else if ms < HOUR {
        format!("{}m {:02}s", ms / MINUTE, ms % MINUTE / SECOND)
    } else if ms < DAY {
        format!("{}h {:02}m", ms / HOUR, ms % HOUR / MINUTE)
    } else {
        format!("{}d {:02}h", ms / DAY, ms % DAY / HOUR)
    }
}

/// The date (`YYYY-MM-DD`), the time of day (`HH:MM:SS`) and the milliseconds.
fn split(unix_ms: u64) -> (String, String, u64) {
    let secs = unix_ms / 1000;
    let millis = unix_ms % 1000;
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        ),
        millis,
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, restricted to non-negative days, which is all a `u64` of
/// milliseconds can hold).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_epoch_and_known_dates() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        // 2026-01-01T00:00:00Z, the example of docs/datastore.md.
        assert_eq!(iso8601_utc(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(human_utc(1_767_225_660_123), "2026-01-01 00:01:00");
        // A leap day and the last millisecond of a leap year.
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_utc(978_307_199_999), "2000-12-31T23:59:59.999Z");
        // 2100 is not a leap year: 28 February is followed by 1 March.
        assert_eq!(iso8601_utc(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn the_largest_timestamp_does_not_overflow() {
        let text = iso8601_utc(u64::MAX);
        assert!(text.ends_with('Z'), "{text}");
    }

    #[test]
    fn durations_pick_a_unit_that_fits() {
        assert_eq!(human_duration(0), "0ms");
        assert_eq!(human_duration(850), "850ms");
        assert_eq!(human_duration(4_260), "4.2s");
        assert_eq!(human_duration(59_999), "59.9s");
        assert_eq!(human_duration(187_000), "3m 07s");
        assert_eq!(human_duration(7_500_000), "2h 05m");
        assert_eq!(human_duration(273_600_000), "3d 04h");
    }
}

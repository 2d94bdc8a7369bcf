//! Clocks: unix seconds, and Beijing time (China Standard Time, UTC+8, no daylight saving), which is
//! the account's day and how followers and operators read times.

use time::{OffsetDateTime, UtcOffset};

/// Beijing time's offset from UTC, in seconds.
pub(crate) const BEIJING_OFFSET: i64 = 8 * 3600;

/// The current time in unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The day number (days since 1970-01-01, Beijing time) of a unix time.
pub(crate) fn beijing_day(unix: i64) -> i64 {
    (unix + BEIJING_OFFSET).div_euclid(86_400)
}

/// The hour of the day (0–23, Beijing time) of a unix time.
pub(crate) fn beijing_hour(unix: i64) -> i64 {
    (unix + BEIJING_OFFSET).rem_euclid(86_400) / 3600
}

/// `2026-11-22 14:03` in Beijing time.
pub(crate) fn beijing_time(unix: i64) -> String {
    let offset = UtcOffset::from_whole_seconds(BEIJING_OFFSET as i32).expect("a valid offset");
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => {
            let t = t.to_offset(offset);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => unix.to_string(),
    }
}

/// `2026-11-22`: the date of a day number from [`beijing_day`].
pub(crate) fn beijing_date(day: i64) -> String {
    let mut date = beijing_time(day * 86_400 - BEIJING_OFFSET);
    date.truncate(10);
    date
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_days_start_at_midnight_utc_plus_8() {
        // 2026-11-21 16:00 UTC is 2026-11-22 00:00 in Beijing.
        let midnight = 1_795_276_800;
        assert_eq!(beijing_time(midnight), "2026-11-22 00:00");
        assert_eq!(beijing_day(midnight), beijing_day(midnight - 1) + 1);
        assert_eq!(beijing_date(beijing_day(midnight)), "2026-11-22");
        assert_eq!(beijing_date(beijing_day(midnight - 1)), "2026-11-21");
    }
}

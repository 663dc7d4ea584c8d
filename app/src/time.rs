//! How times are shown: `HH:MM` in the reader's time zone (UTC on the server, which cannot know
//! it) and RFC 3339 for `datetime` attributes.

/// `HH:MM` of a timestamp in the reader's local time (UTC where there is no browser).
pub fn clock(ms: i64) -> String {
    #[cfg(feature = "hydrate")]
    {
        crate::browser::local_clock(ms)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        utc_clock(ms)
    }
}

/// When a future moment is, in words: "at 14:05" today or within the next 20 hours, else
/// "in 3 days".
pub fn when(ms: i64) -> String {
    #[cfg(feature = "hydrate")]
    let now = js_sys::Date::now() as i64;
    #[cfg(not(feature = "hydrate"))]
    let now = ms;
    let hours = (ms - now) / 3_600_000;
    if hours < 20 {
        format!("at {}", clock(ms))
    } else {
        format!("in {} days", (hours + 23) / 24)
    }
}

/// `HH:MM` of a timestamp in UTC.
pub fn utc_clock(ms: i64) -> String {
    let minutes_of_day = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes_of_day / 60, minutes_of_day % 60)
}

/// RFC 3339 UTC time for the `datetime` attribute.
pub fn iso_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date; Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_time_formats_utc() {
        assert_eq!(super::iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::iso_time(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn utc_clock_is_hours_and_minutes() {
        assert_eq!(super::utc_clock(1_700_000_000_000), "22:13");
    }
}

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

/// The day a timestamp falls on, as days since 1970-01-01: in the reader's time zone when
/// `local` (only in the browser), else in UTC.
pub fn day_of(ms: i64, local: bool) -> i64 {
    #[cfg(feature = "hydrate")]
    let offset_ms = if local {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
        (date.get_timezone_offset() * 60_000.0) as i64
    } else {
        0
    };
    #[cfg(not(feature = "hydrate"))]
    let offset_ms = {
        let _ = local;
        0
    };
    (ms - offset_ms).div_euclid(86_400_000)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

/// A day (from [`day_of`]) in words: "Monday 30 November 2026".
pub fn day_label(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    let weekday = WEEKDAYS[day.rem_euclid(7) as usize];
    format!("{weekday} {d} {} {y}", MONTHS[(m - 1) as usize])
}

/// The full date and time of a timestamp, for a tooltip: "Monday 30 November 2026, 14:05"
/// (UTC, saying so, where there is no browser).
pub fn full_time(ms: i64, local: bool) -> String {
    let day = day_label(day_of(ms, local));
    if local {
        format!("{day}, {}", clock(ms))
    } else {
        format!("{day}, {} UTC", utc_clock(ms))
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
    use super::*;

    #[test]
    fn iso_time_formats_utc() {
        assert_eq!(super::iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::iso_time(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn days_are_named() {
        // 2026-11-30 00:00 UTC.
        let ms = 1_795_996_800_000;
        assert_eq!(day_of(ms, false), day_of(ms + 86_399_999, false));
        assert_eq!(day_label(day_of(ms, false)), "Monday 30 November 2026");
        assert_eq!(day_label(0), "Thursday 1 January 1970");
        assert_eq!(
            full_time(ms + 3_900_000, false),
            "Monday 30 November 2026, 01:05 UTC"
        );
    }

    #[test]
    fn utc_clock_is_hours_and_minutes() {
        assert_eq!(super::utc_clock(1_700_000_000_000), "22:13");
    }
}

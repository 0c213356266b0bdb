//! Unix time to UTC civil time, without a date library (for messages and listings).

/// Formats unix seconds as `2026-11-23 19:04:05Z` (UTC). Valid for the whole
/// `i64` range: years before 1 or after 9999 just get a sign or more digits.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`. Eras are 400-year cycles starting on
/// 0000-03-01, so that the leap day is the last day of a cycle's year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction: 1..=31 and 1..=12.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(-1), "1969-12-31 23:59:59Z");
        assert_eq!(utc(1_795_460_645), "2026-11-23 19:04:05Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc(951_868_800), "2000-03-01 00:00:00Z");
        assert_eq!(utc(-2_203_891_200), "1900-03-01 00:00:00Z");
        assert_eq!(utc(-2_203_891_201), "1900-02-28 23:59:59Z");
        assert_eq!(utc(253_402_300_799), "9999-12-31 23:59:59Z");
        assert_eq!(utc(4_107_542_400), "2100-03-01 00:00:00Z");
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert!(utc(i64::MAX).ends_with('Z'));
        assert!(utc(i64::MIN).starts_with('-'));
    }

    fn is_leap(y: i64) -> bool {
        (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
    }

    /// Walks day by day over about 2 × 2200 years, comparing with a naive
    /// calendar that adds one day at a time.
    #[test]
    fn agrees_with_a_naive_calendar_day_by_day() {
        let start = -800_000; // in the 3rd century BC
        let (mut y, mut m, mut d) = civil_from_days(start);
        for days in start..800_000 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let len = match m {
                2 if is_leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}

//! Civil dates and fixed UTC offsets: just enough calendar arithmetic to expand weekly
//! courses, with no time zone database (a course carries its own offset in minutes).

use std::fmt;
use std::str::FromStr;

use osvdi_model::UnixMillis;

use crate::error::SchedError;

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// A day of the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
}

impl FromStr for Weekday {
    type Err = SchedError;
    /// "mon" ... "sun", any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| Weekday::ALL[i])
            .ok_or_else(|| SchedError::InvalidDate(s.chars().take(16).collect()))
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl Date {
    /// The date, if it exists (years 1..=9999).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, SchedError> {
        if !(1..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
        {
            return Err(SchedError::InvalidDate(format!("{year}-{month}-{day}")));
        }
        Ok(Date { year, month, day })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
    pub fn from_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // Ranges: day 1..=31, month 1..=12; the year fits for any date we can build.
        Date {
            year: i32::try_from(year).unwrap_or(i32::MAX),
            month: u8::try_from(month).unwrap_or(1),
            day: u8::try_from(day).unwrap_or(1),
        }
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        let i = (self.days_since_epoch() + 3).rem_euclid(7);
        Weekday::ALL[usize::try_from(i).unwrap_or(0)]
    }

    /// The instant at `minute` minutes past local midnight of this date, in a zone
    /// `utc_offset_minutes` ahead of UTC (+60 for CET, -300 for EST).
    pub fn at(self, minute: u32, utc_offset_minutes: i32) -> UnixMillis {
        UnixMillis(
            self.days_since_epoch() * DAY_MS + i64::from(minute) * MINUTE_MS
                - i64::from(utc_offset_minutes) * MINUTE_MS,
        )
    }
}

impl FromStr for Date {
    type Err = SchedError;
    /// "YYYY-MM-DD".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SchedError::InvalidDate(s.chars().take(16).collect());
        let mut it = s.splitn(3, '-');
        let mut next = || it.next().ok_or_else(bad);
        let (y, m, d) = (next()?, next()?, next()?);
        Date::new(
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        )
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `t` as local "YYYY-MM-DD HH:MM" in a zone `utc_offset_minutes` ahead of UTC.
pub fn format_local(t: UnixMillis, utc_offset_minutes: i32) -> String {
    let local = t.0 + i64::from(utc_offset_minutes) * MINUTE_MS;
    let day = local.div_euclid(DAY_MS);
    let minute = local.rem_euclid(DAY_MS) / MINUTE_MS;
    format!(
        "{} {:02}:{:02}",
        Date::from_days(day),
        minute / 60,
        minute % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_weekdays() {
        let d: Date = "2025-03-11".parse().unwrap();
        assert_eq!(d.weekday(), Weekday::Tue);
        assert_eq!(Date::from_days(d.days_since_epoch()), d);
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(
            "2024-02-29".parse::<Date>().unwrap().weekday(),
            Weekday::Thu
        );
        for n in [-700_000, -1, 0, 59, 365 * 30 + 7, 2_900_000] {
            let d = Date::from_days(n);
            assert_eq!(d.days_since_epoch(), n, "{d}");
            assert_eq!(d.to_string().parse::<Date>().unwrap(), d);
        }
    }

    #[test]
    fn rejects_impossible_dates() {
        for s in [
            "2025-02-29",
            "2025-13-01",
            "2025-00-10",
            "2025-1",
            "x-1-1",
            "2025-04-31",
        ] {
            assert!(s.parse::<Date>().is_err(), "{s}");
        }
        assert!("2000-02-29".parse::<Date>().is_ok());
        assert!("1900-02-29".parse::<Date>().is_err());
        assert_eq!("TUE".parse::<Weekday>().unwrap(), Weekday::Tue);
        assert!("tues".parse::<Weekday>().is_err());
    }

    #[test]
    fn local_times_with_offsets() {
        let d: Date = "2025-03-11".parse().unwrap();
        // 10:00 at UTC+1 is 09:00 UTC.
        let t = d.at(600, 60);
        assert_eq!(t.0, 1_741_683_600_000);
        assert_eq!(format_local(t, 60), "2025-03-11 10:00");
        assert_eq!(format_local(t, 0), "2025-03-11 09:00");
        assert_eq!(format_local(t, -600), "2025-03-10 23:00");
    }
}

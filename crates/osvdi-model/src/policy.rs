//! Access policies of templates: from which client networks and in which weekly time windows
//! their desktops may be launched and used, and the per-template switches (auto-assign,
//! clipboard). Group membership is the template's sharing; the maximum session length is its
//! `max_lifetime_min`.
//!
//! Pure: callers resolve named networks and convert "now" into the policy's local time.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Days of the week, Monday first (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub fn as_str(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }

    fn label(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self as usize]
    }

    pub fn parse(s: &str) -> Option<Weekday> {
        Weekday::ALL
            .into_iter()
            .find(|d| d.as_str() == s.to_ascii_lowercase())
    }
}

/// Minutes after local midnight, 0..=1440 (1440 = the end of the day).
pub type Minute = u16;

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i16,
    pub month: u8,
    pub day: u8,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// "Now" in a schedule's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub date: Date,
    pub weekday: Weekday,
    pub minute: Minute,
}

/// Open on these weekdays from `start` to `end` (local time; `end` after `start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyWindow {
    pub days: Vec<Weekday>,
    pub start: Minute,
    pub end: Minute,
}

/// Open on one date from `start` to `end`, whatever the weekly windows say (an exam on a
/// Saturday, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraOpening {
    pub date: Date,
    pub start: Minute,
    pub end: Minute,
}

/// When desktops of a template may be used, in one IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub time_zone: String,
    pub windows: Vec<WeeklyWindow>,
    /// Dates on which the weekly windows do not apply (holidays).
    pub closed: Vec<Date>,
    pub extra: Vec<ExtraOpening>,
}

impl Schedule {
    pub fn allows(&self, now: LocalTime) -> bool {
        let in_range = |start: Minute, end: Minute| start <= now.minute && now.minute < end;
        if self
            .extra
            .iter()
            .any(|e| e.date == now.date && in_range(e.start, e.end))
        {
            return true;
        }
        if self.closed.contains(&now.date) {
            return false;
        }
        self.windows
            .iter()
            .any(|w| w.days.contains(&now.weekday) && in_range(w.start, w.end))
    }
}

/// Where clients may be: a network named in the site's configuration, or a literal CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRule {
    Named(String),
    Cidr(IpNet),
}

impl fmt::Display for NetworkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkRule::Named(n) => write!(f, "the {n} network"),
            NetworkRule::Cidr(c) => write!(f, "{c}"),
        }
    }
}

/// A template's access policy. The default allows everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Empty: any network.
    pub networks: Vec<NetworkRule>,
    /// `None`: any time.
    pub schedule: Option<Schedule>,
    /// A person who may use exactly this one template gets it started at login.
    pub auto_assign: bool,
    /// Whether the browser console passes the clipboard.
    pub clipboard: bool,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            networks: vec![],
            schedule: None,
            auto_assign: false,
            clipboard: true,
        }
    }
}

/// Why access is refused, as a sentence for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial(pub String);

fn hhmm(m: Minute) -> String {
    format!("{}:{:02}", m / 60, m % 60)
}

/// "Mon–Fri", "Mon, Wed, Fri", "every day".
fn days_label(days: &[Weekday]) -> String {
    let mut d = days.to_vec();
    d.sort();
    d.dedup();
    if d.len() == 7 {
        return "every day".into();
    }
    let consecutive = d.windows(2).all(|w| w[1] as usize == w[0] as usize + 1);
    if d.len() >= 3 && consecutive {
        return format!("{}–{}", d[0].label(), d[d.len() - 1].label());
    }
    d.iter().map(|x| x.label()).collect::<Vec<_>>().join(", ")
}

impl AccessPolicy {
    /// The policy in one sentence, e.g. "available Mon–Fri 8:00–20:00 (Europe/Berlin) from
    /// the campus network".
    pub fn describe(&self) -> String {
        let mut s = "available".to_owned();
        match &self.schedule {
            None => s.push_str(" at any time"),
            Some(sch) => {
                let windows: Vec<String> = sch
                    .windows
                    .iter()
                    .map(|w| format!("{} {}–{}", days_label(&w.days), hhmm(w.start), hhmm(w.end)))
                    .collect();
                if windows.is_empty() {
                    s.push_str(" only on special dates");
                } else {
                    s.push(' ');
                    s.push_str(&windows.join(" and "));
                }
                s.push_str(&format!(" ({})", sch.time_zone));
                if !sch.closed.is_empty() {
                    let dates: Vec<String> = sch.closed.iter().map(ToString::to_string).collect();
                    s.push_str(&format!(", closed on {}", dates.join(", ")));
                }
            }
        }
        if self.networks.is_empty() {
            s.push_str(" from anywhere");
        } else {
            let nets: Vec<String> = self.networks.iter().map(ToString::to_string).collect();
            s.push_str(&format!(" from {}", nets.join(" or ")));
        }
        s
    }

    /// Checks a client and a moment. `resolve` gives the CIDRs of a named network (empty if
    /// unknown: an unknown name admits nobody). `now` is `None` when there is no schedule.
    pub fn check(
        &self,
        client: Option<IpAddr>,
        resolve: impl Fn(&str) -> Vec<IpNet>,
        now: Option<LocalTime>,
    ) -> Result<(), Denial> {
        if let (Some(sch), Some(now)) = (&self.schedule, now)
            && !sch.allows(now)
        {
            return Err(Denial(format!(
                "This desktop is {}; it is now {} {} there",
                self.describe(),
                now.weekday.label(),
                hhmm(now.minute)
            )));
        }
        if !self.networks.is_empty() {
            let inside = client.is_some_and(|ip| {
                self.networks.iter().any(|rule| match rule {
                    NetworkRule::Cidr(net) => net.contains(&ip),
                    NetworkRule::Named(name) => resolve(name).iter().any(|net| net.contains(&ip)),
                })
            });
            if !inside {
                let from =
                    client.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
                return Err(Denial(format!(
                    "This desktop is {}; you are connecting from {from}",
                    self.describe()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(weekday: Weekday, h: u16, m: u16, day: u8) -> LocalTime {
        LocalTime {
            date: Date {
                year: 2026,
                month: 11,
                day,
            },
            weekday,
            minute: h * 60 + m,
        }
    }

    fn office_hours() -> AccessPolicy {
        AccessPolicy {
            networks: vec![NetworkRule::Named("campus".into())],
            schedule: Some(Schedule {
                time_zone: "Europe/Berlin".into(),
                windows: vec![WeeklyWindow {
                    days: vec![
                        Weekday::Mon,
                        Weekday::Tue,
                        Weekday::Wed,
                        Weekday::Thu,
                        Weekday::Fri,
                    ],
                    start: 8 * 60,
                    end: 20 * 60,
                }],
                closed: vec![Date {
                    year: 2026,
                    month: 12,
                    day: 24,
                }],
                extra: vec![ExtraOpening {
                    date: Date {
                        year: 2026,
                        month: 11,
                        day: 21,
                    },
                    start: 9 * 60,
                    end: 13 * 60,
                }],
            }),
            ..AccessPolicy::default()
        }
    }

    fn campus(name: &str) -> Vec<IpNet> {
        if name == "campus" {
            vec!["10.0.0.0/8".parse().unwrap()]
        } else {
            vec![]
        }
    }

    #[test]
    fn describes_itself_like_a_person_would() {
        assert_eq!(
            office_hours().describe(),
            "available Mon–Fri 8:00–20:00 (Europe/Berlin), closed on 2026-12-24 from the campus network"
        );
        assert_eq!(
            AccessPolicy::default().describe(),
            "available at any time from anywhere"
        );
        assert_eq!(days_label(&[Weekday::Mon, Weekday::Wed]), "Mon, Wed");
        assert_eq!(days_label(&Weekday::ALL), "every day");
    }

    #[test]
    fn time_windows_closed_dates_and_extra_openings() {
        let p = office_hours();
        let on_campus = Some("10.1.2.3".parse().unwrap());
        assert!(
            p.check(on_campus, campus, Some(at(Weekday::Mon, 8, 0, 16)))
                .is_ok()
        );
        assert!(
            p.check(on_campus, campus, Some(at(Weekday::Mon, 19, 59, 16)))
                .is_ok()
        );
        let late = p
            .check(on_campus, campus, Some(at(Weekday::Mon, 20, 0, 16)))
            .unwrap_err();
        assert!(late.0.ends_with("it is now Mon 20:00 there"), "{}", late.0);
        assert!(
            p.check(on_campus, campus, Some(at(Weekday::Sun, 10, 0, 22)))
                .is_err()
        );
        // Saturday 21st: an extra opening 9:00-13:00.
        assert!(
            p.check(on_campus, campus, Some(at(Weekday::Sat, 10, 0, 21)))
                .is_ok()
        );
        assert!(
            p.check(on_campus, campus, Some(at(Weekday::Sat, 14, 0, 21)))
                .is_err()
        );
        // Christmas Eve is a Thursday, but closed.
        let xmas = LocalTime {
            date: Date {
                year: 2026,
                month: 12,
                day: 24,
            },
            weekday: Weekday::Thu,
            minute: 600,
        };
        assert!(p.check(on_campus, campus, Some(xmas)).is_err());
    }

    #[test]
    fn networks_named_and_literal() {
        let p = office_hours();
        let monday = Some(at(Weekday::Mon, 9, 0, 16));
        let away = p
            .check(Some("192.0.2.7".parse().unwrap()), campus, monday)
            .unwrap_err();
        assert!(
            away.0
                .contains("the campus network; you are connecting from 192.0.2.7"),
            "{}",
            away.0
        );
        assert!(
            p.check(None, campus, monday).is_err(),
            "an unknown address is not on campus"
        );
        assert!(
            p.check(Some("10.0.0.1".parse().unwrap()), |_| vec![], monday)
                .is_err(),
            "unknown name admits nobody"
        );
        let literal = AccessPolicy {
            networks: vec![NetworkRule::Cidr("2001:db8::/32".parse().unwrap())],
            ..AccessPolicy::default()
        };
        assert!(
            literal
                .check(Some("2001:db8::5".parse().unwrap()), campus, None)
                .is_ok()
        );
        assert!(AccessPolicy::default().check(None, campus, None).is_ok());
    }
}

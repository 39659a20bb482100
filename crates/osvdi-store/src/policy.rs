//! The stored form of access policies: JSON in `templates.policy`, through mirror types so
//! that the domain types carry no serde.

use osvdi_model::{AccessPolicy, Date, ExtraOpening, NetworkRule, Schedule, Weekday, WeeklyWindow};
use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

#[derive(Serialize, Deserialize)]
struct PolicyRow {
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    schedule: Option<ScheduleRow>,
    #[serde(default)]
    auto_assign: bool,
    #[serde(default = "yes")]
    clipboard: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
struct ScheduleRow {
    time_zone: String,
    windows: Vec<(Vec<String>, u16, u16)>,
    closed: Vec<(i16, u8, u8)>,
    extra: Vec<((i16, u8, u8), u16, u16)>,
}

pub(crate) fn encode(p: &AccessPolicy) -> String {
    if *p == AccessPolicy::default() {
        return String::new();
    }
    let date = |d: &Date| (d.year, d.month, d.day);
    let row = PolicyRow {
        networks: p
            .networks
            .iter()
            .map(|n| match n {
                NetworkRule::Named(name) => format!("name:{name}"),
                NetworkRule::Cidr(c) => c.to_string(),
            })
            .collect(),
        schedule: p.schedule.as_ref().map(|s| ScheduleRow {
            time_zone: s.time_zone.clone(),
            windows: s
                .windows
                .iter()
                .map(|w| {
                    (
                        w.days.iter().map(|d| d.as_str().to_owned()).collect(),
                        w.start,
                        w.end,
                    )
                })
                .collect(),
            closed: s.closed.iter().map(date).collect(),
            extra: s
                .extra
                .iter()
                .map(|e| (date(&e.date), e.start, e.end))
                .collect(),
        }),
        auto_assign: p.auto_assign,
        clipboard: p.clipboard,
    };
    // Serialising plain strings, numbers and vectors cannot fail.
    serde_json::to_string(&row).unwrap_or_default()
}

pub(crate) fn decode(text: &str) -> Result<AccessPolicy> {
    if text.is_empty() {
        return Ok(AccessPolicy::default());
    }
    let bad = |what: &str| StoreError::Corrupt(format!("policy: {what}"));
    let row: PolicyRow = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let date = |(year, month, day): (i16, u8, u8)| Date { year, month, day };
    let networks = row
        .networks
        .iter()
        .map(|n| match n.strip_prefix("name:") {
            Some(name) => Ok(NetworkRule::Named(name.to_owned())),
            None => n.parse().map(NetworkRule::Cidr).map_err(|_| bad(n)),
        })
        .collect::<Result<_>>()?;
    let schedule = match row.schedule {
        None => None,
        Some(s) => Some(Schedule {
            time_zone: s.time_zone,
            windows: s
                .windows
                .into_iter()
                .map(|(days, start, end)| {
                    let days = days
                        .iter()
                        .map(|d| Weekday::parse(d).ok_or_else(|| bad(d)))
                        .collect::<Result<_>>()?;
                    Ok(WeeklyWindow { days, start, end })
                })
                .collect::<Result<_>>()?,
            closed: s.closed.into_iter().map(date).collect(),
            extra: s
                .extra
                .into_iter()
                .map(|(d, start, end)| ExtraOpening {
                    date: date(d),
                    start,
                    end,
                })
                .collect(),
        }),
    };
    Ok(AccessPolicy {
        networks,
        schedule,
        auto_assign: row.auto_assign,
        clipboard: row.clipboard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = AccessPolicy {
            networks: vec![
                NetworkRule::Named("campus".into()),
                NetworkRule::Cidr("192.0.2.0/24".parse().unwrap()),
            ],
            schedule: Some(Schedule {
                time_zone: "Europe/Berlin".into(),
                windows: vec![WeeklyWindow {
                    days: vec![Weekday::Mon, Weekday::Fri],
                    start: 480,
                    end: 1200,
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
                    start: 540,
                    end: 780,
                }],
            }),
            auto_assign: true,
            clipboard: false,
        };
        assert_eq!(decode(&encode(&p)).unwrap(), p);
        assert_eq!(encode(&AccessPolicy::default()), "");
        assert_eq!(decode("").unwrap(), AccessPolicy::default());
        assert!(decode("{\"networks\": [\"not a cidr\"]}").is_err());
    }
}

//! Access policies of templates: who may launch and connect, from where, when. The rules are
//! in `osvdi_model::AccessPolicy`; here they meet the clock (in the policy's time zone), the
//! site's named networks and the caller. Group membership is the template's sharing.

use std::net::IpAddr;
use std::sync::Arc;

use osvdi_model::{
    AccessPolicy, AuditAction, AuditOutcome, Date, Desktop, LocalTime, NetworkRule, Template,
    TemplateId, UnixMillis, Weekday, can_manage_template,
};

use crate::{Caller, Core, CoreError, Result};

/// What a person sees about a template's availability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub available: bool,
    /// The policy in a sentence ("available Mon–Fri 8:00–20:00 (Europe/Berlin) from the campus
    /// network").
    pub description: String,
    /// Why not now, when not available.
    pub denied_reason: Option<String>,
}

/// `now` as a civil time in the IANA zone `tz`.
fn local_time(now: UnixMillis, tz: &str) -> Result<LocalTime> {
    let zone = jiff::tz::TimeZone::get(tz)
        .map_err(|_| CoreError::Invalid(format!("Unknown time zone '{tz}'")))?;
    let ts =
        jiff::Timestamp::from_millisecond(now.0).map_err(|e| CoreError::Internal(e.to_string()))?;
    let dt = ts.to_zoned(zone).datetime();
    let weekday = Weekday::ALL[dt.weekday().to_monday_zero_offset() as usize];
    let minute = u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).unwrap_or(0);
    let date = Date {
        year: dt.year(),
        month: u8::try_from(dt.month()).unwrap_or(1),
        day: u8::try_from(dt.day()).unwrap_or(1),
    };
    Ok(LocalTime {
        date,
        weekday,
        minute,
    })
}

impl Core {
    fn evaluate(
        &self,
        policy: &AccessPolicy,
        client: Option<IpAddr>,
    ) -> Result<std::result::Result<(), String>> {
        let now = match &policy.schedule {
            Some(s) => Some(local_time(self.now(), &s.time_zone)?),
            None => None,
        };
        let resolve = |name: &str| self.config.networks.get(name).cloned().unwrap_or_default();
        Ok(policy.check(client, resolve, now).map_err(|d| d.0))
    }

    /// Whether `caller` may launch or connect to a desktop of `template` from `client` now.
    /// The template's steward and admins are not bound by it (they maintain the template).
    pub(crate) async fn check_access(
        &self,
        caller: &Caller,
        template: &Template,
        client: Option<IpAddr>,
    ) -> Result<()> {
        if can_manage_template(&caller.who, template) {
            return Ok(());
        }
        self.evaluate(&template.policy, client)?
            .map_err(CoreError::Forbidden)
    }

    /// Availability of a template for the caller, for the catalogue.
    pub fn access(&self, caller: &Caller, template: &Template) -> Access {
        let description = template.policy.describe();
        let outcome = if can_manage_template(&caller.who, template) {
            Ok(Ok(()))
        } else {
            self.evaluate(&template.policy, caller.client)
        };
        match outcome {
            Ok(Ok(())) => Access {
                available: true,
                description,
                denied_reason: None,
            },
            Ok(Err(reason)) => Access {
                available: false,
                description,
                denied_reason: Some(reason),
            },
            Err(e) => Access {
                available: false,
                description,
                denied_reason: Some(e.to_string()),
            },
        }
    }

    /// Replaces a template's access policy (its steward and admins). Named networks must be
    /// defined in the site's configuration and the time zone must exist.
    pub async fn set_policy(
        &self,
        caller: &Caller,
        id: TemplateId,
        policy: AccessPolicy,
    ) -> Result<Template> {
        self.managed_template(caller, id).await?;
        for n in &policy.networks {
            if let NetworkRule::Named(name) = n
                && !self.config.networks.contains_key(name)
            {
                let known: Vec<&str> = self.config.networks.keys().map(String::as_str).collect();
                return Err(CoreError::Invalid(format!(
                    "Unknown network '{name}'; the site defines: {}",
                    if known.is_empty() {
                        "none (see [networks] in the config file)".into()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        if let Some(s) = &policy.schedule {
            local_time(self.now(), &s.time_zone)?;
            let windows = s
                .windows
                .iter()
                .map(|w| (w.start, w.end, w.days.is_empty()));
            let extras = s.extra.iter().map(|e| (e.start, e.end, false));
            for (start, end, no_days) in windows.chain(extras) {
                if start >= end || end > 24 * 60 || no_days {
                    return Err(CoreError::Invalid(
                        "Each time window needs days and a start before its end, within one day"
                            .into(),
                    ));
                }
            }
        }
        self.store.set_policy(id, &policy, self.now()).await?;
        let object = format!("template:{id}");
        self.record(
            caller,
            AuditAction::TemplatePolicy,
            object,
            AuditOutcome::Success,
            policy.describe(),
        )
        .await;
        self.template(caller, id).await
    }

    /// At login: a person who may use exactly one template, marked auto-assign and available
    /// now, gets a desktop of it (their live one, or a new one). `None` otherwise.
    pub async fn auto_assign(self: &Arc<Self>, caller: &Caller) -> Result<Option<Desktop>> {
        let usable: Vec<Template> = self
            .list_templates(caller)
            .await?
            .into_iter()
            .filter(|t| t.current_version.is_some() && self.access(caller, t).available)
            .collect();
        let [only] = usable.as_slice() else {
            return Ok(None);
        };
        if !only.policy.auto_assign {
            return Ok(None);
        }
        let live = self.store.desktops(Some(caller.who.id), true).await?;
        if let Some(d) = live.into_iter().find(|d| d.template == only.id) {
            return Ok(Some(d));
        }
        self.launch(caller, only.id).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_follows_the_zone_and_daylight_saving() {
        // 2026-11-21 06:00 UTC is a Saturday, 07:00 in Berlin (CET, UTC+1).
        let t = local_time(UnixMillis(1_795_240_800_000), "Europe/Berlin").unwrap();
        assert_eq!(
            (t.weekday, t.minute, t.date.day),
            (Weekday::Sat, 7 * 60, 21)
        );
        // 2026-07-01 06:00 UTC: 08:00 in Berlin (CEST, UTC+2), a Wednesday.
        let t = local_time(UnixMillis(1_782_885_600_000), "Europe/Berlin").unwrap();
        assert_eq!((t.weekday, t.minute), (Weekday::Wed, 8 * 60));
        assert!(local_time(UnixMillis(0), "Mars/Olympus").is_err());
    }
}

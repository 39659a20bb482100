//! Warm pools: desktops started before anyone asks, so that a person gets a ready desktop at
//! once. Course slots get theirs a lead time before the slot (learned from observed boot
//! times); on-demand templates keep `warm_pool` never-used desktops ready. The scheduler's
//! `plan_warm` decides; this module carries the plan out. A warm desktop is owned by its
//! template's steward but hidden from and unusable by them; once handed to a person it is
//! never warm again, so no desktop is ever handed to a second person.

use std::collections::BTreeMap;
use std::sync::Arc;

use osvdi_model::{Desktop, DesktopId, Template};
use osvdi_scheduler as sched;

use crate::{Core, CoreError, Result};

/// What one warm pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WarmReport {
    pub started: u32,
    pub released: u32,
    pub stopped: u32,
}

impl Core {
    /// Plans the warm pools and carries the plan out.
    pub async fn tend_warm_pools(self: &Arc<Self>) -> Result<WarmReport> {
        let mut report = WarmReport::default();
        let templates: BTreeMap<String, Template> = self
            .store
            .list_templates()
            .await?
            .into_iter()
            .filter(|t| t.current_version.is_some())
            .map(|t| (t.id.to_string(), t))
            .collect();
        let min_idle: BTreeMap<sched::TemplateKey, u32> = templates
            .values()
            .filter(|t| t.spec.warm_pool > 0)
            .map(|t| (sched::TemplateKey::from(t.id.to_string()), t.spec.warm_pool))
            .collect();
        let calendar = self.calendar().await?;
        let live = self.store.desktops(None, true).await?;
        if min_idle.is_empty() && calendar.reservations().is_empty() && !live.iter().any(|d| d.warm)
        {
            return Ok(report);
        }
        let settings = sched::WarmSettings {
            min_idle,
            ..sched::WarmSettings::default()
        };
        let boots: Vec<sched::BootSample> = self
            .store
            .boot_times(500)
            .await?
            .into_iter()
            .map(|(t, millis)| sched::BootSample {
                template: sched::TemplateKey::from(t.to_string()),
                millis,
            })
            .collect();
        let pool: Vec<sched::PoolDesktop> = live
            .iter()
            .filter(|d| d.warm)
            .map(|d| sched::PoolDesktop {
                desktop: sched::DesktopKey::from(d.id.to_string()),
                template: sched::TemplateKey::from(d.template.to_string()),
                reservation: d.reservation.as_deref().and_then(crate::courses::slot_ref),
                used: false,
            })
            .collect();
        let now = self.now();
        for action in sched::plan_warm(now, &calendar, &boots, &settings, &pool) {
            match action {
                sched::WarmAction::Start {
                    template,
                    count,
                    reservation,
                } => {
                    let Some(t) = templates.get(template.as_str()) else {
                        continue;
                    };
                    for _ in 0..count {
                        match self.start_warm(t, reservation.as_ref(), &calendar).await {
                            Ok(true) => report.started += 1,
                            Ok(false) => break,
                            Err(e) => {
                                tracing::warn!(template = %t.spec.name, error = %e, "cannot start a warm desktop");
                                break;
                            }
                        }
                    }
                }
                sched::WarmAction::Release { desktop } => {
                    if let Ok(id) = desktop.as_str().parse::<DesktopId>() {
                        self.store.release_warm(id).await?;
                        report.released += 1;
                    }
                }
                sched::WarmAction::Stop { desktop } => {
                    let Some(d) = live.iter().find(|d| d.id.to_string() == desktop.as_str()) else {
                        continue;
                    };
                    if self
                        .end_for(d, Some("Ended: warm desktop no longer needed"))
                        .await
                        .is_ok()
                    {
                        report.stopped += 1;
                    }
                }
            }
        }
        if report != WarmReport::default() {
            tracing::info!(?report, "warm pools");
        }
        Ok(report)
    }

    /// Starts one warm desktop of `t` (for `slot`, or the on-demand pool); false when the
    /// scheduler finds no room.
    async fn start_warm(
        self: &Arc<Self>,
        t: &Template,
        slot: Option<&sched::SlotRef>,
        calendar: &sched::Calendar,
    ) -> Result<bool> {
        let version = t
            .current_version
            .ok_or_else(|| CoreError::Internal("template without image".into()))?;
        let now = self.now();
        let mut d = Desktop::requested(t.owner, t.id, version, now, None);
        d.warm = true;
        let key = sched::DesktopKey::from(d.id.to_string());
        let allocations = self.allocations().await?;
        let inventory = self.inventory().await?;
        let decision = match slot {
            Some(s) => {
                sched::admit_for_reservation(now, calendar, &inventory, &allocations, &key, s)
            }
            None => {
                let ask = sched::OnDemand {
                    desktop: key,
                    request: crate::courses::shape(t),
                    groups: vec![],
                    end: None,
                };
                sched::admit_on_demand(now, calendar, &inventory, &allocations, &ask)
            }
        }
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        let Some(a) = decision.allocation() else {
            return Ok(false);
        };
        d.expires_at = a.end;
        d.reservation = slot.map(|s| format!("{}:{}", s.course, s.index));
        self.store.create_desktop(&d).await?;
        self.announce(&d);
        let core = Arc::clone(self);
        let template = t.clone();
        tokio::spawn(async move { core.provision(d, template).await });
        Ok(true)
    }
}

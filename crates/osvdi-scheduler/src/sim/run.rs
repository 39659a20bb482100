//! The simulation as it runs: the desktops holding room (with what the broker knows of each:
//! template, warm or handed out, usable from when), the events acted on one by one, and a tick
//! every simulated minute that plans warm pools and samples GPU use.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use osvdi_model::UnixMillis;

use super::events::{Event, events};
use super::{Arrivals, Outcomes, SimConfig, SimReport, Waits, permille};
use crate::admission::admit_course;
use crate::calendar::{Calendar, SlotRef, covering_reservation};
use crate::civil::MINUTE_MS;
use crate::feasibility::check_from;
use crate::model::{
    Allocation, DesktopKey, DesktopRequest, GpuSharing, GroupKey, Inventory, MdevType, TemplateKey,
};
use crate::ondemand::{Decision, OnDemand, admit_for_reservation, admit_on_demand};
use crate::rng::SplitMix64;
use crate::warm::{BootSample, PoolDesktop, WarmAction, lead_time, plan_warm};

/// How often the broker's planner runs and GPU use is sampled.
const TICK_MS: i64 = MINUTE_MS;

/// What the broker knows of a desktop holding room.
#[derive(Debug)]
struct Desk {
    template: TemplateKey,
    reservation: Option<SlotRef>,
    /// When it is usable (its boot done).
    ready_at: i64,
    /// Handed to someone.
    used: bool,
    /// The share of its GPU's capacity its vGPU instance takes (0 without one).
    vgpu_share: f64,
}

/// Boot times seen, the latest per template (as many as the lead time looks at).
#[derive(Debug, Default)]
struct Boots {
    latest: BTreeMap<TemplateKey, VecDeque<i64>>,
    /// `latest` flattened for [`lead_time`] (oldest first per template), rebuilt when stale.
    flat: Vec<BootSample>,
    stale: bool,
}

impl Boots {
    fn record(&mut self, template: &TemplateKey, millis: i64, window: usize) {
        let q = self.latest.entry(template.clone()).or_default();
        q.push_back(millis);
        while q.len() > window.max(1) {
            q.pop_front();
        }
        self.stale = true;
    }

    fn samples(&mut self) -> &[BootSample] {
        if self.stale {
            self.flat = self
                .latest
                .iter()
                .flat_map(|(t, q)| {
                    q.iter().map(|m| BootSample {
                        template: t.clone(),
                        millis: *m,
                    })
                })
                .collect();
            self.stale = false;
        }
        &self.flat
    }
}

struct Run<'a> {
    cfg: &'a SimConfig,
    inv: &'a Inventory,
    calendar: &'a Calendar,
    allocations: Vec<Allocation>,
    desks: BTreeMap<DesktopKey, Desk>,
    boots: Boots,
    boot_rng: SplitMix64,
    warm_keys: u64,
    last_type: BTreeMap<(usize, usize), MdevType>,
    broken: BTreeSet<SlotRef>,
    member_waits: Vec<i64>,
    on_demand_waits: Vec<i64>,
    /// Sum of the sampled vGPU shares (each in [0, number of GPUs]) and the samples taken.
    vgpu_sum: f64,
    samples: u64,
    /// The longest reservation slot (to find the reservations near a moment).
    longest_slot: i64,
    report: SimReport,
}

pub(super) fn run(cfg: &SimConfig) -> SimReport {
    let inv = &cfg.inventory;
    let mut report = SimReport {
        duration_ms: cfg.duration_ms,
        hosts: inv.hosts().len(),
        gpu_hosts: inv.hosts().iter().filter(|h| !h.gpus.is_empty()).count(),
        seed: cfg.seed,
        ..SimReport::default()
    };
    let end = UnixMillis(cfg.start.0.saturating_add(cfg.duration_ms));
    let in_horizon = |t: UnixMillis| cfg.start <= t && t < end;
    let mut calendar = Calendar::new();
    for c in &cfg.courses {
        match admit_course(&calendar, inv, c) {
            Ok(cal) => {
                calendar = cal;
                report.courses_admitted += 1;
            }
            Err(_) => {
                report.courses_refused += 1;
                let slots = c.slots().unwrap_or_default();
                report.reservations_offered += count(slots.iter().filter(|s| in_horizon(s.start)));
            }
        }
    }
    let admitted = count(
        calendar
            .reservations()
            .iter()
            .filter(|r| in_horizon(r.start)),
    );
    report.reservations_offered += admitted;
    let events = events(cfg, &calendar);
    let mut run = Run {
        cfg,
        inv,
        calendar: &calendar,
        allocations: Vec::new(),
        desks: BTreeMap::new(),
        boots: Boots::default(),
        boot_rng: SplitMix64::new(cfg.seed ^ 0xB007_B007_B007_B007),
        warm_keys: 0,
        last_type: BTreeMap::new(),
        broken: BTreeSet::new(),
        member_waits: Vec::new(),
        on_demand_waits: Vec::new(),
        vgpu_sum: 0.0,
        samples: 0,
        longest_slot: calendar
            .reservations()
            .iter()
            .map(|r| r.end.0 - r.start.0)
            .max()
            .unwrap_or(0),
        report,
    };
    let mut tick = cfg.start.0;
    for (n, (at, event)) in events.iter().enumerate() {
        while tick <= at.0 {
            run.tick(UnixMillis(tick));
            tick += TICK_MS;
        }
        run.expire(*at);
        match event {
            Event::Check { slot } => run.check(*at, slot),
            Event::Member {
                request,
                group,
                slot,
                end,
            } => run.member(*at, n, request, group, slot, *end),
            Event::OnDemand { stream, end } => run.on_demand(*at, n, stream, *end),
        }
    }
    while tick < end.0 {
        run.tick(UnixMillis(tick));
        tick += TICK_MS;
    }
    run.finish(admitted)
}

fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}

impl Run<'_> {
    /// Forgets the desktops that have ended by `t`.
    fn expire(&mut self, t: UnixMillis) {
        let desks = &mut self.desks;
        self.allocations.retain(|a| {
            let keep = a.runs_at(t);
            if !keep {
                desks.remove(&a.desktop);
            }
            keep
        });
    }

    fn tick(&mut self, t: UnixMillis) {
        self.expire(t);
        if self.plan_due(t) {
            self.plan(t);
        }
        self.sample();
    }

    /// A reservation starts: the check admission relies on, over the chain of reservations
    /// from here. Allocations come from the same inventory, so it cannot error.
    fn check(&mut self, at: UnixMillis, slot: &SlotRef) {
        let until = Some(self.calendar.quiet_from(at));
        if !matches!(
            check_from(self.inv, self.calendar, &self.allocations, at, until),
            Ok(Ok(()))
        ) {
            self.report.reservation_checks_failed += 1;
            self.broken.insert(slot.clone());
        }
    }

    fn member(
        &mut self,
        at: UnixMillis,
        n: usize,
        request: &DesktopRequest,
        group: &GroupKey,
        slot: &SlotRef,
        end: UnixMillis,
    ) {
        self.report.members.requests += 1;
        // A desktop started ahead for the slot, the soonest usable.
        if let Some(key) = self.idle_desk(|d| d.reservation.as_ref() == Some(slot)) {
            self.report.members.admitted += 1;
            let wait = self.hand_out(&key, at);
            self.member_waits.push(wait);
            self.report.members_wait.warm += 1;
            return;
        }
        let groups = vec![group.clone()];
        let covered = covering_reservation(
            self.calendar,
            &self.allocations,
            &groups,
            &request.template,
            at,
        )
        .is_some();
        let ask = OnDemand {
            desktop: format!("d{n}").into(),
            request: request.clone(),
            groups,
            end: Some(end),
        };
        let decision = admit_on_demand(at, self.calendar, self.inv, &self.allocations, &ask);
        tally(&mut self.report.members, &decision);
        if covered && !matches!(decision, Ok(Decision::Admitted(_))) {
            self.report.guarantees_broken += 1;
            self.broken.insert(slot.clone());
        }
        if let Ok(Some(a)) = decision.as_ref().map(Decision::allocation) {
            let wait = self.start(a.clone(), &request.template, at, true);
            self.member_waits.push(wait);
        }
    }

    fn on_demand(&mut self, at: UnixMillis, n: usize, stream: &Arrivals, end: UnixMillis) {
        self.report.on_demand.requests += 1;
        let template = &stream.request.template;
        if let Some(key) = self.idle_desk(|d| d.reservation.is_none() && &d.template == template) {
            if self.extend(&key, at, end) {
                self.report.on_demand.admitted += 1;
            } else {
                self.report.on_demand.shortened += 1;
            }
            let wait = self.hand_out(&key, at);
            self.on_demand_waits.push(wait);
            self.report.on_demand_wait.warm += 1;
            return;
        }
        let ask = OnDemand {
            desktop: format!("d{n}").into(),
            request: stream.request.clone(),
            groups: stream.groups.clone(),
            end: Some(end),
        };
        let decision = admit_on_demand(at, self.calendar, self.inv, &self.allocations, &ask);
        tally(&mut self.report.on_demand, &decision);
        if let Ok(Some(a)) = decision.as_ref().map(Decision::allocation) {
            let wait = self.start(a.clone(), template, at, true);
            self.on_demand_waits.push(wait);
        }
    }

    /// The never-used started desktop matching `which` that is usable soonest.
    fn idle_desk(&self, which: impl Fn(&Desk) -> bool) -> Option<DesktopKey> {
        self.cfg.warm.as_ref()?;
        self.desks
            .iter()
            .filter(|(_, d)| !d.used && which(d))
            .min_by_key(|(k, d)| (d.ready_at, *k))
            .map(|(k, _)| k.clone())
    }

    /// Hands a started desktop to someone asking at `at`; returns how long they wait.
    fn hand_out(&mut self, key: &DesktopKey, at: UnixMillis) -> i64 {
        self.report.warm_used += 1;
        match self.desks.get_mut(key) {
            Some(d) => {
                d.used = true;
                (d.ready_at - at.0).max(0)
            }
            None => 0,
        }
    }

    /// Keeps pool desktop `key` until `end` if the reservations allow; whether they did (else
    /// it keeps its admitted end).
    fn extend(&mut self, key: &DesktopKey, at: UnixMillis, end: UnixMillis) -> bool {
        let Some(i) = self.allocations.iter().position(|a| &a.desktop == key) else {
            return false;
        };
        if self.allocations[i].end.is_none_or(|e| e >= end) {
            self.allocations[i].end = Some(end);
            return true;
        }
        let mut trial = self.allocations.clone();
        trial[i].end = Some(end);
        let until = Some(self.calendar.quiet_from(end));
        let ok = matches!(
            check_from(self.inv, self.calendar, &trial, at, until),
            Ok(Ok(()))
        );
        if ok {
            self.allocations = trial;
        }
        ok
    }

    /// Records a started desktop; returns when it is usable, from `at`.
    fn start(&mut self, a: Allocation, template: &TemplateKey, at: UnixMillis, used: bool) -> i64 {
        let boot = match self.cfg.boot_times.get(template) {
            Some(b) => b.sample(&mut self.boot_rng),
            None => 0,
        };
        let window = self.cfg.warm.as_ref().map_or(1, |w| w.settings.window);
        self.boots.record(template, boot, window);
        self.count_switch(&a);
        let vgpu_share = self.vgpu_share(&a);
        self.desks.insert(
            a.desktop.clone(),
            Desk {
                template: template.clone(),
                reservation: a.reservation.clone(),
                ready_at: at.0 + boot,
                used,
                vgpu_share,
            },
        );
        self.allocations.push(a);
        self.record_peak();
        boot
    }

    /// Whether the planner may have something to do at `t`: an on-demand pool off its size,
    /// or a reservation in its lead window short of started desktops. Only a shortcut: the
    /// planner decides.
    fn plan_due(&mut self, t: UnixMillis) -> bool {
        let cfg = self.cfg;
        let Some(warm) = &cfg.warm else {
            return false;
        };
        let s = &warm.settings;
        let mut idle: BTreeMap<&TemplateKey, u32> = BTreeMap::new();
        for d in self.desks.values() {
            if !d.used && d.reservation.is_none() {
                *idle.entry(&d.template).or_default() += 1;
            }
        }
        if idle.iter().any(|(t, n)| s.min_idle.get(*t) != Some(n))
            || s.min_idle
                .iter()
                .any(|(t, n)| *n > 0 && !idle.contains_key(t))
        {
            return true;
        }
        let boots = self.boots.samples();
        let res = self.calendar.reservations();
        let lo = res.partition_point(|r| r.start.0 < t.0 - self.longest_slot);
        let lead_of = |r: &crate::calendar::Reservation| lead_time(&r.shape.template, boots, s);
        for r in &res[lo..] {
            if r.shape.persistent || t >= r.end {
                continue;
            }
            let lead = lead_of(r);
            if t.0 < r.start.0.saturating_sub(lead) {
                // Sorted by start; a later one may have a longer lead, so look a day ahead.
                if r.start.0 - t.0 > 24 * 60 * MINUTE_MS {
                    break;
                }
                continue;
            }
            if t.0 >= r.end.0.saturating_sub(lead) {
                continue;
            }
            let have = self
                .desks
                .values()
                .filter(|d| d.reservation.as_ref() == Some(&r.slot))
                .count();
            if have < usize::try_from(r.count).unwrap_or(usize::MAX) {
                return true;
            }
        }
        false
    }

    /// Runs the warm-pool planner and does what it says.
    fn plan(&mut self, t: UnixMillis) {
        let cfg = self.cfg;
        let Some(warm) = &cfg.warm else {
            return;
        };
        let pool: Vec<PoolDesktop> = self
            .desks
            .iter()
            .map(|(k, d)| PoolDesktop {
                desktop: k.clone(),
                template: d.template.clone(),
                reservation: d.reservation.clone(),
                used: d.used,
            })
            .collect();
        let actions = plan_warm(
            t,
            self.calendar,
            self.boots.samples(),
            &warm.settings,
            &pool,
        );
        for action in actions {
            match action {
                WarmAction::Start {
                    template,
                    count,
                    reservation,
                } => {
                    for _ in 0..count {
                        if !self.start_warm(t, &template, reservation.as_ref(), warm.idle_hold_ms) {
                            break;
                        }
                    }
                }
                // A slot's desktops end with it, so what the planner would release is gone.
                WarmAction::Release { desktop } | WarmAction::Stop { desktop } => {
                    self.desks.remove(&desktop);
                    self.allocations.retain(|a| a.desktop != desktop);
                }
            }
        }
    }

    /// Starts one warm desktop; whether it was admitted.
    fn start_warm(
        &mut self,
        t: UnixMillis,
        template: &TemplateKey,
        slot: Option<&SlotRef>,
        hold_ms: i64,
    ) -> bool {
        self.warm_keys += 1;
        let key: DesktopKey = format!("w{}", self.warm_keys).into();
        let decision = match slot {
            Some(s) => {
                admit_for_reservation(t, self.calendar, self.inv, &self.allocations, &key, s)
            }
            None => {
                let Some(request) = self
                    .cfg
                    .arrivals
                    .iter()
                    .find(|a| &a.request.template == template)
                    .map(|a| a.request.clone())
                else {
                    return false;
                };
                let ask = OnDemand {
                    desktop: key,
                    request,
                    groups: Vec::new(),
                    end: Some(UnixMillis(t.0 + hold_ms.max(MINUTE_MS))),
                };
                admit_on_demand(t, self.calendar, self.inv, &self.allocations, &ask)
            }
        };
        match decision.as_ref().map(Decision::allocation) {
            Ok(Some(a)) => {
                self.report.warm_started += 1;
                self.start(a.clone(), template, t, false);
                true
            }
            _ => false,
        }
    }

    fn count_switch(&mut self, a: &Allocation) {
        let (Some(g), Some(h)) = (&a.gpu, self.inv.host_index(&a.host)) else {
            return;
        };
        if self.inv.hosts()[h].gpus[g.index].sharing != GpuSharing::SingleType {
            return;
        }
        if let Some(prev) = self.last_type.insert((h, g.index), g.mdev.clone())
            && prev != g.mdev
        {
            self.report.gpu_type_switches += 1;
        }
    }

    fn record_peak(&mut self) {
        let inv = self.inv;
        let total = inv.total();
        let (mut cpu, mut mem) = (0u64, 0u64);
        let mut gpus = BTreeSet::new();
        let mut hosts = BTreeSet::new();
        for a in &self.allocations {
            cpu += u64::from(a.resources.vcpus);
            mem += a.resources.memory_mb;
            if let Some(g) = &a.gpu {
                gpus.insert((&a.host, g.index));
            }
            hosts.insert(&a.host);
        }
        let all_gpus: usize = inv.hosts().iter().map(|h| h.gpus.len()).sum();
        let gpu_hosts = hosts
            .iter()
            .filter(|h| {
                inv.host_index(h)
                    .is_some_and(|i| !inv.hosts()[i].gpus.is_empty())
            })
            .count();
        let r = &mut self.report;
        r.peak_vcpu_permille = r
            .peak_vcpu_permille
            .max(permille(cpu, u64::from(total.vcpus)));
        r.peak_memory_permille = r.peak_memory_permille.max(permille(mem, total.memory_mb));
        r.peak_gpu_permille = r
            .peak_gpu_permille
            .max(permille(gpus.len() as u64, all_gpus as u64));
        r.peak_hosts = r.peak_hosts.max(count(hosts.iter()));
        r.peak_gpu_hosts = r
            .peak_gpu_hosts
            .max(u32::try_from(gpu_hosts).unwrap_or(u32::MAX));
    }

    /// The share of its GPU that the vGPU instance of `a` takes: one over the most
    /// instances of its type, or its weight over the budget on a mixed GPU.
    fn vgpu_share(&self, a: &Allocation) -> f64 {
        let (Some(g), Some(h)) = (&a.gpu, self.inv.host_index(&a.host)) else {
            return 0.0;
        };
        let gpu = &self.inv.hosts()[h].gpus[g.index];
        let Some(ty) = gpu.supports(&g.mdev) else {
            return 0.0;
        };
        match gpu.sharing {
            GpuSharing::SingleType => 1.0 / f64::from(ty.max_instances.max(1)),
            GpuSharing::Mixed { budget } => f64::from(ty.weight) / f64::from(budget.max(1)),
        }
    }

    /// Adds the share of vGPU capacity in use now to the mean (every desktop holding room
    /// has its desk).
    fn sample(&mut self) {
        self.vgpu_sum += self.desks.values().map(|d| d.vgpu_share).sum::<f64>();
        self.samples += 1;
    }

    fn finish(mut self, admitted_slots: u32) -> SimReport {
        let all_gpus: usize = self.inv.hosts().iter().map(|h| h.gpus.len()).sum();
        let denom = all_gpus as f64 * self.samples as f64;
        if denom > 0.0 {
            self.report.mean_vgpu_permille = (self.vgpu_sum / denom * 1000.0).round() as u32;
        }
        self.report.reservations_kept = admitted_slots.saturating_sub(count(self.broken.iter()));
        let (mw, ow) = (
            self.report.members_wait.warm,
            self.report.on_demand_wait.warm,
        );
        self.report.members_wait = waits(&mut self.member_waits, mw);
        self.report.on_demand_wait = waits(&mut self.on_demand_waits, ow);
        self.report
    }
}

fn tally(o: &mut Outcomes, d: &Result<Decision, crate::SchedError>) {
    match d {
        Ok(Decision::Admitted(_)) => o.admitted += 1,
        Ok(Decision::Shortened { .. }) => o.shortened += 1,
        Ok(Decision::Refused(_)) | Err(_) => o.refused += 1,
    }
}

/// Nearest-rank percentiles of the waits.
fn waits(v: &mut [i64], warm: u32) -> Waits {
    v.sort_unstable();
    let pct = |p: usize| {
        let n = v.len();
        if n == 0 {
            return 0;
        }
        v[(p * n).div_ceil(100).clamp(1, n) - 1]
    };
    Waits {
        desktops: count(v.iter()),
        warm,
        p50_ms: pct(50),
        p95_ms: pct(95),
    }
}

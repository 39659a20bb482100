//! Courses and capacity: every launch is admitted by the scheduler against this host's
//! capacity and the reservation calendar; courses are admitted only if every slot fits.
//!
//! The scheduler works with fixed UTC offsets; a weekly course in a time zone with daylight
//! saving is handed to it as one segment per offset (split where the offset changes).

use osvdi_model::{
    AuditAction, AuditOutcome, Course, CourseId, CourseSchedule, Date, DesktopId, GroupId,
    Template, TemplateId, UnixMillis, Weekday, can_manage_template,
};
use osvdi_scheduler as sched;
use osvdi_store::StoreError;

use crate::{Caller, Core, CoreError, Result};

/// The one host of the local backend.
const LOCAL: &str = "local";

/// A course to create.
#[derive(Debug, Clone)]
pub struct NewCourse {
    pub name: String,
    pub template: TemplateId,
    pub group: String,
    pub desktops: u32,
    pub schedule: CourseSchedule,
}

/// What the scheduler decided for a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    /// When the desktop must end (shortened for a reservation, or its slot's end).
    pub end: Option<UnixMillis>,
    /// The reservation slot it draws from.
    pub reservation: Option<String>,
    /// What to tell the person, when the lifetime was shortened.
    pub notice: Option<String>,
}

fn sched_weekday(d: Weekday) -> sched::Weekday {
    [
        sched::Weekday::Mon,
        sched::Weekday::Tue,
        sched::Weekday::Wed,
        sched::Weekday::Thu,
        sched::Weekday::Fri,
        sched::Weekday::Sat,
        sched::Weekday::Sun,
    ][d as usize]
}

fn sched_date(d: Date) -> Result<sched::Date> {
    sched::Date::new(i32::from(d.year), d.month, d.day)
        .map_err(|e| CoreError::Invalid(e.to_string()))
}

pub(crate) fn shape(t: &Template) -> sched::DesktopRequest {
    let mut r = sched::DesktopRequest::new(
        t.id.to_string(),
        sched::Resources {
            vcpus: t.spec.vcpus,
            memory_mb: u64::from(t.spec.memory_mb),
            disk_gb: u64::from(t.spec.disk_gb),
        },
    );
    r.vgpu = t.spec.vgpu_type.clone().map(sched::MdevType::from);
    r
}

/// The vGPU type of a template (cached in `seen`).
async fn shapes_vgpu(
    core: &Core,
    seen: &mut std::collections::HashMap<TemplateId, Option<String>>,
    t: TemplateId,
) -> Result<Option<String>> {
    if let Some(v) = seen.get(&t) {
        return Ok(v.clone());
    }
    let v = core.store.template(t).await?.spec.vgpu_type;
    seen.insert(t, v.clone());
    Ok(v)
}

/// Where a desktop is in the cloud: where the backend saw it land, or (not placed yet) the
/// first host with a GPU of its vGPU type, or the first host.
fn cloud_landing(
    cloud: &osvdi_compute::CloudHosts,
    d: DesktopId,
    vgpu: Option<&str>,
) -> (String, Option<sched::GpuSlot>) {
    let slot = |index: usize| {
        vgpu.map(|ty| sched::GpuSlot {
            index,
            mdev: sched::MdevType::from(ty.to_owned()),
        })
    };
    if let Some(p) = cloud.placed.get(&d) {
        return (p.host.clone(), p.gpu.and_then(slot));
    }
    let fits = cloud.hosts.iter().find_map(|h| match vgpu {
        Some(ty) => h
            .gpus
            .iter()
            .position(|g| g.vgpu_type == ty)
            .map(|i| (h.name.clone(), slot(i))),
        None => Some((h.name.clone(), None)),
    });
    fits.unwrap_or_else(|| {
        let first = cloud.hosts.first().map_or(LOCAL, |h| h.name.as_str());
        (first.to_owned(), None)
    })
}

/// A stored reservation tag ("course:index") as the scheduler's slot.
pub(crate) fn slot_ref(tag: &str) -> Option<sched::SlotRef> {
    let (course, index) = tag.rsplit_once(':')?;
    Some(sched::SlotRef {
        course: sched::CourseId::from(course.to_owned()),
        index: index.parse().ok()?,
    })
}

/// The UTC offset (minutes) of `tz` at local `date` `minute`.
fn offset_at(tz: &jiff::tz::TimeZone, date: Date, minute: u16) -> Result<i32> {
    let civil = jiff::civil::DateTime::new(
        date.year,
        i8::try_from(date.month).unwrap_or(1),
        i8::try_from(date.day).unwrap_or(1),
        i8::try_from(minute / 60).unwrap_or(0),
        i8::try_from(minute % 60).unwrap_or(0),
        0,
        0,
    )
    .map_err(|e| CoreError::Invalid(format!("Invalid date {date}: {e}")))?;
    let zoned = civil
        .to_zoned(tz.clone())
        .map_err(|e| CoreError::Invalid(e.to_string()))?;
    Ok(zoned.offset().seconds() / 60)
}

/// The scheduler's courses for one stored course: one per UTC offset segment.
fn sched_courses(c: &Course, t: &Template, group: &GroupId) -> Result<Vec<sched::Course>> {
    let base = |id: String, schedule, offset| sched::Course {
        id: sched::CourseId::from(id),
        group: sched::GroupKey::from(group.to_string()),
        shape: shape(t),
        count: c.desktops,
        schedule,
        utc_offset_minutes: offset,
    };
    match &c.schedule {
        CourseSchedule::Once { start, end } => Ok(vec![base(
            c.id.to_string(),
            sched::Schedule::Once(sched::Slot {
                start: *start,
                end: *end,
            }),
            0,
        )]),
        CourseSchedule::Weekly {
            first,
            last,
            days,
            start,
            end,
            except,
            time_zone,
        } => {
            let tz = jiff::tz::TimeZone::get(time_zone)
                .map_err(|_| CoreError::Invalid(format!("Unknown time zone '{time_zone}'")))?;
            let (first_s, last_s) = (sched_date(*first)?, sched_date(*last)?);
            if last_s.days_since_epoch() < first_s.days_since_epoch() {
                return Err(CoreError::Invalid(
                    "The course's last day is before its first".into(),
                ));
            }
            // Walk the days, cutting a new segment where the offset changes.
            let mut segments: Vec<(i64, i64, i32)> = vec![];
            for day in first_s.days_since_epoch()..=last_s.days_since_epoch() {
                let d = sched::Date::from_days(day);
                let date = Date {
                    year: i16::try_from(d.year()).unwrap_or(i16::MAX),
                    month: d.month(),
                    day: d.day(),
                };
                let off = offset_at(&tz, date, *start)?;
                match segments.last_mut() {
                    Some(seg) if seg.2 == off => seg.1 = day,
                    _ => segments.push((day, day, off)),
                }
            }
            let except: std::collections::BTreeSet<sched::Date> = except
                .iter()
                .map(|d| sched_date(*d))
                .collect::<Result<_>>()?;
            let many = segments.len() > 1;
            segments
                .into_iter()
                .enumerate()
                .map(|(i, (from, to, off))| {
                    let weekly = sched::Weekly {
                        first: sched::Date::from_days(from),
                        last: sched::Date::from_days(to),
                        days: days.iter().map(|d| sched_weekday(*d)).collect(),
                        start_minute: u32::from(*start),
                        minutes: u32::from(end.saturating_sub(*start)),
                        except: except.clone(),
                    };
                    let id = if many {
                        format!("{}~{i}", c.id)
                    } else {
                        c.id.to_string()
                    };
                    Ok(base(id, sched::Schedule::Weekly(weekly), off))
                })
                .collect()
        }
    }
}

impl Core {
    /// Where desktops run as the scheduler sees it: the backend's hosts when it spreads
    /// desktops over a cloud (read from Placement), else this machine with the configured
    /// capacity.
    pub(crate) async fn inventory(&self) -> Result<sched::Inventory> {
        if let Some(cloud) = self.cloud_hosts().await? {
            let hosts = cloud
                .hosts
                .iter()
                .map(|h| {
                    let mut host = sched::Host::new(
                        h.name.as_str(),
                        "cloud",
                        sched::Resources {
                            vcpus: h.vcpus,
                            memory_mb: h.memory_mb,
                            disk_gb: h.disk_gb,
                        },
                    );
                    for g in &h.gpus {
                        // A GPU others fill holds nothing for us now (the scheduler takes no
                        // type with no instances).
                        let types =
                            (g.instances > 0).then_some((g.vgpu_type.as_str(), g.instances));
                        host = host.with_gpu(sched::Gpu::single_type(types));
                    }
                    host
                })
                .collect();
            return sched::Inventory::new(hosts).map_err(|e| CoreError::Internal(e.to_string()));
        }
        let c = &self.config;
        let mut host = sched::Host::new(
            LOCAL,
            "local",
            sched::Resources {
                vcpus: c.host_vcpus,
                memory_mb: c.host_memory_mb,
                disk_gb: c.host_disk_gb,
            },
        );
        for gpu in self.local_gpus().0 {
            host = host.with_gpu(gpu);
        }
        sched::Inventory::new(vec![host]).map_err(|e| CoreError::Internal(e.to_string()))
    }

    /// The backend's hosts, when it has many (a cloud).
    async fn cloud_hosts(&self) -> Result<Option<osvdi_compute::CloudHosts>> {
        let Some(compute) = &self.compute else {
            return Ok(None);
        };
        compute
            .hosts()
            .await
            .map_err(|e| CoreError::Internal(format!("Cannot read the cloud's capacity: {e}")))
    }

    /// The host's physical GPUs as the scheduler models them, and which GPU (by index) each
    /// existing mdev instance is on. Read from sysfs each time: the kernel holds the state.
    ///
    /// A type's capacity is its free instances plus those in use. NVIDIA GPUs run one type
    /// at a time; GVT-g types share one budget, each instance weighing budget / capacity.
    fn local_gpus(
        &self,
    ) -> (
        Vec<sched::Gpu>,
        std::collections::HashMap<String, (usize, String)>,
    ) {
        let scan = match self.mdev.scan() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the mdev inventory; no vGPU capacity");
                return Default::default();
            }
        };
        let mut gpus = vec![];
        let mut instances = std::collections::HashMap::new();
        for g in &scan.gpus {
            let capacity = |t: &osvdi_compute::mdev::MdevType| {
                t.available_instances
                    + g.instances.iter().filter(|x| x.type_id == t.id).count() as u32
            };
            let gpu = if g.single_type {
                // While busy, an NVIDIA GPU offers only the type it runs (the others read 0).
                sched::Gpu::single_type(
                    g.types
                        .iter()
                        .filter(|t| capacity(t) > 0)
                        .map(|t| (t.id.as_str(), capacity(t))),
                )
            } else {
                const BUDGET: u32 = 1000;
                sched::Gpu::mixed(
                    BUDGET,
                    g.types
                        .iter()
                        .filter(|t| capacity(t) > 0)
                        .map(|t| (t.id.as_str(), BUDGET / capacity(t), capacity(t))),
                )
            };
            // A GPU that can hold nothing now holds no instance either: leave it out.
            if gpu.types.is_empty() {
                continue;
            }
            for x in &g.instances {
                instances.insert(x.uuid.to_string(), (gpus.len(), x.type_id.clone()));
            }
            gpus.push(gpu);
        }
        (gpus, instances)
    }

    /// The reservation calendar of every stored course.
    pub(crate) async fn calendar(&self) -> Result<sched::Calendar> {
        let mut cal = sched::Calendar::new();
        for c in self.store.courses().await? {
            let t = self.store.template(c.template).await?;
            for sc in sched_courses(&c, &t, &c.group)? {
                cal = cal
                    .restore(sc)
                    .map_err(|e| CoreError::Internal(e.to_string()))?;
            }
        }
        Ok(cal)
    }

    /// Every live desktop as the room it holds.
    pub(crate) async fn allocations(&self) -> Result<Vec<sched::Allocation>> {
        let mut out = vec![];
        let mut shapes = std::collections::HashMap::new();
        let mut vgpus = std::collections::HashMap::new();
        let gpu_of = self.local_gpus().1;
        let cloud = self.cloud_hosts().await?;
        for d in self.store.desktops(None, true).await? {
            let resources = match shapes.get(&d.template) {
                Some(r) => *r,
                None => {
                    let r = self
                        .store
                        .template(d.template)
                        .await
                        .map(|t| shape(&t).resources)?;
                    shapes.insert(d.template, r);
                    r
                }
            };
            let reservation = d.reservation.as_deref().and_then(slot_ref);
            let (host, gpu) = match &cloud {
                Some(c) => {
                    let vgpu = shapes_vgpu(self, &mut vgpus, d.template).await?;
                    cloud_landing(c, d.id, vgpu.as_deref())
                }
                None => (
                    LOCAL.to_owned(),
                    d.vgpu_instance
                        .as_ref()
                        .and_then(|u| gpu_of.get(u))
                        .map(|(index, ty)| sched::GpuSlot {
                            index: *index,
                            mdev: sched::MdevType::from(ty.clone()),
                        }),
                ),
            };
            out.push(sched::Allocation {
                desktop: sched::DesktopKey::from(d.id.to_string()),
                host: sched::HostId::from(host),
                resources,
                gpu,
                end: d.expires_at,
                reservation,
            });
        }
        Ok(out)
    }

    /// Hands `caller` a warm desktop started for an active course slot that covers them, if
    /// there is one.
    pub(crate) async fn claim_course_warm(
        &self,
        caller: &Caller,
        t: &Template,
        now: UnixMillis,
    ) -> Result<Option<osvdi_model::Desktop>> {
        let calendar = self.calendar().await?;
        let groups: Vec<sched::GroupKey> = caller
            .who
            .groups
            .iter()
            .map(|g| sched::GroupKey::from(g.to_string()))
            .collect();
        let template = sched::TemplateKey::from(t.id.to_string());
        for r in calendar
            .active_at(now)
            .filter(|r| r.shape.template == template && groups.contains(&r.group))
        {
            let tag = format!("{}:{}", r.slot.course, r.slot.index);
            if let Some(w) = self
                .store
                .claim_warm(t.id, Some(&tag), caller.who.id, Some(r.end), now)
                .await?
            {
                return Ok(Some(w));
            }
        }
        Ok(None)
    }

    /// Asks the scheduler whether a desktop of `t` for `caller` may start now and until when.
    pub(crate) async fn admit_launch(
        &self,
        caller: &Caller,
        t: &Template,
        id: DesktopId,
        end: Option<UnixMillis>,
    ) -> Result<Admission> {
        let now = self.now();
        let request = sched::OnDemand {
            desktop: sched::DesktopKey::from(id.to_string()),
            request: shape(t),
            groups: caller
                .who
                .groups
                .iter()
                .map(|g| sched::GroupKey::from(g.to_string()))
                .collect(),
            end,
        };
        let (calendar, allocations) = (self.calendar().await?, self.allocations().await?);
        let decision = sched::admit_on_demand(
            now,
            &calendar,
            &self.inventory().await?,
            &allocations,
            &request,
        )
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        if let (Some(a), Some(compute)) = (decision.allocation(), &self.compute) {
            compute.prefer_host(id, a.host.as_str());
        }
        match decision {
            sched::Decision::Admitted(a) => Ok(Admission {
                end: a.end,
                reservation: a.reservation.map(|s| format!("{}:{}", s.course, s.index)),
                notice: None,
            }),
            sched::Decision::Shortened {
                allocation,
                conflict,
            } => Ok(Admission {
                end: allocation.end,
                reservation: allocation
                    .reservation
                    .map(|s| format!("{}:{}", s.course, s.index)),
                notice: Some(format!(
                    "This desktop ends early, at {}: a course has reserved the room ({})",
                    sched::format_local(allocation.end.unwrap_or(now), 0),
                    conflict.describe(0)
                )),
            }),
            sched::Decision::Refused(r) => Err(CoreError::Conflict(format!(
                "No room for this desktop now: {r}"
            ))),
        }
    }

    /// Creates a course after checking that every slot fits beside the courses already
    /// accepted; otherwise refuses, naming the first slot that does not and what is missing.
    pub async fn create_course(&self, caller: &Caller, new: NewCourse) -> Result<Course> {
        if !caller.who.role.manages_templates() {
            return Err(CoreError::Forbidden(
                "Only stewards and admins book courses".into(),
            ));
        }
        let t = self.template(caller, new.template).await?;
        if !can_manage_template(&caller.who, &t) && !caller.who.role.is_admin() {
            return Err(CoreError::Forbidden(
                "Book courses on your own templates".into(),
            ));
        }
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::Invalid(
                "A course needs a name of 1 to 100 characters".into(),
            ));
        }
        if new.desktops == 0 || new.desktops > 10_000 {
            return Err(CoreError::Invalid(
                "A course reserves 1 to 10000 desktops".into(),
            ));
        }
        let group = self
            .store
            .group_by_name(&new.group)
            .await?
            .ok_or_else(|| CoreError::Invalid(format!("Unknown group '{}'", new.group)))?;
        let course = Course {
            id: DesktopId::random(),
            name: name.to_owned(),
            template: t.id,
            group: group.id,
            desktops: new.desktops,
            schedule: new.schedule,
            created_by: caller.who.id,
            created_at: self.now(),
        };
        let mut calendar = self.calendar().await?;
        let inventory = self.inventory().await?;
        for sc in sched_courses(&course, &t, &group.id)? {
            calendar = match sched::admit_course(&calendar, &inventory, &sc) {
                Ok(c) => c,
                Err(sched::SchedError::CourseConflict(conflict)) => {
                    let message = self.with_course_names(conflict.to_string(), &course).await;
                    let object = format!("course:{}", course.id);
                    self.record(
                        caller,
                        AuditAction::CourseCreate,
                        object,
                        AuditOutcome::Denied,
                        message.clone(),
                    )
                    .await;
                    return Err(CoreError::Conflict(message));
                }
                Err(e) => return Err(CoreError::Invalid(format!("Invalid course: {e}"))),
            };
        }
        match self.store.create_course(&course).await {
            Err(StoreError::Conflict) => {
                return Err(CoreError::Conflict(format!(
                    "A course named '{name}' exists"
                )));
            }
            r => r?,
        }
        let detail = format!(
            "{name}: {} x {} for {}",
            course.desktops, t.spec.name, group.name
        );
        self.record(
            caller,
            AuditAction::CourseCreate,
            format!("course:{}", course.id),
            AuditOutcome::Success,
            detail,
        )
        .await;
        Ok(course)
    }

    /// The scheduler names courses by id (with `~segment` and `#slot` suffixes); people know
    /// them by name.
    async fn with_course_names(&self, mut message: String, new: &Course) -> String {
        let mut known = self.store.courses().await.unwrap_or_default();
        known.push(new.clone());
        for c in &known {
            let id = c.id.to_string();
            while let Some(at) = message.find(&id) {
                let rest = &message[at + id.len()..];
                let suffix: usize = rest
                    .char_indices()
                    .take_while(|(i, ch)| {
                        matches!(ch, '~' | '#') || (*i > 0 && ch.is_ascii_digit())
                    })
                    .map(|(_, ch)| ch.len_utf8())
                    .sum();
                message.replace_range(at..at + id.len() + suffix, &format!("'{}'", c.name));
            }
        }
        message
    }

    /// Courses the caller may see: all for stewards and admins, their groups' for others.
    pub async fn courses(&self, caller: &Caller) -> Result<Vec<Course>> {
        let all = self.store.courses().await?;
        if caller.who.role.manages_templates() {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .filter(|c| caller.who.groups.contains(&c.group))
            .collect())
    }

    /// Names of groups, for display.
    pub async fn names_of_groups(&self, ids: &[GroupId]) -> Result<Vec<String>> {
        Ok(self
            .store
            .groups_by_ids(ids)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect())
    }

    /// Deletes a course (its creator or an admin). Desktops already drawn from it keep running.
    pub async fn delete_course(&self, caller: &Caller, id: CourseId) -> Result<()> {
        let c = self
            .store
            .course(id)
            .await
            .map_err(|_| CoreError::NotFound("Course"))?;
        if c.created_by != caller.who.id && !caller.who.role.is_admin() {
            return Err(CoreError::Forbidden(
                "Only the course's creator and admins delete it".into(),
            ));
        }
        self.store.delete_course(id).await?;
        self.record(
            caller,
            AuditAction::CourseDelete,
            format!("course:{id}"),
            AuditOutcome::Success,
            &c.name,
        )
        .await;
        Ok(())
    }

    /// The reservation slots of the next `days` days (admins: the capacity calendar).
    pub async fn capacity(
        &self,
        caller: &Caller,
        from: UnixMillis,
        days: u32,
    ) -> Result<Vec<SlotView>> {
        if !caller.who.role.manages_templates() {
            return Err(CoreError::Forbidden(
                "Only stewards and admins see the capacity calendar".into(),
            ));
        }
        let until = from.plus(std::time::Duration::from_secs(u64::from(days) * 86_400));
        let calendar = self.calendar().await?;
        let allocations = self.allocations().await?;
        Ok(calendar
            .reservations()
            .iter()
            .filter(|r| r.end > from && r.start < until)
            .map(|r| SlotView {
                course: r
                    .slot
                    .course
                    .as_str()
                    .split('~')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                start: r.start,
                end: r.end,
                reserved: r.count,
                in_use: allocations
                    .iter()
                    .filter(|a| a.reservation.as_ref() == Some(&r.slot))
                    .count() as u32,
            })
            .collect())
    }
}

/// One reservation slot, for the capacity calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    pub course: String,
    pub start: UnixMillis,
    pub end: UnixMillis,
    pub reserved: u32,
    pub in_use: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_desktops_count_where_they_landed() {
        use osvdi_compute::{CloudHosts, GpuCapacity, HostCapacity, Placed};
        let host = |name: &str, gpus: &[&str]| HostCapacity {
            name: name.into(),
            vcpus: 8,
            memory_mb: 8192,
            disk_gb: 100,
            gpus: gpus
                .iter()
                .map(|t| GpuCapacity {
                    vgpu_type: (*t).into(),
                    instances: 4,
                })
                .collect(),
        };
        let placed = DesktopId::random();
        let cloud = CloudHosts {
            hosts: vec![host("cpu-1", &[]), host("gpu-1", &["CUSTOM_A", "CUSTOM_B"])],
            placed: [(
                placed,
                Placed {
                    host: "gpu-1".into(),
                    gpu: Some(0),
                },
            )]
            .into(),
        };
        let (h, g) = cloud_landing(&cloud, placed, Some("CUSTOM_A"));
        assert_eq!((h.as_str(), g.map(|g| g.index)), ("gpu-1", Some(0)));
        // Not placed yet: the first host with a GPU of its type, or the first host.
        let (h, g) = cloud_landing(&cloud, DesktopId::random(), Some("CUSTOM_B"));
        assert_eq!((h.as_str(), g.map(|g| g.index)), ("gpu-1", Some(1)));
        let (h, g) = cloud_landing(&cloud, DesktopId::random(), None);
        assert_eq!((h.as_str(), g), ("cpu-1", None));
    }

    #[test]
    fn a_winter_semester_in_berlin_is_split_at_the_daylight_saving_change() {
        let t = Template {
            id: TemplateId::random(),
            spec: osvdi_model::TemplateSpec {
                name: "t".into(),
                description: String::new(),
                os: String::new(),
                vcpus: 2,
                memory_mb: 2048,
                disk_gb: 10,
                vgpu_type: None,
                protocols: vec![osvdi_model::DisplayProtocol::Vnc],
                tags: vec![],
                ready: osvdi_model::ReadyRule::default(),
                idle_timeout_min: None,
                max_lifetime_min: None,
                warm_pool: 0,
            },
            owner: osvdi_model::UserId::random(),
            visibility: osvdi_model::Visibility::Everyone,
            policy: osvdi_model::AccessPolicy::default(),
            shared_with: vec![],
            current_version: Some(1),
            created_at: UnixMillis(0),
            updated_at: UnixMillis(0),
        };
        let c = Course {
            id: DesktopId::random(),
            name: "c".into(),
            template: t.id,
            group: GroupId::random(),
            desktops: 3,
            schedule: CourseSchedule::Weekly {
                first: Date {
                    year: 2026,
                    month: 10,
                    day: 12,
                },
                last: Date {
                    year: 2027,
                    month: 2,
                    day: 5,
                },
                days: vec![Weekday::Tue],
                start: 10 * 60,
                end: 12 * 60,
                except: vec![],
                time_zone: "Europe/Berlin".into(),
            },
            created_by: osvdi_model::UserId::random(),
            created_at: UnixMillis(0),
        };
        let parts = sched_courses(&c, &t, &c.group).unwrap();
        let offsets: Vec<i32> = parts.iter().map(|p| p.utc_offset_minutes).collect();
        assert_eq!(offsets, [120, 60], "CEST until 25 October 2026, CET after");
        // Tuesday 13 October 2026, 10:00 CEST = 08:00 UTC.
        let first = parts[0].slots().unwrap()[0];
        assert_eq!(first.start, UnixMillis(1_791_878_400_000));
    }
}

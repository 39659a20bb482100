//! osvdi's scheduler: where a desktop goes (placement), which courses fit (advance
//! reservations and admission control), which desktops to start before they are asked for
//! (warm pools), and a simulator that drives them all.
//!
//! **Architecture Invariant:** this crate is pure. It does no IO, reads no clock and draws no
//! randomness it is not given: time is an argument ([`UnixMillis`]), the simulator takes a
//! seed. The same inputs give the same outputs, which is what makes its simulations and
//! property tests meaningful.
//!
//! Entry points: [`place`] (one desktop, now), [`admit_course`] (a course into a
//! [`Calendar`]), [`admit_on_demand`] (a desktop asked for now, beside the calendar),
//! [`plan_warm`] (pre-start and stop actions), [`simulate`] (days to a semester of courses and
//! arrivals, with boot times and warm pools).
//!
//! How the pieces fit: `model` and `usage` describe hosts, GPUs (one-type NVIDIA or mixed
//! GVT-g) and what is in use; `placement` filters and weighs hosts for one desktop;
//! `calendar` expands courses into slots (fixed UTC offset, no time zone database);
//! `feasibility` is the one check behind all admission: every reserved desktop still to
//! come must keep a host for its whole slot, desktops never moving once started;
//! `admission` and `ondemand` use it for courses and for desktops asked for now; `warm`
//! plans pre-started desktops; `sim` drives it all with a seeded `rng`.

mod admission;
mod calendar;
mod civil;
mod error;
mod feasibility;
mod model;
mod nofit;
mod ondemand;
mod placement;
mod rng;
mod scenario;
mod sim;
#[cfg(test)]
mod testkit;
mod usage;
mod warm;

pub use admission::{CourseConflict, admit_course};
pub use calendar::{
    Calendar, Course, MAX_SLOTS_PER_COURSE, Reservation, Schedule, Slot, SlotRef, Weekly,
    covering_reservation,
};
pub use civil::{DAY_MS, Date, MINUTE_MS, Weekday, format_local};
pub use error::SchedError;
pub use feasibility::{Shortfall, check_at, check_from};
pub use model::{
    Allocation, CourseId, DesktopKey, DesktopRequest, Gpu, GpuSharing, GpuSlot, GpuType, GroupKey,
    Host, HostId, Inventory, MdevType, Resources, Strategy, TemplateKey,
};
pub use nofit::{GpuShortage, NoFit};
pub use ondemand::{
    Decision, MAX_TRIES, OnDemand, Refusal, admit_for_reservation, admit_on_demand,
};
pub use osvdi_model::UnixMillis;
pub use placement::{PlaceOptions, Placement, host_fits, place, rank};
pub use rng::SplitMix64;
pub use sim::{
    Arrivals, BootTime, CourseAttendance, Outcomes, Rate, SimConfig, SimReport, Waits, WarmPools,
    WeekProfile, simulate,
};
pub use usage::{GpuBlock, GpuUsage, HostUsage, Usage, gpu_room};
pub use warm::{BootSample, PoolDesktop, WarmAction, WarmSettings, lead_time, plan_warm};

//! Fixtures shared by the crate's unit tests.

use crate::UnixMillis;
use crate::calendar::{Course, Schedule, Slot};
use crate::model::{DesktopRequest, Host, Inventory, Resources};

pub(crate) const H: i64 = 3_600_000;

pub(crate) fn shape(vcpus: u32) -> DesktopRequest {
    DesktopRequest::new("t", Resources::new(vcpus, 1024, 10))
}

/// One slot of `count` desktops of `vcpus` each, from hour `from_h` to hour `to_h`.
pub(crate) fn once(id: &str, count: u32, vcpus: u32, from_h: i64, to_h: i64) -> Course {
    Course {
        id: id.into(),
        group: "g".into(),
        shape: shape(vcpus),
        count,
        schedule: Schedule::Once(Slot {
            start: UnixMillis(from_h * H),
            end: UnixMillis(to_h * H),
        }),
        utc_offset_minutes: 0,
    }
}

/// Two hosts of 8 vCPUs.
pub(crate) fn inv() -> Inventory {
    let cap = Resources::new(8, 65_536, 1000);
    Inventory::new(vec![Host::new("a", "s", cap), Host::new("b", "s", cap)]).unwrap()
}

//! End-to-end tests of the `osvdi` binary: `serve` as a real process (first start, restart,
//! SIGTERM, SIGKILL mid-upload), the `admin` commands beside it, `template upload`, and the
//! logs it writes at every level.

mod support;

mod lifecycle;
mod openstack;
mod restart;
mod secrets;
mod simulate;
mod spice;

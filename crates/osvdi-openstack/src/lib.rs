//! The OpenStack backend of osvdi: a small typed REST client on `reqwest` for the four
//! services osvdi uses — Keystone v3 (password or application credential; the token is
//! renewed before it expires and once on a 401), Glance v2 (template images, streamed and
//! checked), Nova at compute 2.79 (servers, flavors, remote consoles) and Placement at 1.14
//! (nested resource providers for the scheduler) — and [`OpenStackBackend`], `trait Compute`
//! over them.
//!
//! Why not `openstack_sdk`: it builds in about six minutes and 15 MB here for a few dozen
//! calls; the calls osvdi makes fit in a few hundred lines, typed where osvdi reads them.

mod auth;
mod backend;
mod client;
mod config;
pub mod console;
mod error;
pub mod glance;
pub mod nova;
pub mod placement;

pub use auth::Token;
pub use backend::{OpenStackBackend, power_state};
pub use client::{COMPUTE_MICROVERSION, PLACEMENT_MICROVERSION, Service, Session};
pub use config::{
    Credentials, Interface, Network, OpenStackConfig, OpenStackFile, Secret, SuspendMode,
};
pub use error::OsError;

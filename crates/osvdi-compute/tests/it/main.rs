//! Integration tests of osvdi-compute against the real QEMU (TCG), with boot-sector guests
//! that print a ready marker on COM1 and halt.

mod display;
mod lifecycle;
mod probe;
mod restart;
mod support;

//! Integration tests: real images made with qemu-img/qemu-io, inspected with the real qemu-img.

mod formats;
mod qcow2;
mod raw;
mod support;
mod tooling;

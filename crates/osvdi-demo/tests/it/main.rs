//! Integration tests: build the demo image with the host's real tools, inspect it, boot it.

mod boot;
mod image;
mod support;

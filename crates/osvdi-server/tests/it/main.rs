//! Integration tests of the HTTP API against the real server on a loopback port, with a real
//! SQLite file and a real PostgreSQL (started by `scripts/with-postgres.sh`; `make test` does).
//!
//! Every case is an `async fn(TestServer)` and runs once per database (see `db_tests!`).

mod support;

mod accounts;
mod auth;
mod console;
mod courses;
mod oidc;
mod policies;
mod sessions;
mod sharing;
mod spice;
mod stream;
mod system;
mod upload;
mod x11;

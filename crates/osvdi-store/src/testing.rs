//! Test support (feature `testing`): a fresh, empty database on the PostgreSQL cluster that
//! `scripts/with-postgres.sh` starts, so that every test gets its own.

use sqlx::Connection;

/// The URL of a new empty database, or `None` when no test cluster is configured and none is
/// required (`OSVDI_REQUIRE_POSTGRES` unset): callers then skip their PostgreSQL half.
///
/// # Panics
/// When a cluster is required but missing or unreachable: that is a broken test set-up.
pub async fn fresh_postgres_database() -> Option<String> {
    let Ok(admin_url) = std::env::var("OSVDI_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("OSVDI_REQUIRE_POSTGRES").is_none(),
            "OSVDI_REQUIRE_POSTGRES is set but OSVDI_TEST_POSTGRES_URL is not"
        );
        eprintln!(
            "skipping the PostgreSQL half: OSVDI_TEST_POSTGRES_URL is not set (make test sets it)"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("osvdi_t_{:032x}", rand_u128());
    let mut conn = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("the URL names a database");
    Some(format!("{base}/{name}"))
}

/// Unique enough for database names: time and a process-wide counter, hashed.
fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let s = RandomState::new();
    let a = s.hash_one((std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let b = s.hash_one(std::time::SystemTime::now());
    (u128::from(a) << 64) | u128::from(b)
}

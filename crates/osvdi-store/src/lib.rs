//! osvdi's database: one [`Store`] over SQLite (the embedded default) or PostgreSQL, with the
//! same schema, migrations and semantics on both.
//!
//! Queries are written once, with `$1`-style placeholders that both engines accept, and run
//! through sqlx's `Any` driver. Types stay simple on purpose (TEXT, 64-bit integers) so that
//! a value reads back the same from either engine.

mod audit;
mod courses;
mod desktops;
mod error;
mod groups;
mod identities;
mod policy;
mod sessions;
mod templates;
#[cfg(feature = "testing")]
pub mod testing;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

pub use audit::AuditQuery;
pub use desktops::{DesktopEvent, Transition};
pub use error::StoreError;
pub use identities::{Identity, NO_PASSWORD};
pub use sessions::SessionRecord;
pub use templates::{NewVersion, ReadyVersion};
pub use users::UserRecord;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// The database: a connection pool plus the repositories as methods (see the modules).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// Connects to `url` (`sqlite:///path/osvdi.db` or `postgres://...`) and brings the schema
    /// up to date. SQLite files are created when missing.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url)?;
        let url = match engine {
            Engine::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(StoreError::Connect)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match engine {
                Engine::Sqlite => 4,
                Engine::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets the CLI write while the server runs; the busy timeout makes
                        // a writer wait for another instead of failing at once.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 15000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        let migrator = match engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        tracing::debug!(?engine, "database ready");
        Ok(Store { pool, engine })
    }

    /// The SQLite URL for the database file of a data directory.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}", path.display())
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// A transaction that will write. On SQLite it takes the write lock at once, so that two
    /// writers queue on the busy timeout instead of one failing when it upgrades its read lock.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A trivial query: whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        let row = sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        let _: i64 = row
            .try_get(0)
            .or_else(|_| row.try_get::<i32, _>(0).map(i64::from))?;
        Ok(())
    }
}

/// Reading model values back from text and integer columns.
mod conv {
    use std::str::FromStr;

    use osvdi_model::UnixMillis;
    use sqlx::Row;
    use sqlx::any::AnyRow;

    use crate::{Result, StoreError};

    pub(crate) fn parse<T: FromStr>(row: &AnyRow, col: &str) -> Result<T> {
        let s: String = row.try_get(col)?;
        s.parse()
            .map_err(|_| StoreError::Corrupt(format!("column {col} holds '{s}'")))
    }

    pub(crate) fn parse_opt<T: FromStr>(row: &AnyRow, col: &str) -> Result<Option<T>> {
        let s: Option<String> = row.try_get(col)?;
        s.map(|s| {
            s.parse()
                .map_err(|_| StoreError::Corrupt(format!("column {col} holds '{s}'")))
        })
        .transpose()
    }

    pub(crate) fn millis(row: &AnyRow, col: &str) -> Result<UnixMillis> {
        Ok(UnixMillis(row.try_get(col)?))
    }

    pub(crate) fn u32_col(row: &AnyRow, col: &str) -> Result<u32> {
        let v: i64 = row.try_get(col)?;
        u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("column {col} holds {v}")))
    }

    pub(crate) fn opt_u32(row: &AnyRow, col: &str) -> Result<Option<u32>> {
        let v: Option<i64> = row.try_get(col)?;
        v.map(|v| {
            u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("column {col} holds {v}")))
        })
        .transpose()
    }

    pub(crate) fn u64_col(row: &AnyRow, col: &str) -> Result<u64> {
        let v: i64 = row.try_get(col)?;
        u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("column {col} holds {v}")))
    }

    /// Byte counts are stored as signed 64-bit integers.
    pub(crate) fn i64_of(v: u64) -> i64 {
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    /// Comma-separated lists of items that never contain commas (tags, protocol names).
    pub(crate) fn list(row: &AnyRow, col: &str) -> Result<Vec<String>> {
        let s: String = row.try_get(col)?;
        Ok(s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

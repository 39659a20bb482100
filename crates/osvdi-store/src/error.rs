//! The store's error type.

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Unsupported database URL; use sqlite://PATH or postgres://...")]
    UnsupportedUrl,
    #[error("Cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("Database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A uniqueness rule was broken: the name (or the one running upload) already exists.
    #[error("Already exists")]
    Conflict,
    /// The object refers to another that does not exist, or is referred to and cannot go.
    #[error("Referenced object missing or still in use")]
    Reference,
    /// Desktops still use the template or version.
    #[error("In use by {desktops} desktop(s)")]
    InUse { desktops: u64 },
    #[error("Not found")]
    NotFound,
    /// A stored value could not be read back into its domain type.
    #[error("Corrupt stored value: {0}")]
    Corrupt(String),
    #[error("Database error")]
    Db(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            if db.is_unique_violation() {
                return StoreError::Conflict;
            }
            if db.is_foreign_key_violation() {
                return StoreError::Reference;
            }
        }
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            e => StoreError::Db(e),
        }
    }
}

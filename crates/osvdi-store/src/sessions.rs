//! Login sessions, kept by the SHA-256 of their token (the token itself is never stored).

use osvdi_model::{UnixMillis, User, UserId};

use crate::conv::millis;
use crate::users::user_from;
use crate::{Result, Store};

/// A live login session with its user.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: User,
    pub expires_at: UnixMillis,
}

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: UserId,
        now: UnixMillis,
        expires_at: UnixMillis,
        client: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_sessions (token_hash, user_id, created_at, expires_at, client) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(now.0)
        .bind(expires_at.0)
        .bind(client)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this token hash if it exists and has not expired at `now`.
    pub async fn session(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT u.*, s.expires_at AS session_expires_at FROM auth_sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                user: user_from(&r)?,
                expires_at: millis(&r, "session_expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session; returns false if there was none.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM auth_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of a user (after a role change or deletion, say).
    pub async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Forgets sessions that expired before `now`.
    pub async fn purge_expired_sessions(&self, now: UnixMillis) -> Result<u64> {
        let done = sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1")
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

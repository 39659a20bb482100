//! Accounts.

use osvdi_model::{Role, UnixMillis, User, UserId};
use sqlx::any::AnyRow;

use crate::conv::{millis, parse};
use crate::{Result, Store, StoreError};

/// A user with the password hash, for the core's login check only.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

pub(crate) fn user_from(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: parse(row, "id")?,
        name: sqlx::Row::try_get(row, "name")?,
        role: parse(row, "role")?,
        created_at: millis(row, "created_at")?,
    })
}

impl Store {
    /// Adds an account. [`StoreError::Conflict`] if the name is taken.
    pub async fn create_user(&self, user: &User, password_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, name, role, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(user.id.to_string())
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(password_hash)
        .bind(user.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(UserRecord {
                user: user_from(&r)?,
                password_hash: sqlx::Row::try_get(&r, "password_hash")?,
            })
        })
        .transpose()
    }

    pub async fn user_record(&self, id: UserId) -> Result<UserRecord> {
        let r = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(UserRecord {
            user: user_from(&r)?,
            password_hash: sqlx::Row::try_get(&r, "password_hash")?,
        })
    }

    pub async fn user(&self, id: UserId) -> Result<User> {
        Ok(self.user_record(id).await?.user)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn count_users(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        crate::conv::u64_col(&row, "n")
    }

    /// Replaces the password hash and ends every login session of the user but `keep` (the
    /// hash of the session that made the change, if any), in one transaction.
    pub async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        keep: Option<&str>,
        now: UnixMillis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(now.0)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(id.to_string())
            .bind(keep.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_role(&self, id: UserId, role: Role, now: UnixMillis) -> Result<()> {
        let done = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(now.0)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Removes an account with its sessions and memberships. Refused with
    /// [`StoreError::Reference`] while it owns templates or desktops.
    pub async fn delete_user(&self, id: UserId) -> Result<()> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

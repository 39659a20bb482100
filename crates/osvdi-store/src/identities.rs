//! OpenID Connect identities, the group memberships mapping rules granted, and the provider
//! behind a login session (for RP-initiated logout).

use osvdi_model::{GroupId, Role, UnixMillis, User, UserId};
use sqlx::any::AnyRow;

use crate::conv::{millis, parse, parse_opt};
use crate::{Result, Store};

/// What a password hash column holds for accounts that log in only through a provider: no
/// password verifies against it.
pub const NO_PASSWORD: &str = "!sso";

/// One person at one identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub user: UserId,
    /// The provider's id in the config file at the last login.
    pub provider: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// The role the mapping rules gave at the last login.
    pub mapped_role: Option<Role>,
    pub claims_digest: String,
    pub created_at: UnixMillis,
    pub last_login_at: UnixMillis,
}

fn identity_from(row: &AnyRow) -> Result<Identity> {
    Ok(Identity {
        issuer: sqlx::Row::try_get(row, "issuer")?,
        subject: sqlx::Row::try_get(row, "subject")?,
        user: parse(row, "user_id")?,
        provider: sqlx::Row::try_get(row, "provider")?,
        display_name: sqlx::Row::try_get(row, "display_name")?,
        email: sqlx::Row::try_get(row, "email")?,
        mapped_role: parse_opt(row, "mapped_role")?,
        claims_digest: sqlx::Row::try_get(row, "claims_digest")?,
        created_at: millis(row, "created_at")?,
        last_login_at: millis(row, "last_login_at")?,
    })
}

impl Store {
    pub async fn identity(&self, issuer: &str, subject: &str) -> Result<Option<Identity>> {
        let row = sqlx::query("SELECT * FROM oidc_identities WHERE issuer = $1 AND subject = $2")
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(identity_from).transpose()
    }

    /// The provider identities of an account.
    pub async fn identities_of(&self, user: UserId) -> Result<Vec<Identity>> {
        let rows = sqlx::query("SELECT * FROM oidc_identities WHERE user_id = $1 ORDER BY issuer")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(identity_from).collect()
    }

    /// Creates an account (without a password) and its identity in one transaction.
    /// [`crate::StoreError::Conflict`] if the user name is taken or the identity exists.
    pub async fn create_identity_user(&self, user: &User, identity: &Identity) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, name, role, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(user.id.to_string())
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(NO_PASSWORD)
        .bind(user.created_at.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO oidc_identities (issuer, subject, user_id, provider, display_name, \
             email, mapped_role, claims_digest, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .bind(user.id.to_string())
        .bind(&identity.provider)
        .bind(identity.display_name.as_deref())
        .bind(identity.email.as_deref())
        .bind(identity.mapped_role.map(Role::as_str))
        .bind(&identity.claims_digest)
        .bind(identity.created_at.0)
        .bind(identity.last_login_at.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Refreshes what a login tells about an identity.
    pub async fn update_identity(&self, identity: &Identity) -> Result<()> {
        sqlx::query(
            "UPDATE oidc_identities SET provider = $1, display_name = $2, email = $3, \
             mapped_role = $4, claims_digest = $5, last_login_at = $6 \
             WHERE issuer = $7 AND subject = $8",
        )
        .bind(&identity.provider)
        .bind(identity.display_name.as_deref())
        .bind(identity.email.as_deref())
        .bind(identity.mapped_role.map(Role::as_str))
        .bind(&identity.claims_digest)
        .bind(identity.last_login_at.0)
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The memberships of `user` that mapping rules granted, with the reason recorded.
    pub async fn mapped_memberships(&self, user: UserId) -> Result<Vec<(GroupId, String)>> {
        let rows =
            sqlx::query("SELECT group_id, reason FROM mapped_memberships WHERE user_id = $1")
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((parse(r, "group_id")?, sqlx::Row::try_get(r, "reason")?)))
            .collect()
    }

    /// Grants a membership from a mapping rule. A membership that already exists (set by
    /// hand, or granted before) is left as it is, except that a granted one gets the new
    /// reason. Returns whether the person became a member.
    pub async fn add_mapped_member(
        &self,
        group: GroupId,
        user: UserId,
        reason: &str,
        now: UnixMillis,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let added = sqlx::query(
            "INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group.to_string())
        .bind(user.to_string())
        .bind(now.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if added {
            sqlx::query(
                "INSERT INTO mapped_memberships (group_id, user_id, reason, granted_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(group.to_string())
            .bind(user.to_string())
            .bind(reason)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE mapped_memberships SET reason = $1 WHERE group_id = $2 AND user_id = $3",
            )
            .bind(reason)
            .bind(group.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Ends a membership that a mapping rule granted; one set by hand stays. Returns whether
    /// the person left the group.
    pub async fn remove_mapped_member(&self, group: GroupId, user: UserId) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2 AND EXISTS \
             (SELECT 1 FROM mapped_memberships m WHERE m.group_id = $1 AND m.user_id = $2)",
        )
        .bind(group.to_string())
        .bind(user.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes which provider opened a login session, with the ID token for logout there.
    pub async fn create_provider_session(
        &self,
        token_hash: &str,
        provider: &str,
        id_token: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO oidc_sessions (token_hash, provider, id_token) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(provider)
        .bind(id_token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The provider and ID token behind a login session, if it was opened through one.
    pub async fn provider_session(&self, token_hash: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT provider, id_token FROM oidc_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok((
                sqlx::Row::try_get(&r, "provider")?,
                sqlx::Row::try_get(&r, "id_token")?,
            ))
        })
        .transpose()
    }
}

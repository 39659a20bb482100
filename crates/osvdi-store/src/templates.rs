//! Templates, their sharing and their image versions.

use osvdi_model::{
    DisplayProtocol, GroupId, ImageFormat, Template, TemplateId, TemplateSpec, TemplateVersion,
    UnixMillis, UserId, Visibility,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::conv::{i64_of, list, millis, opt_u32, parse, parse_opt, u32_col, u64_col};
use crate::{Result, Store, StoreError};

/// The verified facts about an uploaded image that make a version ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyVersion {
    pub format: ImageFormat,
    pub size_bytes: u64,
    pub virtual_size: u64,
    pub sha256: String,
}

/// A version number handed out to an upload in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVersion {
    pub template: TemplateId,
    pub version: u32,
}

const TEMPLATE_COLUMNS: &str = "SELECT t.*, \
     (SELECT MAX(v.version) FROM template_versions v WHERE v.template_id = t.id AND v.state = 'ready') \
     AS current_version FROM templates t";

fn template_from(row: &AnyRow, shares: Vec<GroupId>) -> Result<Template> {
    let protocols = list(row, "protocols")?
        .iter()
        .map(|p| {
            p.parse::<DisplayProtocol>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let current: Option<i64> = row.try_get("current_version")?;
    Ok(Template {
        id: parse(row, "id")?,
        spec: TemplateSpec {
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            os: row.try_get("os")?,
            vcpus: u32_col(row, "vcpus")?,
            memory_mb: u32_col(row, "memory_mb")?,
            disk_gb: u32_col(row, "disk_gb")?,
            vgpu_type: row.try_get("vgpu_type")?,
            protocols,
            tags: list(row, "tags")?,
            ready: parse(row, "ready_rule")?,
            idle_timeout_min: opt_u32(row, "idle_timeout_min")?,
            max_lifetime_min: opt_u32(row, "max_lifetime_min")?,
            warm_pool: u32_col(row, "warm_pool")?,
        },
        owner: parse(row, "owner_id")?,
        visibility: parse(row, "visibility")?,
        policy: crate::policy::decode(&row.try_get::<String, _>("policy")?)?,
        shared_with: shares,
        current_version: current.and_then(|v| u32::try_from(v).ok()),
        created_at: millis(row, "created_at")?,
        updated_at: millis(row, "updated_at")?,
    })
}

fn version_from(row: &AnyRow) -> Result<TemplateVersion> {
    Ok(TemplateVersion {
        template: parse(row, "template_id")?,
        version: u32_col(row, "version")?,
        state: parse(row, "state")?,
        format: parse_opt(row, "format")?,
        size_bytes: u64_col(row, "size_bytes")?,
        virtual_size: u64_col(row, "virtual_size")?,
        sha256: row.try_get("sha256")?,
        uploaded_by: parse(row, "uploaded_by")?,
        created_at: millis(row, "created_at")?,
    })
}

fn joined(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    /// Adds a template with its shares. [`StoreError::Conflict`] if the name is taken
    /// (names are unique regardless of case).
    pub async fn create_template(&self, t: &Template) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO templates (id, name, description, os, vcpus, memory_mb, disk_gb, vgpu_type, \
             protocols, tags, owner_id, visibility, created_at, updated_at, ready_rule, idle_timeout_min, \
             max_lifetime_min, warm_pool) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(t.id.to_string())
        .bind(&t.spec.name)
        .bind(&t.spec.description)
        .bind(&t.spec.os)
        .bind(i64::from(t.spec.vcpus))
        .bind(i64::from(t.spec.memory_mb))
        .bind(i64::from(t.spec.disk_gb))
        .bind(t.spec.vgpu_type.as_deref())
        .bind(joined(t.spec.protocols.iter().map(|p| p.as_str())))
        .bind(joined(&t.spec.tags))
        .bind(t.owner.to_string())
        .bind(t.visibility.as_str())
        .bind(t.created_at.0)
        .bind(t.updated_at.0)
        .bind(t.spec.ready.to_string())
        .bind(t.spec.idle_timeout_min.map(i64::from))
        .bind(t.spec.max_lifetime_min.map(i64::from))
        .bind(i64::from(t.spec.warm_pool))
        .execute(&mut *tx)
        .await?;
        replace_shares(&mut tx, t.id, &t.shared_with).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn template(&self, id: TemplateId) -> Result<Template> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TEMPLATE_COLUMNS} WHERE t.id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let shares = self.shares_of(id).await?;
        template_from(&row, shares)
    }

    pub async fn template_by_name(&self, name: &str) -> Result<Option<Template>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TEMPLATE_COLUMNS} WHERE lower(t.name) = lower($1)"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => {
                let id: TemplateId = parse(&row, "id")?;
                Ok(Some(template_from(&row, self.shares_of(id).await?)?))
            }
            None => Ok(None),
        }
    }

    /// Every template, by name. Filtering by who may see what is the core's job.
    pub async fn list_templates(&self) -> Result<Vec<Template>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TEMPLATE_COLUMNS} ORDER BY lower(t.name)"
        )))
        .fetch_all(&self.pool)
        .await?;
        let share_rows = sqlx::query("SELECT template_id, group_id FROM template_shares")
            .fetch_all(&self.pool)
            .await?;
        let mut shares: Vec<(TemplateId, GroupId)> = Vec::with_capacity(share_rows.len());
        for r in &share_rows {
            shares.push((parse(r, "template_id")?, parse(r, "group_id")?));
        }
        rows.iter()
            .map(|row| {
                let id: TemplateId = parse(row, "id")?;
                let mine = shares
                    .iter()
                    .filter(|(t, _)| *t == id)
                    .map(|(_, g)| *g)
                    .collect();
                template_from(row, mine)
            })
            .collect()
    }

    async fn shares_of(&self, id: TemplateId) -> Result<Vec<GroupId>> {
        let rows = sqlx::query("SELECT group_id FROM template_shares WHERE template_id = $1")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| parse(r, "group_id")).collect()
    }

    /// Replaces a template's spec. [`StoreError::Conflict`] if the new name is taken.
    pub async fn update_template_spec(
        &self,
        id: TemplateId,
        spec: &TemplateSpec,
        now: UnixMillis,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE templates SET name = $1, description = $2, os = $3, vcpus = $4, memory_mb = $5, \
             disk_gb = $6, vgpu_type = $7, protocols = $8, tags = $9, updated_at = $10, ready_rule = $12, \
             idle_timeout_min = $13, max_lifetime_min = $14, warm_pool = $15 WHERE id = $11",
        )
        .bind(&spec.name)
        .bind(&spec.description)
        .bind(&spec.os)
        .bind(i64::from(spec.vcpus))
        .bind(i64::from(spec.memory_mb))
        .bind(i64::from(spec.disk_gb))
        .bind(spec.vgpu_type.as_deref())
        .bind(joined(spec.protocols.iter().map(|p| p.as_str())))
        .bind(joined(&spec.tags))
        .bind(now.0)
        .bind(id.to_string())
        .bind(spec.ready.to_string())
        .bind(spec.idle_timeout_min.map(i64::from))
        .bind(spec.max_lifetime_min.map(i64::from))
        .bind(i64::from(spec.warm_pool))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Replaces a template's access policy.
    pub async fn set_policy(
        &self,
        id: TemplateId,
        policy: &osvdi_model::AccessPolicy,
        now: UnixMillis,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE templates SET policy = $1, updated_at = $2 WHERE id = $3")
            .bind(crate::policy::encode(policy))
            .bind(now.0)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets who a template is shared with. [`StoreError::Reference`] if a group is unknown.
    pub async fn set_sharing(
        &self,
        id: TemplateId,
        visibility: Visibility,
        groups: &[GroupId],
        now: UnixMillis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE templates SET visibility = $1, updated_at = $2 WHERE id = $3")
                .bind(visibility.as_str())
                .bind(now.0)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        replace_shares(&mut tx, id, groups).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a template and all its versions' rows, returning the versions that were there
    /// (whose image files the caller removes). Refused with [`StoreError::InUse`] while any
    /// desktop uses any version.
    pub async fn delete_template(&self, id: TemplateId) -> Result<Vec<TemplateVersion>> {
        let mut tx = self.begin_write().await?;
        let n = count_desktops(&mut tx, id, None).await?;
        if n > 0 {
            return Err(StoreError::InUse { desktops: n });
        }
        let rows = sqlx::query("SELECT * FROM template_versions WHERE template_id = $1")
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        let versions = rows.iter().map(version_from).collect::<Result<Vec<_>>>()?;
        sqlx::query("DELETE FROM template_versions WHERE template_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM templates WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(versions)
    }

    /// Hands out the next version number for an upload and records it as in flight.
    /// [`StoreError::Conflict`] if another upload to the template is in flight.
    pub async fn begin_upload(
        &self,
        template: TemplateId,
        by: UserId,
        now: UnixMillis,
    ) -> Result<NewVersion> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT next_version FROM templates WHERE id = $1")
            .bind(template.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let version = u32_col(&row, "next_version")?;
        sqlx::query(
            "INSERT INTO template_versions (template_id, version, state, format, size_bytes, virtual_size, \
             sha256, uploaded_by, created_at) VALUES ($1, $2, 'uploading', NULL, 0, 0, '', $3, $4)",
        )
        .bind(template.to_string())
        .bind(i64::from(version))
        .bind(by.to_string())
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE templates SET next_version = $1 WHERE id = $2")
            .bind(i64::from(version) + 1)
            .bind(template.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(NewVersion { template, version })
    }

    /// Marks an upload verified and usable.
    pub async fn finish_upload(
        &self,
        v: NewVersion,
        ready: &ReadyVersion,
        now: UnixMillis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE template_versions SET state = 'ready', format = $1, size_bytes = $2, virtual_size = $3, \
             sha256 = $4 WHERE template_id = $5 AND version = $6 AND state = 'uploading'",
        )
        .bind(ready.format.as_str())
        .bind(i64_of(ready.size_bytes))
        .bind(i64_of(ready.virtual_size))
        .bind(&ready.sha256)
        .bind(v.template.to_string())
        .bind(i64::from(v.version))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE templates SET updated_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(v.template.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets an upload that failed or was refused.
    /// Its number is handed back when no later upload took one, so that refused uploads
    /// leave no gaps in the numbering.
    pub async fn abort_upload(&self, v: NewVersion) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM template_versions WHERE template_id = $1 AND version = $2 AND state = 'uploading'",
        )
        .bind(v.template.to_string())
        .bind(i64::from(v.version))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE templates SET next_version = $1 WHERE id = $2 AND next_version = $3",
            )
            .bind(i64::from(v.version))
            .bind(v.template.to_string())
            .bind(i64::from(v.version) + 1)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Uploads recorded as in flight: after a restart, these were interrupted.
    pub async fn uploads_in_flight(&self) -> Result<Vec<NewVersion>> {
        let rows = sqlx::query(
            "SELECT template_id, version FROM template_versions WHERE state = 'uploading'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NewVersion {
                    template: parse(r, "template_id")?,
                    version: u32_col(r, "version")?,
                })
            })
            .collect()
    }

    /// A template's versions, newest first, including an upload in flight.
    pub async fn versions(&self, template: TemplateId) -> Result<Vec<TemplateVersion>> {
        let rows = sqlx::query(
            "SELECT * FROM template_versions WHERE template_id = $1 ORDER BY version DESC",
        )
        .bind(template.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from).collect()
    }

    pub async fn version(&self, template: TemplateId, version: u32) -> Result<TemplateVersion> {
        let row =
            sqlx::query("SELECT * FROM template_versions WHERE template_id = $1 AND version = $2")
                .bind(template.to_string())
                .bind(i64::from(version))
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        version_from(&row)
    }

    /// Deletes one ready version. Refused with [`StoreError::InUse`] while desktops use it.
    pub async fn delete_version(
        &self,
        template: TemplateId,
        version: u32,
    ) -> Result<TemplateVersion> {
        let mut tx = self.begin_write().await?;
        let n = count_desktops(&mut tx, template, Some(version)).await?;
        if n > 0 {
            return Err(StoreError::InUse { desktops: n });
        }
        let row = sqlx::query(
            "DELETE FROM template_versions WHERE template_id = $1 AND version = $2 AND state = 'ready' RETURNING *",
        )
        .bind(template.to_string())
        .bind(i64::from(version))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let v = version_from(&row)?;
        tx.commit().await?;
        Ok(v)
    }
}

async fn replace_shares(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: TemplateId,
    groups: &[GroupId],
) -> Result<()> {
    sqlx::query("DELETE FROM template_shares WHERE template_id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    for g in groups {
        sqlx::query("INSERT INTO template_shares (template_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id.to_string())
            .bind(g.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Counts the live desktops made from a template (or one version of it) and forgets the ended
/// and failed ones, which hold nothing: their history stays in the audit log.
async fn count_desktops(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    template: TemplateId,
    version: Option<u32>,
) -> Result<u64> {
    let version = version.map_or(-1, i64::from);
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM desktops WHERE template_id = $1 AND ($2 < 0 OR template_version = $2) \
         AND state NOT IN ('ended', 'failed')",
    )
    .bind(template.to_string())
    .bind(version)
    .fetch_one(&mut **tx)
    .await?;
    let live = u64_col(&row, "n")?;
    if live == 0 {
        sqlx::query(
            "DELETE FROM desktops WHERE template_id = $1 AND ($2 < 0 OR template_version = $2)",
        )
        .bind(template.to_string())
        .bind(version)
        .execute(&mut **tx)
        .await?;
    }
    Ok(live)
}

//! Desktops, as far as the foundation needs them: they pin a template version.

use osvdi_model::{Desktop, DesktopId, TemplateId};
use sqlx::any::AnyRow;

use crate::conv::{millis, parse, u32_col, u64_col};
use crate::{Result, Store, StoreError};

fn desktop_from(row: &AnyRow) -> Result<Desktop> {
    Ok(Desktop {
        id: parse(row, "id")?,
        owner: parse(row, "owner_id")?,
        template: parse(row, "template_id")?,
        template_version: u32_col(row, "template_version")?,
        state: parse(row, "state")?,
        created_at: millis(row, "created_at")?,
    })
}

impl Store {
    /// Records a new desktop. [`StoreError::Reference`] if its template version does not exist.
    pub async fn create_desktop(&self, d: &Desktop) -> Result<()> {
        sqlx::query(
            "INSERT INTO desktops (id, owner_id, template_id, template_version, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(d.id.to_string())
        .bind(d.owner.to_string())
        .bind(d.template.to_string())
        .bind(i64::from(d.template_version))
        .bind(d.state.as_str())
        .bind(d.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn desktop(&self, id: DesktopId) -> Result<Desktop> {
        let row = sqlx::query("SELECT * FROM desktops WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        desktop_from(&row)
    }

    /// How many desktops use a template (any version).
    pub async fn desktops_using(&self, template: TemplateId) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM desktops WHERE template_id = $1")
            .bind(template.to_string())
            .fetch_one(&self.pool)
            .await?;
        u64_col(&row, "n")
    }
}

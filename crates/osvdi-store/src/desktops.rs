//! Desktops and their state changes. A change is a compare-and-set on the state, recorded in
//! `desktop_events` in the same transaction, so two actors never both move a desktop.

use osvdi_model::{Desktop, DesktopId, DesktopState, TemplateId, UnixMillis, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::conv::{millis, parse, parse_opt, u32_col, u64_col};
use crate::{Result, Store, StoreError};

/// One state change to make: from `from` (which must still be the state) to `to`.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub from: DesktopState,
    pub to: DesktopState,
    pub reason: Option<&'a str>,
    pub at: UnixMillis,
}

/// One recorded state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopEvent {
    pub id: i64,
    pub desktop: DesktopId,
    pub at: UnixMillis,
    pub from: Option<DesktopState>,
    pub to: DesktopState,
    pub reason: Option<String>,
}

fn desktop_from(row: &AnyRow) -> Result<Desktop> {
    let expires: Option<i64> = row.try_get("expires_at")?;
    Ok(Desktop {
        id: parse(row, "id")?,
        owner: parse(row, "owner_id")?,
        template: parse(row, "template_id")?,
        template_version: u32_col(row, "template_version")?,
        state: parse(row, "state")?,
        reason: row.try_get("reason")?,
        created_at: millis(row, "created_at")?,
        state_since: millis(row, "state_since")?,
        last_activity: millis(row, "last_activity")?,
        expires_at: expires.map(UnixMillis),
        reservation: row.try_get("reservation")?,
        warm: row.try_get::<i64, _>("warm")? != 0,
        vgpu_instance: row.try_get("vgpu_instance")?,
    })
}

fn event_from(row: &AnyRow) -> Result<DesktopEvent> {
    Ok(DesktopEvent {
        id: row.try_get("id")?,
        desktop: parse(row, "desktop_id")?,
        at: millis(row, "at")?,
        from: parse_opt(row, "from_state")?,
        to: parse(row, "to_state")?,
        reason: row.try_get("reason")?,
    })
}

impl Store {
    /// Records a new desktop. [`StoreError::Reference`] if its template version does not exist.
    pub async fn create_desktop(&self, d: &Desktop) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_desktop(&mut tx, d).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a new desktop only if its owner has fewer than `max_live` live desktops.
    /// [`StoreError::Conflict`] when the limit is reached. The owner's row is locked first
    /// (a no-op update), so two launches of one person cannot both slip under the limit.
    pub async fn create_desktop_within_quota(&self, d: &Desktop, max_live: u32) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
            .bind(d.owner.to_string())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM desktops WHERE owner_id = $1 AND warm = 0 AND state NOT IN ('ended', 'failed')",
        )
        .bind(d.owner.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if u64_col(&row, "n")? >= u64::from(max_live) {
            return Err(StoreError::Conflict);
        }
        insert_desktop(&mut tx, d).await?;
        tx.commit().await?;
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

    /// Desktops, newest first: of one owner, or all; live ones only if asked.
    pub async fn desktops(&self, owner: Option<UserId>, live_only: bool) -> Result<Vec<Desktop>> {
        let rows = sqlx::query(
            "SELECT * FROM desktops WHERE ($1 = '' OR owner_id = $1) \
             AND ($2 = 0 OR state NOT IN ('ended', 'failed')) ORDER BY created_at DESC, id",
        )
        .bind(owner.map(|o| o.to_string()).unwrap_or_default())
        .bind(i64::from(live_only))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(desktop_from).collect()
    }

    /// Moves a desktop from `t.from` to `t.to` if it is still in `t.from`; returns false (and
    /// changes nothing) if someone moved it first.
    pub async fn transition(&self, id: DesktopId, t: &Transition<'_>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE desktops SET state = $1, reason = COALESCE($2, reason), state_since = $3, updated_at = $3 \
             WHERE id = $4 AND state = $5",
        )
        .bind(t.to.as_str())
        .bind(t.reason)
        .bind(t.at.0)
        .bind(id.to_string())
        .bind(t.from.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO desktop_events (desktop_id, at, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.to_string())
            .bind(t.at.0)
            .bind(t.from.as_str())
            .bind(t.to.as_str())
            .bind(t.reason)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a sign of use (the idle timeout counts from the last one).
    pub async fn touch_desktop(&self, id: DesktopId, at: UnixMillis) -> Result<()> {
        sqlx::query("UPDATE desktops SET last_activity = $1 WHERE id = $2 AND last_activity < $1")
            .bind(at.0)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Hands a warm desktop of `template` to `owner`: a ready one first, then one still
    /// booting or being provisioned (it comes up as the person's: a course member arriving as
    /// the slot starts must not be refused for the desktops started for them);
    /// for `reservation`, one started for that slot, otherwise one of the on-demand pool.
    /// Returns it (no longer warm), or `None` when there is none.
    pub async fn claim_warm(
        &self,
        template: TemplateId,
        reservation: Option<&str>,
        owner: UserId,
        expires_at: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<Option<Desktop>> {
        let rows = sqlx::query(
            "SELECT id FROM desktops WHERE warm = 1 AND template_id = $1 \
             AND state IN ('ready', 'booting', 'provisioning', 'requested') \
             AND COALESCE(reservation, '') = $2 \
             ORDER BY CASE state WHEN 'ready' THEN 0 WHEN 'booting' THEN 1 WHEN 'provisioning' THEN 2 ELSE 3 END, \
             created_at",
        )
        .bind(template.to_string())
        .bind(reservation.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let done = sqlx::query(
                "UPDATE desktops SET owner_id = $1, warm = 0, last_activity = $2, expires_at = COALESCE($3, expires_at) \
                 WHERE id = $4 AND warm = 1",
            )
            .bind(owner.to_string())
            .bind(now.0)
            .bind(expires_at.map(|t| t.0))
            .bind(&id)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                return self
                    .desktop(id.parse().map_err(|_| StoreError::Corrupt(id.clone()))?)
                    .await
                    .map(Some);
            }
        }
        Ok(None)
    }

    /// Records (or clears) the mdev instance a desktop holds.
    pub async fn set_vgpu_instance(&self, id: DesktopId, instance: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE desktops SET vgpu_instance = $1 WHERE id = $2")
            .bind(instance)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves a warm desktop to its template's on-demand pool (its slot is over).
    pub async fn release_warm(&self, id: DesktopId) -> Result<()> {
        sqlx::query("UPDATE desktops SET reservation = NULL WHERE id = $1 AND warm = 1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Observed boot times (booting to ready), newest last, with their template.
    pub async fn boot_times(&self, limit: u32) -> Result<Vec<(TemplateId, i64)>> {
        let rows = sqlx::query(
            "SELECT d.template_id, e.at AS ready_at, \
             (SELECT MAX(b.at) FROM desktop_events b WHERE b.desktop_id = e.desktop_id AND b.to_state = 'booting' \
              AND b.id < e.id) AS booting_at \
             FROM desktop_events e JOIN desktops d ON d.id = e.desktop_id \
             WHERE e.to_state = 'ready' AND e.from_state = 'booting' ORDER BY e.id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = vec![];
        for r in rows.iter().rev() {
            let booting: Option<i64> = r.try_get("booting_at")?;
            if let Some(b) = booting {
                out.push((
                    parse(r, "template_id")?,
                    r.try_get::<i64, _>("ready_at")? - b,
                ));
            }
        }
        Ok(out)
    }

    /// A desktop's state changes, oldest first.
    pub async fn desktop_events(&self, id: DesktopId) -> Result<Vec<DesktopEvent>> {
        let rows = sqlx::query("SELECT * FROM desktop_events WHERE desktop_id = $1 ORDER BY id")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from).collect()
    }

    /// How many live desktops use a template (any version).
    pub async fn desktops_using(&self, template: TemplateId) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM desktops WHERE template_id = $1 AND state NOT IN ('ended', 'failed')",
        )
        .bind(template.to_string())
        .fetch_one(&self.pool)
        .await?;
        u64_col(&row, "n")
    }
}

async fn insert_desktop(tx: &mut sqlx::Transaction<'static, sqlx::Any>, d: &Desktop) -> Result<()> {
    sqlx::query(
        "INSERT INTO desktops (id, owner_id, template_id, template_version, state, reason, created_at, \
         updated_at, state_since, last_activity, expires_at, reservation, warm) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12)",
    )
    .bind(d.id.to_string())
    .bind(d.owner.to_string())
    .bind(d.template.to_string())
    .bind(i64::from(d.template_version))
    .bind(d.state.as_str())
    .bind(d.reason.as_deref())
    .bind(d.created_at.0)
    .bind(d.state_since.0)
    .bind(d.last_activity.0)
    .bind(d.expires_at.map(|t| t.0))
    .bind(d.reservation.as_deref())
    .bind(i64::from(d.warm))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO desktop_events (desktop_id, at, from_state, to_state, reason) VALUES ($1, $2, NULL, $3, NULL)",
    )
    .bind(d.id.to_string())
    .bind(d.created_at.0)
    .bind(d.state.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

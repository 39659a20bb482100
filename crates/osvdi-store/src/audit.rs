//! The audit log: append-only, read newest first.

use osvdi_model::{AuditAction, AuditEntry};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::conv::{millis, parse, parse_opt};
use crate::{Result, Store};

/// Which audit entries to read: newest first, at most `limit`, older than `before` if set.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub limit: u32,
    /// Only entries with an id below this (for paging).
    pub before: Option<i64>,
    pub action: Option<AuditAction>,
    /// Only entries whose actor name is this.
    pub actor_name: Option<String>,
}

fn entry_from(row: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: millis(row, "at")?,
        actor: parse_opt(row, "actor_id")?,
        actor_name: row.try_get("actor_name")?,
        action: parse(row, "action")?,
        object: row.try_get("object")?,
        outcome: parse(row, "outcome")?,
        client: row.try_get("client")?,
        detail: row.try_get("detail")?,
    })
}

impl Store {
    /// Appends an entry (its `id` is ignored) and returns the id it got.
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor_name, action, object, outcome, client, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(e.at.0)
        .bind(e.actor.map(|a| a.to_string()))
        .bind(&e.actor_name)
        .bind(e.action.as_str())
        .bind(&e.object)
        .bind(e.outcome.as_str())
        .bind(e.client.as_deref())
        .bind(&e.detail)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE ($1 < 0 OR id < $1) AND ($2 = '' OR action = $2) \
             AND ($3 = '' OR actor_name = $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(q.before.unwrap_or(-1))
        .bind(q.action.map_or("", |a| a.as_str()))
        .bind(q.actor_name.as_deref().unwrap_or(""))
        .bind(i64::from(q.limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from).collect()
    }
}

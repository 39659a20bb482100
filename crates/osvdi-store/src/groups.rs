//! Groups and their members.

use osvdi_model::{Group, GroupId, UnixMillis, User, UserId};
use sqlx::any::AnyRow;

use crate::conv::{millis, parse};
use crate::users::user_from;
use crate::{Result, Store, StoreError};

fn group_from(row: &AnyRow) -> Result<Group> {
    Ok(Group {
        id: parse(row, "id")?,
        name: sqlx::Row::try_get(row, "name")?,
        created_at: millis(row, "created_at")?,
    })
}

impl Store {
    /// Adds a group. [`StoreError::Conflict`] if the name is taken.
    pub async fn create_group(&self, group: &Group) -> Result<()> {
        sqlx::query("INSERT INTO user_groups (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(group.id.to_string())
            .bind(&group.name)
            .bind(group.created_at.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>> {
        let row = sqlx::query("SELECT * FROM user_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(group_from).transpose()
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        let rows = sqlx::query("SELECT * FROM user_groups ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(group_from).collect()
    }

    /// The groups with these ids, in name order; unknown ids are left out.
    pub async fn groups_by_ids(&self, ids: &[GroupId]) -> Result<Vec<Group>> {
        let all = self.list_groups().await?;
        Ok(all.into_iter().filter(|g| ids.contains(&g.id)).collect())
    }

    pub async fn group_members(&self, group: GroupId) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT u.* FROM users u JOIN group_members m ON m.user_id = u.id \
             WHERE m.group_id = $1 ORDER BY u.name",
        )
        .bind(group.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from).collect()
    }

    /// The groups a user belongs to.
    pub async fn groups_of(&self, user: UserId) -> Result<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT g.* FROM user_groups g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id = $1 ORDER BY g.name",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group_from).collect()
    }

    /// Adds a member; returns false if they already were one.
    pub async fn add_member(&self, group: GroupId, user: UserId, now: UnixMillis) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group.to_string())
        .bind(user.to_string())
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a member; returns false if they were not one.
    pub async fn remove_member(&self, group: GroupId, user: UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group.to_string())
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a group, its memberships and the template shares that name it.
    pub async fn delete_group(&self, group: GroupId) -> Result<()> {
        let done = sqlx::query("DELETE FROM user_groups WHERE id = $1")
            .bind(group.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

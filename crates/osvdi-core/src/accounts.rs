//! Accounts and groups: what admins (and the admin command line) manage.

use osvdi_model::{
    AuditAction, AuditOutcome, Group, GroupId, Role, User, UserId, validate_group_name,
    validate_username,
};
use osvdi_store::StoreError;

use crate::auth::{check_password_policy, hash_password};
use crate::{Caller, Core, CoreError, Result};

/// A group with the names of its members.
#[derive(Debug, Clone)]
pub struct GroupWithMembers {
    pub group: Group,
    pub members: Vec<String>,
}

fn require_admin(caller: &Caller) -> Result<()> {
    if caller.who.role.is_admin() {
        Ok(())
    } else {
        Err(CoreError::Forbidden(
            "Only admins manage accounts and groups".into(),
        ))
    }
}

impl Core {
    /// The caller an account acts as, with its current groups.
    pub async fn caller_for(
        &self,
        user: &User,
        client: Option<std::net::IpAddr>,
    ) -> Result<Caller> {
        let groups = self
            .store
            .groups_of(user.id)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        let who = osvdi_model::Principal {
            id: user.id,
            name: user.name.clone(),
            role: user.role,
            groups,
        };
        Ok(Caller { who, client })
    }

    /// The caller's own account and groups.
    pub async fn me(&self, caller: &Caller) -> Result<(User, Vec<Group>)> {
        let user = self.store.user(caller.who.id).await?;
        let groups = self.store.groups_of(caller.who.id).await?;
        Ok((user, groups))
    }

    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<User> {
        require_admin(caller)?;
        validate_username(name).map_err(|e| CoreError::Invalid(e.to_string()))?;
        check_password_policy(password)?;
        let user = User {
            id: UserId::random(),
            name: name.to_owned(),
            role,
            created_at: self.now(),
        };
        let hash = hash_password(password).await?;
        match self.store.create_user(&user, &hash).await {
            Err(StoreError::Conflict) => {
                return Err(CoreError::Conflict(format!("User {name} already exists")));
            }
            r => r?,
        }
        self.record(
            caller,
            AuditAction::UserCreate,
            format!("user:{name}"),
            AuditOutcome::Success,
            format!("role {role}"),
        )
        .await;
        Ok(user)
    }

    /// Creates the first admin account when there is no account at all; returns its password.
    /// Returns `None` when accounts exist (the password is never shown again).
    pub async fn bootstrap_admin(&self) -> Result<Option<String>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let password = crate::generate_password();
        let caller = Caller::operator("first-start");
        match self
            .create_user(&caller, "admin", Role::Admin, &password)
            .await
        {
            Ok(_) => Ok(Some(password)),
            // Another process won the race to create it.
            Err(CoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<User>> {
        require_admin(caller)?;
        Ok(self.store.list_users().await?)
    }

    pub async fn user_by_name(&self, caller: &Caller, name: &str) -> Result<User> {
        require_admin(caller)?;
        Ok(self
            .store
            .user_by_name(name)
            .await?
            .ok_or(CoreError::NotFound("User"))?
            .user)
    }

    /// Changes a role. The last admin cannot be demoted; the user's sessions end so that the
    /// new role applies at once.
    pub async fn set_role(&self, caller: &Caller, id: UserId, role: Role) -> Result<User> {
        require_admin(caller)?;
        let user = self
            .store
            .user(id)
            .await
            .map_err(|_| CoreError::NotFound("User"))?;
        if user.role.is_admin() && !role.is_admin() && self.count_admins().await? <= 1 {
            return Err(CoreError::Conflict(
                "The last admin cannot be demoted".into(),
            ));
        }
        self.store.set_role(id, role, self.now()).await?;
        self.store.delete_user_sessions(id).await?;
        let detail = format!("{} -> {role}", user.role);
        self.record(
            caller,
            AuditAction::UserRoleChange,
            format!("user:{}", user.name),
            AuditOutcome::Success,
            detail,
        )
        .await;
        Ok(User { role, ..user })
    }

    async fn count_admins(&self) -> Result<usize> {
        Ok(self
            .store
            .list_users()
            .await?
            .iter()
            .filter(|u| u.role.is_admin())
            .count())
    }

    /// Sets another account's password (admins); ends all its sessions.
    pub async fn reset_password(&self, caller: &Caller, id: UserId, password: &str) -> Result<()> {
        require_admin(caller)?;
        check_password_policy(password)?;
        let user = self
            .store
            .user(id)
            .await
            .map_err(|_| CoreError::NotFound("User"))?;
        let hash = hash_password(password).await?;
        self.store
            .set_password_hash(id, &hash, None, self.now())
            .await?;
        self.record(
            caller,
            AuditAction::UserPasswordReset,
            format!("user:{}", user.name),
            AuditOutcome::Success,
            "",
        )
        .await;
        Ok(())
    }

    /// Deletes an account. Refused for oneself, the last admin, and owners of templates.
    pub async fn delete_user(&self, caller: &Caller, id: UserId) -> Result<()> {
        require_admin(caller)?;
        if id == caller.who.id {
            return Err(CoreError::Conflict(
                "You cannot delete your own account".into(),
            ));
        }
        let user = self
            .store
            .user(id)
            .await
            .map_err(|_| CoreError::NotFound("User"))?;
        if user.role.is_admin() && self.count_admins().await? <= 1 {
            return Err(CoreError::Conflict(
                "The last admin cannot be deleted".into(),
            ));
        }
        match self.store.delete_user(id).await {
            Err(StoreError::Reference) => {
                return Err(CoreError::Conflict(format!(
                    "User {} still owns templates or desktops; reassign or delete them first",
                    user.name
                )));
            }
            r => r?,
        }
        self.record(
            caller,
            AuditAction::UserDelete,
            format!("user:{}", user.name),
            AuditOutcome::Success,
            "",
        )
        .await;
        Ok(())
    }

    pub async fn create_group(&self, caller: &Caller, name: &str) -> Result<Group> {
        require_admin(caller)?;
        validate_group_name(name).map_err(|e| CoreError::Invalid(e.to_string()))?;
        let group = Group {
            id: GroupId::random(),
            name: name.to_owned(),
            created_at: self.now(),
        };
        match self.store.create_group(&group).await {
            Err(StoreError::Conflict) => {
                return Err(CoreError::Conflict(format!("Group {name} already exists")));
            }
            r => r?,
        }
        self.record(
            caller,
            AuditAction::GroupCreate,
            format!("group:{name}"),
            AuditOutcome::Success,
            "",
        )
        .await;
        Ok(group)
    }

    async fn group_named(&self, name: &str) -> Result<Group> {
        self.store
            .group_by_name(name)
            .await?
            .ok_or(CoreError::NotFound("Group"))
    }

    /// Every group with its members. Admins see all; others see the groups they are in.
    pub async fn list_groups(&self, caller: &Caller) -> Result<Vec<GroupWithMembers>> {
        let groups = if caller.who.role.is_admin() {
            self.store.list_groups().await?
        } else {
            self.store.groups_of(caller.who.id).await?
        };
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let members = self
                .store
                .group_members(group.id)
                .await?
                .into_iter()
                .map(|u| u.name)
                .collect();
            out.push(GroupWithMembers { group, members });
        }
        Ok(out)
    }

    /// Group names for the portal's sharing form: stewards may share with any group.
    pub async fn group_names(&self, caller: &Caller) -> Result<Vec<String>> {
        if !caller.who.role.manages_templates() {
            return Err(CoreError::Forbidden(
                "Only stewards and admins list all groups".into(),
            ));
        }
        Ok(self
            .store
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect())
    }

    pub async fn delete_group(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller)?;
        let group = self.group_named(name).await?;
        self.store.delete_group(group.id).await?;
        self.record(
            caller,
            AuditAction::GroupDelete,
            format!("group:{name}"),
            AuditOutcome::Success,
            "",
        )
        .await;
        Ok(())
    }

    /// Adds a member; `Ok(false)` if they already were one.
    pub async fn add_member(&self, caller: &Caller, group: &str, user: &str) -> Result<bool> {
        require_admin(caller)?;
        let g = self.group_named(group).await?;
        let u = self
            .store
            .user_by_name(user)
            .await?
            .ok_or(CoreError::NotFound("User"))?
            .user;
        let added = self.store.add_member(g.id, u.id, self.now()).await?;
        if added {
            let object = format!("group:{group}");
            self.record(
                caller,
                AuditAction::GroupMemberAdd,
                object,
                AuditOutcome::Success,
                format!("user {user}"),
            )
            .await;
        }
        Ok(added)
    }

    /// Removes a member; `Ok(false)` if they were not one.
    pub async fn remove_member(&self, caller: &Caller, group: &str, user: &str) -> Result<bool> {
        require_admin(caller)?;
        let g = self.group_named(group).await?;
        let u = self
            .store
            .user_by_name(user)
            .await?
            .ok_or(CoreError::NotFound("User"))?
            .user;
        let removed = self.store.remove_member(g.id, u.id).await?;
        if removed {
            let object = format!("group:{group}");
            self.record(
                caller,
                AuditAction::GroupMemberRemove,
                object,
                AuditOutcome::Success,
                format!("user {user}"),
            )
            .await;
        }
        Ok(removed)
    }
}

//! Templates: creation, listing as each person may see them, changes, sharing, deletion.

use osvdi_model::{
    AuditAction, AuditOutcome, GroupId, Template, TemplateId, TemplateSpec, TemplateVersion,
    VersionState, Visibility, can_manage_template, can_view_template,
};
use osvdi_store::StoreError;

use crate::{Caller, Core, CoreError, Result};

/// Who a template is shared with, by group name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharing {
    pub visibility: Visibility,
    pub groups: Vec<String>,
}

/// A template to create.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub spec: TemplateSpec,
    pub sharing: Sharing,
}

fn name_conflict(name: &str) -> CoreError {
    CoreError::Conflict(format!("A template named '{name}' already exists"))
}

impl Core {
    async fn group_ids(&self, names: &[String]) -> Result<Vec<GroupId>> {
        let mut ids = Vec::with_capacity(names.len());
        for n in names {
            let g = self
                .store
                .group_by_name(n)
                .await?
                .ok_or_else(|| CoreError::Invalid(format!("Unknown group '{n}'")))?;
            if !ids.contains(&g.id) {
                ids.push(g.id);
            }
        }
        Ok(ids)
    }

    /// Group names of a template's shares, for display.
    pub async fn share_names(&self, t: &Template) -> Result<Vec<String>> {
        Ok(self
            .store
            .groups_by_ids(&t.shared_with)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect())
    }

    /// Creates a template owned by the caller (stewards and admins).
    pub async fn create_template(&self, caller: &Caller, new: NewTemplate) -> Result<Template> {
        if !caller.who.role.manages_templates() {
            return Err(CoreError::Forbidden(
                "Only stewards and admins create templates".into(),
            ));
        }
        new.spec
            .validate()
            .map_err(|e| CoreError::Invalid(e.to_string()))?;
        let shared_with = self.group_ids(&new.sharing.groups).await?;
        let now = self.now();
        let t = Template {
            id: TemplateId::random(),
            spec: new.spec,
            owner: caller.who.id,
            visibility: new.sharing.visibility,
            policy: osvdi_model::AccessPolicy::default(),
            shared_with,
            current_version: None,
            created_at: now,
            updated_at: now,
        };
        match self.store.create_template(&t).await {
            Err(StoreError::Conflict) => return Err(name_conflict(&t.spec.name)),
            r => r?,
        }
        self.record(
            caller,
            AuditAction::TemplateCreate,
            format!("template:{}", t.id),
            AuditOutcome::Success,
            &t.spec.name,
        )
        .await;
        Ok(t)
    }

    /// The templates the caller may see: their own, and those shared with them that can be
    /// launched (admins see all).
    pub async fn list_templates(&self, caller: &Caller) -> Result<Vec<Template>> {
        let all = self.store.list_templates().await?;
        Ok(all
            .into_iter()
            .filter(|t| can_view_template(&caller.who, t))
            .collect())
    }

    /// One template, if the caller may see it. One they may not see is "not found", so that
    /// its existence does not leak.
    pub async fn template(&self, caller: &Caller, id: TemplateId) -> Result<Template> {
        let t = self
            .store
            .template(id)
            .await
            .map_err(|_| CoreError::NotFound("Template"))?;
        if can_view_template(&caller.who, &t) {
            Ok(t)
        } else {
            Err(CoreError::NotFound("Template"))
        }
    }

    /// A template the caller may change: visible and managed by them.
    pub(crate) async fn managed_template(
        &self,
        caller: &Caller,
        id: TemplateId,
    ) -> Result<Template> {
        let t = self.template(caller, id).await?;
        if can_manage_template(&caller.who, &t) {
            Ok(t)
        } else {
            Err(CoreError::Forbidden(
                "Only the template's steward and admins change it".into(),
            ))
        }
    }

    pub async fn update_template(
        &self,
        caller: &Caller,
        id: TemplateId,
        spec: TemplateSpec,
    ) -> Result<Template> {
        self.managed_template(caller, id).await?;
        spec.validate()
            .map_err(|e| CoreError::Invalid(e.to_string()))?;
        match self.store.update_template_spec(id, &spec, self.now()).await {
            Err(StoreError::Conflict) => return Err(name_conflict(&spec.name)),
            r => r?,
        }
        self.record(
            caller,
            AuditAction::TemplateUpdate,
            format!("template:{id}"),
            AuditOutcome::Success,
            &spec.name,
        )
        .await;
        self.template(caller, id).await
    }

    /// Shares a template privately, with groups, or with everyone.
    pub async fn share_template(
        &self,
        caller: &Caller,
        id: TemplateId,
        sharing: Sharing,
    ) -> Result<Template> {
        self.managed_template(caller, id).await?;
        if sharing.visibility == Visibility::Groups && sharing.groups.is_empty() {
            return Err(CoreError::Invalid(
                "Sharing with groups needs at least one group".into(),
            ));
        }
        let groups = self.group_ids(&sharing.groups).await?;
        self.store
            .set_sharing(id, sharing.visibility, &groups, self.now())
            .await?;
        let detail = format!("{} {}", sharing.visibility, sharing.groups.join(","));
        self.record(
            caller,
            AuditAction::TemplateShare,
            format!("template:{id}"),
            AuditOutcome::Success,
            detail.trim_end(),
        )
        .await;
        self.template(caller, id).await
    }

    /// Deletes a template with all its versions and image files. Refused while desktops use it.
    pub async fn delete_template(&self, caller: &Caller, id: TemplateId) -> Result<()> {
        let t = self.managed_template(caller, id).await?;
        let versions = match self.store.delete_template(id).await {
            Err(StoreError::InUse { desktops }) => {
                let object = format!("template:{id}");
                self.record(
                    caller,
                    AuditAction::TemplateDelete,
                    object,
                    AuditOutcome::Denied,
                    "in use",
                )
                .await;
                return Err(CoreError::Conflict(format!(
                    "Template '{}' is used by {desktops} desktop(s); end them first",
                    t.spec.name
                )));
            }
            r => r?,
        };
        for v in &versions {
            self.images.remove_version(v).await;
            self.unpublish_image(id, v.version);
        }
        self.images.remove_template_dir(id).await;
        self.record(
            caller,
            AuditAction::TemplateDelete,
            format!("template:{id}"),
            AuditOutcome::Success,
            &t.spec.name,
        )
        .await;
        Ok(())
    }

    /// A template's versions, newest first. Managers also see an upload in flight.
    pub async fn versions(&self, caller: &Caller, id: TemplateId) -> Result<Vec<TemplateVersion>> {
        let t = self.template(caller, id).await?;
        let manager = can_manage_template(&caller.who, &t);
        let all = self.store.versions(id).await?;
        Ok(all
            .into_iter()
            .filter(|v| manager || v.state == VersionState::Ready)
            .collect())
    }

    /// Deletes one version and its image. Refused while desktops use it.
    pub async fn delete_version(
        &self,
        caller: &Caller,
        id: TemplateId,
        version: u32,
    ) -> Result<()> {
        self.managed_template(caller, id).await?;
        let v = match self.store.delete_version(id, version).await {
            Err(StoreError::InUse { desktops }) => {
                return Err(CoreError::Conflict(format!(
                    "Version {version} is used by {desktops} desktop(s)"
                )));
            }
            Err(StoreError::NotFound) => return Err(CoreError::NotFound("Version")),
            r => r?,
        };
        self.images.remove_version(&v).await;
        self.unpublish_image(id, version);
        let object = format!("template:{id}");
        self.record(
            caller,
            AuditAction::VersionDelete,
            object,
            AuditOutcome::Success,
            format!("version {version}"),
        )
        .await;
        Ok(())
    }

    /// Tells the backend in the background that a version is gone (a cloud deletes its copy
    /// once no desktop uses it); failures are logged.
    fn unpublish_image(&self, id: TemplateId, version: u32) {
        let Some(compute) = self.compute.clone() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = compute.delete_image(id, version).await {
                tracing::warn!(template = %id, version, error = %e, "cannot delete the backend's copy of an image");
            }
        });
    }

    /// Where a ready version's image file is (for the compute backends).
    pub fn image_path(&self, v: &TemplateVersion) -> Option<std::path::PathBuf> {
        v.format
            .map(|f| self.images.version_path(v.template, v.version, f))
    }
}

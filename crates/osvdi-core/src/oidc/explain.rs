//! "Why does this person have access to this template?": the chain from claims through
//! mapping rules and groups to the template's sharing and policy, in words, for admins.

use osvdi_model::{TemplateId, Visibility, can_view_template};

use crate::{Caller, Core, CoreError, Result};

/// One link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `identity`, `role`, `owner`, `sharing`, `group`, `policy`.
    pub kind: &'static str,
    pub text: String,
}

/// The whole answer.
#[derive(Debug, Clone)]
pub struct AccessExplanation {
    pub user: String,
    pub template: String,
    /// Whether the person sees and may launch the template (before the policy's time and
    /// network conditions, which `steps` describe).
    pub allowed: bool,
    pub steps: Vec<Step>,
}

fn step(kind: &'static str, text: impl Into<String>) -> Step {
    Step {
        kind,
        text: text.into(),
    }
}

impl Core {
    /// Explains, for an admin, why `user` may (or may not) use `template`.
    pub async fn explain_access(
        &self,
        caller: &Caller,
        user: &str,
        template: TemplateId,
    ) -> Result<AccessExplanation> {
        if !caller.who.role.is_admin() {
            return Err(CoreError::Forbidden(
                "Only admins ask why someone has access".into(),
            ));
        }
        let user = self
            .store
            .user_by_name(user)
            .await?
            .ok_or(CoreError::NotFound("User"))?
            .user;
        let t = self.template(caller, template).await?;
        let person = self.caller_for(&user, None).await?;
        let mut steps = vec![];
        for id in self.store.identities_of(user.id).await? {
            steps.push(step(
                "identity",
                format!(
                    "{} logs in through provider {} (issuer {}, subject {}){}",
                    user.name,
                    id.provider,
                    id.issuer,
                    id.subject,
                    id.email.map_or(String::new(), |e| format!(", e-mail {e}"))
                ),
            ));
            if let Some(r) = id.mapped_role {
                steps.push(step(
                    "role",
                    format!("Role {r} came from the mapping rules at the last login"),
                ));
            }
        }
        if user.role.is_admin() {
            steps.push(step(
                "role",
                format!("{} is an admin: admins may use every template", user.name),
            ));
        } else if t.owner == user.id && user.role.manages_templates() {
            steps.push(step(
                "owner",
                format!("{} is the template's steward (owner)", user.name),
            ));
        }
        let mapped = self.store.mapped_memberships(user.id).await?;
        match t.visibility {
            Visibility::Private => {
                steps.push(step(
                    "sharing",
                    "The template is private (its steward and admins only)",
                ));
            }
            Visibility::Everyone => {
                steps.push(step("sharing", "The template is shared with everyone"));
            }
            Visibility::Groups => {
                let shared = self.store.groups_by_ids(&t.shared_with).await?;
                let names: Vec<&str> = shared.iter().map(|g| g.name.as_str()).collect();
                steps.push(step(
                    "sharing",
                    format!(
                        "The template is shared with the groups {}",
                        names.join(", ")
                    ),
                ));
                let mut any = false;
                for g in &shared {
                    if !person.who.groups.contains(&g.id) {
                        continue;
                    }
                    any = true;
                    let how = match mapped.iter().find(|(id, _)| *id == g.id) {
                        Some((_, reason)) => format!(
                            "granted at the last login by {reason} (removed when the claim no longer has it)"
                        ),
                        None => "set by hand (stays whatever the provider says)".to_owned(),
                    };
                    steps.push(step(
                        "group",
                        format!("{} is in group {}: {how}", user.name, g.name),
                    ));
                }
                if !any {
                    steps.push(step(
                        "group",
                        format!("{} is in none of these groups", user.name),
                    ));
                }
            }
        }
        if t.current_version.is_none() {
            steps.push(step("sharing", "The template has no ready version yet"));
        }
        let allowed = can_view_template(&person.who, &t);
        if allowed {
            let access = self.access(&person, &t);
            steps.push(step("policy", format!("Policy: {}", access.description)));
            if let Some(why) = access.denied_reason {
                steps.push(step(
                    "policy",
                    format!("Right now (from an unknown network): {why}"),
                ));
            }
        }
        Ok(AccessExplanation {
            user: user.name,
            template: t.spec.name,
            allowed,
            steps,
        })
    }
}

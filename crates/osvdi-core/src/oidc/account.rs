//! Just-in-time accounts: the account behind an (issuer, subject), created at the first
//! login; name, e-mail, groups and role brought up to date at every login from the claims
//! and the mapping rules. Only what the rules granted is taken back; memberships and roles
//! an admin set by hand stay.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use osvdi_model::{
    AuditAction, AuditOutcome, Group, GroupId, Role, User, UserId, validate_username,
};
use osvdi_store::{Identity, StoreError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::OidcError;
use super::mapping::{Mapping, evaluate, lookup};
use super::provider::{Provider, Verified};
use crate::{Caller, Core, LoginOutcome};

/// A user name from a claim: lower case, `[a-z0-9._-]`, starting with a letter or digit.
fn sanitize(raw: &str) -> Option<String> {
    let s: String = raw
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let s: String = s.chars().take(56).collect();
    validate_username(&s).is_ok().then_some(s)
}

/// The user name a new account gets: the configured claim (default `preferred_username`),
/// else the e-mail's local part, else one made from the subject.
pub(crate) fn username_for(claims: &Value, claim: Option<&str>, subject: &str) -> String {
    let from = |path: &str| {
        lookup(claims, path)
            .and_then(Value::as_str)
            .and_then(sanitize)
    };
    from(claim.unwrap_or("preferred_username"))
        .or_else(|| {
            lookup(claims, "email")
                .and_then(Value::as_str)
                .and_then(|e| e.split('@').next())
                .and_then(sanitize)
        })
        .unwrap_or_else(|| {
            format!(
                "user-{}",
                &hex::encode(Sha256::digest(subject.as_bytes()))[..10]
            )
        })
}

fn display_name(claims: &Value) -> Option<String> {
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = text("name").map(str::to_owned).or_else(|| {
        let given = text("given_name").unwrap_or("");
        let family = text("family_name").unwrap_or("");
        let full = format!("{given} {family}").trim().to_owned();
        (!full.is_empty()).then_some(full)
    })?;
    Some(name.chars().filter(|c| !c.is_control()).take(200).collect())
}

fn digest(claims: &Value) -> String {
    // serde_json's map is ordered by key, so equal claims give equal text.
    URL_SAFE_NO_PAD.encode(Sha256::digest(claims.to_string().as_bytes()))
}

impl Core {
    /// The account for a verified login, created or updated, with its mapped groups and role,
    /// and a new login session.
    pub(super) async fn sso_account(
        &self,
        p: &Provider,
        v: &Verified,
        client: Option<std::net::IpAddr>,
    ) -> Result<LoginOutcome, OidcError> {
        for claim in &p.config.required_claims {
            let present = lookup(&v.claims, claim)
                .is_some_and(|c| !c.is_null() && c.as_array().is_none_or(|a| !a.is_empty()));
            if !present {
                return Err(OidcError::MissingClaim {
                    claim: claim.clone(),
                });
            }
        }
        let now = self.now();
        let mapping = evaluate(&self.oidc.config.rules, &p.id, &v.claims);
        let mapped_role = mapping.role.as_ref().map(|r| r.0);
        let actor = Caller::operator(&format!("sso:{}", p.id));
        let mut identity = Identity {
            issuer: v.issuer.clone(),
            subject: v.subject.clone(),
            user: UserId::nil(),
            provider: p.id.clone(),
            display_name: display_name(&v.claims),
            email: v
                .claims
                .get("email")
                .and_then(Value::as_str)
                .map(|e| e.chars().take(254).collect()),
            mapped_role,
            claims_digest: digest(&v.claims),
            created_at: now,
            last_login_at: now,
        };
        let user = match self.store.identity(&v.issuer, &v.subject).await? {
            None => self.sso_create_user(p, v, &mut identity, &actor).await?,
            Some(known) => {
                identity.user = known.user;
                identity.created_at = known.created_at;
                let user = self.store.user(known.user).await?;
                let user = self.sso_apply_role(user, &known, &mapping, &actor).await?;
                self.store.update_identity(&identity).await?;
                user
            }
        };
        self.sso_apply_groups(&user, &mapping, &actor).await?;

        self.sso_session(p, v, user, client).await
    }

    /// Opens the login session of a single sign-on, noting the provider for logout there.
    async fn sso_session(
        &self,
        p: &Provider,
        v: &Verified,
        user: User,
        client: Option<std::net::IpAddr>,
    ) -> Result<LoginOutcome, OidcError> {
        let now = self.now();
        let token = format!(
            "{}{}",
            crate::auth::TOKEN_PREFIX,
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let mut expires_at = now.plus(self.config.session_ttl);
        if p.config.limit_session_to_token
            && let Some(t) = v.token_expires_at
        {
            expires_at = osvdi_model::UnixMillis(expires_at.0.min(t));
        }
        let hash = crate::auth::token_hash(&token);
        let client_text = client.map(|c| c.to_string());
        self.store
            .create_session(&hash, user.id, now, expires_at, client_text.as_deref())
            .await?;
        self.store
            .create_provider_session(&hash, &p.id, &v.id_token)
            .await?;
        self.record_raw(
            Some(user.id),
            &user.name,
            client,
            AuditAction::Login,
            format!("user:{}", user.name),
            AuditOutcome::Success,
            format!(
                "via {} (subject {})",
                p.id,
                v.subject.chars().take(128).collect::<String>()
            ),
        )
        .await;
        Ok(LoginOutcome {
            token,
            user,
            expires_at,
        })
    }

    /// Creates the account at the first login; a taken user name gets a number.
    async fn sso_create_user(
        &self,
        p: &Provider,
        v: &Verified,
        identity: &mut Identity,
        actor: &Caller,
    ) -> Result<User, OidcError> {
        let base = username_for(&v.claims, p.config.username_claim.as_deref(), &v.subject);
        for n in 1..=50 {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let user = User {
                id: UserId::random(),
                name: name.clone(),
                role: identity.mapped_role.unwrap_or(Role::User),
                created_at: identity.created_at,
            };
            identity.user = user.id;
            match self.store.create_identity_user(&user, identity).await {
                Ok(()) => {
                    self.record(
                        actor,
                        AuditAction::UserCreate,
                        format!("user:{name}"),
                        AuditOutcome::Success,
                        format!("first login through {}; role {}", p.id, user.role),
                    )
                    .await;
                    return Ok(user);
                }
                Err(StoreError::Conflict) => {
                    // The name is taken, or a parallel first login created the identity.
                    if let Some(known) = self.store.identity(&v.issuer, &v.subject).await? {
                        return Ok(self.store.user(known.user).await?);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(OidcError::Core(crate::CoreError::Conflict(format!(
            "No free user name near {base}"
        ))))
    }

    /// The role the rules give wins; when they give none any more, a role that came from
    /// them falls back to user. A role an admin set by hand (different from the last mapped
    /// one) stays. The last admin is never demoted.
    async fn sso_apply_role(
        &self,
        user: User,
        known: &Identity,
        mapping: &Mapping,
        actor: &Caller,
    ) -> Result<User, OidcError> {
        let target = match &mapping.role {
            Some((r, _)) => *r,
            None if known.mapped_role == Some(user.role) => Role::User,
            None => return Ok(user),
        };
        if target == user.role {
            return Ok(user);
        }
        if user.role.is_admin() && !target.is_admin() {
            let admins = self
                .store
                .list_users()
                .await?
                .iter()
                .filter(|u| u.role.is_admin())
                .count();
            if admins <= 1 {
                tracing::warn!(user = %user.name, "mapping would demote the last admin; kept");
                return Ok(user);
            }
        }
        self.store.set_role(user.id, target, self.now()).await?;
        let why = mapping
            .role
            .as_ref()
            .map_or("no rule gives a role any more".to_owned(), |r| r.1.clone());
        self.record(
            actor,
            AuditAction::UserRoleChange,
            format!("user:{}", user.name),
            AuditOutcome::Success,
            format!("{} -> {target} ({why})", user.role),
        )
        .await;
        Ok(User {
            role: target,
            ..user
        })
    }

    /// Joins the groups the rules give (creating missing groups) and leaves the groups they
    /// gave before and give no more.
    async fn sso_apply_groups(
        &self,
        user: &User,
        mapping: &Mapping,
        actor: &Caller,
    ) -> Result<(), OidcError> {
        let now = self.now();
        let mut granted: Vec<GroupId> = vec![];
        for (name, reason) in &mapping.groups {
            let group = match self.store.group_by_name(name).await? {
                Some(g) => g,
                None => {
                    let g = Group {
                        id: GroupId::random(),
                        name: name.clone(),
                        created_at: now,
                    };
                    match self.store.create_group(&g).await {
                        Ok(()) => {
                            self.record(
                                actor,
                                AuditAction::GroupCreate,
                                format!("group:{name}"),
                                AuditOutcome::Success,
                                format!("for {reason}"),
                            )
                            .await;
                            g
                        }
                        Err(StoreError::Conflict) => self
                            .store
                            .group_by_name(name)
                            .await?
                            .ok_or(OidcError::Core(crate::CoreError::NotFound("Group")))?,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            granted.push(group.id);
            if self
                .store
                .add_mapped_member(group.id, user.id, reason, now)
                .await?
            {
                self.record(
                    actor,
                    AuditAction::GroupMemberAdd,
                    format!("group:{name}"),
                    AuditOutcome::Success,
                    format!("user {} ({reason})", user.name),
                )
                .await;
            }
        }
        for (group, _) in self.store.mapped_memberships(user.id).await? {
            if granted.contains(&group) {
                continue;
            }
            if self.store.remove_mapped_member(group, user.id).await? {
                let name = self
                    .store
                    .groups_by_ids(&[group])
                    .await?
                    .first()
                    .map_or_else(|| group.to_string(), |g| g.name.clone());
                self.record(
                    actor,
                    AuditAction::GroupMemberRemove,
                    format!("group:{name}"),
                    AuditOutcome::Success,
                    format!("user {} (no rule grants it any more)", user.name),
                )
                .await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn user_names_from_claims() {
        let c = json!({"preferred_username": "Alice.Smith@Uni", "email": "as@uni.example", "name": "Alice"});
        assert_eq!(username_for(&c, None, "s"), "alice.smith-uni");
        assert_eq!(username_for(&c, Some("email"), "s"), "as-uni.example");
        let c = json!({"email": "__bob@uni.example"});
        assert_eq!(username_for(&c, None, "s"), "bob");
        let c = json!({"preferred_username": "***"});
        let n = username_for(&c, None, "subject-1");
        assert!(n.starts_with("user-") && n.len() == 15, "{n}");
        assert_eq!(n, username_for(&c, None, "subject-1"));
    }

    #[test]
    fn display_names() {
        assert_eq!(
            display_name(&json!({"name": " Alice "})).as_deref(),
            Some("Alice")
        );
        assert_eq!(
            display_name(&json!({"given_name": "Bo", "family_name": "Li"})).as_deref(),
            Some("Bo Li")
        );
        assert_eq!(display_name(&json!({})), None);
    }
}

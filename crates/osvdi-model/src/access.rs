//! Who may see and change which template: the authorisation rules, pure and in one place.

use crate::{GroupId, Role, Template, UserId, Visibility};

/// An authenticated person as the core sees them for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub groups: Vec<GroupId>,
}

/// A person may see a template they own, any template if admin, and otherwise one shared with
/// everyone or with one of their groups that has a usable (ready) version.
pub fn can_view_template(who: &Principal, t: &Template) -> bool {
    if can_manage_template(who, t) {
        return true;
    }
    if t.current_version.is_none() {
        return false;
    }
    match t.visibility {
        Visibility::Private => false,
        Visibility::Everyone => true,
        Visibility::Groups => t.shared_with.iter().any(|g| who.groups.contains(g)),
    }
}

/// Only the owning steward and admins change, upload to, share or delete a template.
pub fn can_manage_template(who: &Principal, t: &Template) -> bool {
    who.role.is_admin() || (who.role.manages_templates() && t.owner == who.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DisplayProtocol, TemplateId, TemplateSpec, UnixMillis};

    fn person(role: Role, groups: Vec<GroupId>) -> Principal {
        Principal {
            id: UserId::random(),
            name: "p".into(),
            role,
            groups,
        }
    }

    fn template(owner: UserId, visibility: Visibility, shared_with: Vec<GroupId>) -> Template {
        Template {
            id: TemplateId::random(),
            spec: TemplateSpec {
                name: "t".into(),
                description: String::new(),
                os: String::new(),
                vcpus: 1,
                memory_mb: 512,
                disk_gb: 1,
                vgpu_type: None,
                protocols: vec![DisplayProtocol::Vnc],
                tags: vec![],
                ready: crate::ReadyRule::default(),
                idle_timeout_min: None,
                max_lifetime_min: None,
                warm_pool: 0,
            },
            owner,
            visibility,
            policy: crate::AccessPolicy::default(),
            shared_with,
            current_version: Some(1),
            created_at: UnixMillis(0),
            updated_at: UnixMillis(0),
        }
    }

    #[test]
    fn visibility_rules() {
        let g = GroupId::random();
        let steward = person(Role::Steward, vec![]);
        let member = person(Role::User, vec![g]);
        let outsider = person(Role::User, vec![GroupId::random()]);
        let admin = person(Role::Admin, vec![]);
        let other_steward = person(Role::Steward, vec![]);

        let private = template(steward.id, Visibility::Private, vec![g]);
        assert!(can_view_template(&steward, &private));
        assert!(can_view_template(&admin, &private));
        assert!(!can_view_template(&member, &private));
        assert!(!can_view_template(&other_steward, &private));

        let shared = template(steward.id, Visibility::Groups, vec![g]);
        assert!(can_view_template(&member, &shared));
        assert!(!can_view_template(&outsider, &shared));
        assert!(!can_manage_template(&member, &shared));
        assert!(!can_manage_template(&other_steward, &shared));
        assert!(can_manage_template(&admin, &shared));

        let mut everyone = template(steward.id, Visibility::Everyone, vec![]);
        assert!(can_view_template(&outsider, &everyone));
        everyone.current_version = None;
        assert!(
            !can_view_template(&outsider, &everyone),
            "nothing to launch yet"
        );
        assert!(can_view_template(&steward, &everyone));
    }

    #[test]
    fn a_user_owning_a_template_after_demotion_cannot_manage_it() {
        let u = person(Role::User, vec![]);
        let t = template(u.id, Visibility::Private, vec![]);
        assert!(!can_manage_template(&u, &t));
    }
}

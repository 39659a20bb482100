//! Audit records: who did what to which object, when, from where, and how it ended.

use crate::template::text_enum;
use crate::{UnixMillis, UserId};

text_enum!(
    /// What was done. Stored by name; new actions are added at the end.
    AuditAction, "audit action", {
        Login = "login",
        Logout = "logout",
        PasswordChange = "password.change",
        UserCreate = "user.create",
        UserDelete = "user.delete",
        UserRoleChange = "user.role",
        UserPasswordReset = "user.password_reset",
        GroupCreate = "group.create",
        GroupDelete = "group.delete",
        GroupMemberAdd = "group.member_add",
        GroupMemberRemove = "group.member_remove",
        TemplateCreate = "template.create",
        TemplateUpdate = "template.update",
        TemplateDelete = "template.delete",
        TemplateShare = "template.share",
        ImageUpload = "template.upload",
        VersionDelete = "template.version_delete",
        SessionLaunch = "session.launch",
        SessionSuspend = "session.suspend",
        SessionResume = "session.resume",
        SessionEnd = "session.end",
        TemplatePolicy = "template.policy",
        CourseCreate = "course.create",
        CourseDelete = "course.delete",
        ConsoleOpen = "session.console",
        SpiceTicket = "session.spice",
        ProxyConnect = "proxy.connect",
    }
);

text_enum!(
    /// How an audited attempt ended.
    AuditOutcome, "audit outcome", {
        Success = "success",
        /// Refused for lack of rights or credentials, or rate limited.
        Denied = "denied",
        /// Attempted with the right to do it, but it failed (e.g. a rejected image).
        Failed = "failed",
    }
);

/// One line of the audit log. `detail` is human-readable context and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: UnixMillis,
    pub actor: Option<UserId>,
    /// The name as given (for failed logins, the name that was tried).
    pub actor_name: String,
    pub action: AuditAction,
    /// "user:alice", "template:<id>", "group:physics" ...
    pub object: String,
    pub outcome: AuditOutcome,
    pub client: Option<String>,
    pub detail: String,
}

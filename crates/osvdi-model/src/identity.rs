//! Accounts, roles and groups.

use std::fmt;
use std::str::FromStr;

use crate::{GroupId, ParseError, UnixMillis, UserId};

/// What a person may do beyond using desktops shared with them.
///
/// Roles are ordered: an admin can do everything a steward can, a steward everything a user can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Uses the desktops shared with them.
    User,
    /// Also uploads, versions and shares templates.
    Steward,
    /// Also manages accounts and groups and reads the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::User, Role::Steward, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Steward => "steward",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may create, upload and share templates.
    pub fn manages_templates(self) -> bool {
        self >= Role::Steward
    }

    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseError {
                kind: "role",
                value: s.chars().take(64).collect(),
            })
    }
}

/// A local account. The password hash lives only in the store and the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    /// Unique, lower case, see [`crate::validate_username`].
    pub name: String,
    pub role: Role,
    pub created_at: UnixMillis,
}

/// A named set of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub created_at: UnixMillis,
}

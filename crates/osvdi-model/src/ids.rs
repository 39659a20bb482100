//! Typed identifiers: UUIDs that cannot be mixed up between kinds of object.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
            /// The all-zero identifier, used for actors that are not accounts.
            pub const fn nil() -> Self {
                Self(Uuid::nil())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| crate::ParseError {
                    kind: stringify!($name),
                    value: s.chars().take(64).collect(),
                })
            }
        }
    };
}

id_type!(
    /// A local account.
    UserId
);
id_type!(
    /// A group of users, the unit templates are shared with.
    GroupId
);
id_type!(
    /// A desktop template (its versions share the id).
    TemplateId
);
id_type!(
    /// One desktop: a VM made from a template version for one person.
    DesktopId
);

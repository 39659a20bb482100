//! Rules for the names people give to accounts, groups, templates and tags.

/// A name that breaks the rules for its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid {kind}: {reason}")]
pub struct NameError {
    pub kind: &'static str,
    pub reason: &'static str,
}

fn identifier(kind: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    let err = |reason| Err(NameError { kind, reason });
    if s.is_empty() {
        return err("it is empty");
    }
    if s.len() > max {
        return err("it is too long");
    }
    let first_ok = s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !first_ok || !rest_ok {
        return err(
            "use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit",
        );
    }
    Ok(())
}

/// Account names: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn validate_username(s: &str) -> Result<(), NameError> {
    identifier("user name", s, 64)
}

/// Group names: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn validate_group_name(s: &str) -> Result<(), NameError> {
    identifier("group name", s, 64)
}

/// Tags: `[a-z0-9][a-z0-9._-]{0,31}`.
pub fn validate_tag(s: &str) -> Result<(), NameError> {
    identifier("tag", s, 32)
}

/// Template names are free text for people: 1 to 100 characters, no control characters, no
/// leading or trailing space. Uniqueness (case-insensitive) is the store's business.
pub fn validate_template_name(s: &str) -> Result<(), NameError> {
    let err = |reason| {
        Err(NameError {
            kind: "template name",
            reason,
        })
    };
    if s.trim().is_empty() {
        return err("it is empty");
    }
    if s.chars().count() > 100 {
        return err("it is longer than 100 characters");
    }
    if s.trim() != s {
        return err("it starts or ends with white space");
    }
    if s.chars().any(char::is_control) {
        return err("it contains control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a.b-c_9").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("Alice").is_err());
        assert!(validate_username("-x").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username(&"a".repeat(65)).is_err());
        assert!(validate_tag(&"a".repeat(33)).is_err());
    }

    #[test]
    fn template_names() {
        assert!(validate_template_name("Ubuntu 24.04 + napari (vGPU)").is_ok());
        assert!(validate_template_name(" x").is_err());
        assert!(validate_template_name("a\nb").is_err());
        assert!(validate_template_name("   ").is_err());
        assert!(validate_template_name(&"é".repeat(100)).is_ok());
        assert!(validate_template_name(&"é".repeat(101)).is_err());
    }
}

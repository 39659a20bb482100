//! Mapping rules meet a person's claims: which osvdi groups and role follow. Pure.

use std::collections::BTreeMap;

use osvdi_model::Role;
use serde_json::Value;

use super::config::MappingRule;

/// What the rules give one login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Group name → why ("rule 2: groups = \"/imaging\"").
    pub groups: BTreeMap<String, String>,
    /// The highest role any rule gives, with why.
    pub role: Option<(Role, String)>,
}

/// Finds a claim by name, dotted path (`realm_access.roles`) or JSON pointer
/// (`/realm_access/roles`). A top-level claim whose name contains dots (URLs as claim names)
/// wins over the path.
pub fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if path.starts_with('/') {
        return claims.pointer(path);
    }
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

/// A claim's values as text: each item of an array, or the value itself. Objects and nulls
/// have none.
fn values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(values).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Null | Value::Object(_) => vec![],
    }
}

/// The value of `rule`'s claim that satisfies it, if any.
pub fn matching_value(rule: &MappingRule, claims: &Value) -> Option<String> {
    let found = lookup(claims, &rule.claim)?;
    let vals = values(found);
    match (&rule.value, &rule.value_prefix) {
        (Some(want), _) => vals.into_iter().find(|v| v == want),
        (None, Some(prefix)) => vals.into_iter().find(|v| v.starts_with(prefix.as_str())),
        (None, None) => vals.into_iter().next(),
    }
}

/// Evaluates every rule for a login through `provider`. Rules are numbered from 1 as in
/// the config file; the first rule that grants a group gives its reason.
pub fn evaluate(rules: &[MappingRule], provider: &str, claims: &Value) -> Mapping {
    let mut out = Mapping::default();
    for (i, rule) in rules.iter().enumerate() {
        if rule.provider.as_deref().is_some_and(|p| p != provider) {
            continue;
        }
        let Some(value) = matching_value(rule, claims) else {
            continue;
        };
        let reason = format!("rule {}: {} = \"{value}\"", i + 1, rule.claim);
        if let Some(g) = &rule.group {
            out.groups
                .entry(g.clone())
                .or_insert_with(|| reason.clone());
        }
        if let Some(r) = rule.role
            && out.role.as_ref().is_none_or(|(have, _)| r > *have)
        {
            out.role = Some((r, reason));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(claim: &str, value: Option<&str>, prefix: Option<&str>) -> MappingRule {
        MappingRule {
            provider: None,
            claim: claim.into(),
            value: value.map(Into::into),
            value_prefix: prefix.map(Into::into),
            group: None,
            role: None,
        }
    }

    #[test]
    fn finds_claims_by_name_path_and_pointer() {
        let c = json!({"groups": ["a"], "realm_access": {"roles": ["r1", "r2"]},
                       "https://example.org/claims.groups": ["x"]});
        assert_eq!(lookup(&c, "groups"), Some(&json!(["a"])));
        assert_eq!(lookup(&c, "realm_access.roles"), Some(&json!(["r1", "r2"])));
        assert_eq!(lookup(&c, "/realm_access/roles/1"), Some(&json!("r2")));
        assert_eq!(
            lookup(&c, "https://example.org/claims.groups"),
            Some(&json!(["x"]))
        );
        assert_eq!(lookup(&c, "realm_access.missing"), None);
        assert_eq!(lookup(&c, "nothing"), None);
    }

    #[test]
    fn groups_entitlements_and_roles() {
        let egi = "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu";
        let claims = json!({
            "groups": ["/imaging", "/staff"],
            "eduperson_entitlement": [egi],
            "eduperson_affiliation": "member",
            "realm_access": {"roles": ["vdi-steward"]},
            "verified": true,
        });
        let rules = vec![
            MappingRule {
                group: Some("imaging".into()),
                ..rule("groups", Some("/imaging"), None)
            },
            MappingRule {
                group: Some("physics".into()),
                ..rule("groups", Some("/physics"), None)
            },
            MappingRule {
                group: Some("vo-example".into()),
                ..rule(
                    "eduperson_entitlement",
                    None,
                    Some("urn:mace:egi.eu:group:vo.example.org:"),
                )
            },
            MappingRule {
                group: Some("members".into()),
                ..rule("eduperson_affiliation", Some("member"), None)
            },
            MappingRule {
                role: Some(Role::Steward),
                ..rule("realm_access.roles", Some("vdi-steward"), None)
            },
            MappingRule {
                role: Some(Role::Admin),
                ..rule("realm_access.roles", Some("vdi-admin"), None)
            },
            MappingRule {
                group: Some("verified".into()),
                ..rule("verified", Some("true"), None)
            },
            MappingRule {
                provider: Some("other".into()),
                group: Some("other".into()),
                ..rule("groups", None, None)
            },
        ];
        let m = evaluate(&rules, "uni", &claims);
        assert_eq!(
            m.groups.keys().map(String::as_str).collect::<Vec<_>>(),
            ["imaging", "members", "verified", "vo-example"]
        );
        assert_eq!(m.groups["imaging"], "rule 1: groups = \"/imaging\"");
        assert_eq!(
            m.groups["vo-example"],
            format!("rule 3: eduperson_entitlement = \"{egi}\"")
        );
        assert_eq!(m.role.as_ref().map(|r| r.0), Some(Role::Steward));

        // Losing the group at home loses it here.
        let fewer = json!({"groups": ["/staff"]});
        let m = evaluate(&rules, "uni", &fewer);
        assert!(m.groups.is_empty());
        assert_eq!(m.role, None);
        // Provider-bound rules apply to that provider only.
        let m = evaluate(&rules, "other", &fewer);
        assert_eq!(m.groups.keys().collect::<Vec<_>>(), ["other"]);
    }

    #[test]
    fn the_highest_role_wins_and_objects_never_match() {
        let claims = json!({"r": ["a", "b"], "o": {"k": "v"}});
        let rules = vec![
            MappingRule {
                role: Some(Role::Admin),
                ..rule("r", Some("b"), None)
            },
            MappingRule {
                role: Some(Role::Steward),
                ..rule("r", Some("a"), None)
            },
            MappingRule {
                group: Some("g".into()),
                ..rule("o", None, None)
            },
        ];
        let m = evaluate(&rules, "p", &claims);
        assert_eq!(m.role.map(|r| r.0), Some(Role::Admin));
        assert!(m.groups.is_empty());
    }
}

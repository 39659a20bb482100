//! Writing and reading the audit log.

use osvdi_model::{AuditAction, AuditEntry, AuditOutcome};
use osvdi_store::AuditQuery;

use crate::{Caller, Core, CoreError, Result};

impl Core {
    /// Records what `caller` did. A failure to write the audit log is logged, not returned:
    /// the operation it describes has already happened.
    pub(crate) async fn record(
        &self,
        caller: &Caller,
        action: AuditAction,
        object: String,
        outcome: AuditOutcome,
        detail: impl Into<String>,
    ) {
        let actor = (!caller.who.id.as_uuid().is_nil()).then_some(caller.who.id);
        self.record_raw(
            actor,
            &caller.who.name,
            caller.client,
            action,
            object,
            outcome,
            detail.into(),
        )
        .await;
    }

    #[allow(clippy::too_many_arguments)] // one audit line has this many fields
    pub(crate) async fn record_raw(
        &self,
        actor: Option<osvdi_model::UserId>,
        actor_name: &str,
        client: Option<std::net::IpAddr>,
        action: AuditAction,
        object: String,
        outcome: AuditOutcome,
        detail: String,
    ) {
        let entry = AuditEntry {
            id: 0,
            at: self.now(),
            actor,
            actor_name: actor_name.chars().take(128).collect(),
            action,
            object,
            outcome,
            client: client.map(|c| c.to_string()),
            detail,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, action = %action, "cannot write the audit log");
        }
    }

    /// Reads the audit log (admins only).
    pub async fn audit_log(&self, caller: &Caller, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        if !caller.who.role.is_admin() {
            return Err(CoreError::Forbidden(
                "Only admins read the audit log".into(),
            ));
        }
        Ok(self.store.audit(query).await?)
    }
}

//! Logins on their way through a provider: state, nonce, PKCE verifier and where to go
//! after, kept in memory for a few minutes and used once. A restart of the server forgets
//! them (the person clicks "Log in with ..." again).

use std::collections::HashMap;
use std::sync::Mutex;

use osvdi_model::UnixMillis;

/// How long a person has at the provider to log in.
pub(crate) const PENDING_TTL_MS: i64 = 10 * 60 * 1000;
/// At most this many logins in flight; the oldest go first beyond it.
const MAX_PENDING: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct PendingLogin {
    pub provider: String,
    /// The browser's binding cookie value: the answer must come back to the same browser.
    pub binding: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub created: UnixMillis,
}

/// Pending logins by their `state`.
#[derive(Debug, Default)]
pub(crate) struct PendingLogins {
    by_state: Mutex<HashMap<String, PendingLogin>>,
}

impl PendingLogins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingLogin>> {
        // Only plain data is inside; a panic elsewhere leaves it usable.
        self.by_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, state: String, login: PendingLogin, now: UnixMillis) {
        let mut map = self.lock();
        map.retain(|_, p| now.0 - p.created.0 < PENDING_TTL_MS);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created.0)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state, login);
    }

    /// Takes the login for `state` (single use). `None` when unknown, used, expired, or
    /// started by another browser (then it is spent too: a stolen callback URL is worthless).
    pub(crate) fn take(
        &self,
        state: &str,
        binding: Option<&str>,
        now: UnixMillis,
    ) -> Option<PendingLogin> {
        let p = self.lock().remove(state)?;
        let same_browser =
            binding.is_some_and(|b| constant_time_eq(b.as_bytes(), p.binding.as_bytes()));
        (same_browser && now.0 - p.created.0 < PENDING_TTL_MS).then_some(p)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(binding: &str, at: i64) -> PendingLogin {
        PendingLogin {
            provider: "p".into(),
            binding: binding.into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            created: UnixMillis(at),
        }
    }

    #[test]
    fn single_use_same_browser_and_expiry() {
        let p = PendingLogins::default();
        p.insert("s1".into(), login("b1", 0), UnixMillis(0));
        assert!(p.take("s1", Some("b1"), UnixMillis(1000)).is_some());
        assert!(
            p.take("s1", Some("b1"), UnixMillis(1000)).is_none(),
            "replayed"
        );

        p.insert("s2".into(), login("b1", 0), UnixMillis(0));
        assert!(
            p.take("s2", Some("other"), UnixMillis(1)).is_none(),
            "other browser"
        );
        assert!(
            p.take("s2", Some("b1"), UnixMillis(1)).is_none(),
            "spent by the attempt"
        );

        p.insert("s3".into(), login("b1", 0), UnixMillis(0));
        assert!(p.take("s3", None, UnixMillis(1)).is_none(), "no cookie");

        p.insert("s4".into(), login("b1", 0), UnixMillis(0));
        assert!(
            p.take("s4", Some("b1"), UnixMillis(PENDING_TTL_MS))
                .is_none(),
            "expired"
        );
    }
}

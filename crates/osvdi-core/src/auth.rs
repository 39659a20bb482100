//! Passwords (argon2id), login sessions with bearer tokens, and the login rate limit.

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use osvdi_model::{AuditAction, AuditOutcome, Principal, UnixMillis, User};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::{Caller, Core, CoreError, Result};

/// Tokens start with this, so that a leaked one is recognisable (and greppable) as osvdi's.
pub(crate) const TOKEN_PREFIX: &str = "osvdi_";
pub(crate) const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_BYTES: usize = 1024;

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The bearer token: shown to the client once, stored only as a hash.
    pub token: String,
    pub user: User,
    pub expires_at: UnixMillis,
}

/// An authenticated request's login session.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The stored hash of the token (not the token), to end or keep this session.
    pub token_hash: String,
    pub expires_at: UnixMillis,
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password for generated accounts: 20 characters from an unambiguous alphabet.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

pub(crate) fn check_password_policy(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CoreError::Invalid(format!(
            "Passwords need at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CoreError::Invalid(
            "Passwords are at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Hashes with argon2id (OWASP parameters: 19 MiB, 2 passes) off the async threads.
pub(crate) async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| CoreError::Internal(format!("password hashing task failed: {e}")))?
}

async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

impl Core {
    /// A hash of nothing anyone knows, verified against when the user does not exist so that
    /// the answer takes as long as for a real user.
    async fn dummy_hash(&self) -> &str {
        match self.dummy_hash.get() {
            Some(h) => h,
            None => {
                let h = hash_password(&generate_password())
                    .await
                    .unwrap_or_default();
                self.dummy_hash.get_or_init(|| h)
            }
        }
    }

    /// Checks a user name and password and opens a login session.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<LoginOutcome> {
        let name = username.trim().to_lowercase();
        let now = self.now();
        let object = format!("user:{}", name.chars().take(64).collect::<String>());
        let blocked = self.limiter_lock().check(&name, client, now);
        if let Some(retry_after) = blocked {
            self.record_raw(
                None,
                &name,
                client,
                AuditAction::Login,
                object,
                AuditOutcome::Denied,
                "rate limited".into(),
            )
            .await;
            return Err(CoreError::RateLimited { retry_after });
        }
        let record = self.store.user_by_name(&name).await?;
        let ok = match &record {
            Some(r) => {
                password.len() <= MAX_PASSWORD_BYTES
                    && verify_password(password, &r.password_hash).await
            }
            None => {
                verify_password(password, self.dummy_hash().await).await;
                false
            }
        };
        let record = match record {
            Some(r) if ok => r,
            other => {
                self.limiter_lock().failed(&name, client, now);
                let detail = if other.is_some() {
                    "wrong password"
                } else {
                    "unknown user"
                };
                let actor = other.map(|r| r.user.id);
                self.record_raw(
                    actor,
                    &name,
                    client,
                    AuditAction::Login,
                    object,
                    AuditOutcome::Denied,
                    detail.into(),
                )
                .await;
                return Err(CoreError::InvalidCredentials);
            }
        };
        self.limiter_lock().succeeded(&name);
        let token = format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let expires_at = now.plus(self.config.session_ttl);
        let client_text = client.map(|c| c.to_string());
        self.store
            .create_session(
                &token_hash(&token),
                record.user.id,
                now,
                expires_at,
                client_text.as_deref(),
            )
            .await?;
        self.record_raw(
            Some(record.user.id),
            &record.user.name,
            client,
            AuditAction::Login,
            object,
            AuditOutcome::Success,
            String::new(),
        )
        .await;
        Ok(LoginOutcome {
            token,
            user: record.user,
            expires_at,
        })
    }

    fn limiter_lock(&self) -> std::sync::MutexGuard<'_, crate::ratelimit::LoginLimiter> {
        // A panic while holding this lock leaves only counters behind; keep using them.
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session a bearer token or cookie value belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<Session> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(CoreError::Unauthenticated);
        }
        let hash = token_hash(token);
        let record = self
            .store
            .session(&hash, self.now())
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        let groups = self
            .store
            .groups_of(record.user.id)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        let principal = Principal {
            id: record.user.id,
            name: record.user.name,
            role: record.user.role,
            groups,
        };
        Ok(Session {
            principal,
            token_hash: hash,
            expires_at: record.expires_at,
        })
    }

    /// Ends a login session.
    pub async fn logout(&self, caller: &Caller, session: &Session) -> Result<()> {
        self.store.delete_session(&session.token_hash).await?;
        self.record(
            caller,
            AuditAction::Logout,
            format!("user:{}", caller.who.name),
            AuditOutcome::Success,
            "",
        )
        .await;
        Ok(())
    }

    /// Changes the caller's own password after checking the current one; their other
    /// sessions end, this one stays.
    pub async fn change_password(
        &self,
        caller: &Caller,
        session: &Session,
        current: &str,
        new: &str,
    ) -> Result<()> {
        let object = format!("user:{}", caller.who.name);
        let record = self.store.user_record(caller.who.id).await?;
        if !verify_password(current, &record.password_hash).await {
            self.record(
                caller,
                AuditAction::PasswordChange,
                object,
                AuditOutcome::Denied,
                "wrong current password",
            )
            .await;
            return Err(CoreError::Forbidden("The current password is wrong".into()));
        }
        check_password_policy(new)?;
        let hash = hash_password(new).await?;
        self.store
            .set_password_hash(caller.who.id, &hash, Some(&session.token_hash), self.now())
            .await?;
        self.record(
            caller,
            AuditAction::PasswordChange,
            object,
            AuditOutcome::Success,
            "",
        )
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse battery").await.unwrap();
        let b = hash_password("correct horse battery").await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("correct horse battery", &a).await);
        assert!(!verify_password("wrong", &a).await);
        assert!(!verify_password("x", "not a hash").await);
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        let p = generate_password();
        assert_eq!(p.len(), 20);
        check_password_policy(&p).unwrap();
        assert!(check_password_policy("short").is_err());
    }
}

//! Browser consoles: one-time console tokens, redeeming them for a desktop's VNC endpoint, and
//! the live console connections of each desktop (connected or not, and the last activity the
//! idle timeout counts from).
//!
//! A token is 256 random bits shown once to the person who asked; the core keeps only its
//! SHA-256, in memory (a restart forgets them all, which is harmless: they live a minute).
//! Redeeming spends it, whatever happens next.

mod rfb_input;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use osvdi_compute::VncEndpoint;
use osvdi_model::{
    AuditAction, AuditOutcome, Desktop, DesktopId, DesktopState, UnixMillis, UserId,
};
use sha2::{Digest, Sha256};

use crate::{Caller, Core, CoreError, Result};

/// How long a console token can be redeemed.
pub const CONSOLE_TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long spent and expired tokens are remembered, to tell a replay from a made-up token.
const REMEMBER: Duration = Duration::from_secs(10 * 60);
/// Input on a console is written down as activity at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// A console token for the person who asked; shown once.
#[derive(Debug, Clone)]
pub struct ConsoleToken {
    pub token: String,
    pub desktop: DesktopId,
    pub expires_at: UnixMillis,
}

/// What a token may be redeemed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The browser console (RFB over a WebSocket).
    Vnc,
    /// The H.264 video stream (`/ws/stream`).
    Stream,
}

#[derive(Debug)]
struct Grant {
    desktop: DesktopId,
    user: UserId,
    purpose: Purpose,
    expires_at: UnixMillis,
    spent: bool,
}

/// The core's console bookkeeping: tokens by hash and live connections by desktop.
#[derive(Debug, Default)]
pub(crate) struct Consoles {
    grants: Mutex<HashMap<String, Grant>>,
    live: Mutex<HashMap<DesktopId, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a token was refused, for the audit log (the person gets one message for all).
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Unknown,
    Replayed,
    Expired,
    OtherPerson,
}

impl Refusal {
    fn detail(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown console token",
            Refusal::Replayed => "console token used again",
            Refusal::Expired => "expired console token",
            Refusal::OtherPerson => "console token of another person",
        }
    }

    fn error(self) -> CoreError {
        CoreError::Forbidden(
            match self {
                Refusal::Expired => "This console link has expired; open the console again",
                Refusal::Replayed => "This console link was already used; open the console again",
                Refusal::Unknown | Refusal::OtherPerson => "This console link is not valid",
            }
            .into(),
        )
    }
}

impl Core {
    /// Whether a browser console is connected to the desktop now.
    pub fn is_connected(&self, id: DesktopId) -> bool {
        lock(&self.consoles.live).get(&id).is_some_and(|n| *n > 0)
    }

    /// Refuses a console to `caller` if the template's access policy does, and audits it.
    async fn console_policy(&self, caller: &Caller, d: &Desktop) -> Result<()> {
        let t = self.store.template(d.template).await?;
        if let Err(e) = self.check_access(caller, &t, caller.client).await {
            if let CoreError::Forbidden(reason) = &e {
                self.record(
                    caller,
                    AuditAction::ConsoleOpen,
                    format!("session:{}", d.id),
                    AuditOutcome::Denied,
                    reason.clone(),
                )
                .await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// A one-time token for the browser console of a ready desktop: for its owner (or an
    /// admin), where the template's policy allows it now.
    pub async fn console_token(&self, caller: &Caller, id: DesktopId) -> Result<ConsoleToken> {
        self.issue_token(caller, id, Purpose::Vnc).await
    }

    /// Like [`Core::console_token`], for the desktop's H.264 video stream (`/ws/stream`): the
    /// same checks; a stream token opens only a stream, a console token only a console.
    pub async fn stream_token(&self, caller: &Caller, id: DesktopId) -> Result<ConsoleToken> {
        self.issue_token(caller, id, Purpose::Stream).await
    }

    async fn issue_token(
        &self,
        caller: &Caller,
        id: DesktopId,
        purpose: Purpose,
    ) -> Result<ConsoleToken> {
        let d = self.desktop(caller, id).await?;
        if d.state != DesktopState::Ready {
            return Err(CoreError::Conflict(format!(
                "The session is {}; its console opens once it is ready",
                d.state
            )));
        }
        self.console_policy(caller, &d).await?;
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = self.now();
        let expires_at = now.plus(CONSOLE_TOKEN_TTL);
        {
            let mut grants = lock(&self.consoles.grants);
            grants.retain(|_, g| g.expires_at.plus(REMEMBER) > now);
            grants.insert(
                token_hash(&token),
                Grant {
                    desktop: id,
                    user: caller.who.id,
                    purpose,
                    expires_at,
                    spent: false,
                },
            );
        }
        self.record(
            caller,
            AuditAction::ConsoleOpen,
            format!("session:{id}"),
            AuditOutcome::Success,
            match purpose {
                Purpose::Vnc => "console token issued",
                Purpose::Stream => "stream token issued",
            },
        )
        .await;
        Ok(ConsoleToken {
            token,
            desktop: id,
            expires_at,
        })
    }

    /// Spends a console token (its first presentation spends it, whatever follows) and checks
    /// it was `caller`'s, is in time, and the desktop is ready and allowed now.
    fn spend(
        &self,
        token: &str,
        purpose: Purpose,
    ) -> std::result::Result<Grant, (Refusal, Option<DesktopId>)> {
        let now = self.now();
        let mut grants = lock(&self.consoles.grants);
        grants.retain(|_, g| g.expires_at.plus(REMEMBER) > now);
        let Some(g) = grants.get_mut(&token_hash(token)) else {
            return Err((Refusal::Unknown, None));
        };
        if g.spent {
            return Err((Refusal::Replayed, Some(g.desktop)));
        }
        g.spent = true;
        // Presented at the wrong door: spent, and refused like a made-up token.
        if g.purpose != purpose {
            return Err((Refusal::Unknown, Some(g.desktop)));
        }
        if g.expires_at <= now {
            return Err((Refusal::Expired, Some(g.desktop)));
        }
        Ok(Grant { spent: true, ..*g })
    }

    /// Redeems a console token for the desktop's VNC endpoint: the connection counts as live
    /// until the returned link is dropped.
    pub async fn open_console(
        self: &Arc<Self>,
        caller: &Caller,
        token: &str,
    ) -> Result<ConsoleLink> {
        self.redeem(caller, token, Purpose::Vnc).await
    }

    /// Redeems a stream token (from [`Core::stream_token`]) for the desktop's VNC endpoint,
    /// which the server turns into video; otherwise as [`Core::open_console`].
    pub async fn open_stream(
        self: &Arc<Self>,
        caller: &Caller,
        token: &str,
    ) -> Result<ConsoleLink> {
        self.redeem(caller, token, Purpose::Stream).await
    }

    async fn redeem(
        self: &Arc<Self>,
        caller: &Caller,
        token: &str,
        purpose: Purpose,
    ) -> Result<ConsoleLink> {
        let grant = match self.spend(token, purpose) {
            Ok(g) if g.user != caller.who.id => Err((Refusal::OtherPerson, Some(g.desktop))),
            other => other,
        };
        let grant = match grant {
            Ok(g) => g,
            Err((refusal, desktop)) => {
                let object =
                    desktop.map_or_else(|| "console".to_owned(), |d| format!("session:{d}"));
                self.record(
                    caller,
                    AuditAction::ConsoleOpen,
                    object,
                    AuditOutcome::Denied,
                    refusal.detail(),
                )
                .await;
                return Err(refusal.error());
            }
        };
        debug_assert_eq!(grant.purpose, purpose);
        let d = self.desktop(caller, grant.desktop).await?;
        if d.state != DesktopState::Ready {
            return Err(CoreError::Conflict(format!(
                "The session is {}; its console is closed",
                d.state
            )));
        }
        self.console_policy(caller, &d).await?;
        let display = self
            .compute()?
            .display(d.id)
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let now = self.now();
        self.store.touch_desktop(d.id, now).await?;
        let first = {
            let mut live = lock(&self.consoles.live);
            let n = live.entry(d.id).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            self.announce(&d);
        }
        tracing::info!(desktop = %d.id, user = %caller.who.name, "console connected");
        Ok(ConsoleLink {
            core: Arc::clone(self),
            desktop: d,
            vnc: display.vnc,
            input: rfb_input::InputScanner::default(),
            last_touch: now,
        })
    }
}

/// A live console connection. Dropping it ends the connection's bookkeeping.
#[derive(Debug)]
pub struct ConsoleLink {
    core: Arc<Core>,
    desktop: Desktop,
    vnc: VncEndpoint,
    input: rfb_input::InputScanner,
    last_touch: UnixMillis,
}

impl ConsoleLink {
    pub fn desktop(&self) -> DesktopId {
        self.desktop.id
    }

    /// Where to relay the viewer's bytes.
    pub fn vnc(&self) -> &VncEndpoint {
        &self.vnc
    }

    /// Bytes the viewer sends to the desktop: a person's input (keys, pointer, clipboard) is
    /// the desktop's activity, written down at most every 30 s.
    pub async fn from_viewer(&mut self, bytes: &[u8]) {
        if !self.input.feed(bytes) {
            return;
        }
        self.input_activity().await;
    }

    /// A person's input arrived by another way than RFB bytes (the video stream's own
    /// messages): activity, written down at most every 30 s.
    pub async fn input_activity(&mut self) {
        let now = self.core.now();
        if self.last_touch.until(now) < TOUCH_EVERY {
            return;
        }
        self.last_touch = now;
        if let Err(e) = self.core.store.touch_desktop(self.desktop.id, now).await {
            tracing::warn!(desktop = %self.desktop.id, error = %e, "cannot record console activity");
        }
    }
}

impl Drop for ConsoleLink {
    fn drop(&mut self) {
        let id = self.desktop.id;
        let last = {
            let mut live = lock(&self.core.consoles.live);
            match live.get_mut(&id) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    live.remove(&id);
                    true
                }
            }
        };
        tracing::info!(desktop = %id, "console disconnected");
        let core = Arc::clone(&self.core);
        let desktop = self.desktop.clone();
        // Writing down the activity needs the runtime, which is there unless it is shutting down.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = core.store.touch_desktop(desktop.id, core.now()).await;
                if last {
                    // The current state, not the one at connection time.
                    match core.store.desktop(desktop.id).await {
                        Ok(d) => core.announce(&d),
                        Err(_) => core.announce(&desktop),
                    }
                }
            });
        }
    }
}

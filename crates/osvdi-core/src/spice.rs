//! Native SPICE clients: one-time tickets for a desktop's SPICE display, and the admission of
//! the gateway proxy's CONNECT requests by those tickets.
//!
//! A ticket is a random password set on the desktop's SPICE server (through QMP, expiring
//! after [`SPICE_TICKET_TTL`]) and handed to its person in a `.vv` file. The client reaches the
//! SPICE port only through the gateway's HTTP CONNECT proxy, which asks [`Core::admit_connect`]
//! for every connection. A SPICE client opens one TCP connection per channel (main first, then
//! display, inputs, cursor, playback, record... as the server lists them), each with its own
//! CONNECT, so "once per ticket" means: the first CONNECT to a desktop's SPICE address spends
//! its ticket and opens an admission window of [`ADMISSION_WINDOW`] for further connections
//! from the same client address (at most [`MAX_CONNECTIONS`]); after it, nothing more is
//! admitted for that ticket, and the SPICE password is replaced by one nobody knows.
//!
//! The core keeps no ticket text: admission is by the desktop's address, and the password
//! itself is checked by the SPICE server on every channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use osvdi_compute::ComputeError;
use osvdi_model::{
    AuditAction, AuditOutcome, DesktopId, DesktopState, DisplayProtocol, UnixMillis, UserId,
};

use crate::{Caller, Core, CoreError, Result};

/// How long a ticket can be used after it was issued; the SPICE password expires then too.
pub const SPICE_TICKET_TTL: Duration = Duration::from_secs(60);
/// After a ticket's first connection, the client's further channels are admitted this long.
/// spice-gtk opens all its channels within a second of the main channel's link.
pub const ADMISSION_WINDOW: Duration = Duration::from_secs(10);
/// Connections one ticket admits at most (a client has one per channel: about six, more with
/// USB redirection or ports).
pub const MAX_CONNECTIONS: u32 = 16;
/// Spent and expired tickets are remembered this long, so that a replay is told as such.
const REMEMBER: Duration = Duration::from_secs(10 * 60);
/// Input on a SPICE connection is written down as activity at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// What a `.vv` file needs: where the desktop's SPICE server listens as the gateway sees it,
/// and its one-time password.
#[derive(Clone, PartialEq, Eq)]
pub struct SpiceFile {
    pub desktop: DesktopId,
    /// The SPICE server's address, reachable from the gateway only.
    pub host: IpAddr,
    pub port: u16,
    /// The one-time SPICE password. Secret: never logged.
    pub ticket: String,
    pub expires_at: UnixMillis,
    /// A window title for the client ("<template> (osvdi)").
    pub title: String,
}

impl std::fmt::Debug for SpiceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiceFile")
            .field("desktop", &self.desktop)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("ticket", &"<secret>")
            .field("expires_at", &self.expires_at)
            .field("title", &self.title)
            .finish()
    }
}

/// Who a ticket was issued to, for the audit lines of its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Issuer {
    id: UserId,
    name: String,
}

impl Issuer {
    /// The audit log's actor: none for the operator at the command line.
    fn actor(&self) -> Option<UserId> {
        (!self.id.as_uuid().is_nil()).then_some(self.id)
    }
}

/// A ticket's first use: who, and until when its further channels are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Use {
    client: IpAddr,
    until: UnixMillis,
    connections: u32,
}

#[derive(Debug)]
struct Ticket {
    serial: u64,
    desktop: DesktopId,
    target: SocketAddr,
    issuer: Issuer,
    expires_at: UnixMillis,
    used: Option<Use>,
}

/// Why a CONNECT was refused (the audit log's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NoTicket,
    Expired,
    Spent,
    OtherClient,
    TooMany,
    /// The desktop is no longer ready, or listens elsewhere now.
    Gone,
}

impl Refusal {
    fn detail(self) -> &'static str {
        match self {
            Refusal::NoTicket => "no SPICE ticket for this address",
            Refusal::Expired => "the ticket expired unused",
            Refusal::Spent => "the ticket was already used",
            Refusal::OtherClient => "the ticket is in use by another client address",
            Refusal::TooMany => "too many connections for one ticket",
            Refusal::Gone => "the session is not ready",
        }
    }
}

/// A CONNECT the gate let through.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Admitted {
    desktop: DesktopId,
    serial: u64,
    issuer: Issuer,
    /// The ticket's first connection (it is spent now).
    first: bool,
}

/// The rules of admission, without IO or clock: tickets by desktop (QEMU has one SPICE
/// password per desktop, so a new ticket replaces the previous one).
#[derive(Debug, Default)]
pub(crate) struct SpiceGate {
    tickets: Mutex<HashMap<DesktopId, Ticket>>,
    serials: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One address for one host: IPv4-mapped IPv6 as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl SpiceGate {
    fn issue(
        &self,
        desktop: DesktopId,
        target: SocketAddr,
        issuer: Issuer,
        now: UnixMillis,
    ) -> u64 {
        let serial = self.serials.fetch_add(1, Ordering::Relaxed) + 1;
        let mut tickets = lock(&self.tickets);
        tickets.retain(|_, t| t.expires_at.plus(REMEMBER) > now);
        tickets.insert(
            desktop,
            Ticket {
                serial,
                desktop,
                target,
                issuer,
                expires_at: now.plus(SPICE_TICKET_TTL),
                used: None,
            },
        );
        serial
    }

    /// Decides one CONNECT to `target` from `client` at `now`; a refusal names the desktop
    /// and issuer when a ticket (spent or not) was found for the address.
    fn admit(
        &self,
        target: SocketAddr,
        client: IpAddr,
        now: UnixMillis,
    ) -> std::result::Result<Admitted, (Refusal, Option<(DesktopId, Issuer)>)> {
        let client = canonical(client);
        let mut tickets = lock(&self.tickets);
        // A desktop's port may be reused by a later desktop: the newest ticket speaks for it.
        let Some(t) = tickets
            .values_mut()
            .filter(|t| t.target == target)
            .max_by_key(|t| t.serial)
        else {
            return Err((Refusal::NoTicket, None));
        };
        let known = Some((t.desktop, t.issuer.clone()));
        let first = match &mut t.used {
            None if now >= t.expires_at => return Err((Refusal::Expired, known)),
            None => {
                t.used = Some(Use {
                    client,
                    until: now.plus(ADMISSION_WINDOW),
                    connections: 1,
                });
                true
            }
            Some(u) if now >= u.until => return Err((Refusal::Spent, known)),
            Some(u) if u.client != client => return Err((Refusal::OtherClient, known)),
            Some(u) if u.connections >= MAX_CONNECTIONS => {
                return Err((Refusal::TooMany, known));
            }
            Some(u) => {
                u.connections += 1;
                false
            }
        };
        Ok(Admitted {
            desktop: t.desktop,
            serial: t.serial,
            issuer: t.issuer.clone(),
            first,
        })
    }

    /// Whether `serial` is still the desktop's current ticket.
    fn is_current(&self, desktop: DesktopId, serial: u64) -> bool {
        lock(&self.tickets)
            .get(&desktop)
            .is_some_and(|t| t.serial == serial)
    }
}

fn random_ticket() -> String {
    // 144 random bits in 24 characters; SPICE passwords may have up to 60.
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

fn compute_error(e: ComputeError) -> CoreError {
    match e {
        ComputeError::WrongState { .. } | ComputeError::Unsupported(_) => CoreError::Conflict(
            "The desktop's SPICE display is not available now; try again in a moment".into(),
        ),
        e => CoreError::Internal(e.to_string()),
    }
}

/// A title as one line of a `.vv` file: no control characters.
fn one_line(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

impl Core {
    /// A one-time SPICE ticket for a ready desktop, for its owner (or an admin), where the
    /// template offers SPICE and its policy allows `client` now. The ticket is set as the
    /// desktop's SPICE password for [`SPICE_TICKET_TTL`] and replaces any earlier one.
    pub async fn issue_spice_ticket(
        &self,
        caller: &Caller,
        id: DesktopId,
        client: Option<IpAddr>,
    ) -> Result<SpiceFile> {
        let d = self.desktop(caller, id).await?;
        let t = self.store.template(d.template).await?;
        if !t.spec.protocols.contains(&DisplayProtocol::Spice) {
            return Err(CoreError::Conflict(format!(
                "Template '{}' offers no SPICE display; use the browser console",
                t.spec.name
            )));
        }
        if d.state != DesktopState::Ready {
            return Err(CoreError::Conflict(format!(
                "The session is {}; a native client can connect once it is ready",
                d.state
            )));
        }
        let object = format!("session:{id}");
        if let Err(e) = self.check_access(caller, &t, client).await {
            if let CoreError::Forbidden(reason) = &e {
                let (action, outcome) = (AuditAction::SpiceTicket, AuditOutcome::Denied);
                self.record(caller, action, object, outcome, reason.clone())
                    .await;
            }
            return Err(e);
        }
        let compute = self.compute()?;
        let display = compute.display(id).await.map_err(compute_error)?;
        let Some(target) = display.spice else {
            return Err(CoreError::Conflict(
                "This desktop has no SPICE display; use the browser console".into(),
            ));
        };
        let ticket = random_ticket();
        compute
            .set_spice_ticket(id, &ticket, SPICE_TICKET_TTL)
            .await
            .map_err(compute_error)?;
        let now = self.now();
        let issuer = Issuer {
            id: caller.who.id,
            name: caller.who.name.clone(),
        };
        self.spice.issue(id, target, issuer, now);
        let detail = format!("ticket issued, valid {} s", SPICE_TICKET_TTL.as_secs());
        self.record(
            caller,
            AuditAction::SpiceTicket,
            object,
            AuditOutcome::Success,
            detail,
        )
        .await;
        Ok(SpiceFile {
            desktop: id,
            host: target.ip(),
            port: target.port(),
            ticket,
            expires_at: now.plus(SPICE_TICKET_TTL),
            title: format!("{} (osvdi)", one_line(&t.spec.name)),
        })
    }

    /// Decides whether the gateway proxy may connect `client` to `target`: only to the SPICE
    /// address of a ready desktop with a ticket in its admission window (see the module
    /// documentation). Every refusal and each ticket's first use are audited.
    pub async fn admit_connect(
        self: &Arc<Self>,
        target: SocketAddr,
        client: IpAddr,
    ) -> Result<SpiceLink> {
        let now = self.now();
        let refused = |refusal: Refusal, known: Option<(DesktopId, Issuer)>| async move {
            let (actor, name, object) = match known {
                Some((d, i)) => (i.actor(), i.name, format!("session:{d}")),
                None => (None, "anonymous".to_owned(), format!("address:{target}")),
            };
            tracing::info!(%target, %client, reason = refusal.detail(), "proxy CONNECT refused");
            let (action, outcome) = (AuditAction::ProxyConnect, AuditOutcome::Denied);
            let detail = refusal.detail().to_owned();
            self.record_raw(actor, &name, Some(client), action, object, outcome, detail)
                .await;
            CoreError::Forbidden(format!("CONNECT refused: {}", refusal.detail()))
        };
        let admitted = match self.spice.admit(target, client, now) {
            Ok(a) => a,
            Err((refusal, known)) => return Err(refused(refusal, known).await),
        };
        // The desktop must still be ready and listening there (not ended, its port reused).
        let live = match self.store.desktop(admitted.desktop).await {
            Ok(d) if d.state == DesktopState::Ready => match self.compute()?.display(d.id).await {
                Ok(display) => display.spice == Some(target),
                Err(_) => false,
            },
            _ => false,
        };
        if !live {
            let known = Some((admitted.desktop, admitted.issuer));
            return Err(refused(Refusal::Gone, known).await);
        }
        let object = format!("session:{}", admitted.desktop);
        if admitted.first {
            let detail = format!(
                "native client connected; ticket spent, its channels admitted for {} s",
                ADMISSION_WINDOW.as_secs()
            );
            let (action, outcome) = (AuditAction::ProxyConnect, AuditOutcome::Success);
            let issuer = &admitted.issuer;
            self.record_raw(
                issuer.actor(),
                &issuer.name,
                Some(client),
                action,
                object,
                outcome,
                detail,
            )
            .await;
            self.retire_ticket_later(admitted.desktop, admitted.serial);
        }
        tracing::info!(desktop = %admitted.desktop, %client, first = admitted.first, "proxy CONNECT admitted");
        self.store.touch_desktop(admitted.desktop, now).await?;
        Ok(SpiceLink {
            core: Arc::clone(self),
            desktop: admitted.desktop,
            last_touch: now,
        })
    }

    /// Once a ticket's admission window has passed, replaces the SPICE password by a random
    /// one that expires at once, so that the ticket cannot log in again even from the gateway
    /// itself. Connections already made stay (SPICE checks passwords at link time only).
    fn retire_ticket_later(self: &Arc<Self>, desktop: DesktopId, serial: u64) {
        let core = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(ADMISSION_WINDOW).await;
            if !core.spice.is_current(desktop, serial) {
                return; // A newer ticket replaced it (and its password).
            }
            let Ok(compute) = core.compute() else { return };
            if let Err(e) = compute
                .set_spice_ticket(desktop, &random_ticket(), Duration::ZERO)
                .await
            {
                tracing::debug!(%desktop, error = %e, "cannot retire a SPICE password");
            }
        });
    }
}

/// An admitted SPICE connection: it tells the core about its person's input.
#[derive(Debug)]
pub struct SpiceLink {
    core: Arc<Core>,
    desktop: DesktopId,
    last_touch: UnixMillis,
}

impl SpiceLink {
    pub fn desktop(&self) -> DesktopId {
        self.desktop
    }

    /// The client sent input (keys, pointer) on this connection: the desktop's activity,
    /// written down at most every 30 s.
    pub async fn input(&mut self) {
        let now = self.core.now();
        if self.last_touch.until(now) < TOUCH_EVERY {
            return;
        }
        self.last_touch = now;
        if let Err(e) = self.core.store.touch_desktop(self.desktop, now).await {
            tracing::warn!(desktop = %self.desktop, error = %e, "cannot record SPICE activity");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        Issuer {
            id: UserId::nil(),
            name: "alice".into(),
        }
    }

    const T0: UnixMillis = UnixMillis(1_000_000);

    fn at(secs: u64) -> UnixMillis {
        T0.plus(Duration::from_secs(secs))
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_connect_spends_the_ticket_and_opens_a_window_for_that_client() {
        let gate = SpiceGate::default();
        let d = DesktopId::random();
        gate.issue(d, addr(5900), issuer(), T0);
        let client = ip("10.0.0.7");
        let first = gate.admit(addr(5900), client, at(5)).unwrap();
        assert!(first.first);
        assert_eq!(first.desktop, d);
        for _ in 0..5 {
            let more = gate.admit(addr(5900), client, at(6)).unwrap();
            assert!(!more.first, "further channels do not spend anything");
        }
        let other = gate.admit(addr(5900), ip("10.0.0.8"), at(6)).unwrap_err();
        assert_eq!(other.0, Refusal::OtherClient);
        // The window closes ADMISSION_WINDOW after the first use.
        let late = gate.admit(addr(5900), client, at(15)).unwrap_err();
        assert_eq!((late.0, late.1.map(|k| k.0)), (Refusal::Spent, Some(d)));
    }

    #[test]
    fn unknown_addresses_expired_tickets_and_too_many_connections_are_refused() {
        let gate = SpiceGate::default();
        let d = DesktopId::random();
        assert_eq!(
            gate.admit(addr(5900), ip("127.0.0.1"), T0).unwrap_err().0,
            Refusal::NoTicket
        );
        gate.issue(d, addr(5900), issuer(), T0);
        assert_eq!(
            gate.admit(addr(22), ip("127.0.0.1"), at(1)).unwrap_err().0,
            Refusal::NoTicket
        );
        assert_eq!(
            gate.admit(addr(5900), ip("127.0.0.1"), at(60))
                .unwrap_err()
                .0,
            Refusal::Expired
        );
        gate.issue(d, addr(5900), issuer(), at(61));
        for _ in 0..MAX_CONNECTIONS {
            gate.admit(addr(5900), ip("::ffff:127.0.0.1"), at(62))
                .unwrap();
        }
        assert_eq!(
            gate.admit(addr(5900), ip("127.0.0.1"), at(62))
                .unwrap_err()
                .0,
            Refusal::TooMany,
            "IPv4-mapped addresses are the same client"
        );
    }

    #[test]
    fn a_new_ticket_replaces_the_old_one() {
        let gate = SpiceGate::default();
        let d = DesktopId::random();
        let old = gate.issue(d, addr(5901), issuer(), T0);
        gate.admit(addr(5901), ip("127.0.0.1"), at(1)).unwrap();
        assert!(gate.is_current(d, old));
        let new = gate.issue(d, addr(5901), issuer(), at(20));
        assert!(!gate.is_current(d, old) && gate.is_current(d, new));
        let a = gate.admit(addr(5901), ip("127.0.0.1"), at(21)).unwrap();
        assert!(a.first && a.serial == new);
    }

    #[test]
    fn a_reused_port_is_decided_by_the_newest_ticket() {
        let gate = SpiceGate::default();
        let (a, b) = (DesktopId::random(), DesktopId::random());
        gate.issue(a, addr(5902), issuer(), T0);
        gate.issue(b, addr(5902), issuer(), at(1));
        assert_eq!(
            gate.admit(addr(5902), ip("127.0.0.1"), at(2))
                .unwrap()
                .desktop,
            b
        );
    }
}

//! Login rate limiting: a sliding window of failed attempts per user name and per client
//! address. Pure: time is an argument.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use osvdi_model::UnixMillis;

/// How many failed logins are allowed within `window` before further attempts are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_user: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: 5,
            per_address: 20,
            window: Duration::from_secs(300),
        }
    }
}

/// Entries beyond this are pruned of stale windows, so that a flood of names or addresses
/// cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
struct Windows<K> {
    failures: HashMap<K, VecDeque<UnixMillis>>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    fn new() -> Self {
        Windows {
            failures: HashMap::new(),
        }
    }

    /// The time until `key` may try again, if it is over `limit` at `now`.
    fn blocked(
        &mut self,
        key: &K,
        limit: u32,
        window: Duration,
        now: UnixMillis,
    ) -> Option<Duration> {
        let q = self.failures.get_mut(key)?;
        while q.front().is_some_and(|t| t.plus(window) <= now) {
            q.pop_front();
        }
        if q.len() < limit as usize {
            return None;
        }
        // The attempt that unblocks is the one `limit` places from the end expiring.
        let t = q[q.len() - limit as usize];
        Some(now.until(t.plus(window)).max(Duration::from_secs(1)))
    }

    fn record(&mut self, key: K, window: Duration, now: UnixMillis) {
        if self.failures.len() >= MAX_KEYS {
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| t.plus(window) > now));
        }
        let q = self.failures.entry(key).or_default();
        q.push_back(now);
        if q.len() > 1000 {
            q.pop_front();
        }
    }

    fn clear(&mut self, key: &K) {
        self.failures.remove(key);
    }
}

/// Failed-login windows for user names and client networks.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    limits: LoginLimits,
    users: Windows<String>,
    addresses: Windows<IpAddr>,
}

/// IPv6 clients are counted by their /64, which one machine usually holds whole.
fn network_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
    }
}

impl LoginLimiter {
    pub(crate) fn new(limits: LoginLimits) -> Self {
        LoginLimiter {
            limits,
            users: Windows::new(),
            addresses: Windows::new(),
        }
    }

    /// `Some(wait)` when an attempt for `user` from `addr` must be refused now.
    pub(crate) fn check(
        &mut self,
        user: &str,
        addr: Option<IpAddr>,
        now: UnixMillis,
    ) -> Option<Duration> {
        let l = self.limits;
        let by_user = self
            .users
            .blocked(&user.to_owned(), l.per_user, l.window, now);
        let by_addr = addr.and_then(|a| {
            self.addresses
                .blocked(&network_of(a), l.per_address, l.window, now)
        });
        by_user.into_iter().chain(by_addr).max()
    }

    pub(crate) fn failed(&mut self, user: &str, addr: Option<IpAddr>, now: UnixMillis) {
        self.users.record(user.to_owned(), self.limits.window, now);
        if let Some(a) = addr {
            self.addresses
                .record(network_of(a), self.limits.window, now);
        }
    }

    /// A successful login forgives the user's failures (not the address's).
    pub(crate) fn succeeded(&mut self, user: &str) {
        self.users.clear(&user.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            per_user: 3,
            per_address: 5,
            window: Duration::from_secs(300),
        })
    }

    #[test]
    fn blocks_a_user_after_the_limit_and_releases_after_the_window() {
        let mut l = limiter();
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        for i in 0..3 {
            assert_eq!(l.check("bob", Some(a), UnixMillis(i * MIN)), None);
            l.failed("bob", Some(a), UnixMillis(i * MIN));
        }
        let wait = l
            .check("bob", Some(a), UnixMillis(3 * MIN))
            .expect("blocked");
        assert_eq!(
            wait,
            Duration::from_secs(120),
            "first failure at 0 expires at 5 min"
        );
        assert_eq!(
            l.check("alice", None, UnixMillis(3 * MIN)),
            None,
            "other users unaffected"
        );
        assert_eq!(l.check("bob", Some(a), UnixMillis(5 * MIN)), None);
    }

    #[test]
    fn blocks_an_address_trying_many_names() {
        let mut l = limiter();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8::ffff".parse().unwrap();
        for i in 0..5 {
            l.failed(&format!("user{i}"), Some(a), UnixMillis(0));
        }
        assert!(l.check("new-name", Some(same_net), UnixMillis(1)).is_some());
        assert_eq!(
            l.check(
                "new-name",
                Some("2001:db9::1".parse().unwrap()),
                UnixMillis(1)
            ),
            None
        );
    }

    #[test]
    fn success_forgives_the_user() {
        let mut l = limiter();
        for _ in 0..3 {
            l.failed("carol", None, UnixMillis(0));
        }
        assert!(l.check("carol", None, UnixMillis(1)).is_some());
        l.succeeded("carol");
        assert_eq!(l.check("carol", None, UnixMillis(1)), None);
    }
}

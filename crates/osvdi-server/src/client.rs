//! The client's address: the connection's peer, or the last untrusted hop of
//! `X-Forwarded-For` when the peer is a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use ipnet::IpNet;

/// The address a request came from, as far as it can be believed.
pub(crate) fn client_addr(parts: &Parts, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // Walk the chain from the nearest hop; the first address not a trusted proxy is the client.
    let hops: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    Some(
        hops.into_iter()
            .rev()
            .find(|a| !is_trusted(a))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, xff: &[&str]) -> Parts {
        let mut req = axum::http::Request::builder();
        for v in xff {
            req = req.header("x-forwarded-for", *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo::<SocketAddr>(
            format!("{peer}:1234").parse().unwrap(),
        ));
        parts
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            client_addr(&parts("192.0.2.7", &["1.2.3.4"]), &trusted),
            ip("192.0.2.7")
        );
        assert_eq!(
            client_addr(&parts("10.0.0.1", &["1.2.3.4"]), &trusted),
            ip("1.2.3.4")
        );
        // A client cannot smuggle an address in front of the proxy's own entry.
        assert_eq!(
            client_addr(
                &parts("10.0.0.1", &["6.6.6.6, 1.2.3.4, 10.0.0.2"]),
                &trusted
            ),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_addr(&parts("10.0.0.1", &[]), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_addr(&parts("10.0.0.1", &["garbage"]), &trusted),
            ip("10.0.0.1")
        );
    }
}

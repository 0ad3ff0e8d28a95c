//! The client's address, for lockout and audit.

use std::net::IpAddr;

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{HeaderMap, request::Parts},
};

use crate::http::AppState;

/// The client's address: the TCP peer, or — only when the peer is one of
/// `server.trusted_proxies` — the nearest untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<crate::server::PeerAddr>>()
            .map(|ConnectInfo(p)| p.0.ip());
        Ok(ClientIp(peer.map(|peer| {
            forwarded_client(
                peer,
                &parts.headers,
                &state.settings().server.trusted_proxies,
            )
        })))
    }
}

/// Walks `X-Forwarded-For` from the right while the hops are trusted proxies; the
/// first untrusted address is the client. A malformed entry ends the walk there.
fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let lb: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9".parse().unwrap(),
        );
        // Untrusted peer: its own address, whatever the header says.
        assert_eq!(forwarded_client(lb, &headers, &[]), lb);
        // Trusted peer: the nearest untrusted hop.
        assert_eq!(
            forwarded_client(lb, &headers, &[lb]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // A spoofed left-most entry does not win over the nearest hop.
        headers.insert("x-forwarded-for", "garbage, 203.0.113.9".parse().unwrap());
        assert_eq!(
            forwarded_client(lb, &headers, &[lb]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }
}

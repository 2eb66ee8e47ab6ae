//! The client's address, for per-address limits.
//!
//! The TCP peer (axum's `ConnectInfo`), unless that peer is one of
//! `http.trusted_proxies`: then the last address in `X-Forwarded-For` that is
//! not itself a trusted proxy. Only the right end of that header is
//! trustworthy — each proxy appends the address it saw — so a client cannot
//! choose its own address by sending the header.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;

/// Where a request comes from, as far as the node can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientAddr, Infallible> {
        // Served without connect info (a router driven directly in a unit
        // test): one address for all, which only makes limits stricter.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Ok(ClientAddr(client_ip(
            peer,
            &parts.headers,
            &state.config.http.trusted_proxies,
        )))
    }
}

/// See the module docs.
fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| same_ip(t, ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Every X-Forwarded-For line, in order, as one comma-separated list.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // Garbage where a proxy should have written an address: stop at
            // the last address we could read.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

fn same_ip(a: &IpAddr, b: &IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let client = ip("203.0.113.9");
        let spoofed = headers(&["198.51.100.1"]);
        // Untrusted peer: the header is the client's own claim, ignored.
        assert_eq!(client_ip(client, &spoofed, &[proxy]), client);
        assert_eq!(client_ip(proxy, &spoofed, &[]), proxy);
        // Trusted proxy: the address it appended.
        assert_eq!(
            client_ip(proxy, &headers(&["198.51.100.1, 203.0.113.9"]), &[proxy]),
            client,
            "the client's own entry on the left is not believed"
        );
        // Two proxies in a chain, the header split over two lines.
        let inner = ip("10.0.0.2");
        assert_eq!(
            client_ip(
                proxy,
                &headers(&["198.51.100.1", "203.0.113.9 , 10.0.0.2"]),
                &[proxy, inner]
            ),
            client
        );
        // No header, or garbage: the proxy itself, or the last good hop.
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
        assert_eq!(
            client_ip(proxy, &headers(&["203.0.113.9, junk"]), &[proxy]),
            proxy
        );
        // IPv4-mapped IPv6 peers match their IPv4 entry.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &headers(&["203.0.113.9"]), &[proxy]),
            client
        );
    }
}

//! The client's address: the connection's peer, unless that peer is a trusted proxy
//! (`IDGATE_TRUSTED_PROXIES`), in which case the forwarding headers it added name the client.
//!
//! Only the part of a header that trusted proxies wrote can be believed: reading the chain
//! right to left, each trusted hop vouches for the address before it, and the first address
//! that is not a trusted proxy is the client. Anything left of it was written by the client
//! itself and is ignored. `Forwarded` (RFC 7239) wins over `X-Forwarded-For` when both are
//! present. An entry that is not an address (`unknown`, an obfuscated name) stops the walk at
//! the proxy that wrote it, so a client cannot hide behind a garbled entry.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&canonical(ip)))
    }

    /// The client's address for a request that arrived from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        for hop in forwarded_chain(headers).iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.trusts(client) {
                        return client;
                    }
                }
                None => return client,
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarded-for chain, leftmost (farthest) first; `None` for an entry that is not an
/// address. Every instance of the header counts, in order.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    let forwarded = values(header::FORWARDED);
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| pair.trim().split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("for")))
                    .and_then(|(_, node)| parse_node(node))
            })
            .collect();
    }
    values(header::HeaderName::from_static("x-forwarded-for"))
        .iter()
        .flat_map(|value| value.split(','))
        .map(parse_node)
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`,
/// optionally quoted.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    node.parse::<IpAddr>().ok().or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip())).or_else(|| {
        let inner = node.strip_prefix('[')?.split(']').next()?;
        inner.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap_or_else(|e| panic!("{n}: {e}"))).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn without_trusted_proxies_the_headers_are_ignored() {
        let forged = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")]);
        assert_eq!(TrustedProxies::default().client_ip(ip("10.0.0.5"), &forged), ip("10.0.0.5"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_even_with_headers() {
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(ip("198.51.100.1"), &forged), ip("198.51.100.1"));
    }

    #[test]
    fn the_rightmost_address_that_is_not_a_trusted_proxy_is_the_client() {
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(ip("10.0.0.2"), &chain), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_wins_and_its_node_forms_are_read() {
        let both = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\""),
        ]);
        assert_eq!(proxies(&["127.0.0.1/32"]).client_ip(ip("127.0.0.1"), &both), ip("2001:db8:cafe::17"));
        let port = headers(&[("forwarded", "for=\"192.0.2.60:8080\"")]);
        assert_eq!(proxies(&["127.0.0.1/32"]).client_ip(ip("127.0.0.1"), &port), ip("192.0.2.60"));
    }

    #[test]
    fn a_garbled_entry_stops_at_the_proxy_that_wrote_it() {
        let garbled = headers(&[("x-forwarded-for", "203.0.113.9, unknown")]);
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(ip("10.0.0.2"), &garbled), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let chain = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(proxies(&["127.0.0.0/8"]).client_ip(ip("::ffff:127.0.0.1"), &chain), ip("203.0.113.9"));
    }
}

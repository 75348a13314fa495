//! Who is calling: the client address (the TCP peer, or what a trusted proxy says) and the
//! `User-Agent`, as the audit log, the rate limits and the connection caps see them.
//!
//! Plain values and one pure rule; nothing here knows the application state. The extractor
//! that fills a [`ClientInfo`] from a request is in [`crate::extract`].

use std::net::IpAddr;

/// Where the client address comes from: the TCP peer, or, when the peer is a trusted reverse
/// proxy and a header is configured, the last address in that header (the one the proxy added).
#[derive(Debug, Clone, Default)]
pub struct ClientIpConfig {
    /// Header carrying the client address (e.g. `X-Forwarded-For`, `X-Real-IP`); none: the peer.
    pub header: Option<axum::http::HeaderName>,
    /// Peers whose header is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ClientIpConfig {
    /// The client address of a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> Option<IpAddr> {
        let (Some(header), Some(peer_ip)) = (&self.header, peer) else { return peer };
        if !self.trusted_proxies.contains(&peer_ip) {
            return peer;
        }
        let forwarded = headers
            .get_all(header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back();
        forwarded.or(peer)
    }
}

/// Who is calling: client address (see [`ClientIpConfig`]) and `User-Agent` (truncated).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client address, if known.
    pub addr: Option<IpAddr>,
    /// `User-Agent`, at most 256 characters.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The address as text, for storage.
    pub fn addr_string(&self) -> Option<String> {
        self.addr.map(|ip| ip.to_string())
    }
}

impl std::fmt::Display for ClientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_is_believed_only_from_a_trusted_proxy() {
        let config = ClientIpConfig {
            header: Some(axum::http::HeaderName::from_static("x-forwarded-for")),
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        };
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let proxy = Some("10.0.0.1".parse().unwrap());
        let stranger = Some("9.9.9.9".parse().unwrap());
        assert_eq!(config.client_ip(proxy, &headers), Some("2.2.2.2".parse().unwrap()));
        assert_eq!(config.client_ip(stranger, &headers), stranger);
        assert_eq!(config.client_ip(proxy, &axum::http::HeaderMap::new()), proxy);
        assert_eq!(ClientIpConfig::default().client_ip(stranger, &headers), stranger);
    }
}

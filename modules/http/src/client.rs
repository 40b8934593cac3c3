//! Who the client is when the host sits behind proxies it trusts. The peer address of a
//! connection from a trusted proxy is the proxy's; the client is then the nearest address
//! in `X-Forwarded-For` that is not a trusted proxy. Handlers that act per client
//! (rate limits, access rules) and the reverse proxy share this one rule.

use std::net::IpAddr;

use http::HeaderMap;

/// `trusted_proxies` of a handler's config, parsed: addresses and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `::1` or `192.168.1.7` entries; the error names the bad one.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!(
                            "invalid entry `{}` in trusted_proxies: give an IP address or a network such as `10.0.0.0/8`",
                            crate::access_log::visible(text)
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that came from `peer`: `peer` itself unless it is a trusted
    /// proxy; then the right-most `X-Forwarded-For` entry that is not a trusted proxy (each
    /// trusted proxy appends the address it saw, so entries left of the first untrusted one
    /// are the client's own claims and are not believed). A garbled entry ends the walk at
    /// the last address known good.
    pub fn client_ip(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for entry in forwarded.iter().rev() {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.contains(client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4,
/// so `10.0.0.0/8` matches them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_address() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Not from a proxy: the header is the client's claim and is ignored.
        assert_eq!(
            trusted.client_ip(&headers(&["1.2.3.4"]), ip("9.9.9.9")),
            ip("9.9.9.9")
        );
        // From a proxy: the right-most untrusted entry; spoofed entries left of it are ignored.
        let chain = headers(&["6.6.6.6, 1.2.3.4", "10.0.0.2"]);
        assert_eq!(trusted.client_ip(&chain, ip("10.0.0.1")), ip("1.2.3.4"));
        // Only proxies in the chain: the left-most of them.
        assert_eq!(
            trusted.client_ip(&headers(&["10.0.0.3"]), ip("::1")),
            ip("10.0.0.3")
        );
        // No header: the proxy itself.
        assert_eq!(
            trusted.client_ip(&HeaderMap::new(), ip("10.0.0.1")),
            ip("10.0.0.1")
        );
        // Garbage stops the walk at the last good address.
        assert_eq!(
            trusted.client_ip(&headers(&["1.2.3.4, nonsense"]), ip("10.0.0.1")),
            ip("10.0.0.1")
        );
        // A mapped IPv4 peer is matched as IPv4.
        assert_eq!(
            trusted.client_ip(&headers(&["5.5.5.5"]), ip("::ffff:10.1.1.1")),
            ip("5.5.5.5")
        );
        let bad = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(bad.contains("`10.0.0.0/33`"), "{bad}");
    }
}

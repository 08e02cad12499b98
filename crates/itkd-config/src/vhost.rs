//! `<VirtualHost>` addresses and the table that picks a virtual host for a connection's
//! local address and a request's Host, as httpd's `vhost.c` does: addresses first (a
//! specific IP before `*`), then names (ServerName, then ServerAlias wildcards); the first
//! virtual host of an address is its default.

use std::fmt;
use std::net::IpAddr;

use crate::model::Server;

/// One address of a `<VirtualHost>` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VhostAddr {
    /// `None`: `*` or `_default_`.
    pub ip: Option<IpAddr>,
    /// `None`: any port (`*:*`, or no port given).
    pub port: Option<u16>,
}

impl fmt::Display for VhostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            None => f.write_str("*")?,
            Some(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            None => f.write_str(":*"),
            Some(p) => write!(f, ":{p}"),
        }
    }
}

impl VhostAddr {
    /// Parses `*`, `*:80`, `_default_:80`, `1.2.3.4:80`, `[::1]:80`, `host:80` (a host
    /// name is looked up with `resolve`, once, at load; httpd does the same).
    pub fn parse(
        text: &str,
        resolve: &dyn Fn(&str) -> Vec<IpAddr>,
    ) -> Result<Vec<VhostAddr>, String> {
        let (host, port) = split_host_port(text)?;
        let port = match port {
            None | Some("*") => None,
            Some(p) => Some(parse_port(p).ok_or_else(|| {
                format!(
                    "The port number \"{p}\" is outside the appropriate range (i.e., 1..65535)."
                )
            })?),
        };
        if host == "*" || host.eq_ignore_ascii_case("_default_") {
            return Ok(vec![VhostAddr { ip: None, port }]);
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![VhostAddr { ip: Some(ip), port }]);
        }
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(format!("Could not resolve host name {host} -- ignoring!"));
        }
        let ips = resolve(host);
        if ips.is_empty() {
            return Err(format!("Could not resolve host name {host} -- ignoring!"));
        }
        Ok(ips
            .into_iter()
            .map(|ip| VhostAddr { ip: Some(ip), port })
            .collect())
    }

    fn matches(&self, ip: IpAddr, port: u16) -> bool {
        self.ip.is_none_or(|a| a == ip) && self.port.is_none_or(|p| p == port)
    }
}

/// `port` of 1..=65535.
pub fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

/// Splits `host:port`, `[v6]:port`, `host`, `[v6]`; a bare IPv6 address has no port.
pub fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("Invalid address or port in \"{text}\""))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("Invalid address or port in \"{text}\"")),
            },
        };
    }
    if text.matches(':').count() > 1 {
        return Ok((text, None));
    }
    Ok(match text.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    })
}

/// The virtual hosts of one address, in configuration order; the first is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrGroup {
    pub addr: VhostAddr,
    /// Indexes into `ServerConfig::vhosts`.
    pub vhosts: Vec<usize>,
}

/// Which server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Main,
    Vhost(usize),
}

/// All addresses with their virtual hosts, specific IPs first, in httpd's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VhostTable {
    pub groups: Vec<AddrGroup>,
}

impl VhostTable {
    pub fn build(vhosts: &[Server]) -> VhostTable {
        let mut groups: Vec<AddrGroup> = Vec::new();
        for (index, vhost) in vhosts.iter().enumerate() {
            for addr in &vhost.addrs {
                match groups.iter_mut().find(|g| g.addr == *addr) {
                    Some(g) if !g.vhosts.contains(&index) => g.vhosts.push(index),
                    Some(_) => {}
                    None => groups.push(AddrGroup {
                        addr: *addr,
                        vhosts: vec![index],
                    }),
                }
            }
        }
        // httpd's order (what `-S` prints): specific addresses by their bucket in
        // vhost.c's 256-entry hash, then wildcards, each pushed on the front of a list
        // while walking the vhosts backwards.
        let mut wildcard_order: Vec<VhostAddr> = Vec::new();
        for vhost in vhosts.iter().rev() {
            for addr in vhost.addrs.iter().filter(|a| a.ip.is_none()) {
                if !wildcard_order.contains(addr) {
                    wildcard_order.insert(0, *addr);
                }
            }
        }
        groups.sort_by_key(|g| match g.addr.ip {
            Some(ip) => (0, ip_bucket(ip)),
            None => (
                1,
                wildcard_order
                    .iter()
                    .position(|a| *a == g.addr)
                    .unwrap_or(usize::MAX),
            ),
        });
        VhostTable { groups }
    }

    /// The server for a connection to `ip:port` asking for `host` (a Host header or SNI
    /// name, with or without port); `None` for HTTP/1.0 requests without Host.
    pub fn route(&self, vhosts: &[Server], ip: IpAddr, port: u16, host: Option<&str>) -> Route {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let group = self
            .groups
            .iter()
            .find(|g| g.addr.ip.is_some() && g.addr.matches(ip, port))
            .or_else(|| {
                self.groups
                    .iter()
                    .find(|g| g.addr.ip.is_none() && g.addr.matches(ip, port))
            });
        let Some(group) = group else {
            return Route::Main;
        };
        let name = host.map(normalize_host);
        if let Some(name) = name.as_deref() {
            for &i in &group.vhosts {
                if vhosts[i].server_name.as_deref() == Some(name) {
                    return Route::Vhost(i);
                }
            }
            for &i in &group.vhosts {
                if vhosts[i].aliases.iter().any(|a| wildcard_match(a, name)) {
                    return Route::Vhost(i);
                }
            }
        }
        Route::Vhost(group.vhosts[0])
    }
}

/// httpd vhost.c `hash_inaddr`: the last four address bytes folded into 0..=255.
fn ip_bucket(ip: IpAddr) -> usize {
    let last4 = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    usize::from(last4[0] ^ last4[1] ^ last4[2] ^ last4[3])
}

/// A Host header's name: lower case, without port and trailing dot.
pub fn normalize_host(host: &str) -> String {
    let name = match split_host_port(host) {
        Ok((name, _)) => name,
        Err(_) => host,
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `*` and `?` wildcards, as httpd's `ap_strcasecmp_match` for ServerAlias.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dns(_: &str) -> Vec<IpAddr> {
        Vec::new()
    }

    #[test]
    fn addresses() {
        let table = [
            ("*:80", "*:80"),
            ("*", "*:*"),
            ("_default_:443", "*:443"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::1]:8081", "[::1]:8081"),
            ("[::1]", "[::1]:*"),
            ("::1", "[::1]:*"),
            ("10.0.0.1:*", "10.0.0.1:*"),
        ];
        for (text, shown) in table {
            let addrs = VhostAddr::parse(text, &no_dns).unwrap();
            assert_eq!(addrs[0].to_string(), shown, "{text}");
        }
        for bad in [
            "*:0",
            "*:99999",
            "*:http",
            "[::1",
            "no.such.host:80",
            "a b:80",
        ] {
            assert!(VhostAddr::parse(bad, &no_dns).is_err(), "{bad}");
        }
        let resolved =
            VhostAddr::parse("localhost:80", &|_| vec!["127.0.0.1".parse().unwrap()]).unwrap();
        assert_eq!(resolved[0].to_string(), "127.0.0.1:80");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.a.test", "www.a.test"));
        assert!(!wildcard_match("*.a.test", "a.test"));
        assert!(wildcard_match("w?w.A.test", "wxw.a.TEST"));
        assert!(wildcard_match("*", "anything"));
        assert!(!wildcard_match("a*b", "ac"));
    }

    #[test]
    fn host_names_normalize() {
        assert_eq!(normalize_host("A.Test:8080"), "a.test");
        assert_eq!(normalize_host("a.test."), "a.test");
        assert_eq!(normalize_host("[::1]:80"), "::1");
    }
}

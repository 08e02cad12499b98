//! `Require` and its containers (mod_authz_core, mod_authz_host, mod_authz_user,
//! mod_authz_groupfile): parsed and checked here, evaluated per request elsewhere.

use std::net::IpAddr;

/// An authorization rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Require {
    /// One `Require [not] entity …` line.
    Entity { negate: bool, entity: Entity },
    /// `<RequireAll>`: every rule holds.
    All(Vec<Require>),
    /// `<RequireAny>`, and several `Require` lines in one section: one rule holds.
    Any(Vec<Require>),
    /// `<RequireNone>`: no rule holds.
    None(Vec<Require>),
    /// `<Limit methods>` / `<LimitExcept methods>` around rules.
    Methods {
        methods: Vec<String>,
        except: bool,
        rule: Box<Require>,
    },
}

/// What a `Require` line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// `all granted` (true) or `all denied` (false).
    All(bool),
    Ip(Vec<IpNet>),
    /// `local`: loopback clients, or a client address equal to the server's.
    Local,
    ValidUser,
    User(Vec<String>),
    Group(Vec<String>),
    Env(Vec<String>),
    Method(Vec<String>),
}

/// An address with a prefix length: `10.1`, `10.1.0.0/16`, `10.1.0.0/255.255.0.0`, `::1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr_part, mask) = match text.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (text, None),
        };
        let (addr, implied) = match addr_part.parse::<IpAddr>() {
            Ok(addr) => (addr, if addr.is_ipv4() { 32 } else { 128 }),
            // mod_authz_host: a partial IPv4 address `10.1` means `10.1.0.0/16`.
            Err(_) if mask.is_none() => partial_ipv4(addr_part)?,
            Err(_) => return None,
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match mask {
            None => implied,
            Some(m) => match m.parse::<u8>() {
                Ok(p) if p <= max => p,
                Ok(_) => return None,
                Err(_) => netmask_prefix(m.parse::<IpAddr>().ok()?, addr.is_ipv4())?,
            },
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| prefix_eq(&net.octets(), &ip.octets(), self.prefix)),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

fn partial_ipv4(text: &str) -> Option<(IpAddr, u8)> {
    let text = text.strip_suffix('.').unwrap_or(text);
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    let prefix = u8::try_from(parts.len() * 8).ok()?;
    Some((IpAddr::from(octets), prefix))
}

fn netmask_prefix(mask: IpAddr, v4: bool) -> Option<u8> {
    let bits: u128 = match (mask, v4) {
        (IpAddr::V4(m), true) => u128::from(u32::from(m)) << 96,
        (IpAddr::V6(m), false) => u128::from(m),
        _ => return None,
    };
    let ones = bits.leading_ones();
    // A netmask is ones then zeros.
    (bits.checked_shl(ones).unwrap_or(0) == 0).then(|| u8::try_from(ones).unwrap_or(128))
}

impl Require {
    /// Parses one `Require` line's arguments.
    pub fn parse_line(args: &[String]) -> Result<Require, String> {
        let (negate, rest) = match args.first() {
            Some(n) if n.eq_ignore_ascii_case("not") => (true, &args[1..]),
            _ => (false, args),
        };
        let Some((provider, values)) = rest.split_first() else {
            return Err("Require takes at least one argument".to_owned());
        };
        let values: Vec<String> = values.to_vec();
        let need_values = |what: &str| {
            if values.is_empty() {
                Err(format!("Require {what} needs at least one argument"))
            } else {
                Ok(())
            }
        };
        let entity = match provider.to_ascii_lowercase().as_str() {
            "all" => match values.as_slice() {
                [v] if v.eq_ignore_ascii_case("granted") => Entity::All(true),
                [v] if v.eq_ignore_ascii_case("denied") => Entity::All(false),
                _ => return Err("'Require all' accepts only 'granted' or 'denied'".to_owned()),
            },
            "ip" => {
                need_values("ip")?;
                let nets = values
                    .iter()
                    .map(|v| {
                        IpNet::parse(v)
                            .ok_or_else(|| format!("ip address '{v}' appears to be invalid"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Entity::Ip(nets)
            }
            "local" if values.is_empty() => Entity::Local,
            "local" => return Err("'Require local' does not take an argument".to_owned()),
            "valid-user" => Entity::ValidUser,
            "user" => {
                need_values("user")?;
                Entity::User(values)
            }
            "group" => {
                need_values("group")?;
                Entity::Group(values)
            }
            "env" => {
                need_values("env")?;
                Entity::Env(values)
            }
            "method" => {
                need_values("method")?;
                Entity::Method(values)
            }
            other => return Err(format!("Unknown Authz provider: {other}")),
        };
        if negate && matches!(entity, Entity::All(_)) {
            return Err("'Require not all' is not allowed: use 'Require all denied'".to_owned());
        }
        Ok(Require::Entity { negate, entity })
    }

    /// A negated rule decides nothing on its own; httpd refuses it where only it could
    /// grant access (a `<RequireAny>`, explicit or implied by several `Require` lines).
    pub fn is_negated(&self) -> bool {
        matches!(self, Require::Entity { negate: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn ip_nets() {
        let table = [
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("10.1", "10.1.200.7", true),
            ("10.1.", "10.2.0.1", false),
            ("10.1.0.0/16", "10.1.9.9", true),
            ("10.1.0.0/255.255.0.0", "10.1.9.9", true),
            ("10.1.0.0/255.255.0.0", "10.2.9.9", false),
            ("192.168.1.128/25", "192.168.1.200", true),
            ("192.168.1.128/25", "192.168.1.100", false),
            ("::1", "::1", true),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("127.0.0.1", "::ffff:127.0.0.1", true),
        ];
        for (net, ip, want) in table {
            let n = IpNet::parse(net).unwrap_or_else(|| panic!("{net} should parse"));
            assert_eq!(n.contains(ip.parse().unwrap()), want, "{net} contains {ip}");
        }
        for bad in [
            "300.1.1.1",
            "10.1.0.0/33",
            "10.1.0.0/255.0.255.0",
            "a.b",
            "",
            "1.2.3.4.5",
            "::1/129",
        ] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn require_lines() {
        assert_eq!(
            Require::parse_line(&args("all granted")),
            Ok(Require::Entity {
                negate: false,
                entity: Entity::All(true)
            })
        );
        assert!(matches!(
            Require::parse_line(&args("not ip 10.0.0.0/8")),
            Ok(Require::Entity {
                negate: true,
                entity: Entity::Ip(_)
            })
        ));
        for (line, err) in [
            (
                "all maybe",
                "'Require all' accepts only 'granted' or 'denied'",
            ),
            (
                "ip 300.1.1.1",
                "ip address '300.1.1.1' appears to be invalid",
            ),
            ("frob x", "Unknown Authz provider: frob"),
            ("", "Require takes at least one argument"),
            (
                "not all granted",
                "'Require not all' is not allowed: use 'Require all denied'",
            ),
        ] {
            assert_eq!(
                Require::parse_line(&args(line)),
                Err(err.to_owned()),
                "{line}"
            );
        }
    }
}

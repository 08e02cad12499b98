//! mod_access_compat's `Order`, `Allow from`, `Deny from` and `Satisfy`: parsed and
//! checked here, evaluated per request by `itkd-http`'s `authz`.
//!
//! httpd 2.4 keeps these per method (`<Limit>` narrows them), and gives the module no
//! merge function: the innermost section or `.htaccess` that uses any of the four
//! replaces the outer settings as a whole ([`crate::DirConfig::merge`] does the same).
//! Host names are not resolved here: a rule keeps the name, the request looks the client
//! up.

/// `Order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `deny,allow` (httpd's default): denied if a `Deny` matches, unless an `Allow` does.
    DenyAllow,
    /// `allow,deny`: allowed only if an `Allow` matches and no `Deny` does.
    AllowDeny,
    /// `mutual-failure`: as `allow,deny`.
    MutualFailure,
}

impl Order {
    pub fn parse(arg: &str) -> Result<Order, String> {
        match arg.to_ascii_lowercase().as_str() {
            "deny,allow" => Ok(Order::DenyAllow),
            "allow,deny" => Ok(Order::AllowDeny),
            "mutual-failure" => Ok(Order::MutualFailure),
            _ => Err("unknown order".to_owned()),
        }
    }
}

/// `Satisfy`: how Order/Allow/Deny and `Require` combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Satisfy {
    /// Both must let the request through (httpd's behaviour when `Satisfy` is not given).
    All,
    /// Either is enough: a client Allow/Deny lets in skips `Require`.
    Any,
}

impl Satisfy {
    pub fn parse(arg: &str) -> Result<Satisfy, String> {
        match arg.to_ascii_lowercase().as_str() {
            "all" => Ok(Satisfy::All),
            "any" => Ok(Satisfy::Any),
            _ => Err("Satisfy either 'any' or 'all'.".to_owned()),
        }
    }
}

/// An IP subnet as APR's `apr_ipsubnet_create` makes it: an address and a mask, which
/// for IPv4 need not be contiguous (`10.0.0.0/255.0.255.0` is accepted, as by httpd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subnet {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Subnet {
    /// `apr_ipsubnet_test`: an IPv4 subnet also matches an IPv4-mapped IPv6 client.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (*self, ip) {
            (Subnet::V4 { net, mask }, IpAddr::V4(ip)) => u32::from(ip) & mask == net,
            (Subnet::V4 { net, mask }, IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| u32::from(ip) & mask == net),
            (Subnet::V6 { net, mask }, IpAddr::V6(ip)) => {
                ip.to_ipv4_mapped().is_none() && u128::from(ip) & mask == net
            }
            (Subnet::V6 { .. }, IpAddr::V4(_)) => false,
        }
    }

    /// `apr_ipsubnet_create(ip, mask)`. `Err(None)`: the text does not look like an
    /// address at all (APR_EINVAL: the caller takes it for a host name); `Err(Some(m))`:
    /// it does, and is wrong (httpd's message).
    fn parse(ip: &str, mask: Option<&str>) -> Result<Subnet, Option<&'static str>> {
        const BAD_IP: &str = "The specified IP address is invalid.";
        const BAD_MASK: &str = "The specified network mask is invalid.";
        if !looks_like_ip(ip) {
            return Err(None);
        }
        let (mut subnet, max_bits) = match ip.parse::<std::net::IpAddr>() {
            // APR refuses `::ffff:a.b.c.d`: write IPv4 addresses as IPv4.
            Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                return Err(Some(BAD_IP))
            }
            Ok(std::net::IpAddr::V6(v6)) => (
                Subnet::V6 {
                    net: u128::from(v6),
                    mask: u128::MAX,
                },
                128,
            ),
            Ok(std::net::IpAddr::V4(v4)) => (
                Subnet::V4 {
                    net: u32::from(v4),
                    mask: u32::MAX,
                },
                32,
            ),
            // The legacy network form `10.1` / `10.1.` is allowed only without a mask.
            Err(_) if mask.is_none() => (partial_ipv4(ip).ok_or(Some(BAD_IP))?, 32),
            Err(_) => return Err(Some(BAD_IP)),
        };
        if let Some(mask) = mask {
            let bits = mask
                .parse::<u32>()
                .ok()
                .filter(|b| (1..=max_bits).contains(b));
            subnet = match (subnet, bits) {
                (Subnet::V4 { net, .. }, Some(bits)) => Subnet::V4 {
                    net,
                    mask: u32::MAX << (32 - bits),
                },
                (Subnet::V6 { net, .. }, Some(bits)) => Subnet::V6 {
                    net,
                    mask: u128::MAX << (128 - bits),
                },
                (Subnet::V4 { net, .. }, None) => match mask.parse::<std::net::Ipv4Addr>() {
                    Ok(m) => Subnet::V4 {
                        net,
                        mask: u32::from(m),
                    },
                    Err(_) => return Err(Some(BAD_MASK)),
                },
                (Subnet::V6 { .. }, None) => return Err(Some(BAD_MASK)),
            };
        }
        // apr's fix_subnet: the address is kept masked.
        Ok(match subnet {
            Subnet::V4 { net, mask } => Subnet::V4 {
                net: net & mask,
                mask,
            },
            Subnet::V6 { net, mask } => Subnet::V6 {
                net: net & mask,
                mask,
            },
        })
    }
}

/// APR's `looks_like_ip`: anything with a colon, or only digits and dots.
fn looks_like_ip(text: &str) -> bool {
    !text.is_empty()
        && (text.contains(':') || text.bytes().all(|b| b == b'.' || b.is_ascii_digit()))
}

/// APR's `parse_network`: `a`, `a.b`, `a.b.c` (a trailing dot allowed) cover the addresses
/// that begin so.
fn partial_ipv4(text: &str) -> Option<Subnet> {
    let mut net = 0u32;
    let mut mask = 0u32;
    let mut shift = 24i32;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || shift < 0 {
            return None;
        }
        let octet: u32 = rest[..digits].parse().ok().filter(|o| *o <= 255)?;
        rest = &rest[digits..];
        rest = match rest.strip_prefix('.') {
            Some(after) => after,
            None if rest.is_empty() => rest,
            None => return None,
        };
        net |= octet << shift;
        mask |= 0xff << shift;
        shift -= 8;
    }
    Some(Subnet::V4 { net, mask })
}

/// One argument of `Allow from` / `Deny from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    All,
    /// `env=VAR`: the request variable is set.
    Env(String),
    /// `env=!VAR`: it is not.
    NotEnv(String),
    Ip(Subnet),
    /// A host name or domain (`example.com`, `.example.com`), matched against the client's
    /// double-reverse confirmed name.
    Name(String),
}

impl HostRule {
    /// mod_access_compat's `allow_cmd` for one argument.
    pub fn parse(text: &str) -> Result<HostRule, String> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("env=!") {
            return Ok(HostRule::NotEnv(text[5..].to_owned()));
        }
        if lower.starts_with("env=") {
            return Ok(HostRule::Env(text[4..].to_owned()));
        }
        if lower == "all" {
            return Ok(HostRule::All);
        }
        match text.split_once('/') {
            Some((ip, mask)) => match Subnet::parse(ip, Some(mask)) {
                Ok(s) => Ok(HostRule::Ip(s)),
                Err(None) => Err("An IP address was expected".to_owned()),
                Err(Some(m)) => Err(m.to_owned()),
            },
            None => match Subnet::parse(text, None) {
                Ok(s) => Ok(HostRule::Ip(s)),
                Err(None) => Ok(HostRule::Name(text.to_owned())),
                Err(Some(m)) => Err(m.to_owned()),
            },
        }
    }
}

/// mod_access_compat's `in_domain`: `name` is `domain` or within it, matched on whole
/// labels (`Allow from example.com` does not let `badexample.com` in), case-insensitively.
pub fn in_domain(domain: &str, name: &str) -> bool {
    let (d, n) = (domain.as_bytes(), name.as_bytes());
    if n.len() < d.len() || !n[n.len() - d.len()..].eq_ignore_ascii_case(d) {
        return false;
    }
    n.len() == d.len() || d.first() == Some(&b'.') || n[n.len() - d.len() - 1] == b'.'
}

/// The methods a setting applies to: `<Limit>` / `<LimitExcept>` around it, or all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Methods {
    /// Upper case; `None`: every method (no `<Limit>`).
    pub listed: Option<Vec<String>>,
    /// `<LimitExcept>`: every method but those listed.
    pub except: bool,
}

impl Methods {
    pub fn covers(&self, method: &str) -> bool {
        let Some(listed) = &self.listed else {
            return true;
        };
        // httpd numbers HEAD as GET: `<Limit GET>` covers HEAD too.
        let number = |m: &str| {
            if m.eq_ignore_ascii_case("HEAD") {
                "GET".to_owned()
            } else {
                m.to_ascii_uppercase()
            }
        };
        let wanted = number(method);
        listed.iter().any(|m| number(m) == wanted) != self.except
    }
}

/// A setting and the methods it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited<T> {
    pub value: T,
    pub methods: Methods,
}

/// What one section (or `.htaccess`) says with mod_access_compat's directives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessCompat {
    /// `Order` lines in order; the last one covering a method decides for it.
    pub order: Vec<Limited<Order>>,
    pub allow: Vec<Limited<HostRule>>,
    pub deny: Vec<Limited<HostRule>>,
    /// `Satisfy` lines in order; the last one covering a method decides for it.
    pub satisfy: Vec<Limited<Satisfy>>,
}

impl AccessCompat {
    /// The `Order` for `method`: `deny,allow` unless a line says otherwise.
    pub fn order_for(&self, method: &str) -> Order {
        self.order
            .iter()
            .rev()
            .find(|o| o.methods.covers(method))
            .map_or(Order::DenyAllow, |o| o.value)
    }

    /// The `Satisfy` for `method`, `None` when no line covers it (httpd's SATISFY_NOSPEC,
    /// which acts as `All`).
    pub fn satisfy_for(&self, method: &str) -> Option<Satisfy> {
        self.satisfy
            .iter()
            .rev()
            .find(|s| s.methods.covers(method))
            .map(|s| s.value)
    }

    /// This section's lines as if written inside `<Limit methods>` (`<LimitExcept>`):
    /// lines already inside one keep theirs.
    pub fn limited_to(mut self, methods: &Methods) -> AccessCompat {
        fn narrow<T>(items: &mut [Limited<T>], methods: &Methods) {
            for item in items {
                if item.methods.listed.is_none() {
                    item.methods = methods.clone();
                }
            }
        }
        narrow(&mut self.order, methods);
        narrow(&mut self.allow, methods);
        narrow(&mut self.deny, methods);
        narrow(&mut self.satisfy, methods);
        self
    }

    /// `other`'s lines after this one's (two parts of one section).
    pub fn extend(&mut self, other: AccessCompat) {
        self.order.extend(other.order);
        self.allow.extend(other.allow);
        self.deny.extend(other.deny);
        self.satisfy.extend(other.satisfy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules_parse_as_httpd() {
        let v4 = |net: [u8; 4], mask: [u8; 4]| {
            Ok(HostRule::Ip(Subnet::V4 {
                net: u32::from_be_bytes(net),
                mask: u32::from_be_bytes(mask),
            }))
        };
        let table: &[(&str, Result<HostRule, String>)] = &[
            ("all", Ok(HostRule::All)),
            ("ALL", Ok(HostRule::All)),
            ("env=FOO", Ok(HostRule::Env("FOO".into()))),
            ("Env=!FOO", Ok(HostRule::NotEnv("FOO".into()))),
            ("env=", Ok(HostRule::Env(String::new()))),
            ("10.1.2.3", v4([10, 1, 2, 3], [255; 4])),
            ("10.1", v4([10, 1, 0, 0], [255, 255, 0, 0])),
            ("10.1.", v4([10, 1, 0, 0], [255, 255, 0, 0])),
            ("10", v4([10, 0, 0, 0], [255, 0, 0, 0])),
            ("10.1.2.3.", v4([10, 1, 2, 3], [255; 4])),
            ("10.1.2.3/16", v4([10, 1, 0, 0], [255, 255, 0, 0])),
            ("10.1.0.0/255.255.0.0", v4([10, 1, 0, 0], [255, 255, 0, 0])),
            ("10.1.0.0/255.0.255.0", v4([10, 0, 0, 0], [255, 0, 255, 0])),
            (
                "2001:db8::/32",
                Ok(HostRule::Ip(Subnet::V6 {
                    net: 0x2001_0db8 << 96,
                    mask: u128::MAX << 96,
                })),
            ),
            ("localhost", Ok(HostRule::Name("localhost".into()))),
            (".example.com", Ok(HostRule::Name(".example.com".into()))),
            (
                "300.1.1.1",
                Err("The specified IP address is invalid.".into()),
            ),
            (
                "1.2.3.4.5",
                Err("The specified IP address is invalid.".into()),
            ),
            ("10..1", Err("The specified IP address is invalid.".into())),
            (
                "::ffff:1.2.3.4",
                Err("The specified IP address is invalid.".into()),
            ),
            (
                "10.1/16",
                Err("The specified IP address is invalid.".into()),
            ),
            (
                "1.2.3.4/33",
                Err("The specified network mask is invalid.".into()),
            ),
            (
                "1.2.3.4/0",
                Err("The specified network mask is invalid.".into()),
            ),
            (
                "2001:db8::/129",
                Err("The specified network mask is invalid.".into()),
            ),
            (
                "2001:db8::/ffff::",
                Err("The specified network mask is invalid.".into()),
            ),
            ("foo/24", Err("An IP address was expected".into())),
        ];
        for (text, want) in table {
            assert_eq!(&HostRule::parse(text), want, "{text}");
        }
    }

    #[test]
    fn subnets_match_like_apr() {
        let table = [
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("10.1", "10.1.200.7", true),
            ("10.1", "10.2.0.1", false),
            ("192.168.1.128/25", "192.168.1.200", true),
            ("192.168.1.128/25", "192.168.1.100", false),
            ("10.0.0.0/255.0.255.0", "10.9.0.9", true),
            ("10.0.0.0/255.0.255.0", "10.9.1.9", false),
            ("127.0.0.1", "::ffff:127.0.0.1", true),
            ("::1", "::1", true),
            ("::1", "127.0.0.1", false),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
        ];
        for (rule, ip, want) in table {
            let Ok(HostRule::Ip(subnet)) = HostRule::parse(rule) else {
                panic!("{rule} is a subnet");
            };
            assert_eq!(subnet.contains(ip.parse().unwrap()), want, "{rule} {ip}");
        }
    }

    #[test]
    fn domains_match_whole_labels() {
        for (domain, name, want) in [
            ("example.com", "example.com", true),
            ("example.com", "www.example.com", true),
            ("example.com", "badexample.com", false),
            (".example.com", "www.example.com", true),
            ("Example.COM", "www.example.com", true),
            ("www.example.com", "example.com", false),
            ("localhost", "localhost", true),
        ] {
            assert_eq!(in_domain(domain, name), want, "{domain} {name}");
        }
    }

    #[test]
    fn the_last_line_covering_a_method_decides() {
        fn limited<T>(value: T, listed: Option<&[&str]>, except: bool) -> Limited<T> {
            Limited {
                value,
                methods: Methods {
                    listed: listed.map(|l| l.iter().map(|m| m.to_string()).collect()),
                    except,
                },
            }
        }
        let access = AccessCompat {
            order: vec![
                limited(Order::AllowDeny, None, false),
                limited(Order::MutualFailure, Some(&["POST"]), false),
            ],
            satisfy: vec![limited(Satisfy::Any, Some(&["GET"]), true)],
            ..Default::default()
        };
        for (method, order, satisfy) in [
            ("GET", Order::AllowDeny, None),
            ("HEAD", Order::AllowDeny, None),
            ("POST", Order::MutualFailure, Some(Satisfy::Any)),
            ("PUT", Order::AllowDeny, Some(Satisfy::Any)),
        ] {
            assert_eq!(access.order_for(method), order, "{method}");
            assert_eq!(access.satisfy_for(method), satisfy, "{method}");
        }
        assert_eq!(AccessCompat::default().order_for("GET"), Order::DenyAllow);
    }

    #[test]
    fn order_and_satisfy_words() {
        assert_eq!(Order::parse("Deny,Allow"), Ok(Order::DenyAllow));
        assert_eq!(Order::parse("allow,deny"), Ok(Order::AllowDeny));
        assert_eq!(Order::parse("Mutual-Failure"), Ok(Order::MutualFailure));
        assert_eq!(Order::parse("allow"), Err("unknown order".to_owned()));
        assert_eq!(Satisfy::parse("ANY"), Ok(Satisfy::Any));
        assert_eq!(
            Satisfy::parse("some"),
            Err("Satisfy either 'any' or 'all'.".to_owned())
        );
    }
}

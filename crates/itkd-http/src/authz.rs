//! Access control as httpd 2.4 runs it: mod_access_compat's `Order`/`Allow`/`Deny`
//! (the access_checker hook), mod_authz_core's `Require` (`all`, `ip`, `local`, `method`,
//! `env`, users and groups once Basic authentication has run), and `Satisfy` between them
//! (request.c's `ap_process_request_internal`). Authentication itself is `auth`'s job; the
//! log lines and pages are the worker's.

use std::cell::OnceCell;
use std::net::{IpAddr, ToSocketAddrs};

use itkd_config::access::{self, AccessCompat, HostRule, Limited, Order, Satisfy};
use itkd_config::require::{Entity, Require};
use itkd_config::DirConfig;

/// mod_authz_core's three-valued result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Granted,
    Denied,
    Neutral,
}

/// What a rule may look at.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub ip: IpAddr,
    pub local_ip: IpAddr,
    pub method: &'a str,
    pub env: &'a [(String, String)],
    /// The user Basic authentication established, if any, and its AuthGroupFile groups.
    pub user: Option<&'a str>,
    pub groups: &'a [String],
    /// Asked for the client's name only when an `Allow from`/`Deny from` names a host.
    pub host_names: &'a dyn HostNames,
}

/// Where `Allow from host` / `Deny from host` get the client's name.
pub trait HostNames: std::fmt::Debug {
    /// The client's name (lower case) if its reverse lookup gives one whose forward lookup
    /// gives the client's address back (httpd's `REMOTE_DOUBLE_REV`); `None` otherwise.
    fn double_reverse(&self, ip: IpAddr) -> Option<String>;
}

/// The system's resolver (nsswitch: `/etc/hosts`, then DNS), as httpd asks it: blocking,
/// once per request that needs it, whatever `HostnameLookups` says.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resolver;

impl HostNames for Resolver {
    fn double_reverse(&self, ip: IpAddr) -> Option<String> {
        // apr_getnameinfo: an IPv4-mapped client is looked up as IPv4.
        let ip = canonical(ip);
        let name = dns_lookup::lookup_addr(&ip).ok()?.to_ascii_lowercase();
        let confirmed = (name.as_str(), 0)
            .to_socket_addrs()
            .ok()?
            .any(|a| canonical(a.ip()) == ip);
        confirmed.then_some(name)
    }
}

/// An IPv4-mapped IPv6 address as IPv4 (apr_sockaddr_equal holds them equal).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The outcome of access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// `Require` refused (mod_authz_core's AH01630).
    Denied,
    /// `Order`/`Allow`/`Deny` refused and `Satisfy` is `All`: `Require` was not asked.
    HostDenied,
    /// Not granted, and a rule names users: authenticating might change that (401).
    NeedsUser,
}

/// [`access`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub access: Access,
    /// `Order`/`Allow`/`Deny` refused the client. httpd logs that (AH01797, module
    /// access_compat) whatever follows, also when `Satisfy Any` then lets `Require` grant.
    pub host_denied: bool,
}

/// httpd 2.4's access decision for a request, before and after authentication.
///
/// request.c: mod_access_compat's check runs first. Under `Satisfy All` (or none given)
/// its refusal is final, else `Require` decides; under `Satisfy Any` its consent is
/// final (no `Require`, no authentication), else `Require` decides. Without any
/// `Order`/`Allow`/`Deny` the check lets everyone through (`Order deny,allow`, no rule).
pub fn access(dir: &DirConfig, client: &Client<'_>) -> Verdict {
    let compat = dir.access_compat.as_ref();
    let host_denied = compat.is_some_and(|a| !hosts_allow(a, client));
    let satisfy = compat
        .and_then(|a| a.satisfy_for(client.method))
        .unwrap_or(Satisfy::All);
    let access = match (host_denied, satisfy) {
        (false, Satisfy::Any) => Access::Granted,
        (true, Satisfy::All) => Access::HostDenied,
        _ => require_access(dir.require.as_ref(), client),
    };
    Verdict {
        access,
        host_denied,
    }
}

/// mod_access_compat's `check_dir_access`: does `Order`/`Allow`/`Deny` let the client in?
fn hosts_allow(a: &AccessCompat, client: &Client<'_>) -> bool {
    // ap_get_remote_host keeps the answer on the connection: one lookup at most.
    let name = OnceCell::new();
    let hits = |rules: &[Limited<HostRule>]| {
        rules
            .iter()
            .filter(|r| r.methods.covers(client.method))
            .any(|r| match &r.value {
                HostRule::All => true,
                HostRule::Env(var) => has_env(client, var),
                HostRule::NotEnv(var) => !has_env(client, var),
                HostRule::Ip(subnet) => subnet.contains(client.ip),
                HostRule::Name(domain) => name
                    .get_or_init(|| client.host_names.double_reverse(client.ip))
                    .as_deref()
                    .is_some_and(|n| access::in_domain(domain, n)),
            })
    };
    match a.order_for(client.method) {
        Order::DenyAllow => !hits(&a.deny) || hits(&a.allow),
        Order::AllowDeny | Order::MutualFailure => hits(&a.allow) && !hits(&a.deny),
    }
}

/// Whether the request variable is set, even to nothing (`apr_table_get` on
/// `subprocess_env`, whose keys are case-insensitive).
fn has_env(client: &Client<'_>, var: &str) -> bool {
    client.env.iter().any(|(k, _)| k.eq_ignore_ascii_case(var))
}

/// What `Require` decides for this client; no rule at all grants (httpd's default).
pub fn require_access(rule: Option<&Require>, client: &Client<'_>) -> Access {
    let Some(rule) = rule else {
        return Access::Granted;
    };
    if evaluate(rule, client) == Decision::Granted {
        return Access::Granted;
    }
    if names_users(rule, client.method) {
        Access::NeedsUser
    } else {
        Access::Denied
    }
}

/// Whether a rule that applies to `method` names users (then a user may change the answer).
fn names_users(rule: &Require, method: &str) -> bool {
    if !covers(rule, method) {
        return false;
    }
    match rule {
        Require::Entity {
            negate: false,
            entity,
        } => {
            matches!(
                entity,
                Entity::ValidUser | Entity::User(_) | Entity::Group(_)
            )
        }
        Require::Entity { .. } => false,
        Require::All(rules) | Require::Any(rules) | Require::None(rules) => {
            rules.iter().any(|r| names_users(r, method))
        }
        Require::Methods { rule, .. } => names_users(rule, method),
    }
}

/// Whether `rule` lets the request through; no rule at all grants (httpd's default).
pub fn allowed(rule: Option<&Require>, client: &Client<'_>) -> bool {
    rule.is_none_or(|r| evaluate(r, client) == Decision::Granted)
}

/// The method as httpd numbers it: HEAD is M_GET, so `<Limit GET>` covers HEAD too.
fn method_number(method: &str) -> &str {
    if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    }
}

/// httpd's `limited` mask: does any rule inside apply to `method`? A `<Limit>` /
/// `<LimitExcept>` narrows it; everything else covers every method.
fn covers(rule: &Require, method: &str) -> bool {
    match rule {
        Require::Entity { .. } => true,
        Require::All(rules) | Require::Any(rules) | Require::None(rules) => {
            rules.iter().any(|r| covers(r, method))
        }
        Require::Methods {
            methods,
            except,
            rule,
        } => {
            let wanted = method_number(method);
            let listed = methods
                .iter()
                .any(|m| method_number(m).eq_ignore_ascii_case(wanted));
            listed != *except && covers(rule, method)
        }
    }
}

/// The whole rule, as mod_authz_core's top level (an implicit AND).
pub fn evaluate(rule: &Require, client: &Client<'_>) -> Decision {
    evaluate_under(rule, client, true)
}

/// mod_authz_core's `apply_authz_sections`: a rule limited to other methods is granted
/// under an AND parent and neutral under an OR one, so that `<Limit POST>` rules leave
/// GET alone.
fn evaluate_under(rule: &Require, client: &Client<'_>, parent_and: bool) -> Decision {
    if !covers(rule, client.method) {
        return if parent_and {
            Decision::Granted
        } else {
            Decision::Neutral
        };
    }
    match rule {
        Require::Entity { negate, entity } => {
            let hit = match entity {
                Entity::All(granted) => {
                    return if *granted {
                        Decision::Granted
                    } else {
                        Decision::Denied
                    }
                }
                Entity::Ip(nets) => nets.iter().any(|n| n.contains(client.ip)),
                Entity::Local => client.ip.is_loopback() || client.ip == client.local_ip,
                Entity::Method(methods) => methods
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(client.method)),
                Entity::Env(vars) => vars.iter().any(|v| has_env(client, v)),
                Entity::ValidUser => client.user.is_some(),
                Entity::User(users) => client.user.is_some_and(|u| users.iter().any(|x| x == u)),
                Entity::Group(groups) => groups.iter().any(|g| client.groups.contains(g)),
            };
            match (hit, negate) {
                (true, false) => Decision::Granted,
                (false, false) => Decision::Denied,
                (true, true) => Decision::Denied,
                (false, true) => Decision::Neutral,
            }
        }
        Require::Any(rules) => {
            let mut result = Decision::Neutral;
            for r in rules {
                match evaluate_under(r, client, false) {
                    Decision::Granted => return Decision::Granted,
                    Decision::Denied => result = Decision::Denied,
                    Decision::Neutral => {}
                }
            }
            result
        }
        Require::All(rules) => {
            let mut result = Decision::Neutral;
            for r in rules {
                match evaluate_under(r, client, true) {
                    Decision::Denied => return Decision::Denied,
                    Decision::Granted => result = Decision::Granted,
                    Decision::Neutral => {}
                }
            }
            result
        }
        Require::None(rules) => {
            if rules
                .iter()
                .any(|r| evaluate_under(r, client, false) == Decision::Granted)
            {
                Decision::Denied
            } else {
                Decision::Neutral
            }
        }
        // The <Limit>'s lines stand in their parent section, as httpd files them.
        Require::Methods { rule, .. } => evaluate_under(rule, client, parent_and),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(lines: &[&str]) -> Require {
        Require::Any(
            lines
                .iter()
                .map(|l| {
                    Require::parse_line(
                        &l.split_whitespace().map(str::to_owned).collect::<Vec<_>>(),
                    )
                    .unwrap()
                })
                .collect(),
        )
    }

    fn client(ip: &str, method: &'static str) -> Client<'static> {
        Client {
            ip: ip.parse().unwrap(),
            local_ip: "10.0.0.1".parse().unwrap(),
            method,
            env: &[],
            user: None,
            groups: &[],
            host_names: &NoNames,
        }
    }

    /// A resolver that knows no name.
    #[derive(Debug)]
    struct NoNames;

    impl HostNames for NoNames {
        fn double_reverse(&self, _: IpAddr) -> Option<String> {
            None
        }
    }

    #[test]
    fn decisions() {
        let any_ip = rule(&["ip 10.1.0.0/16", "ip 127.0.0.1"]);
        assert!(allowed(Some(&any_ip), &client("10.1.2.3", "GET")));
        assert!(allowed(Some(&any_ip), &client("127.0.0.1", "GET")));
        assert!(!allowed(Some(&any_ip), &client("10.2.0.1", "GET")));
        assert!(!allowed(
            Some(&rule(&["all denied"])),
            &client("127.0.0.1", "GET")
        ));
        assert!(allowed(None, &client("8.8.8.8", "GET")));
        let all_but = Require::All(vec![
            Require::parse_line(&["all".into(), "granted".into()]).unwrap(),
            Require::parse_line(&["not".into(), "ip".into(), "10.9.0.0/16".into()]).unwrap(),
        ]);
        assert!(allowed(Some(&all_but), &client("10.1.0.1", "GET")));
        assert!(!allowed(Some(&all_but), &client("10.9.0.1", "GET")));
        assert!(allowed(Some(&rule(&["local"])), &client("::1", "GET")));
        assert!(allowed(Some(&rule(&["local"])), &client("10.0.0.1", "GET")));
        assert!(!allowed(
            Some(&rule(&["valid-user"])),
            &client("127.0.0.1", "GET")
        ));
        let limited = Require::Any(vec![Require::Methods {
            methods: vec!["POST".into()],
            except: false,
            rule: Box::new(rule(&["all denied"])),
        }]);
        assert!(!allowed(Some(&limited), &client("127.0.0.1", "POST")));
    }

    /// mod_authz_core: rules limited to other methods do not apply; when no rule applies
    /// to the method at all the request is granted (the top level is an AND).
    #[test]
    fn limit_and_limit_except_leave_other_methods_alone() {
        let limited = |methods: &[&str], except: bool, lines: &[&str]| Require::Methods {
            methods: methods.iter().map(|m| m.to_string()).collect(),
            except,
            rule: Box::new(rule(lines)),
        };
        let check = |r: &Require, method: &'static str| {
            require_access(Some(r), &client("127.0.0.1", method))
        };
        let post_denied = Require::Any(vec![limited(&["POST"], false, &["all denied"])]);
        let except_get = Require::Any(vec![limited(&["GET", "POST"], true, &["all denied"])]);
        let denied_plus_user = Require::Any(vec![
            Require::parse_line(&["all".into(), "denied".into()]).unwrap(),
            limited(&["POST"], false, &["valid-user"]),
        ]);
        let get_user = Require::Any(vec![limited(&["GET"], false, &["valid-user"])]);
        for (rule, method, want) in [
            (&post_denied, "POST", Access::Denied),
            (&post_denied, "GET", Access::Granted),
            (&post_denied, "HEAD", Access::Granted),
            (&except_get, "GET", Access::Granted),
            (&except_get, "HEAD", Access::Granted),
            (&except_get, "POST", Access::Granted),
            (&except_get, "PUT", Access::Denied),
            (&except_get, "DELETE", Access::Denied),
            // The user rule does not apply to GET: no 401 for it, a plain 403.
            (&denied_plus_user, "GET", Access::Denied),
            (&denied_plus_user, "POST", Access::NeedsUser),
            (&get_user, "HEAD", Access::NeedsUser),
            (&get_user, "POST", Access::Granted),
        ] {
            assert_eq!(check(rule, method), want, "{rule:?} {method}");
        }
    }

    /// Names as a resolver would confirm them: 10.0.0.7 is www.example.com, 10.0.0.8 has a
    /// name whose forward lookup does not give it back (so none).
    #[derive(Debug)]
    struct Names;

    impl HostNames for Names {
        fn double_reverse(&self, ip: IpAddr) -> Option<String> {
            (ip == IpAddr::from([10, 0, 0, 7])).then(|| "www.example.com".to_owned())
        }
    }

    /// No users, no names: the lines below need none.
    struct NoSystem;

    impl itkd_config::System for NoSystem {
        fn user_by_name(&self, _: &str) -> Option<(u32, u32)> {
            None
        }
        fn group_by_name(&self, _: &str) -> Option<u32> {
            None
        }
        fn user_name(&self, _: u32) -> Option<String> {
            None
        }
        fn group_name(&self, _: u32) -> Option<String> {
            None
        }
        fn resolve_host(&self, _: &str) -> Vec<IpAddr> {
            Vec::new()
        }
        fn default_server_name(&self) -> String {
            String::new()
        }
    }

    /// mod_access_compat and Require lines as the loader builds them (read as an
    /// `.htaccess` under `AllowOverride All`).
    fn section(lines: &[&str]) -> DirConfig {
        let text = lines.join("\n");
        let path = std::path::Path::new("/x/.htaccess");
        let main = apacheconf::parse_bytes(
            b"",
            std::path::Path::new("/t.conf"),
            &apacheconf::Options::default(),
            &itkd_config::modules::ItkdHost,
        );
        let all = itkd_config::Overrides {
            classes: itkd_config::directives::Override::ALL.into_iter().collect(),
            ..Default::default()
        };
        let (htaccess, diags) =
            itkd_config::load_htaccess(text.as_bytes(), path, &main, &all, &NoSystem);
        assert!(diags.is_empty(), "{lines:?}: {diags:?}");
        htaccess.dir
    }

    /// request.c and mod_access_compat, case by case: (lines, client, method, access,
    /// whether AH01797 is logged).
    #[test]
    fn order_allow_deny_and_satisfy_combine_with_require_as_httpd() {
        use Access::*;
        let table: &[(&[&str], &str, &str, Access, bool)] = &[
            // Without access_compat lines only Require speaks.
            (&["Require all granted"], "10.0.0.1", "GET", Granted, false),
            (&["Require all denied"], "10.0.0.1", "GET", Denied, false),
            // Only Order/Allow/Deny: no Require means granted by mod_authz_core.
            (
                &["Order deny,allow", "Deny from all"],
                "10.0.0.1",
                "GET",
                HostDenied,
                true,
            ),
            (&["Deny from all"], "10.0.0.1", "GET", HostDenied, true),
            (&["Order allow,deny"], "10.0.0.1", "GET", HostDenied, true),
            (&["Order deny,allow"], "10.0.0.1", "GET", Granted, false),
            (
                &["Order allow,deny", "Allow from all"],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &["Order allow,deny", "Allow from all", "Deny from 10.0.0.1"],
                "10.0.0.1",
                "GET",
                HostDenied,
                true,
            ),
            (
                &["Order deny,allow", "Deny from all", "Allow from 10.0.0.0/8"],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &[
                    "Order deny,allow",
                    "Deny from all",
                    "Allow from 10.0.0.0/255.0.0.0",
                ],
                "192.168.0.1",
                "GET",
                HostDenied,
                true,
            ),
            (
                &[
                    "Order mutual-failure",
                    "Allow from 10",
                    "Deny from 10.0.0.2",
                ],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &[
                    "Order mutual-failure",
                    "Allow from 10",
                    "Deny from 10.0.0.2",
                ],
                "10.0.0.2",
                "GET",
                HostDenied,
                true,
            ),
            (
                &["Order allow,deny", "Allow from ::1"],
                "::1",
                "GET",
                Granted,
                false,
            ),
            (
                &["Order allow,deny", "Allow from 127.0.0.1"],
                "::ffff:127.0.0.1",
                "GET",
                Granted,
                false,
            ),
            // Both present, Satisfy All: both must agree.
            (
                &["Order allow,deny", "Allow from all", "Require all denied"],
                "10.0.0.1",
                "GET",
                Denied,
                false,
            ),
            (
                &[
                    "Order allow,deny",
                    "Allow from 10.0.0.1",
                    "Require all granted",
                ],
                "10.0.0.2",
                "GET",
                HostDenied,
                true,
            ),
            (
                &[
                    "Satisfy All",
                    "Order allow,deny",
                    "Allow from all",
                    "Require valid-user",
                ],
                "10.0.0.1",
                "GET",
                NeedsUser,
                false,
            ),
            // Satisfy Any: either is enough; Require is not asked when the host passes.
            (
                &[
                    "Satisfy Any",
                    "Order allow,deny",
                    "Allow from 10.0.0.1",
                    "Require all denied",
                ],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &[
                    "Satisfy Any",
                    "Order allow,deny",
                    "Allow from 10.0.0.1",
                    "Require valid-user",
                ],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &[
                    "Satisfy Any",
                    "Order allow,deny",
                    "Allow from 10.0.0.1",
                    "Require valid-user",
                ],
                "10.0.0.2",
                "GET",
                NeedsUser,
                true,
            ),
            (
                &["Satisfy Any", "Deny from all", "Require all granted"],
                "10.0.0.2",
                "GET",
                Granted,
                true,
            ),
            (
                &["Satisfy Any", "Deny from all", "Require all denied"],
                "10.0.0.2",
                "GET",
                Denied,
                true,
            ),
            (
                &["Satisfy Any", "Deny from all"],
                "10.0.0.2",
                "GET",
                Granted,
                true,
            ),
            // env= and env=! (names compared case-insensitively, as apr tables do).
            (
                &[
                    "Order deny,allow",
                    "Deny from all",
                    "Allow from env=let_me_in",
                ],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &["Order deny,allow", "Deny from all", "Allow from env=other"],
                "10.0.0.1",
                "GET",
                HostDenied,
                true,
            ),
            (
                &["Order allow,deny", "Allow from env=!other"],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &["Order allow,deny", "Allow from env=!LET_ME_IN"],
                "10.0.0.1",
                "GET",
                HostDenied,
                true,
            ),
            // Host names: double-reverse confirmed, whole labels.
            (
                &["Order allow,deny", "Allow from example.com"],
                "10.0.0.7",
                "GET",
                Granted,
                false,
            ),
            (
                &["Order allow,deny", "Allow from .example.com"],
                "10.0.0.7",
                "GET",
                Granted,
                false,
            ),
            (
                &["Order allow,deny", "Allow from ample.com"],
                "10.0.0.7",
                "GET",
                HostDenied,
                true,
            ),
            (
                &["Order allow,deny", "Allow from example.com"],
                "10.0.0.8",
                "GET",
                HostDenied,
                true,
            ),
            // <Limit>: the lines apply to their methods only, HEAD counting as GET.
            (
                &["<Limit POST>", "Order allow,deny", "</Limit>"],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &["<Limit POST>", "Order allow,deny", "</Limit>"],
                "10.0.0.1",
                "POST",
                HostDenied,
                true,
            ),
            (
                &[
                    "Order allow,deny",
                    "Allow from all",
                    "<Limit GET>",
                    "Deny from 10.0.0.1",
                    "</Limit>",
                ],
                "10.0.0.1",
                "HEAD",
                HostDenied,
                true,
            ),
            (
                &[
                    "Order allow,deny",
                    "Allow from all",
                    "<LimitExcept GET>",
                    "Deny from all",
                    "</LimitExcept>",
                ],
                "10.0.0.1",
                "GET",
                Granted,
                false,
            ),
            (
                &[
                    "Order allow,deny",
                    "Allow from all",
                    "<LimitExcept GET>",
                    "Deny from all",
                    "</LimitExcept>",
                ],
                "10.0.0.1",
                "PUT",
                HostDenied,
                true,
            ),
            (
                &[
                    "Deny from all",
                    "Require all granted",
                    "<Limit GET>",
                    "Satisfy Any",
                    "</Limit>",
                ],
                "10.0.0.1",
                "GET",
                Granted,
                true,
            ),
            (
                &[
                    "Deny from all",
                    "Require all granted",
                    "<Limit GET>",
                    "Satisfy Any",
                    "</Limit>",
                ],
                "10.0.0.1",
                "POST",
                HostDenied,
                true,
            ),
        ];
        let env = [("LET_ME_IN".to_owned(), String::new())];
        for (lines, ip, method, want, logged) in table {
            let dir = section(lines);
            let client = Client {
                env: &env,
                host_names: &Names,
                ..client(ip, method)
            };
            let verdict = access(&dir, &Client { method, ..client });
            assert_eq!(
                verdict,
                Verdict {
                    access: *want,
                    host_denied: *logged
                },
                "{lines:?} from {ip} {method}"
            );
        }
    }

    /// mod_access_compat has no merge function: an inner section that uses any of its
    /// directives (a lone `Satisfy` too) replaces the outer lines whole.
    #[test]
    fn an_inner_section_replaces_the_outer_access_compat_lines() {
        let outer = section(&[
            "Order allow,deny",
            "Allow from 10.0.0.1",
            "Require all granted",
        ]);
        let check = |inner: &[&str], ip: &'static str| {
            let merged = outer.merge(&section(inner));
            access(&merged, &client(ip, "GET")).access
        };
        assert_eq!(check(&[], "10.0.0.2"), Access::HostDenied);
        assert_eq!(check(&["Satisfy All"], "10.0.0.2"), Access::Granted);
        assert_eq!(
            check(&["Deny from 10.0.0.1"], "10.0.0.1"),
            Access::HostDenied
        );
        assert_eq!(check(&["Deny from 10.0.0.1"], "10.0.0.2"), Access::Granted);
        assert_eq!(check(&["SetEnv X 1"], "10.0.0.2"), Access::HostDenied);
    }
}

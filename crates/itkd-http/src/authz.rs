//! `Require` evaluation (mod_authz_core's logic) for what needs no authentication:
//! `all`, `ip`, `local`, `method`, `env`. Rules naming users or groups deny until
//! authentication exists.

use std::net::IpAddr;

use itkd_config::require::{Entity, Require};

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
}

/// The outcome of authorization (mod_authz_core's final answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Granted,
    Denied,
    /// Not granted, and a rule names users: authenticating might change that (401).
    NeedsUser,
}

/// What the rule decides for this client; no rule at all grants (httpd's default).
pub fn access(rule: Option<&Require>, client: &Client<'_>) -> Access {
    let Some(rule) = rule else {
        return Access::Granted;
    };
    if evaluate(rule, client) == Decision::Granted {
        return Access::Granted;
    }
    if names_users(rule) {
        Access::NeedsUser
    } else {
        Access::Denied
    }
}

fn names_users(rule: &Require) -> bool {
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
            rules.iter().any(names_users)
        }
        Require::Methods { rule, .. } => names_users(rule),
    }
}

/// Whether `rule` lets the request through; no rule at all grants (httpd's default).
pub fn allowed(rule: Option<&Require>, client: &Client<'_>) -> bool {
    rule.is_none_or(|r| evaluate(r, client) == Decision::Granted)
}

pub fn evaluate(rule: &Require, client: &Client<'_>) -> Decision {
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
                Entity::Env(vars) => vars.iter().any(|v| client.env.iter().any(|(k, _)| k == v)),
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
                match evaluate(r, client) {
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
                match evaluate(r, client) {
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
                .any(|r| evaluate(r, client) == Decision::Granted)
            {
                Decision::Denied
            } else {
                Decision::Neutral
            }
        }
        Require::Methods {
            methods,
            except,
            rule,
        } => {
            let listed = methods.iter().any(|m| m.eq_ignore_ascii_case(client.method))
                // <Limit GET> covers HEAD too, as in httpd.
                || (client.method.eq_ignore_ascii_case("HEAD") && methods.iter().any(|m| m == "GET"));
            if listed != *except {
                evaluate(rule, client)
            } else {
                Decision::Neutral
            }
        }
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
        // Outside the <Limit>, nothing grants: httpd denies too.
        assert!(!allowed(Some(&limited), &client("127.0.0.1", "GET")));
    }
}

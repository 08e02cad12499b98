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
        let check =
            |r: &Require, method: &'static str| access(Some(r), &client("127.0.0.1", method));
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
}

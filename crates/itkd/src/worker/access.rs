//! The access stage: mod_env's variables, Basic authentication (password and group
//! files read as the tenant), then access control (`Require`, `Order`/`Allow`/`Deny`,
//! `Satisfy`) with httpd's log lines and statuses.

use super::*;

/// The request's variables (for CGI, `Header ... env=` and `%{…}e`) once access is
/// granted; else the 401, 403 or 500 to answer.
pub(super) fn check_access(
    c: &Ctx<'_>,
    target: &Target,
    found: &Found,
    dir: &DirConfig,
) -> Result<Vec<(String, String)>, Stop> {
    let uri_path = target.uri_path.as_str();
    // mod_env: SetEnv/PassEnv/UnsetEnv of the merged sections (.htaccess included), for
    // CGI, `Header ... env=` and the log's `%{…}e` (access control sees none of them, as
    // in httpd, where mod_env runs after the access stage).
    let mut env = itkd_config::dirconf::EnvOp::apply(&dir.env, |k| std::env::var(k).ok());
    // mod_ssl's variables (CGI, `%{…}x`/`%{…}e` in logs).
    if let Some(t) = &c.state.borrow().tls {
        env.extend(t.variables());
    }
    {
        let mut st = c.state.borrow_mut();
        st.header_actions.clone_from(&dir.headers);
        st.header_env.clone_from(&env);
    }
    let mut auth_log = Vec::new();
    let authenticated = authenticate(c.tenant, dir, c.req, uri_path, &mut auth_log);
    for (level, message) in auth_log {
        c.log("auth_basic", level, &message);
    }
    let (user, groups) = authenticated.map_err(|message| {
        c.log("auth_basic", Level::Error, &message);
        c.fatal(500)
    })?;
    if let Some(u) = &user {
        env.push(("REMOTE_USER".to_owned(), u.clone()));
        env.push(("AUTH_TYPE".to_owned(), "Basic".to_owned()));
    }
    let client = authz::Client {
        ip: c.peer.ip(),
        local_ip: c.local.ip(),
        method: c.req.method().as_str(),
        // httpd checks access before its fixups hook, where mod_env's SetEnv/PassEnv and
        // mod_ssl's variables are set: `Require env` and `Allow from env=` see none of
        // them (only SetEnvIf's, which itkd does not set).
        env: &[],
        user: user.as_deref(),
        groups: &groups,
        host_names: &authz::Resolver,
    };
    let verdict = authz::access(dir, &client);
    let path = found.mapped.path.display();
    if verdict.host_denied {
        // mod_access_compat logs its refusal even when `Satisfy Any` lets Require decide.
        c.log(
            "access_compat",
            Level::Error,
            &format!("AH01797: client denied by server configuration: {path}"),
        );
    }
    match verdict.access {
        authz::Access::Granted => Ok(env),
        authz::Access::HostDenied => Err(c.document(dir, 403, HeaderMap::new(), target).into()),
        authz::Access::NeedsUser if dir.auth_basic == Some(true) => {
            let message = match &user {
                Some(u) => format!("AH01631: user {u}: authorization failure for \"{uri_path}\": "),
                None => format!("AH01626: authorization result: denied (no authenticated user yet) for \"{uri_path}\""),
            };
            c.log("authz_core", Level::Error, &message);
            let realm = dir.auth_name.clone().unwrap_or_default().replace('"', "");
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
            Err(c.document(dir, 401, headers, target).into())
        }
        authz::Access::NeedsUser => {
            // httpd: a rule naming users with no AuthType is a configuration error.
            c.log("core", Level::Error, &format!("AH00027: No authentication done but request not allowed without authentication for {uri_path}. Authentication not configured?"));
            Err(c.fatal(500).into())
        }
        authz::Access::Denied => {
            c.log(
                "authz_core",
                Level::Error,
                &format!("AH01630: client denied by server configuration: {path}"),
            );
            Err(c.document(dir, 403, HeaderMap::new(), target).into())
        }
    }
}

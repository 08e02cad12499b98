//! The handler stage: mod_mime's handler by the file's name (whether it exists or not,
//! as httpd), `SetHandler`, ScriptAlias's `cgi-script`, or a handler-like media type;
//! then an `Action`'s script (an internal redirect), CGI, the refusal of a handler itkd
//! cannot run (never the file's bytes), or the default handler (a static file, or
//! mod_dir's index through the whole path again).

use super::*;

/// What runs the request.
pub(super) enum Handler {
    /// `Action` names a script for the file's handler or media type.
    Action(itkd_config::dirconf::Action),
    /// mod_cgi.
    Cgi,
    /// A handler itkd cannot run (mod_php's without PHP, php-fpm's proxy:fcgi, ...).
    Unrunnable(String),
    /// The default handler.
    Static,
}

pub(super) fn choose_handler(c: &Ctx<'_>, found: &Found, dir: &DirConfig) -> Handler {
    let named = found.file();
    let handler = if found.mapped.script {
        Some("cgi-script".to_owned())
    } else {
        handler_of(named, dir)
    };
    let media_type = named
        .file_name()
        .and_then(|n| files::content_type(&n.to_string_lossy(), dir, &c.shared.config.mime_types));
    let action = dir.actions.iter().rev().find(|a| {
        handler.as_deref() == Some(a.trigger.as_str())
            || media_type.as_deref() == Some(a.trigger.as_str())
    });
    if let Some(action) = action.filter(|_| !found.mapped.script) {
        return Handler::Action(action.clone());
    }
    // httpd runs a file by its media type when no handler is set (mod_php's `AddType
    // application/x-httpd-php`, mod_cgi's `application/x-httpd-cgi`).
    let handler =
        handler.or_else(|| media_type.filter(|t| itkd_config::dirconf::names_a_handler(t)));
    match handler.as_deref() {
        Some("cgi-script" | "application/x-httpd-cgi") => Handler::Cgi,
        None | Some("default-handler") => Handler::Static,
        // A file that does not exist is the default handler's 404, whatever its handler.
        Some(_) if found.split.is_none() => Handler::Static,
        Some(other) => Handler::Unrunnable(other.to_owned()),
    }
}

pub(super) async fn run_handler(
    c: &Ctx<'_>,
    target: &Target,
    found: &Found,
    dir: &DirConfig,
    env: &[(String, String)],
    handler: Handler,
    body: &mut Option<Incoming>,
) -> Result<Response<ResponseBody>, Stop> {
    match handler {
        Handler::Action(action) => action_redirect(c, target, found, dir, env, &action),
        Handler::Cgi => {
            let cgi = CgiContext {
                shared: c.shared,
                state: c.state,
                server: c.server,
                dir,
                req: c.req,
                peer: c.peer,
                local: c.local,
                index: c.index,
                host: c.host,
                env,
                target,
                tenant: c.tenant,
            };
            Ok(boxed_cgi(cgi, &found.mapped, found.split.clone(), body.take()).await)
        }
        Handler::Unrunnable(name) => {
            // httpd would send the file as it is, its source; itkd never does
            // (docs/security.md).
            let origin = dir
                .handler_origins
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map_or_else(String::new, |(_, at)| format!(", set by {at}"));
            c.log(
                "core",
                Level::Error,
                &format!(
                    "handler '{name}' is not available in itkd{}{origin}: refusing to send {} as it is",
                    itkd_config::dirconf::handler_hint(&name),
                    found.file().display()
                ),
            );
            Err(c.document(dir, 500, HeaderMap::new(), target).into())
        }
        Handler::Static => serve_static(c, target, found, dir, body).await,
    }
}

/// mod_actions: a missing file is its 404 (unless `virtual`); else the request goes to
/// the script's URL, through the whole path (its sections, access control, ScriptAlias
/// or handler, CGIPassAuth, RLimit*), with this request's variables as `REDIRECT_*`.
fn action_redirect(
    c: &Ctx<'_>,
    target: &Target,
    found: &Found,
    dir: &DirConfig,
    env: &[(String, String)],
    action: &itkd_config::dirconf::Action,
) -> Result<Response<ResponseBody>, Stop> {
    if found.split.is_none() && !action.is_virtual {
        c.log(
            "actions",
            Level::Error,
            &format!(
                "AH00652: File does not exist: {}",
                found.mapped.path.display()
            ),
        );
        return Err(c.document(dir, 404, HeaderMap::new(), target).into());
    }
    let script = action.script.split('?').next().unwrap_or(&action.script);
    let Ok(script) = mapping::normalize(script, c.server.allow_encoded_slashes) else {
        return Err(c.fatal(500).into());
    };
    Ok(redirect_to(Target {
        uri_path: format!("{}{}", script.trim_end_matches('/'), target.uri_path),
        query: target.query.clone(),
        reached: Reached::Action {
            from: Box::new(target.clone()),
            handler: action.trigger.clone(),
            env: env.to_vec(),
        },
    }))
}

/// The default handler: httpd's methods, the request body read and discarded, then the
/// file (or mod_dir's index, served as if requested).
async fn serve_static(
    c: &Ctx<'_>,
    target: &Target,
    found: &Found,
    dir: &DirConfig,
    body: &mut Option<Incoming>,
) -> Result<Response<ResponseBody>, Stop> {
    let req = c.req;
    let config = &c.shared.config;
    if !known_to_httpd(req.method()) {
        c.log(
            "core",
            Level::Error,
            &format!(
                "AH00135: Invalid method in request {} {} {:?}",
                req.method(),
                req.uri(),
                req.version()
            ),
        );
        return Err(c.fatal(501).into());
    }
    let plain = HeaderMap::new();
    let file_req = FileRequest {
        method: target.method(req),
        // An ErrorDocument or a script's redirect target is fetched unconditionally.
        headers: match target.reached {
            Reached::Request | Reached::Index => req.headers(),
            _ => &plain,
        },
        query: target.query.as_deref(),
        scheme: c.scheme,
        host: c.redirect_host,
        now: c.now,
    };
    let mapped = &found.mapped;
    let outcome = match files::serve_with(
        c.tenant,
        mapped,
        dir,
        &config.mime_types,
        &file_req,
        found.known.as_ref(),
    ) {
        Outcome::Directory { index: names } => {
            // mod_dir: the first name that is a regular file is served as if requested.
            let index = names
                .into_iter()
                .find(|uri| files::is_file(c.tenant, &mapping::map(c.server, uri).path));
            if let Some(uri_path) = index {
                // The body goes with the request to the index (a POST to `/` reaches
                // index.php whole, as under mod_dir).
                return Ok(redirect_to(Target {
                    uri_path,
                    query: target.query.clone(),
                    reached: Reached::Index,
                }));
            }
            files::no_index(c.tenant, mapped, dir, &file_req)
        }
        outcome => outcome,
    };
    // httpd's default handler reads and discards a body before it answers, so a malformed
    // or oversized one gets its own status.
    if let Some(body) = body.take() {
        discard_body(body, c.server, dir)
            .await
            .map_err(|status| c.fatal(status))?;
    }
    match outcome {
        Outcome::Response {
            status,
            headers,
            body,
        } => Ok(build(config, status, headers, ResponseBody::from(body))),
        outcome => Err(static_error(c, dir, target, outcome).into()),
    }
}

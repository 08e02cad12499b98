//! The request after the switch: one URI through `.htaccess`, authentication, access control, mod_alias and the handler, and the loop of internal redirects (DirectoryIndex, ErrorDocument, a script's Location, Action) that sends every way to a file through the same path.

use super::*;

/// The request being served once the worker is the tenant: what every stage after the
/// credential switch reads. An internal redirect serves another URI with the same one.
pub(super) struct Ctx<'a> {
    pub(super) shared: &'a Shared,
    pub(super) state: &'a RefCell<State>,
    pub(super) req: &'a Request<()>,
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    pub(super) index: usize,
    pub(super) server: &'a Server,
    pub(super) host: Option<&'a str>,
    /// The Host header as sent, else the ServerName (mod_dir's and mod_alias's redirects).
    pub(super) redirect_host: &'a str,
    pub(super) scheme: &'static str,
    pub(super) now: SystemTime,
    /// The identity this worker switched to for the request.
    pub(super) identity: &'a Identity,
}

/// A URI to serve, and how the request came to it.
pub(super) struct Target {
    /// Normalized, `%`-decoded.
    pub(super) uri_path: String,
    pub(super) query: Option<String>,
    pub(super) reached: Reached,
}

/// How a [`Target`] was reached.
#[derive(Clone)]
pub(super) enum Reached {
    /// The request's own URI.
    Request,
    /// mod_dir's `DirectoryIndex` (httpd's fast internal redirect: no REDIRECT_*).
    Index,
    /// A script's local `Location` (RFC 3875 §6.2.2): served as a GET, REDIRECT_STATUS 200.
    Location {
        from: Box<Target>,
        env: Vec<(String, String)>,
    },
    /// An `ErrorDocument`: served as a GET, the response keeps `status` unless the
    /// document says otherwise; `headers` (WWW-Authenticate, Allow) go out with it.
    Error {
        status: u16,
        from: Box<Target>,
        headers: HeaderMap,
    },
    /// mod_actions: `Action handler /script` sends the file's request to the script's
    /// URL with the file's URI as PATH_INFO, method and body kept (REDIRECT_HANDLER).
    /// `env` is the request variables of the file's request: the script sees them as
    /// `REDIRECT_*` (httpd's rename_original_env), e.g. `REDIRECT_REMOTE_USER`.
    Action {
        from: Box<Target>,
        handler: String,
        env: Vec<(String, String)>,
    },
}

impl Clone for Target {
    fn clone(&self) -> Target {
        Target {
            uri_path: self.uri_path.clone(),
            query: self.query.clone(),
            reached: self.reached.clone(),
        }
    }
}

impl Target {
    /// The method the handler sees: httpd turns an ErrorDocument's or a script
    /// redirect's request into a GET (HEAD stays HEAD).
    pub(super) fn method<'r>(&self, req: &'r Request<()>) -> &'r str {
        match &self.reached {
            Reached::Request | Reached::Index | Reached::Action { .. } => req.method().as_str(),
            _ if req.method() == http::Method::HEAD => "HEAD",
            _ => "GET",
        }
    }

    /// The request this one was redirected from (REDIRECT_STATUS, REDIRECT_URL,
    /// REDIRECT_QUERY_STRING), if httpd marks it so.
    pub(super) fn redirected(&self) -> Option<(u16, &Target)> {
        match &self.reached {
            Reached::Location { from, .. } => Some((200, from)),
            Reached::Error { status, from, .. } => Some((*status, from)),
            // httpd: REDIRECT_STATUS is the status of the request the action came from
            // (an ErrorDocument's error, else 200).
            Reached::Action { from, .. } => Some((from.error_status().unwrap_or(200), from)),
            Reached::Request | Reached::Index => None,
        }
    }

    /// The status an `ErrorDocument` keeps, and the headers that go with it (through an
    /// `Action` that runs the document: a `.php` ErrorDocument under php-cgi).
    pub(super) fn error_document(&self) -> Option<(u16, &HeaderMap)> {
        match &self.reached {
            Reached::Error {
                status, headers, ..
            } => Some((*status, headers)),
            Reached::Action { from, .. } => from.error_document(),
            _ => None,
        }
    }

    pub(super) fn error_status(&self) -> Option<u16> {
        self.error_document().map(|(status, _)| status)
    }
}

/// An internal redirect asked for by a stage: the response it rides on is never sent.
#[derive(Clone)]
pub(super) struct InternalRedirect(Box<Target>);

/// httpd's default LimitInternalRecursion.
pub(super) const LIMIT_INTERNAL_RECURSION: u32 = 10;

/// Serves `target` and every internal redirect it leads to (DirectoryIndex, a script's
/// local Location, an ErrorDocument), each through the whole path again: sections,
/// `.htaccess`, access control, handler. A loop, not recursion: each stage that wants
/// another URI answers with an [`InternalRedirect`] marker.
pub(super) async fn serve(
    c: &Ctx<'_>,
    target: Target,
    body: Option<Incoming>,
) -> Response<ResponseBody> {
    let mut body = body;
    let mut target = target;
    let mut depth = 0;
    loop {
        let mut response = serve_once(c, &target, &mut body).await;
        let Some(InternalRedirect(next)) = response.extensions_mut().remove::<InternalRedirect>()
        else {
            return finish_error_document(c, &target, response);
        };
        depth += 1;
        if depth > LIMIT_INTERNAL_RECURSION {
            log_error(
                c.state,
                c.index,
                "core",
                Level::Error,
                Some(c.peer),
                &format!("AH00124: Request exceeded the limit of {LIMIT_INTERNAL_RECURSION} internal redirects due to probable configuration error. Use 'LimitInternalRecursion' to increase the limit if necessary. Use 'LogLevel debug' to get a backtrace."),
            );
            return page(&c.shared.config, Some(c.server), 500, c.req, true);
        }
        // An error while serving an ErrorDocument: httpd's page for the first error, not
        // another document (no loop of error documents).
        if let (Some(first), Reached::Error { .. }) = (target.error_status(), &next.reached) {
            return error_response(
                &c.shared.config,
                Some(c.server),
                first,
                c.req,
                false,
                None,
                HeaderMap::new(),
            );
        }
        target = *next;
    }
}

/// The response to an `ErrorDocument` target: the error's status unless the document
/// set its own, and the error's headers; an error while serving the document gives
/// httpd's page for the original error.
pub(super) fn finish_error_document(
    c: &Ctx<'_>,
    target: &Target,
    mut response: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let Some((status, headers)) = target.error_document() else {
        return response;
    };
    let produced = response.extensions().get::<Produced>().copied();
    if produced == Some(Produced::ErrorPath) {
        return error_response(
            &c.shared.config,
            Some(c.server),
            status,
            c.req,
            false,
            None,
            headers.clone(),
        );
    }
    if response.status() == StatusCode::OK {
        *response.status_mut() =
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    for (name, value) in headers {
        response.headers_mut().insert(name, value.clone());
    }
    response
}

/// A response that asks [`serve`] to serve `target` instead.
pub(super) fn redirect_to(target: Target) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(Body::Empty));
    response
        .extensions_mut()
        .insert(InternalRedirect(Box::new(target)));
    response
}

/// One URI, as the tenant: `.htaccess` → authentication and authorization → mod_alias
/// redirects → the handler (Action, CGI, a handler itkd cannot run, static files).
pub(super) async fn serve_once(
    c: &Ctx<'_>,
    target: &Target,
    body: &mut Option<Incoming>,
) -> Response<ResponseBody> {
    let (shared, state, req, peer, local, index, server, now) = (
        c.shared, c.state, c.req, c.peer, c.local, c.index, c.server, c.now,
    );
    let config = &shared.config;
    let uri_path = target.uri_path.as_str();
    let mapped = mapping::map(server, uri_path);
    // The file and the PATH_INFO after it (looked up as the tenant): `<Files>` sections
    // match the file's name, not the PATH_INFO's last part (httpd's file walk runs on
    // r->filename after the directory walk split it).
    let (split, known) = match itkd_http::cgi::split_path_info_with_meta(&mapped.path, &mapped.root)
    {
        Some((file, info, meta)) => {
            // The stat of the whole path, reused by the static handler.
            let known = (info.is_empty() && file == mapped.path).then_some(meta);
            (Some((file, info)), known)
        }
        None => (None, None),
    };
    let walk_path = split
        .as_ref()
        .map_or(mapped.path.as_path(), |(file, _)| file);
    let (dir, wants_htaccess) = section_walk(state, server, index, walk_path, uri_path);
    // An Action's script runs as the request it serves (Debian's /usr/lib/cgi-bin has no
    // identity of its own); every other redirect is checked.
    if !matches!(target.reached, Reached::Request | Reached::Action { .. }) {
        // mpm-itk: the identity was chosen for the request's URI; a redirect to a place
        // whose sections name another one cannot be served by this process.
        let server_name = server.server_name.clone().unwrap_or_default();
        let ctx = ExprContext {
            http_host: c.host,
            server_name: &server_name,
            request_uri: uri_path,
            request_env: &[],
        };
        match identity::identity(config, &dir, &ctx, &SysLookup) {
            Ok(id) if id == *c.identity => {}
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("{uri_path} is served as another uid/gid than the request it was redirected from"),
                };
                log_error(state, index, "mpm_itk", Level::Error, Some(peer), &why);
                return page(config, Some(server), 500, req, true);
            }
        }
    }
    // The .htaccess files along the path (AllowOverride permitting).
    let dir = {
        let mut reader = |level: &std::path::Path, overrides: &itkd_config::Overrides| {
            cached_htaccess(state, index, level, overrides, || {
                read_htaccess(shared, server, level, overrides)
            })
        };
        let walked = if wants_htaccess {
            walk::dir_config_with(server, Some(walk_path), uri_path, &mut reader).map(Rc::new)
        } else {
            Ok(dir)
        };
        match walked {
            Ok(d) => d,
            Err(stop) => {
                let level = if stop.status == 500 {
                    Level::Alert
                } else {
                    Level::Crit
                };
                log_error(state, index, "core", level, Some(peer), &stop.log);
                return page(config, Some(server), stop.status, req, stop.status == 500);
            }
        }
    };
    let error = |status: u16, headers: HeaderMap| {
        document_or_page(config, server, &dir, status, req, headers, target)
    };
    // mod_env: SetEnv/PassEnv/UnsetEnv of the merged sections (.htaccess included), for
    // CGI, `Header ... env=` and the log's `%{…}e` (access control sees none of them, as
    // in httpd, where mod_env runs after the access stage).
    let mut request_env = itkd_config::dirconf::EnvOp::apply(&dir.env, |k| std::env::var(k).ok());
    // mod_ssl's variables (CGI, `%{…}x`/`%{…}e` in logs).
    if let Some(t) = &state.borrow().tls {
        request_env.extend(t.variables());
    }
    {
        let mut st = state.borrow_mut();
        st.header_actions.clone_from(&dir.headers);
        st.header_env.clone_from(&request_env);
    }
    // Basic authentication (the password and group files are read as the tenant).
    let mut auth_log = Vec::new();
    let authenticated = authenticate(&dir, req, uri_path, &mut auth_log);
    for (level, message) in auth_log {
        log_error(state, index, "auth_basic", level, Some(peer), &message);
    }
    let (user, groups) = match authenticated {
        Ok(found) => found,
        Err(message) => {
            log_error(
                state,
                index,
                "auth_basic",
                Level::Error,
                Some(peer),
                &message,
            );
            return page(config, Some(server), 500, req, true);
        }
    };
    if let Some(u) = &user {
        request_env.push(("REMOTE_USER".to_owned(), u.clone()));
        request_env.push(("AUTH_TYPE".to_owned(), "Basic".to_owned()));
    }
    let client = authz::Client {
        ip: peer.ip(),
        local_ip: local.ip(),
        method: req.method().as_str(),
        // httpd checks access before its fixups hook, where mod_env's SetEnv/PassEnv and
        // mod_ssl's variables are set: `Require env` and `Allow from env=` see none of
        // them (only SetEnvIf's, which itkd does not set).
        env: &[],
        user: user.as_deref(),
        groups: &groups,
        host_names: &authz::Resolver,
    };
    let verdict = authz::access(&dir, &client);
    if verdict.host_denied {
        // mod_access_compat logs its refusal even when `Satisfy Any` lets Require decide.
        log_error(
            state,
            index,
            "access_compat",
            Level::Error,
            Some(peer),
            &format!(
                "AH01797: client denied by server configuration: {}",
                mapped.path.display()
            ),
        );
    }
    match verdict.access {
        authz::Access::Granted => {}
        authz::Access::HostDenied => return error(403, HeaderMap::new()),
        authz::Access::NeedsUser if dir.auth_basic == Some(true) => {
            let message = match &user {
                Some(u) => format!("AH01631: user {u}: authorization failure for \"{uri_path}\": "),
                None => format!("AH01626: authorization result: denied (no authenticated user yet) for \"{uri_path}\""),
            };
            log_error(
                state,
                index,
                "authz_core",
                Level::Error,
                Some(peer),
                &message,
            );
            let realm = dir.auth_name.clone().unwrap_or_default().replace('"', "");
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
            return error(401, headers);
        }
        authz::Access::NeedsUser => {
            // httpd: a rule naming users with no AuthType is a configuration error.
            log_error(
                state,
                index,
                "core",
                Level::Error,
                Some(peer),
                &format!("AH00027: No authentication done but request not allowed without authentication for {uri_path}. Authentication not configured?"),
            );
            return page(config, Some(server), 500, req, true);
        }
        authz::Access::Denied => {
            log_error(
                state,
                index,
                "authz_core",
                Level::Error,
                Some(peer),
                &format!(
                    "AH01630: client denied by server configuration: {}",
                    mapped.path.display()
                ),
            );
            return error(403, HeaderMap::new());
        }
    }
    // mod_alias: Redirect, RedirectMatch, RedirectPermanent, RedirectTemp.
    if let Some((status, location)) = mapping::redirect_for(
        &dir.redirects,
        uri_path,
        target.query.as_deref(),
        c.scheme,
        c.redirect_host,
    ) {
        let mut headers = HeaderMap::new();
        if let Some(v) = location.and_then(|t| HeaderValue::from_str(&t).ok()) {
            headers.insert(header::LOCATION, v);
        }
        return error(status, headers);
    }
    // The handler: mod_mime's by the file's name (whether it exists or not, as httpd),
    // SetHandler, or ScriptAlias's cgi-script.
    let named = walk_path;
    let handler = if mapped.script {
        Some("cgi-script".to_owned())
    } else {
        handler_of(named, &dir)
    };
    let media_type = named
        .file_name()
        .and_then(|n| files::content_type(&n.to_string_lossy(), &dir, &config.mime_types));
    let action = dir
        .actions
        .iter()
        .rev()
        .find(|a| {
            handler.as_deref() == Some(a.trigger.as_str())
                || media_type.as_deref() == Some(a.trigger.as_str())
        })
        .cloned();
    // httpd runs a file by its media type when no handler is set (mod_php's `AddType
    // application/x-httpd-php`, mod_cgi's `application/x-httpd-cgi`).
    let handler = handler.or_else(|| {
        media_type
            .clone()
            .filter(|t| itkd_config::dirconf::names_a_handler(t))
    });
    let cgi = |dir| CgiContext {
        shared,
        state,
        server,
        dir,
        req,
        peer,
        local,
        index,
        host: c.host,
        env: &request_env,
        target,
    };
    // The script paths are boxed: their state is large (about 20 KiB), and hyper moves
    // this future (through the stack, into its heap slot) for every request, static
    // files too; each KiB moved is a page or so for a fresh worker to fault in.
    if let Some(action) = action.filter(|_| !mapped.script) {
        // mod_actions: a missing file is its 404 (unless `virtual`); else the request
        // goes to the script's URL, through the whole path (its sections, access
        // control, ScriptAlias or handler, CGIPassAuth, RLimit*).
        if split.is_none() && !action.is_virtual {
            log_error(
                state,
                index,
                "actions",
                Level::Error,
                Some(peer),
                &format!("AH00652: File does not exist: {}", mapped.path.display()),
            );
            return error(404, HeaderMap::new());
        }
        let script = action.script.split('?').next().unwrap_or(&action.script);
        let Ok(script) = mapping::normalize(script, server.allow_encoded_slashes) else {
            return page(config, Some(server), 500, req, true);
        };
        return redirect_to(Target {
            uri_path: format!("{}{uri_path}", script.trim_end_matches('/')),
            query: target.query.clone(),
            reached: Reached::Action {
                from: Box::new(target.clone()),
                handler: action.trigger.clone(),
                env: request_env.clone(),
            },
        });
    }
    match handler.as_deref() {
        Some("cgi-script" | "application/x-httpd-cgi") => {
            return boxed_cgi(cgi(&dir), &mapped, split, body.take()).await;
        }
        None | Some("default-handler") => {}
        // A handler itkd cannot run (mod_php without php_module, php-fpm's proxy:fcgi,
        // fcgid, wsgi, ...): httpd would send the file as it is, its source; itkd never
        // does (docs/security.md). A file that does not exist is still a 404.
        Some(unknown) if split.is_some() => {
            let origin = dir
                .handler_origins
                .iter()
                .rev()
                .find(|(name, _)| name == unknown)
                .map_or_else(String::new, |(_, at)| format!(", set by {at}"));
            log_error(
                state,
                index,
                "core",
                Level::Error,
                Some(peer),
                &format!(
                    "handler '{unknown}' is not available in itkd{}{origin}: refusing to send {} as it is",
                    itkd_config::dirconf::handler_hint(unknown),
                    named.display()
                ),
            );
            return error(500, HeaderMap::new());
        }
        Some(_) => {}
    }
    let method = target.method(req);
    if !known_to_httpd(req.method()) {
        log_error(
            state,
            index,
            "core",
            Level::Error,
            Some(peer),
            &format!(
                "AH00135: Invalid method in request {} {} {:?}",
                req.method(),
                req.uri(),
                req.version()
            ),
        );
        return page(config, Some(server), 501, req, true);
    }
    if let Some(body) = body.take() {
        if let Err(status) = discard_body(body, server, &dir).await {
            return page(config, Some(server), status, req, true);
        }
    }
    let plain = HeaderMap::new();
    let file_req = FileRequest {
        method,
        // An ErrorDocument or a script's redirect target is fetched unconditionally.
        headers: match target.reached {
            Reached::Request | Reached::Index => req.headers(),
            _ => &plain,
        },
        query: target.query.as_deref(),
        scheme: c.scheme,
        host: c.redirect_host,
        now,
    };
    match files::serve_with(&mapped, &dir, &config.mime_types, &file_req, known.as_ref()) {
        Outcome::Response {
            status,
            headers,
            body,
        } => build(config, status, headers, ResponseBody::from(body)),
        Outcome::Directory { index: names } => {
            // mod_dir: the first name that is a regular file is served as if requested.
            let found = names.into_iter().find(|uri| {
                std::fs::metadata(mapping::map(server, uri).path).is_ok_and(|m| m.is_file())
            });
            match found {
                Some(uri_path) => redirect_to(Target {
                    uri_path,
                    query: target.query.clone(),
                    reached: Reached::Index,
                }),
                None => match files::no_index(&mapped, &dir, &file_req) {
                    Outcome::Response {
                        status,
                        headers,
                        body,
                    } => build(config, status, headers, ResponseBody::from(body)),
                    outcome => static_error(c, &dir, target, outcome),
                },
            }
        }
        outcome => static_error(c, &dir, target, outcome),
    }
}

/// The static handler's refusal: its log line, then the error page or ErrorDocument.
pub(super) fn static_error(
    c: &Ctx<'_>,
    dir: &DirConfig,
    target: &Target,
    outcome: Outcome,
) -> Response<ResponseBody> {
    match outcome {
        Outcome::Error {
            status,
            log,
            headers,
        } => {
            if let Some(message) = log {
                // httpd's default handler logs a missing file at info (AH00128), every other
                // refusal at error.
                let level = if message.starts_with("AH00128:") {
                    Level::Info
                } else {
                    Level::Error
                };
                log_error(c.state, c.index, "core", level, Some(c.peer), &message);
            }
            document_or_page(
                &c.shared.config,
                c.server,
                dir,
                status,
                c.req,
                headers,
                target,
            )
        }
        // Responses and directories are handled by the caller.
        _ => page(&c.shared.config, Some(c.server), 500, c.req, true),
    }
}

/// httpd's default handler reads and discards a request body before it answers
/// (`ap_discard_request_body`), so a malformed body gets its error status rather than a
/// 200 cut short by a close. The body is read in full here too (hyper sends the
/// `100 Continue` then): a bad chunk size, CRLF or extension is a 400, more than
/// LimitRequestBody a 413, and trailers are held to LimitRequestFields and
/// LimitRequestFieldSize like the head. Reading is bounded by RequestReadTimeout's body
/// stage and each read by `Timeout` (408).
pub(super) async fn discard_body(
    mut body: Incoming,
    server: &Server,
    dir: &DirConfig,
) -> Result<(), u16> {
    let limit = dir.limit_request_body.unwrap_or(DEFAULT_LIMIT_REQUEST_BODY);
    let field_size = usize::try_from(server.limits.field_size).unwrap_or(usize::MAX);
    let fields = usize::try_from(server.limits.fields).unwrap_or(usize::MAX);
    // A declared length over the limit is refused before anything is read, as httpd does.
    if limit != 0 && hyper::body::Body::size_hint(&body).lower() > limit {
        return Err(413);
    }
    let mut total: u64 = 0;
    let mut clock = crate::reqtimeout::BodyClock::new(server.read_timeouts.body, server.timeout);
    loop {
        let frame = match clock.next(&mut body).await {
            Err(_) => return Err(408),
            Ok(None) => return Ok(()),
            // hyper's chunked decoder: size overflow or not hex, a missing CRLF, an
            // extension or trailer section over its 16 KiB limit, or the client went away.
            // (httpd says 413 for the overflow and the long extension; documented.)
            Ok(Some(Err(_))) => return Err(400),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                total = total.saturating_add(data.len() as u64);
                if limit != 0 && total > limit {
                    return Err(413);
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    if trailers.len() > fields
                        || trailers
                            .iter()
                            .any(|(k, v)| k.as_str().len() + 2 + v.len() > field_size)
                    {
                        return Err(400);
                    }
                }
            }
        }
    }
}

/// The methods httpd knows (`ap_method_number_of`); the static handler answers the others
/// with 501 (`AH00135: Invalid method in request`), the known ones it does not serve with
/// 405.
pub(super) fn known_to_httpd(method: &http::Method) -> bool {
    const KNOWN: &[&str] = &[
        "GET",
        "HEAD",
        "PUT",
        "POST",
        "DELETE",
        "CONNECT",
        "OPTIONS",
        "TRACE",
        "PATCH",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "VERSION-CONTROL",
        "CHECKOUT",
        "UNCHECKOUT",
        "CHECKIN",
        "UPDATE",
        "LABEL",
        "REPORT",
        "MKWORKSPACE",
        "MKACTIVITY",
        "BASELINE-CONTROL",
        "MERGE",
    ];
    KNOWN.contains(&method.as_str())
}

/// The handler for a file: `SetHandler`, else the last `AddHandler` of one of its
/// extensions (mod_mime), minus `RemoveHandler`.
pub(super) fn handler_of(file: &std::path::Path, dir: &DirConfig) -> Option<String> {
    if let Some(set) = &dir.set_handler {
        return set.clone();
    }
    let name = file.file_name()?.to_string_lossy().to_ascii_lowercase();
    let mut found = None;
    for ext in name.split('.').skip(1) {
        if dir.removed_handlers.iter().any(|r| r == ext) {
            continue;
        }
        if let Some((_, h)) = dir.handlers.iter().rev().find(|(e, _)| e == ext) {
            found = Some(h.clone());
        }
    }
    found
}

/// httpd 2.4.54+'s default LimitRequestBody: 1 GiB.
pub(super) const DEFAULT_LIMIT_REQUEST_BODY: u64 = 1 << 30;

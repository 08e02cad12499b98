//! CGI and Action scripts: the CGI variables, the script's run, its local redirect.

use super::*;

/// What a CGI request needs of the request being handled.
pub(super) struct CgiContext<'a> {
    pub(super) shared: &'a Shared,
    pub(super) state: &'a RefCell<State>,
    pub(super) server: &'a Server,
    pub(super) dir: &'a DirConfig,
    pub(super) req: &'a Request<()>,
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    pub(super) index: usize,
    pub(super) host: Option<&'a str>,
    pub(super) env: &'a [(String, String)],
    pub(super) target: &'a Target,
    /// The proof of the switch: the script runs as the tenant.
    pub(super) tenant: AsTenant,
}

impl CgiContext<'_> {
    /// The error for `status` under the script's directory: its ErrorDocument, else
    /// httpd's page.
    fn document(&self, status: u16, headers: HeaderMap) -> Response<ResponseBody> {
        document_or_page(
            &self.shared.config,
            self.server,
            self.dir,
            status,
            self.req,
            headers,
            self.target,
        )
    }
}

/// [`run_cgi`]'s future, built on the heap by a function of its own: built inline,
/// its ~20 KiB would sit in the stack frame of every request's poll (stack probes and
/// cold pages on the static path too; `perf annotate` showed them).
#[inline(never)]
pub(super) fn boxed_cgi<'a>(
    c: CgiContext<'a>,
    mapped: &'a mapping::Mapped,
    split: Option<(std::path::PathBuf, String)>,
    body: Option<Incoming>,
) -> Pin<Box<dyn std::future::Future<Output = Response<ResponseBody>> + 'a>> {
    Box::pin(run_cgi(c, mapped, split, body))
}

pub(super) async fn run_cgi(
    c: CgiContext<'_>,
    mapped: &mapping::Mapped,
    split: Option<(std::path::PathBuf, String)>,
    body: Option<Incoming>,
) -> Response<ResponseBody> {
    let log = |status: u16, message: &str| {
        log_error(c.state, c.index, "cgi", Level::Error, Some(c.peer), message);
        c.document(status, HeaderMap::new())
    };
    if !mapped.script
        && !c
            .dir
            .effective_options()
            .contains(itkd_config::dirconf::OptionSet::EXEC_CGI)
    {
        return log(
            403,
            &format!(
                "AH02809: Options ExecCGI is off in this directory: {}",
                mapped.path.display()
            ),
        );
    }
    let Some((script, path_info)) = split else {
        return log(
            404,
            &format!(
                "AH02811: script not found or unable to stat: {}",
                mapped.path.display()
            ),
        );
    };
    let script_name = mapped
        .uri_path
        .strip_suffix(path_info.as_str())
        .unwrap_or(&mapped.uri_path)
        .to_owned();
    if let Some(refusal) = refuse_symlink(&c, &mapped.root, &script, c.dir) {
        return refusal;
    }
    let path_translated = (!path_info.is_empty()).then(|| mapping::map(c.server, &path_info).path);
    let invocation = Invocation {
        script,
        script_name,
        path_info,
        path_translated,
        pass_auth: c.dir.cgi_pass_auth == Some(true),
    };
    exec_cgi(c, invocation, body).await
}

/// A script reached through a symlink its directory's Options do not allow: 403 and
/// httpd's AH00037 line, as for static files.
pub(super) fn refuse_symlink(
    c: &CgiContext<'_>,
    root: &std::path::Path,
    script: &std::path::Path,
    dir: &DirConfig,
) -> Option<Response<ResponseBody>> {
    match files::check_symlinks(c.tenant, root, script, dir.effective_options())? {
        Outcome::Error {
            status,
            log,
            headers,
        } => {
            if let Some(message) = log {
                log_error(
                    c.state,
                    c.index,
                    "core",
                    Level::Error,
                    Some(c.peer),
                    &message,
                );
            }
            Some(c.document(status, headers))
        }
        Outcome::Response { .. } | Outcome::Directory { .. } => None,
    }
}

/// Which script runs, and the CGI variables that say how it was reached.
pub(super) struct Invocation {
    pub(super) script: std::path::PathBuf,
    pub(super) script_name: String,
    pub(super) path_info: String,
    pub(super) path_translated: Option<std::path::PathBuf>,
    /// `CGIPassAuth` in force for the script's URL (for an `Action`, the action script's
    /// sections decide, not the requested file's, as httpd).
    pub(super) pass_auth: bool,
}

pub(super) async fn exec_cgi(
    c: CgiContext<'_>,
    inv: Invocation,
    body: Option<Incoming>,
) -> Response<ResponseBody> {
    let config = &c.shared.config;
    let limit = c
        .dir
        .limit_request_body
        .unwrap_or(DEFAULT_LIMIT_REQUEST_BODY);
    let content_length = declared_length(c.req);
    if limit != 0 && content_length.is_some_and(|n| n > limit) {
        return page(config, Some(c.server), 413, c.req, true);
    }
    let env = script_env(&c, &inv, content_length);
    let error_log = {
        let st = c.state.borrow();
        st.logs.servers.first().and_then(|l| l.error.clone())
    };
    let peer = c.peer;
    let stderr_line = move |line: &str| {
        if let Some(log) = &error_log {
            logs::write_error(log, "cgi", Level::Error, Some(peer), line);
        }
    };
    let result = crate::cgi::run(
        c.tenant,
        &inv.script,
        env,
        body,
        crate::cgi::Bounds {
            body: Some(limit),
            timeout: c.server.timeout,
            rlimits: &c.dir.rlimits,
        },
        crate::reqtimeout::BodyClock::new(c.server.read_timeouts.body, c.server.timeout),
        stderr_line,
    )
    .await;
    script_answer(&c, result)
}

/// CONTENT_LENGTH: the declared length, unset for a chunked body (as httpd leaves it).
fn declared_length(req: &Request<()>) -> Option<u64> {
    if req.headers().contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The script's environment: the CGI variables, the request's own (SetEnv, mod_ssl,
/// REMOTE_USER), httpd's REDIRECT_* for a script reached by an internal redirect (its
/// `Action`, or a script's Location or an ErrorDocument before that), SERVER_SIGNATURE.
fn script_env(
    c: &CgiContext<'_>,
    inv: &Invocation,
    content_length: Option<u64>,
) -> Vec<(String, String)> {
    let config = &c.shared.config;
    let mut extra = c.env.to_vec();
    let mut set = |name: &str, value: &str| extra.push((name.to_owned(), value.to_owned()));
    let earlier = match &c.target.reached {
        Reached::Action { handler, env, .. } => {
            set("REDIRECT_HANDLER", handler);
            env.as_slice()
        }
        Reached::Location { env, .. } => env.as_slice(),
        _ => &[],
    };
    // httpd renames the earlier request's variables; AUTH_TYPE is not among them.
    for (name, value) in earlier.iter().filter(|(name, _)| name != "AUTH_TYPE") {
        set(&format!("REDIRECT_{name}"), value);
    }
    let redirect = c.target.redirected().map(|(status, from)| {
        if let Some(q) = &from.query {
            set("REDIRECT_QUERY_STRING", q);
        }
        (status, from.uri_path.clone())
    });
    let (host_name, host_port) = c.host.map(split_host).unwrap_or_default();
    let server_name = if host_name.is_empty() {
        c.server.server_name.clone().unwrap_or_default()
    } else {
        host_name
    };
    let banner = banner(config);
    let protocol = if c.req.version() == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let request_uri = c.req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let mut env = itkd_http::cgi::environment(&itkd_http::cgi::CgiRequest {
        method: c.req.method().as_str(),
        request_uri,
        query: c.target.query.as_deref(),
        protocol,
        headers: c.req.headers(),
        remote: c.peer,
        local: c.local,
        server_name: &server_name,
        server_port: host_port
            .or(c.server.server_name_port)
            .unwrap_or(c.local.port()),
        server_admin: c.server.server_admin.as_deref(),
        server_software: &banner,
        document_root: &c.server.document_root,
        script_filename: &inv.script,
        script_name: &inv.script_name,
        path_info: &inv.path_info,
        path_translated: inv.path_translated.clone(),
        https: c.state.borrow().tls.is_some(),
        redirect: redirect
            .as_ref()
            .map(|(status, url)| (*status, url.as_str())),
        content_length,
        extra: &extra,
        pass_auth: inv.pass_auth,
    });
    // SERVER_SIGNATURE: httpd's ap_psignature("", r) under the ServerSignature in force.
    let mut sig = ErrorContext::new(c.req.method().as_str());
    sig.signature = signature_of(c.dir.server_signature);
    sig.banner = &banner;
    sig.server_name = &server_name;
    sig.server_admin = c
        .server
        .server_admin
        .as_deref()
        .unwrap_or(errors::DEFAULT_ADMIN);
    sig.port = host_port.or(c.server.server_name_port).unwrap_or(80);
    if let Some(slot) = env.iter_mut().find(|(k, _)| k == "SERVER_SIGNATURE") {
        slot.1 = errors::server_signature(&sig, "");
    }
    env
}

/// What the script's run gives the client: its response streaming, its local redirect
/// served through the whole path, or httpd's error with mod_cgi's log line.
fn script_answer(c: &CgiContext<'_>, result: crate::cgi::CgiResult) -> Response<ResponseBody> {
    let config = &c.shared.config;
    match result {
        crate::cgi::CgiResult::Error {
            status,
            log: message,
        } => {
            log_error(
                c.state,
                c.index,
                "cgi",
                Level::Error,
                Some(c.peer),
                &message,
            );
            // The body could not be read (413, or 400 for a malformed one): the error
            // page, then the connection closes.
            if matches!(status, 400 | 413) {
                return page(config, Some(c.server), status, c.req, true);
            }
            c.document(status, HeaderMap::new())
        }
        crate::cgi::CgiResult::Head { head, output } => {
            if let Some(location) = head.local_redirect {
                // RFC 3875 §6.2.2: a local redirect is served as if requested, as a GET,
                // through the whole request path (httpd's ap_internal_redirect_handler).
                drop(output);
                let (path, query) = match location.split_once('?') {
                    Some((p, q)) => (p, Some(q.to_owned())),
                    None => (location.as_str(), None),
                };
                let Ok(uri_path) = mapping::normalize(path, c.server.allow_encoded_slashes) else {
                    return page(config, Some(c.server), 500, c.req, true);
                };
                return redirect_to(Target {
                    uri_path,
                    query,
                    reached: Reached::Location {
                        from: Box::new(c.target.clone()),
                        env: c.env.to_vec(),
                    },
                });
            }
            let mut response = build(
                config,
                head.status,
                head.headers,
                ResponseBody::from(Body::Empty),
            );
            response.body_mut().cgi = Some(output);
            response.extensions_mut().insert(Produced::Cgi);
            response
        }
    }
}

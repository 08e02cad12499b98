//! The stages before the tenant: admit the request (Host, limits, framing, TRACE), route it to its vhost, walk its sections for the identity, switch credentials once.

use super::*;

/// One request: admitted, routed, the worker switched to its identity (once per
/// connection), then served as the tenant by [`serve`]. `Err` closes the connection
/// without a response (mpm-itk: another identity on a kept-alive connection).
pub(super) async fn handle(
    conn: Conn<'_>,
    req: &Request<()>,
    body: Incoming,
) -> Result<Response<ResponseBody>, CloseConnection> {
    match stages(conn, req, body).await {
        Ok(response) => Ok(response),
        Err(Halt::Answer(stop)) => Ok(stop.into_response()),
        Err(Halt::Close) => Err(CloseConnection),
    }
}

/// Why a request does not go on before the tenant: an answer, or closing with none.
pub(super) enum Halt {
    Answer(Stop),
    Close,
}

impl From<Response<ResponseBody>> for Halt {
    fn from(response: Response<ResponseBody>) -> Halt {
        Halt::Answer(Stop::from(response))
    }
}

/// The stages before the tenant, in httpd's order, then [`serve`].
async fn stages(
    conn: Conn<'_>,
    req: &Request<()>,
    body: Incoming,
) -> Result<Response<ResponseBody>, Halt> {
    let config = &conn.shared.config;
    let now = SystemTime::now();
    begin(conn.state, config);
    let host = host_of(req);
    let tls = conn.state.borrow().tls.clone();
    // Before any vhost: a plain request on a TLS port, a missing or malformed Host.
    admit(conn, req, host.as_deref())?;
    // The vhost, and what it refuses before reading anything (SNI, limits, framing).
    let index = config.route_index(conn.local.ip(), conn.local.port(), host.as_deref());
    let server = route(conn, req, index, host.as_deref(), tls.as_ref())?;
    // httpd's ap_send_http_trace, a map_to_storage hook: answered before the section
    // walk, so before the switch and with no tenant file touched.
    if req.method() == http::Method::TRACE {
        // Boxed: its body collector would otherwise widen every request's future.
        return Ok(boxed_trace(config, server, req, body).await);
    }
    // The asterisk-form: `OPTIONS *` asks about the server, httpd answers 200 with no
    // body (any other method with `*` is a 400 below, as httpd's).
    if req.method() == http::Method::OPTIONS && req.uri() == "*" {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        return Ok(build(config, 200, headers, ResponseBody::from(Body::Empty)));
    }
    let uri_path = normalize(conn, req, index, server)?;
    // The identity from the sections (pure computation: no tenant file is read before
    // the switch), then the switch, once per connection.
    let server_name = server.server_name.clone().unwrap_or_default();
    let wanted = identity_for(conn, req, index, server, host.as_deref(), &uri_path)?;
    let tenant = switch(conn, req, index, server, &wanted)?;
    // httpd's MaxKeepAliveRequests counts re-uses: the (N+1)th response closes.
    let max = server.max_keep_alive_requests;
    let last = max != 0 && conn.state.borrow().requests > max;
    let redirect_host = host.clone().unwrap_or(server_name);
    let ctx = Ctx {
        shared: conn.shared,
        state: conn.state,
        req,
        peer: conn.peer,
        local: conn.local,
        index,
        server,
        host: host.as_deref(),
        redirect_host: &redirect_host,
        scheme: if tls.is_some() { "https" } else { "http" },
        now,
        identity: &wanted,
        tenant,
    };
    let target = Target {
        uri_path,
        query: req.uri().query().map(str::to_owned),
        reached: Reached::Request,
    };
    let mut response = serve(&ctx, target, Some(body)).await;
    if last {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// A new request on the connection: the main server's header actions until routed.
fn begin(state: &RefCell<State>, config: &ServerConfig) {
    let mut st = state.borrow_mut();
    st.current = 0;
    st.header_actions.clone_from(&config.main.dir.headers);
    st.header_env.clear();
}

/// What is refused before any vhost is chosen.
fn admit(conn: Conn<'_>, req: &Request<()>, host: Option<&str>) -> Result<(), Halt> {
    let config = &conn.shared.config;
    if conn.state.borrow().plain_on_tls {
        // mod_ssl: a plain HTTP request on a TLS address.
        return Err(error_response(
            config,
            None,
            400,
            req,
            true,
            Some("You're speaking plain HTTP to an SSL-enabled server port.<br />\n Instead use the HTTPS scheme to access this URL, please.<br />\n"),
            HeaderMap::new(),
        )
        .into());
    }
    // RFC 9112 §3.2: HTTP/1.1 without Host is a 400; HTTP/1.0 without Host goes to the
    // default vhost, as httpd does.
    if host.is_none() && req.version() == Version::HTTP_11 {
        return Err(page(config, None, 400, req, true).into());
    }
    // httpd's fix_hostname: a Host that is no host name is a 400 (`Host: a b`), before
    // any vhost is chosen.
    if let Some(h) = host.filter(|h| !valid_host(h)) {
        log_error(
            conn.state,
            0,
            "core",
            Level::Debug,
            Some(conn.peer),
            &format!("AH00550: Client sent malformed Host header: {h}"),
        );
        return Err(page(config, None, 400, req, true).into());
    }
    Ok(())
}

/// The vhost `index`, once its TLS setup fits the one SNI chose and the request is within
/// its limits and framing rules.
fn route<'a>(
    conn: Conn<'a>,
    req: &Request<()>,
    index: usize,
    host: Option<&str>,
    tls: Option<&crate::tls::TlsInfo>,
) -> Result<&'a Server, Halt> {
    let config = &conn.shared.config;
    let server = config.server(index);
    {
        let mut st = conn.state.borrow_mut();
        st.current = index;
        st.header_actions.clone_from(&server.dir.headers);
    }
    // mod_ssl: the Host header must select a vhost with the certificate SNI selected
    // (or the address's default one had, without SNI); else 421, and the connection ends.
    if let Some(t) = tls {
        if !crate::tls::compatible(config, index, t.server) {
            let name = |i: usize| config.server(i).server_name.clone().unwrap_or_default();
            let sni = match &t.sni {
                Some(n) => format!("{n} provided via SNI"),
                None => format!("{} (default host as no SNI was provided)", name(t.server)),
            };
            let (host_name, _) = split_host(host.unwrap_or(""));
            log_error(
                conn.state,
                index,
                "ssl",
                Level::Error,
                Some(conn.peer),
                &format!("AH02032: Hostname {sni} and hostname {host_name} provided via HTTP have no compatible SSL setup for policy 'secure'"),
            );
            return Err(page(config, Some(server), 421, req, true).into());
        }
    }
    if let Some((status, notes)) = limits_exceeded(server, req) {
        return Err(error_response(
            config,
            Some(server),
            status,
            req,
            true,
            notes,
            HeaderMap::new(),
        )
        .into());
    }
    if let Some(status) = framing_refusal(req) {
        return Err(page(config, Some(server), status, req, true).into());
    }
    Ok(server)
}

/// The request's path, `%`-decoded and normalized (400 for what httpd refuses, 404 for
/// an encoded slash AllowEncodedSlashes does not allow).
fn normalize(
    conn: Conn<'_>,
    req: &Request<()>,
    index: usize,
    server: &Server,
) -> Result<String, Halt> {
    let config = &conn.shared.config;
    match mapping::normalize(req.uri().path(), server.allow_encoded_slashes) {
        Ok(path) => Ok(path),
        Err(MapError::BadRequest) => {
            log_error(
                conn.state,
                index,
                "core",
                Level::Error,
                Some(conn.peer),
                &format!("AH10244: invalid URI path ({})", req.uri().path()),
            );
            Err(page(config, Some(server), 400, req, true).into())
        }
        Err(MapError::NotFound) => Err(page(config, Some(server), 404, req, false).into()),
    }
}

/// The identity the sections name for the URI (AssignUserID, or its expressions).
fn identity_for(
    conn: Conn<'_>,
    req: &Request<()>,
    index: usize,
    server: &Server,
    host: Option<&str>,
    uri_path: &str,
) -> Result<Identity, Halt> {
    let config = &conn.shared.config;
    let mapped = mapping::map(server, uri_path);
    // Before the switch no tenant file is read: the walk only notes whether any level's
    // AllowOverride would read a .htaccess, so the walk after the switch runs only then.
    let (dir, _) = section_walk(conn.state, server, index, &mapped.path, uri_path);
    let server_name = server.server_name.clone().unwrap_or_default();
    let ctx = ExprContext {
        http_host: host,
        server_name: &server_name,
        request_uri: req.uri().path(),
        request_env: &[],
    };
    identity::identity(config, &dir, &ctx, &SysLookup).map_err(|e| {
        log_error(
            conn.state,
            index,
            "mpm_itk",
            Level::Error,
            Some(conn.peer),
            &e.to_string(),
        );
        page(config, Some(server), 500, req, true).into()
    })
}

/// The credential switch, once per connection (MaxClientsVHost counts the connection
/// from here); a kept-alive connection's later request needing another identity closes.
/// Gives the proof of the switch, which every stage after it needs to open a file.
fn switch(
    conn: Conn<'_>,
    req: &Request<()>,
    index: usize,
    server: &Server,
    wanted: &Identity,
) -> Result<AsTenant, Halt> {
    let config = &conn.shared.config;
    let state = conn.state;
    let log = |level: Level, message: &str| {
        log_error(state, index, "mpm_itk", level, Some(conn.peer), message);
    };
    let current = state.borrow().identity.clone();
    let tenant = match current {
        None => {
            // MaxClientsVHost: this connection counts from now on, the limit included.
            let limit = server
                .max_clients_vhost
                .and_then(|n| usize::try_from(n).ok());
            let vhost = u32::try_from(index).unwrap_or(u32::MAX - 1);
            if !conn.board.try_enter_vhost(conn.slot, vhost, limit) {
                let port = server.server_name_port.unwrap_or(conn.local.port());
                let name = server.server_name.as_deref().unwrap_or("");
                log(
                    Level::Warn,
                    &format!("MaxClientsVhost reached for {name}:{port}, refusing client."),
                );
                return Err(page(config, Some(server), 503, req, true).into());
            }
            let creds = conn.shared.credentials_for(wanted);
            let tenant = match switch_to(&creds, wanted.nice.and_then(Nice::new)) {
                Ok(tenant) => tenant,
                Err(e) => {
                    log(
                        Level::Warn,
                        &format!(
                            "(itkmpm: pid={}) {e}; Couldn't set uid/gid/priority",
                            std::process::id()
                        ),
                    );
                    return Err(page(config, Some(server), 500, req, true).into());
                }
            };
            // The kernel clears the parent-death signal on a uid change: set it again,
            // so a pool child killed by the master takes this worker with it.
            let _ = itkd_sys::process::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            let mut st = state.borrow_mut();
            // If the pool child died before that, the signal will never come: stop.
            if nix::unistd::getppid() != st.parent {
                return Err(Halt::Close);
            }
            st.identity = Some((wanted.clone(), tenant));
            st.server = Some(index);
            st.logs.keep_only(index);
            tenant
        }
        Some((current, tenant)) if current == *wanted => tenant,
        Some(_) => {
            // mpm-itk: a different identity on a kept-alive connection cannot be had.
            log(
                Level::Warn,
                "Couldn't set uid/gid/priority, closing connection.",
            );
            return Err(Halt::Close);
        }
    };
    let mut st = state.borrow_mut();
    st.requests += 1;
    st.keep_alive_timeout = server.keep_alive_timeout;
    Ok(tenant)
}

/// httpd's fix_hostname: letters, digits, `-`, `_` and single dots, then an optional
/// `:port` of digits; or a bracketed IPv6 literal with an optional port.
pub(super) fn valid_host(host: &str) -> bool {
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else {
            return false;
        };
        return literal.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(digits));
    }
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    digits(port)
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// [`trace`]'s future on the heap, out of the request's stack frame (see [`boxed_cgi`]).
#[inline(never)]
pub(super) fn boxed_trace<'a>(
    config: &'a ServerConfig,
    server: &'a Server,
    req: &'a Request<()>,
    body: Incoming,
) -> Pin<Box<dyn std::future::Future<Output = Response<ResponseBody>> + 'a>> {
    Box::pin(trace(config, server, req, body))
}

/// `TRACE` (TraceEnable): `Off` → 405; `On` → the request head echoed as `message/http`,
/// a request body refused with 413; `extended` → the body echoed too (up to
/// LimitRequestBody). Header names come lower-case (hyper keeps no original case).
pub(super) async fn trace(
    config: &ServerConfig,
    server: &Server,
    req: &Request<()>,
    body: Incoming,
) -> Response<ResponseBody> {
    use itkd_config::model::TraceEnable;
    let mut headers = HeaderMap::new();
    if server.trace_enable == TraceEnable::Off {
        headers.insert(
            header::ALLOW,
            HeaderValue::from_static("GET,POST,OPTIONS,HEAD"),
        );
        return error_response(config, Some(server), 405, req, false, None, headers);
    }
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut echo = Vec::new();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().to_string(), |pq| pq.as_str().to_owned());
    let version = if req.version() == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    echo.extend_from_slice(format!("TRACE {target} {version}\r\n").as_bytes());
    for (name, value) in req.headers() {
        echo.extend_from_slice(name.as_str().as_bytes());
        echo.extend_from_slice(b": ");
        echo.extend_from_slice(value.as_bytes());
        echo.extend_from_slice(b"\r\n");
    }
    echo.extend_from_slice(b"\r\n");
    if has_body {
        if server.trace_enable != TraceEnable::Extended {
            return error_response(
                config,
                Some(server),
                413,
                req,
                true,
                Some("TRACE with a request body is not allowed"),
                headers,
            );
        }
        let limit = server
            .dir
            .limit_request_body
            .unwrap_or(DEFAULT_LIMIT_REQUEST_BODY);
        let collected =
            http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
        match http_body_util::BodyExt::collect(collected).await {
            Ok(all) => echo.extend_from_slice(&all.to_bytes()),
            Err(_) => return page(config, Some(server), 413, req, true),
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/http"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(echo.len()));
    build(
        config,
        200,
        headers,
        ResponseBody::from(Body::Bytes(Bytes::from(echo))),
    )
}

pub(super) fn host_of<B>(req: &Request<B>) -> Option<String> {
    // An absolute-form target's host wins over the Host header (RFC 9112 §3.2.2).
    if let Some(h) = req.uri().host() {
        return Some(h.to_owned());
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
}

/// LimitRequestLine (414), LimitRequestFieldSize and LimitRequestFields (400), with the
/// note httpd's page shows.
pub(super) fn limits_exceeded<B>(
    server: &Server,
    req: &Request<B>,
) -> Option<(u16, Option<&'static str>)> {
    let line_len = req.method().as_str().len() + 1 + req.uri().to_string().len() + 9;
    if line_len > usize::try_from(server.limits.line).unwrap_or(usize::MAX) {
        return Some((414, None));
    }
    let field_size = usize::try_from(server.limits.field_size).unwrap_or(usize::MAX);
    if req
        .headers()
        .iter()
        .any(|(k, v)| k.as_str().len() + 2 + v.len() > field_size)
    {
        return Some((400, Some(errors::NOTE_FIELD_TOO_LONG)));
    }
    if req.headers().len() > usize::try_from(server.limits.fields).unwrap_or(usize::MAX) {
        return Some((400, Some(errors::NOTE_TOO_MANY_FIELDS)));
    }
    None
}

/// The sections in force for `path` (before `.htaccess` files) and whether any level
/// would read a `.htaccess`. The walk is pure computation on the configuration, so a
/// keep-alive connection asking for the same path again reuses the last result (it was
/// 7% of a small request's CPU).
pub(super) fn section_walk(
    state: &RefCell<State>,
    server: &Server,
    index: usize,
    path: &std::path::Path,
    uri_path: &str,
) -> (Rc<DirConfig>, bool) {
    if let Some(w) = &state.borrow().last_walk {
        if w.server == index && w.path == path && w.uri_path == uri_path {
            return (Rc::clone(&w.dir), w.wants_htaccess);
        }
    }
    let mut wants_htaccess = false;
    let mut note = |_: &std::path::Path, _: &itkd_config::Overrides| {
        wants_htaccess = true;
        Ok(None)
    };
    // A reader that never fails cannot make the walk fail.
    let dir = Rc::new(
        walk::dir_config_with(server, Some(path), uri_path, &mut note)
            .unwrap_or_else(|_| server.dir.clone()),
    );
    state.borrow_mut().last_walk = Some(LastWalk {
        server: index,
        path: path.to_path_buf(),
        uri_path: uri_path.to_owned(),
        dir: Rc::clone(&dir),
        wants_htaccess,
    });
    (dir, wants_htaccess)
}

/// What hyper's parser lets through but httpd's `ap_read_request` refuses (each a
/// request-smuggling or routing ambiguity), with the status httpd gives; the caller
/// closes the connection after the answer, so nothing after the head is read as a request.
/// Checked by `tests/framing.rs`.
pub(super) fn framing_refusal<B>(req: &Request<B>) -> Option<u16> {
    let headers = req.headers();
    // httpd: two Host lines are merged into "a, b", not a valid host → 400. hyper would
    // take the first, a front end perhaps the last: the classic vhost confusion.
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Some(400);
    }
    // (Two equal Content-Length lines cannot be refused here: hyper keeps only the first
    // in the map. httpd says 400; RFC 9110 §8.6 allows accepting them; the framing is the
    // same either way. Documented.)
    // httpd: an absolute-form target whose scheme is not http or https → 400.
    if req
        .uri()
        .scheme_str()
        .is_some_and(|s| !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https"))
    {
        return Some(400);
    }
    // No proxy, no tunnel. httpd answers an authority-form CONNECT with 405 and keeps
    // the connection (origin-form: 400); itkd refuses both with 400 and closes, so a front
    // end that believes a tunnel opened cannot have the server read its bytes as requests.
    if req.method() == http::Method::CONNECT {
        return Some(400);
    }
    // RFC 9110 §10.1.1 / httpd: an HTTP/1.1 `Expect` other than 100-continue → 417.
    if req.version() == Version::HTTP_11 {
        if let Some(expect) = headers.get(header::EXPECT) {
            if !expect.as_bytes().eq_ignore_ascii_case(b"100-continue") {
                return Some(417);
            }
        }
    }
    None
}

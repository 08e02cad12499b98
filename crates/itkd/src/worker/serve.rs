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
    /// The proof of the switch: what opening the tenant's files takes.
    pub(super) tenant: AsTenant,
}

/// A URI to serve, and how the request came to it.
#[derive(Clone)]
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

/// One URI, as the tenant: each stage hands on what it found or answers (`Err`), and
/// the answer may be an [`InternalRedirect`] for [`serve`] to follow.
pub(super) async fn serve_once(
    c: &Ctx<'_>,
    target: &Target,
    body: &mut Option<Incoming>,
) -> Response<ResponseBody> {
    match stages(c, target, body).await {
        Ok(response) => response,
        Err(Stop(response)) => *response,
    }
}

/// A stage's answer instead of handing on: the response to send (an error page, an
/// ErrorDocument, a redirect). Boxed, so a stage's `Result` stays small.
pub(super) struct Stop(Box<Response<ResponseBody>>);

impl Stop {
    pub(super) fn into_response(self) -> Response<ResponseBody> {
        *self.0
    }
}

impl From<Response<ResponseBody>> for Stop {
    fn from(response: Response<ResponseBody>) -> Stop {
        Stop(Box::new(response))
    }
}

/// The stages after the switch, in httpd's order.
async fn stages(
    c: &Ctx<'_>,
    target: &Target,
    body: &mut Option<Incoming>,
) -> Result<Response<ResponseBody>, Stop> {
    // URI → file and PATH_INFO, the sections in force, the identity for a redirect.
    let found = locate(c, target)?;
    // The .htaccess files along the path, read as the tenant.
    let dir = walk_htaccess(c, target, &found)?;
    // mod_env's variables, Basic authentication, then access control.
    let env = check_access(c, target, &found, &dir)?;
    // mod_alias: Redirect, RedirectMatch, RedirectPermanent, RedirectTemp.
    alias_redirect(c, target, &dir)?;
    // The handler: an Action's script, CGI, a handler itkd cannot run, or the file.
    let handler = choose_handler(c, &found, &dir);
    run_handler(c, target, &found, &dir, &env, handler, body).await
}

/// mod_alias's redirect for the URI, if one matches.
fn alias_redirect(c: &Ctx<'_>, target: &Target, dir: &DirConfig) -> Result<(), Stop> {
    let Some((status, location)) = mapping::redirect_for(
        &dir.redirects,
        &target.uri_path,
        target.query.as_deref(),
        c.scheme,
        c.redirect_host,
    ) else {
        return Ok(());
    };
    let mut headers = HeaderMap::new();
    if let Some(v) = location.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(header::LOCATION, v);
    }
    Err(c.document(dir, status, headers, target).into())
}

impl Ctx<'_> {
    /// The error for `status` after the per-directory configuration is known: its
    /// `ErrorDocument`, else httpd's page.
    pub(super) fn document(
        &self,
        dir: &DirConfig,
        status: u16,
        headers: HeaderMap,
        target: &Target,
    ) -> Response<ResponseBody> {
        document_or_page(
            &self.shared.config,
            self.server,
            dir,
            status,
            self.req,
            headers,
            target,
        )
    }

    /// httpd's page for `status` with `Connection: close`, no ErrorDocument.
    pub(super) fn fatal(&self, status: u16) -> Response<ResponseBody> {
        page(
            &self.shared.config,
            Some(self.server),
            status,
            self.req,
            true,
        )
    }

    /// An error-log line for this request.
    pub(super) fn log(&self, module: &str, level: Level, message: &str) {
        log_error(
            self.state,
            self.index,
            module,
            level,
            Some(self.peer),
            message,
        );
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

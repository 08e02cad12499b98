//! The worker: one process per connection, forked by a pool child right after `accept`.
//!
//! It builds its own current-thread tokio runtime (no thread, ever), lets hyper parse the
//! first request head, routes it (vhost, path, per-directory config, identity), switches
//! credentials once and irreversibly, then serves. A later request on the same connection
//! that needs other credentials gets no response: the connection is closed, as mpm-itk.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::Frame;
use hyper::body::Incoming;
use itkd_config::model::{Server, ServerConfig};
use itkd_http::auth::Verdict;
use itkd_http::files::{self, Body, FileRequest, Outcome};
use itkd_http::identity::{self, ExprContext, Identity, Lookup};
use itkd_http::mapping::{self, MapError};
use itkd_http::{authz, walk};
use itkd_sys::credentials::{switch_to, Credentials, Nice};
use itkd_sys::scoreboard::Scoreboard;

use crate::logs::{self, Logs};
use itkd_config::dirconf::{DirConfig, ErrorDocument, ServerSignature};
use itkd_http::errors::{self, ErrorContext, Signature};
use itkd_http::headers::Produced;
use itkd_http::logfmt::{ConnStatus, Level, LogEntry};

/// What every worker starts from: built by the master, inherited through two forks.
pub struct Shared {
    pub config: ServerConfig,
    pub logs: Logs,
    /// The configuration's directive tree: `.htaccess` files see its defines.
    pub parsed: itkd_config::Parsed,
    /// The credentials of every identity the configuration names statically (User/Group,
    /// AssignUserID), supplementary groups included: looked up once by the master, so a
    /// worker does not read the group database (getgrouplist) per connection.
    pub credentials: HashMap<(u32, u32), Credentials>,
    /// Every `SSLEngine on` server's certificate and key, read by the master.
    pub certs: crate::tls::Certificates,
    /// The session ticket keys the master shares with every worker.
    pub tickets: std::sync::Arc<crate::tls::SharedTicketer>,
}

impl Shared {
    pub fn new(
        config: ServerConfig,
        logs: Logs,
        parsed: itkd_config::Parsed,
        certs: crate::tls::Certificates,
        tickets: std::sync::Arc<crate::tls::SharedTicketer>,
    ) -> Shared {
        let mut credentials = HashMap::new();
        let mut add = |user: &itkd_config::model::UserId, gid: u32| {
            credentials
                .entry((user.uid, gid))
                .or_insert_with(|| Credentials::for_user(user.uid, gid, user.name.as_deref()));
        };
        add(&config.user, config.group.gid);
        for server in std::iter::once(&config.main).chain(&config.vhosts) {
            let mut dirs = vec![&server.dir];
            let mut sections: Vec<&itkd_config::dirconf::Section> =
                server.sections.iter().collect();
            while let Some(section) = sections.pop() {
                dirs.push(&section.config);
                sections.extend(&section.files);
            }
            for assign in dirs.into_iter().filter_map(|d| d.assign.as_ref()) {
                add(&assign.user, assign.group.gid);
            }
        }
        Shared {
            config,
            logs,
            parsed,
            credentials,
            certs,
            tickets,
        }
    }

    /// The credentials for `wanted`: from the table made at start when the configuration
    /// names it, else (AssignUserIDExpr results) looked up now.
    fn credentials_for(&self, wanted: &Identity) -> Credentials {
        match self.credentials.get(&(wanted.uid, wanted.gid)) {
            Some(c) => c.clone(),
            None => Credentials::for_user(wanted.uid, wanted.gid, wanted.user_name.as_deref()),
        }
    }
}

/// Serves one accepted connection to the end; returns the process exit code. `slot` is
/// the pool child's scoreboard slot, which this worker's connection occupies.
pub fn run(
    shared: &mut Shared,
    stream: std::net::TcpStream,
    board: &Scoreboard,
    slot: usize,
) -> i32 {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return 1;
    };
    // This process's own copy: after routing it keeps only its vhost's files open.
    let logs = std::mem::take(&mut shared.logs);
    // Every TLS vhost's key: needed for this connection's handshake only, dropped after.
    let certs = std::mem::take(&mut shared.certs);
    let shared: &Shared = shared;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        // One connection (and a CGI's pipes): a small event buffer is plenty.
        .max_io_events_per_tick(64)
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return 1,
    };
    let state = Rc::new(RefCell::new(State {
        identity: None,
        server: None,
        logs,
        requests: 0,
        busy: false,
        idle_since: Instant::now(),
        keep_alive_timeout: shared.config.main.keep_alive_timeout,
        current: 0,
        parent: nix::unistd::getppid(),
        tls: None,
        plain_on_tls: false,
        header_actions: Vec::new(),
        header_env: Vec::new(),
        htaccess_cache: Vec::new(),
        last_walk: None,
    }));
    // A LocalSet: the CGI runner spawns !Send tasks (stderr to the log) on this thread.
    let local_set = tokio::task::LocalSet::new();
    // Boxed: the connection's future (6.7 KiB) would otherwise be copied on the stack by
    // each layer of block_on, pages a fresh worker faults in.
    local_set.block_on(
        &runtime,
        Box::pin(async {
            if stream.set_nonblocking(true).is_err() {
                return 1;
            }
            // httpd disables Nagle on every connection (ap_sock_disable_nagle): a small
            // write (a TLS ticket, a CGI's first chunk) must not wait for the peer's ACK.
            let _ = stream.set_nodelay(true);
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                return 1;
            };
            let conn = Conn {
                shared,
                state: &state,
                peer,
                local,
                board,
                slot,
            };
            // A TLS address: the handshake, before the switch, as the pool's identity.
            let Some(default) = certs.default_for(&shared.config, local) else {
                // Not dropped: freeing every vhost's key objects would cost each plain
                // connection a page fault or more per key, and ring does not wipe them on
                // drop anyway (ARCHITECTURE.md, HTTPS).
                std::mem::forget(certs);
                return serve_http(conn, hyper_util::rt::TokioIo::new(stream)).await;
            };
            let session =
                crate::tls::handshake(&certs, &shared.config, stream, local, default).await;
            // Other vhosts' keys go now; the chosen one lives on in the session's
            // configuration (ring frees keys without wiping them).
            drop(certs);
            match session {
                Ok((tls, info)) => {
                    state.borrow_mut().tls = Some(info);
                    serve_http(conn, hyper_util::rt::TokioIo::new(tls)).await
                }
                Err(crate::tls::NoSession::PlainHttp(stream)) => {
                    state.borrow_mut().plain_on_tls = true;
                    serve_http(conn, hyper_util::rt::TokioIo::new(stream)).await
                }
                Err(crate::tls::NoSession::Closed) => 0,
            }
        }),
    )
}

/// What serving one connection needs besides its bytes.
#[derive(Clone, Copy)]
struct Conn<'a> {
    shared: &'a Shared,
    state: &'a Rc<RefCell<State>>,
    peer: SocketAddr,
    local: SocketAddr,
    board: &'a Scoreboard,
    slot: usize,
}

/// HTTP/1.1 on `io` (plain TCP or a TLS session) until the connection ends.
async fn serve_http<I>(conn: Conn<'_>, io: I) -> i32
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let Conn {
        shared,
        state,
        peer,
        local,
        board,
        slot,
    } = conn;
    {
        let main = &shared.config.main;
        let service = hyper::service::service_fn(|req| {
            let state = state.clone();
            async move {
                state.borrow_mut().busy = true;
                let start = SystemTime::now();
                let (parts, body) = req.into_parts();
                let req = Request::from_parts(parts, ());
                let result = handle(shared, &state, &req, body, peer, local, board, slot).await;
                result.map(|mut response| {
                    apply_header_actions(&state, &mut response, start);
                    access_log(shared, &state, &req, &response, peer, local, start);
                    // The body marks the connection idle again once hyper is done with it.
                    response.body_mut().state = Some(state.clone());
                    response
                })
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            // mod_reqtimeout's header stage (its first limit; the MinRate extension is
            // not applied to headers), else Timeout.
            .header_read_timeout(if main.read_timeouts.header.init.is_zero() {
                main.timeout
            } else {
                main.read_timeouts.header.init.min(main.timeout)
            })
            .keep_alive(main.keep_alive)
            // Room for LimitRequestLine plus LimitRequestFields lines of LimitRequestFieldSize;
            // the exact limits are checked per request (400/414 as httpd answers).
            .max_buf_size(buffer_limit(main))
            .max_headers(
                usize::try_from(main.limits.fields)
                    .unwrap_or(100)
                    .saturating_mul(2)
                    .max(100),
            );
        let connection = builder.serve_connection(io, service);
        // Returning drops the connection (and the process exits right after): that is how
        // an idle kept-alive connection is closed after KeepAliveTimeout, with no bytes.
        tokio::select! {
            _ = connection => 0,
            () = idle_watch(state) => 0,
        }
    }
}

/// Resolves once the connection has waited longer than KeepAliveTimeout for its next
/// request (httpd closes it then, without a response). The first request's wait is
/// hyper's header_read_timeout (Timeout).
async fn idle_watch(state: &RefCell<State>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let st = state.borrow();
        if st.requests > 0 && !st.busy && st.idle_since.elapsed() >= st.keep_alive_timeout {
            return;
        }
    }
}

fn buffer_limit(server: &Server) -> usize {
    let l = &server.limits;
    let fields = u64::from(l.fields).saturating_mul(u64::from(l.field_size) + 2);
    usize::try_from(u64::from(l.line) + 2 + fields)
        .unwrap_or(usize::MAX)
        .clamp(8192, 16 << 20)
}

/// Per connection, across its requests.
pub struct State {
    /// The identity this process switched to (set once, never changed).
    identity: Option<Identity>,
    /// The vhost of the first request (its logs are the only ones kept).
    server: Option<usize>,
    logs: Logs,
    requests: u32,
    /// A response is being produced or sent.
    busy: bool,
    /// When the last response finished.
    idle_since: Instant,
    keep_alive_timeout: Duration,
    /// The server index (0 main, then vhosts) of the request being handled.
    current: usize,
    /// The pool child that forked this worker.
    parent: nix::unistd::Pid,
    /// The TLS session, on a TLS address.
    tls: Option<crate::tls::TlsInfo>,
    /// A plain HTTP request came to a TLS address: every answer is httpd's 400.
    plain_on_tls: bool,
    /// The `Header` actions in force for the request being handled (the server's until
    /// the per-directory walk is done), and the request variables they may look at.
    header_actions: Vec<itkd_config::dirconf::HeaderAction>,
    header_env: Vec<(String, String)>,
    /// `.htaccess` results already read by this process (see [`cached_htaccess`]).
    htaccess_cache: Vec<HtaccessEntry>,
    /// The last request's section walk (before `.htaccess` files).
    last_walk: Option<LastWalk>,
}

/// One section walk: its inputs and what it gave.
struct LastWalk {
    server: usize,
    path: std::path::PathBuf,
    uri_path: String,
    dir: Rc<DirConfig>,
    wants_htaccess: bool,
}

/// One directory's `.htaccess` result: server index, directory, the override set it was
/// read under, and what reading it gave.
type HtaccessEntry = (
    usize,
    std::path::PathBuf,
    itkd_config::Overrides,
    Result<Option<itkd_config::Htaccess>, walk::HtaccessStop>,
);

/// Bounds the per-process `.htaccess` cache (a keep-alive connection makes at most
/// MaxKeepAliveRequests requests, each walking a few directories).
const HTACCESS_CACHE_ENTRIES: usize = 256;

impl State {
    /// Server `index`'s logs: before the switch every server's are held; after it only
    /// this connection's vhost's remain, at position 0.
    fn server_logs(&self, index: usize) -> Option<&crate::logs::ServerLogs> {
        self.logs
            .servers
            .get(if self.server.is_some() { 0 } else { index })
    }
}

/// The user database for AssignUserIDExpr results.
struct SysLookup;

impl Lookup for SysLookup {
    fn user(&self, name: &str) -> Option<(u32, Option<String>)> {
        match name.strip_prefix('#') {
            Some(n) => n
                .parse()
                .ok()
                .map(|uid| (uid, itkd_sys::users::user_by_uid(uid).map(|u| u.name))),
            None => itkd_sys::users::user_by_name(name).map(|u| (u.uid, Some(u.name))),
        }
    }

    fn group(&self, name: &str) -> Option<u32> {
        match name.strip_prefix('#') {
            Some(n) => n.parse().ok(),
            None => itkd_sys::users::group_by_name(name),
        }
    }
}

/// Closing without a response: hyper drops the connection when the service fails.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closing connection without a response")
    }
}

impl std::error::Error for CloseConnection {}

#[allow(clippy::too_many_arguments)]
async fn handle(
    shared: &Shared,
    state: &RefCell<State>,
    req: &Request<()>,
    body: Incoming,
    peer: SocketAddr,
    local: SocketAddr,
    board: &Scoreboard,
    slot: usize,
) -> Result<Response<ResponseBody>, CloseConnection> {
    let config = &shared.config;
    {
        let mut st = state.borrow_mut();
        st.current = 0;
        st.header_actions.clone_from(&config.main.dir.headers);
        st.header_env.clear();
    }
    let now = SystemTime::now();
    let host = host_of(req);
    let tls = state.borrow().tls.clone();
    if state.borrow().plain_on_tls {
        // mod_ssl: a plain HTTP request on a TLS address.
        return Ok(error_response(
            config,
            None,
            400,
            req,
            true,
            Some("You're speaking plain HTTP to an SSL-enabled server port.<br />\n Instead use the HTTPS scheme to access this URL, please.<br />\n"),
            HeaderMap::new(),
        ));
    }
    // RFC 9112 §3.2: HTTP/1.1 without Host is a 400; HTTP/1.0 without Host goes to the
    // default vhost, as httpd does.
    if host.is_none() && req.version() == Version::HTTP_11 {
        return Ok(page(config, None, 400, req, true));
    }
    let index = config.route_index(local.ip(), local.port(), host.as_deref());
    let server = config.server(index);
    {
        let mut st = state.borrow_mut();
        st.current = index;
        st.header_actions.clone_from(&server.dir.headers);
    }
    // mod_ssl: the Host header must select a vhost with the certificate SNI selected
    // (or the address's default one had, without SNI); else 421, and the connection ends.
    if let Some(t) = &tls {
        if !crate::tls::compatible(config, index, t.server) {
            let name = |i: usize| config.server(i).server_name.clone().unwrap_or_default();
            let sni = match &t.sni {
                Some(n) => format!("{n} provided via SNI"),
                None => format!("{} (default host as no SNI was provided)", name(t.server)),
            };
            let (host_name, _) = split_host(host.as_deref().unwrap_or(""));
            log_error(
                state,
                index,
                "ssl",
                Level::Error,
                Some(peer),
                &format!("AH02032: Hostname {sni} and hostname {host_name} provided via HTTP have no compatible SSL setup for policy 'secure'"),
            );
            return Ok(page(config, Some(server), 421, req, true));
        }
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some((status, notes)) = limits_exceeded(server, req) {
        return Ok(error_response(
            config,
            Some(server),
            status,
            req,
            true,
            notes,
            HeaderMap::new(),
        ));
    }
    if let Some(status) = framing_refusal(req) {
        return Ok(page(config, Some(server), status, req, true));
    }
    // The asterisk-form: `OPTIONS *` asks about the server, httpd answers 200 with no
    // body (any other method with `*` is a 400 below, as httpd's).
    if req.method() == http::Method::OPTIONS && req.uri() == "*" {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        return Ok(build(config, 200, headers, ResponseBody::from(Body::Empty)));
    }
    let uri_path = match mapping::normalize(req.uri().path(), server.allow_encoded_slashes) {
        Ok(p) => p,
        Err(MapError::BadRequest) => {
            log_error(
                state,
                index,
                "core",
                Level::Error,
                Some(peer),
                &format!("AH10244: invalid URI path ({})", req.uri().path()),
            );
            return Ok(page(config, Some(server), 400, req, true));
        }
        Err(MapError::NotFound) => return Ok(page(config, Some(server), 404, req, false)),
    };
    let mapped = mapping::map(server, &uri_path);
    // Before the switch no tenant file is read: the walk only notes whether any level's
    // AllowOverride would read a .htaccess, so the walk after the switch runs only then.
    let (dir, wants_htaccess) = section_walk(state, server, index, &mapped.path, &uri_path);
    let server_name = server.server_name.clone().unwrap_or_default();
    let ctx = ExprContext {
        http_host: host.as_deref(),
        server_name: &server_name,
        request_uri: req.uri().path(),
        request_env: &[],
    };
    let wanted = match identity::identity(config, &dir, &ctx, &SysLookup) {
        Ok(id) => id,
        Err(e) => {
            log_error(
                state,
                index,
                "mpm_itk",
                Level::Error,
                Some(peer),
                &e.to_string(),
            );
            return Ok(page(config, Some(server), 500, req, true));
        }
    };

    {
        let mut st = state.borrow_mut();
        match &st.identity {
            None => {
                // MaxClientsVHost: this connection counts from now on, the limit included.
                let limit = server
                    .max_clients_vhost
                    .and_then(|n| usize::try_from(n).ok());
                let vhost = u32::try_from(index).unwrap_or(u32::MAX - 1);
                if !board.try_enter_vhost(slot, vhost, limit) {
                    drop(st);
                    let port = server.server_name_port.unwrap_or(local.port());
                    let name = server.server_name.as_deref().unwrap_or("");
                    log_error(
                        state,
                        index,
                        "mpm_itk",
                        Level::Warn,
                        Some(peer),
                        &format!("MaxClientsVhost reached for {name}:{port}, refusing client."),
                    );
                    return Ok(page(config, Some(server), 503, req, true));
                }
                let creds = shared.credentials_for(&wanted);
                if let Err(e) = switch_to(&creds, wanted.nice.and_then(Nice::new)) {
                    drop(st);
                    log_error(
                        state,
                        index,
                        "mpm_itk",
                        Level::Warn,
                        Some(peer),
                        &format!(
                            "(itkmpm: pid={}) {e}; Couldn't set uid/gid/priority",
                            std::process::id()
                        ),
                    );
                    return Ok(page(config, Some(server), 500, req, true));
                }
                // The kernel clears the parent-death signal on a uid change: set it again,
                // so a pool child killed by the master takes this worker with it.
                let _ = itkd_sys::process::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
                // If the pool child died before that, the signal will never come: stop.
                if nix::unistd::getppid() != st.parent {
                    return Err(CloseConnection);
                }
                st.identity = Some(wanted.clone());
                st.server = Some(index);
                st.logs.keep_only(index);
            }
            Some(current) if *current == wanted => {}
            Some(_) => {
                drop(st);
                // mpm-itk: a different identity on a kept-alive connection cannot be had.
                log_error(
                    state,
                    index,
                    "mpm_itk",
                    Level::Warn,
                    Some(peer),
                    "Couldn't set uid/gid/priority, closing connection.",
                );
                return Err(CloseConnection);
            }
        }
        st.requests += 1;
        st.keep_alive_timeout = server.keep_alive_timeout;
    }
    // httpd's MaxKeepAliveRequests counts re-uses: the (N+1)th response closes.
    let max = server.max_keep_alive_requests;
    let last = max != 0 && state.borrow().requests > max;

    // Now, as the tenant: the .htaccess files along the path (AllowOverride permitting).
    let dir = {
        let mut reader = |level: &std::path::Path, overrides: &itkd_config::Overrides| {
            cached_htaccess(state, index, level, overrides, || {
                read_htaccess(shared, server, level, overrides)
            })
        };
        let walked = if wants_htaccess {
            walk::dir_config_with(server, Some(&mapped.path), &uri_path, &mut reader).map(Rc::new)
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
                return Ok(page(
                    config,
                    Some(server),
                    stop.status,
                    req,
                    stop.status == 500,
                ));
            }
        }
    };
    // mod_env: SetEnv/PassEnv/UnsetEnv of the merged sections (.htaccess included), for
    // CGI and Require env.
    let mut request_env = itkd_config::dirconf::EnvOp::apply(&dir.env, |k| std::env::var(k).ok());
    // mod_ssl's variables (CGI, `%{…}x`/`%{…}e` in logs).
    if let Some(t) = &tls {
        request_env.extend(t.variables());
    }
    {
        let mut st = state.borrow_mut();
        st.header_actions.clone_from(&dir.headers);
        st.header_env.clone_from(&request_env);
    }
    // Basic authentication (the password and group files are read as the tenant).
    let mut auth_log = Vec::new();
    let authenticated = authenticate(&dir, req, &uri_path, &mut auth_log);
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
            return Ok(page(config, Some(server), 500, req, true));
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
        env: &request_env,
        user: user.as_deref(),
        groups: &groups,
    };
    match authz::access(dir.require.as_ref(), &client) {
        authz::Access::Granted => {}
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
            return Ok(document_or_page(
                config, server, &dir, 401, req, headers, now,
            ));
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
            return Ok(page(config, Some(server), 500, req, true));
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
            return Ok(document_or_page(
                config,
                server,
                &dir,
                403,
                req,
                HeaderMap::new(),
                now,
            ));
        }
    }
    // mod_alias: Redirect, RedirectMatch, RedirectPermanent, RedirectTemp.
    let redirect_host = host.clone().unwrap_or_else(|| server_name.clone());
    if let Some((status, target)) = mapping::redirect_for(
        &dir.redirects,
        &uri_path,
        req.uri().query(),
        scheme,
        &redirect_host,
    ) {
        let mut headers = HeaderMap::new();
        if let Some(v) = target.and_then(|t| HeaderValue::from_str(&t).ok()) {
            headers.insert(header::LOCATION, v);
        }
        return Ok(document_or_page(
            config, server, &dir, status, req, headers, now,
        ));
    }
    // CGI: ScriptAlias, or the cgi-script handler by SetHandler/AddHandler (ExecCGI).
    let (split, known) = match itkd_http::cgi::split_path_info_with_meta(&mapped.path, &mapped.root)
    {
        Some((file, info, meta)) => {
            // The stat of the whole path, reused by the static handler.
            let known = (info.is_empty() && file == mapped.path).then_some(meta);
            (Some((file, info)), known)
        }
        None => (None, None),
    };
    let handler = if mapped.script {
        Some("cgi-script".to_owned())
    } else {
        split.as_ref().and_then(|(file, _)| handler_of(file, &dir))
    };
    let media_type = split
        .as_ref()
        .and_then(|(file, _)| file.file_name())
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
    let cgi = |dir| CgiContext {
        shared,
        state,
        server,
        dir,
        req,
        peer,
        local,
        index,
        host: host.as_deref(),
        now,
        env: &request_env,
    };
    // The script paths are boxed: their state is large (about 20 KiB), and hyper moves
    // this future (through the stack, into its heap slot) for every request, static
    // files too; each KiB moved is a page or so for a fresh worker to fault in.
    if let Some(action) = action.filter(|_| !mapped.script) {
        return Ok(Box::pin(run_action(cgi(&dir), &mapped, split, &action, body)).await);
    }
    if handler.as_deref() == Some("cgi-script") {
        return Ok(Box::pin(run_cgi(cgi(&dir), &mapped, split, body)).await);
    }
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
        return Ok(page(config, Some(server), 501, req, true));
    }
    if let Err(status) = discard_body(body, server, &dir).await {
        return Ok(page(config, Some(server), status, req, true));
    }
    let file_req = FileRequest {
        method: req.method().as_str(),
        headers: req.headers(),
        query: req.uri().query(),
        scheme,
        host: &redirect_host,
        now,
    };
    let response =
        match files::serve_with(&mapped, &dir, &config.mime_types, &file_req, known.as_ref()) {
            Outcome::Response {
                status,
                headers,
                body,
            } => build(config, status, headers, ResponseBody::from(body)),
            Outcome::Error {
                status,
                log,
                headers,
            } => {
                if let Some(message) = log {
                    log_error(state, index, "core", Level::Error, Some(peer), &message);
                }
                document_or_page(config, server, &dir, status, req, headers, now)
            }
        };
    let mut response = response;
    if last {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

fn host_of<B>(req: &Request<B>) -> Option<String> {
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
fn limits_exceeded<B>(server: &Server, req: &Request<B>) -> Option<(u16, Option<&'static str>)> {
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
fn section_walk(
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
fn framing_refusal<B>(req: &Request<B>) -> Option<u16> {
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

/// httpd's default handler reads and discards a request body before it answers
/// (`ap_discard_request_body`), so a malformed body gets its error status rather than a
/// 200 cut short by a close. The body is read in full here too (hyper sends the
/// `100 Continue` then): a bad chunk size, CRLF or extension is a 400, more than
/// LimitRequestBody a 413, and trailers are held to LimitRequestFields and
/// LimitRequestFieldSize like the head. Reading is bounded by RequestReadTimeout's body
/// stage and each read by `Timeout` (408).
async fn discard_body(mut body: Incoming, server: &Server, dir: &DirConfig) -> Result<(), u16> {
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
fn known_to_httpd(method: &http::Method) -> bool {
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

fn log_error(
    state: &RefCell<State>,
    index: usize,
    module: &str,
    level: Level,
    client: Option<SocketAddr>,
    message: &str,
) {
    let st = state.borrow();
    // Before the switch every server's logs are there; after it, only this vhost's.
    let logs = st.server_logs(index).or(st.logs.servers.first());
    if let Some(file) = logs.and_then(|l| l.error.as_ref()) {
        logs::write_error(file, module, level, client, message);
    }
}

fn server_header(config: &ServerConfig) -> HeaderValue {
    let banner = errors::server_banner(
        config.server_tokens,
        "itkd",
        env!("CARGO_PKG_VERSION"),
        "Unix",
        &[],
    );
    HeaderValue::from_str(&banner).unwrap_or(HeaderValue::from_static("itkd"))
}

fn build(
    config: &ServerConfig,
    status: u16,
    mut headers: HeaderMap,
    body: ResponseBody,
) -> Response<ResponseBody> {
    headers.insert(header::SERVER, server_header(config));
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.headers_mut() = headers;
    response
}

/// httpd's page for `status`, nothing else attached.
fn page<B>(
    config: &ServerConfig,
    server: Option<&Server>,
    status: u16,
    req: &Request<B>,
    close: bool,
) -> Response<ResponseBody> {
    error_response(config, server, status, req, close, None, HeaderMap::new())
}

/// httpd's error page for `status`; `close` adds `Connection: close` (httpd closes after
/// 400, 408, 413, 414, 500, 501, 503). `extra` headers (Location, Allow, Content-Range)
/// go out with it, and a Location is named in the page as httpd does.
fn error_response<B>(
    config: &ServerConfig,
    server: Option<&Server>,
    status: u16,
    req: &Request<B>,
    close: bool,
    notes: Option<&str>,
    extra: HeaderMap,
) -> Response<ResponseBody> {
    let host = host_of(req);
    let (host_name, host_port) = match host.as_deref().map(split_host) {
        Some((name, port)) => (name, port),
        None => (String::new(), None),
    };
    let banner = errors::server_banner(
        config.server_tokens,
        "itkd",
        env!("CARGO_PKG_VERSION"),
        "Unix",
        &[],
    );
    let name_fallback = server
        .and_then(|s| s.server_name.clone())
        .unwrap_or_default();
    let location = extra
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let expect = req
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok());
    let mut ctx = ErrorContext::new(req.method().as_str());
    ctx.location = location.as_deref();
    ctx.expect = expect;
    ctx.error_notes = notes;
    ctx.server_admin = server
        .and_then(|s| s.server_admin.as_deref())
        .unwrap_or(errors::DEFAULT_ADMIN);
    ctx.signature = match server.and_then(|s| s.dir.server_signature) {
        Some(ServerSignature::On) => Signature::On,
        Some(ServerSignature::Email) => Signature::EMail,
        Some(ServerSignature::Off) | None => Signature::Off,
    };
    ctx.banner = &banner;
    // UseCanonicalName Off: the name and port the client asked for.
    ctx.server_name = if host_name.is_empty() {
        &name_fallback
    } else {
        &host_name
    };
    ctx.port = host_port
        .or(server.and_then(|s| s.server_name_port))
        .unwrap_or(80);
    let page = errors::error_body(status, &ctx);
    let mut headers = extra;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(errors::CONTENT_TYPE),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(page.len()));
    if close || matches!(status, 400 | 408 | 413 | 414 | 500 | 501 | 503) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let body = if req.method() == http::Method::HEAD {
        Body::Empty
    } else {
        Body::Bytes(Bytes::from(page))
    };
    let mut response = build(config, status, headers, ResponseBody::from(body));
    // httpd's ap_send_error_response: only err_headers_out (`Header always`) goes out.
    response.extensions_mut().insert(Produced::ErrorPath);
    response
}

/// `AuthType Basic`: the user and groups the request proves, if any. A wrong password is
/// no user (logged, as httpd's AH01617); an unreadable password file is an error (500).
/// `log` receives what the error log should say besides a failure (malformed lines of
/// the password file, password mismatches, unknown users), as httpd's mod_auth_basic.
fn authenticate(
    dir: &DirConfig,
    req: &Request<()>,
    uri_path: &str,
    log: &mut Vec<(Level, String)>,
) -> Result<(Option<String>, Vec<String>), String> {
    if dir.auth_basic != Some(true) {
        return Ok((None, Vec::new()));
    }
    let Some((name, password)) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(itkd_http::auth::basic_credentials)
    else {
        return Ok((None, Vec::new()));
    };
    let Some(file) = &dir.auth_user_file else {
        return Err("AH01618: AuthType Basic without AuthUserFile".to_owned());
    };
    let users = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "AH01620: Could not open password file: {} ({e})",
            file.display()
        )
    })?;
    let check = itkd_http::auth::read_htpasswd(&users, &name, &password);
    for bad in &check.malformed {
        log.push((
            Level::Warn,
            format!(
                "{}:{}: ignoring a malformed password line ({})",
                file.display(),
                bad.line,
                bad.reason
            ),
        ));
    }
    // Not granted: 401, like any unauthenticated request, with httpd's log line.
    match check.verdict {
        Verdict::Granted => {}
        Verdict::Mismatch => {
            log.push((
                Level::Error,
                format!(
                    "AH01617: user {name}: authentication failure for \"{uri_path}\": Password Mismatch"
                ),
            ));
            return Ok((None, Vec::new()));
        }
        Verdict::NoSuchUser => {
            log.push((
                Level::Error,
                format!("AH01618: user {name} not found: {uri_path}"),
            ));
            return Ok((None, Vec::new()));
        }
    }
    let groups = match &dir.auth_group_file {
        Some(f) => std::fs::read_to_string(f)
            .map(|t| itkd_http::auth::groups_of(&t, &name))
            .map_err(|e| format!("AH01664: Could not open group file: {} ({e})", f.display()))?,
        None => Vec::new(),
    };
    Ok((Some(name), groups))
}

/// `read` (one directory's `.htaccess`), remembered for this process's later requests:
/// a worker serves one connection as one tenant, so its keep-alive requests reuse what
/// the first ones read (httpd re-reads per request; an edit shows on the next
/// connection). Nothing crosses processes, so no tenant ever sees another's results.
fn cached_htaccess(
    state: &RefCell<State>,
    index: usize,
    level: &std::path::Path,
    overrides: &itkd_config::Overrides,
    read: impl FnOnce() -> Result<Option<itkd_config::Htaccess>, walk::HtaccessStop>,
) -> Result<Option<itkd_config::Htaccess>, walk::HtaccessStop> {
    let hit = state
        .borrow()
        .htaccess_cache
        .iter()
        .find(|(i, dir, o, _)| *i == index && dir == level && o == overrides)
        .map(|(_, _, _, result)| result.clone());
    if let Some(result) = hit {
        return result;
    }
    let result = read();
    let mut st = state.borrow_mut();
    if st.htaccess_cache.len() >= HTACCESS_CACHE_ENTRIES {
        st.htaccess_cache.clear();
    }
    st.htaccess_cache.push((
        index,
        level.to_path_buf(),
        overrides.clone(),
        result.clone(),
    ));
    result
}

/// One directory's `.htaccess` (every AccessFileName), read as the tenant: missing is
/// nothing, unreadable is a 403 and a directive it may not hold a 500, with httpd's lines.
fn read_htaccess(
    shared: &Shared,
    server: &Server,
    level: &std::path::Path,
    overrides: &itkd_config::Overrides,
) -> Result<Option<itkd_config::Htaccess>, walk::HtaccessStop> {
    let mut found: Option<itkd_config::Htaccess> = None;
    for name in &server.access_file_names {
        let path = level.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(walk::HtaccessStop {
                    status: 403,
                    log: format!(
                        "(13)Permission denied: AH00529: {} pcfg_openfile: unable to check htaccess file, ensure it is readable and that '{}/' is executable",
                        path.display(),
                        level.display().to_string().trim_end_matches('/')
                    ),
                });
            }
            // A directory named .htaccess and the like: httpd treats it as unreadable.
            Err(e) => {
                return Err(walk::HtaccessStop {
                    status: 403,
                    log: format!("{}: {e}", path.display()),
                })
            }
        };
        let (htaccess, diagnostics) = itkd_config::load_htaccess(
            &bytes,
            &path,
            &shared.parsed,
            overrides,
            &crate::system::RealSystem,
        );
        if let Some(e) = diagnostics
            .iter()
            .find(|d| d.severity == itkd_config::Severity::Error)
        {
            // httpd: "/path/.htaccess: AssignUserID not allowed here" (no line number).
            let directive = e.directive.as_deref().unwrap_or("");
            let log = if e.message.starts_with("Invalid command") || directive.is_empty() {
                format!("{}: {}", path.display(), e.message)
            } else {
                format!("{}: {directive} {}", path.display(), e.message)
            };
            return Err(walk::HtaccessStop { status: 500, log });
        }
        found = Some(match found {
            None => htaccess,
            Some(mut before) => {
                before.dir = before.dir.merge(&htaccess.dir);
                before.files.extend(htaccess.files);
                before
            }
        });
    }
    Ok(found)
}

/// The handler for a file: `SetHandler`, else the last `AddHandler` of one of its
/// extensions (mod_mime), minus `RemoveHandler`.
fn handler_of(file: &std::path::Path, dir: &DirConfig) -> Option<String> {
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

/// What a CGI request needs of the request being handled.
struct CgiContext<'a> {
    shared: &'a Shared,
    state: &'a RefCell<State>,
    server: &'a Server,
    dir: &'a DirConfig,
    req: &'a Request<()>,
    peer: SocketAddr,
    local: SocketAddr,
    index: usize,
    host: Option<&'a str>,
    now: SystemTime,
    env: &'a [(String, String)],
}

/// httpd 2.4.54+'s default LimitRequestBody: 1 GiB.
const DEFAULT_LIMIT_REQUEST_BODY: u64 = 1 << 30;

async fn run_cgi(
    c: CgiContext<'_>,
    mapped: &mapping::Mapped,
    split: Option<(std::path::PathBuf, String)>,
    body: Incoming,
) -> Response<ResponseBody> {
    let config = &c.shared.config;
    let log = |status: u16, message: &str| {
        log_error(c.state, c.index, "cgi", Level::Error, Some(c.peer), message);
        document_or_page(
            config,
            c.server,
            c.dir,
            status,
            c.req,
            HeaderMap::new(),
            c.now,
        )
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
        redirect: None,
    };
    exec_cgi(c, invocation, body).await
}

/// A script reached through a symlink its directory's Options do not allow: 403 and
/// httpd's AH00037 line, as for static files.
fn refuse_symlink(
    c: &CgiContext<'_>,
    root: &std::path::Path,
    script: &std::path::Path,
    dir: &DirConfig,
) -> Option<Response<ResponseBody>> {
    match files::check_symlinks(root, script, dir.effective_options())? {
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
            Some(document_or_page(
                &c.shared.config,
                c.server,
                c.dir,
                status,
                c.req,
                headers,
                c.now,
            ))
        }
        Outcome::Response { .. } => None,
    }
}

/// Which script runs, and the CGI variables that say how it was reached.
struct Invocation {
    script: std::path::PathBuf,
    script_name: String,
    path_info: String,
    path_translated: Option<std::path::PathBuf>,
    /// Reached through `Action`: REDIRECT_STATUS and REDIRECT_URL.
    redirect: Option<(u16, String)>,
}

/// `Action handler-or-type /script-url [virtual]`: the file's handler (or media type)
/// names a CGI that handles it. The script sees the file as PATH_INFO/PATH_TRANSLATED
/// and REDIRECT_STATUS=200, as php-cgi's `cgi.force_redirect` wants (httpd's mod_actions).
async fn run_action(
    c: CgiContext<'_>,
    mapped: &mapping::Mapped,
    split: Option<(std::path::PathBuf, String)>,
    action: &itkd_config::dirconf::Action,
    body: Incoming,
) -> Response<ResponseBody> {
    let config = &c.shared.config;
    if split.is_none() && !action.is_virtual {
        log_error(
            c.state,
            c.index,
            "core",
            Level::Error,
            Some(c.peer),
            &format!("AH00128: File does not exist: {}", mapped.path.display()),
        );
        return document_or_page(config, c.server, c.dir, 404, c.req, HeaderMap::new(), c.now);
    }
    let target = action.script.split('?').next().unwrap_or(&action.script);
    let script = mapping::normalize(target, c.server.allow_encoded_slashes)
        .ok()
        .and_then(|uri| {
            let m = mapping::map(c.server, &uri);
            let (file, _) = itkd_http::cgi::split_path_info(&m.path, &m.root)?;
            // The action script's own directory decides its symlink options (httpd).
            let its_dir = walk::dir_config(c.server, Some(&file), &uri);
            Some((file, m.root, its_dir))
        });
    let Some((script, root, its_dir)) = script else {
        log_error(
            c.state,
            c.index,
            "actions",
            Level::Error,
            Some(c.peer),
            &format!(
                "AH00128: File does not exist: action script {}",
                action.script
            ),
        );
        return document_or_page(config, c.server, c.dir, 404, c.req, HeaderMap::new(), c.now);
    };
    if let Some(refusal) = refuse_symlink(&c, &root, &script, &its_dir) {
        return refusal;
    }
    let invocation = Invocation {
        script,
        script_name: target.to_owned(),
        path_info: mapped.uri_path.clone(),
        path_translated: Some(mapped.path.clone()),
        redirect: Some((200, mapped.uri_path.clone())),
    };
    exec_cgi(c, invocation, body).await
}

async fn exec_cgi(c: CgiContext<'_>, inv: Invocation, body: Incoming) -> Response<ResponseBody> {
    let config = &c.shared.config;
    let Invocation {
        script,
        script_name,
        path_info,
        path_translated,
        redirect,
    } = inv;
    let limit = c
        .dir
        .limit_request_body
        .unwrap_or(DEFAULT_LIMIT_REQUEST_BODY);
    let chunked = c.req.headers().get(header::TRANSFER_ENCODING).is_some();
    let content_length: Option<u64> = if chunked {
        None
    } else {
        c.req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    if limit != 0 && content_length.is_some_and(|n| n > limit) {
        return page(config, Some(c.server), 413, c.req, true);
    }
    let (host_name, host_port) = c.host.map(split_host).unwrap_or_default();
    let server_name = if host_name.is_empty() {
        c.server.server_name.clone().unwrap_or_default()
    } else {
        host_name
    };
    let banner = errors::server_banner(
        config.server_tokens,
        "itkd",
        env!("CARGO_PKG_VERSION"),
        "Unix",
        &[],
    );
    let protocol = if c.req.version() == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let request_uri = c.req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let env = itkd_http::cgi::environment(&itkd_http::cgi::CgiRequest {
        method: c.req.method().as_str(),
        request_uri,
        query: c.req.uri().query(),
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
        script_filename: &script,
        script_name: &script_name,
        path_info: &path_info,
        path_translated,
        https: c.state.borrow().tls.is_some(),
        redirect: redirect
            .as_ref()
            .map(|(status, url)| (*status, url.as_str())),
        content_length,
        extra: c.env,
    });
    let error_file = {
        let st = c.state.borrow();
        st.logs.servers.first().and_then(|l| l.error.clone())
    };
    let peer = c.peer;
    let stderr_line = move |line: &str| {
        if let Some(file) = &error_file {
            logs::write_error(file, "cgi", Level::Error, Some(peer), line);
        }
    };
    match crate::cgi::run(
        &script,
        env,
        body,
        Some(limit),
        c.server.timeout,
        crate::reqtimeout::BodyClock::new(c.server.read_timeouts.body, c.server.timeout),
        stderr_line,
    )
    .await
    {
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
            document_or_page(
                config,
                c.server,
                c.dir,
                status,
                c.req,
                HeaderMap::new(),
                c.now,
            )
        }
        crate::cgi::CgiResult::Head { head, output } => {
            if let Some(target) = head.local_redirect {
                // RFC 3875 §6.2.2: a local redirect is served as if requested.
                drop(output);
                let path = target.split('?').next().unwrap_or("/");
                let Ok(uri) = mapping::normalize(path, c.server.allow_encoded_slashes) else {
                    return page(config, Some(c.server), 500, c.req, true);
                };
                let mapped = mapping::map(c.server, &uri);
                let inner = walk::dir_config(c.server, Some(&mapped.path), &uri);
                let get = FileRequest {
                    method: "GET",
                    headers: &HeaderMap::new(),
                    query: None,
                    scheme: "http",
                    host: "",
                    now: c.now,
                };
                return match files::serve(&mapped, &inner, &config.mime_types, &get) {
                    Outcome::Response {
                        status,
                        headers,
                        body,
                    } => build(config, status, headers, ResponseBody::from(body)),
                    Outcome::Error {
                        status, headers, ..
                    } => document_or_page(config, c.server, &inner, status, c.req, headers, c.now),
                };
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

/// An error after the per-directory configuration is known: its `ErrorDocument` if one
/// is set for `status` (a message, a local URL served with the error status, or a
/// remote URL redirected to with 302), else httpd's page.
fn document_or_page<B>(
    config: &ServerConfig,
    server: &Server,
    dir: &DirConfig,
    status: u16,
    req: &Request<B>,
    extra: HeaderMap,
    now: SystemTime,
) -> Response<ResponseBody> {
    let document = dir
        .error_documents
        .iter()
        .rev()
        .find(|(c, _)| *c == status)
        .map(|(_, d)| d);
    match document {
        Some(ErrorDocument::Text(text)) => {
            let mut headers = extra;
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(errors::CONTENT_TYPE),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
            let body = if req.method() == http::Method::HEAD {
                Body::Empty
            } else {
                Body::Bytes(Bytes::from(text.clone()))
            };
            let mut response = build(config, status, headers, ResponseBody::from(body));
            response.extensions_mut().insert(Produced::ErrorPath);
            response
        }
        Some(ErrorDocument::Remote(url)) => {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(url) {
                headers.insert(header::LOCATION, v);
            }
            error_response(config, Some(server), 302, req, false, None, headers)
        }
        Some(ErrorDocument::Local(path)) => {
            // An internal redirect to the document, keeping the error status (httpd).
            let target = path.split('?').next().unwrap_or(path);
            let served = mapping::normalize(target, server.allow_encoded_slashes)
                .ok()
                .and_then(|uri| {
                    let mapped = mapping::map(server, &uri);
                    let inner = walk::dir_config(server, Some(&mapped.path), &uri);
                    let get = FileRequest {
                        method: if req.method() == http::Method::HEAD {
                            "HEAD"
                        } else {
                            "GET"
                        },
                        headers: &HeaderMap::new(),
                        query: None,
                        scheme: "http",
                        host: "",
                        now,
                    };
                    match files::serve(&mapped, &inner, &config.mime_types, &get) {
                        Outcome::Response {
                            status: 200,
                            headers,
                            body,
                        } => Some((headers, body)),
                        _ => None,
                    }
                });
            match served {
                Some((headers, body)) => build(config, status, headers, ResponseBody::from(body)),
                None => error_response(config, Some(server), status, req, false, None, extra),
            }
        }
        Some(ErrorDocument::Default) | None => {
            error_response(config, Some(server), status, req, false, None, extra)
        }
    }
}

/// One access-log line per answered request (a request dropped by a uid change is not
/// logged, as in mpm-itk), written when the response head is ready.
fn access_log<B>(
    shared: &Shared,
    state: &RefCell<State>,
    req: &Request<B>,
    response: &Response<ResponseBody>,
    peer: SocketAddr,
    local: SocketAddr,
    start: SystemTime,
) {
    let st = state.borrow();
    let index = st.current;
    let Some(logs) = st.server_logs(index) else {
        return;
    };
    if logs.access.is_empty() {
        return;
    }
    let server = shared.config.server(index);
    let mut e = LogEntry::new(peer, local, start);
    // `%{…}e` and `%{…}x`: the request's variables, mod_ssl's included.
    e.env.clone_from(&st.header_env);
    if let Some(t) = &st.tls {
        for (k, v) in t.variables() {
            if !e.env.iter().any(|(name, _)| *name == k) {
                e.env.push((k, v));
            }
        }
    }
    e.duration = start.elapsed().unwrap_or_default();
    let version = match req.version() {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_09 => "HTTP/0.9",
        _ => "HTTP/1.1",
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().to_string(), |pq| pq.as_str().to_owned());
    e.request_line = format!("{} {target} {version}", req.method()).into_bytes();
    e.method = req.method().as_str().to_owned();
    e.protocol = version.to_owned();
    e.uri_path = req.uri().path().as_bytes().to_vec();
    e.query = req.uri().query().map(|q| q.as_bytes().to_vec());
    e.status = response.status().as_u16();
    e.request_headers = req.headers().clone();
    e.response_headers = response.headers().clone();
    let body: u64 = if req.method() == http::Method::HEAD {
        0
    } else {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    e.body_bytes = body;
    // Status line, headers (hyper adds Date: 37 bytes with its CRLF), blank line.
    let head: usize = 17
        + response
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 37
        + 2;
    e.bytes_sent = body + head as u64;
    e.server_name = server.server_name.clone().unwrap_or_default();
    let (host_name, host_port) = host_of(req).map(|h| split_host(&h)).unwrap_or_default();
    e.host_name = if host_name.is_empty() {
        e.server_name.clone()
    } else {
        host_name
    };
    e.canonical_port = host_port.or(server.server_name_port).unwrap_or(80);
    e.pid = std::process::id();
    e.keepalives = st.requests;
    let closes = response
        .headers()
        .get(header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    e.conn_status = if closes {
        ConnStatus::Close
    } else {
        ConnStatus::KeepAlive
    };
    logs::write_access(logs, &e);
}

/// mod_headers: the request's `Header` actions on the response about to be sent.
fn apply_header_actions(
    state: &RefCell<State>,
    response: &mut Response<ResponseBody>,
    received: SystemTime,
) {
    let st = state.borrow();
    if st.header_actions.is_empty() {
        return;
    }
    let produced = response
        .extensions()
        .get::<Produced>()
        .copied()
        .unwrap_or_default();
    let req = itkd_http::headers::Request {
        env: &st.header_env,
        received,
        now: SystemTime::now(),
    };
    itkd_http::headers::apply(&st.header_actions, produced, response.headers_mut(), &req);
}

/// `name[:port]` of a Host header.
fn split_host(host: &str) -> (String, Option<u16>) {
    match itkd_config::vhost::split_host_port(host) {
        Ok((name, port)) => (name.to_owned(), port.and_then(|p| p.parse().ok())),
        Err(_) => (host.to_owned(), None),
    }
}

/// A response body: bytes in memory or a file region read in chunks (blocking reads are
/// fine: this process serves one connection).
pub struct ResponseBody {
    body: Body,
    /// The connection's state, marked idle when the body is done (dropped).
    state: Option<Rc<RefCell<State>>>,
    /// A CGI script's output, streamed as it comes.
    cgi: Option<Box<crate::cgi::CgiOutput>>,
}

impl From<Body> for ResponseBody {
    fn from(body: Body) -> Self {
        ResponseBody {
            body,
            state: None,
            cgi: None,
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            if let Ok(mut st) = state.try_borrow_mut() {
                st.busy = false;
                st.idle_since = Instant::now();
            }
        }
    }
}

/// Read size for files: large enough for few syscalls, small enough to stay light.
const CHUNK: u64 = 256 * 1024;

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Some(output) = &mut this.cgi {
            return output
                .poll_chunk(_cx)
                .map(|chunk| chunk.map(|r| r.map(Frame::data)));
        }
        match &mut this.body {
            Body::Empty => Poll::Ready(None),
            Body::Bytes(b) => {
                if b.is_empty() {
                    return Poll::Ready(None);
                }
                let data = std::mem::take(b);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Body::File { file, offset, len } => {
                if *len == 0 {
                    return Poll::Ready(None);
                }
                let want = usize::try_from((*len).min(CHUNK)).unwrap_or(0);
                match itkd_sys::fileio::pread_new(file, *offset, want) {
                    Ok(buf) if buf.is_empty() => {
                        Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into())))
                    }
                    Ok(buf) => {
                        let n = buf.len();
                        *len -= n as u64;
                        *offset += n as u64;
                        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
                    }
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.cgi.is_some() {
            return false;
        }
        match &self.body {
            Body::Empty => true,
            Body::Bytes(b) => b.is_empty(),
            Body::File { len, .. } => *len == 0,
        }
    }
}

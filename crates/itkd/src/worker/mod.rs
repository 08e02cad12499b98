//! The worker: one process per connection, forked by a pool child right after `accept`.
//!
//! It builds its own current-thread tokio runtime (no thread, ever), lets hyper parse the
//! first request head, routes it (vhost, path, per-directory config, identity), switches
//! credentials once and irreversibly, then serves. A later request on the same connection
//! that needs other credentials gets no response: the connection is closed, as mpm-itk.

use std::cell::RefCell;
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
use itkd_sys::credentials::{switch_to, AsTenant, Nice};
use itkd_sys::scoreboard::Scoreboard;

use crate::logs::{self, Logs};
use crate::master::Shared;
use itkd_config::dirconf::{DirConfig, ErrorDocument, ServerSignature};
use itkd_http::errors::{self, ErrorContext, Signature};
use itkd_http::headers::Produced;
use itkd_http::logfmt::{ConnStatus, Level, LogEntry};

mod access;
mod access_log;
mod admit;
mod auth;
mod body;
mod handler;
mod htaccess;
mod io;
mod locate;
mod pages;
mod scripts;
mod serve;

use access::*;
use access_log::*;
use admit::*;
use auth::*;
use body::*;
use handler::*;
use htaccess::*;
use io::*;
use locate::*;
use pages::*;
use scripts::*;
use serve::*;

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
    let state = Rc::new(RefCell::new(State::new(
        logs,
        shared.config.main.keep_alive_timeout,
    )));
    // A LocalSet: the CGI runner spawns !Send tasks (stderr to the log) on this thread.
    let local_set = tokio::task::LocalSet::new();
    // Boxed: the connection's future (6.7 KiB) would otherwise be copied on the stack by
    // each layer of block_on, pages a fresh worker faults in.
    let code = local_set.block_on(
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
                return serve_http(conn, stream).await;
            };
            let session =
                crate::tls::handshake(&certs, &shared.config, stream, local, default).await;
            // Other vhosts' keys go now; the chosen one lives on in the session's
            // configuration (ring frees keys without wiping them).
            drop(certs);
            match session {
                Ok((tls, info)) => {
                    state.borrow_mut().tls = Some(info);
                    serve_http(conn, tls).await
                }
                Err(crate::tls::NoSession::PlainHttp(stream)) => {
                    state.borrow_mut().plain_on_tls = true;
                    serve_http(conn, stream).await
                }
                Err(crate::tls::NoSession::Closed) => 0,
            }
        }),
    );
    // The connection is closed; scripts still at work keep this process (cgi.rs).
    local_set.block_on(&runtime, crate::cgi::wait_for_scripts());
    code
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
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Conn {
        shared,
        state,
        peer,
        local,
        ..
    } = conn;
    let main = &shared.config.main;
    // mod_reqtimeout's header stage (its first limit; the MinRate extension is not
    // applied to headers), else Timeout.
    let header_timeout = if main.read_timeouts.header.init.is_zero() {
        main.timeout
    } else {
        main.read_timeouts.header.init.min(main.timeout)
    };
    let io = hyper_util::rt::TokioIo::new(Watched {
        inner: io,
        config: &shared.config,
        state: state.clone(),
        timeout: header_timeout,
        deadline: Some(Box::pin(tokio::time::sleep(header_timeout))),
        armed_at: 0,
        written_heads: 0,
        answer: None,
    });
    {
        let main = &shared.config.main;
        let service = hyper::service::service_fn(|req| {
            let state = state.clone();
            async move {
                {
                    let mut st = state.borrow_mut();
                    st.phase = Phase::Busy;
                    st.head_started = false;
                    st.heads = st.heads.wrapping_add(1);
                }
                let start = SystemTime::now();
                let (parts, body) = req.into_parts();
                let req = Request::from_parts(parts, ());
                let result = handle(conn, &req, body).await;
                result.map(|mut response| {
                    apply_header_actions(&state, &mut response, start);
                    let entry = access_log(shared, &state, &req, &response, peer, local, start);
                    // The body writes the log line once hyper is done with it (the bytes
                    // and time of the whole response), and marks the connection idle.
                    let body = response.body_mut();
                    body.log = entry.map(|(entry, index)| PendingLog { entry, index });
                    body.state = Some(state.clone());
                    response
                })
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            // The header timeout is `Watched`'s (it can still answer 408); hyper's is
            // only a backstop behind it.
            .header_read_timeout(header_timeout + Duration::from_secs(2))
            .keep_alive(main.keep_alive)
            // httpd's spelling of field names (`Content-Type`, `Last-Modified`), not
            // hyper's lower case; `Watched` puts back the few title case gets wrong
            // (`ETag`, `WWW-Authenticate`).
            .title_case_headers(true)
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
/// `Watched`'s header timeout (Timeout, or RequestReadTimeout's header stage).
async fn idle_watch(state: &RefCell<State>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let st = state.borrow();
        if let Phase::Waiting { since } = st.phase {
            if st.requests > 0 && since.elapsed() >= st.keep_alive_timeout {
                return;
            }
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

/// Where a connection is: waiting for a request head, or handling a request and sending
/// its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Since `since` (the connection's start, or the end of the last response).
    Waiting { since: Instant },
    /// A request was handed over; its response is being produced or sent.
    Busy,
}

/// Per connection, across its requests.
pub struct State {
    /// The identity this process switched to (set once, never changed), with the proof
    /// of the switch that opening a tenant's file takes.
    identity: Option<(Identity, AsTenant)>,
    /// The vhost of the first request (its logs are the only ones kept).
    server: Option<usize>,
    logs: Logs,
    requests: u32,
    /// Between requests or inside one (KeepAliveTimeout and the header clock read it).
    phase: Phase,
    /// A request line arrived since the last request was handed over (a head is under
    /// way: httpd's 408 if it does not complete in time).
    head_started: bool,
    /// Request heads handed over so far (the header clock of each is `Watched`'s).
    heads: u32,
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
    /// A new connection's state: no identity yet, every server's logs.
    fn new(logs: Logs, keep_alive_timeout: Duration) -> State {
        State {
            identity: None,
            server: None,
            logs,
            requests: 0,
            phase: Phase::Waiting {
                since: Instant::now(),
            },
            head_started: false,
            heads: 0,
            keep_alive_timeout,
            current: 0,
            parent: nix::unistd::getppid(),
            tls: None,
            plain_on_tls: false,
            header_actions: Vec::new(),
            header_env: Vec::new(),
            htaccess_cache: Vec::new(),
            last_walk: None,
        }
    }

    /// A request was handed over and its response is not done.
    fn busy(&self) -> bool {
        self.phase == Phase::Busy
    }

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

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
        board,
        slot,
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
        state: state.clone(),
        timeout: header_timeout,
        deadline: Some(Box::pin(tokio::time::sleep(header_timeout))),
        armed_at: 0,
        written_heads: 0,
        answer: None,
        page: timeout_page(shared),
    });
    {
        let main = &shared.config.main;
        let service = hyper::service::service_fn(|req| {
            let state = state.clone();
            async move {
                {
                    let mut st = state.borrow_mut();
                    st.busy = true;
                    st.head_started = false;
                    st.heads = st.heads.wrapping_add(1);
                }
                let start = SystemTime::now();
                let (parts, body) = req.into_parts();
                let req = Request::from_parts(parts, ());
                let result = handle(shared, &state, &req, body, peer, local, board, slot).await;
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

/// httpd's 408 page with `Connection: close`, as bytes for [`Watched`] to write.
fn timeout_page(shared: &Shared) -> Bytes {
    let config = &shared.config;
    let banner = errors::server_banner(
        config.server_tokens,
        "itkd",
        env!("CARGO_PKG_VERSION"),
        "Unix",
        &[],
    );
    let mut ctx = ErrorContext::new("GET");
    ctx.banner = &banner;
    let name = config.main.server_name.clone().unwrap_or_default();
    ctx.server_name = &name;
    let page = errors::error_body(408, &ctx);
    Bytes::from(format!(
        "HTTP/1.1 408 Request Timeout\r\nDate: {}\r\nServer: {banner}\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: {}\r\n\r\n{page}",
        httpdate::fmt_http_date(SystemTime::now()),
        page.len(),
        errors::CONTENT_TYPE
    ))
}

/// The connection's bytes as hyper reads them, with the request-head timeout hyper
/// cannot answer: httpd sends 408 for a head whose request line arrived but not the
/// rest within the header timeout, and closes silently on nothing or a partial request
/// line. The clock starts with the connection, then with the first bytes of each later
/// head (a kept-alive connection's wait for them is KeepAliveTimeout's, `idle_watch`).
struct Watched<T> {
    inner: T,
    state: Rc<RefCell<State>>,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// `State::heads` when the clock started: a head handed over since stops it.
    armed_at: u32,
    /// `State::heads` when the last response head was written (see [`SPELLINGS`]).
    written_heads: u32,
    /// The 408 being written: what is left of it.
    answer: Option<Bytes>,
    page: Bytes,
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.answer.is_none() {
            let before = buf.filled().len();
            let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
            let fresh = &buf.filled()[before..];
            let (busy, heads) = this
                .state
                .try_borrow()
                .map_or((true, this.armed_at), |st| (st.busy, st.heads));
            if busy || heads != this.armed_at {
                // The head was handed over: this clock is done.
                this.deadline = None;
            }
            if !busy && !fresh.is_empty() {
                if this.deadline.is_none() {
                    this.deadline = Some(Box::pin(tokio::time::sleep(this.timeout)));
                    this.armed_at = heads;
                }
                if fresh.contains(&b'\n') {
                    if let Ok(mut st) = this.state.try_borrow_mut() {
                        st.head_started = true;
                    }
                }
            }
            if !matches!(polled, Poll::Pending) {
                return polled;
            }
            let Some(deadline) = this.deadline.as_mut() else {
                return Poll::Pending;
            };
            if std::future::Future::poll(deadline.as_mut(), cx).is_pending() {
                return Poll::Pending;
            }
            this.deadline = None;
            let line_in = this
                .state
                .try_borrow()
                .is_ok_and(|st| st.head_started && !st.busy && st.heads == this.armed_at);
            if !line_in {
                // Nothing, or part of a request line: closed without a word.
                return Poll::Ready(Ok(()));
            }
            this.answer = Some(this.page.clone());
        }
        // Write the 408, then end the input: hyper closes the connection.
        while let Some(rest) = this.answer.as_mut().filter(|r| !r.is_empty()) {
            match Pin::new(&mut this.inner).poll_write(cx, rest) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    let _ = rest.split_to(n);
                }
                Poll::Ready(_) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        if Pin::new(&mut this.inner).poll_flush(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
}

/// The field names hyper's title case spells otherwise than httpd (same lengths, so the
/// bytes hyper counts do not change).
const SPELLINGS: &[(&[u8], &[u8])] = &[
    (b"\r\nEtag:", b"\r\nETag:"),
    (b"\r\nWww-Authenticate:", b"\r\nWWW-Authenticate:"),
    (b"\r\nContent-Md5:", b"\r\nContent-MD5:"),
];

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Watched` with a fresh state whose next response head is due.
    fn watched() -> Watched<()> {
        let mut state = State::new(Logs::default(), Duration::from_secs(5));
        state.busy = true;
        state.heads = 1;
        let state = Rc::new(RefCell::new(state));
        Watched {
            inner: (),
            state,
            timeout: Duration::from_secs(1),
            deadline: None,
            armed_at: 0,
            written_heads: 0,
            answer: None,
            page: Bytes::new(),
        }
    }

    #[test]
    fn head_field_names_get_httpds_spelling_and_bodies_stay_as_they_are() {
        let w = watched();
        // (bytes written, what goes out instead if anything, whether the head ends there)
        let cases: &[(&str, Option<&str>, bool)] = &[
            (
                "HTTP/1.1 200 OK\r\nEtag: \"x\"\r\nContent-Length: 0\r\n\r\n",
                Some("HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n"),
                true,
            ),
            (
                "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic\r\n\r\n\r\nEtag: body",
                Some("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n\r\nEtag: body"),
                true,
            ),
            ("HTTP/1.1 200 OK\r\nDate: x\r\n\r\n", None, true),
            // Not a head: a body chunk is never touched.
            ("\r\nEtag: x\r\n\r\n", None, false),
            // A head cut before its end: fixed as far as it goes.
            (
                "HTTP/1.1 200 OK\r\nEtag: x",
                Some("HTTP/1.1 200 OK\r\nETag: x"),
                false,
            ),
        ];
        for (input, fixed, end) in cases {
            let (got, got_end) = w.respell(input.as_bytes());
            assert_eq!(
                got.as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                fixed.map(str::to_owned),
                "{input:?}"
            );
            let head_end = input.find("\r\n\r\n").map(|i| i + 4);
            assert_eq!(got_end, head_end.filter(|_| *end), "{input:?}");
        }
    }
}

impl<T> Watched<T> {
    /// A response head is due: a request was handed over since the last head written.
    fn head_due(&self) -> bool {
        self.state
            .try_borrow()
            .is_ok_and(|st| st.heads != self.written_heads)
    }

    /// For the first bytes of a response head: a copy with httpd's spelling of the field
    /// names (if any differs), and where the head ends in `buf`. Only head bytes are
    /// touched, never a body's.
    fn respell(&self, buf: &[u8]) -> (Option<Vec<u8>>, Option<usize>) {
        if !self.head_due() || !buf.starts_with(b"HTTP/1.") {
            return (None, None);
        }
        // One pass over the line starts of the head: a dozen short comparisons.
        let mut fixed: Option<Vec<u8>> = None;
        let mut at = 0;
        while let Some(i) = find(&buf[at..], b"\r\n") {
            at += i;
            let line = &buf[at..];
            if line.starts_with(b"\r\n\r\n") {
                return (fixed, Some(at + 4));
            }
            if let Some((wrong, right)) = SPELLINGS.iter().find(|(w, _)| line.starts_with(w)) {
                fixed.get_or_insert_with(|| buf.to_vec())[at..at + wrong.len()]
                    .copy_from_slice(right);
            }
            at += 2;
        }
        (fixed, None)
    }

    /// `n` bytes of `buf` went out: once past the end of a final head (not a `100
    /// Continue`), the next head is due only after the next request.
    fn wrote(&mut self, n: usize, buf: &[u8], end: Option<usize>) {
        if end.is_some_and(|end| n >= end) && !buf.starts_with(b"HTTP/1.1 100 ") {
            if let Ok(st) = self.state.try_borrow() {
                self.written_heads = st.heads;
            }
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let (fixed, end) = this.respell(buf);
        let polled = Pin::new(&mut this.inner).poll_write(cx, fixed.as_deref().unwrap_or(buf));
        if let Poll::Ready(Ok(n)) = polled {
            this.wrote(n, buf, end);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().position(|b| !b.is_empty());
        let (fixed, end) = first.map_or((None, None), |i| this.respell(&bufs[i]));
        let polled = match (&fixed, first) {
            (Some(copy), Some(i)) => {
                let mut slices: Vec<std::io::IoSlice<'_>> = bufs.to_vec();
                slices[i] = std::io::IoSlice::new(copy);
                Pin::new(&mut this.inner).poll_write_vectored(cx, &slices)
            }
            _ => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
        };
        if let (Poll::Ready(Ok(n)), Some(i)) = (&polled, first) {
            // Bytes before the first non-empty slice: none (they are empty).
            this.wrote(*n, &bufs[i], end);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Resolves once the connection has waited longer than KeepAliveTimeout for its next
/// request (httpd closes it then, without a response). The first request's wait is
/// `Watched`'s header timeout (Timeout, or RequestReadTimeout's header stage).
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
    /// A request line arrived since the last request was handed over (a head is under
    /// way: httpd's 408 if it does not complete in time).
    head_started: bool,
    /// Request heads handed over so far (the header clock of each is `Watched`'s).
    heads: u32,
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
    /// A new connection's state: no identity yet, every server's logs.
    fn new(logs: Logs, keep_alive_timeout: Duration) -> State {
        State {
            identity: None,
            server: None,
            logs,
            requests: 0,
            busy: false,
            head_started: false,
            heads: 0,
            idle_since: Instant::now(),
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
    // httpd's fix_hostname: a Host that is no host name is a 400 (`Host: a b`), before
    // any vhost is chosen.
    if let Some(h) = host.as_deref().filter(|h| !valid_host(h)) {
        log_error(
            state,
            0,
            "core",
            Level::Debug,
            Some(peer),
            &format!("AH00550: Client sent malformed Host header: {h}"),
        );
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
    let (dir, _) = section_walk(state, server, index, &mapped.path, &uri_path);
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

    let redirect_host = host.clone().unwrap_or_else(|| server_name.clone());
    let ctx = Ctx {
        shared,
        state,
        req,
        peer,
        local,
        index,
        server,
        host: host.as_deref(),
        redirect_host: &redirect_host,
        scheme,
        now,
        identity: &wanted,
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

/// The request being served once the worker is the tenant: what every stage after the
/// credential switch reads. An internal redirect serves another URI with the same one.
struct Ctx<'a> {
    shared: &'a Shared,
    state: &'a RefCell<State>,
    req: &'a Request<()>,
    peer: SocketAddr,
    local: SocketAddr,
    index: usize,
    server: &'a Server,
    host: Option<&'a str>,
    /// The Host header as sent, else the ServerName (mod_dir's and mod_alias's redirects).
    redirect_host: &'a str,
    scheme: &'static str,
    now: SystemTime,
    /// The identity this worker switched to for the request.
    identity: &'a Identity,
}

/// A URI to serve, and how the request came to it.
struct Target {
    /// Normalized, `%`-decoded.
    uri_path: String,
    query: Option<String>,
    reached: Reached,
}

/// How a [`Target`] was reached.
#[derive(Clone)]
enum Reached {
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
    fn method<'r>(&self, req: &'r Request<()>) -> &'r str {
        match &self.reached {
            Reached::Request | Reached::Index | Reached::Action { .. } => req.method().as_str(),
            _ if req.method() == http::Method::HEAD => "HEAD",
            _ => "GET",
        }
    }

    /// The request this one was redirected from (REDIRECT_STATUS, REDIRECT_URL,
    /// REDIRECT_QUERY_STRING), if httpd marks it so.
    fn redirected(&self) -> Option<(u16, &Target)> {
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
    fn error_document(&self) -> Option<(u16, &HeaderMap)> {
        match &self.reached {
            Reached::Error {
                status, headers, ..
            } => Some((*status, headers)),
            Reached::Action { from, .. } => from.error_document(),
            _ => None,
        }
    }

    fn error_status(&self) -> Option<u16> {
        self.error_document().map(|(status, _)| status)
    }
}

/// An internal redirect asked for by a stage: the response it rides on is never sent.
#[derive(Clone)]
struct InternalRedirect(Box<Target>);

/// httpd's default LimitInternalRecursion.
const LIMIT_INTERNAL_RECURSION: u32 = 10;

/// Serves `target` and every internal redirect it leads to (DirectoryIndex, a script's
/// local Location, an ErrorDocument), each through the whole path again: sections,
/// `.htaccess`, access control, handler. A loop, not recursion: each stage that wants
/// another URI answers with an [`InternalRedirect`] marker.
async fn serve(c: &Ctx<'_>, target: Target, body: Option<Incoming>) -> Response<ResponseBody> {
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
fn finish_error_document(
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
fn redirect_to(target: Target) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(Body::Empty));
    response
        .extensions_mut()
        .insert(InternalRedirect(Box::new(target)));
    response
}

/// One URI, as the tenant: `.htaccess` → authentication and authorization → mod_alias
/// redirects → the handler (Action, CGI, a handler itkd cannot run, static files).
async fn serve_once(
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
fn static_error(
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

/// httpd's fix_hostname: letters, digits, `-`, `_` and single dots, then an optional
/// `:port` of digits; or a bracketed IPv6 literal with an optional port.
fn valid_host(host: &str) -> bool {
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
fn boxed_trace<'a>(
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
async fn trace(
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
    env: &'a [(String, String)],
    target: &'a Target,
}

/// httpd 2.4.54+'s default LimitRequestBody: 1 GiB.
const DEFAULT_LIMIT_REQUEST_BODY: u64 = 1 << 30;

/// [`run_cgi`]'s future, built on the heap by a function of its own: built inline,
/// its ~20 KiB would sit in the stack frame of every request's poll (stack probes and
/// cold pages on the static path too; `perf annotate` showed them).
#[inline(never)]
fn boxed_cgi<'a>(
    c: CgiContext<'a>,
    mapped: &'a mapping::Mapped,
    split: Option<(std::path::PathBuf, String)>,
    body: Option<Incoming>,
) -> Pin<Box<dyn std::future::Future<Output = Response<ResponseBody>> + 'a>> {
    Box::pin(run_cgi(c, mapped, split, body))
}

async fn run_cgi(
    c: CgiContext<'_>,
    mapped: &mapping::Mapped,
    split: Option<(std::path::PathBuf, String)>,
    body: Option<Incoming>,
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
            c.target,
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
        pass_auth: c.dir.cgi_pass_auth == Some(true),
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
                c.target,
            ))
        }
        Outcome::Response { .. } | Outcome::Directory { .. } => None,
    }
}

/// Which script runs, and the CGI variables that say how it was reached.
struct Invocation {
    script: std::path::PathBuf,
    script_name: String,
    path_info: String,
    path_translated: Option<std::path::PathBuf>,
    /// `CGIPassAuth` in force for the script's URL (for an `Action`, the action script's
    /// sections decide, not the requested file's, as httpd).
    pass_auth: bool,
}

async fn exec_cgi(
    c: CgiContext<'_>,
    inv: Invocation,
    body: Option<Incoming>,
) -> Response<ResponseBody> {
    let config = &c.shared.config;
    let Invocation {
        script,
        script_name,
        path_info,
        path_translated,
        pass_auth,
    } = inv;
    // httpd's REDIRECT_* variables: the request this script was redirected from (its
    // `Action`, or a script's Location or an ErrorDocument before that).
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
        script_filename: &script,
        script_name: &script_name,
        path_info: &path_info,
        path_translated,
        https: c.state.borrow().tls.is_some(),
        redirect: redirect
            .as_ref()
            .map(|(status, url)| (*status, url.as_str())),
        content_length,
        extra: &extra,
        pass_auth,
    });
    // SERVER_SIGNATURE: httpd's ap_psignature("", r) under the ServerSignature in force.
    let mut sig = ErrorContext::new(c.req.method().as_str());
    sig.signature = match c.dir.server_signature {
        Some(ServerSignature::On) => Signature::On,
        Some(ServerSignature::Email) => Signature::EMail,
        Some(ServerSignature::Off) | None => Signature::Off,
    };
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
    match crate::cgi::run(
        &script,
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
                c.target,
            )
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

/// An error after the per-directory configuration is known: its `ErrorDocument` if one
/// is set for `status` (a message, a local URL served through the whole request path
/// with the error status, or a remote URL redirected to with 302), else httpd's page.
fn document_or_page(
    config: &ServerConfig,
    server: &Server,
    dir: &DirConfig,
    status: u16,
    req: &Request<()>,
    extra: HeaderMap,
    target: &Target,
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
            // httpd's ap_die: an internal redirect to the document, which keeps the error
            // status; a .php document is run like any script, never sent as it is.
            let (target_path, query) = match path.split_once('?') {
                Some((p, q)) => (p, Some(q.to_owned())),
                None => (path.as_str(), None),
            };
            match mapping::normalize(target_path, server.allow_encoded_slashes) {
                Ok(uri_path) => redirect_to(Target {
                    uri_path,
                    query,
                    reached: Reached::Error {
                        status,
                        from: Box::new(target.clone()),
                        headers: extra,
                    },
                }),
                Err(_) => error_response(config, Some(server), status, req, false, None, extra),
            }
        }
        Some(ErrorDocument::Default) | None => {
            error_response(config, Some(server), status, req, false, None, extra)
        }
    }
}

/// One access-log line per answered request (a request dropped by a uid change is not
/// logged, as in mpm-itk), made when the response head is ready and written when the
/// body is done (see [`PendingLog`]); `None` when the vhost has no access log.
fn access_log<B>(
    shared: &Shared,
    state: &RefCell<State>,
    req: &Request<B>,
    response: &Response<ResponseBody>,
    peer: SocketAddr,
    local: SocketAddr,
    start: SystemTime,
) -> Option<(Box<LogEntry>, usize)> {
    let st = state.borrow();
    let index = st.current;
    let logs = st.server_logs(index)?;
    if logs.access.is_empty() {
        return None;
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
    // The head as hyper writes it: status line, headers (plus Date: 37 bytes with its
    // CRLF), blank line. The body's bytes are added as they are sent.
    let head: usize = 17
        + response
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 37
        + 2;
    e.bytes_sent = head as u64;
    // %I: the request line, its header lines and the body as declared.
    let request_head: usize = e.request_line.len()
        + 2
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 2;
    let declared: u64 = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    e.bytes_received = request_head as u64 + declared;
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
    Some((Box::new(e), index))
}

/// An access-log line waiting for its response's body: `%b`, `%B`, `%O` count the body
/// bytes handed to the connection and `%D`, `%T` the time to the last of them, for
/// static files, CGI and streamed output alike (httpd logs after the last byte too).
struct PendingLog {
    entry: Box<LogEntry>,
    /// The server whose logs get the line.
    index: usize,
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
    /// Body bytes handed to hyper so far.
    sent: u64,
    /// The access-log line, written when the body is done (dropped).
    log: Option<PendingLog>,
}

impl From<Body> for ResponseBody {
    fn from(body: Body) -> Self {
        ResponseBody {
            body,
            state: None,
            cgi: None,
            sent: 0,
            log: None,
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let Some(state) = &self.state else {
            return;
        };
        if let Ok(mut st) = state.try_borrow_mut() {
            st.busy = false;
            st.idle_since = Instant::now();
        }
        if let (Some(PendingLog { mut entry, index }), Ok(st)) =
            (self.log.take(), state.try_borrow())
        {
            entry.body_bytes = self.sent;
            entry.bytes_sent += self.sent;
            entry.duration = entry.request_time.elapsed().unwrap_or_default();
            if let Some(logs) = st.server_logs(index) {
                logs::write_access(logs, &entry);
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
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = this.next_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            this.sent += frame.data_ref().map_or(0, |d| d.len() as u64);
        }
        polled
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

impl ResponseBody {
    fn next_frame(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self;
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
}

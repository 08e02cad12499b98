//! The access-log line of a request (written when its body is done) and mod_headers' actions on the response.

use super::*;

/// One access-log line per answered request (a request dropped by a uid change is not
/// logged, as in mpm-itk), made when the response head is ready and written when the
/// body is done (see [`PendingLog`]); `None` when the vhost has no access log.
pub(super) fn access_log<B>(
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
pub(super) struct PendingLog {
    pub(super) entry: Box<LogEntry>,
    /// The server whose logs get the line.
    pub(super) index: usize,
}

/// mod_headers: the request's `Header` actions on the response about to be sent.
pub(super) fn apply_header_actions(
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

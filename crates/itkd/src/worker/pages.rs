//! Responses the server makes itself: httpd's error pages, `ErrorDocument`, the Server banner, error-log lines.

use super::*;

pub(super) fn log_error(
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

/// The Server banner as `ServerTokens` makes it.
pub(super) fn banner(config: &ServerConfig) -> String {
    errors::server_banner(
        config.server_tokens,
        "itkd",
        env!("CARGO_PKG_VERSION"),
        "Unix",
        &[],
    )
}

pub(super) fn server_header(config: &ServerConfig) -> HeaderValue {
    let banner = banner(config);
    HeaderValue::from_str(&banner).unwrap_or(HeaderValue::from_static("itkd"))
}

pub(super) fn build(
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
pub(super) fn page<B>(
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
pub(super) fn error_response<B>(
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
    let banner = banner(config);
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
    ctx.signature = signature_of(server.and_then(|s| s.dir.server_signature));
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

/// An error after the per-directory configuration is known: its `ErrorDocument` if one
/// is set for `status` (a message, a local URL served through the whole request path
/// with the error status, or a remote URL redirected to with 302), else httpd's page.
pub(super) fn document_or_page(
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

/// `name[:port]` of a Host header.
pub(super) fn split_host(host: &str) -> (String, Option<u16>) {
    match itkd_config::vhost::split_host_port(host) {
        Ok((name, port)) => (name.to_owned(), port.and_then(|p| p.parse().ok())),
        Err(_) => (host.to_owned(), None),
    }
}

/// `ServerSignature` as the page renderer takes it (none: Off, httpd's default).
pub(super) fn signature_of(setting: Option<ServerSignature>) -> Signature {
    match setting {
        Some(ServerSignature::On) => Signature::On,
        Some(ServerSignature::Email) => Signature::EMail,
        Some(ServerSignature::Off) | None => Signature::Off,
    }
}

//! Request smuggling and framing (issue 8, item 2): raw bytes from RFC 9112 §2-7 and
//! well-known desync cases, sent to the real itkd as root on loopback.
//!
//! Each case names what Debian's apache2 2.4.71 + libapache2-mpm-itk 2.4.7-04 answered to
//! the same bytes (recorded against a private `apache2 -DFOREGROUND` with the same two
//! vhosts, `HttpProtocolOptions` at its default) and what itkd must answer: the statuses of
//! the responses on that one connection, in order. Where they differ the case says why,
//! and docs/directives.md has a row for it. Every request that must not be answered asks
//! for `/smuggled` (404), so a desync shows as an extra 404. After each case a new
//! connection must still get a normal 200.
//!
//! Not covered here: slow clients and read timeouts (issue 8, item 3).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

const CONFIG: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/default
ErrorLog DIR/error.log
# The 404s of smuggled requests are counted from their AH00128 lines, logged at info.
LogLevel core:info
PidFile DIR/itkd.pid
Timeout 5
KeepAliveTimeout 1
StartServers 4
MinSpareServers 2
MaxSpareServers 8
MaxRequestWorkers 16
<Directory DIR>
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName default.test
    DocumentRoot DIR/default
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
    ScriptAlias /cgi-bin/ DIR/t1/cgi/
</VirtualHost>
";

/// A request that must only ever be answered when a case says so (404: no such file).
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: t1.test\r\n\r\n";

/// The CGI: its input back as its output.
const ECHO: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nexec cat\n";

struct Case {
    name: &'static str,
    request: Vec<u8>,
    /// Debian's httpd: the statuses on the connection, in order ("" for none; "0.9" for a
    /// body without a status line).
    httpd: &'static str,
    /// itkd: the statuses on the connection, in order; then the connection closes.
    itkd: &'static [u16],
    /// Why itkd answers otherwise than httpd (empty when it does not).
    why: &'static str,
}

fn case(name: &'static str, request: impl Into<Vec<u8>>, httpd: &'static str) -> Case {
    Case {
        name,
        request: request.into(),
        httpd,
        itkd: &[],
        why: "",
    }
}

impl Case {
    /// itkd's answer when it is httpd's.
    fn same(mut self, itkd: &'static [u16]) -> Case {
        self.itkd = itkd;
        self
    }

    /// itkd's answer when it deliberately differs.
    fn differs(mut self, itkd: &'static [u16], why: &'static str) -> Case {
        self.itkd = itkd;
        self.why = why;
        self
    }
}

/// A GET of t1.test's /x with `extra` header lines, then `rest` (a body and whatever a
/// desync would read as the next request).
fn get_x(extra: &str, rest: &[u8]) -> Vec<u8> {
    let mut v = format!("GET /x HTTP/1.1\r\nHost: t1.test\r\n{extra}\r\n").into_bytes();
    v.extend_from_slice(rest);
    v
}

fn chunked(body: &str) -> Vec<u8> {
    get_x(
        "Transfer-Encoding: chunked\r\n",
        format!("{body}{SMUGGLED}").as_bytes(),
    )
}

/// A POST to t1.test's echoing CGI with `extra` header lines, then `rest`.
fn post_cgi(extra: &str, rest: &[u8]) -> Vec<u8> {
    let mut v = format!("POST /cgi-bin/echo HTTP/1.1\r\nHost: t1.test\r\n{extra}\r\n").into_bytes();
    v.extend_from_slice(rest);
    v
}

fn cgi_chunked(body: &str) -> Vec<u8> {
    post_cgi(
        "Transfer-Encoding: chunked\r\n",
        format!("{body}{SMUGGLED}").as_bytes(),
    )
}

fn headers(n: usize) -> String {
    (0..n).map(|i| format!("X-{i}: 1\r\n")).collect()
}

fn cases() -> Vec<Case> {
    let s = SMUGGLED;
    let pipelined_cl = format!(
        "GET /x HTTP/1.1\r\nHost: t1.test\r\nContent-Length: {n}\r\n\r\n{s}\
         GET /x HTTP/1.1\r\nHost: t1.test\r\nContent-Length: {n}\r\n\r\n{s}",
        n = s.len()
    );
    let pipelined_chunked = format!(
        "GET /x HTTP/1.1\r\nHost: t1.test\r\nTransfer-Encoding: chunked\r\n\r\n{n:x}\r\n{s}\r\n0\r\n\r\n\
         GET /x HTTP/1.1\r\nHost: t1.test\r\nContent-Length: {n}\r\n\r\n{s}",
        n = s.len()
    );
    let long_target = |len: usize| {
        // "GET /x?" + query + " HTTP/1.1" is `len` bytes.
        format!(
            "GET /x?{} HTTP/1.1\r\nHost: t1.test\r\n\r\n",
            "a".repeat(len - 16)
        )
    };
    let long_field = |len: usize| get_x(&format!("X-A: {}\r\n", "a".repeat(len - 5)), b"");
    vec![
        case("baseline keep-alive GET", get_x("", b""), "200").same(&[200]),
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and the connection
        // closes after the response, so nothing after the chunked body is read.
        case(
            "CL then TE chunked",
            get_x(
                "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "200",
        )
        .same(&[200]),
        case(
            "TE chunked then CL",
            get_x(
                "Transfer-Encoding: chunked\r\nContent-Length: 50\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "200",
        )
        .same(&[200]),
        case(
            "TE by obs-fold",
            get_x(
                "Transfer-Encoding:\r\n chunked\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "200 404",
        )
        .differs(
            &[400],
            "RFC 9112 §5.2: obs-fold may be refused with 400; a folded Transfer-Encoding is a classic desync",
        ),
        case(
            "CL and TE by obs-fold",
            get_x(
                "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "200",
        )
        .differs(&[400], "obs-fold refused (as above)"),
        case("obs-fold in another header", get_x("X-A: a\r\n b\r\n", b""), "200")
            .differs(&[400], "obs-fold refused (as above)"),
        case(
            "two equal Content-Length lines",
            get_x(
                "Content-Length: 5\r\nContent-Length: 5\r\n",
                format!("hello{s}").as_bytes(),
            ),
            "400",
        )
        .differs(
            &[200, 404],
            "RFC 9110 §8.6 allows equal duplicates; hyper keeps one, the framing is the same either way",
        ),
        case(
            "Content-Length: 5, 5",
            get_x("Content-Length: 5, 5\r\n", format!("hello{s}").as_bytes()),
            "400",
        )
        .same(&[400]),
        case(
            "conflicting Content-Length",
            get_x(
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                format!("hello!{s}").as_bytes(),
            ),
            "400",
        )
        .same(&[400]),
        case(
            "Content-Length: +5",
            get_x("Content-Length: +5\r\n", format!("hello{s}").as_bytes()),
            "400",
        )
        .same(&[400]),
        case(
            "Content-Length: -1",
            get_x("Content-Length: -1\r\n", s.as_bytes()),
            "400",
        )
        .same(&[400]),
        case(
            "Content-Length: 0x5",
            get_x("Content-Length: 0x5\r\n", format!("hello{s}").as_bytes()),
            "400",
        )
        .same(&[400]),
        case(
            "Content-Length of 20 digits",
            get_x("Content-Length: 99999999999999999999\r\n", s.as_bytes()),
            "400",
        )
        .same(&[400]),
        // RFC 9112 §6.3: chunked must be the final coding of a request, else 400 and close.
        case(
            "TE: chunked, identity",
            get_x(
                "Transfer-Encoding: chunked, identity\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "400",
        )
        .same(&[400]),
        case(
            "TE: identity",
            get_x("Transfer-Encoding: identity\r\n", s.as_bytes()),
            "400",
        )
        .same(&[400]),
        case(
            "TE: identity, chunked",
            get_x(
                "Transfer-Encoding: identity, chunked\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "200 404",
        )
        .same(&[200, 404]),
        case(
            "TE: chunked twice",
            get_x(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "200 404",
        )
        .same(&[200, 404]),
        case(
            "TE: xchunked",
            get_x(
                "Transfer-Encoding: xchunked\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "400",
        )
        .same(&[400]),
        case(
            "TE: CHUNKED",
            get_x(
                "Transfer-Encoding: CHUNKED\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "200 404",
        )
        .same(&[200, 404]),
        case(
            "Transfer-Encoding : chunked (space before colon)",
            get_x(
                "Transfer-Encoding : chunked\r\n",
                format!("0\r\n\r\n{s}").as_bytes(),
            ),
            "400",
        )
        .same(&[400]),
        case(
            "TE chunked in HTTP/1.0",
            format!(
                "GET /x HTTP/1.0\r\nHost: t1.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{s}"
            ),
            "200",
        )
        .differs(
            &[400],
            "RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing (hyper refuses it)",
        ),
        // The body is read before a static file is served (httpd's ap_discard_request_body),
        // so a bad body gets its error status instead of a 200 cut short.
        case(
            "chunk size of 20 hex digits",
            chunked("10000000000000000001\r\nA\r\n0\r\n\r\n"),
            "413",
        )
        .differs(&[400], "hyper reports no overflow apart from other chunk errors: 400 for every malformed chunk"),
        case("chunk size not hex", chunked("zz\r\nhello\r\n0\r\n\r\n"), "400").same(&[400]),
        case("chunk size 0x5", chunked("0x5\r\nhello\r\n0\r\n\r\n"), "400").same(&[400]),
        case("valid chunked body", chunked("5\r\nhello\r\n0\r\n\r\n"), "200 404").same(&[200, 404]),
        case(
            "short chunk extension",
            chunked("5;a=b\r\nhello\r\n0\r\n\r\n"),
            "200 404",
        )
        .same(&[200, 404]),
        case(
            "chunk extension of 20000 bytes",
            chunked(&format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(20000))),
            "413",
        )
        .differs(&[400], "as the chunk size overflow: hyper's 16 KiB extension limit is one more malformed chunk"),
        case(
            "chunk data longer than its size",
            chunked("5\r\nhelloXX0\r\n\r\n"),
            "400",
        )
        .same(&[400]),
        case(
            "chunk lines ending in bare LF",
            chunked("5\nhello\n0\n\n"),
            "400",
        )
        .same(&[400]),
        case(
            "short trailer",
            chunked("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
            "200 404",
        )
        .same(&[200, 404]),
        case(
            "trailer of 20000 bytes",
            chunked(&format!("5\r\nhello\r\n0\r\nX-T: {}\r\n\r\n", "a".repeat(20000))),
            "400",
        )
        .same(&[400]),
        case(
            "200 trailer fields (LimitRequestFields 100)",
            chunked(&format!("5\r\nhello\r\n0\r\n{}\r\n", headers(200))),
            "400",
        )
        .same(&[400]),
        // The same bodies to a CGI (mod_cgi reads the whole body into the script).
        case(
            "CGI: CL then TE chunked",
            post_cgi(
                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                format!("5\r\nhello\r\n0\r\n\r\n{s}").as_bytes(),
            ),
            "200",
        )
        .same(&[200]),
        case(
            "CGI: valid chunked body",
            cgi_chunked("5\r\nhello\r\n0\r\n\r\n"),
            "200 404",
        )
        .same(&[200, 404]),
        case(
            "CGI: chunk size not hex",
            cgi_chunked("zz\r\nhello\r\n0\r\n\r\n"),
            "400",
        )
        .same(&[400]),
        case(
            "CGI: chunk size of 20 hex digits",
            cgi_chunked("10000000000000000001\r\nA\r\n0\r\n\r\n"),
            "413",
        )
        .differs(&[400], "as for a static file"),
        case(
            "CGI: chunk data longer than its size",
            cgi_chunked("5\r\nhelloXX0\r\n\r\n"),
            "400",
        )
        .same(&[400]),
        case(
            "CGI: trailer of 20000 bytes",
            cgi_chunked(&format!("5\r\nhello\r\n0\r\nX-T: {}\r\n\r\n", "a".repeat(20000))),
            "400",
        )
        .same(&[400]),
        case(
            "CGI: pipelined, a body holding a request",
            [
                post_cgi(&format!("Content-Length: {}\r\n", s.len()), s.as_bytes()),
                post_cgi("Content-Length: 5\r\n", b"hello"),
            ]
            .concat(),
            "200 200",
        )
        .same(&[200, 200]),
        case(
            "bare LF line endings",
            "GET /x HTTP/1.1\nHost: t1.test\n\n",
            "400",
        )
        .differs(
            &[200],
            "RFC 9112 §2.2 lets a recipient accept a bare LF and hyper does; httpd's Strict refuses. Not refusable above hyper (left open)",
        ),
        case(
            "bare LF mixed with CRLF",
            "GET /x HTTP/1.1\r\nHost: t1.test\nX-A: 1\r\n\r\n",
            "400",
        )
        .differs(&[200], "as bare LF line endings"),
        case("bare CR ending a line", "GET /x HTTP/1.1\rHost: t1.test\r\n\r\n", "400")
            .same(&[400]),
        case("bare CR in a header value", get_x("X-A: a\rb\r\n", b""), "400").same(&[400]),
        case("NUL in a header value", get_x("X-A: a\0b\r\n", b""), "400").same(&[400]),
        case(
            "NUL in the request line",
            "GET /x\0 HTTP/1.1\r\nHost: t1.test\r\n\r\n",
            "400",
        )
        .same(&[400]),
        case("control byte in a header value", get_x("X-A: a\x01b\r\n", b""), "400")
            .same(&[400]),
        case("DEL in a header value", get_x("X-A: a\x7fb\r\n", b""), "400").same(&[400]),
        case("header line without a colon", get_x("X-A\r\n", b""), "400").same(&[400]),
        case(
            "first header line starts with a space",
            "GET /x HTTP/1.1\r\n Host: t1.test\r\nHost: t1.test\r\n\r\n",
            "400",
        )
        .same(&[400]),
        case("request line of 8190 bytes (LimitRequestLine)", long_target(8190), "200")
            .same(&[200]),
        case("request line of 8192 bytes", long_target(8192), "414").same(&[414]),
        case("request line of 100 KiB", long_target(100_000), "414").same(&[414]),
        case("header line of 8190 bytes (LimitRequestFieldSize)", long_field(8190), "200")
            .same(&[200]),
        case("header line of 8192 bytes", long_field(8192), "400").same(&[400]),
        case("header line of 100 KiB", long_field(100_000), "400").same(&[400]),
        case("100 header lines (LimitRequestFields)", get_x(&headers(99), b""), "200")
            .same(&[200]),
        case("101 header lines", get_x(&headers(100), b""), "400").same(&[400]),
        case("1000 header lines", get_x(&headers(999), b""), "400").differs(
            &[431],
            "beyond twice LimitRequestFields hyper stops parsing and answers 431 itself",
        ),
        case(
            "pipelined, bodies by Content-Length holding a request",
            pipelined_cl,
            "200 200",
        )
        .same(&[200, 200]),
        case(
            "pipelined, a chunked body holding a request",
            pipelined_chunked,
            "200 200",
        )
        .same(&[200, 200]),
        case(
            "Expect: 100-continue with a body",
            get_x(
                "Content-Length: 5\r\nExpect: 100-continue\r\n",
                format!("hello{s}").as_bytes(),
            ),
            "100 200 404",
        )
        .same(&[100, 200, 404]),
        case("Expect: foo", get_x("Expect: foo\r\n", b""), "417").same(&[417]),
        case(
            "absolute-form, its host wins over Host",
            "GET http://t1.test/x HTTP/1.1\r\nHost: default.test\r\n\r\n",
            "200",
        )
        .same(&[200]),
        case(
            "absolute-form https on the plain port",
            "GET https://t1.test/x HTTP/1.1\r\nHost: t1.test\r\n\r\n",
            "200",
        )
        .same(&[200]),
        case(
            "absolute-form ftp",
            "GET ftp://t1.test/x HTTP/1.1\r\nHost: t1.test\r\n\r\n",
            "400",
        )
        .same(&[400]),
        case("two Host lines", get_x("Host: default.test\r\n", b""), "400").same(&[400]),
        case("HTTP/1.1 without Host", "GET /x HTTP/1.1\r\n\r\n", "400").same(&[400]),
        case("GET *", "GET * HTTP/1.1\r\nHost: t1.test\r\n\r\n", "400").same(&[400]),
        case("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: t1.test\r\n\r\n", "200").same(&[200]),
        case(
            "CONNECT authority-form",
            format!("CONNECT t1.test:443 HTTP/1.1\r\nHost: t1.test:443\r\n\r\n{s}"),
            "405 404",
        )
        .differs(
            &[400],
            "no proxy and no tunnel: 400 and close, so nothing after a CONNECT is read as a request",
        ),
        case(
            "CONNECT origin-form",
            "CONNECT /x HTTP/1.1\r\nHost: t1.test\r\n\r\n",
            "400",
        )
        .same(&[400]),
        case("unknown method FOO", "FOO /x HTTP/1.1\r\nHost: t1.test\r\n\r\n", "501")
            .same(&[501]),
        case("lowercase method get", "get /x HTTP/1.1\r\nHost: t1.test\r\n\r\n", "501")
            .same(&[501]),
        case("HTTP/0.9 GET /x", "GET /x\r\n", "0.9").differs(
            &[400],
            "HTTP/0.9 is not served (Allow0.9 is httpd's default): a response without a status line",
        ),
        case("HTTP/0.9 with a bare LF", "GET /x\n", "400").same(&[400]),
        case(
            "HTTP/2 preface on the HTTP/1 port",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "400",
        )
        .differs(&[], "hyper closes without a response on the HTTP/2 preface"),
        case("HTTP/2.0 in a request line", "GET /x HTTP/2.0\r\nHost: t1.test\r\n\r\n", "200")
            .differs(&[400], "an unknown version is refused, not answered as HTTP/1.1"),
        case("HTTP/1.2 in a request line", "GET /x HTTP/1.2\r\nHost: t1.test\r\n\r\n", "200")
            .differs(&[400], "as HTTP/2.0"),
        case("lowercase http/1.1", "GET /x http/1.1\r\nHost: t1.test\r\n\r\n", "400")
            .same(&[400]),
        case("tab between method and target", "GET\t/x HTTP/1.1\r\nHost: t1.test\r\n\r\n", "400")
            .same(&[400]),
        case("two spaces after the method", "GET  /x HTTP/1.1\r\nHost: t1.test\r\n\r\n", "400")
            .same(&[400]),
        case(
            "empty lines before the request line",
            "\r\n\r\nGET /x HTTP/1.1\r\nHost: t1.test\r\n\r\n",
            "200",
        )
        .same(&[200]),
        case(
            "Upgrade: h2c",
            get_x(
                "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
                b"",
            ),
            "200",
        )
        .same(&[200]),
    ]
}

/// Sends `request` on a new connection and reads until the server closes it (or 5 s):
/// the statuses of the responses, in order. Writes may fail once the server has answered
/// and closed; what it sent is still read.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    statuses(&out)
}

/// The statuses of the responses in `bytes`, each skipped by its Content-Length (1xx
/// have no body); anything that is not a status line stops the count (0 marks it).
fn statuses(mut bytes: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            out.push(0);
            break;
        };
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status: Option<u16> = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        let Some(status) = status else {
            out.push(0);
            break;
        };
        out.push(status);
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("\r\ntransfer-encoding: chunked");
        bytes = &bytes[end + 4..];
        if status < 200 {
            continue;
        }
        if chunked {
            // A CGI's answer: chunk by chunk to the last one (no trailers are sent).
            match skip_chunks(bytes) {
                Some(rest) => bytes = rest,
                None => {
                    out.push(0);
                    break;
                }
            }
        } else {
            bytes = &bytes[len.min(bytes.len())..];
        }
    }
    out
}

/// What follows a chunked body, or None when it is cut short.
fn skip_chunks(mut bytes: &[u8]) -> Option<&[u8]> {
    loop {
        let eol = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..eol]).ok()?, 16).ok()?;
        bytes = bytes.get(eol + 2..)?;
        if size == 0 {
            return bytes.get(2..);
        }
        bytes = bytes.get(size + 2..)?;
    }
}

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    default_site(base, "default site\n");
    tenant(base, 1, &[("x", "t1 x\n"), ("cgi/echo", ECHO)]);
    std::fs::set_permissions(
        base.join("t1/cgi/echo"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let server = Server::start(base, CONFIG);
    (dir, server)
}

#[test]
fn every_framing_case_gets_httpds_answer_or_a_documented_safer_one() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let addr = server.addr();
    let cases = cases();
    for c in &cases {
        let itkd = c
            .itkd
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            (itkd == c.httpd) == c.why.is_empty(),
            "{}: a difference from httpd ({} vs {itkd}) needs its reason, and only a difference",
            c.name,
            c.httpd
        );
    }
    // A few cases at a time: each kept-alive one waits out KeepAliveTimeout.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for c in chunk {
                        let got = exchange(addr, &c.request);
                        if got != c.itkd {
                            failures.push(format!(
                                "{}: itkd answered {got:?}, expected {:?} (httpd: {})",
                                c.name, c.itkd, c.httpd
                            ));
                        }
                        // The server keeps serving: a new connection gets a normal answer.
                        let after = get(addr, "t1.test", "/x");
                        if after != (200, "t1 x\n".to_owned()) {
                            failures.push(format!("after {}: {after:?}", c.name));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // No request for /smuggled was ever taken apart from those the cases expect: each
    // such 404 is logged, and the count matches the expected 404s.
    let expected_404 = cases
        .iter()
        .map(|c| c.itkd.iter().filter(|&&s| s == 404).count())
        .sum::<usize>();
    let logged = server.error_log().matches("/smuggled").count();
    assert_eq!(logged, expected_404, "{}", server.error_log());
}

#[test]
fn with_content_length_and_chunked_the_script_gets_the_chunked_body_and_the_connection_closes() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    // RFC 9112 §6.3: Transfer-Encoding wins; a reader of the Content-Length would take
    // "5\r\n" as the body and the rest as the next request.
    let request = post_cgi(
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        format!("5\r\nhello\r\n0\r\n\r\n{SMUGGLED}").as_bytes(),
    );
    let response = raw(server.addr(), &request);
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{response}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nconnection: close"),
        "{response}"
    );
    assert_eq!(skip_chunks(body.as_bytes()), Some(&b""[..]), "{response}");
    assert_eq!(body, "5\r\nhello\r\n0\r\n\r\n", "the chunked body, echoed");
    assert!(!server.error_log().contains("/smuggled"));
}

//! Access and error log lines against the ones Debian's apache2 2.4.71 wrote for the same
//! requests (`tests/fixtures/logfmt/`, captured by `tests/fixtures/capture/capture.py`).
//!
//! Each request's raw bytes (`requests/NN.req`) and response head (`NN.resp`) give the
//! headers; `facts.log` gives what the test cannot know in advance (client port, start
//! time, duration, pid, byte counts, statuses); the table below gives what httpd's request
//! handling decided (virtual host, file, handler, environment). Every `CustomLog` of the
//! capture config is then rendered and compared line by line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use itkd_config::logformat::LogFormat;
use itkd_http::logfmt::{
    error_log_line_in, escape_logitem, render, render_in, ConnStatus, Level, LogEntry, Original,
};
use jiff::tz::TimeZone;

/// Where capture.py lays out the reference server.
const DIR: &str = "/tmp/itkd-capture";

/// The formats of `capture/httpd.conf.in`, as mod_log_config receives them (the config
/// parser has already turned `\"` into `"`).
const FORMATS: &[(&str, &str)] = &[
    (
        "vhost_combined",
        r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#,
    ),
    (
        "combined",
        r#"%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#,
    ),
    ("common", r#"%h %l %u %t "%r" %>s %O"#),
    ("referer", "%{Referer}i -> %U"),
    ("agent", "%{User-agent}i"),
    ("clf", r#"%h %l %u %t "%r" %>s %b"#),
    (
        "facts",
        "%{remote}p %{sec}t %{usec_frac}t %D %P %k %I %O %B %>s %<s %X",
    ),
    (
        "codes1",
        "%h|%a|%{c}a|%A|%l|%u|%t|%r|%m|%U|%q|%H|%s|%<s|%>s|%b|%B|%I|%O|%S",
    ),
    (
        "codes2",
        "%v|%V|%p|%{canonical}p|%{local}p|%{remote}p|%P|%{pid}P|%k|%f|%X|%D|%T|%{ms}T|%{us}T|%{s}T|%R|%L",
    ),
    (
        "codes3",
        "%{Referer}i|%{user-agent}i|%{X-Dup}i|%{Cookie}i|%{c1}C|%{c2}C|%{X-Resp}o|%{X-Ok}o|%{Content-Type}o|%{Set-Cookie}o|%{Location}o|%{MYVAR}e|%{NOVAR}e|%!200,304{Referer}i|%200{Referer}i|%!404{User-Agent}i|%404,500U|%{Content-Length}o|%>{X-Resp}o|%<{Referer}i",
    ),
    (
        "redirect",
        "%s|%<s|%>s|%U|%<U|%>U|%R|%>R|%200,201U|%404,403U|%!404,403U|%f|%>f|%{Content-Type}o|%<{Content-Type}o|%{X-Empty}i|%{X-Missing}i",
    ),
    (
        "times",
        r#"%t|%{%Y-%m-%d %H:%M:%S %z %Z %a %A %b %B %j %e %I %p %y %% %D %T %F %R}t|%{sec}t|%{msec}t|%{usec}t|%{msec_frac}t|%{usec_frac}t|%{begin:%d/%b}t|%{begin:msec}t|%{%d/%b/%Y:%H:%M:%S}t|x\ty\\z"w"#,
    ),
];

/// The zone of the `tz-*` captures (`TZ=America/New_York`), as a POSIX rule so the test
/// needs no tz database.
const NEW_YORK: &str = "EST5EDT,M3.2.0,M11.1.0";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logfmt")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn log_lines(dir: &Path, name: &str) -> Vec<String> {
    let text = String::from_utf8(read(&dir.join(format!("{name}.log")))).expect("UTF-8 log");
    text.lines().map(str::to_owned).collect()
}

/// One line of `facts.log`.
struct Facts {
    remote_port: u16,
    start: SystemTime,
    micros: u64,
    pid: u32,
    k: u32,
    bytes_in: u64,
    bytes_out: u64,
    body: u64,
    status: u16,
    original_status: u16,
    conn: ConnStatus,
}

fn facts(dir: &Path) -> Vec<Facts> {
    log_lines(dir, "facts")
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let n = |i: usize| -> u64 { f[i].parse().expect("number in facts.log") };
            Facts {
                remote_port: n(0) as u16,
                start: SystemTime::UNIX_EPOCH
                    + Duration::from_secs(n(1))
                    + Duration::from_micros(n(2)),
                micros: n(3),
                pid: n(4) as u32,
                k: n(5) as u32,
                bytes_in: n(6),
                bytes_out: n(7),
                body: n(8),
                status: n(9) as u16,
                original_status: n(10) as u16,
                conn: match f[11] {
                    "+" => ConnStatus::KeepAlive,
                    "X" => ConnStatus::Aborted,
                    _ => ConnStatus::Close,
                },
            }
        })
        .collect()
}

/// The first line and the header fields of a request or response head.
fn parse_head(bytes: &[u8]) -> (Vec<u8>, HeaderMap) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |i| i + 2);
    let mut lines = bytes[..end]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default().to_vec();
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let colon = line.iter().position(|&b| b == b':').expect("header line");
        let name = HeaderName::from_bytes(&line[..colon]).expect("header name");
        let value = line[colon + 1..].trim_ascii();
        headers.append(name, HeaderValue::from_bytes(value).expect("header value"));
    }
    (first, headers)
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            s[i],
            s.get(i + 1).and_then(|&b| hex(b)),
            s.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn base64_decode(s: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for &c in s.iter().take_while(|&&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// What httpd's request handling decided for a request, where it is not what the raw
/// request alone says.
#[derive(Default)]
struct Spec {
    /// The answering virtual host; by default the Host header's, or the first vhost.
    vhost: Option<&'static str>,
    request_line: Option<&'static [u8]>,
    protocol: Option<&'static str>,
    uri: Option<&'static [u8]>,
    query: Option<Option<&'static [u8]>>,
    /// Relative to DIR; by default `www` + the path.
    filename: Option<Option<&'static [u8]>>,
    handler: Option<&'static str>,
    /// `MYVAR`; by default what `SetEnv` sets (the request reached the fixups).
    env: Option<Option<&'static str>>,
    /// The request failed before its header fields were read.
    no_headers: bool,
    original: Option<(&'static [u8], &'static [u8])>,
}

/// The main capture's requests (`log_requests()` in capture.py), in order.
fn spec(n: usize) -> Spec {
    match n {
        // ErrorDocument 404 /cgi/status.cgi?201
        4 => Spec {
            uri: Some(b"/cgi/status.cgi"),
            query: Some(Some(b"201")),
            filename: Some(Some(b"cgi/status.cgi")),
            handler: Some("cgi-script"),
            original: Some((b"/nope", b"www/nope")),
            ..Spec::default()
        },
        // ErrorDocument 403 /index.html
        5 => Spec {
            uri: Some(b"/index.html"),
            filename: Some(Some(b"www/index.html")),
            original: Some((b"/secret/s.txt", b"www/secret/s.txt")),
            ..Spec::default()
        },
        // DirectoryIndex: the URI changes in place, no original to go back to.
        7 => Spec {
            uri: Some(b"/index.html"),
            ..Spec::default()
        },
        8 => Spec {
            handler: Some("httpd/unix-directory"),
            ..Spec::default()
        },
        9 => Spec {
            filename: Some(Some(b"cgi/status.cgi")),
            handler: Some("cgi-script"),
            ..Spec::default()
        },
        // Authentication failed before the fixups.
        10 | 19 | 22 => Spec {
            env: Some(None),
            ..Spec::default()
        },
        // The rest of the path is path info.
        12 => Spec {
            filename: Some(Some(b"www/caf\xc3\xa9")),
            ..Spec::default()
        },
        // A request line httpd could not parse: no headers read, HTTP/1.0 assumed.
        14 => Spec {
            vhost: Some("off.test"),
            request_line: Some(b"GET /a b"),
            protocol: Some("HTTP/1.0"),
            uri: Some(b"/a"),
            filename: Some(None),
            env: Some(None),
            no_headers: true,
            ..Spec::default()
        },
        16 => Spec {
            filename: Some(Some(b"www/env")),
            env: Some(Some("set\\")),
            ..Spec::default()
        },
        // `Redirect` answers in the translate phase: no file, no fixups.
        20 | 21 => Spec {
            filename: Some(None),
            env: Some(None),
            ..Spec::default()
        },
        // `OPTIONS *`: httpd still maps `*` below the DocumentRoot.
        23 => Spec {
            filename: Some(Some(b"www/*")),
            env: Some(None),
            ..Spec::default()
        },
        // Timed out while reading the header fields.
        26 => Spec {
            vhost: Some("off.test"),
            filename: Some(None),
            env: Some(None),
            no_headers: true,
            ..Spec::default()
        },
        _ => Spec::default(),
    }
}

fn entry(dir: &Path, n: usize, facts: &Facts, spec: &Spec, log_id: Option<String>) -> LogEntry {
    let requests = dir.join("requests");
    let (raw_line, raw_headers) = parse_head(&read(&requests.join(format!("{n:02}.req"))));
    let (_, response_headers) = parse_head(&read(&requests.join(format!("{n:02}.resp"))));
    let remote: SocketAddr = ([127, 0, 0, 1], facts.remote_port).into();
    let local: SocketAddr = ([127, 0, 0, 1], 18081).into();
    let mut e = LogEntry::new(remote, local, facts.start);

    e.request_line = spec.request_line.map_or(raw_line, <[u8]>::to_vec);
    let parts: Vec<&[u8]> = e.request_line.split(|&b| b == b' ').collect();
    e.method = String::from_utf8_lossy(parts[0]).into_owned();
    e.protocol = spec.protocol.map_or_else(
        || String::from_utf8_lossy(parts[2]).into_owned(),
        str::to_owned,
    );
    let target = parts[1];
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], Some(target[q + 1..].to_vec())),
        None => (target, None),
    };
    e.uri_path = spec
        .uri
        .map_or_else(|| percent_decode(path), <[u8]>::to_vec);
    e.query = match spec.query {
        Some(q) => q.map(<[u8]>::to_vec),
        None => query,
    };
    if !spec.no_headers {
        e.request_headers = raw_headers;
    }
    e.response_headers = response_headers;

    let host = e
        .request_headers
        .get("host")
        .map(|h| h.to_str().expect("ASCII host").to_owned());
    let host_name = host
        .as_deref()
        .map(|h| h.split(':').next().unwrap_or(h).to_owned());
    let vhost = spec
        .vhost
        .map(str::to_owned)
        .unwrap_or_else(|| match &host_name {
            Some(h) if h != "nosuch.test" => h.clone(),
            _ => "off.test".to_owned(),
        });
    e.host_name = host_name.unwrap_or_else(|| vhost.clone());
    e.canonical_port = if vhost == "canon.test" { 8088 } else { 80 };
    e.server_name = vhost;

    e.filename = match spec.filename {
        Some(f) => f.map(|f| PathBuf::from(format!("{DIR}/{}", String::from_utf8_lossy(f)))),
        None => {
            let mut p = format!("{DIR}/www").into_bytes();
            p.extend_from_slice(&e.uri_path);
            let p: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(p);
            Some(PathBuf::from(p))
        }
    };
    e.handler = spec.handler.map(str::to_owned);
    e.remote_user = e.request_headers.get("authorization").map(|a| {
        let creds = base64_decode(&a.as_bytes()[b"Basic ".len()..]);
        let colon = creds.iter().position(|&b| b == b':').unwrap_or(creds.len());
        creds[..colon].to_vec()
    });
    match spec.env {
        Some(None) => {}
        Some(Some(v)) => e.env.push(("MYVAR".to_owned(), v.to_owned())),
        None => e.env.push(("MYVAR".to_owned(), "va l\"ue".to_owned())),
    }

    e.duration = Duration::from_micros(facts.micros);
    e.pid = facts.pid;
    e.keepalives = facts.k + 1;
    e.conn_status = facts.conn;
    e.bytes_received = facts.bytes_in;
    e.bytes_sent = facts.bytes_out;
    e.body_bytes = facts.body;
    e.status = facts.status;
    e.log_id = log_id;
    if let Some((uri, file)) = spec.original {
        e.original = Some(Original {
            status: facts.original_status,
            uri_path: uri.to_vec(),
            query: None,
            filename: Some(PathBuf::from(format!(
                "{DIR}/{}",
                String::from_utf8_lossy(file)
            ))),
            handler: None,
            response_headers: HeaderMap::new(),
        });
    }
    e
}

/// Renders every captured log of `dir` and returns the lines that differ.
fn compare(dir: &Path, zone: &TimeZone, spec: fn(usize) -> Spec) -> Vec<String> {
    let facts = facts(dir);
    // `%L` is random: the request's error log id is taken from codes2's last column.
    let log_ids: Vec<Option<String>> = log_lines(dir, "codes2")
        .iter()
        .map(|l| match l.rsplit('|').next() {
            Some("-") | None => None,
            Some(id) => Some(id.to_owned()),
        })
        .collect();
    let entries: Vec<LogEntry> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| entry(dir, i + 1, f, &spec(i + 1), log_ids[i].clone()))
        .collect();
    let mut failures = Vec::new();
    for (name, text) in FORMATS {
        let format = LogFormat::parse(text).expect("format parses");
        let want = log_lines(dir, name);
        assert_eq!(want.len(), entries.len(), "{name}.log");
        for (i, (entry, want)) in entries.iter().zip(&want).enumerate() {
            let got = render_in(&format, entry, zone);
            if &got != want {
                failures.push(format!(
                    "{}/{name}.log line {}:\n  apache: {want}\n  itkd:   {got}",
                    dir.display(),
                    i + 1
                ));
            }
        }
    }
    failures
}

#[test]
fn access_logs_match_apache() {
    let failures = compare(&fixtures(), &TimeZone::UTC, spec);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn access_logs_in_another_zone() {
    let zone = TimeZone::posix(NEW_YORK).expect("POSIX TZ");
    for variant in ["tz-est", "tz-edt"] {
        let failures = compare(&fixtures().join(variant), &zone, |_| Spec::default());
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[test]
fn render_uses_the_system_zone() {
    let format = LogFormat::parse("%t %{%z %Z}t").expect("format parses");
    let e = LogEntry::new(
        ([127, 0, 0, 1], 1).into(),
        ([127, 0, 0, 1], 2).into(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_646_019),
    );
    assert_eq!(
        render(&format, &e),
        render_in(&format, &e, &TimeZone::system())
    );
}

/// `%{…}t` against glibc's strftime, called as apr_strftime calls it (strftime.txt).
#[test]
fn strftime_matches_glibc() {
    let text = String::from_utf8(read(&fixtures().join("strftime.txt"))).expect("UTF-8");
    let mut failures = Vec::new();
    let mut count = 0;
    for record in text.split("\x1e\n").filter(|r| !r.is_empty()) {
        let f: Vec<&str> = record.split('\x1f').collect();
        let (tz, secs, fmt, want) = (f[0], f[1], f[2], f[3]);
        let zone = TimeZone::posix(tz).expect("POSIX TZ");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.parse().expect("seconds"));
        let e = LogEntry::new(([127, 0, 0, 1], 1).into(), ([127, 0, 0, 1], 2).into(), time);
        let format = LogFormat {
            items: vec![itkd_config::logformat::LogItem::Field(
                itkd_config::logformat::Field {
                    code: "t",
                    arg: Some(fmt.to_owned()),
                    original: None,
                    statuses: None,
                },
            )],
            source: String::new(),
        };
        let got = render_in(&format, &e, &zone);
        count += 1;
        if got != want {
            failures.push(format!(
                "TZ={tz} @{secs} {fmt:?}:\n  glibc: {want:?}\n  itkd:  {got:?}"
            ));
        }
    }
    assert!(count > 100, "strftime.txt has {count} records");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn status_conditions_and_empty_values() {
    let mut e = LogEntry::new(
        ([127, 0, 0, 1], 5555).into(),
        ([127, 0, 0, 1], 80).into(),
        SystemTime::UNIX_EPOCH,
    );
    e.request_headers
        .insert("referer", HeaderValue::from_static("http://r.test/"));
    e.request_headers
        .insert("x-empty", HeaderValue::from_static(""));
    for (format, status, want) in [
        ("%!200,304{Referer}i", 200, "-"),
        ("%!200,304{Referer}i", 404, "http://r.test/"),
        ("%200{Referer}i", 200, "http://r.test/"),
        ("%200{Referer}i", 500, "-"),
        ("%{X-Empty}i|%{Nope}i", 200, "|-"),
        ("%b %B", 200, "- 0"),
        ("%s %>s", 0, "- -"),
        ("%u", 200, "-"),
        ("%q|%f|%R|%L|%{x}e|%{x}n|%{x}C", 200, "|-|-|-|-|-|-"),
        ("%{bogus}p %{bogus}T %{bogus}P", 200, "bogus bogus bogus"),
    ] {
        e.status = status;
        let format = LogFormat::parse(format).expect("format parses");
        assert_eq!(
            render_in(&format, &e, &TimeZone::UTC),
            want,
            "{}",
            format.source
        );
    }
    e.remote_user = Some(Vec::new());
    let format = LogFormat::parse("%u").expect("format parses");
    assert_eq!(render_in(&format, &e, &TimeZone::UTC), "\"\"");
}

#[test]
fn escaping_of_request_values() {
    for (raw, want) in [
        (&b"GET /\"q\" HTTP/1.1"[..], r#"GET /\"q\" HTTP/1.1"#),
        (
            b"a\\b\tc\nd\re\x0bf\x08g\x0ch\x00i\x7fj\xffk",
            r"a\\b\tc\nd\re\vf\bg\x0ch\x00i\x7fj\xffk",
        ),
    ] {
        assert_eq!(escape_logitem(raw), want);
    }
}

/// `[Wed Nov 25 22:54:43.724746 2026]` in `zone` back to a time.
fn parse_ctime(text: &str, zone: &TimeZone) -> SystemTime {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let f: Vec<&str> = text.split([' ', ':', '.']).collect();
    let month = MONTHS.iter().position(|m| *m == f[1]).expect("month") as i8 + 1;
    let num = |s: &str| -> i32 { s.parse().expect("number") };
    let dt = jiff::civil::DateTime::new(
        num(f[7]) as i16,
        month,
        num(f[2]) as i8,
        num(f[3]) as i8,
        num(f[4]) as i8,
        num(f[5]) as i8,
        num(f[6]) * 1000,
    )
    .expect("valid time");
    let ts = zone.to_timestamp(dt).expect("in zone");
    SystemTime::UNIX_EPOCH + Duration::from_micros(ts.as_microsecond() as u64)
}

/// The error log lines of the main capture: module, level, and the message before
/// escaping (what the module formatted).
const ERROR_LINES: &[(&str, Level, &[u8])] = &[
    (
        "mpm_prefork",
        Level::Notice,
        b"AH00163: Apache/2.4.71 (Debian) mpm-itk/2.4.7-04 configured -- resuming normal operations",
    ),
    ("mpm_prefork", Level::Info, b"AH00164: Server built: 2026-11-12T08:58:41"),
    (
        "core",
        Level::Notice,
        b"AH00094: Command line: 'apache2 -f /tmp/itkd-capture/httpd-Full.conf'",
    ),
    ("core", Level::Info, b"AH00128: File does not exist: /tmp/itkd-capture/www/nope"),
    (
        "authz_core",
        Level::Error,
        b"AH01630: client denied by server configuration: /tmp/itkd-capture/www/secret/s.txt",
    ),
    (
        "core",
        Level::Info,
        b"AH00128: File does not exist: /tmp/itkd-capture/www/nope, referer: http://r.test/\"q\"\\x\ttab\xe9end",
    ),
    (
        "auth_basic",
        Level::Error,
        b"AH01617: user al\"ice: authentication failure for \"/auth/a.txt\": Password Mismatch",
    ),
    (
        "core",
        Level::Info,
        b"AH00128: File does not exist: /tmp/itkd-capture/www/caf\xc3\xa9/\"x\"",
    ),
    ("core", Level::Info, b"AH00128: File does not exist: /tmp/itkd-capture/www/caf\xc3\xa9"),
    ("core", Level::Error, b"AH00135: Invalid method in request FOO /x HTTP/1.1"),
    ("core", Level::Info, b"AH00128: File does not exist: /tmp/itkd-capture/www/env/x"),
    (
        "authz_core",
        Level::Error,
        b"AH01630: client denied by server configuration: /tmp/itkd-capture/www/secret/s.txt, referer: http://ref.test/",
    ),
    ("auth_basic", Level::Error, b"AH01618: user  not found: /auth/a.txt"),
    (
        "core",
        Level::Info,
        b"AH00128: File does not exist: /tmp/itkd-capture/www/a\\b\nc\td\x7f\x01, referer: q\\\"\tr",
    ),
    ("core", Level::Info, b"AH00128: File does not exist: /tmp/itkd-capture/www/x\"y"),
    (
        "core",
        Level::Info,
        b"AH00096: removed PID file /tmp/itkd-capture/run/httpd.pid (pid=@PID@)",
    ),
    ("mpm_prefork", Level::Notice, b"AH00169: caught SIGTERM, shutting down"),
];

/// The tz captures: start-up, one 404 with a Referer, shutdown.
const TZ_ERROR_LINES: &[(&str, Level, &[u8])] = &[
    ERROR_LINES[0],
    ERROR_LINES[1],
    ERROR_LINES[2],
    (
        "core",
        Level::Info,
        b"AH00128: File does not exist: /tmp/itkd-capture/www/nope, referer: http://ref.test/",
    ),
    ERROR_LINES[15],
    ERROR_LINES[16],
];

fn compare_error_log(dir: &Path, zone: &TimeZone, expected: &[(&str, Level, &[u8])]) {
    let lines = log_lines(dir, "error");
    assert_eq!(lines.len(), expected.len(), "{}", dir.display());
    for (line, (module, level, message)) in lines.iter().zip(expected) {
        let time = parse_ctime(&line[1..line.find(']').expect("time")], zone);
        let pid: u32 = line[line.find("[pid ").expect("pid") + 5..]
            .split(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("pid");
        let client: Option<SocketAddr> = line.find("[client ").map(|at| {
            let rest = &line[at + 8..];
            rest[..rest.find(']').expect("client")]
                .parse()
                .expect("client address")
        });
        let message = replace_pid(message, pid);
        let got = error_log_line_in(time, module, *level, pid, client, &message, zone);
        assert_eq!(&got, line);
    }
}

/// The master's pid in a message, which the line's `[pid …]` also shows.
fn replace_pid(message: &[u8], pid: u32) -> Vec<u8> {
    match message.windows(5).position(|w| w == b"@PID@") {
        Some(at) => [
            &message[..at],
            pid.to_string().as_bytes(),
            &message[at + 5..],
        ]
        .concat(),
        None => message.to_vec(),
    }
}

#[test]
fn error_log_lines_match_apache() {
    compare_error_log(&fixtures(), &TimeZone::UTC, ERROR_LINES);
    let zone = TimeZone::posix(NEW_YORK).expect("POSIX TZ");
    for variant in ["tz-est", "tz-edt"] {
        compare_error_log(&fixtures().join(variant), &zone, TZ_ERROR_LINES);
    }
}

#[test]
fn error_log_client_forms() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_772_701_506_000_042);
    let v6: SocketAddr = "[::1]:5555".parse().expect("address");
    let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().expect("address");
    assert_eq!(
        error_log_line_in(t, "core", Level::Trace(3), 7, Some(v6), "m", &TimeZone::UTC),
        "[Thu Mar 05 09:05:06.000042 2026] [core:trace3] [pid 7:tid 7] [client ::1:5555] m"
    );
    assert_eq!(
        error_log_line_in(t, "ssl", Level::Warn, 7, Some(mapped), "m", &TimeZone::UTC),
        "[Thu Mar 05 09:05:06.000042 2026] [ssl:warn] [pid 7:tid 7] [client 10.0.0.1:80] m"
    );
}

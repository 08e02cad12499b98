//! Error bodies against the ones Debian's apache2 2.4.71 sent for the same requests
//! (`tests/fixtures/errors/`, captured by `tests/fixtures/capture/capture.py`).

use std::path::PathBuf;

use itkd_config::model::ServerTokens;
use itkd_http::errors::{
    error_body, reason, server_banner, ErrorContext, Signature, CONTENT_TYPE, DEFAULT_ADMIN,
    NOTE_FIELD_TOO_LONG, NOTE_TOO_MANY_FIELDS,
};

/// The banner of the reference server (`ServerTokens Full`, mpm-itk loaded).
const APACHE: &str = "Apache/2.4.71 (Debian) mpm-itk/2.4.7-04";
/// What itkd puts in its place.
const ITKD: &str = "itkd/0.1.0 (Unix)";

const MAIN_ADMIN: &str = "admin@main.test";
const TARGET: &str = "http://target.test/dest?a=1&b=<x>";

fn fixture(name: &str, ext: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/errors")
        .join(format!("{name}.{ext}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The virtual hosts of `capture/httpd.conf.in`, as a request to them sees its settings.
fn vhost(host: &'static str, method: &'static str) -> ErrorContext<'static> {
    let mut ctx = ErrorContext::new(method);
    ctx.server_name = host;
    ctx.server_admin = MAIN_ADMIN;
    ctx.banner = APACHE;
    ctx.port = 80;
    match host {
        // The address's default vhost: it also answers the errors found before the Host
        // header is read (400, 408, 414).
        "off.test" => {}
        "on.test" => ctx.signature = Signature::On,
        "email.test" => {
            ctx.signature = Signature::EMail;
            ctx.server_admin = "webmaster@email.test";
        }
        "weird.test" => {
            ctx.signature = Signature::EMail;
            ctx.server_admin = "<web&master>@x.test";
        }
        "url.test" => {
            ctx.signature = Signature::EMail;
            ctx.server_admin = "https://example.test/contact?a=1&b=2";
        }
        // `ServerName canon.test:8088` with `UseCanonicalName On`.
        "canon.test" => {
            ctx.signature = Signature::On;
            ctx.port = 8088;
        }
        other => panic!("no vhost {other}"),
    }
    ctx
}

fn cases() -> Vec<(String, u16, ErrorContext<'static>)> {
    let with = |host: &'static str, method: &'static str, f: fn(&mut ErrorContext<'static>)| {
        let mut ctx = vhost(host, method);
        f(&mut ctx);
        ctx
    };
    let plain = |host: &'static str| vhost(host, "GET");
    let cases: Vec<(&str, u16, ErrorContext<'static>)> = vec![
        (
            "301-dir-on",
            301,
            with("on.test", "GET", |c| {
                c.location = Some("http://on.test/sub/")
            }),
        ),
        (
            "301-redirect-off",
            301,
            with("off.test", "GET", |c| c.location = Some(TARGET)),
        ),
        (
            "302-on",
            302,
            with("on.test", "GET", |c| c.location = Some(TARGET)),
        ),
        (
            "302-quote-on",
            302,
            with("on.test", "GET", |c| {
                c.location = Some("http://t.test/a\"b'c")
            }),
        ),
        (
            "303-on",
            303,
            with("on.test", "GET", |c| c.location = Some(TARGET)),
        ),
        (
            "307-on",
            307,
            with("on.test", "GET", |c| c.location = Some(TARGET)),
        ),
        (
            "308-on",
            308,
            with("on.test", "GET", |c| c.location = Some(TARGET)),
        ),
        ("400-nohost", 400, plain("off.test")),
        ("400-space-in-uri", 400, plain("off.test")),
        (
            "400-fieldsize",
            400,
            with("off.test", "GET", |c| {
                c.error_notes = Some(NOTE_FIELD_TOO_LONG)
            }),
        ),
        (
            "400-fieldcount",
            400,
            with("off.test", "GET", |c| {
                c.error_notes = Some(NOTE_TOO_MANY_FIELDS)
            }),
        ),
        ("401-on", 401, plain("on.test")),
        ("403-on", 403, plain("on.test")),
        ("404-on", 404, plain("on.test")),
        ("404-off", 404, plain("off.test")),
        ("404-email", 404, plain("email.test")),
        ("404-url-admin", 404, plain("url.test")),
        (
            "404-host-port",
            404,
            with("on.test", "GET", |c| c.port = 9999),
        ),
        ("404-canonical", 404, plain("canon.test")),
        ("405-trace-on", 405, vhost("on.test", "TRACE")),
        ("408-on", 408, plain("off.test")),
        ("411-post-on", 411, vhost("on.test", "POST")),
        ("413-cgi-on", 413, vhost("on.test", "POST")),
        ("414-on", 414, plain("off.test")),
        ("416-on", 416, plain("on.test")),
        (
            "417-expect-on",
            417,
            with("on.test", "GET", |c| c.expect = Some("100-<b>&\"c")),
        ),
        ("421-on", 421, plain("on.test")),
        ("500-cgi-on", 500, plain("on.test")),
        ("500-weird-admin", 500, plain("weird.test")),
        (
            "500-noadmin",
            500,
            with("on.test", "GET", |c| c.server_admin = DEFAULT_ADMIN),
        ),
        ("501-foo-on", 501, vhost("on.test", "FOO")),
        ("501-escaped-method", 501, vhost("on.test", "F&O'")),
        ("503-on", 503, plain("on.test")),
        ("505-on", 505, plain("on.test")),
    ];
    // Every other text httpd has, through `Redirect NNN` on the default vhost.
    let canned = [
        300, 305, 402, 406, 407, 409, 410, 412, 415, 417, 422, 423, 424, 426, 428, 429, 431, 451,
        502, 504, 506, 507, 508, 510, 511,
    ];
    let mut out: Vec<(String, u16, ErrorContext<'static>)> = cases
        .into_iter()
        .map(|(name, status, ctx)| (name.to_owned(), status, ctx))
        .collect();
    for status in canned {
        let mut ctx = plain("off.test");
        ctx.location = Some(TARGET);
        out.push((format!("canned-{status}"), status, ctx));
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("fixture is UTF-8")
}

#[test]
fn bodies_match_apache_byte_for_byte() {
    let mut failures = Vec::new();
    for (name, status, ctx) in cases() {
        let want = text(&fixture(&name, "html"));
        let got = error_body(status, &ctx);
        if got != want {
            failures.push(format!("{name}:\n--- apache\n{want}--- itkd\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bodies_with_itkds_product() {
    for (name, status, mut ctx) in cases() {
        let want = text(&fixture(&name, "html")).replace(APACHE, ITKD);
        ctx.banner = ITKD;
        assert_eq!(error_body(status, &ctx), want, "{name}");
    }
}

#[test]
fn server_tokens_variants() {
    for (suffix, tokens) in [
        ("Prod", ServerTokens::ProductOnly),
        ("Major", ServerTokens::Major),
        ("Minor", ServerTokens::Minor),
        ("Min", ServerTokens::Minimal),
        ("OS", ServerTokens::Os),
    ] {
        let banner = server_banner(tokens, "Apache", "2.4.71", "Debian", &["mpm-itk/2.4.7-04"]);
        let mut ctx = vhost("on.test", "GET");
        ctx.banner = &banner;
        let want = text(&fixture(&format!("404-on-tokens-{suffix}"), "html"));
        assert_eq!(error_body(404, &ctx), want, "ServerTokens {suffix}");
    }
    assert_eq!(
        server_banner(
            ServerTokens::Full,
            "Apache",
            "2.4.71",
            "Debian",
            &["mpm-itk/2.4.7-04"]
        ),
        APACHE
    );
}

/// The status line and the headers of each captured response agree with `reason`,
/// `CONTENT_TYPE` and the body's length.
#[test]
fn status_lines_and_headers() {
    let mut names: Vec<String> = cases().into_iter().map(|(n, _, _)| n).collect();
    for t in ["Prod", "Major", "Minor", "Min", "OS"] {
        names.push(format!("404-on-tokens-{t}"));
    }
    for name in names {
        let head = text(&fixture(&name, "head"));
        let body = fixture(&name, "html");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let code: u16 = status_line[9..12].parse().expect("status code");
        assert_eq!(
            status_line,
            format!("HTTP/1.1 {code} {}", reason(code)),
            "{name}"
        );
        for line in lines.filter(|l| !l.is_empty()) {
            let (field, value) = line.split_once(": ").expect("header line");
            match field {
                "Content-Type" => assert_eq!(value, CONTENT_TYPE, "{name}"),
                "Content-Length" => assert_eq!(value, body.len().to_string(), "{name}"),
                _ => {}
            }
        }
    }
}

#[test]
fn reason_phrases() {
    // Every code httpd 2.4.71 has a phrase for (observed from 100 to 599); the rest get "".
    let known = [
        (100, "Continue"),
        (101, "Switching Protocols"),
        (102, "Processing"),
        (103, "Early Hints"),
        (200, "OK"),
        (201, "Created"),
        (202, "Accepted"),
        (203, "Non-Authoritative Information"),
        (204, "No Content"),
        (205, "Reset Content"),
        (206, "Partial Content"),
        (207, "Multi-Status"),
        (208, "Already Reported"),
        (226, "IM Used"),
        (300, "Multiple Choices"),
        (301, "Moved Permanently"),
        (302, "Found"),
        (303, "See Other"),
        (304, "Not Modified"),
        (305, "Use Proxy"),
        (307, "Temporary Redirect"),
        (308, "Permanent Redirect"),
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (402, "Payment Required"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (406, "Not Acceptable"),
        (407, "Proxy Authentication Required"),
        (408, "Request Timeout"),
        (409, "Conflict"),
        (410, "Gone"),
        (411, "Length Required"),
        (412, "Precondition Failed"),
        (413, "Request Entity Too Large"),
        (414, "Request-URI Too Long"),
        (415, "Unsupported Media Type"),
        (416, "Requested Range Not Satisfiable"),
        (417, "Expectation Failed"),
        (421, "Misdirected Request"),
        (422, "Unprocessable Entity"),
        (423, "Locked"),
        (424, "Failed Dependency"),
        (426, "Upgrade Required"),
        (428, "Precondition Required"),
        (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"),
        (451, "Unavailable For Legal Reasons"),
        (500, "Internal Server Error"),
        (501, "Not Implemented"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (505, "HTTP Version Not Supported"),
        (506, "Variant Also Negotiates"),
        (507, "Insufficient Storage"),
        (508, "Loop Detected"),
        (510, "Not Extended"),
        (511, "Network Authentication Required"),
    ];
    for status in 100..600 {
        let want = known
            .iter()
            .find(|(s, _)| *s == status)
            .map_or("", |(_, r)| r);
        assert_eq!(reason(status), want, "{status}");
    }
}

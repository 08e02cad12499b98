//! The small things real sites ran into, each checked against Debian's apache2 + mpm-itk
//! running the same configuration beside itkd: TRACE and TraceEnable, a malformed Host,
//! If-Modified-Since in the future, methods on a missing script, header field spelling,
//! REDIRECT_* and SERVER_SIGNATURE for php-cgi, and the access log's byte and time
//! figures for a streamed response, 408 for a head cut off at the timeout.

mod common;

use std::time::Duration;

use common::{apache_present, dechunk, php_present, raw, root, server_dir, tenant, Apache, Server};

const CONFIG: &str = "
Listen 127.0.0.1:PORT
ServerName main.test
ServerRoot DIR
Timeout 3
TypesConfig /etc/mime.types
DocumentRoot DIR/t1
ErrorLog DIR/LOGS/error.log
PidFile DIR/LOGS/pid
LogFormat \"%>s %b %B %O %I %D %T %r\" figures
CustomLog DIR/LOGS/access.log figures
User www-data
Group www-data
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
<Directory /usr/lib/cgi-bin>
    Require all granted
</Directory>
Action application/x-httpd-php /cgi-bin/php
AddHandler application/x-httpd-php .php
<Directory DIR/t1>
    Require all granted
    AllowOverride AuthConfig FileInfo
</Directory>
<Directory DIR/t1/cgi>
    Options +ExecCGI
    SetHandler cgi-script
</Directory>
<VirtualHost *:PORT>
    ServerName t.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
    ServerSignature On
</VirtualHost>
<VirtualHost *:PORT>
    ServerName off.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
    TraceEnable Off
</VirtualHost>
";

const FILES: &[(&str, &str)] = &[
    (
        "cgi/err.cgi",
        "#!/bin/sh\necho 'a line on stderr' >&2\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n",
    ),
    ("index.html", "<p>hello</p>\n"),
    (
        "auth/.htaccess",
        "AuthType Basic\nAuthName zone\nAuthUserFile @BASE@/htpasswd\nRequire valid-user\nSetEnv FROM_FILE yes\n",
    ),
    (
        "auth/who.php",
        "<?php foreach (['REMOTE_USER', 'REDIRECT_REMOTE_USER', 'AUTH_TYPE', 'REDIRECT_AUTH_TYPE', 'FROM_FILE', 'REDIRECT_FROM_FILE', 'REDIRECT_STATUS', 'REDIRECT_URL'] as $k) { echo $k, '=', $_SERVER[$k] ?? '(unset)', \"\\n\"; }",
    ),
    (
        "vars.php",
        "<?php foreach (['REDIRECT_STATUS', 'REDIRECT_URL', 'REDIRECT_QUERY_STRING', 'REDIRECT_HANDLER', 'QUERY_STRING', 'SERVER_SIGNATURE'] as $k) { echo $k, '=', $_SERVER[$k] ?? '(unset)', \"\\n\"; }",
    ),
    (
        "stream.php",
        "<?php for ($i = 0; $i < 10; $i++) { echo str_repeat('x', 999), \"\\n\"; flush(); usleep(100000); }",
    ),
];

struct Pair {
    itkd: Server,
    apache: Apache,
}

fn start(base: &std::path::Path) -> Pair {
    let files: Vec<(&str, String)> = FILES
        .iter()
        .map(|(name, text)| (*name, text.replace("@BASE@", base.to_str().unwrap())))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    tenant(base, 1, &files);
    let made = std::process::Command::new("htpasswd")
        .args(["-cb", base.join("htpasswd").to_str().unwrap(), "u", "pw"])
        .output()
        .unwrap();
    assert!(made.status.success(), "htpasswd: {made:?}");
    std::fs::set_permissions(
        base.join("t1/cgi/err.cgi"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::create_dir(base.join("itkd-logs")).unwrap();
    std::fs::create_dir(base.join("apache-logs")).unwrap();
    let itkd = Server::start(base, &CONFIG.replace("LOGS", "itkd-logs"));
    // Debian's apache2 has mod_logio (%I, %O) built in.
    let apache = Apache::start(
        base,
        &format!(
            "{}{}",
            common::APACHE_MODULES,
            CONFIG.replace("LOGS", "apache-logs")
        ),
    );
    Pair { itkd, apache }
}

/// (status, header lines as sent, body) of one request on a fresh connection.
fn ask(port: u16, request: &str) -> (u16, Vec<String>, String) {
    let response = raw(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        request.as_bytes(),
    );
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, lines.map(str::to_owned).collect(), body.to_owned())
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn trace_host_conditionals_methods_and_header_names_as_httpd() {
    if !root() || !apache_present() || !php_present() {
        return;
    }
    let dir = server_dir();
    let pair = start(dir.path());
    let (ours, theirs) = (pair.itkd.port, pair.apache.port);
    let statuses: &[(&str, &str)] = &[
        // TraceEnable On (the default) echoes; Off is a 405; a body is a 413.
        ("TRACE on", "TRACE /index.html HTTP/1.1\r\nHost: t.test\r\nX-Probe: 1\r\nConnection: close\r\n\r\n"),
        ("TRACE off", "TRACE /index.html HTTP/1.1\r\nHost: off.test\r\nConnection: close\r\n\r\n"),
        ("TRACE body", "TRACE / HTTP/1.1\r\nHost: t.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"),
        ("TRACE to a script", "TRACE /vars.php HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n"),
        // httpd's fix_hostname.
        ("Host: a b", "GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n"),
        ("Host: a..b", "GET / HTTP/1.1\r\nHost: a..b\r\nConnection: close\r\n\r\n"),
        ("Host: [::1]:80", "GET /index.html HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n"),
        ("Host: t.test:x", "GET /index.html HTTP/1.1\r\nHost: t.test:x\r\nConnection: close\r\n\r\n"),
        // A date in the future is no validator.
        ("IMS future", "GET /index.html HTTP/1.1\r\nHost: t.test\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\nConnection: close\r\n\r\n"),
        ("IMS past", "GET /index.html HTTP/1.1\r\nHost: t.test\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\nConnection: close\r\n\r\n"),
        // Methods on a script that does not exist: mod_actions' 404, not the file's 405.
        ("PUT missing.php", "PUT /missing.php HTTP/1.1\r\nHost: t.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        ("DELETE missing.php", "DELETE /missing.php HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n"),
        ("PUT index.html", "PUT /index.html HTTP/1.1\r\nHost: t.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    ];
    for (label, request) in statuses {
        let (a, ah, _) = ask(ours, request);
        let (b, bh, _) = ask(theirs, request);
        assert_eq!(a, b, "{label}: itkd {ah:?} vs apache2 {bh:?}");
        assert_eq!(
            header(&ah, "Content-Type").map(|t| t.split(';').next().unwrap_or("").to_owned()),
            header(&bh, "Content-Type").map(|t| t.split(';').next().unwrap_or("").to_owned()),
            "{label}"
        );
    }
    // The TRACE echo: the request as received (itkd's header names come lower-case).
    let trace =
        "TRACE /index.html HTTP/1.1\r\nHost: t.test\r\nX-Probe: 1\r\nConnection: close\r\n\r\n";
    let (_, _, a) = ask(ours, trace);
    let (_, _, b) = ask(theirs, trace);
    assert_eq!(
        dechunk(&a).to_ascii_lowercase(),
        dechunk(&b).to_ascii_lowercase()
    );
    assert!(a.starts_with("TRACE /index.html HTTP/1.1\r\n"), "{a}");

    // Field names as httpd spells them (ETag and WWW-Authenticate included).
    for path in ["/index.html", "/missing.html", "/vars.php", "/auth/"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n");
        let names = |lines: Vec<String>| -> Vec<String> {
            let mut names: Vec<String> = lines
                .iter()
                .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_owned()))
                .filter(|n| n != "Keep-Alive" && n != "X-Powered-By")
                .collect();
            names.sort();
            names
        };
        let (_, ah, _) = ask(ours, &request);
        let (_, bh, _) = ask(theirs, &request);
        let ours_names = names(ah);
        let wanted = match path {
            "/index.html" => "ETag",
            "/auth/" => "WWW-Authenticate",
            _ => "Content-Type",
        };
        assert!(
            ours_names.iter().any(|n| n == wanted),
            "{path}: {ours_names:?}"
        );
        assert_eq!(ours_names, names(bh), "{path}");
    }

    // LogLevel warn (the default): httpd logs a missing file at info, so not at all.
    let log = |logs: &str| {
        std::fs::read_to_string(dir.path().join(logs).join("error.log")).unwrap_or_default()
    };
    for logs in ["itkd-logs", "apache-logs"] {
        assert!(!log(logs).contains("AH00128"), "{logs}:\n{}", log(logs));
    }

    // A script's stderr: httpd 2.4.71's line, at error.
    for port in [ours, theirs] {
        let (status, _, _) = ask(
            port,
            "GET /cgi/err.cgi HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
    }
    let wanted = format!(
        "] AH01215: stderr from {}/t1/cgi/err.cgi: a line on stderr",
        dir.path().display()
    );
    for logs in ["itkd-logs", "apache-logs"] {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !log(logs).contains(&wanted) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let text = log(logs);
        let line = text.lines().find(|l| l.contains(&wanted));
        assert!(
            line.is_some_and(|l| l.contains("[cgi:error]")),
            "{logs}:\n{text}"
        );
    }
}

#[test]
fn redirect_variables_and_server_signature_reach_php_as_with_httpd() {
    if !root() || !apache_present() || !php_present() {
        return;
    }
    let dir = server_dir();
    let pair = start(dir.path());
    let request =
        "GET /vars.php?x=1&y=2 HTTP/1.1\r\nHost: t.test:8080\r\nConnection: close\r\n\r\n";
    let (a, _, ours) = ask(pair.itkd.port, request);
    let (b, _, theirs) = ask(pair.apache.port, request);
    let normal = |body: &str| {
        dechunk(body)
            .replace("itkd/0.1.0 (Unix)", "BANNER")
            .replace("Apache/2.4.71 (Debian) mpm-itk/2.4.7-04", "BANNER")
    };
    assert_eq!((a, normal(&ours)), (b, normal(&theirs)));

    // Through Action, the script's own URL decides access and variables; the file's
    // request's variables come as REDIRECT_* (REDIRECT_REMOTE_USER, REDIRECT_FROM_FILE).
    let request = "GET /auth/who.php HTTP/1.1\r\nHost: t.test\r\nAuthorization: Basic dTpwdw==\r\nConnection: close\r\n\r\n";
    let (a, _, who) = ask(pair.itkd.port, request);
    let (b, _, reference) = ask(pair.apache.port, request);
    assert_eq!((a, dechunk(&who)), (b, dechunk(&reference)));
    assert!(dechunk(&who).contains("REDIRECT_REMOTE_USER=u\n"), "{who}");
    assert!(
        normal(&ours).contains("REDIRECT_QUERY_STRING=x=1&y=2\n")
            && normal(&ours).contains("REDIRECT_HANDLER=application/x-httpd-php\n")
            && normal(&ours).contains(
                "SERVER_SIGNATURE=<address>BANNER Server at t.test Port 8080</address>\n"
            ),
        "{ours}"
    );
}

#[test]
fn access_log_counts_the_bytes_and_time_of_the_whole_response() {
    if !root() || !apache_present() || !php_present() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    let pair = start(base);
    let requests = [
        "GET /stream.php HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n",
        "HEAD /index.html HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n",
    ];
    for request in requests {
        ask(pair.itkd.port, request);
        ask(pair.apache.port, request);
    }
    // Logged after the last byte: give the writers a moment (bounded).
    let read = |logs: &str| {
        let path = base.join(logs).join("access.log");
        for _ in 0..50 {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() >= requests.len() {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::read_to_string(&path).unwrap_or_default()
    };
    let (ours, theirs) = (read("itkd-logs"), read("apache-logs"));
    let fields = |line: &str| -> Vec<String> { line.split(' ').map(str::to_owned).collect() };
    for (a, b) in ours.lines().zip(theirs.lines()) {
        let (a, b) = (fields(a), fields(b));
        // %>s %b %B equal; %I equal; %O within the Server banner's difference.
        assert_eq!(a[..3], b[..3], "itkd {a:?} vs apache2 {b:?}");
        assert_eq!(a[4], b[4], "%I: itkd {a:?} vs apache2 {b:?}");
        let (oa, ob): (i64, i64) = (a[3].parse().unwrap(), b[3].parse().unwrap());
        assert!((oa - ob).abs() < 120, "%O: itkd {a:?} vs apache2 {b:?}");
        if a[7] == "/stream.php" {
            assert_eq!(a[1], "9990", "{a:?}");
            // Ten flushes 0.1 s apart: the time to the last byte, not to the head.
            let (da, db): (u64, u64) = (a[5].parse().unwrap(), b[5].parse().unwrap());
            assert!(da >= 900_000 && db >= 900_000, "%D: itkd {da} apache2 {db}");
        }
    }
    assert_eq!(ours.lines().count(), requests.len(), "{ours}");
}

#[test]
fn a_head_cut_off_at_the_timeout_gets_408_as_httpd() {
    if !root() || !apache_present() || !php_present() {
        return;
    }
    let dir = server_dir();
    let pair = start(dir.path());
    // (what is sent and then left hanging, the status line expected: none = closed).
    let cases: &[(&str, Option<&str>)] = &[
        (
            "GET / HTTP/1.1\r\nHost: t.test\r\n",
            Some("HTTP/1.1 408 Request Timeout"),
        ),
        (
            "GET / HTTP/1.1\r\nHost: t.test\r\nX-Half: ab",
            Some("HTTP/1.1 408 Request Timeout"),
        ),
        ("GET /index.ht", None),
    ];
    for (sent, expected) in cases {
        for (who, port) in [("itkd", pair.itkd.port), ("apache2", pair.apache.port)] {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            // Timeout is 3 s: allow twice that before calling it a hang.
            s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
            std::io::Write::write_all(&mut s, sent.as_bytes()).unwrap();
            let mut got = Vec::new();
            let read = std::io::Read::read_to_end(&mut s, &mut got);
            assert!(read.is_ok(), "{who}: {sent:?} not closed within 6 s");
            let text = String::from_utf8_lossy(&got);
            match expected {
                Some(line) => assert!(text.starts_with(line), "{who}: {sent:?} → {text}"),
                None => assert!(text.is_empty(), "{who}: {sent:?} → {text}"),
            }
        }
    }
}

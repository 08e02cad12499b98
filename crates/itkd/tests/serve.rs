//! The server end to end, as root: three tenants with 0600 files in 0700 trees, each
//! vhost served as its own uid, checked from outside (responses, /proc of the worker,
//! the error log).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;

const CONFIG: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/default
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
Timeout 10
KeepAliveTimeout 2
MaxKeepAliveRequests 3
StartServers 5
MinSpareServers 3
MaxSpareServers 8
MaxRequestWorkers 16
<Directory DIR>
    Options FollowSymLinks
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName default.test
    DocumentRoot DIR/default
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1
    ErrorLog DIR/t1.error.log
    LogLevel info
    LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"\" combined
    CustomLog DIR/t1.access.log combined
    AssignUserID #20001 #21001
    <Directory DIR/t1/ovr>
        AssignUserID #20004 #21004
    </Directory>
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t2.test
    DocumentRoot DIR/t2
    Alias /steal DIR/t1
    AssignUserID #20002 #21002
    MaxClientsVHost 2
    NiceValue 7
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t3.test
    DocumentRoot DIR/t3
    AssignUserID #20003 #21003
    ErrorDocument 404 /missing.html
    <Location /private>
        Require all denied
        ErrorDocument 403 \"Go away, please\"
    </Location>
</VirtualHost>
";

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    default_site(base, "default site\n");
    tenant(
        base,
        1,
        &[("index.html", "t1 index\n"), ("secret.txt", "t1 secret\n")],
    );
    // The per-Directory override: a subtree only uid 20004 can read.
    let ovr = base.join("t1/ovr");
    std::fs::create_dir_all(&ovr).unwrap();
    std::fs::write(ovr.join("o.txt"), "override\n").unwrap();
    own_tree(&ovr, 20004, 21004);
    std::fs::set_permissions(base.join("t1"), std::fs::Permissions::from_mode(0o711)).unwrap();
    tenant(base, 2, &[("f.txt", "t2 file\n")]);
    std::fs::write(base.join("t2/big.bin"), big_file()).unwrap();
    link(&base.join("t1/secret.txt"), &base.join("t2/link.txt"));
    own_tree(&base.join("t2"), 20002, 21002);
    tenant(
        base,
        3,
        &[
            ("f.txt", "t3 file\n"),
            ("missing.html", "t3's own 404 page\n"),
            ("private/p.txt", "p\n"),
        ],
    );
    let server = Server::start(base, CONFIG);
    (dir, server)
}

#[test]
fn each_tenant_is_served_as_itself_and_never_another() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    assert_eq!(get(a, "t1.test", "/"), (200, "t1 index\n".into()));
    assert_eq!(get(a, "t2.test", "/f.txt"), (200, "t2 file\n".into()));
    assert_eq!(get(a, "t3.test", "/f.txt"), (200, "t3 file\n".into()));
    // The default vhost (first of the address) runs as User/Group: it reads its own files…
    assert_eq!(get(a, "nosuch.test", "/"), (200, "default site\n".into()));
    // … and not a tenant's.
    assert_eq!(
        get(a, "t2.test", "/steal/secret.txt").0,
        403,
        "Alias into t1's tree"
    );
    assert_eq!(
        get(a, "t2.test", "/link.txt").0,
        403,
        "symlink to t1's file"
    );
    assert_eq!(get(a, "t2.test", "/../t1/secret.txt").0, 400);
    assert_eq!(get(a, "t2.test", "/%2e%2e/t1/secret.txt").0, 400);
    assert_eq!(get(a, "t2.test", "/..%2ft1%2fsecret.txt").0, 404);
    assert_eq!(get(a, "t3.test", "/../../etc/passwd").0, 400);
    // The per-Directory AssignUserID: t1's own uid could not read this file.
    assert_eq!(get(a, "t1.test", "/ovr/o.txt"), (200, "override\n".into()));
    assert!(
        server.error_log().contains("Permission denied"),
        "{}",
        server.error_log()
    );
}

#[test]
fn the_worker_has_exactly_the_tenants_identity_and_nothing_else() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    let request = b"GET /f.txt HTTP/1.1\r\nHost: t2.test\r\n\r\n";
    assert_eq!(exchange(&mut conn, request).map(|r| r.0), Some(200));
    // The worker now waits for the next request on this connection.
    let workers: Vec<(i32, String)> = descendants(server.pid())
        .into_iter()
        .filter(|(_, s)| status_field(s, "Uid").starts_with("20002"))
        .collect();
    assert_eq!(workers.len(), 1, "one worker for the one connection");
    let (pid, status) = &workers[0];
    assert_eq!(status_field(status, "Uid"), "20002 20002 20002 20002");
    assert_eq!(status_field(status, "Gid"), "21002 21002 21002 21002");
    assert_eq!(status_field(status, "Groups"), "21002");
    for cap in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(status_field(status, cap), "0000000000000000", "{cap}");
    }
    assert_eq!(status_field(status, "Seccomp"), "2");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let nice = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(16)
        .unwrap()
        .to_owned();
    assert_eq!(nice, "7", "NiceValue 7");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    // TCP sockets only: one, the client's, and no listener among them.
    let tcp = tcp_socket_states();
    let is_tcp = |t: &String, want: Option<&str>| {
        tcp.iter().any(|(inode, state)| {
            *t == format!("socket:[{inode}]") && want.is_none_or(|w| w == state)
        })
    };
    let mine: Vec<&String> = fds.iter().filter(|t| is_tcp(t, None)).collect();
    assert_eq!(mine.len(), 1, "only the client's TCP socket: {fds:?}");
    assert!(
        !is_tcp(mine[0], Some("0A")),
        "the worker's TCP socket is not a listener"
    );
    let t1_log = dir
        .path()
        .join("t1.error.log")
        .to_string_lossy()
        .into_owned();
    assert!(
        !fds.contains(&t1_log),
        "another vhost's log is open: {fds:?}"
    );
}

#[test]
fn keep_alive_serves_the_same_identity_and_closes_on_another() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        conn.write_all(b"GET / HTTP/1.1\r\nHost: t1.test\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut conn), Some((200, "t1 index\n".into())));
    }
    conn.write_all(b"GET /f.txt HTTP/1.1\r\nHost: t3.test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut conn), None, "closed without a response");
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(server.dir.join("t1.error.log")).unwrap_or_default()
        + &server.error_log();
    assert!(
        log.contains("Couldn't set uid/gid/priority, closing connection."),
        "{log}"
    );
}

#[test]
fn malformed_requests_get_httpds_statuses_and_the_server_goes_on() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    assert_eq!(parse(&raw(a, b"THIS IS NOT HTTP\r\n\r\n")).0, 400);
    let long = format!(
        "GET / HTTP/1.1\r\nHost: t1.test\r\nX-Long: {}\r\n\r\n",
        "x".repeat(9000)
    );
    assert_eq!(parse(&raw(a, long.as_bytes())).0, 400);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: t1.test\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(parse(&raw(a, many.as_bytes())).0, 400);
    assert_eq!(
        parse(&raw(a, b"GET / HTTP/1.1\r\n\r\n")).0,
        400,
        "HTTP/1.1 without Host"
    );
    assert_eq!(
        parse(&raw(a, b"GET / HTTP/1.0\r\n\r\n")),
        (200, "default site\n".into()),
        "HTTP/1.0 without Host"
    );
    assert_eq!(get(a, "t1.test", "/"), (200, "t1 index\n".into()));
}

#[test]
fn max_clients_vhost_refuses_one_over_and_recovers_after_sigkill() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(a).unwrap();
        let request = b"GET /f.txt HTTP/1.1\r\nHost: t2.test\r\n\r\n";
        assert_eq!(exchange(&mut c, request).map(|r| r.0), Some(200));
        held.push(c);
    }
    assert_eq!(
        get(a, "t2.test", "/f.txt").0,
        503,
        "two held, the third refused"
    );
    assert_eq!(get(a, "t3.test", "/f.txt").0, 200, "other vhosts answer");
    assert!(
        server
            .error_log()
            .contains("MaxClientsVhost reached for t2.test:"),
        "{}",
        server.error_log()
    );
    // Kill the two workers: their slots must not stay counted.
    for (pid, status) in descendants(server.pid()) {
        if status_field(&status, "Uid").starts_with("20002") {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(500));
    let mut again = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(a).unwrap();
        let request = b"GET /f.txt HTTP/1.1\r\nHost: t2.test\r\n\r\n";
        assert_eq!(
            exchange(&mut c, request).map(|r| r.0),
            Some(200),
            "count back to zero after SIGKILL"
        );
        again.push(c);
    }
}

#[test]
fn graceful_restart_under_load_loses_no_request() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    let load = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        for _ in 0..150 {
            statuses.push(get(a, "t3.test", "/f.txt").0);
        }
        statuses
    });
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        server.signal("USR1");
    }
    let statuses = load.join().unwrap();
    let failed: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    assert!(
        server.error_log().contains("Graceful restart requested"),
        "{}",
        server.error_log()
    );
}

#[test]
fn without_foreground_it_detaches_and_k_stop_stops_it() {
    if !root() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    default_site(base, "up\n");
    let port = free_port();
    let conf = base.join("itkd.conf");
    let text = format!(
        "Listen 127.0.0.1:{port}\nUser nobody\nGroup nogroup\nServerName main.test\nDocumentRoot {d}/default\nErrorLog {d}/error.log\nPidFile {d}/itkd.pid\n",
        d = base.display()
    );
    std::fs::write(&conf, text).unwrap();
    let conf = conf.to_str().unwrap();
    // output() returns only when every copy of stdout/stderr is closed: the daemon must
    // not keep them.
    let started = std::process::Command::new(ITKD)
        .args(["-f", conf])
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "the daemon listens");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(addr, "main.test", "/"), (200, "up\n".into()));
    let stop = std::process::Command::new(ITKD)
        .args(["-k", "stop", "-f", conf])
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let mut down = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_err() && !base.join("itkd.pid").exists() {
            down = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(down, "stopped, PidFile removed");
}

#[test]
fn keep_alive_ends_after_max_requests_and_after_the_idle_timeout() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // MaxKeepAliveRequests 3: four requests answered, the fourth with Connection: close.
    for i in 0..4 {
        conn.write_all(b"GET / HTTP/1.1\r\nHost: t1.test\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_response(&mut conn).map(|r| r.0),
            Some(200),
            "request {i}"
        );
    }
    conn.write_all(b"GET / HTTP/1.1\r\nHost: t1.test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut conn), None, "closed after the fourth");

    // KeepAliveTimeout 2: an idle connection is closed without bytes after about 2 s.
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(12)))
        .unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t1.test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle).map(|r| r.0), Some(200));
    let start = std::time::Instant::now();
    let mut byte = [0u8; 1];
    let n = std::io::Read::read(&mut idle, &mut byte).unwrap_or(0);
    let waited = start.elapsed();
    assert_eq!(n, 0, "closed with no bytes");
    assert!(
        // KeepAliveTimeout (2 s), not Timeout (10 s); generous for a loaded 2-core CI.
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "closed after {waited:?}"
    );
}

#[test]
fn pages_and_log_lines_are_httpds() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let a = server.addr();
    let response = raw(a, b"GET /nosuch HTTP/1.1\r\nHost: t1.test\r\nUser-Agent: probe/1\r\nConnection: close\r\n\r\n");
    let (status, body) = parse(&response);
    assert_eq!(status, 404);
    // Byte for byte the page Debian's apache2 sends with ServerSignature Off (captured).
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../itkd-http/tests/fixtures/errors/404-off.html"
    );
    assert_eq!(body, std::fs::read_to_string(fixture).unwrap());
    assert!(
        response.contains("Content-Type: text/html; charset=iso-8859-1\r\n")
            || response
                .to_ascii_lowercase()
                .contains("content-type: text/html; charset=iso-8859-1\r\n"),
        "{response}"
    );
    assert_eq!(get(a, "t1.test", "/").0, 200);
    std::thread::sleep(Duration::from_millis(200));
    let access = std::fs::read_to_string(dir.path().join("t1.access.log")).unwrap();
    let lines: Vec<&str> = access.lines().collect();
    assert_eq!(lines.len(), 2, "{access}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{access}");
    assert!(
        lines[0].contains("] \"GET /nosuch HTTP/1.1\" 404 "),
        "{access}"
    );
    assert!(lines[0].ends_with(" \"-\" \"probe/1\""), "{access}");
    assert!(lines[1].contains("\"GET / HTTP/1.1\" 200 "), "{access}");
    // The error log line in httpd's format.
    let errors = std::fs::read_to_string(dir.path().join("t1.error.log")).unwrap();
    let line = errors
        .lines()
        .find(|l| l.contains("AH00128"))
        .unwrap_or_default();
    assert!(
        // httpd logs a missing file at info.
        line.starts_with('[') && line.contains("] [core:info] [pid "),
        "{errors}"
    );
    assert!(
        line.contains(":tid ") && line.contains("] [client 127.0.0.1:"),
        "{errors}"
    );
    assert!(
        line.ends_with(&format!(
            "AH00128: File does not exist: {}/t1/nosuch",
            dir.path().display()
        )),
        "{errors}"
    );
}

#[test]
fn error_documents_local_and_text() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    assert_eq!(
        get(a, "t3.test", "/nosuch"),
        (404, "t3's own 404 page\n".into()),
        "local ErrorDocument keeps the status"
    );
    assert_eq!(
        get(a, "t3.test", "/private/p.txt"),
        (403, "Go away, please".into()),
        "text ErrorDocument"
    );
    assert_eq!(get(a, "t2.test", "/nosuch").0, 404);
}

#[test]
fn a_broken_configuration_on_graceful_restart_keeps_the_old_one_serving() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let conf = dir.path().join("itkd.conf");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\nFrobnicateWidgets on\n")).unwrap();
    server.signal("USR1");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        get(server.addr(), "t1.test", "/"),
        (200, "t1 index\n".into())
    );
    let log = server.error_log();
    assert!(
        log.contains("restart failed, keeping the running configuration"),
        "{log}"
    );
    assert!(log.contains("Invalid command 'FrobnicateWidgets'"), "{log}");
}

#[test]
fn a_fifo_or_a_device_is_refused_at_once_and_never_holds_a_worker() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let base = dir.path();
    let fifo = base.join("t3/pipe.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::chown(&fifo, Some(20003), Some(21003)).unwrap();
    link(Path::new("/dev/zero"), &base.join("t3/zero.txt"));
    let a = server.addr();
    for path in ["/pipe.txt", "/zero.txt"] {
        let started = std::time::Instant::now();
        assert_eq!(get(a, "t3.test", path).0, 403, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(get(a, "t3.test", "/f.txt"), (200, "t3 file\n".into()));
    assert!(
        server.error_log().contains(&format!(
            "not a regular file, not served: {}",
            fifo.display()
        )),
        "{}",
        server.error_log()
    );
}

/// 600 KiB that no two offsets confuse: more than two of the worker's read chunks.
fn big_file() -> Vec<u8> {
    (0..600 * 1024u32)
        .map(|i| (i.wrapping_mul(7) % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

#[test]
fn large_files_and_ranges_arrive_byte_for_byte() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let url = format!("http://{}/big.bin", server.addr());
    let want = big_file();
    let (code, body) = curl(&["-H", "Host: t2.test", &url]);
    assert_eq!(code, "200");
    assert!(body == want, "{} bytes, differ", body.len());
    for (first, last) in [
        (0, 0),
        (300_000, 500_000),
        (614_000, 614_399),
        (4095, 266_241),
    ] {
        let (code, body) = curl(&[
            "-H",
            "Host: t2.test",
            "-r",
            &format!("{first}-{last}"),
            &url,
        ]);
        assert_eq!(code, "206", "{first}-{last}");
        assert!(
            body == want[first..=last],
            "{first}-{last}: {} bytes",
            body.len()
        );
    }
    // Two ranges: multipart/byteranges, each part's bytes from its own offset.
    let (code, body) = curl(&["-H", "Host: t2.test", "-r", "10-19,400000-400009", &url]);
    assert_eq!(code, "206");
    for (first, last) in [(10, 19), (400_000, 400_009)] {
        // httpd's spelling of the part header.
        let head = format!("Content-range: bytes {first}-{last}/614400\r\n\r\n");
        let at = body
            .windows(head.len())
            .position(|w| w == head.as_bytes())
            .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&body)));
        let start = at + head.len();
        assert!(
            body[start..start + 10] == want[first..=last],
            "{first}-{last}"
        );
    }
}

#[test]
fn static_file_semantics_end_to_end() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    let req = |extra: &str, method: &str, path: &str| {
        raw(
            a,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: t1.test\r\n{extra}Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    let full = req("", "GET", "/secret.txt");
    assert!(full.starts_with("HTTP/1.1 200 "), "{full}");
    let header = |resp: &str, name: &str| {
        resp.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let etag = header(&full, "etag");
    let modified = header(&full, "last-modified");
    assert!(!etag.is_empty() && !modified.is_empty(), "{full}");
    assert_eq!(header(&full, "accept-ranges"), "bytes");
    let head = req("", "HEAD", "/secret.txt");
    assert!(
        head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"),
        "HEAD has no body: {head:?}"
    );
    assert_eq!(header(&head, "content-length"), "10");
    let ranged = req("Range: bytes=0-1\r\n", "GET", "/secret.txt");
    assert!(ranged.starts_with("HTTP/1.1 206 "), "{ranged}");
    assert_eq!(header(&ranged, "content-range"), "bytes 0-1/10");
    assert!(ranged.ends_with("\r\n\r\nt1"), "{ranged}");
    let unsatisfiable = req("Range: bytes=999-\r\n", "GET", "/secret.txt");
    assert!(
        unsatisfiable.starts_with("HTTP/1.1 416 "),
        "{unsatisfiable}"
    );
    assert_eq!(header(&unsatisfiable, "content-range"), "bytes */10");
    let not_modified = req(&format!("If-None-Match: {etag}\r\n"), "GET", "/secret.txt");
    assert!(not_modified.starts_with("HTTP/1.1 304 "), "{not_modified}");
    let since = req(
        &format!("If-Modified-Since: {modified}\r\n"),
        "GET",
        "/secret.txt",
    );
    assert!(since.starts_with("HTTP/1.1 304 "), "{since}");
    // A directory without its slash: 301 to the slashed URL on the Host asked for.
    std::fs::create_dir_all(server.dir.join("t1/sub")).unwrap();
    own_tree(&server.dir.join("t1/sub"), 20001, 21001);
    let moved = req("", "GET", "/sub");
    assert!(moved.starts_with("HTTP/1.1 301 "), "{moved}");
    assert_eq!(header(&moved, "location"), "http://t1.test/sub/");
    // httpd serves a static file for POST too, and refuses PUT and DELETE.
    let posted = req("Content-Length: 0\r\n", "POST", "/secret.txt");
    assert!(posted.starts_with("HTTP/1.1 200 "), "{posted}");
    for method in ["PUT", "DELETE"] {
        assert_eq!(
            req("", method, "/secret.txt").split_whitespace().nth(1),
            Some("405"),
            "{method}"
        );
    }
}

#[test]
fn the_default_vhost_runs_as_user_and_group() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: unknown.test\r\n\r\n";
    assert_eq!(
        exchange(&mut conn, request),
        Some((200, "default site\n".into()))
    );
    let nobody = itkd_sys::users::user_by_name("nobody").unwrap();
    let nogroup = itkd_sys::users::group_by_name("nogroup").unwrap();
    let workers: Vec<(i32, String)> = descendants(server.pid())
        .into_iter()
        .filter(|(_, s)| {
            status_field(s, "CapEff") == "0000000000000000"
                && status_field(s, "Uid").starts_with(&nobody.uid.to_string())
        })
        .collect();
    assert_eq!(workers.len(), 1, "the switched worker of the default vhost");
    let status = &workers[0].1;
    assert_eq!(
        status_field(status, "Uid"),
        format!("{0} {0} {0} {0}", nobody.uid)
    );
    assert_eq!(
        status_field(status, "Gid"),
        format!("{0} {0} {0} {0}", nogroup)
    );
}

/// (inode, state) of every TCP socket on the machine (/proc/net/tcp and tcp6); state 0A
/// is LISTEN.
fn tcp_socket_states() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 {
                out.push((cols[9].to_owned(), cols[3].to_owned()));
            }
        }
    }
    out
}

/// Every process of a running server is single-threaded (fork is only sound so), and a
/// worker whose client has sent nothing yet is `User` with the three capabilities the
/// switch needs and nothing of any tenant's: the pre-switch window, observed live.
#[test]
fn every_process_is_single_threaded_and_an_unrouted_worker_is_no_tenant_yet() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let master = server.pid().to_string();
    let mut served = TcpStream::connect(server.addr()).unwrap();
    let request = b"GET /f.txt HTTP/1.1\r\nHost: t2.test\r\n\r\n";
    assert_eq!(exchange(&mut served, request).map(|r| r.0), Some(200));
    let _silent = TcpStream::connect(server.addr()).unwrap();
    let is_worker = |s: &String| status_field(s, "PPid") != master;
    let unswitched = |s: &String| status_field(s, "Uid") == "65534 65534 65534 65534";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let processes = loop {
        let processes = descendants(server.pid());
        let waiting = processes
            .iter()
            .filter(|(_, s)| is_worker(s) && unswitched(s))
            .count();
        if waiting == 1 || std::time::Instant::now() > deadline {
            break processes;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let master_status = std::fs::read_to_string(format!("/proc/{master}/status")).unwrap();
    for (pid, status) in std::iter::once(&(server.pid(), master_status)).chain(&processes) {
        assert_eq!(status_field(status, "Threads"), "1", "pid {pid}\n{status}");
    }
    let pool = processes.iter().filter(|(_, s)| !is_worker(s)).count();
    assert!(pool >= 3, "MinSpareServers 3: {pool} pool children");
    let workers: Vec<&String> = processes
        .iter()
        .filter(|(_, s)| is_worker(s))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(workers.len(), 2, "one worker per connection");
    assert_eq!(
        workers
            .iter()
            .filter(|s| status_field(s, "Uid").starts_with("20002 "))
            .count(),
        1,
        "the served connection's worker is t2"
    );
    let waiting = workers
        .iter()
        .find(|s| unswitched(s))
        .expect("the silent connection's worker is still User");
    assert_eq!(status_field(waiting, "Gid"), "65534 65534 65534 65534");
    assert_eq!(status_field(waiting, "Groups"), "65534");
    // CAP_SETGID, CAP_SETUID and CAP_SYS_NICE, and an empty bounding set.
    assert_eq!(status_field(waiting, "CapEff"), "00000000008000c0");
    assert_eq!(status_field(waiting, "CapPrm"), "00000000008000c0");
    for cap in ["CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(status_field(waiting, cap), "0000000000000000", "{cap}");
    }
    assert_eq!(status_field(waiting, "Seccomp"), "2");
}

/// A descriptor the starter left open (here a shell's `exec 7<`) reaches no process of
/// the server: the master closes what it inherited before it forks anything.
#[test]
fn nothing_the_starter_left_open_reaches_any_process() {
    if !root() {
        return;
    }
    let dir = server_dir();
    tenant(dir.path(), 1, &[("index.html", "t1 index\n")]);
    let inherited = dir.path().join("left-open");
    std::fs::write(&inherited, "the starter's file\n").unwrap();
    let config = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
    <Directory DIR/t1>
        Require all granted
    </Directory>
</VirtualHost>
";
    let prefix = format!("exec 7<{}", inherited.display());
    let server = Server::start_after_sh(dir.path(), config, Some(&prefix));
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: t1.test\r\n\r\n";
    assert_eq!(
        exchange(&mut conn, request),
        Some((200, "t1 index\n".into()))
    );
    let mut pids: Vec<i32> = descendants(server.pid()).iter().map(|p| p.0).collect();
    pids.push(server.pid());
    assert!(
        pids.len() >= 3,
        "master, pool children and a worker: {pids:?}"
    );
    for pid in pids {
        let open: Vec<std::path::PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        assert!(!open.contains(&inherited), "pid {pid} holds it: {open:?}");
    }
}

/// `AssignUserIDExpr`/`AssignGroupIDExpr` results are checked against LimitUIDRange and
/// LimitGIDRange at request time: an expression that names root gets a 500 and the log
/// says why; the same expressions naming another user or group serve as that one.
#[test]
fn an_expression_naming_root_is_refused_with_500_and_others_are_served_as_named() {
    if !root() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    // Readable only by uid 1 (daemon), and only by gid 1 (daemon) under /g: a 200 shows
    // the expression's identity served it.
    std::fs::create_dir_all(base.join("pub/g")).unwrap();
    for (path, uid, gid, mode) in [("pub/u.txt", 1, 0, 0o400), ("pub/g/g.txt", 0, 1, 0o040)] {
        std::fs::write(base.join(path), format!("{path}\n")).unwrap();
        std::os::unix::fs::chown(base.join(path), Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(base.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let config = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
<Directory DIR/pub>
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName byhost.test
    DocumentRoot DIR/pub
    AssignUserIDExpr %{HTTP_HOST}
    AssignGroupIDExpr #21005
    <Location /g>
        AssignUserIDExpr #20005
        AssignGroupIDExpr %{HTTP_HOST}
    </Location>
</VirtualHost>
";
    let server = Server::start(base, config);
    let a = server.addr();
    assert_eq!(get(a, "daemon", "/u.txt"), (200, "pub/u.txt\n".into()));
    assert_eq!(get(a, "daemon", "/g/g.txt"), (200, "pub/g/g.txt\n".into()));
    assert_eq!(get(a, "root", "/u.txt").0, 500);
    assert_eq!(get(a, "root", "/g/g.txt").0, 500);
    assert_eq!(get(a, "nosuchuser.test", "/u.txt").0, 500);
    let log = server.error_log();
    for line in [
        "uid 0 is outside LimitUIDRange",
        "gid 0 is outside LimitGIDRange",
        "AssignUserIDExpr %{HTTP_HOST} gave 'nosuchuser.test', which is no user",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
}

/// A worker keeps the last file it opened for the next request on the connection: a file
/// replaced, rewritten or locked between two requests is served as it is now.
#[test]
fn keep_alive_requests_see_a_file_replaced_rewritten_or_locked_at_once() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let f = dir.path().join("t2/f.txt");
    let put = |text: &str, via: &str| {
        let tmp = dir.path().join("t2").join(via);
        std::fs::write(&tmp, text).unwrap();
        std::os::unix::fs::chown(&tmp, Some(20002), Some(21002)).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        if tmp != f {
            std::fs::rename(&tmp, &f).unwrap();
        }
    };
    let ask = |conn: &mut TcpStream| {
        conn.write_all(b"GET /f.txt HTTP/1.1\r\nHost: t2.test\r\n\r\n")
            .unwrap();
        read_response(conn)
    };
    let connect = || {
        let conn = TcpStream::connect(server.addr()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn
    };
    // MaxKeepAliveRequests 3: two connections of three requests.
    let mut conn = connect();
    assert_eq!(ask(&mut conn), Some((200, "t2 file\n".into())));
    put("replaced by rename\n", "new.tmp");
    assert_eq!(ask(&mut conn), Some((200, "replaced by rename\n".into())));
    put("rewritten in place, longer than before\n", "f.txt");
    assert_eq!(
        ask(&mut conn),
        Some((200, "rewritten in place, longer than before\n".into()))
    );
    let mut conn = connect();
    assert_eq!(
        ask(&mut conn),
        Some((200, "rewritten in place, longer than before\n".into()))
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert_eq!(ask(&mut conn).map(|r| r.0), Some(403), "mode 000");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&f, Some(20001), None).unwrap();
    assert_eq!(
        ask(&mut conn).map(|r| r.0),
        Some(403),
        "given to another uid"
    );
}

/// A worker reuses its last section walk only for the same vhost, path and URI: requests
/// of one keep-alive connection alternating between a denied `<Location>` and a file
/// beside it each get their own sections.
#[test]
fn keep_alive_requests_to_other_paths_get_their_own_sections() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    for (path, want) in [
        ("/private/p.txt", 403),
        ("/f.txt", 200),
        ("/private/p.txt", 403),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t3.test\r\n\r\n");
        let status = exchange(&mut conn, request.as_bytes()).map(|r| r.0);
        assert_eq!(status, Some(want), "{path}");
    }
}

/// The executable anonymous mappings of `pid` backed by huge pages, in kB of
/// AnonHugePages, and whether a mapping of the itkd binary itself is executable.
fn code_mappings(pid: i32) -> (u64, bool) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let (mut huge_kb, mut file_code) = (0, false);
    let mut anonymous_code = false;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            let exec = fields.get(1).is_some_and(|p| p.contains('x'));
            let path = fields.get(5).copied().unwrap_or("");
            anonymous_code = exec && path.is_empty();
            file_code |= exec && path.ends_with("/itkd");
        } else if anonymous_code && fields.first() == Some(&"AnonHugePages:") {
            huge_kb += fields[1].parse::<u64>().unwrap();
        }
    }
    (huge_kb, file_code)
}

/// The master copies its code and constants into 2 MiB pages before the first fork, so a
/// worker starts with every page of code mapped (bench/README.md: a third of a new
/// connection's page faults were code); a pool child and a worker show that mapping,
/// backed by huge pages, and none of the binary's. `ITKD_FILE_BACKED_CODE` (for
/// profilers, which cannot name functions in anonymous memory) leaves the binary mapped.
#[test]
fn code_sits_in_huge_pages_shared_by_every_fork_unless_told_otherwise() {
    if !root() {
        return;
    }
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let config = format!("{CONFIG}LogLevel info\n");
    for file_backed in [false, true] {
        let dir = server_dir();
        let base = dir.path();
        default_site(base, "default site\n");
        let prefix = file_backed.then_some("export ITKD_FILE_BACKED_CODE=1");
        let server = Server::start_after_sh(base, &config, prefix);
        // The only connection: its worker is the only process whose parent is not the
        // master while it waits for a request.
        let mut silent = TcpStream::connect(server.addr()).unwrap();
        let master = server.pid().to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let worker = loop {
            let worker = descendants(server.pid())
                .into_iter()
                .find(|(_, s)| status_field(s, "PPid") != master);
            if worker.is_some() || std::time::Instant::now() > deadline {
                break worker.expect("a worker for the open connection").0;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let pool = descendants(server.pid())
            .into_iter()
            .find(|(_, s)| status_field(s, "PPid") == master)
            .unwrap()
            .0;
        let log = server.error_log();
        for pid in [server.pid(), pool, worker] {
            let (huge_kb, file_code) = code_mappings(pid);
            if file_backed || thp.contains("[never]") {
                assert_eq!((huge_kb, file_code), (0, true), "pid {pid}\n{log}");
            } else {
                assert!(huge_kb >= 2048, "pid {pid}: {huge_kb} kB\n{log}");
                assert!(!file_code, "pid {pid}: the binary is still mapped\n{log}");
            }
        }
        let expected = if file_backed {
            "code left in the binary's file-backed pages: ITKD_FILE_BACKED_CODE is set"
        } else if thp.contains("[never]") {
            "code left in the binary's file-backed pages: transparent huge pages are disabled"
        } else {
            "bytes) in 2 MiB pages, mapped by every fork"
        };
        assert!(log.contains(expected), "{log}");
        let request = b"GET / HTTP/1.1\r\nHost: main.test\r\n\r\n";
        assert_eq!(exchange(&mut silent, request).map(|r| r.0), Some(200));
    }
}

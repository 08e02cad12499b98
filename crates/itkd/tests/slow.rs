//! Slow and abusive clients (issue 8, item 3): mod_reqtimeout's limits, and a pool filled
//! with idle connections recovers once they are cut.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

const CONFIG: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/default
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
Timeout 20
RequestReadTimeout header=2 body=2,MinRate=1000
StartServers 3
MinSpareServers 1
MaxSpareServers 3
MaxRequestWorkers 3
<Directory DIR>
    Options ExecCGI
    AddHandler cgi-script .cgi
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1
    AssignUserID #20021 #21021
</VirtualHost>
";

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir(base.join("default")).unwrap();
    let t1 = base.join("t1");
    std::fs::create_dir(&t1).unwrap();
    std::fs::write(t1.join("index.html"), "t1\n").unwrap();
    std::fs::write(
        t1.join("cat.cgi"),
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\ncat\n",
    )
    .unwrap();
    own_tree(&t1, 20021, 21021);
    std::fs::set_permissions(t1.join("cat.cgi"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let server = Server::start(base, CONFIG);
    (dir, server)
}

/// Reads until the server closes or `limit` passes: (what came, how long it took).
fn until_closed(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_slowloris_is_cut_at_the_header_limit() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t1.test\r\n").unwrap();
    let started = Instant::now();
    // One header line every 300 ms: it would go on for 6 s; the limit is 2 s.
    let mut cut = false;
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            cut = true;
            break;
        }
    }
    let (got, _) = until_closed(&mut s, Duration::from_secs(3));
    assert!(cut || started.elapsed() < Duration::from_secs(9), "not cut");
    assert!(!got.contains("200 OK"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(server.addr(), "t1.test", "/").0, 200);
}

#[test]
fn a_slow_body_gets_408_for_a_script_and_a_file() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    for path in ["/cat.cgi", "/index.html"] {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: t1.test\r\nContent-Length: 100000\r\n\r\n0123456789"
            )
            .as_bytes(),
        )
        .unwrap();
        let (got, took) = until_closed(&mut s, Duration::from_secs(8));
        assert!(got.starts_with("HTTP/1.1 408 "), "{path}: {got:?}");
        assert!(took < Duration::from_secs(5), "{path}: {took:?}");
    }
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert!(log.contains("AH01382: Request body read timeout"), "{log}");
    assert_eq!(get(server.addr(), "t1.test", "/").0, 200);
}

#[test]
fn a_pool_full_of_idle_connections_recovers_when_they_are_cut() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    // MaxRequestWorkers 3: three silent connections take every pool child.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    // This one waits in the listen queue until the header limit (2 s) frees a child.
    assert_eq!(get(server.addr(), "t1.test", "/"), (200, "t1\n".into()));
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    drop(idle);
}

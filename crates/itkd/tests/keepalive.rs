//! Keep-alive end to end as root: one identity per connection, MaxKeepAliveRequests and
//! KeepAliveTimeout, and what later requests of a connection see.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

#[test]
fn keep_alive_serves_the_same_identity_and_closes_on_another() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
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
fn keep_alive_ends_after_max_requests_and_after_the_idle_timeout() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
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

/// A worker keeps the last file it opened for the next request on the connection: a file
/// replaced, rewritten or locked between two requests is served as it is now.
#[test]
fn keep_alive_requests_see_a_file_replaced_rewritten_or_locked_at_once() {
    if !root() {
        return;
    }
    let (dir, server) = serve_setup();
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
    let (_dir, server) = serve_setup();
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

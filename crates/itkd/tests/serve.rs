//! Serving files end to end as root: malformed requests, httpd's pages and log lines,
//! ErrorDocument, FIFOs and devices, large files and ranges, static file semantics.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn malformed_requests_get_httpds_statuses_and_the_server_goes_on() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
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
fn pages_and_log_lines_are_httpds() {
    if !root() {
        return;
    }
    let (dir, server) = serve_setup();
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
    let (_dir, server) = serve_setup();
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
fn a_fifo_or_a_device_is_refused_at_once_and_never_holds_a_worker() {
    if !root() {
        return;
    }
    let (dir, server) = serve_setup();
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

#[test]
fn large_files_and_ranges_arrive_byte_for_byte() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
    let url = format!("http://{}/big.bin", server.addr());
    let want = serve_big_file();
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
    let (_dir, server) = serve_setup();
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

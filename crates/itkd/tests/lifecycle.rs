//! The server's life end to end as root: graceful restart under load and with a broken
//! configuration, detaching and `-k stop`, the code in huge pages.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::*;

#[test]
fn graceful_restart_under_load_loses_no_request() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
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
fn a_broken_configuration_on_graceful_restart_keeps_the_old_one_serving() {
    if !root() {
        return;
    }
    let (dir, server) = serve_setup();
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
    let config = format!("{SERVE_CONFIG}LogLevel info\n");
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

//! Each tenant served as itself, end to end as root: the worker's identity, threads and
//! descriptors in /proc, the default vhost, AssignUserIDExpr, MaxClientsVHost.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

#[test]
fn each_tenant_is_served_as_itself_and_never_another() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
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
    let (dir, server) = serve_setup();
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
fn max_clients_vhost_refuses_one_over_and_recovers_after_sigkill() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
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
fn the_default_vhost_runs_as_user_and_group() {
    if !root() {
        return;
    }
    let (_dir, server) = serve_setup();
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
    let (_dir, server) = serve_setup();
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

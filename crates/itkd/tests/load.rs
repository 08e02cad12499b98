//! Load and faults, as root: a bounded mixed load over many tenants where every response
//! must come from its vhost's uid, and faults (SIGKILLed workers and pool children, a
//! script that leaves a daemon behind, a tenant that never answers, too few descriptors)
//! after which the master is the same process, other vhosts answer and the scoreboard
//! admits exactly `MaxClientsVHost` again.
//!
//! The tests share uids 20011-20016 and count processes of those uids, so they run one at
//! a time (`SERIAL`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// Tenants t11..t16: uids 20011..20016, gids 21011..21016 (other suites use 20001-20004).
const TENANTS: std::ops::RangeInclusive<u32> = 11..=16;
/// The tenant whose vhost has `MaxClientsVHost 2` and a script that never answers.
const LIMITED: u32 = 16;
/// The idle pool: MinSpareServers..=MaxSpareServers (StartServers 6 at the start; after
/// a load it shrinks to MaxSpareServers, after killed pool children it regrows to
/// MinSpareServers — httpd would also keep MaxSpareServers >= MinSpareServers + 1).
const IDLE_POOL: std::ops::RangeInclusive<usize> = 5..=6;

const CONFIG_HEAD: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/www
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
Timeout 3
KeepAlive On
KeepAliveTimeout 5
MaxKeepAliveRequests 100
StartServers 6
MinSpareServers 5
MaxSpareServers 6
MaxRequestWorkers 12
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
<Directory /usr/lib/cgi-bin>
    Options FollowSymLinks
    Require all granted
</Directory>
<Directory DIR>
    Require all granted
</Directory>
Action application/x-httpd-php /cgi-bin/php
AddHandler application/x-httpd-php .php
";

const ID_CGI: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nid -u\n";
const HANG_CGI: &str = "#!/bin/sh\nexec sleep 30\n";
// The daemon keeps none of the script's descriptors, so the response can end.
const DAEMON_CGI: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n(sleep 30 </dev/null >/dev/null 2>&1 &)\necho started\n";
const UID_PHP: &str = "<?php echo posix_getuid(), \"\\n\"; ?>";

fn config() -> String {
    let mut c = CONFIG_HEAD.to_owned();
    for n in TENANTS {
        let limit = if n == LIMITED {
            "    MaxClientsVHost 2\n"
        } else {
            ""
        };
        c += &format!(
            "<VirtualHost 127.0.0.1:PORT>\n    ServerName t{n}.test\n    DocumentRoot DIR/t{n}/www\n    \
             ScriptAlias /s/ DIR/t{n}/cgi/\n    AssignUserID #{} #{}\n{limit}</VirtualHost>\n",
            20000 + n,
            21000 + n
        );
    }
    c
}

/// The tenant trees; returns the directory (kept alive by the caller).
fn trees() -> tempfile::TempDir {
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    for n in TENANTS {
        let uid_txt = format!("{}\n", 20000 + n);
        tenant(
            base,
            n,
            &[
                ("www/uid.txt", uid_txt.as_str()),
                ("www/uid.php", UID_PHP),
                ("cgi/id", ID_CGI),
                ("cgi/hang", HANG_CGI),
                ("cgi/daemon", DAEMON_CGI),
            ],
        );
        for script in ["id", "hang", "daemon"] {
            std::fs::set_permissions(
                base.join(format!("t{n}/cgi/{script}")),
                std::fs::Permissions::from_mode(0o700),
            )
            .unwrap();
        }
    }
    dir
}

/// What a request asks for; each kind answers with the uid that served it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Static,
    Cgi,
    Php,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Static => "/uid.txt",
            Kind::Cgi => "/s/id",
            Kind::Php => "/uid.php",
        }
    }
}

/// A small deterministic generator (xorshift), so a failing mix can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn kind(&mut self) -> Kind {
        // PHP costs a php-cgi start (~30 ms of CPU here): a fifth of the requests.
        match self.below(10) {
            0..=4 => Kind::Static,
            5..=7 => Kind::Cgi,
            _ => Kind::Php,
        }
    }
}

/// One response from a buffered connection: status, body, and whether the server said
/// it closes. Content-Length, chunked, or (with `Connection: close`) until EOF.
fn read_one(r: &mut BufReader<TcpStream>) -> Option<(u16, String, bool)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_ascii_lowercase());
    }
    let status = head.first()?.split_whitespace().nth(1)?.parse().ok()?;
    let field = |name: &str| {
        head.iter()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let close = field("connection:").is_some_and(|v| v == "close");
    let mut body = Vec::new();
    if let Some(len) = field("content-length:") {
        body.resize(len.parse().ok()?, 0);
        r.read_exact(&mut body).ok()?;
    } else if field("transfer-encoding:").is_some_and(|v| v == "chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        r.read_to_end(&mut body).ok()?;
    }
    Some((status, String::from_utf8_lossy(&body).into_owned(), close))
}

/// Requests `kinds` on one connection to tenant `n`: kept alive between them when there
/// are several, `Connection: close` on the last. Returns one problem per bad request.
fn exchange(addr: SocketAddr, n: u32, kinds: &[Kind]) -> Vec<String> {
    let uid = (20000 + n).to_string();
    let mut problems = Vec::new();
    let Ok(stream) = TcpStream::connect(addr) else {
        return kinds
            .iter()
            .map(|k| format!("t{n} {k:?}: connect failed"))
            .collect();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for (i, kind) in kinds.iter().enumerate() {
        let last = i + 1 == kinds.len();
        let conn = if last { "close" } else { "keep-alive" };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: t{n}.test\r\nConnection: {conn}\r\n\r\n",
            kind.path()
        );
        if writer.write_all(request.as_bytes()).is_err() {
            problems.push(format!("t{n} {kind:?} #{i}: lost (write)"));
            continue;
        }
        match read_one(&mut reader) {
            None => problems.push(format!("t{n} {kind:?} #{i}: lost (no full response)")),
            Some((200, body, _)) if body.trim() == uid => {}
            // A script killed after its head: the response ends where its output did.
            Some((200, body, _)) if body.trim().is_empty() => {
                problems.push(format!("t{n} {kind:?} #{i}: cut (empty body)"));
            }
            Some((200, body, _)) => problems.push(format!("t{n} {kind:?}: WRONG UID {body:?}")),
            Some((status, body, _)) => problems.push(format!(
                "t{n} {kind:?}: unexpected status {status}: {body:.200}"
            )),
        }
    }
    // Exactly one response per request: nothing more follows the last one.
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    if !rest.is_empty() {
        problems.push(format!("t{n}: {} extra bytes", rest.len()));
    }
    problems
}

/// Drives `total` requests from `threads` threads over mixed vhosts and kinds; half of
/// the connections carry 4 requests (keep-alive), half carry one. Returns the problems.
fn mixed_load(addr: SocketAddr, threads: u64, total: u64) -> Vec<String> {
    let per_thread = total.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0x2545_F491));
                let mut problems = Vec::new();
                let mut sent = 0;
                while sent < per_thread {
                    let n = *TENANTS.start() + rng.below(5) as u32; // t11..t15
                    let count = if rng.below(2) == 0 { 1 } else { 4 };
                    let kinds: Vec<Kind> = (0..count).map(|_| rng.kind()).collect();
                    problems.extend(exchange(addr, n, &kinds));
                    sent += count;
                }
                (sent, problems)
            })
        })
        .collect();
    let mut problems = Vec::new();
    let mut sent = 0;
    for h in handles {
        let (s, p) = h.join().unwrap();
        sent += s;
        problems.extend(p);
    }
    eprintln!("mixed load: {sent} requests, {} problems", problems.len());
    problems
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Direct children of the master: the pool.
fn pool_children(master: i32) -> Vec<i32> {
    descendants(master)
        .into_iter()
        .filter(|(_, s)| status_field(s, "PPid") == master.to_string())
        .map(|(p, _)| p)
        .collect()
}

/// Descendants running as one of the tenant uids (workers after the switch, scripts).
fn tenant_descendants(master: i32) -> Vec<i32> {
    descendants(master)
        .into_iter()
        .filter(|(_, s)| {
            let uid: u32 = status_field(s, "Uid")
                .split(' ')
                .next()
                .and_then(|u| u.parse().ok())
                .unwrap_or(0);
            TENANTS.contains(&(uid - 20000.min(uid)))
        })
        .map(|(p, _)| p)
        .collect()
}

fn processes_of(uid: u32, name: Option<&str>) -> Vec<i32> {
    let mut args = vec!["-u".to_owned(), uid.to_string()];
    if let Some(name) = name {
        args.extend(["-x".to_owned(), name.to_owned()]);
    }
    let out = Command::new("pgrep").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn kill(signal: &str, pid: i32) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Waits (bounded) until the server is idle: exactly the pool, no tenant process, no
/// process of a tenant uid anywhere. Returns what it saw last when that never happens.
fn wait_idle(server: &Server, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let all = descendants(server.pid()).len();
        let pool = pool_children(server.pid()).len();
        let tenants: Vec<i32> = TENANTS
            .flat_map(|n| processes_of(20000 + n, None))
            .collect();
        if all == pool && IDLE_POOL.contains(&pool) && tenants.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let ps = Command::new("ps")
                .args(["-e", "-o", "pid,ppid,user,stat,etime,cmd"])
                .output()
                .unwrap();
            let ps = String::from_utf8_lossy(&ps.stdout);
            let mine: Vec<&str> = ps
                .lines()
                .filter(|l| l.contains("itkd") || l.contains("200"))
                .collect();
            return Err(format!(
                "descendants {all}, pool {pool}, tenant processes {tenants:?}\n{}",
                mine.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The scoreboard is consistent: the limited vhost admits exactly 2 kept-alive clients,
/// refuses the 3rd with 503 while another vhost answers, and admits again once they go.
fn check_limit(server: &Server) {
    let a = server.addr();
    let mut held = Vec::new();
    for i in 0..2 {
        let mut c = TcpStream::connect(a).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(format!("GET /uid.txt HTTP/1.1\r\nHost: t{LIMITED}.test\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(
            read_response(&mut c).map(|r| r.0),
            Some(200),
            "client {i} of MaxClientsVHost 2 is admitted"
        );
        held.push(c);
    }
    assert_eq!(
        get(a, &format!("t{LIMITED}.test"), "/uid.txt").0,
        503,
        "the 3rd client of MaxClientsVHost 2 is refused"
    );
    assert_eq!(get(a, "t11.test", "/uid.txt"), (200, "20011\n".into()));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = get(a, &format!("t{LIMITED}.test"), "/uid.txt").0;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the limited vhost stays at {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn fds_of_server(server: &Server) -> (usize, Vec<usize>) {
    let mut pool: Vec<usize> = pool_children(server.pid())
        .into_iter()
        .map(fd_count)
        .collect();
    pool.sort_unstable();
    pool.dedup();
    (fd_count(server.pid()), pool)
}

#[test]
fn mixed_load_is_served_by_the_right_uid_and_leaves_nothing_behind() {
    if !root() || !php_present() {
        return;
    }
    let (_alone, dir) = alone_with_trees();
    let server = Server::start(dir.path(), &config());
    wait_idle(&server, 10).unwrap();
    let before = fds_of_server(&server);
    assert_eq!(
        before.1.len(),
        1,
        "pool children hold the same fds: {before:?}"
    );
    let started = Instant::now();
    // The issue asks for 10 000 requests over 64 connections; on a shared 2-core machine
    // that is over a minute of fork + php-cgi in a debug build next to other suites, so
    // CI runs 3 000 over 48 threads, the same mix (5 tenants, 3 kinds, keep-alive on and
    // off) at ~6-10 s. The full size by hand:
    // ITKD_LOAD_CLIENTS=64 ITKD_LOAD_REQUESTS=10000 cargo test --test load mixed_load
    let knob = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (clients, requests) = (
        knob("ITKD_LOAD_CLIENTS", 48),
        knob("ITKD_LOAD_REQUESTS", 3000),
    );
    let problems = mixed_load(server.addr(), clients, requests);
    eprintln!(
        "mixed load over {clients} clients took {:?}",
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} problems, first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
    wait_idle(&server, 20).unwrap();
    assert_eq!(
        fds_of_server(&server),
        before,
        "master and pool fds (count) after the load"
    );
    check_limit(&server);
}

/// `GET` with `Connection: close`, read with `read_one` (scripts answer chunked):
/// (status, body), or (0, "") when no full response came.
fn fetch(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    read_one(&mut BufReader::new(s)).map_or((0, String::new()), |(st, b, _)| (st, b))
}

/// Kills, by pid, whatever still runs as a tenant uid (20011-20016 are this file's own)
/// when a test ends, passed or failed: a daemon left by a script must not outlive it.
/// One load test at a time, tenant processes killed when it ends (fields drop in order:
/// the cleanup, then the lock).
struct Alone {
    _cleanup: Cleanup,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// The lock, the cleanup and the six tenants' trees every test here starts with.
fn alone_with_trees() -> (Alone, tempfile::TempDir) {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let alone = Alone {
        _cleanup: Cleanup,
        _serial: serial,
    };
    (alone, trees())
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in TENANTS {
            for pid in processes_of(20000 + n, None) {
                kill("KILL", pid);
            }
        }
    }
}

/// Whether the master process is still running (not exited, not a zombie).
fn master_alive(server: &mut Server) -> bool {
    matches!(server.child.try_wait(), Ok(None))
}

#[test]
fn sigkilled_workers_and_pool_children_during_load_leave_the_master_and_counts_intact() {
    if !root() || !php_present() {
        return;
    }
    let (_alone, dir) = alone_with_trees();
    let mut server = Server::start(dir.path(), &config());
    wait_idle(&server, 10).unwrap();
    let master = server.pid();
    let before = fds_of_server(&server);
    let addr = server.addr();
    let load = std::thread::spawn(move || mixed_load(addr, 16, 800));
    // The storm: for ~3 s, a SIGKILL every 50 ms, alternately to a random tenant process
    // (a worker after its switch, or its script) and a random pool child.
    let mut rng = Rng(0xD1CE_5EED);
    let (mut workers, mut pool) = (0, 0);
    for i in 0..60 {
        let targets = if i % 2 == 0 {
            tenant_descendants(master)
        } else {
            pool_children(master)
        };
        if !targets.is_empty() {
            let pid = targets[rng.below(targets.len() as u64) as usize];
            kill("KILL", pid);
            if i % 2 == 0 {
                workers += 1;
            } else {
                pool += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let problems = load.join().unwrap();
    eprintln!("killed {workers} tenant processes and {pool} pool children");
    assert!(workers > 5 && pool > 5, "the storm hit: {workers} {pool}");
    // Requests cut by a kill are lost or fail; none may be answered by a wrong uid.
    let wrong: Vec<&String> = problems
        .iter()
        .filter(|p| p.contains("WRONG UID"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(master_alive(&mut server), "the master survives");
    assert_eq!(server.pid(), master);
    wait_idle(&server, 20).unwrap();
    assert_eq!(
        fds_of_server(&server),
        before,
        "master and pool fds (count) after the storm"
    );
    let after = mixed_load(addr, 8, 200);
    assert!(after.is_empty(), "after the storm: {after:?}");
    check_limit(&server);
    assert!(master_alive(&mut server));
}

#[test]
fn a_script_that_leaves_a_daemon_behind_still_answers_promptly() {
    if !root() {
        return;
    }
    let (_alone, dir) = alone_with_trees();
    let mut server = Server::start(dir.path(), &config());
    let started = Instant::now();
    let answer = fetch(server.addr(), "t15.test", "/s/daemon");
    let took = started.elapsed();
    assert_eq!(answer, (200, "started\n".into()));
    assert!(
        took < Duration::from_secs(3),
        "the response waited for the daemon: {took:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let daemons = processes_of(20015, Some("sleep"));
    eprintln!("daemon left by the script: {daemons:?}");
    // As with httpd, the daemon outlives its script and the request; itkd's master is a
    // child subreaper, so the daemon becomes its child (not init's) and is reaped by it.
    // Stopping tenants' daemons is not itkd's job (it would be a cgroup's).
    assert_eq!(daemons.len(), 1, "the daemon survives, as with httpd");
    let master = server.pid().to_string();
    let parent = std::fs::read_to_string(format!("/proc/{}/status", daemons[0]))
        .map(|s| status_field(&s, "PPid"))
        .unwrap_or_default();
    assert_eq!(parent, master, "the master adopted the daemon");
    for &pid in &daemons {
        kill("KILL", pid);
    }
    wait_idle(&server, 10).unwrap();
    assert_eq!(
        fetch(server.addr(), "t11.test", "/s/id"),
        (200, "20011\n".into())
    );
    check_limit(&server);
    assert!(master_alive(&mut server));
}

#[test]
fn a_tenant_that_never_answers_holds_only_its_own_max_clients_vhost() {
    if !root() {
        return;
    }
    let (_alone, dir) = alone_with_trees();
    let mut server = Server::start(dir.path(), &config());
    let a = server.addr();
    let hung: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let started = Instant::now();
                (
                    fetch(a, &format!("t{LIMITED}.test"), "/s/hang").0,
                    started.elapsed(),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        processes_of(20000 + LIMITED, Some("sleep")).len(),
        2,
        "both scripts hang"
    );
    assert_eq!(
        get(a, &format!("t{LIMITED}.test"), "/uid.txt").0,
        503,
        "the 3rd client of the hung vhost"
    );
    for n in 11..=15 {
        assert_eq!(
            fetch(a, &format!("t{n}.test"), "/s/id"),
            (200, format!("{}\n", 20000 + n))
        );
    }
    // Timeout 3: the scripts are killed, the clients get 504 (AH01220), the slots free.
    for h in hung {
        let (status, took) = h.join().unwrap();
        assert_eq!(status, 504);
        assert!(took < Duration::from_secs(8), "{took:?}");
    }
    wait_idle(&server, 10).unwrap();
    check_limit(&server);
    assert!(master_alive(&mut server));
}

#[test]
fn too_few_descriptors_never_take_the_master_down() {
    if !root() {
        return;
    }
    let (_alone, dir) = alone_with_trees();
    // 12: the master holds 5 descriptors and a pool child 6, so both have room; a worker
    // has room for a static file but not for a script's three pipes plus exec's own (at
    // 14 it has: the limit sits right at the worker's needs). Not tested: at `ulimit -n 6`
    // no pool child can start; the master stays alive serving nothing, re-forking them
    // once a second and logging each exit (httpd stops instead).
    const NOFILE: u32 = 12;
    let mut server = Server::start_with_nofile(dir.path(), &config(), Some(NOFILE));
    let master = server.pid();
    let limits = std::fs::read_to_string(format!("/proc/{master}/limits")).unwrap();
    assert!(
        limits.lines().any(|l| l.starts_with("Max open files")
            && l.split_whitespace().nth(3) == Some(&*NOFILE.to_string())),
        "{limits}"
    );
    wait_idle(&server, 10).unwrap();
    let before = fds_of_server(&server);
    // More connections at once than any process may hold descriptors: each connection
    // costs its own worker's descriptors, never the master's or a pool child's, so all
    // of them are served (up to MaxRequestWorkers at a time, the rest from the backlog).
    let a = server.addr();
    let mut conns: Vec<TcpStream> = (0..3 * NOFILE)
        .map(|_| TcpStream::connect(a).unwrap())
        .collect();
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(b"GET /uid.txt HTTP/1.1\r\nHost: t12.test\r\nConnection: close\r\n\r\n")
            .unwrap();
    }
    for (i, c) in conns.drain(..).enumerate() {
        let answer = read_one(&mut BufReader::new(c)).map(|(s, b, _)| (s, b));
        assert_eq!(answer, Some((200, "20012\n".into())), "connection {i}");
    }
    // A script needs more than a worker has left: exec fails with EMFILE and the client
    // gets httpd's 500 for a failed exec (AH01241), logged; the server goes on.
    assert_eq!(fetch(a, "t11.test", "/s/id").0, 500);
    assert!(
        server.error_log().contains("(24)Too many open files"),
        "{}",
        server.error_log()
    );
    assert!(master_alive(&mut server), "the master survives");
    assert_eq!(server.pid(), master);
    assert_eq!(fetch(a, "t13.test", "/uid.txt"), (200, "20013\n".into()));
    wait_idle(&server, 10).unwrap();
    assert_eq!(fds_of_server(&server), before);
    check_limit(&server);
}

/// A tmpfs mounted for one test, unmounted (lazily, should something still hold it) when
/// the test ends.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_under_an_access_log_loses_log_lines_not_responses() {
    if !root() {
        return;
    }
    let (_alone, dir) = alone_with_trees();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs"])
        .arg(&logs)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    let _tmpfs = Tmpfs(logs.clone());
    let config = config().replace(
        "    ServerName t14.test\n",
        "    ServerName t14.test\n    CustomLog DIR/logs/t14.access.log \"%h %t \\\"%r\\\" %>s\"\n",
    );
    // Declared after the mount guard: the server stops before the unmount.
    let mut server = Server::start(dir.path(), &config);
    let a = server.addr();
    assert_eq!(fetch(a, "t14.test", "/uid.txt"), (200, "20014\n".into()));
    let log = logs.join("t14.access.log");
    assert!(std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("GET /uid.txt"));
    // Fill the log's last page (tmpfs allocates by 4 KiB), then the file system.
    let len = std::fs::metadata(&log).unwrap().len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&vec![b'#'; (4096 - len % 4096) as usize])
        .unwrap();
    drop(file);
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "count=64"])
        .arg(format!("of={}", logs.join("filler").display()))
        .stderr(Stdio::null())
        .status();
    let logged = std::fs::metadata(&log).unwrap().len();
    for kind in [Kind::Static, Kind::Cgi, Kind::Php, Kind::Static] {
        assert_eq!(
            fetch(a, "t14.test", kind.path()),
            (200, "20014\n".into()),
            "{kind:?} with the log's disk full"
        );
    }
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        logged,
        "no room, no line"
    );
    assert!(master_alive(&mut server), "the master survives");
    assert!(problems_free(mixed_load(a, 4, 40)));
    // Room again: lines are written again.
    std::fs::remove_file(logs.join("filler")).unwrap();
    assert_eq!(fetch(a, "t14.test", "/uid.txt").0, 200);
    assert!(
        std::fs::metadata(&log).unwrap().len() > logged,
        "logging resumes"
    );
    wait_idle(&server, 10).unwrap();
    check_limit(&server);
}

fn problems_free(problems: Vec<String>) -> bool {
    assert!(problems.is_empty(), "{problems:?}");
    true
}

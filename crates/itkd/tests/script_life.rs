//! A script's life as under mod_cgi (issue 14, Build 3): a script that has sent its
//! response keeps working until it exits (PHP's `ignore_user_abort(true)`, DokuWiki's
//! indexer), also after its client left, bounded by the vhost's `Timeout` and then
//! ended with SIGTERM and SIGKILL; every script is reaped as soon as it exits, so a
//! keep-alive connection leaves no zombie; the worker stays until its scripts are gone;
//! `RLimitCPU`, `RLimitMEM`, `RLimitNPROC` reach the script as Apache + mpm-itk sets them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const CONFIG: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/www
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
Timeout 10
StartServers 3
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
<Directory /usr/lib/cgi-bin>
    Require all granted
</Directory>
<Directory DIR>
    Require all granted
    Options +ExecCGI
    AddHandler cgi-script .cgi
</Directory>
Action application/x-httpd-php /cgi-bin/php
AddHandler application/x-httpd-php .php
<VirtualHost 127.0.0.1:PORT>
    ServerName later.test
    DocumentRoot DIR/t11
    AssignUserID #20011 #21011
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName many.test
    DocumentRoot DIR/t12
    AssignUserID #20012 #21012
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName bound.test
    DocumentRoot DIR/t13
    AssignUserID #20013 #21013
    Timeout 1
</VirtualHost>
";

/// Answers with a Content-Length (so the response is complete at once), then works on
/// for a second and leaves a marker named after the query string.
const LATER_SH: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\nContent-Length: 3\\n\\nok\\n'
sleep 1
id -u > \"marker-sh-$QUERY_STRING\"
";

/// The same without a Content-Length: the response streams until the script exits.
/// What it writes later tells whether its stdout was still read.
const STREAMED_SH: &str = "#!/bin/sh
trap '' PIPE
printf 'Content-Type: text/plain\\n\\nstart\\n'
sleep 1
if echo more; then r=read; else r=epipe; fi
echo $r > \"marker-streamed-$QUERY_STRING\"
";

/// DokuWiki's taskrunner in small: the answer goes out (Content-Length, flushed), the
/// work follows with `ignore_user_abort(true)`.
const LATER_PHP: &str = "<?php
ignore_user_abort(true);
header('Content-Type: text/plain');
header('Content-Length: 3');
echo \"ok\\n\";
while (ob_get_level() > 0) { ob_end_flush(); }
flush();
sleep(1);
file_put_contents(__DIR__ . '/marker-php-' . $_SERVER['QUERY_STRING'], posix_getuid());
";

const SMALL_PHP: &str = "<?php
$body = 'n=' . ($_GET['n'] ?? '') . \"\\n\";
header('Content-Length: ' . strlen($body));
echo $body;
";

/// Answers, then never ends on its own.
const FOREVER_SH: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\nContent-Length: 3\\n\\nok\\n'
exec sleep 1000
";

/// The same, deaf to SIGTERM: only SIGKILL ends it.
const STUBBORN_SH: &str = "#!/bin/sh
trap '' TERM
printf 'Content-Type: text/plain\\nContent-Length: 3\\n\\nok\\n'
exec sleep 1001
";

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    let t11 = tenant(
        base,
        11,
        &[
            ("later.cgi", LATER_SH),
            ("streamed.cgi", STREAMED_SH),
            ("later.php", LATER_PHP),
        ],
    );
    let t12 = tenant(base, 12, &[("small.php", SMALL_PHP)]);
    let t13 = tenant(
        base,
        13,
        &[("forever.cgi", FOREVER_SH), ("stubborn.cgi", STUBBORN_SH)],
    );
    for script in [
        t11.root.join("later.cgi"),
        t11.root.join("streamed.cgi"),
        t13.root.join("forever.cgi"),
        t13.root.join("stubborn.cgi"),
    ] {
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let _ = t12;
    let server = Server::start(base, CONFIG);
    (dir, server)
}

/// Waits (bounded) for `path` to appear; returns the uid that owns it.
fn marker(path: &Path, within: Duration) -> Option<u32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.len() > 0 {
                return Some(meta.uid());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Reads a response head (up to the blank line), nothing more.
fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// Pids of the processes of `uid` (named `name`, if given).
fn pids_of(uid: u32, name: Option<&str>) -> Vec<i32> {
    let mut pgrep = Command::new("pgrep");
    pgrep.args(["-u", &uid.to_string()]);
    if let Some(name) = name {
        pgrep.args(["-x", name]);
    }
    let out = pgrep.output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| !status_field(&s, "State").starts_with('Z'))
}

fn parent_of(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status_field(&status, "PPid").parse().unwrap_or(0)
}

/// Zombies among the server's processes: (pid, parent, name).
fn zombies(master: i32) -> Vec<(i32, i32, String)> {
    descendants(master)
        .into_iter()
        .filter(|(_, s)| status_field(s, "State").starts_with('Z'))
        .map(|(pid, s)| {
            (
                pid,
                status_field(&s, "PPid").parse().unwrap_or(0),
                status_field(&s, "Name"),
            )
        })
        .collect()
}

#[test]
fn a_script_finishes_its_work_after_its_response_also_when_the_client_left() {
    if !root() || !php_present() {
        return;
    }
    let (dir, server) = setup();
    let t11 = dir.path().join("t11");
    for (path, marker_prefix) in [("/later.cgi", "marker-sh"), ("/later.php", "marker-php")] {
        // The client keeps the connection open (idle) while the script works on.
        let mut kept = TcpStream::connect(server.addr()).unwrap();
        let started = Instant::now();
        let got = exchange(&mut kept, &request("later.test", &format!("{path}?kept")));
        assert_eq!(got, Some((200, "ok\n".to_owned())), "{path}");
        let kept_marker = t11.join(format!("{marker_prefix}-kept"));
        assert!(
            started.elapsed() < Duration::from_millis(900) && !kept_marker.exists(),
            "{path}: the response came only after the script's work"
        );
        assert_eq!(
            marker(&kept_marker, Duration::from_secs(5)),
            Some(20011),
            "{path}: the script did not finish its work as the tenant"
        );
        // The connection still serves the next request.
        let again = exchange(&mut kept, &request("later.test", &format!("{path}?again")));
        assert_eq!(again, Some((200, "ok\n".to_owned())), "{path}");
        drop(kept);

        // The client reads the head and leaves at once.
        let mut left = TcpStream::connect(server.addr()).unwrap();
        left.write_all(&request("later.test", &format!("{path}?left")))
            .unwrap();
        assert!(read_head(&mut left).starts_with("HTTP/1.1 200"), "{path}");
        drop(left);
        assert_eq!(
            marker(
                &t11.join(format!("{marker_prefix}-left")),
                Duration::from_secs(5)
            ),
            Some(20011),
            "{path}: the script did not finish after its client left"
        );
        assert!(
            marker(
                &t11.join(format!("{marker_prefix}-again")),
                Duration::from_secs(5)
            )
            .is_some(),
            "{path}"
        );
    }
    // A streamed response (no Content-Length) whose client leaves after the head: the
    // script is not killed at once either; its stdout is closed (EPIPE), as httpd
    // closes it once it sees the client gone.
    let mut left = TcpStream::connect(server.addr()).unwrap();
    left.write_all(&request("later.test", "/streamed.cgi?left"))
        .unwrap();
    assert!(read_head(&mut left).starts_with("HTTP/1.1 200"));
    drop(left);
    let streamed = t11.join("marker-streamed-left");
    assert_eq!(
        marker(&streamed, Duration::from_secs(5)),
        Some(20011),
        "a streamed script was stopped when its client left"
    );
    assert_eq!(std::fs::read_to_string(&streamed).unwrap(), "epipe\n");
}

#[test]
fn a_keep_alive_connection_leaves_no_zombie_behind_its_responses() {
    if !root() || !php_present() {
        return;
    }
    let (_dir, server) = setup();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    let mut slowest = Duration::ZERO;
    for n in 0..50 {
        let got = exchange(
            &mut conn,
            &request("many.test", &format!("/small.php?n={n}")),
        );
        assert_eq!(got, Some((200, format!("n={n}\n"))), "request {n}");
        // php-cgi exits right after its output; its exit is noticed and reaped at once.
        let done = Instant::now();
        loop {
            let left = zombies(server.pid());
            if left.is_empty() {
                break;
            }
            assert!(
                done.elapsed() < Duration::from_secs(1),
                "after request {n}, zombies stay while the connection is open: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        slowest = slowest.max(done.elapsed());
    }
    eprintln!("longest wait for no zombie after a response: {slowest:?}");
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids_of(20012, None).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            pids_of(20012, None)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Requests `path` on `host` (its tenant: `uid`) with `Connection: close` and reads the
/// response to the end; returns (the script's pid, its worker's pid, when the response
/// was complete).
fn run_forever(server: &Server, host: &str, uid: u32, path: &str) -> (i32, i32, Instant) {
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = String::new();
    conn.read_to_string(&mut all).unwrap();
    let done = Instant::now();
    assert!(
        all.starts_with("HTTP/1.1 200") && all.ends_with("\r\n\r\nok\n"),
        "{all}"
    );
    let scripts = pids_of(uid, Some("sleep"));
    let [script] = scripts.as_slice() else {
        panic!("one running script expected: {scripts:?} ({path})");
    };
    let worker = parent_of(*script);
    assert!(worker > 1, "{path}: the script has lost its worker");
    (*script, worker, done)
}

/// Waits (bounded) for `pid` to be gone; returns when it was seen gone.
fn gone(pid: i32, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !alive(pid) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_script_that_never_ends_is_stopped_at_its_bound_and_the_worker_exits() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();

    // Ended by SIGTERM once Timeout (1 s) has passed after its response.
    let (script, worker, done) = run_forever(&server, "bound.test", 20013, "/forever.cgi");
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(script), "the script was killed with its response");
    assert!(
        alive(worker),
        "the worker left while its script still runs (its connection is closed)"
    );
    let end = gone(script, Duration::from_secs(4)).expect("not stopped at its bound");
    let lived = end - done;
    assert!(
        lived >= Duration::from_millis(800) && lived < Duration::from_millis(2500),
        "lived {lived:?} after its response, Timeout is 1 s"
    );
    assert!(
        gone(worker, Duration::from_secs(2)).is_some(),
        "the worker stays after its script is gone"
    );

    // Deaf to SIGTERM: SIGKILL 3 s later (APR's free_proc_chain).
    let (script, worker, done) = run_forever(&server, "bound.test", 20013, "/stubborn.cgi");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        alive(script),
        "SIGKILL came without the grace after SIGTERM"
    );
    let end = gone(script, Duration::from_secs(5)).expect("never killed");
    let lived = end - done;
    assert!(
        lived >= Duration::from_millis(3500) && lived < Duration::from_millis(5500),
        "lived {lived:?} after its response: Timeout 1 s + 3 s after SIGTERM"
    );
    assert!(
        gone(worker, Duration::from_secs(2)).is_some(),
        "the worker stays after its script was killed"
    );
    assert!(
        zombies(server.pid()).is_empty(),
        "{:?}",
        zombies(server.pid())
    );
}

/// What both servers serve: the same vhost with `RLimit*` at three levels.
const LIMITS_SITE: &str = "\
ServerName main.test
DocumentRoot DIR/www
Timeout 10
<Directory DIR>
    Require all granted
    AllowOverride None
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName limits.test
    DocumentRoot DIR/t14
    AssignUserID #20014 #21014
    RLimitCPU 30 60
    RLimitMEM 500000000 1000000000
    RLimitNPROC 40 50
    <Directory DIR/t14>
        Options +ExecCGI
        AddHandler cgi-script .cgi
    </Directory>
    <Directory DIR/t14/sub>
        AllowOverride Limit
        RLimitNPROC max
    </Directory>
    <Directory DIR/t14/bad>
        RLimitNPROC max 50
    </Directory>
</VirtualHost>
";

const LIMITS_CGI: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\n\\n'
grep -E '^Max (cpu time|processes|address space)' /proc/self/limits
";

/// The three lines of `/proc/self/limits` a script printed, spaces collapsed.
fn limit_lines(body: &str) -> Vec<String> {
    body.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn rlimits_reach_the_script_as_apache_sets_them() {
    if !root() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    let t14 = tenant(
        base,
        14,
        &[
            ("limits.cgi", LIMITS_CGI),
            ("sub/limits.cgi", LIMITS_CGI),
            ("sub/.htaccess", "RLimitCPU 7\n"),
            ("bad/limits.cgi", LIMITS_CGI),
        ],
    );
    for script in ["limits.cgi", "sub/limits.cgi", "bad/limits.cgi"] {
        std::fs::set_permissions(
            t14.root.join(script),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
    }
    let itkd_config = format!(
        "Listen 127.0.0.1:PORT\nUser nobody\nGroup nogroup\nErrorLog DIR/error.log\n\
         PidFile DIR/itkd.pid\nStartServers 2\n{LIMITS_SITE}"
    );
    let server = Server::start(base, &itkd_config);
    // The server's own limits, which `max`, `0` and a missing hard limit refer to.
    let own = |what: &str| {
        let text = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
        limit_lines(&text)
            .into_iter()
            .find(|l| l.starts_with(what))
            .unwrap()
    };
    let (nproc_hard, cpu_hard) = {
        let p = own("Max processes");
        let c = own("Max cpu time");
        (
            p.split(' ').nth(3).unwrap().to_owned(),
            c.split(' ').nth(4).unwrap().to_owned(),
        )
    };
    // curl: a script's response is chunked.
    let fetch = |addr: std::net::SocketAddr, path: &str| {
        let (code, body) = curl(&["-H", "Host: limits.test", &format!("http://{addr}{path}")]);
        (
            code.parse::<u16>().unwrap_or(0),
            limit_lines(&String::from_utf8_lossy(&body)),
        )
    };
    let itkd: Vec<(u16, Vec<String>)> = ["/limits.cgi", "/sub/limits.cgi", "/bad/limits.cgi"]
        .iter()
        .map(|p| fetch(server.addr(), p))
        .collect();
    assert_eq!(
        itkd[0],
        (
            200,
            vec![
                "Max cpu time 30 60 seconds".to_owned(),
                "Max processes 40 50 processes".to_owned(),
                "Max address space 500000000 1000000000 bytes".to_owned(),
            ]
        )
    );
    // .htaccess `RLimitCPU 7` replaces the vhost's line whole (hard: the server's);
    // `RLimitNPROC max` is the server's hard limit for both.
    assert_eq!(
        itkd[1],
        (
            200,
            vec![
                format!("Max cpu time 7 {cpu_hard} seconds"),
                format!("Max processes {nproc_hard} {nproc_hard} processes"),
                "Max address space 500000000 1000000000 bytes".to_owned(),
            ]
        )
    );
    // `RLimitNPROC max 50`: a soft limit above the hard one, which the kernel refuses;
    // the script never runs.
    assert_eq!(itkd[2].0, 500, "{:?}", itkd[2]);
    let log = server.error_log();
    assert!(
        log.contains("(22)Invalid argument: setting of resource limits failed"),
        "{log}"
    );
    assert!(log.contains("End of script output before headers"), "{log}");
    drop(server);

    // The reference: Debian's apache2 + mpm-itk with the same site.
    if !apache_present() {
        return;
    }
    let apache_config = format!(
        "{APACHE_MODULES}Listen 127.0.0.1:PORT\nUser nobody\nGroup nogroup\n\
         ErrorLog DIR/apache-error.log\nPidFile DIR/apache.pid\nDefaultRuntimeDir DIR\n\
         TypesConfig /etc/mime.types\n\
         {LIMITS_SITE}"
    );
    let apache = Apache::start(base, &apache_config);
    let reference: Vec<(u16, Vec<String>)> = ["/limits.cgi", "/sub/limits.cgi", "/bad/limits.cgi"]
        .iter()
        .map(|p| fetch(apache.addr(), p))
        .collect();
    let apache_log = std::fs::read_to_string(base.join("apache-error.log")).unwrap_or_default();
    assert_eq!(itkd[..2], reference[..2], "{apache_log}");
    assert_eq!(reference[2].0, 500, "{apache_log}");
    assert!(
        apache_log.contains("(22)Invalid argument: setting of resource limits failed"),
        "{apache_log}"
    );
}

#[test]
fn malformed_rlimit_lines_are_configuration_errors() {
    let dir = server_dir();
    let conf = dir.path().join("itkd.conf");
    std::fs::write(
        &conf,
        "Listen 127.0.0.1:1\nServerName main.test\nDocumentRoot /tmp\n\
         RLimitMEM 10M\nRLimitCPU 20 10\nRLimitNPROC 1 2 3\n<Directory /tmp>\n    RLimitCPU max 60\n</Directory>\n",
    )
    .unwrap();
    let out = Command::new(ITKD)
        .args(["-t", "-f", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    for (line, text) in [
        (4, "'10M' is neither a non-negative integer nor 'max'"),
        (5, "the soft limit 20 is above the hard limit 10"),
        (6, "RLimitNPROC takes 1-2 arguments"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("itkd.conf:{line}")) && l.contains(text)),
            "line {line}: {text}\n{err}"
        );
    }
    assert!(!err.contains("itkd.conf:8"), "{err}");
}

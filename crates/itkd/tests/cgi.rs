//! CGI end to end, as root: scripts run as their vhost's tenant, see only fds 0-2, get
//! the request body byte for byte, and every way a script can misbehave gives httpd's
//! status with nothing left running.

mod common;

use std::os::unix::fs::PermissionsExt;
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
Timeout 2
StartServers 4
MinSpareServers 2
<Directory DIR>
    Require all granted
</Directory>
<Directory DIR/t2/cgi>
    Options None
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1/www
    ScriptAlias /cgi-bin/ DIR/t1/cgi/
    AssignUserID #20001 #21001
    NiceValue 4
    LimitRequestBody 65536
    SetEnv GREETING \"hello there\"
    SetEnv DROPME x
    UnsetEnv DROPME
    PassEnv HOME
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t2.test
    DocumentRoot DIR/t2/www
    ScriptAlias /cgi-bin/ DIR/t2/cgi/
    AssignUserID #20002 #21002
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t3.test
    DocumentRoot DIR/t3/www
    AssignUserID #20003 #21003
    NiceValue 9
    <Directory DIR/t3/www>
        Options +ExecCGI
        AddHandler cgi-script .cgi
    </Directory>
</VirtualHost>
";

const ID: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho \"$(id -u) $(id -g) $(id -G) $(cut -d' ' -f19 /proc/self/stat)\"\nexec ls /proc/self/fd\n";
const ECHO: &str = "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n";
const ENV: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho \"len=${CONTENT_LENGTH-unset}\"\necho \"greeting=${GREETING-unset} dropme=${DROPME-unset} home=${HOME-unset} proxy=${HTTP_PROXY-unset}\"\n";
const BAD: &str = "#!/bin/sh\necho 'this is no header'\necho\necho body\n";
const SILENT: &str = "#!/bin/sh\nexit 0\n";
const HANG: &str = "#!/bin/sh\nexec sleep 30\n";
const BIG: &str = "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec head -c 10485760 /dev/zero\n";
const SLEEPY: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nexec sleep 3\n";
const SNOOP: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\ncat DIR/t1/www/secret.txt 2>&1 | head -c 200\necho\nfor p in $(pgrep -u 20001 -x sleep); do kill -0 $p 2>&1 && echo signalled $p; done\n";

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    let snoop = SNOOP.replace("DIR", base.to_str().unwrap());
    let scripts = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(n, t)| (format!("cgi/{n}"), t.to_string()))
            .collect::<Vec<_>>()
    };
    let t1: Vec<(String, String)> = scripts(&[
        ("id", ID),
        ("echo", ECHO),
        ("env", ENV),
        ("bad", BAD),
        ("silent", SILENT),
        ("hang", HANG),
        ("big", BIG),
        ("sleepy", SLEEPY),
    ]);
    let mut t1_files: Vec<(&str, &str)> =
        t1.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    t1_files.push(("www/secret.txt", "t1 secret\n"));
    tenant(base, 1, &t1_files);
    tenant(
        base,
        2,
        &[
            ("cgi/id", ID),
            ("cgi/echo", ECHO),
            ("cgi/snoop", snoop.as_str()),
            ("www/index.html", "t2\n"),
        ],
    );
    tenant(base, 3, &[("www/id.cgi", ID)]);
    for (t, names) in [
        (
            "t1",
            vec![
                "id", "echo", "env", "bad", "silent", "hang", "big", "sleepy",
            ],
        ),
        ("t2", vec!["id", "snoop", "echo"]),
    ] {
        for n in names {
            std::fs::set_permissions(
                base.join(t).join("cgi").join(n),
                std::fs::Permissions::from_mode(0o700),
            )
            .unwrap();
        }
    }
    std::fs::set_permissions(
        base.join("t3/www/id.cgi"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    // A symlinked script where Options None forbids following it.
    link(&base.join("t2/cgi/id"), &base.join("t2/cgi/linked"));
    let server = Server::start(base, CONFIG);
    (dir, server)
}

/// Processes of a uid, other than zombies.
fn processes_of(uid: u32) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args(["-u", &uid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn wait_until_gone(uid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if processes_of(uid).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn scripts_run_as_their_tenant_with_only_fds_0_1_2() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    for (host, path, ids, nice) in [
        ("t1.test", "/cgi-bin/id", "20001 21001 21001", "4"),
        ("t2.test", "/cgi-bin/id", "20002 21002 21002", "0"),
        ("t3.test", "/id.cgi", "20003 21003 21003", "9"),
    ] {
        // curl: the response is chunked (a script's length is unknown).
        let url = format!("http://{a}{path}");
        let (code, body) = curl(&["-H", &format!("Host: {host}"), &url]);
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(code, "200", "{host}: {body}");
        let mut lines = body.lines();
        assert_eq!(
            lines.next(),
            Some(format!("{ids} {nice}").as_str()),
            "{host}: {body}"
        );
        // What a program the script execs inherits: 0, 1, 2 (and ls's own directory
        // handle, 3). Nothing of the server's: no listener, socket, log or scoreboard.
        let fds: Vec<&str> = lines.collect();
        assert_eq!(fds, ["0", "1", "2", "3"], "{host}: {body}");
    }
}

#[test]
fn a_tenants_script_cannot_read_or_signal_another_tenants() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    let slow = std::thread::spawn(move || get(a, "t1.test", "/cgi-bin/sleepy"));
    std::thread::sleep(Duration::from_millis(700));
    assert!(!processes_of(20001).is_empty(), "t1's sleeping script runs");
    let (code, body) = curl(&["-H", "Host: t2.test", &format!("http://{a}/cgi-bin/snoop")]);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("Permission denied"), "{body}");
    assert!(!body.contains("t1 secret"), "{body}");
    assert!(
        body.contains("Operation not permitted") && !body.contains("signalled"),
        "{body}"
    );
    assert_eq!(slow.join().unwrap().0, 200);
}

#[test]
fn request_bodies_reach_the_script_byte_for_byte() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let url = format!("http://127.0.0.1:{}/cgi-bin/echo", server.port);
    for size in [0usize, 1, 3004, 65536] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
        let file = dir.path().join(format!("body{size}"));
        std::fs::write(&file, &data).unwrap();
        let at = format!("@{}", file.display());
        let (code, body) = curl(&["-H", "Host: t1.test", "--data-binary", &at, &url]);
        assert_eq!(
            (code.as_str(), body.len()),
            ("200", size),
            "Content-Length body of {size}"
        );
        assert!(body == data, "bytes differ for {size}");
        let (code, body) = curl(&[
            "-H",
            "Host: t1.test",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at,
            &url,
        ]);
        assert_eq!(
            (code.as_str(), body.len()),
            ("200", size),
            "chunked body of {size}"
        );
        assert!(body == data, "chunked bytes differ for {size}");
    }
    // 1 MiB on t2 (no LimitRequestBody): curl sends Expect: 100-continue for it.
    let mib: Vec<u8> = (0..1usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    let file = dir.path().join("mib");
    std::fs::write(&file, &mib).unwrap();
    let at = format!("@{}", file.display());
    let t2_url = format!("http://127.0.0.1:{}/cgi-bin/echo", server.port);
    for chunked in [false, true] {
        let mut args = vec!["-H", "Host: t2.test", "--data-binary", &at];
        if chunked {
            args.extend(["-H", "Transfer-Encoding: chunked"]);
        }
        args.push(&t2_url);
        let (code, body) = curl(&args);
        assert_eq!(
            (code.as_str(), body.len()),
            ("200", mib.len()),
            "1 MiB, chunked: {chunked}"
        );
        assert!(body == mib, "1 MiB bytes differ (chunked: {chunked})");
    }
    // CONTENT_LENGTH: set with Content-Length, unset for chunked, as httpd does.
    let env_url = format!("http://127.0.0.1:{}/cgi-bin/env", server.port);
    let (_, body) = curl(&[
        "-H",
        "Host: t1.test",
        "-H",
        "Proxy: http://evil/",
        "--data-binary",
        "abc",
        &env_url,
    ]);
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("len=3"));
    // SetEnv, UnsetEnv, PassEnv (the server's own HOME), and no HTTP_PROXY (httpoxy).
    let home = std::env::var("HOME").unwrap_or_else(|_| "unset".to_owned());
    assert_eq!(
        lines.next(),
        Some(format!("greeting=hello there dropme=unset home={home} proxy=unset").as_str())
    );
    let (_, body) = curl(&[
        "-H",
        "Host: t1.test",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "abc",
        &env_url,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&body).lines().next(),
        Some("len=unset")
    );
    // Over LimitRequestBody 65536: 413, by length before the script runs, and chunked.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 70000]).unwrap();
    let at = format!("@{}", big.display());
    assert_eq!(
        curl(&["-H", "Host: t1.test", "--data-binary", &at, &url]).0,
        "413"
    );
    assert_eq!(
        curl(&[
            "-H",
            "Host: t1.test",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at,
            &url
        ])
        .0,
        "413"
    );
    assert!(wait_until_gone(20001), "no script left behind");
}

#[test]
fn misbehaving_scripts_get_httpds_statuses_and_leave_nothing_behind() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    assert_eq!(get(a, "t1.test", "/cgi-bin/bad").0, 500, "malformed header");
    assert_eq!(
        get(a, "t1.test", "/cgi-bin/silent").0,
        500,
        "no output at all"
    );
    let start = Instant::now();
    assert_eq!(
        get(a, "t1.test", "/cgi-bin/hang").0,
        504,
        "no answer within Timeout"
    );
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    let url = format!("http://127.0.0.1:{}/cgi-bin/big", server.port);
    let (code, body) = curl(&["-H", "Host: t1.test", &url]);
    assert_eq!((code.as_str(), body.len()), ("200", 10 * 1024 * 1024));
    assert!(
        wait_until_gone(20001),
        "a script is still running: {:?}",
        processes_of(20001)
    );
    let log = server.error_log();
    assert!(log.contains("malformed header from script"), "{log}");
    assert!(log.contains("End of script output before headers"), "{log}");
    assert!(
        log.contains("Timeout waiting for output from CGI script"),
        "{log}"
    );
    assert_eq!(get(a, "t2.test", "/").0, 200, "the server goes on");
}

const PHP_CONFIG: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/www
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
StartServers 3
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
<Directory /usr/lib/cgi-bin>
    Require all granted
</Directory>
<Directory DIR>
    Require all granted
</Directory>
Action application/x-httpd-php /cgi-bin/php
AddHandler application/x-httpd-php .php
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t2.test
    DocumentRoot DIR/t2
    AssignUserID #20002 #21002
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t3.test
    DocumentRoot DIR/t3
    AssignUserID #20003 #21003
</VirtualHost>
";

#[test]
fn php_through_php_cgi_runs_as_each_tenant() {
    if !root() || !php_present() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    let files: &[(&str, &str)] = &[
        ("uid.php", "<?php echo posix_getuid(), ' ', posix_getgid(), \"\\n\"; ?>"),
        ("form.php", "<?php echo $_SERVER['REQUEST_METHOD'], ' ', $_POST['name'] ?? '-', ' ', $_GET['q'] ?? '-'; ?>"),
        ("go.php", "<?php header('Location: http://t1.test/landed.html'); ?>"),
        ("info.php", "<?php phpinfo(); ?>"),
    ];
    for n in 1..=3 {
        tenant(base, n, files);
    }
    let server = Server::start(base, PHP_CONFIG);
    let port = server.port;
    for n in 1..=3u32 {
        let url = format!("http://127.0.0.1:{port}/uid.php");
        let (code, body) = curl(&["-H", &format!("Host: t{n}.test"), &url]);
        assert_eq!(
            (code.as_str(), String::from_utf8_lossy(&body).trim()),
            ("200", format!("{} {}", 20000 + n, 21000 + n).as_str())
        );
    }
    let form = format!("http://127.0.0.1:{port}/form.php?q=x");
    let (code, body) = curl(&["-H", "Host: t2.test", "-d", "name=zed", &form]);
    assert_eq!(
        (code.as_str(), String::from_utf8_lossy(&body).as_ref()),
        ("200", "POST zed x")
    );
    let go = format!("http://127.0.0.1:{port}/go.php");
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
            "Host: t1.test",
            &go,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "302 http://t1.test/landed.html"
    );
    let info = format!("http://127.0.0.1:{port}/info.php");
    let (code, body) = curl(&["-H", "Host: t3.test", &info]);
    assert_eq!(code, "200");
    assert!(
        String::from_utf8_lossy(&body).contains("PHP Version"),
        "phpinfo renders"
    );
    // A .php that does not exist is a 404, not a php-cgi error page.
    assert_eq!(
        curl(&[
            "-H",
            "Host: t1.test",
            &format!("http://127.0.0.1:{port}/nosuch.php")
        ])
        .0,
        "404"
    );
    let gone = wait_until_gone(20001) && wait_until_gone(20002) && wait_until_gone(20003);
    let ps = Command::new("ps")
        .args([
            "-o",
            "pid,ppid,user,stat,etime,cmd",
            "-u",
            "20001,20002,20003",
        ])
        .output()
        .unwrap();
    assert!(
        gone,
        "no php-cgi left running:\n{}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

#[test]
fn a_client_that_goes_away_leaves_no_script_behind() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    {
        let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
        std::io::Write::write_all(
            &mut conn,
            b"GET /cgi-bin/hang HTTP/1.1\r\nHost: t1.test\r\n\r\n",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert!(!processes_of(20001).is_empty(), "the script runs");
    }
    // The connection is gone; within Timeout (2 s) the script is killed and reaped.
    assert!(
        wait_until_gone(20001),
        "left behind: {:?}",
        processes_of(20001)
    );
}

#[test]
fn a_symlinked_script_needs_followsymlinks_as_httpd() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    assert_eq!(get(server.addr(), "t2.test", "/cgi-bin/linked").0, 403);
    assert!(
        server
            .error_log()
            .contains("AH00037: Symbolic link not allowed or link target not accessible"),
        "{}",
        server.error_log()
    );
    assert_eq!(
        get(server.addr(), "t1.test", "/cgi-bin/silent").0,
        500,
        "the server goes on"
    );
}

//! `.htaccess` files end to end, as root: read by the worker after the switch, as the
//! tenant, under AllowOverride, with httpd's statuses and log lines.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

const CONFIG: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/www
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
StartServers 3
<Directory DIR>
    Require all granted
    AllowOverride All
</Directory>
<Directory DIR/t2/www/none>
    AllowOverride None
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1/www
    AssignUserID #20001 #21001
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t2.test
    DocumentRoot DIR/t2/www
    AssignUserID #20002 #21002
</VirtualHost>
";

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(base.join("www")).unwrap();
    tenant(
        base,
        1,
        &[
            ("www/index.html", "t1\n"),
            (
                "www/.htaccess",
                "ErrorDocument 404 \"t1 has no such page\"\nRedirect permanent /old http://t1.test/new\nRedirect gone /gone\nRedirectMatch 302 ^/m/(.*)\\.htm$ /n/$1.html\n",
            ),
            ("www/denied/.htaccess", "Require all denied\n"),
            ("www/denied/x.txt", "x\n"),
            ("www/itk/.htaccess", "AssignUserID #20002 #21002\n"),
            ("www/itk/x.txt", "x\n"),
            ("www/mcv/.htaccess", "MaxClientsVHost 5\n"),
            ("www/mcv/x.txt", "x\n"),
            ("www/idx/.htaccess", "DirectoryIndex alt.html\n"),
            ("www/idx/alt.html", "alt\n"),
            ("www/secret.txt", "t1 secret\n"),
        ],
    );
    tenant(
        base,
        2,
        &[
            ("www/index.html", "t2\n"),
            ("www/none/.htaccess", "Require all denied\n"),
            ("www/none/x.txt", "x\n"),
            ("www/unreadable/x.txt", "x\n"),
            ("www/unreadable/.htaccess", "Require all denied\n"),
            ("www/borrowed/x.txt", "x\n"),
        ],
    );
    // An .htaccess the tenant itself cannot read (root's, 0600).
    let unreadable = base.join("t2/www/unreadable/.htaccess");
    std::os::unix::fs::chown(&unreadable, Some(0), Some(0)).unwrap();
    // t2 points its .htaccess at t1's 0600 file: read as t2, it cannot be read.
    link(
        &base.join("t1/www/secret.txt"),
        &base.join("t2/www/borrowed/.htaccess"),
    );
    let server = Server::start(base, CONFIG);
    (dir, server)
}

#[test]
fn htaccess_is_read_as_the_tenant_and_honoured() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    // The tenant's own 0600 .htaccess files act.
    assert_eq!(
        get(a, "t1.test", "/nosuch"),
        (404, "t1 has no such page".into())
    );
    assert_eq!(get(a, "t1.test", "/denied/x.txt").0, 403);
    assert_eq!(get(a, "t1.test", "/idx/"), (200, "alt\n".into()));
    // AllowOverride None: not even read.
    assert_eq!(get(a, "t2.test", "/none/x.txt"), (200, "x\n".into()));
    assert_eq!(get(a, "t1.test", "/"), (200, "t1\n".into()));
}

#[test]
fn mpm_itk_directives_in_htaccess_are_500_with_httpds_line() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let a = server.addr();
    assert_eq!(get(a, "t1.test", "/itk/x.txt").0, 500);
    assert_eq!(get(a, "t1.test", "/mcv/x.txt").0, 500);
    let log = server.error_log();
    let d = dir.path().display();
    assert!(
        log.contains("[core:alert]")
            && log.contains(&format!(
                "{d}/t1/www/itk/.htaccess: AssignUserID not allowed here"
            )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{d}/t1/www/mcv/.htaccess: MaxClientsVHost not allowed here"
        )),
        "{log}"
    );
}

#[test]
fn unreadable_and_borrowed_htaccess_are_403_and_nothing_is_read() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let a = server.addr();
    assert_eq!(get(a, "t2.test", "/unreadable/x.txt").0, 403);
    let (status, body) = get(a, "t2.test", "/borrowed/x.txt");
    assert_eq!(status, 403);
    assert!(!body.contains("t1 secret"), "{body}");
    let log = server.error_log();
    let d = dir.path().display();
    assert!(log.contains(&format!("{d}/t2/www/unreadable/.htaccess pcfg_openfile: unable to check htaccess file, ensure it is readable")), "{log}");
    assert!(
        log.contains(&format!(
            "{d}/t2/www/borrowed/.htaccess pcfg_openfile: unable to check htaccess file"
        )),
        "{log}"
    );
    assert!(
        !log.contains("t1 secret"),
        "nothing of the other tenant's file reaches the log: {log}"
    );
}

#[test]
fn basic_authentication_from_a_tenants_htaccess() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let base = dir.path();
    // Made by Debian's htpasswd: alice/secret (apr1), bob/pw2 (bcrypt), carol/pw3 ({SHA}).
    let users = "alice:$apr1$W0lInCec$yBFWQj4tOG2bRurNJL82x.\nbob:$2y$05$ImHYn37KVH7keP0d0K.7peYgUUrhoiweFJreWLCSkY8Vwct3pDvhW\ncarol:{SHA}Z/q5KhbWJGlg/C2XbiLEJnMKKr8=\n";
    let private = base.join("t1/private");
    std::fs::create_dir_all(base.join("t1/www/members")).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join("users"), users).unwrap();
    std::fs::write(private.join("groups"), "staff: bob carol\n").unwrap();
    std::fs::write(base.join("t1/www/members/page.txt"), "members only\n").unwrap();
    std::fs::write(
        base.join("t1/www/members/.htaccess"),
        format!(
            "AuthType Basic\nAuthName \"Members\"\nAuthUserFile {p}/users\nAuthGroupFile {p}/groups\nRequire valid-user\n<Files staff.txt>\nRequire group staff\n</Files>\n",
            p = private.display()
        ),
    )
    .unwrap();
    std::fs::write(base.join("t1/www/members/staff.txt"), "staff only\n").unwrap();
    own_tree(&base.join("t1"), 20001, 21001);
    std::fs::set_permissions(base.join("t1"), std::fs::Permissions::from_mode(0o711)).unwrap();
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.port);
    let curl = |args: &[&str]| {
        let mut all = vec!["-H", "Host: t1.test"];
        all.extend_from_slice(args);
        let (code, body) = common::curl(&all);
        (code, String::from_utf8_lossy(&body).into_owned())
    };
    let head = std::process::Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Host: t1.test",
            &url("/members/page.txt"),
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(
        head.contains("www-authenticate: basic realm=\"members\""),
        "{head}"
    );
    assert_eq!(
        curl(&["-u", "alice:secret", &url("/members/page.txt")]),
        ("200".into(), "members only\n".into())
    );
    assert_eq!(curl(&["-u", "bob:pw2", &url("/members/page.txt")]).0, "200");
    assert_eq!(
        curl(&["-u", "alice:wrong", &url("/members/page.txt")]).0,
        "401"
    );
    assert_eq!(
        curl(&["-u", "alice:secret", &url("/members/staff.txt")]).0,
        "401",
        "alice is not in staff"
    );
    assert_eq!(
        curl(&["-u", "carol:pw3", &url("/members/staff.txt")]),
        ("200".into(), "staff only\n".into())
    );
}

#[test]
fn redirects_from_htaccess() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let a = server.addr();
    let head = |path: &str| {
        let r = raw(
            a,
            format!("GET {path} HTTP/1.1\r\nHost: t1.test\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let status = r.split_whitespace().nth(1).unwrap_or("").to_owned();
        let location = r
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default();
        (status, location)
    };
    assert_eq!(
        head("/old/x.html?a=1"),
        ("301".into(), "http://t1.test/new/x.html?a=1".into())
    );
    assert_eq!(head("/gone/thing"), ("410".into(), String::new()));
    assert_eq!(
        head("/m/page.htm"),
        ("302".into(), "http://t1.test/n/page.html".into())
    );
    assert_eq!(head("/oldish").0, "404", "Redirect matches whole segments");
}

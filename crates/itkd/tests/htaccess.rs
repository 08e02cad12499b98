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
<Directory DIR/t2/www/authonly>
    AllowOverride AuthConfig
</Directory>
<Directory DIR/t2/www/limitonly>
    AllowOverride Limit
</Directory>
<Directory DIR/t2/www/optidx>
    AllowOverride Options=Indexes
</Directory>
<Directory DIR/t1/www/hdr>
    Header set X-Parent p
    Header always set X-Parent-Always pa
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

/// A 0755 base with tenant 1 (an index page) and tenant 2 (`t2_files`, under its tree).
fn trees(t2_files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    tenant(base, 1, &[("www/index.html", "t1\n")]);
    tenant(base, 2, t2_files);
    dir
}

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
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

/// `user:hash\n` as Debian's `htpasswd -nb FLAG` makes it; without htpasswd (and without
/// ITKD_REQUIRE_APACHE), lines it made earlier on Debian.
fn htpasswd_line(flag: &str, user: &str, pass: &str) -> String {
    let made = std::process::Command::new("htpasswd")
        .args([&format!("-nb{}", &flag[1..]), user, pass])
        .output();
    match made {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8(out.stdout).unwrap();
            format!("{}\n", text.trim_end())
        }
        _ => {
            assert!(
                std::env::var_os("ITKD_REQUIRE_APACHE").is_none(),
                "htpasswd (apache2-utils) is required: {made:?}"
            );
            match user {
                "alice" => "alice:$apr1$W0lInCec$yBFWQj4tOG2bRurNJL82x.\n",
                "bob" => "bob:$2y$05$ImHYn37KVH7keP0d0K.7peYgUUrhoiweFJreWLCSkY8Vwct3pDvhW\n",
                "carol" => "carol:{SHA}Z/q5KhbWJGlg/C2XbiLEJnMKKr8=\n",
                _ => "dave:ojdMv4yWwNRwg\n",
            }
            .to_owned()
        }
    }
}

#[test]
fn basic_authentication_from_a_tenants_htaccess() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let base = dir.path();
    // One entry per hash kind of Debian's htpasswd: alice/secret (apr1), bob/pw2 (bcrypt),
    // carol/pw3 ({SHA}), dave/pw4 (crypt); then two malformed lines, skipped and logged.
    let kinds = [
        ("-m", "alice", "secret"),
        ("-B", "bob", "pw2"),
        ("-s", "carol", "pw3"),
        ("-d", "dave", "pw4"),
    ];
    let mut users: String = kinds
        .iter()
        .map(|(flag, user, pass)| htpasswd_line(flag, user, pass))
        .collect();
    users.push_str("garbage-without-colon\neve:notahash\n");
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
    for (_, user, pass) in kinds {
        assert_eq!(
            curl(&["-u", &format!("{user}:{pass}"), &url("/members/page.txt")]),
            ("200".into(), "members only\n".into()),
            "{user}"
        );
        assert_eq!(
            curl(&["-u", &format!("{user}:wrong"), &url("/members/page.txt")]).0,
            "401",
            "{user} with a wrong password"
        );
    }
    assert_eq!(
        curl(&["-u", "eve:notahash", &url("/members/page.txt")]).0,
        "401"
    );
    assert_eq!(
        curl(&["-u", "mallory:x", &url("/members/page.txt")]).0,
        "401"
    );
    let log = server.error_log();
    let file = private.join("users");
    for line in [5, 6] {
        assert!(
            log.contains(&format!(
                "{}:{line}: ignoring a malformed password line",
                file.display()
            )),
            "line {line}: {log}"
        );
    }
    assert!(
        log.contains(
            "AH01617: user alice: authentication failure for \"/members/page.txt\": Password Mismatch"
        ),
        "{log}"
    );
    assert!(
        log.contains("AH01618: user mallory not found: /members/page.txt"),
        "{log}"
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

/// The response head of `METHOD path` on `host`, lower-cased header names: (status,
/// headers in order, body).
fn exchange(
    addr: std::net::SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    extra: &str,
) -> (u16, Vec<(String, String)>, String) {
    let r = raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, body) = r.split_once("\r\n\r\n").unwrap_or((&r, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn header_directives_act_on_success_and_always() {
    if !root() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    tenant(
        base,
        1,
        &[
            ("www/index.html", "t1\n"),
            ("www/hdr/f.txt", "f\n"),
            (
                "www/hdr/.htaccess",
                "SetEnv HDRVAR v1\n\
                 Header append X-Parent c\n\
                 Header set X-On ok\n\
                 Header always set X-Always yes\n\
                 Header unset ETag\n\
                 Header add X-Two a\n\
                 Header add X-Two b\n\
                 Header merge Cache-Control no-cache\n\
                 Header merge Cache-Control no-cache\n\
                 Header setifempty Accept-Ranges none\n\
                 Header setifempty X-Empty filled\n\
                 Header set X-Pct \"100%% %{HDRVAR}e\"\n\
                 Header set X-Cond yes env=HDRVAR\n\
                 Header set X-NotCond no env=!HDRVAR\n\
                 Header set Content-Length 1\n\
                 Header always set Connection keep-alive\n\
                 ErrorDocument 410 \"gone for good\"\n\
                 Redirect gone /hdr/gone\n",
            ),
        ],
    );
    tenant(
        base,
        2,
        &[
            ("www/authonly/.htaccess", "Header set X-A 1\n"),
            ("www/authonly/x.txt", "x\n"),
            ("www/edit/.htaccess", "Header edit X-A a b\n"),
            ("www/edit/x.txt", "x\n"),
        ],
    );
    let server = Server::start(base, CONFIG);
    let a = server.addr();

    let (status, h, body) = exchange(a, "GET", "t1.test", "/hdr/f.txt", "");
    assert_eq!((status, body.as_str()), (200, "f\n"));
    // The main config's <Directory> acts first, then the tenant's .htaccess.
    assert_eq!(values(&h, "x-parent"), ["p, c"], "{h:?}");
    assert_eq!(values(&h, "x-parent-always"), ["pa"]);
    assert_eq!(values(&h, "x-on"), ["ok"]);
    assert_eq!(values(&h, "x-always"), ["yes"]);
    assert!(values(&h, "etag").is_empty(), "{h:?}");
    assert_eq!(values(&h, "x-two"), ["a", "b"]);
    assert_eq!(values(&h, "cache-control"), ["no-cache"]);
    assert_eq!(values(&h, "accept-ranges"), ["bytes"]);
    assert_eq!(values(&h, "x-empty"), ["filled"]);
    assert_eq!(values(&h, "x-pct"), ["100% v1"]);
    assert_eq!(values(&h, "x-cond"), ["yes"]);
    assert!(values(&h, "x-notcond").is_empty());
    // Framing is the server's: a tenant cannot desynchronise it.
    assert_eq!(values(&h, "content-length"), ["2"]);
    assert_eq!(values(&h, "connection"), ["close"]);

    // A 404 page: only `always` actions.
    let (status, h, _) = exchange(a, "GET", "t1.test", "/hdr/missing", "");
    assert_eq!(status, 404);
    assert_eq!(values(&h, "x-always"), ["yes"], "{h:?}");
    assert_eq!(values(&h, "x-parent-always"), ["pa"]);
    assert!(
        values(&h, "x-on").is_empty() && values(&h, "x-parent").is_empty(),
        "{h:?}"
    );
    // A redirect and an ErrorDocument message are on the error path too.
    let (status, h, body) = exchange(a, "GET", "t1.test", "/hdr/gone", "");
    assert_eq!((status, body.as_str()), (410, "gone for good"));
    assert_eq!(values(&h, "x-always"), ["yes"]);
    assert!(values(&h, "x-on").is_empty(), "{h:?}");
    // A 304 is a handler's response: `onsuccess` acts.
    let (status, h, _) = exchange(a, "GET", "t1.test", "/hdr/f.txt", "If-None-Match: *\r\n");
    assert_eq!(status, 304);
    assert_eq!(values(&h, "x-on"), ["ok"], "{h:?}");

    // Header is FileInfo's: under AllowOverride AuthConfig it is a 500 with httpd's line;
    // what itkd does not carry out is a 500 too, never silently ignored.
    assert_eq!(get(a, "t2.test", "/authonly/x.txt").0, 500);
    assert_eq!(get(a, "t2.test", "/edit/x.txt").0, 500);
    let log = server.error_log();
    let d = base.display();
    assert!(
        log.contains(&format!(
            "{d}/t2/www/authonly/.htaccess: Header not allowed here"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{d}/t2/www/edit/.htaccess: Header edit is not supported by itkd"
        )),
        "{log}"
    );
}

#[test]
fn limit_and_limit_except_in_htaccess_restrict_only_their_methods() {
    if !root() {
        return;
    }
    let dir = trees(&[
        ("www/lim/.htaccess", "<Limit POST PUT>\nRequire all denied\n</Limit>\n"),
        ("www/lim/x.txt", "x\n"),
        ("www/limx/.htaccess", "<LimitExcept GET POST>\nRequire all denied\n</LimitExcept>\n"),
        ("www/limx/x.txt", "x\n"),
        (
            "www/limauth/.htaccess",
            "AuthType Basic\nAuthName \"Writers\"\nAuthUserFile /nonexistent/users\n<Limit POST>\nRequire valid-user\n</Limit>\n",
        ),
        ("www/limauth/x.txt", "x\n"),
        ("www/limitonly/.htaccess", "<Limit GET>\nRequire all denied\n</Limit>\n"),
        ("www/limitonly/x.txt", "x\n"),
    ]);
    let base = dir.path();
    let server = Server::start(base, CONFIG);
    let a = server.addr();
    let status = |method: &str, path: &str| exchange(a, method, "t2.test", path, "").0;

    // <Limit POST PUT>: GET and HEAD pass, POST and PUT are refused.
    assert_eq!(status("GET", "/lim/x.txt"), 200);
    assert_eq!(status("HEAD", "/lim/x.txt"), 200);
    assert_eq!(status("POST", "/lim/x.txt"), 403);
    assert_eq!(status("PUT", "/lim/x.txt"), 403);
    // <LimitExcept GET POST>: everything but GET (HEAD is GET to httpd) and POST refused.
    assert_eq!(status("GET", "/limx/x.txt"), 200);
    assert_eq!(status("HEAD", "/limx/x.txt"), 200);
    assert_ne!(
        status("POST", "/limx/x.txt"),
        403,
        "POST is let through authorization"
    );
    assert_eq!(status("DELETE", "/limx/x.txt"), 403);
    assert_eq!(status("OPTIONS", "/limx/x.txt"), 403);
    // Authentication only for the limited method.
    assert_eq!(status("GET", "/limauth/x.txt"), 200);
    let (code, h, _) = exchange(a, "POST", "t2.test", "/limauth/x.txt", "");
    assert_eq!(code, 401);
    assert_eq!(values(&h, "www-authenticate"), ["Basic realm=\"Writers\""]);
    // AllowOverride Limit admits <Limit>, but Require inside is AuthConfig's.
    assert_eq!(status("GET", "/limitonly/x.txt"), 500);
    let log = server.error_log();
    assert!(
        log.contains(&format!(
            "{}/t2/www/limitonly/.htaccess: Require not allowed here",
            base.display()
        )),
        "{log}"
    );
    assert!(
        log.contains("AH01630: client denied by server configuration"),
        "{log}"
    );
}

#[test]
fn options_indexes_from_htaccess_lists_names_escaped() {
    if !root() {
        return;
    }
    let dir = trees(&[
        ("www/optidx/list/.htaccess", "Options +Indexes\n"),
        ("www/optidx/list/<b>&x.txt", "b\n"),
        ("www/optidx/list/plain.txt", "p\n"),
        ("www/optidx/list/sub/y.txt", "y\n"),
        ("www/optidx/plain/y.txt", "y\n"),
        ("www/optidx/cgi/.htaccess", "Options +ExecCGI\n"),
        ("www/optidx/cgi/y.txt", "y\n"),
    ]);
    let base = dir.path();
    let server = Server::start(base, CONFIG);
    let a = server.addr();

    let (status, h, body) = exchange(a, "GET", "t2.test", "/optidx/list/", "");
    assert_eq!(status, 200, "{body}");
    assert!(
        values(&h, "content-type")[0].starts_with("text/html"),
        "{h:?}"
    );
    assert!(body.contains("&lt;b&gt;&amp;x.txt"), "{body}");
    assert!(!body.contains("<b>"), "names are HTML-escaped: {body}");
    assert!(
        body.contains("plain.txt") && body.contains("sub/"),
        "{body}"
    );
    assert!(
        !body.contains(".htaccess"),
        "dot files are not listed: {body}"
    );
    // No index and no Indexes: 403 with httpd's AH01276 line.
    assert_eq!(get(a, "t2.test", "/optidx/plain/").0, 403);
    // AllowOverride Options=Indexes: other options are refused (500).
    assert_eq!(get(a, "t2.test", "/optidx/cgi/y.txt").0, 500);
    let log = server.error_log();
    let d = base.display();
    assert!(
        log.contains(&format!("AH01276: Cannot serve directory {d}/t2/www/optidx/plain/: No matching DirectoryIndex (index.html) found, and server-generated directory index forbidden by Options directive")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{d}/t2/www/optidx/cgi/.htaccess: Options Option ExecCGI not allowed here"
        )),
        "{log}"
    );
}

#[test]
fn a_directory_the_tenant_cannot_search_is_403() {
    if !root() {
        return;
    }
    let dir = trees(&[
        ("www/locked/x.txt", "secret\n"),
        ("www/none/closed/x.txt", "secret\n"),
        ("www/none/foreign/x.txt", "secret\n"),
        ("www/none/open.txt", "open\n"),
    ]);
    let base = dir.path();
    let mode = |p: &str, m: u32| {
        std::fs::set_permissions(base.join(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode("t2/www/locked", 0o000);
    mode("t2/www/none/closed", 0o000);
    // Another tenant's 0700 directory inside t2's tree.
    std::os::unix::fs::chown(base.join("t2/www/none/foreign"), Some(20001), Some(21001)).unwrap();
    let server = Server::start(base, CONFIG);
    let a = server.addr();

    // Under AllowOverride All the walk stops at the .htaccess it cannot check (AH00529).
    let (status, body) = get(a, "t2.test", "/locked/x.txt");
    assert_eq!(status, 403);
    assert!(!body.contains("secret"));
    assert_eq!(get(a, "t2.test", "/locked/").0, 403);
    // Under AllowOverride None: the stat fails (AH00035).
    for path in ["/none/closed/x.txt", "/none/foreign/x.txt"] {
        let (status, body) = get(a, "t2.test", path);
        assert_eq!(status, 403, "{path}");
        assert!(!body.contains("secret"), "{path}");
    }
    assert_eq!(get(a, "t2.test", "/none/open.txt"), (200, "open\n".into()));
    let log = server.error_log();
    let d = base.display();
    assert!(
        log.contains(&format!("AH00529: {d}/t2/www/locked/.htaccess pcfg_openfile: unable to check htaccess file, ensure it is readable and that '{d}/t2/www/locked/' is executable")),
        "{log}"
    );
    for (uri, path) in [
        ("/none/closed/x.txt", "none/closed/x.txt"),
        ("/none/foreign/x.txt", "none/foreign/x.txt"),
    ] {
        assert!(
            log.contains(&format!("AH00035: access to {uri} denied (filesystem path '{d}/t2/www/{path}') because search permissions are missing on a component of the path")),
            "{log}"
        );
    }
}

#[test]
fn keep_alive_requests_reuse_the_htaccess_their_worker_read() {
    if !root() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    tenant(
        base,
        1,
        &[("www/ka/.htaccess", "ErrorDocument 404 \"first\"\n")],
    );
    tenant(base, 2, &[("www/index.html", "t2\n")]);
    let server = Server::start(base, CONFIG);
    let request = b"GET /ka/nosuch HTTP/1.1\r\nHost: t1.test\r\n\r\n";
    let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(&mut conn, request).unwrap();
    assert_eq!(read_response(&mut conn), Some((404, "first".into())));
    // The tenant edits the file (same owner and mode) while the connection is open.
    std::fs::write(
        base.join("t1/www/ka/.htaccess"),
        "ErrorDocument 404 \"second\"\n",
    )
    .unwrap();
    std::io::Write::write_all(&mut conn, request).unwrap();
    assert_eq!(
        read_response(&mut conn),
        Some((404, "first".into())),
        "the same worker answers from what it read"
    );
    // A new connection is a new worker: it reads the file again.
    assert_eq!(
        get(server.addr(), "t1.test", "/ka/nosuch"),
        (404, "second".into())
    );
}

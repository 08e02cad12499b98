//! A script's source is never sent, however the file is reached: DirectoryIndex,
//! ErrorDocument, PATH_INFO, encoded and dotted paths, ranges, conditionals, handlers set
//! from `.htaccess`, and handlers itkd cannot run (mod_php's without php_module). Each
//! case runs against the real itkd and, as the reference, Debian's apache2 + mpm-itk
//! (+ mod_php, or php-cgi through Action) on the same configuration files.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{
    apache_present, dechunk, free_port, php_present, raw, root, server_dir, tenant, wait_listening,
    Apache, Server, APACHE_MODULES, ITKD,
};

/// Each script holds a secret it never echoes: the secret in a response is the source.
const SCRIPTS: &[(&str, &str)] = &[
    (
        "index.php",
        "<?php $secret = 'SECRET-index'; echo 'ran index.php ', $_SERVER['SCRIPT_NAME'], \"\\n\";",
    ),
    (
        "sub/index.php",
        "<?php $secret = 'SECRET-sub'; echo \"ran sub/index.php\\n\";",
    ),
    (
        "x.php",
        "<?php $secret = 'SECRET-x'; echo 'ran x.php [', $_SERVER['PATH_INFO'] ?? '', \"]\\n\";",
    ),
    (
        "page.phtml",
        "<?php $secret = 'SECRET-phtml'; echo \"ran page.phtml\\n\";",
    ),
    (
        "lib.inc",
        "<?php $secret = 'SECRET-inc'; echo \"ran lib.inc\\n\";",
    ),
    (
        "err.php",
        "<?php $secret = 'SECRET-err'; echo 'error page for ', $_SERVER['REDIRECT_URL'] ?? '?', \"\\n\";",
    ),
    (
        "go.php",
        "<?php $secret = 'SECRET-go'; header('Location: /x.php/went', true, 200);",
    ),
    (
        "ht/.htaccess",
        "AddHandler application/x-httpd-php .php5\nDirectoryIndex start.tpl\n<FilesMatch \"\\.tpl$\">\n    SetHandler application/x-httpd-php\n</FilesMatch>\n",
    ),
    (
        "ht/a.php5",
        "<?php $secret = 'SECRET-php5'; echo \"ran a.php5\\n\";",
    ),
    (
        "ht/start.tpl",
        "<?php $secret = 'SECRET-start'; echo \"ran start.tpl\\n\";",
    ),
    ("plain.html", "plain page\n"),
    (
        "in/index.php",
        "<?php echo 'input=[', file_get_contents('php://input'), \"]\\n\";",
    ),
    (
        "pool.fpm",
        "<?php $secret = 'SECRET-fpm'; echo \"ran pool.fpm\\n\";",
    ),
];

/// The requests: every path under GET, HEAD and POST, plain, with a Range and with
/// `If-None-Match: *`.
const PATHS: &[&str] = &[
    "/",
    "/sub/",
    "/sub",
    "/index.php",
    "/x.php/extra",
    "/x.php/",
    "/%69ndex.php",
    "/./index.php",
    "/sub/../index.php",
    "/page.phtml",
    "/lib.inc",
    "/missing.html",
    "/go.php",
    "/ht/",
    "/ht/a.php5",
    "/ht/start.tpl",
];

fn requests(port: u16) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for path in PATHS {
        for method in ["GET", "HEAD", "POST"] {
            for extra in ["", "Range: bytes=0-20\r\n", "If-None-Match: *\r\n"] {
                let body = if method == "POST" { "a=b" } else { "" };
                let request = format!(
                    "{method} {path} HTTP/1.1\r\nHost: t.test:{port}\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                out.push((
                    format!("{method} {path} {}", extra.trim()),
                    request.into_bytes(),
                ));
            }
        }
    }
    out
}

/// Sends every request; returns (label, status, whole response).
fn exchange_all(addr: std::net::SocketAddr, port: u16) -> Vec<(String, u16, String)> {
    requests(port)
        .into_iter()
        .map(|(label, request)| {
            let response = raw(addr, &request);
            let status = response
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (label, status, response)
        })
        .collect()
}

fn assert_no_source(server: &str, answers: &[(String, u16, String)]) {
    for (label, status, response) in answers {
        assert!(
            !response.contains("SECRET") && !response.contains("<?php"),
            "{server}: {label} → {status} sent a script's source:\n{response}"
        );
        assert_ne!(*status, 0, "{server}: {label} got no response");
    }
}

fn status_of(answers: &[(String, u16, String)], label: &str) -> u16 {
    answers
        .iter()
        .find(|(l, _, _)| l == label)
        .map(|(_, s, _)| *s)
        .unwrap_or_else(|| panic!("no request labelled {label}"))
}

/// A copy of Debian's /etc/apache2 (mod_php enabled, as libapache2-mod-php8.2 leaves it)
/// with one itk vhost for the tenant, on `${TEST_PORT}`.
fn debian_tree(base: &Path) -> std::path::PathBuf {
    let conf = base.join("apache2");
    let status = Command::new("cp")
        .args(["-a", "/etc/apache2"])
        .arg(&conf)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        conf.join("mods-enabled/php8.2.load").exists(),
        "libapache2-mod-php8.2 is enabled (scripts/test installs it)"
    );
    // Packages' own sites and confs (dokuwiki's, for one) are not part of this case.
    for sub in ["sites-enabled", "conf-enabled"] {
        for entry in std::fs::read_dir(conf.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let stock = [
                "charset.conf",
                "localized-error-pages.conf",
                "other-vhosts-access-log.conf",
                "security.conf",
                "serve-cgi-bin.conf",
            ];
            if sub == "sites-enabled" || !stock.contains(&name.as_str()) {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    std::fs::write(conf.join("ports.conf"), "Listen 127.0.0.1:${TEST_PORT}\n").unwrap();
    let site = format!(
        "<VirtualHost *:${{TEST_PORT}}>
    ServerName t.test
    DocumentRoot {root}/t1
    AssignUserID #20001 #21001
    DirectoryIndex index.php index.html
    ErrorDocument 404 /err.php
    AddHandler application/x-httpd-php .inc
    AddHandler \"proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost\" .fpm
    <Directory {root}/t1>
        AllowOverride FileInfo Indexes
        Require all granted
    </Directory>
</VirtualHost>
",
        root = base.display()
    );
    std::fs::write(conf.join("sites-enabled/tenant.conf"), site).unwrap();
    conf
}

/// `. envvars` with this test's port and run/log directories, then `program args`.
fn debian_env(conf: &Path, logs: &Path, port: u16) -> String {
    format!(
        ". /etc/apache2/envvars && export APACHE_CONFDIR={c} TEST_PORT={port} APACHE_RUN_DIR={l} APACHE_LOCK_DIR={l} APACHE_LOG_DIR={l} APACHE_PID_FILE={l}/pid",
        c = conf.display(),
        l = logs.display()
    )
}

#[test]
fn debian_tree_with_mod_php_never_sends_a_scripts_source() {
    if !root() || !apache_present() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    tenant(base, 1, SCRIPTS);
    let conf = debian_tree(base);
    let (itkd_logs, apache_logs) = (base.join("itkd-logs"), base.join("apache-logs"));
    std::fs::create_dir(&itkd_logs).unwrap();
    std::fs::create_dir(&apache_logs).unwrap();

    // itkd -t: one warning per directive naming a handler it cannot run.
    let conf_file = conf.join("apache2.conf");
    let check = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} && exec {ITKD} -t -f {}",
            debian_env(&conf, &itkd_logs, 1),
            conf_file.display()
        ))
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(check.status.success(), "{warnings}");
    for (at, handler) in [
        ("mods-enabled/php8.2.conf:4", "application/x-httpd-php "),
        (
            "mods-enabled/php8.2.conf:7",
            "application/x-httpd-php-source",
        ),
        ("sites-enabled/tenant.conf:7", "application/x-httpd-php "),
        ("sites-enabled/tenant.conf:8", "proxy:unix:"),
    ] {
        let lines: Vec<&str> = warnings
            .lines()
            .filter(|l| l.contains(at) && l.contains(handler))
            .collect();
        assert_eq!(lines.len(), 1, "one warning for {at}:\n{warnings}");
    }

    // The reference: Apache + mpm-itk + mod_php runs every script.
    let apache_port = free_port();
    let apache = Apache::start_file_with(
        &apache_logs,
        &conf.join("apache2.conf"),
        &conf,
        apache_port,
        &[
            ("APACHE_CONFDIR", conf.display().to_string()),
            ("TEST_PORT", apache_port.to_string()),
        ],
    );
    let reference = exchange_all(apache.addr(), apache_port);
    // The hole itkd closes: httpd without mod_proxy_fcgi sends a php-fpm handler's file.
    let fpm = "GET /pool.fpm HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n";
    let leaked = raw(apache.addr(), fpm.as_bytes());
    drop(apache);
    assert!(leaked.contains("SECRET-fpm"), "apache2 sends it: {leaked}");
    assert_no_source("apache2", &reference);
    let ran = |answers: &[(String, u16, String)], label: &str, text: &str| {
        answers
            .iter()
            .any(|(l, _, r)| l == label && r.contains(text))
    };
    assert!(
        ran(&reference, "GET / ", "ran index.php /index.php"),
        "apache2 runs the index: {reference:?}"
    );

    // itkd on the same tree: mod_php is not embedded, so every PHP file is refused.
    let itkd_port = free_port();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} && exec {ITKD} -f {} -D FOREGROUND",
            debian_env(&conf, &itkd_logs, itkd_port),
            conf_file.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(itkd_port);
    let server = Server {
        child,
        port: itkd_port,
        dir: itkd_logs.clone(),
    };
    let answers = exchange_all(server.addr(), itkd_port);
    assert_no_source("itkd", &answers);
    let fpm = raw(
        server.addr(),
        b"GET /pool.fpm HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n",
    );
    assert!(
        fpm.starts_with("HTTP/1.1 500") && !fpm.contains("SECRET"),
        "itkd refuses the php-fpm handler: {fpm}"
    );
    for label in [
        "GET / ",
        "GET /sub/ ",
        "POST / ",
        "GET /index.php ",
        "GET /x.php/extra ",
        "GET /x.php/ ",
        "GET /%69ndex.php ",
        "GET /./index.php ",
        "GET /page.phtml ",
        "GET /lib.inc ",
        "GET /ht/ ",
        "GET /ht/a.php5 ",
        "GET /ht/start.tpl ",
        "GET / Range: bytes=0-20",
        "GET /index.php If-None-Match: *",
    ] {
        assert_eq!(status_of(&answers, label), 500, "{label}");
    }
    // The ErrorDocument is a script too: the 404 stays a 404, with httpd's page.
    assert_eq!(status_of(&answers, "GET /missing.html "), 404);
    assert_eq!(status_of(&answers, "GET /sub "), 301);
    let log = std::fs::read_to_string(itkd_logs.join("error.log")).unwrap_or_default();
    assert!(
        log.contains("handler 'application/x-httpd-php' is not available in itkd")
            && log.contains(&format!("{}/t1/index.php", base.display()))
            && log.contains("php8.2.conf:4"),
        "the refusal names handler, file and directive:\n{log}"
    );
}

/// The README's php-cgi recipe with `DirectoryIndex index.php`: itkd and Apache both run
/// the index script, the ErrorDocument script, a script's local redirect and PATH_INFO
/// `/`, with the same statuses and bodies.
const PHP_CGI_CONFIG: &str = "
Listen 127.0.0.1:PORT
ServerName main.test
ServerRoot DIR
TypesConfig /etc/mime.types
DocumentRoot DIR/t1
ErrorLog DIR/LOGS/error.log
PidFile DIR/LOGS/pid
User www-data
Group www-data
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
<Directory /usr/lib/cgi-bin>
    Require all granted
</Directory>
Action application/x-httpd-php /cgi-bin/php
AddHandler application/x-httpd-php .php .php5 .tpl
<Directory DIR/t1>
    AllowOverride FileInfo Indexes
    Require all granted
</Directory>
<VirtualHost *:PORT>
    ServerName t.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
    DirectoryIndex index.php index.html
    ErrorDocument 404 /err.php
</VirtualHost>
<VirtualHost *:PORT>
    ServerName abs.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
    DirectoryIndex /index.php
</VirtualHost>
";

#[test]
fn php_cgi_runs_index_error_document_and_redirect_targets_as_apache_does() {
    if !root() || !apache_present() || !php_present() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    let scripts: Vec<(&str, &str)> = SCRIPTS
        .iter()
        .copied()
        .filter(|(name, _)| *name != "ht/.htaccess")
        .chain([("ht/.htaccess", "DirectoryIndex start.tpl\n")])
        .collect();
    tenant(base, 1, &scripts);
    std::fs::create_dir(base.join("itkd-logs")).unwrap();
    std::fs::create_dir(base.join("apache-logs")).unwrap();
    let server = Server::start(base, &PHP_CGI_CONFIG.replace("LOGS", "itkd-logs"));
    let apache = Apache::start(
        base,
        &format!(
            "{APACHE_MODULES}{}",
            PHP_CGI_CONFIG.replace("LOGS", "apache-logs")
        ),
    );
    let cases: &[(&str, &str, &str)] = &[
        ("t.test", "GET / HTTP/1.1", "ran index.php /index.php"),
        ("t.test", "POST / HTTP/1.1", "ran index.php /index.php"),
        ("t.test", "GET /?q=1 HTTP/1.1", "ran index.php /index.php"),
        ("t.test", "GET /sub/ HTTP/1.1", "ran sub/index.php"),
        ("t.test", "GET /ht/ HTTP/1.1", "ran start.tpl"),
        ("t.test", "GET /x.php/ HTTP/1.1", "ran x.php [/]"),
        ("t.test", "GET /x.php/a/b HTTP/1.1", "ran x.php [/a/b]"),
        (
            "t.test",
            "GET /missing.html HTTP/1.1",
            "error page for /err.php",
        ),
        ("t.test", "GET /go.php HTTP/1.1", "ran x.php [/went]"),
        ("abs.test", "GET /sub/ HTTP/1.1", "ran index.php /index.php"),
        ("t.test", "GET /plain.html HTTP/1.1", "plain page"),
        // The body of a POST to a directory reaches its index script whole.
        ("t.test", "POST /in/ HTTP/1.1", "input=[a=b]"),
    ];
    for (host, line, expected) in cases {
        let request = format!(
            "{line}\r\nHost: {host}\r\nContent-Length: 3\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\na=b"
        );
        let ours = raw(server.addr(), request.as_bytes());
        let theirs = raw(apache.addr(), request.as_bytes());
        let status = |r: &str| r.split_whitespace().nth(1).unwrap_or("").to_owned();
        let body = |r: &str| dechunk(r.split_once("\r\n\r\n").map_or("", |(_, b)| b));
        assert!(
            !ours.contains("SECRET"),
            "{host} {line}: source sent:\n{ours}"
        );
        assert_eq!(
            (status(&ours), body(&ours)),
            (status(&theirs), body(&theirs)),
            "{host} {line}: itkd vs apache2"
        );
        assert!(
            body(&ours).contains(expected),
            "{host} {line}: expected {expected:?}:\n{ours}"
        );
    }
}

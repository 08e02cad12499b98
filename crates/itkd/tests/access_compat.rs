//! mod_access_compat (`Order`, `Allow`, `Deny`, `Satisfy`) with `Require`, `CGIPassAuth`,
//! and the `<IfModule>` sections of the modules itkd provides, end to end as root: the
//! real itkd and Debian's apache2 + mpm-itk run side by side on the same configuration
//! text and the same tenant trees, and must answer every request with the same status.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// The configuration both servers read, after [`APACHE_MODULES`]. `LOG` names each
/// server's own error log and pid file; the `LoadModule` lines are Apache's (itkd opens
/// no `.so`, they only make `<IfModule>` true). Debian's `serve-cgi-bin.conf` gives `/cgi-bin/` only when
/// `<IfModule mod_cgi.c>` holds.
const CONFIG: &str = "\
ServerRoot DIR
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/www
ErrorLog DIR/LOG.error.log
PidFile DIR/LOG.pid
TypesConfig /etc/mime.types
LogLevel warn
Include DIR/serve-cgi-bin.conf
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory DIR>
    AllowOverride All
    Require all granted
</Directory>
<Directory DIR/t1/www/h-authonly>
    AllowOverride AuthConfig
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1/www
    AssignUserID #20001 #21001
    Action application/x-httpd-php /cgi-bin/php
    AddHandler application/x-httpd-php .php
    <Directory DIR/t1/www/c-deny-all>
        Order deny,allow
        Deny from all
    </Directory>
    <Directory DIR/t1/www/c-allow-loopback>
        Order allow,deny
        Allow from 127.0.0.1
    </Directory>
    <Directory DIR/t1/www/c-allow-other-net>
        Order allow,deny
        Allow from 10.0.0.0/8
    </Directory>
    <Directory DIR/t1/www/c-deny-then-allow-mask>
        Order deny,allow
        Deny from all
        Allow from 127.0.0.0/255.0.0.0
    </Directory>
    <Directory DIR/t1/www/c-allow-then-deny>
        Order allow,deny
        Allow from all
        Deny from 127.0.0.1/32
    </Directory>
    <Directory DIR/t1/www/c-mutual-failure>
        Order mutual-failure
        Allow from 127
        Deny from 10
    </Directory>
    <Directory DIR/t1/www/c-partial-ip>
        Order deny,allow
        Deny from 127.0.
    </Directory>
    <Directory DIR/t1/www/c-ipv6-only>
        Order allow,deny
        Allow from ::1 2001:db8::/32
    </Directory>
    <Directory DIR/t1/www/c-host-localhost>
        Order allow,deny
        Allow from localhost
    </Directory>
    <Directory DIR/t1/www/c-host-other>
        Order allow,deny
        Allow from .example.invalid calhost
    </Directory>
    <Directory DIR/t1/www/c-env-set-by-setenv>
        SetEnv LET_ME_IN 1
        Order deny,allow
        Deny from all
        Allow from env=LET_ME_IN
    </Directory>
    <Directory DIR/t1/www/c-env-not>
        Order deny,allow
        Deny from env=!NOT_SET_ANYWHERE
    </Directory>
    <Directory DIR/t1/www/c-order-only>
        Order allow,deny
    </Directory>
    <Directory DIR/t1/www/c-satisfy-all-require-denied>
        Satisfy All
        Order allow,deny
        Allow from all
        Require all denied
    </Directory>
    <Directory DIR/t1/www/c-satisfy-any-host-ok-require-denied>
        Satisfy Any
        Order allow,deny
        Allow from 127.0.0.1
        Require all denied
    </Directory>
    <Directory DIR/t1/www/c-satisfy-any-host-denied-require-granted>
        Satisfy Any
        Deny from all
    </Directory>
    <Directory DIR/t1/www/c-satisfy-any-both-denied>
        Satisfy Any
        Deny from all
        Require all denied
    </Directory>
    <Directory DIR/t1/www/c-satisfy-any-user>
        AuthType Basic
        AuthName realm
        AuthUserFile DIR/htpasswd
        Require valid-user
        Satisfy Any
        Order allow,deny
        Allow from 10.0.0.1
    </Directory>
    <Directory DIR/t1/www/c-satisfy-any-user-host-ok>
        AuthType Basic
        AuthName realm
        AuthUserFile DIR/htpasswd
        Require valid-user
        Satisfy Any
        Order allow,deny
        Allow from 127.0.0.1
    </Directory>
    <Directory DIR/t1/www/c-limit-post>
        <Limit POST>
            Order allow,deny
        </Limit>
    </Directory>
    <Directory DIR/t1/www/c-limit-except-get>
        Order allow,deny
        Allow from all
        <LimitExcept GET>
            Deny from all
        </LimitExcept>
    </Directory>
    <Directory DIR/t1/www/c-outer>
        Order allow,deny
        Allow from 10.0.0.1
    </Directory>
    <Files denied-file.html>
        Order deny,allow
        Deny from all
    </Files>
    <Location /l-deny>
        Deny from all
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t2.test
    DocumentRoot DIR/t2/www
    AssignUserID #20002 #21002
    Action application/x-httpd-php /cgi-bin/php
    AddHandler application/x-httpd-php .php
    <Location />
        CGIPassAuth On
    </Location>
</VirtualHost>
";

/// The `.htaccess` cases (directory under t1's DocumentRoot, file text).
const HTACCESS: &[(&str, &str)] = &[
    ("h-deny-all", "Order deny,allow\nDeny from all\n"),
    ("h-allow-loopback", "Order allow,deny\nAllow from 127.0.0.1\n"),
    ("h-allow-other", "Order allow,deny\nAllow from 192.0.2.0/24\n"),
    ("h-satisfy-any", "Satisfy Any\nDeny from all\n"),
    (
        "h-dokuwiki",
        "<IfModule mod_authz_core.c>\n    Require all denied\n</IfModule>\n<IfModule !mod_authz_core.c>\n    Order allow,deny\n    Deny from all\n</IfModule>\n",
    ),
    ("h-limit", "<Limit POST>\nOrder deny,allow\nDeny from all\n</Limit>\n"),
    // Order needs AllowOverride Limit: here only AuthConfig is allowed, so 500.
    ("h-authonly", "Order deny,allow\nDeny from all\n"),
    // The inner .htaccess replaces the outer section's lines whole: a lone Satisfy resets
    // Order/Allow/Deny.
    ("c-outer/inner", "Satisfy All\n"),
];

/// (host, method, path, credentials, the status httpd answers). Every path holds a page.
const CASES: &[(&str, &str, &str, Option<&str>, u16)] = &[
    ("t1.test", "GET", "/index.html", None, 200),
    ("t1.test", "GET", "/c-deny-all/x.html", None, 403),
    ("t1.test", "HEAD", "/c-deny-all/x.html", None, 403),
    ("t1.test", "GET", "/c-allow-loopback/x.html", None, 200),
    ("t1.test", "GET", "/c-allow-other-net/x.html", None, 403),
    (
        "t1.test",
        "GET",
        "/c-deny-then-allow-mask/x.html",
        None,
        200,
    ),
    ("t1.test", "GET", "/c-allow-then-deny/x.html", None, 403),
    ("t1.test", "GET", "/c-mutual-failure/x.html", None, 200),
    ("t1.test", "GET", "/c-partial-ip/x.html", None, 403),
    ("t1.test", "GET", "/c-ipv6-only/x.html", None, 403),
    ("t1.test", "GET", "/c-host-localhost/x.html", None, 200),
    ("t1.test", "GET", "/c-host-other/x.html", None, 403),
    ("t1.test", "GET", "/c-env-set-by-setenv/x.html", None, 403),
    ("t1.test", "GET", "/c-env-not/x.html", None, 403),
    ("t1.test", "GET", "/c-order-only/x.html", None, 403),
    (
        "t1.test",
        "GET",
        "/c-satisfy-all-require-denied/x.html",
        None,
        403,
    ),
    (
        "t1.test",
        "GET",
        "/c-satisfy-any-host-ok-require-denied/x.html",
        None,
        200,
    ),
    (
        "t1.test",
        "GET",
        "/c-satisfy-any-host-denied-require-granted/x.html",
        None,
        200,
    ),
    (
        "t1.test",
        "GET",
        "/c-satisfy-any-both-denied/x.html",
        None,
        403,
    ),
    ("t1.test", "GET", "/c-satisfy-any-user/x.html", None, 401),
    (
        "t1.test",
        "GET",
        "/c-satisfy-any-user/x.html",
        Some("u:p"),
        200,
    ),
    (
        "t1.test",
        "GET",
        "/c-satisfy-any-user/x.html",
        Some("u:no"),
        401,
    ),
    (
        "t1.test",
        "GET",
        "/c-satisfy-any-user-host-ok/x.html",
        None,
        200,
    ),
    ("t1.test", "GET", "/c-limit-post/x.html", None, 200),
    ("t1.test", "POST", "/c-limit-post/x.html", None, 403),
    ("t1.test", "GET", "/c-limit-except-get/x.html", None, 200),
    ("t1.test", "POST", "/c-limit-except-get/x.html", None, 403),
    ("t1.test", "GET", "/c-outer/x.html", None, 403),
    ("t1.test", "GET", "/c-outer/inner/x.html", None, 200),
    ("t1.test", "GET", "/files/denied-file.html", None, 403),
    ("t1.test", "GET", "/files/x.html", None, 200),
    ("t1.test", "GET", "/l-deny/x.html", None, 403),
    ("t1.test", "GET", "/h-deny-all/x.html", None, 403),
    ("t1.test", "GET", "/h-allow-loopback/x.html", None, 200),
    ("t1.test", "GET", "/h-allow-other/x.html", None, 403),
    ("t1.test", "GET", "/h-satisfy-any/x.html", None, 200),
    ("t1.test", "GET", "/h-dokuwiki/x.html", None, 403),
    ("t1.test", "GET", "/h-limit/x.html", None, 200),
    ("t1.test", "POST", "/h-limit/x.html", None, 403),
    ("t1.test", "GET", "/h-authonly/x.html", None, 500),
];

/// Tenant 1's pages and `.htaccess` files, tenant 2's PHP page; `serve-cgi-bin.conf`
/// copied from Debian; the password file (`u`, password `p`).
fn trees() -> tempfile::TempDir {
    let dir = server_dir();
    let base = dir.path();
    std::fs::create_dir_all(base.join("www")).unwrap();
    let dirs: Vec<&str> = CASES
        .iter()
        .filter_map(|(_, _, path, _, _)| path.rsplit_once('/').map(|(d, _)| d))
        .collect();
    let mut files: Vec<(String, String)> = vec![
        ("www/index.html".into(), "t1\n".into()),
        ("www/files/denied-file.html".into(), "no\n".into()),
        ("www/p/info.php".into(), INFO_PHP.into()),
        ("www/pp/info.php".into(), INFO_PHP.into()),
        ("www/pp/.htaccess".into(), "CGIPassAuth On\n".into()),
        (
            "www/cgi/.htaccess".into(),
            "Options +ExecCGI\nAddHandler cgi-script .cgi\n".into(),
        ),
        ("www/cgi/env.cgi".into(), ENV_CGI.into()),
        (
            "www/cgi-pass/.htaccess".into(),
            "Options +ExecCGI\nAddHandler cgi-script .cgi\nCGIPassAuth On\n".into(),
        ),
        ("www/cgi-pass/env.cgi".into(), ENV_CGI.into()),
    ];
    for d in dirs.iter().filter(|d| !d.is_empty()) {
        files.push((format!("www{d}/x.html"), "ok\n".into()));
    }
    for (d, text) in HTACCESS {
        files.push((format!("www/{d}/.htaccess"), (*text).into()));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    tenant(base, 1, &refs);
    for script in ["cgi/env.cgi", "cgi-pass/env.cgi"] {
        let path = base.join("t1/www").join(script);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    tenant(base, 2, &[("www/info.php", INFO_PHP)]);
    std::fs::copy(
        "/etc/apache2/conf-available/serve-cgi-bin.conf",
        base.join("serve-cgi-bin.conf"),
    )
    .unwrap();
    // {SHA} of "p", as `htpasswd -nbs u p` writes it.
    std::fs::write(
        base.join("htpasswd"),
        "u:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=\n",
    )
    .unwrap();
    std::fs::set_permissions(
        base.join("htpasswd"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    dir
}

/// What php-cgi made of the credentials.
const INFO_PHP: &str =
    "<?php echo 'USER=', $_SERVER['PHP_AUTH_USER'] ?? '', ' PW=', $_SERVER['PHP_AUTH_PW'] ?? '', \"\\n\";\n";

const ENV_CGI: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho \"AUTH=$HTTP_AUTHORIZATION PROXY=$HTTP_PROXY_AUTHORIZATION\"\n";

/// One request with curl: (status, body).
fn ask(port: u16, host: &str, method: &str, path: &str, user: Option<&str>) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let host_header = format!("Host: {host}");
    let mut args = vec!["-H", host_header.as_str(), "-X", method];
    if method == "HEAD" {
        args = vec!["-H", host_header.as_str(), "-I"];
    }
    if method == "POST" {
        args.extend(["-d", "x=1"]);
    }
    if let Some(u) = user {
        args.extend(["-u", u]);
    }
    args.push(&url);
    let (code, body) = curl(&args);
    (
        code.trim().parse().unwrap_or(0),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Both servers on the same trees (each with its own error log).
fn both(base: &Path) -> (Server, Apache) {
    let config = |log: &str| format!("{APACHE_MODULES}{}", CONFIG.replace("LOG", log));
    let itkd = Server::start(base, &config("itkd"));
    let apache = Apache::start(base, &config("apache"));
    (itkd, apache)
}

#[test]
fn order_allow_deny_satisfy_and_require_answer_as_httpd() {
    if !root() || !apache_present() {
        return;
    }
    let dir = trees();
    let base = dir.path();
    let (itkd, apache) = both(base);
    let mut differences = Vec::new();
    for (host, method, path, user, want) in CASES {
        let ours = ask(itkd.port, host, method, path, *user).0;
        let theirs = ask(apache.port, host, method, path, *user).0;
        if ours != theirs || theirs != *want {
            differences.push(format!(
                "{method} {host}{path} {user:?}: itkd {ours}, apache2 {theirs}, expected {want}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "differences:\n{}",
        differences.join("\n")
    );
    // mod_access_compat's refusal is logged as httpd logs it, under Satisfy Any too.
    let ours = std::fs::read_to_string(base.join("itkd.error.log")).unwrap_or_default();
    let theirs = std::fs::read_to_string(base.join("apache.error.log")).unwrap_or_default();
    for path in [
        "c-deny-all/x.html",
        "c-satisfy-any-host-denied-require-granted/x.html",
    ] {
        let line = format!(
            "AH01797: client denied by server configuration: {}",
            base.join("t1/www").join(path).display()
        );
        for (who, log) in [("itkd", &ours), ("apache2", &theirs)] {
            assert!(
                log.lines()
                    .any(|l| l.contains("[access_compat:error]") && l.ends_with(&line)),
                "{who} logs {line:?}:\n{log}"
            );
        }
    }
}

#[test]
fn cgi_pass_auth_gives_scripts_the_credentials_as_httpd() {
    if !root() || !apache_present() || !php_present() {
        return;
    }
    let dir = trees();
    let (itkd, apache) = both(dir.path());
    // (host, path, itkd's answer, apache2's answer)
    let cases: &[(&str, &str, &str, &str)] = &[
        // PHP through Debian's php-cgi (Action, and serve-cgi-bin.conf's ScriptAlias).
        ("t1.test", "/p/info.php", "USER= PW=\n", "USER= PW=\n"),
        ("t2.test", "/info.php", "USER=u PW=p\n", "USER=u PW=p\n"),
        // For an Action script its own URL's sections decide, not the requested file's
        // (a tenant's .htaccess `CGIPassAuth On` does not reach /cgi-bin/php), as httpd.
        ("t1.test", "/pp/info.php", "USER= PW=\n", "USER= PW=\n"),
        // A plain CGI, CGIPassAuth from the tenant's .htaccess.
        (
            "t1.test",
            "/cgi/env.cgi",
            "AUTH= PROXY=\n",
            "AUTH= PROXY=\n",
        ),
        (
            "t1.test",
            "/cgi-pass/env.cgi",
            "AUTH=Basic dTpw PROXY=Basic eHg=\n",
            "AUTH=Basic dTpw PROXY=Basic eHg=\n",
        ),
    ];
    for (host, path, ours, theirs) in cases {
        for (who, port, want) in [("itkd", itkd.port, ours), ("apache2", apache.port, theirs)] {
            let url = format!("http://127.0.0.1:{port}{path}");
            let (code, body) = curl(&[
                "-H",
                &format!("Host: {host}"),
                "-H",
                "Proxy-Authorization: Basic eHg=",
                "-u",
                "u:p",
                &url,
            ]);
            assert_eq!(
                (code.as_str(), String::from_utf8_lossy(&body).as_ref()),
                ("200", *want),
                "{who}: {host}{path}"
            );
        }
    }
}

/// `itkd -t` reads Debian's dokuwiki package configuration (Order/Allow in a
/// `<Directory>`), `serve-cgi-bin.conf` and `cgid.conf` (ScriptSock), as `apache2 -t` does,
/// and warns about none of the modules it provides.
#[test]
fn itkd_t_accepts_debians_dokuwiki_and_cgi_configuration() {
    let dokuwiki = Path::new("/etc/apache2/conf-available/dokuwiki.conf");
    if !apache_present()
        || !available(
            dokuwiki.exists(),
            "ITKD_REQUIRE_APACHE",
            "Debian's dokuwiki package is not installed",
        )
    {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    std::fs::copy(dokuwiki, base.join("dokuwiki.conf")).unwrap();
    std::fs::copy(
        "/etc/apache2/conf-available/serve-cgi-bin.conf",
        base.join("serve-cgi-bin.conf"),
    )
    .unwrap();
    std::fs::write(
        base.join("cgid.conf"),
        std::fs::read_to_string("/etc/apache2/mods-available/cgid.conf")
            .unwrap()
            .replace("${APACHE_RUN_DIR}", base.to_str().unwrap()),
    )
    .unwrap();
    let config = format!(
        "\
ServerRoot {base}
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule mpm_itk_module /usr/lib/apache2/modules/mpm_itk.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule access_compat_module /usr/lib/apache2/modules/mod_access_compat.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so
LoadModule cgid_module /usr/lib/apache2/modules/mod_cgid.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
Listen 127.0.0.1:8
User nobody
Group nogroup
ServerName main.test
DocumentRoot {base}
ErrorLog {base}/error.log
PidFile {base}/t.pid
TypesConfig /etc/mime.types
<IfModule mod_cgid.c>
    Include {base}/cgid.conf
</IfModule>
Include {base}/serve-cgi-bin.conf
Include {base}/dokuwiki.conf
<IfDefine !ENABLE_USR_LIB_CGI_BIN>
    BrokenOnPurpose
</IfDefine>
",
        base = base.display()
    );
    let conf = base.join("t.conf");
    std::fs::write(&conf, config).unwrap();
    let ours = Command::new(ITKD)
        .args(["-t", "-f", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(ours.status.success(), "itkd -t: {stderr}");
    assert!(stderr.contains("Syntax OK"), "{stderr}");
    assert!(!stderr.contains("not supported"), "{stderr}");
    let theirs = Command::new("/usr/sbin/apache2")
        .args(["-t", "-f", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "apache2 -t: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
}

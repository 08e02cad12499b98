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
                "ErrorDocument 404 \"t1 has no such page\"\n",
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

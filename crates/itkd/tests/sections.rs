//! Which `<Files>`, `<Directory>` and `<Location>` sections apply to a path, with
//! wildcards: golden cases answered by Debian's apache2 (apr_fnmatch: case-sensitive,
//! `*` and `?` never cross a `/`, `[...]` classes), run side by side with itkd.

mod common;

use common::{apache_present, root, server_dir, tenant, Apache, Server, APACHE_MODULES};

const CONFIG: &str = "
Listen 127.0.0.1:PORT
ServerName main.test
ServerRoot DIR
TypesConfig /etc/mime.types
DocumentRoot DIR/t1
ErrorLog DIR/LOG.error.log
PidFile DIR/LOG.pid
User www-data
Group www-data
<Directory DIR/t1>
    Require all granted
</Directory>
<VirtualHost *:PORT>
    ServerName t.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
</VirtualHost>
<Files \"*.PHP\">
    Header set X-Upper-Php yes
</Files>
<Files \"*.ph[pt]\">
    Header set X-Class yes
</Files>
<Files \"?.txt\">
    Header set X-One-Char yes
</Files>
<Files \"*\">
    Header set X-Any-File yes
</Files>
<Directory DIR/t1/*/www>
    Header set X-Star-Www yes
</Directory>
<Directory DIR/T1>
    Header set X-Upper-Dir yes
</Directory>
<Directory DIR/t1/s?b>
    Header set X-Sub-Q yes
</Directory>
<Location /loc*>
    Header set X-Loc-Star yes
</Location>
<Location /d/*.txt>
    Header set X-Loc-Txt yes
</Location>
<Location /CASE>
    Header set X-Loc-Case yes
</Location>
";

const FILES: &[(&str, &str)] = &[
    ("a.php", "a\n"),
    ("b.PHP", "b\n"),
    ("c.pht", "c\n"),
    ("d.phx", "d\n"),
    ("x.txt", "x\n"),
    ("xy.txt", "xy\n"),
    (".hidden", "h\n"),
    ("one/www/f.txt", "f\n"),
    ("one/two/www/f.txt", "f\n"),
    (".dot/www/f.txt", "f\n"),
    ("sub/f.txt", "f\n"),
    ("loc/f.txt", "f\n"),
    ("locx/f.txt", "f\n"),
    ("d/x.txt", "x\n"),
    ("d/e/x.txt", "x\n"),
    ("case/f.txt", "f\n"),
];

/// The X- headers a response carries, sorted.
fn marks(port: u16, path: &str) -> (u16, Vec<String>) {
    let response = common::raw(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        format!("GET {path} HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, _) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut marks: Vec<String> = head
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
        .filter(|n| n.starts_with("x-"))
        .collect();
    marks.sort();
    (status, marks)
}

#[test]
fn wildcard_sections_apply_as_apr_fnmatch_does_in_httpd() {
    if !root() || !apache_present() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    tenant(base, 1, FILES);
    let config = |log: &str| format!("{APACHE_MODULES}{}", CONFIG.replace("LOG", log));
    let itkd = Server::start(base, &config("itkd"));
    let apache = Apache::start(base, &config("apache"));
    let paths = [
        "/a.php",
        "/b.PHP",
        "/c.pht",
        "/d.phx",
        "/x.txt",
        "/xy.txt",
        "/.hidden",
        "/one/www/f.txt",
        "/one/two/www/f.txt",
        "/.dot/www/f.txt",
        "/sub/f.txt",
        "/loc/f.txt",
        "/locx/f.txt",
        "/loc",
        "/d/x.txt",
        "/d/e/x.txt",
        "/CASE/f.txt",
        "/case/f.txt",
    ];
    let mut differ = Vec::new();
    for path in paths {
        let ours = marks(itkd.port, path);
        let theirs = marks(apache.port, path);
        eprintln!("{path}: apache {theirs:?}");
        if ours != theirs {
            differ.push(format!("{path}: itkd {ours:?}, apache2 {theirs:?}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

//! HTTPS end to end: the real binary as root, certificates made by openssl, real clients
//! (curl, `openssl s_client`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const CONFIG: &str = "\
Listen 127.0.0.1:PORT https
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/default
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
Timeout 3
StartServers 4
MinSpareServers 2
MaxSpareServers 6
MaxRequestWorkers 12
LogFormat \"%h %>s %{SSL_PROTOCOL}x %{SSL_CIPHER}x %U\" tls
CustomLog DIR/access.log tls
<Directory DIR>
    Options FollowSymLinks ExecCGI
    AddHandler cgi-script .cgi
    Require all granted
</Directory>
SSLProtocol all -SSLv3
SSLCipherSuite HIGH:!aNULL
<VirtualHost 127.0.0.1:PORT>
    ServerName default.test
    DocumentRoot DIR/default
    SSLEngine on
    SSLCertificateFile DIR/certs/default.test.pem
    SSLCertificateKeyFile DIR/certs/default.test.key
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName a.test
    ServerAlias *.a.test
    DocumentRoot DIR/t1
    AssignUserID #20001 #21001
    SSLEngine on
    SSLCertificateFile DIR/certs/a.test.pem
    SSLCertificateKeyFile DIR/certs/a.test.key
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName b.test
    DocumentRoot DIR/t2
    AssignUserID #20002 #21002
    SSLEngine on
    SSLCertificateFile DIR/certs/b.test.pem
    SSLCertificateKeyFile DIR/certs/b.test.key
    SSLProtocol -all +TLSv1.3
</VirtualHost>
";

/// A self-signed EC P-256 certificate for `name` (CN and SAN), key 0600 root in a 0700 dir.
fn certificate(dir: &Path, name: &str) {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o700)).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args([
            "-addext",
            &format!("subjectAltName=DNS:{name},DNS:*.{name}"),
        ])
        .arg("-keyout")
        .arg(certs.join(format!("{name}.key")))
        .arg("-out")
        .arg(certs.join(format!("{name}.pem")))
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
}

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    default_site(base, "default site\n");
    for name in ["default.test", "a.test", "b.test"] {
        certificate(base, name);
    }
    let env = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nid -u\nenv | grep -E '^(HTTPS|SSL_PROTOCOL|SSL_CIPHER|SSL_TLS_SNI|REQUEST_SCHEME)=' | sort\n";
    tenant(base, 1, &[("index.html", "site a\n"), ("env.cgi", env)]);
    std::fs::set_permissions(
        base.join("t1/env.cgi"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    tenant(base, 2, &[("index.html", "site b\n"), ("env.cgi", env)]);
    std::fs::set_permissions(
        base.join("t2/env.cgi"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let server = Server::start(base, CONFIG);
    (dir, server)
}

/// curl over TLS to `name` (SNI and Host) at the server: (status, body, certificate CN).
fn fetch(server: &Server, name: &str, path: &str, extra: &[&str]) -> (String, String, String) {
    let url = format!("https://{name}:{}{path}", server.port);
    let resolve = format!("{name}:{}:127.0.0.1", server.port);
    let out = Command::new("curl")
        .args(["-s", "-k", "-m", "10", "-v", "--resolve", &resolve])
        .args(extra)
        .args(["-o", "-", "-w", "\n%{http_code}", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", ""));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let cn = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("*  subject: CN="))
        .unwrap_or("")
        .to_owned();
    (code.to_owned(), body.to_owned(), cn)
}

/// `openssl s_client` with `args`, `input` on stdin; its whole output.
fn s_client(server: &Server, args: &[&str], input: &str) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-ign_eof",
            "-connect",
            &format!("127.0.0.1:{}", server.port),
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn each_vhost_gets_its_certificate_and_its_uid() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    assert_eq!(
        fetch(&server, "a.test", "/", &[]),
        ("200".into(), "site a\n".into(), "a.test".into())
    );
    assert_eq!(
        fetch(&server, "b.test", "/", &[]),
        ("200".into(), "site b\n".into(), "b.test".into())
    );
    assert_eq!(
        fetch(&server, "default.test", "/", &[]),
        ("200".into(), "default site\n".into(), "default.test".into())
    );
    // ServerAlias wildcards choose the certificate too.
    assert_eq!(fetch(&server, "www.a.test", "/", &[]).2, "a.test");
    // An unknown name: the address's default vhost and its certificate.
    assert_eq!(fetch(&server, "nosuch.test", "/", &[]).2, "default.test");
    // The CGI runs as the vhost's uid and sees mod_ssl's variables.
    let (code, body, _) = fetch(&server, "a.test", "/env.cgi", &["--tlsv1.3"]);
    assert_eq!(code, "200", "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "20001");
    assert!(body.contains("HTTPS=on\n"), "{body}");
    assert!(body.contains("REQUEST_SCHEME=https\n"), "{body}");
    assert!(body.contains("SSL_PROTOCOL=TLSv1.3\n"), "{body}");
    assert!(body.contains("SSL_CIPHER=TLS_"), "{body}");
    assert!(body.contains("SSL_TLS_SNI=a.test\n"), "{body}");
    let (code, body, cn) = fetch(&server, "b.test", "/env.cgi", &[]);
    assert_eq!((code.as_str(), cn.as_str()), ("200", "b.test"), "{body}");
    assert!(body.starts_with("20002\n"), "{body}");
    // TLS 1.2: OpenSSL's name of the ECDHE-ECDSA suite, as mod_ssl's SSL_CIPHER.
    let (_, body, _) = fetch(
        &server,
        "a.test",
        "/env.cgi",
        &["--tlsv1.2", "--tls-max", "1.2"],
    );
    assert!(body.contains("SSL_PROTOCOL=TLSv1.2\n"), "{body}");
    assert!(body.contains("SSL_CIPHER=ECDHE-ECDSA-"), "{body}");
    let log = std::fs::read_to_string(server.dir.join("access.log")).unwrap_or_default();
    assert!(log.contains(" 200 TLSv1.3 TLS_"), "{log}");
}

#[test]
fn no_sni_gets_the_default_certificate_and_a_mismatched_host_gets_421() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    // No SNI (an IP address in the URL sends none).
    let out = s_client(
        &server,
        &["-noservername"],
        "GET / HTTP/1.1\r\nHost: default.test\r\nConnection: close\r\n\r\n",
    );
    assert!(
        out.contains("subject=CN = default.test") || out.contains("subject=CN=default.test"),
        "{out}"
    );
    assert!(
        out.contains("HTTP/1.1 200 OK") && out.contains("default site"),
        "{out}"
    );
    // SNI a.test, Host b.test: another certificate.
    let (code, _, cn) = fetch(&server, "a.test", "/", &["-H", "Host: b.test"]);
    assert_eq!((code.as_str(), cn.as_str()), ("421", "a.test"));
    let out = s_client(
        &server,
        &["-noservername"],
        "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    assert!(out.contains("HTTP/1.1 421 Misdirected Request"), "{out}");
    let log = server.error_log();
    assert!(
        log.contains("AH02032: Hostname a.test provided via SNI and hostname b.test provided via HTTP have no compatible SSL setup for policy 'secure'"),
        "{log}"
    );
    assert!(
        log.contains("AH02032: Hostname default.test (default host as no SNI was provided) and hostname a.test provided via HTTP"),
        "{log}"
    );
}

#[test]
fn sessions_resume_across_workers_and_versions_follow_sslprotocol() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    for version in ["-tls1_2", "-tls1_3"] {
        let sess = dir.path().join(format!("sess{version}"));
        let sess = sess.to_str().unwrap();
        let request = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
        let first = s_client(
            &server,
            &["-servername", "a.test", version, "-sess_out", sess],
            request,
        );
        assert!(first.contains("New, TLSv1."), "{version}: {first}");
        // Each connection is a new worker process: resumption needs the shared keys.
        let second = s_client(
            &server,
            &["-servername", "a.test", version, "-sess_in", sess],
            request,
        );
        assert!(second.contains("Reused, TLSv1."), "{version}: {second}");
        assert!(second.contains("site a"), "{second}");
    }
    // b.test allows TLSv1.3 only.
    let out = s_client(&server, &["-servername", "b.test", "-tls1_2"], "");
    assert!(!out.contains("New, TLSv1.2"), "{out}");
    let out = s_client(
        &server,
        &["-servername", "b.test", "-tls1_3"],
        "GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
    );
    assert!(
        out.contains("New, TLSv1.3") && out.contains("site b"),
        "{out}"
    );
}

#[test]
fn plain_http_garbage_and_truncated_hellos_do_not_disturb_the_server() {
    if !root() {
        return;
    }
    let (_dir, server) = setup();
    let plain = raw(server.addr(), b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{plain}");
    assert!(
        plain.contains("You're speaking plain HTTP to an SSL-enabled server port."),
        "{plain}"
    );
    // Garbage, a handshake record of garbage, a truncated ClientHello: closed, no crash.
    let mut noise: Vec<Vec<u8>> = vec![
        (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        vec![0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
        vec![
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ],
    ];
    for bytes in noise.drain(..) {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let _ = s.write_all(&bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(!String::from_utf8_lossy(&out).contains("HTTP/1.1 200"));
    }
    assert_eq!(fetch(&server, "a.test", "/", &[]).0, "200");
    assert_eq!(fetch(&server, "b.test", "/", &[]).0, "200");
}

#[test]
fn bad_certificate_files_are_errors_with_file_and_line() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir(base.join("default")).unwrap();
    certificate(base, "a.test");
    certificate(base, "b.test");
    let conf = base.join("bad.conf");
    std::fs::write(
        &conf,
        format!(
            "Listen 127.0.0.1:{port} https\nServerName x\nDocumentRoot {d}/default\nErrorLog {d}/error.log\nPidFile {d}/p.pid\n<VirtualHost 127.0.0.1:{port}>\nServerName a.test\nSSLEngine on\nSSLCertificateFile {d}/certs/a.test.pem\nSSLCertificateKeyFile {d}/certs/b.test.key\n</VirtualHost>\n<VirtualHost 127.0.0.1:{port}>\nServerName c.test\nSSLEngine on\nSSLCertificateFile {d}/certs/missing.pem\n</VirtualHost>\n",
            port = free_port(),
            d = base.display()
        ),
    )
    .unwrap();
    let out = Command::new(ITKD)
        .args(["-f", conf.to_str().unwrap(), "-D", "FOREGROUND"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let c = conf.display();
    assert!(
        err.contains(&format!("{c}:10: SSLCertificateKeyFile:")) && err.contains("does not match"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{c}:15: SSLCertificateFile: cannot read")),
        "{err}"
    );
}

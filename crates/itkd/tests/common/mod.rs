//! Starting the real itkd as root on a loopback port with a real configuration and real
//! tenant trees (numeric uids without passwd entries; uid and gid differ so a mix-up
//! shows), and stopping it by pid.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ITKD: &str = env!("CARGO_BIN_EXE_itkd");

/// A fresh directory for a server's configuration, logs and tenant trees: mode 0755, so
/// the tenants (other uids) can pass through it to their own 0700 trees.
pub fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `base/default/index.html` holding `index`: the main server's DocumentRoot.
pub fn default_site(base: &Path, index: &str) {
    std::fs::create_dir(base.join("default")).unwrap();
    std::fs::write(base.join("default/index.html"), index).unwrap();
}

/// Whether a test can run: true if `present`; otherwise it is skipped (false), unless
/// the environment variable `required_by` is set, as in CI, where that is a failure.
pub fn available(present: bool, required_by: &str, missing: &str) -> bool {
    assert!(
        present || std::env::var_os(required_by).is_none(),
        "{missing}, and {required_by} is set"
    );
    if !present {
        eprintln!("skipped: {missing}");
    }
    present
}

/// Root is needed to switch credentials; CI runs as root and sets ITKD_REQUIRE_ROOT.
pub fn root() -> bool {
    // SAFETY-free check: /proc/self/status's Uid line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let is_root = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    available(is_root, "ITKD_REQUIRE_ROOT", "this test needs root")
}

/// A free loopback port (bound then released; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tenant: uid 20000+n, gid 21000+n, a 0700 tree with 0600 files.
pub struct Tenant {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub root: PathBuf,
}

pub fn tenant(base: &Path, n: u32, files: &[(&str, &str)]) -> Tenant {
    let name = format!("t{n}");
    let root = base.join(&name);
    std::fs::create_dir_all(&root).unwrap();
    let (uid, gid) = (20000 + n, 21000 + n);
    for (rel, content) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    own_tree(&root, uid, gid);
    Tenant {
        name,
        uid,
        gid,
        root,
    }
}

/// Everything under `root` owned by uid:gid, directories 0700 and files 0600.
pub fn own_tree(root: &Path, uid: u32, gid: u32) {
    for entry in walk(root) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        if meta.file_type().is_symlink() {
            let _ = std::os::unix::fs::lchown(&entry, Some(uid), Some(gid));
            continue;
        }
        chown(&entry, Some(uid), Some(gid)).unwrap();
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
        for e in std::fs::read_dir(root).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

pub fn link(target: &Path, at: &Path) {
    symlink(target, at).unwrap();
}

/// A running itkd; stopped (TERM, then KILL) by pid on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Server {
    /// Writes `config` (with `PORT` and `DIR` substituted) and starts itkd in the
    /// foreground; waits (bounded) until the port answers.
    pub fn start(dir: &Path, config: &str) -> Server {
        Server::start_with_nofile(dir, config, None)
    }

    /// [`Server::start`], under `ulimit -n nofile` when given.
    pub fn start_with_nofile(dir: &Path, config: &str, nofile: Option<u32>) -> Server {
        let prefix = nofile.map(|n| format!("ulimit -n {n}"));
        Server::start_after_sh(dir, config, prefix.as_deref())
    }

    /// [`Server::start`] from `sh -c 'PREFIX && exec itkd …'` when a prefix is given (a
    /// limit, a descriptor left open): sh execs itkd, so the child's pid is itkd's and
    /// stopping by pid still holds.
    pub fn start_after_sh(dir: &Path, config: &str, prefix: Option<&str>) -> Server {
        let port = free_port();
        let text = config
            .replace("PORT", &port.to_string())
            .replace("DIR", dir.to_str().unwrap());
        let conf = dir.join("itkd.conf");
        std::fs::write(&conf, text).unwrap();
        let mut command = match prefix {
            None => Command::new(ITKD),
            Some(prefix) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("{prefix} && exec \"$0\" \"$@\""), ITKD]);
                sh
            }
        };
        let child = command
            .args(["-f", conf.to_str().unwrap(), "-D", "FOREGROUND"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_listening(port);
        Server {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 10 s) until something listens on the loopback `port`, then a moment
/// for itkd's pool children to drop privileges and start accepting.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
}

/// One raw HTTP exchange on a fresh connection: the whole response until close or
/// `timeout`.
pub fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` with `Host: host` and `Connection: close`: (status, body).
pub fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let response = raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    parse(&response)
}

pub fn parse(response: &str) -> (u16, String) {
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// Sends `request` on an open connection and reads one response (5 s read timeout).
pub fn exchange(s: &mut TcpStream, request: &[u8]) -> Option<(u16, String)> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    read_response(s)
}

/// Reads one response (headers + Content-Length body) from a kept-alive connection.
pub fn read_response(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Processes whose ancestry leads to `ancestor`, with their /proc status text.
pub fn descendants(ancestor: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let mut p = pid;
        let mut hit = false;
        for _ in 0..8 {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
                break;
            };
            let ppid: i32 = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if ppid == ancestor {
                hit = true;
                break;
            }
            if ppid <= 1 {
                break;
            }
            p = ppid;
        }
        if hit {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                out.push((pid, status));
            }
        }
    }
    out
}

pub fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `curl -s ARGS`: (HTTP status as curl prints it, body).
pub fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-m", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let mut body = out.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[split + 1..]).into_owned();
    body.truncate(split);
    (code, body)
}

/// Whether Debian's php-cgi is there (`/usr/lib/cgi-bin/php`); CI requires it.
pub fn php_present() -> bool {
    available(
        Path::new("/usr/lib/cgi-bin/php").exists(),
        "ITKD_REQUIRE_APACHE",
        "Debian's php-cgi is not installed (scripts/test installs it)",
    )
}

/// Debian's apache2 + mpm-itk as the reference, run side by side with itkd.
pub fn apache_present() -> bool {
    available(
        Path::new("/usr/sbin/apache2").exists()
            && Path::new("/etc/apache2/mods-available/mpm_itk.load").exists(),
        "ITKD_REQUIRE_APACHE",
        "Debian's apache2 + libapache2-mpm-itk are not installed (scripts/test installs them)",
    )
}

/// The `LoadModule` lines a stand-alone Apache configuration needs for what itkd's tests
/// use (mpm-itk, mime, dir, alias, authz, env, headers, cgi, actions, access_compat).
pub const APACHE_MODULES: &str = "\
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule mpm_itk_module /usr/lib/apache2/modules/mpm_itk.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authn_file_module /usr/lib/apache2/modules/mod_authn_file.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule access_compat_module /usr/lib/apache2/modules/mod_access_compat.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule env_module /usr/lib/apache2/modules/mod_env.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so
LoadModule actions_module /usr/lib/apache2/modules/mod_actions.so
";

/// A running Debian apache2; stopped by pid (TERM, then KILL) on drop.
pub struct Apache {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Apache {
    /// Writes `config` (with `PORT` and `DIR` substituted; it must `Listen
    /// 127.0.0.1:PORT` and load its modules, see [`APACHE_MODULES`]) to `dir/apache.conf`
    /// and starts `apache2 -X`-less in the foreground (`-D FOREGROUND`), with Debian's
    /// envvars sourced and its run, lock and log directories in `dir`.
    pub fn start(dir: &Path, config: &str) -> Apache {
        let port = free_port();
        let text = config
            .replace("PORT", &port.to_string())
            .replace("DIR", dir.to_str().unwrap());
        let conf = dir.join("apache.conf");
        std::fs::write(&conf, text).unwrap();
        Apache::start_file(dir, &conf, dir, port)
    }

    /// Starts apache2 on `conf` with ServerRoot `root`, listening (as the configuration
    /// says) on `port`.
    pub fn start_file(dir: &Path, conf: &Path, root: &Path, port: u16) -> Apache {
        Apache::start_file_with(dir, conf, root, port, &[])
    }

    /// [`Apache::start_file`] with more variables exported after Debian's envvars (a
    /// copy of /etc/apache2 needs APACHE_CONFDIR, a test its own `${PORT}`-like names).
    pub fn start_file_with(
        dir: &Path,
        conf: &Path,
        root: &Path,
        port: u16,
        env: &[(&str, String)],
    ) -> Apache {
        let extra: String = env.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        let script = format!(
            ". /etc/apache2/envvars && export APACHE_RUN_DIR={d} APACHE_LOCK_DIR={d} APACHE_LOG_DIR={d} APACHE_PID_FILE={d}/apache.pid{extra} && exec /usr/sbin/apache2 -d {r} -f {c} -D FOREGROUND",
            d = dir.display(),
            r = root.display(),
            c = conf.display()
        );
        // Its own process group: prefork signals its whole group (killpg) at shutdown,
        // which would otherwise take the test harness with it.
        let child = Command::new("sh")
            .args(["-c", &script])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut apache = Apache {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = apache.child.try_wait() {
                let mut err = String::new();
                if let Some(e) = apache.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                // After start-up apache2 writes to its ErrorLog: show any in `dir`.
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    for log in [entry.path(), entry.path().join("error.log")] {
                        if log.ends_with("error.log") {
                            err.push_str(&std::fs::read_to_string(&log).unwrap_or_default());
                        }
                    }
                }
                panic!("apache2 exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "apache2 did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        apache
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunked body's data (hex digits' case differs between servers); others as they are.
pub fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if n == 0 {
            return out;
        }
        let Some(data) = after.get(..n) else {
            return body.to_owned();
        };
        out.push_str(data);
        rest = after.get(n + 2..).unwrap_or("");
    }
}

/// The configuration of the serve, identity, keep-alive and lifecycle tests: the main
/// server, a default vhost and three tenants (t1 with a per-Directory override, t2 with an
/// Alias into t1 and MaxClientsVHost 2, t3 with ErrorDocuments).
pub const SERVE_CONFIG: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/default
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
Timeout 10
KeepAliveTimeout 2
MaxKeepAliveRequests 3
StartServers 5
MinSpareServers 3
MaxSpareServers 8
MaxRequestWorkers 16
<Directory DIR>
    Options FollowSymLinks
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:PORT>
    ServerName default.test
    DocumentRoot DIR/default
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t1.test
    DocumentRoot DIR/t1
    ErrorLog DIR/t1.error.log
    LogLevel info
    LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"\" combined
    CustomLog DIR/t1.access.log combined
    AssignUserID #20001 #21001
    <Directory DIR/t1/ovr>
        AssignUserID #20004 #21004
    </Directory>
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t2.test
    DocumentRoot DIR/t2
    Alias /steal DIR/t1
    AssignUserID #20002 #21002
    MaxClientsVHost 2
    NiceValue 7
</VirtualHost>
<VirtualHost 127.0.0.1:PORT>
    ServerName t3.test
    DocumentRoot DIR/t3
    AssignUserID #20003 #21003
    ErrorDocument 404 /missing.html
    <Location /private>
        Require all denied
        ErrorDocument 403 \"Go away, please\"
    </Location>
</VirtualHost>
";

/// The trees of [`SERVE_CONFIG`] and the server started on them.
pub fn serve_setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    default_site(base, "default site\n");
    tenant(
        base,
        1,
        &[("index.html", "t1 index\n"), ("secret.txt", "t1 secret\n")],
    );
    // The per-Directory override: a subtree only uid 20004 can read.
    let ovr = base.join("t1/ovr");
    std::fs::create_dir_all(&ovr).unwrap();
    std::fs::write(ovr.join("o.txt"), "override\n").unwrap();
    own_tree(&ovr, 20004, 21004);
    std::fs::set_permissions(base.join("t1"), std::fs::Permissions::from_mode(0o711)).unwrap();
    tenant(base, 2, &[("f.txt", "t2 file\n")]);
    std::fs::write(base.join("t2/big.bin"), serve_big_file()).unwrap();
    link(&base.join("t1/secret.txt"), &base.join("t2/link.txt"));
    own_tree(&base.join("t2"), 20002, 21002);
    tenant(
        base,
        3,
        &[
            ("f.txt", "t3 file\n"),
            ("missing.html", "t3's own 404 page\n"),
            ("private/p.txt", "p\n"),
        ],
    );
    let server = Server::start(base, SERVE_CONFIG);
    (dir, server)
}

/// 600 KiB of varied bytes (t2/big.bin of [`serve_setup`]).
pub fn serve_big_file() -> Vec<u8> {
    (0..600 * 1024u32)
        .map(|i| (i.wrapping_mul(7) % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

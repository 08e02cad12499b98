//! The isolation matrix (issue 8 item 6), as root: three tenants, and for every ordered
//! pair (A, B) A's CGI, PHP, `.htaccess`, symlinks and `Alias` tricks try to read, write,
//! list, signal and ptrace B's files and processes. Every attempt across tenants fails
//! with the kernel's own answer, and nothing of B's reaches a response or a log of A.
//!
//! The diagonal (A, A) runs the same attempts against A itself as the control: there they
//! succeed, so a failure off the diagonal is the isolation and not a broken attempt.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const TENANTS: [u32; 3] = [1, 2, 3];

const CONFIG_HEAD: &str = "\
Listen 127.0.0.1:PORT
User nobody
Group nogroup
ServerName main.test
DocumentRoot DIR/www
ErrorLog DIR/error.log
PidFile DIR/itkd.pid
Timeout 10
StartServers 4
MinSpareServers 2
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
Action application/x-httpd-php /cgi-bin/php
AddHandler application/x-httpd-php .php
<Directory /usr/lib/cgi-bin>
    Require all granted
</Directory>
<Directory DIR>
    Require all granted
    AllowOverride All
    Options +ExecCGI
    AddHandler cgi-script .cgi
</Directory>
";

/// One vhost per tenant, with its own logs in a root-only directory, and an `Alias` to
/// every tenant's document root (its own included: the control). The configuration is
/// root's; the requests it maps still run as the vhost's tenant.
fn vhost(n: u32) -> String {
    let aliases: String = TENANTS
        .iter()
        .map(|m| format!("    Alias /steal-t{m}/ DIR/t{m}/www/\n"))
        .collect();
    format!(
        "<VirtualHost 127.0.0.1:PORT>
    ServerName t{n}.test
    DocumentRoot DIR/t{n}/www
    AssignUserID #{} #{}
    ErrorLog DIR/logs/t{n}.error.log
    CustomLog DIR/logs/t{n}.access.log \"%h \\\"%r\\\" %>s %b\"
{aliases}</VirtualHost>
",
        20000 + n,
        21000 + n
    )
}

/// What only tenant `n` may see: its file's content, a private file's content and name.
fn secret(n: u32) -> String {
    format!("SECRET-of-t{n}-7f3a")
}
fn private(n: u32) -> String {
    format!("PRIVATE-of-t{n}-c91e")
}
fn private_name(n: u32) -> String {
    format!("PRIVNAME-t{n}.txt")
}

/// Tenant SELF's CGI: every attempt against tenant `$QUERY_STRING`, one line each,
/// `name: ok output` or `name: denied error`. SELF and DIR are substituted.
const ATTACK: &str = r#"#!/bin/sh
printf 'Content-Type: text/plain\n\n'
t=$QUERY_STRING
T=DIR/t$t
try() {
    name=$1; shift
    if out=$("$@" 2>&1); then r=ok; else r=denied; fi
    echo "$name: $r $(printf '%s' "$out" | tr '\n' ' ' | head -c 300)"
}
try read cat $T/www/secret.txt
try read-private cat $T/private/inner.txt
try list ls $T/private
try write sh -c "echo pwned > $T/www/pwned.txt"
try write-private sh -c "echo pwned > $T/private/pwned.txt"
try hardlink ln $T/www/secret.txt DIR/tSELF/www/hardlink-t$t
try read-access-log cat DIR/logs/t$t.access.log
try read-error-log cat DIR/logs/t$t.error.log
try worker-environ cat /proc/$PPID/environ
try worker-mem head -c 1 /proc/$PPID/mem
try worker-fds ls /proc/$PPID/fd
cat $T/www/secret.txt $T/private/inner.txt >&2
for p in $(pgrep -u $((20000 + t))); do
    try "kill0 $p" kill -0 $p
    try "environ $p" cat /proc/$p/environ
    try "mem $p" head -c 1 /proc/$p/mem
    try "fds $p" ls /proc/$p/fd
    try "cwd $p" ls /proc/$p/cwd/
    if [ "$t" != SELF ]; then
        try "term $p" kill -TERM $p
        try "ptrace $p" timeout 2 strace -qq -e trace=none -p $p
    fi
done
echo end
"#;

/// Runs while the others attack it: a shell with a `sleep` child, bounded.
const SLOW: &str =
    "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho started\nsleep 6\necho done\n";

/// Tenant SELF's PHP through php-cgi: the same reads and writes with PHP's functions.
const PHP: &str = r#"<?php
$t = intval($_GET['t'] ?? 0);
$d = "DIR/t$t";
function report($name, $ok, $out) {
    $err = error_get_last();
    echo $name, ': ', $ok ? "ok $out" : 'denied ' . ($err['message'] ?? ''), "\n";
    error_clear_last();
}
$r = @file_get_contents("$d/www/secret.txt");
report('read', $r !== false, (string) $r);
$r = @file_get_contents("$d/private/inner.txt");
report('read-private', $r !== false, (string) $r);
$l = @scandir("$d/private");
report('list', $l !== false, $l === false ? '' : implode(',', $l));
$w = @file_put_contents("$d/www/php-pwned.txt", 'pwned');
report('write', $w !== false, '');
$f = @fopen("$d/www/secret.txt", 'r');
report('fopen', $f !== false, $f === false ? '' : fread($f, 100));
echo "end\n";
"#;

fn setup() -> (tempfile::TempDir, Server) {
    let dir = server_dir();
    let base = dir.path();
    let d = base.to_str().unwrap();
    std::fs::create_dir_all(base.join("www")).unwrap();
    // Logs where a careful admin keeps them: a directory only root may enter (Debian's
    // /var/log/apache2 is 0750 root:adm). itkd creates the files 0666 & ~umask, as httpd.
    std::fs::create_dir_all(base.join("logs")).unwrap();
    std::fs::set_permissions(base.join("logs"), std::fs::Permissions::from_mode(0o700)).unwrap();
    for n in TENANTS {
        let attack = ATTACK.replace("DIR", d).replace("SELF", &n.to_string());
        let php = PHP.replace("DIR", d);
        let mut files: Vec<(String, String)> = vec![
            ("www/secret.txt".into(), format!("{}\n", secret(n))),
            ("private/inner.txt".into(), format!("{}\n", private(n))),
            (format!("private/{}", private_name(n)), "x\n".into()),
            ("www/attack.cgi".into(), attack),
            ("www/slow.cgi".into(), SLOW.into()),
            ("www/steal.php".into(), php),
            (
                "www/follow/.htaccess".into(),
                "Options +FollowSymLinks\n".into(),
            ),
            (
                "www/lists/.htaccess".into(),
                "Options +Indexes +FollowSymLinks\n".into(),
            ),
        ];
        for m in TENANTS {
            files.push((format!("www/hta-t{m}/x.txt"), "x\n".into()));
            files.push((
                format!("www/errdoc-t{m}/.htaccess"),
                format!("ErrorDocument 404 /steal-t{m}/secret.txt\n"),
            ));
            files.push((
                format!("www/errlink-t{m}/.htaccess"),
                format!("ErrorDocument 404 /follow/t{m}.txt\n"),
            ));
            files.push((
                format!("www/auth-t{m}/.htaccess"),
                format!(
                    "AuthType Basic\nAuthName x\nAuthUserFile {d}/t{m}/www/secret.txt\nRequire valid-user\n"
                ),
            ));
            files.push((format!("www/auth-t{m}/x.txt"), "x\n".into()));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let t = tenant(base, n, &refs);
        for m in TENANTS {
            let other = base.join(format!("t{m}"));
            let www = t.root.join("www");
            // A .htaccess that is a symlink to the other tenant's file.
            link(
                &other.join("www/secret.txt"),
                &www.join(format!("hta-t{m}/.htaccess")),
            );
            // A plain symlink under Options +FollowSymLinks.
            link(
                &other.join("www/secret.txt"),
                &www.join(format!("follow/t{m}.txt")),
            );
            // A symlink to the other tenant's private directory under Options +Indexes.
            link(&other.join("private"), &www.join(format!("lists/t{m}")));
        }
        own_tree(&t.root, t.uid, t.gid);
        for script in ["attack.cgi", "slow.cgi"] {
            std::fs::set_permissions(
                t.root.join("www").join(script),
                std::fs::Permissions::from_mode(0o700),
            )
            .unwrap();
        }
    }
    let mut config = CONFIG_HEAD.to_owned();
    for n in TENANTS {
        config.push_str(&vhost(n));
    }
    let server = Server::start(base, &config);
    (dir, server)
}

fn fetch(addr: SocketAddr, n: u32, path: &str) -> (String, String) {
    let url = format!("http://{addr}{path}");
    let (code, body) = curl(&["-H", &format!("Host: t{n}.test"), &url]);
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// The attempt lines of a script's output: name → (succeeded, output).
fn attempts(body: &str) -> BTreeMap<String, (bool, String)> {
    body.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(": ")?;
            let (verdict, out) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((name.to_owned(), (verdict == "ok", out.to_owned())))
        })
        .collect()
}

fn processes_of(uid: u32) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-u", &uid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .count()
}

/// Every text of tenant `n` that must stay its own.
fn leaks_of(n: u32) -> [String; 3] {
    [secret(n), private(n), private_name(n)]
}

fn assert_no_leak(text: &str, victim: u32, what: &str) {
    for s in leaks_of(victim) {
        assert!(
            !text.contains(&s),
            "t{victim}'s {s:?} reached {what}:\n{text}"
        );
    }
}

#[test]
fn no_tenant_reaches_another_through_scripts_htaccess_symlinks_or_aliases() {
    if !root() {
        return;
    }
    let (dir, server) = setup();
    let base = dir.path();
    let a = server.addr();
    let start = Instant::now();

    // Every tenant has a slow CGI running (its worker, a shell and a sleep) while the
    // others attack it.
    let slow: Vec<_> = TENANTS
        .iter()
        .map(|&n| std::thread::spawn(move || fetch(a, n, "/slow.cgi")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TENANTS.iter().any(|n| processes_of(20000 + n) < 3) {
        assert!(Instant::now() < deadline, "the slow scripts did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // CGI, across tenants: each attempt fails with the kernel's answer.
    let mut matrix = Vec::new();
    for attacker in TENANTS {
        for victim in TENANTS.into_iter().filter(|&v| v != attacker) {
            let (code, body) = fetch(a, attacker, &format!("/attack.cgi?{victim}"));
            assert_eq!(code, "200", "t{attacker} → t{victim}: {body}");
            assert!(body.ends_with("end\n"), "t{attacker} → t{victim}: {body}");
            assert_no_leak(&body, victim, &format!("t{attacker}'s CGI"));
            let tried = attempts(&body);
            for (name, (ok, out)) in &tried {
                assert!(!ok, "t{attacker} → t{victim}: {name} succeeded: {out}");
                let want = match name.split(' ').next().unwrap_or("") {
                    "kill0" | "term" | "ptrace" => "Operation not permitted",
                    _ => "Permission denied",
                };
                // A process may end between pgrep and the attempt: "No such ...".
                assert!(
                    out.contains(want) || out.contains("No such"),
                    "t{attacker} → t{victim}: {name}: {out}"
                );
            }
            // The worker, the shell and its sleep, each tried.
            let signalled = tried
                .iter()
                .filter(|(n, (_, o))| n.starts_with("term ") && o.contains("not permitted"))
                .count();
            assert!(signalled >= 3, "t{attacker} → t{victim}: {body}");
            matrix.push(format!(
                "t{attacker}→t{victim}: {} attempts denied",
                tried.len()
            ));
        }
    }

    // The victims' scripts were neither killed nor stopped.
    for (n, handle) in TENANTS.iter().zip(slow) {
        let (code, body) = handle.join().unwrap();
        assert_eq!(
            (code.as_str(), body.as_str()),
            ("200", "started\ndone\n"),
            "t{n}'s slow script"
        );
    }

    // The control: the same script against its own tenant does read, list and write.
    for n in TENANTS {
        let (code, body) = fetch(a, n, &format!("/attack.cgi?{n}"));
        assert_eq!(code, "200", "t{n} → t{n}: {body}");
        let tried = attempts(&body);
        let ok = |name: &str| tried.get(name).is_some_and(|(ok, _)| *ok);
        for name in [
            "read",
            "read-private",
            "list",
            "write",
            "write-private",
            "hardlink",
        ] {
            assert!(ok(name), "control t{n}: {name}: {body}");
        }
        assert!(tried["read"].1.contains(&secret(n)), "{body}");
        assert!(tried["list"].1.contains(&private_name(n)), "{body}");
        // Its own worker is still out of reach (non-dumpable after the uid change): the
        // keys and configuration of every vhost it inherited stay unreadable.
        for name in ["worker-environ", "worker-mem", "worker-fds"] {
            assert!(
                !ok(name) && tried[name].1.contains("Permission denied"),
                "control t{n}: {name}: {body}"
            );
        }
        assert!(
            tried
                .iter()
                .any(|(k, (ok, _))| k.starts_with("kill0 ") && *ok),
            "control t{n}: its own processes can be signalled: {body}"
        );
        assert!(
            tried
                .iter()
                .any(|(k, (ok, _))| k.starts_with("environ ") && *ok),
            "control t{n}: its own scripts' environment is readable: {body}"
        );
        // /proc/PID/mem of its own shell opens (reading offset 0 then fails): what
        // stops the attempts above is the permission check, not the method.
        assert!(
            tried
                .iter()
                .any(|(k, (_, o))| k.starts_with("mem ") && o.contains("Input/output error")),
            "control t{n}: its own processes' memory can be opened: {body}"
        );
        // Logs are root's: not even the tenant's own are readable to it.
        assert!(!ok("read-access-log") && !ok("read-error-log"), "{body}");
    }

    // PHP through php-cgi, every ordered pair; the diagonal is the control.
    if php_present() {
        for attacker in TENANTS {
            for victim in TENANTS {
                let (code, body) = fetch(a, attacker, &format!("/steal.php?t={victim}"));
                assert_eq!(code, "200", "PHP t{attacker} → t{victim}: {body}");
                assert!(
                    body.ends_with("end\n"),
                    "PHP t{attacker} → t{victim}: {body}"
                );
                let tried = attempts(&body);
                assert_eq!(tried.len(), 5, "{body}");
                for (name, (ok, out)) in &tried {
                    if attacker == victim {
                        assert!(ok, "PHP control t{victim}: {name}: {out}");
                    } else {
                        assert!(
                            !ok && out.contains("Permission denied"),
                            "PHP t{attacker} → t{victim}: {name}: {out}"
                        );
                    }
                }
                if attacker != victim {
                    assert_no_leak(&body, victim, &format!("t{attacker}'s PHP"));
                }
            }
        }
    }

    // .htaccess, symlink, ErrorDocument and Alias tricks, every ordered pair.
    for attacker in TENANTS {
        for victim in TENANTS {
            let own = attacker == victim;
            let pair = format!("t{attacker} → t{victim}");
            let cases: [(&str, String, u16, u16); 8] = [
                // (what, path, status across tenants, status on the diagonal)
                (
                    "symlinked .htaccess",
                    format!("/hta-t{victim}/x.txt"),
                    403,
                    500,
                ),
                ("FollowSymLinks", format!("/follow/t{victim}.txt"), 403, 200),
                (
                    "ErrorDocument via Alias",
                    format!("/errdoc-t{victim}/nosuch"),
                    404,
                    404,
                ),
                (
                    "ErrorDocument via symlink",
                    format!("/errlink-t{victim}/nosuch"),
                    404,
                    404,
                ),
                ("Alias", format!("/steal-t{victim}/secret.txt"), 403, 200),
                (
                    "Alias to a CGI",
                    format!("/steal-t{victim}/attack.cgi?{victim}"),
                    403,
                    200,
                ),
                (
                    "Indexes on a symlink",
                    format!("/lists/t{victim}/"),
                    403,
                    200,
                ),
                ("AuthUserFile", format!("/auth-t{victim}/x.txt"), 500, 401),
            ];
            for (what, path, across, diagonal) in cases {
                // Credentials, so that the password file is opened at all.
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: t{attacker}.test\r\nAuthorization: Basic dTpw\r\nConnection: close\r\n\r\n"
                );
                let (status, body) = parse(&raw(a, request.as_bytes()));
                let want = if own { diagonal } else { across };
                assert_eq!(status, want, "{pair}: {what} {path}: {body}");
                if !own {
                    assert_no_leak(&body, victim, &format!("{pair}: {what}"));
                }
            }
            if own {
                // The control: the same tricks do reach the tenant's own data.
                let (_, body) = get(
                    a,
                    &format!("t{attacker}.test"),
                    &format!("/errdoc-t{victim}/nosuch"),
                );
                assert!(body.contains(&secret(victim)), "control {pair}: {body}");
                let (_, body) = get(
                    a,
                    &format!("t{attacker}.test"),
                    &format!("/errlink-t{victim}/nosuch"),
                );
                assert!(body.contains(&secret(victim)), "control {pair}: {body}");
                let (_, body) = get(
                    a,
                    &format!("t{attacker}.test"),
                    &format!("/lists/t{victim}/"),
                );
                assert!(
                    body.contains(&private_name(victim)),
                    "control {pair}: {body}"
                );
            }
        }
    }

    // Nothing was written into another tenant's tree.
    for victim in TENANTS {
        let t = base.join(format!("t{victim}"));
        for f in ["www/pwned.txt", "private/pwned.txt", "www/php-pwned.txt"] {
            // The control runs wrote these as the tenant itself: they must be its own.
            if let Ok(meta) = std::fs::metadata(t.join(f)) {
                assert_eq!(
                    std::os::unix::fs::MetadataExt::uid(&meta),
                    20000 + victim,
                    "{f} in t{victim}'s tree was written by another uid"
                );
            }
        }
        for attacker in TENANTS.into_iter().filter(|&x| x != victim) {
            assert!(
                !base
                    .join(format!("t{attacker}/www/hardlink-t{victim}"))
                    .exists(),
                "t{attacker} hard-linked t{victim}'s file"
            );
        }
    }

    // No log of A holds anything of B; the scripts' stderr did reach A's error log (so
    // the check looks at the right place).
    for attacker in TENANTS {
        let error = read_root(base, &format!("logs/t{attacker}.error.log"));
        let access = read_root(base, &format!("logs/t{attacker}.access.log"));
        assert!(
            error.contains("Permission denied"),
            "t{attacker}'s error log has its scripts' stderr: {error}"
        );
        assert!(access.contains("/attack.cgi"), "{access}");
        for victim in TENANTS.into_iter().filter(|&v| v != attacker) {
            assert_no_leak(&error, victim, &format!("t{attacker}'s error log"));
            assert_no_leak(&access, victim, &format!("t{attacker}'s access log"));
        }
    }
    let main = server.error_log();
    for victim in TENANTS {
        assert_no_leak(&main, victim, "the main error log");
    }
    eprintln!("{}\n(in {:?})", matrix.join("\n"), start.elapsed());
}

fn read_root(base: &Path, rel: &str) -> String {
    std::fs::read_to_string(base.join(rel)).unwrap_or_default()
}

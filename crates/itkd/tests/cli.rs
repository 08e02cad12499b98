//! The command line on real files: `-t` and `-S` outcomes, and malformed input that must
//! give errors with file:line and exit 1, never a panic.

use std::path::Path;
use std::process::{Command, Output};

const ITKD: &str = env!("CARGO_BIN_EXE_itkd");

fn run(args: &[&str]) -> Output {
    Command::new(ITKD).args(args).output().expect("itkd runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

const BASE: &str = "User #20000\nGroup #21000\nDocumentRoot /tmp\nServerName t.test\n";

#[test]
fn syntax_ok_and_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "ok.conf", format!("{BASE}<VirtualHost *:80>\nServerName a.test\nAssignUserID #20001 #21001\n</VirtualHost>\n").as_bytes());
    let out = run(&["-t", "-f", &conf]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim_end(), "Syntax OK");
}

#[test]
fn malformed_input_gives_file_line_errors_and_exit_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut long_line = BASE.as_bytes().to_vec();
    long_line.extend(std::iter::repeat_n(b'x', 1 << 20));
    long_line.push(b'\n');
    let mut garbage = BASE.as_bytes().to_vec();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    write(d, "loop-b.conf", b"Include loop-a.conf\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unbalanced.conf",
            format!("{BASE}<VirtualHost *:80>\n<Directory /x>\n</VirtualHost>\n").into_bytes(),
            "unbalanced.conf:7: Expected </Directory> but saw </VirtualHost>",
        ),
        (
            "unclosed.conf",
            format!("{BASE}<Directory /x>\n").into_bytes(),
            "unclosed.conf:5: Directory: <Directory> was not closed",
        ),
        (
            "quote.conf",
            format!("{BASE}ServerAdmin \"abc\n").into_bytes(),
            "quote.conf:5: ServerAdmin: unterminated \" quote",
        ),
        (
            "loop-a.conf",
            format!("{BASE}Include loop-b.conf\n").into_bytes(),
            "loop-b.conf:1: Include: Include loop: ",
        ),
        ("long.conf", long_line, "long.conf:5: xxxxxxxx"),
        ("garbage.conf", garbage, "garbage.conf:"),
        (
            "user.conf",
            format!("{BASE}AssignUserID nosuchuser-itk nosuchgroup-itk\n").into_bytes(),
            "user.conf:5: AssignUserID: bad user name nosuchuser-itk",
        ),
        (
            "root.conf",
            format!("{BASE}<VirtualHost *:80>\nAssignUserID root root\n</VirtualHost>\n")
                .into_bytes(),
            "root.conf:6: AssignUserID: uid 0 is outside LimitUIDRange",
        ),
    ];
    for (name, bytes, want) in cases {
        let conf = write(d, name, &bytes);
        let out = run(&["-t", "-f", &conf]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            err.contains(want),
            "{name}: wanted {want:?} in\n{}",
            &err[..err.len().min(2000)]
        );
        assert!(
            err.trim_end().ends_with("in the configuration"),
            "{name}: {err}"
        );
    }
}

#[test]
fn dash_d_defines_and_dash_d_server_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    write(
        dir.path(),
        "conf.d/extra.conf",
        b"<IfDefine !EXTRA>\nFrob\n</IfDefine>\n",
    );
    write(
        dir.path(),
        "main.conf",
        format!("{BASE}Include conf.d/*.conf\n").as_bytes(),
    );
    let root = dir.path().to_str().unwrap();
    let out = run(&["-t", "-d", root, "-f", "main.conf", "-D", "EXTRA"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&["-t", "-d", root, "-f", "main.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("extra.conf:2: Frob: Invalid command 'Frob'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dash_s_shows_vhosts_and_identities() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "s.conf",
        format!("{BASE}Define SITE_ROOT /srv\n<VirtualHost 127.0.0.1:8080>\nServerName a.test\nServerAlias *.a.test\nAssignUserID #20001 #21001\n</VirtualHost>\n<VirtualHost 127.0.0.1:8080>\nServerName b.test\nNiceValue 5\n</VirtualHost>\n").as_bytes(),
    );
    let out = run(&["-S", "-f", &conf]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "VirtualHost configuration:\n127.0.0.1:8080         is a NameVirtualHost\n         default server a.test ({conf}:6)\n         port 8080 namevhost a.test ({conf}:6)\n                 wild alias *.a.test\n         port 8080 namevhost b.test ({conf}:11)\n"
    );
    assert!(stdout.starts_with(&want), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "         a.test ({conf}:6) uid=20001 gid=21001 from AssignUserID at {conf}:9\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "         b.test ({conf}:11) uid=20000 gid=21000 from User/Group, NiceValue 5\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("Define: DUMP_VHOSTS\nDefine: DUMP_RUN_CFG\nDefine: SITE_ROOT=/srv\n"),
        "{stdout}"
    );
}

#[test]
fn dash_s_lists_the_main_servers_identity() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "m.conf", BASE.as_bytes());
    let out = run(&["-S", "-f", &conf]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("         t.test (main server) uid=20000 gid=21000 from User/Group\n"),
        "{stdout}"
    );
}

#[test]
fn starting_with_a_broken_configuration_fails_before_serving() {
    let out = run(&["-f", "/nonexistent.conf", "-D", "FOREGROUND"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent.conf: Could not open configuration file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_k_commands_are_refused() {
    let out = run(&["-k", "frob", "-f", "/nonexistent.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("-k frob: use start, stop, restart, graceful or graceful-stop"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_example_configuration_checks_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let out = Command::new(ITKD)
        .args(["-t", "-f", "examples/itkd.conf"])
        .current_dir(&root)
        .env("PWD", &root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim_end(), "Syntax OK", "no warnings either");
}

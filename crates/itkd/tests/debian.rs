//! End to end against the reference: Debian's own apache2 + mpm-itk configuration, read by
//! `apache2ctl -S` and by `itkd -S`, must give the same virtual host table.
//!
//! Needs Debian's `apache2` and `libapache2-mpm-itk` (scripts/test installs them and sets
//! ITKD_REQUIRE_APACHE=1, so CI fails rather than skips when they are missing).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{apache_present, ITKD};

/// Runs a command with Debian's envvars sourced, as apache2ctl does.
fn with_envvars(program: &str, args: &[&str], confdir: &Path) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(". /etc/apache2/envvars && exec \"$@\"")
        .arg("--")
        .arg(program)
        .args(args)
        .env("APACHE_CONFDIR", confdir)
        .output()
        .expect("bash runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of /etc/apache2 with the test's tenant sites enabled beside 000-default.
fn debian_copy_with_sites() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("apache2");
    let status = Command::new("cp")
        .args(["-a", "/etc/apache2"])
        .arg(&conf)
        .status()
        .unwrap();
    assert!(status.success());
    let sites = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/debian/itk-sites.conf");
    std::fs::copy(sites, conf.join("sites-enabled/itk-sites.conf")).unwrap();
    (dir, conf)
}

#[test]
fn itkd_s_lists_the_same_vhosts_as_apache2ctl_s() {
    if !apache_present() {
        return;
    }
    let (_keep, conf) = debian_copy_with_sites();
    let conf_file = conf.join("apache2.conf");
    let apache = with_envvars("/usr/sbin/apache2ctl", &["-S"], &conf);
    assert!(
        apache.status.success(),
        "apache2ctl -S failed: {}",
        text(&apache.stderr)
    );
    let itkd = with_envvars(ITKD, &["-S", "-f", conf_file.to_str().unwrap()], &conf);
    assert!(
        itkd.status.success(),
        "itkd -S failed: {}",
        text(&itkd.stderr)
    );

    // itkd has no accept mutex, so no Mutex lines; everything else is line for line.
    let apache_lines: Vec<String> = text(&apache.stdout)
        .lines()
        .filter(|l| !l.starts_with("Mutex "))
        .map(str::to_owned)
        .collect();
    let itkd_out = text(&itkd.stdout);
    let (table, identities) = itkd_out
        .split_once("Identities")
        .expect("itkd -S prints identities");
    let itkd_lines: Vec<String> = table.lines().map(str::to_owned).collect();
    assert_eq!(itkd_lines, apache_lines);
    assert!(
        apache_lines.iter().any(|l| l.contains("namevhost a.test")),
        "the fixture's vhosts are listed"
    );

    // What apache2ctl -S does not show: each vhost's identity.
    let line = |name: &str| {
        identities
            .lines()
            .find(|l| l.contains(&format!(" {name} (")))
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        line("a.test").contains("uid=20001 gid=21001 from AssignUserID"),
        "{identities}"
    );
    assert!(line("a.test").contains("MaxClientsVHost 5"), "{identities}");
    assert!(
        line("b.test").contains("uid=20002 gid=21002"),
        "{identities}"
    );
    assert!(
        line("v6.test").contains("uid=33(www-data) gid=33(www-data) from User/Group"),
        "{identities}"
    );
}

#[test]
fn itkd_t_accepts_debians_stock_configuration_with_warnings_for_skipped_modules() {
    if !apache_present() {
        return;
    }
    let conf = Path::new("/etc/apache2");
    let out = with_envvars(ITKD, &["-t", "-f", "/etc/apache2/apache2.conf"], conf);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().last(), Some("Syntax OK"), "{stderr}");
    // Every enabled module itkd does not provide is named in a warning with its file:line.
    for load in std::fs::read_dir("/etc/apache2/mods-enabled").unwrap() {
        let path = load.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".load") {
            continue;
        }
        // The module's identifier from its LoadModule line (php8.2.load loads php_module).
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(module) = text.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("LoadModule"))
                .then(|| words.next())
                .flatten()
        }) else {
            continue;
        };
        let module = module.strip_suffix("_module").unwrap_or(module);
        let warned = stderr.lines().any(|l| {
            l.starts_with(&format!("{}:", path.display()))
                && l.contains(&format!("{module}_module is not"))
        });
        assert_eq!(
            warned,
            !itkd_config::modules::provides(module),
            "module {module}: {stderr}"
        );
    }
    // And the reference agrees the configuration is fine.
    let apache = with_envvars("/usr/sbin/apache2ctl", &["-t"], conf);
    assert!(apache.status.success(), "{}", text(&apache.stderr));
}

#[test]
fn without_envvars_debians_configuration_names_the_cause() {
    if !apache_present() {
        return;
    }
    let out = Command::new(ITKD)
        .args(["-t", "-f", "/etc/apache2/apache2.conf"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/etc/apache2/apache2.conf:") && stderr.contains("User: bad user name ${APACHE_RUN_USER} (hint: Debian's configuration needs /etc/apache2/envvars sourced"),
        "{stderr}"
    );
}

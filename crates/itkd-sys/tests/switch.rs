//! The credential switch, checked by the kernel: a fresh process (the probe binary)
//! switches and reports /proc/self/status. Needs root; scripts/test runs as root and sets
//! ITKD_REQUIRE_ROOT=1 so that CI fails instead of skipping.

mod common;

use std::process::Command;

use common::root;

const PROBE: &str = env!("CARGO_BIN_EXE_itkd-switch-probe");

fn probe(args: &[&str]) -> Vec<(String, String)> {
    let out = Command::new(PROBE).args(args).output().expect("probe runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| {
            l.split_once(':').map(|(k, v)| {
                (
                    k.to_owned(),
                    v.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("<missing>", |(_, v)| v.as_str())
}

#[test]
fn a_numeric_tenant_gets_exactly_its_ids_no_capabilities_and_its_nice() {
    if !root() {
        return;
    }
    let f = probe(&["20001", "21001", "21001", "5"]);
    assert_eq!(field(&f, "Uid"), "20001 20001 20001 20001");
    assert_eq!(field(&f, "Gid"), "21001 21001 21001 21001");
    assert_eq!(field(&f, "Groups"), "21001");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(field(&f, cap), "0000000000000000", "{cap}");
    }
    assert_eq!(field(&f, "Nice"), "5");
    assert_eq!(field(&f, "Regain"), "EPERM: Operation not permitted");
}

#[test]
fn negative_nice_works_because_it_comes_before_the_capabilities_go() {
    if !root() {
        return;
    }
    let f = probe(&["20002", "21002", "21002,21099", "-5"]);
    assert_eq!(field(&f, "Nice"), "-5");
    assert_eq!(field(&f, "Groups"), "21002 21099");
}

#[test]
fn with_the_bounding_set_dropped_first_nothing_is_left_at_all() {
    if !root() {
        return;
    }
    let f = probe(&["--drop-bounding", "20003", "21003", "21003"]);
    assert_eq!(field(&f, "CapBnd"), "0000000000000000");
    assert_eq!(field(&f, "CapEff"), "0000000000000000");
    assert_eq!(field(&f, "Uid"), "20003 20003 20003 20003");
}

#[test]
fn the_switched_process_is_not_dumpable_even_with_suid_dumpable_1() {
    if !root() {
        return;
    }
    // At fs.suid_dumpable 1 the kernel leaves a switched process dumpable (ptrace-able by
    // its new uid); itkd clears the flag itself. The setting is restored on the way out.
    const KNOB: &str = "/proc/sys/fs/suid_dumpable";
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write(KNOB, &self.0);
        }
    }
    let Ok(before) = std::fs::read_to_string(KNOB) else {
        eprintln!("skipped: no {KNOB}");
        return;
    };
    let _restore = Restore(before);
    if std::fs::write(KNOB, "1").is_err() {
        eprintln!("skipped: {KNOB} is read-only here");
        return;
    }
    let f = probe(&["20005", "21005", "21005"]);
    assert_eq!(field(&f, "Dumpable"), "false");
}

//! `itkd_sys::seccomp::confine_id_changes`, checked by the kernel: the seccomp probe
//! installs the filter as root (CAP_SYS_ADMIN, no NO_NEW_PRIVS) and tries id changes.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{probe, root, run};

const PROBE: &str = env!("CARGO_BIN_EXE_itkd-seccomp-probe");
const RANGES: [&str; 4] = ["1000", "60000", "1000", "60000"];

#[test]
fn ids_outside_the_ranges_fail_with_eperm_even_for_root() {
    if !root() {
        return;
    }
    let f = probe(PROBE, &RANGES);
    assert_eq!(f.get("Seccomp"), "2");
    assert_eq!(f.get("NoNewPrivs"), "0");
    for (call, want) in [
        ("setresuid(0,0,0)", "EPERM"),
        ("setresuid(-1,-1,-1)", "ok"),
        ("setresuid(-1,70000,-1)", "EPERM"),
        ("setreuid(-1,0)", "EPERM"),
        ("setuid(0)", "EPERM"),
        ("setfsuid(0)", "EPERM"),
        ("setfsuid(-1)", "ok"),
        ("setgid(0)", "EPERM"),
        ("setresgid(70000,70000,70000)", "EPERM"),
        ("setresgid(-1,999,-1)", "EPERM"),
        ("setregid(0,-1)", "EPERM"),
        ("setfsgid(0)", "EPERM"),
        ("setgroups(0)", "EPERM"),
        ("setgroups([21001])", "ok"),
        ("setresgid(21001,21001,21001)", "ok"),
        ("setresuid(20001,20001,20001)", "ok"),
    ] {
        assert_eq!(f.get(call), want, "{call}");
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(f.get("x32 setresuid(0,0,0)"), "EPERM");
    }
}

#[test]
fn the_filter_is_inherited_by_an_executed_child_without_no_new_privs() {
    if !root() {
        return;
    }
    let f = probe(PROBE, &RANGES);
    assert_eq!(f.get("ChildSeccomp"), "2");
    assert_eq!(f.get("ChildNoNewPrivs"), "0");
    assert_eq!(f.get("ChildUid"), "20001 20001 20001 20001");
    assert_eq!(f.get("ChildGroups"), "21001");
}

#[test]
fn without_the_filter_root_may_do_all_of_it() {
    // The control: the EPERMs above come from the filter, not from the kernel.
    if !root() {
        return;
    }
    let f = probe(PROBE, &["--no-filter", "1000", "60000", "1000", "60000"]);
    assert_eq!(f.get("Seccomp"), "0");
    for call in ["setresuid(0,0,0)", "setgid(0)", "setgroups(0)", "setuid(0)"] {
        assert_eq!(f.get(call), "ok", "{call}");
    }
    if cfg!(target_arch = "x86_64") {
        // This kernel has no x32 ABI, or it would be "ok".
        assert!(
            ["ENOSYS", "ok"].contains(&f.get("x32 setresuid(0,0,0)")),
            "{}",
            f.get("x32 setresuid(0,0,0)")
        );
    }
}

#[test]
fn an_empty_range_is_refused_before_anything_is_installed() {
    let out = run(PROBE, &["60000", "1000", "1000", "60000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("empty id range 60000..=1000"), "{stdout}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_32_bit_setuid32_through_int_0x80_is_killed() {
    if !root() {
        return;
    }
    let control = run(PROBE, &["i386-setuid0", "--no-filter"]);
    let control = String::from_utf8_lossy(&control.stdout).into_owned();
    if control.contains("Ret:\t-38") {
        eprintln!("skipped: this kernel has no ia32 emulation");
        return;
    }
    assert!(
        control.contains("Ret:\t0"),
        "setuid32(0) as root: {control}"
    );
    let out = run(PROBE, &["i386-setuid0"]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSYS),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

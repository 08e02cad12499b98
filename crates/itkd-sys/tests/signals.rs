//! `itkd_sys::signals` with real signals, in the signal probe (a fresh process, so the
//! test harness's own dispositions are untouched).

mod common;

use common::probe;

const PROBE: &str = env!("CARGO_BIN_EXE_itkd-signal-probe");

fn mask(hex: &str) -> u64 {
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("not a mask: {hex}"))
}

fn bit(signal: libc::c_int) -> u64 {
    1 << (signal - 1)
}

#[test]
fn a_raised_signal_is_taken_exactly_once() {
    let f = probe(PROBE, &[]);
    assert_eq!(f.get("Usr1First"), "true");
    assert_eq!(f.get("Usr1Second"), "false");
    assert_eq!(f.get("TermUnraised"), "false");
}

#[test]
fn the_master_s_signals_are_caught() {
    let f = probe(PROBE, &[]);
    let caught = mask(f.get("InstalledSigCgt"));
    for s in [
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGHUP,
        libc::SIGWINCH,
        libc::SIGCHLD,
    ] {
        assert_ne!(caught & bit(s), 0, "signal {s} in {caught:x}");
    }
}

#[test]
fn a_child_s_end_sets_sigchld() {
    let f = probe(PROBE, &[]);
    assert_eq!(f.get("ChildOk"), "true");
    assert_eq!(f.get("Chld"), "true");
}

#[test]
fn a_blocking_call_is_interrupted_so_the_loop_sees_the_flag() {
    let f = probe(PROBE, &[]);
    assert_eq!(f.get("BlockedRead"), "Err(EINTR)");
    assert_eq!(f.get("Alrm"), "true");
}

#[test]
fn sigpipe_is_ignored() {
    let f = probe(PROBE, &[]);
    assert_ne!(mask(f.get("IgnoredSigIgn")) & bit(libc::SIGPIPE), 0);
}

#[test]
fn reset_restores_defaults_unblocks_and_forgets_flags() {
    let f = probe(PROBE, &[]);
    let before = mask(f.get("BeforeSigBlk"));
    assert_ne!(before & bit(libc::SIGWINCH), 0);
    assert_eq!(f.get("HupAfterReset"), "false");
    let caught = mask(f.get("ResetSigCgt"));
    for s in [libc::SIGHUP, libc::SIGWINCH, libc::SIGCHLD] {
        assert_eq!(caught & bit(s), 0, "signal {s} still caught");
    }
    assert_ne!(caught & bit(libc::SIGTERM), 0, "SIGTERM was not reset");
    let blocked = mask(f.get("ResetSigBlk"));
    assert_eq!(blocked & bit(libc::SIGWINCH), 0, "SIGWINCH still blocked");
    assert_ne!(blocked & bit(libc::SIGUSR1), 0, "SIGUSR1 was not reset");
    assert_eq!(f.get("WinchAfterReset"), "false");
    assert_eq!(f.get("Usr1Pending"), "true");
    assert_eq!(mask(f.get("AfterSigCgt")) & bit(libc::SIGUSR1), 0);
}

//! `itkd_sys::process`, checked by the kernel in fresh single-threaded processes (the
//! process probe): the pool child's drop to User/Group, the worker's switch after it,
//! fork, and the parent-death signal.

mod common;

use common::{probe, root, run, Fields};

const PROBE: &str = env!("CARGO_BIN_EXE_itkd-process-probe");

/// CAP_SETGID (6), CAP_SETUID (7), CAP_SYS_NICE (23).
const POOL_CAPS: &str = "00000000008000c0";
const NONE: &str = "0000000000000000";

fn assert_switched(f: &Fields) {
    assert_eq!(f.get("Uid"), "20001 20001 20001 20001");
    assert_eq!(f.get("Gid"), "21001 21001 21001 21001");
    assert_eq!(f.get("Groups"), "21001");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(f.get(cap), NONE, "{cap}");
    }
    assert_eq!(f.get("Nice"), "-3");
    assert_eq!(f.get("Regain"), "EPERM: Operation not permitted");
}

#[test]
fn a_pool_child_runs_as_user_with_three_capabilities_and_its_worker_can_still_switch() {
    if !root() {
        return;
    }
    let f = probe(PROBE, &["pool-chain", "33", "33", "20001", "21001", "-3"]);
    assert_eq!(f.get("PoolUid"), "33 33 33 33");
    assert_eq!(f.get("PoolGid"), "33 33 33 33");
    assert_eq!(f.get("PoolGroups"), "33");
    assert_eq!(f.get("PoolCapEff"), POOL_CAPS);
    assert_eq!(f.get("PoolCapPrm"), POOL_CAPS);
    assert_eq!(f.get("PoolCapInh"), NONE);
    assert_eq!(f.get("PoolCapAmb"), NONE);
    assert_eq!(f.get("PoolCapBnd"), NONE);
    assert_switched(&f);
}

#[test]
fn with_enable_capabilities_off_the_pool_child_stays_root_with_three_capabilities() {
    if !root() {
        return;
    }
    let f = probe(
        PROBE,
        &[
            "pool-chain",
            "--caps-off",
            "33",
            "33",
            "20001",
            "21001",
            "-3",
        ],
    );
    assert_eq!(f.get("PoolUid"), "0 0 0 0");
    assert_eq!(f.get("PoolGid"), "0 0 0 0");
    assert_eq!(f.get("PoolGroups"), "0");
    assert_eq!(f.get("PoolCapEff"), POOL_CAPS);
    assert_eq!(f.get("PoolCapPrm"), POOL_CAPS);
    assert_eq!(f.get("PoolCapBnd"), NONE);
    assert_switched(&f);
}

#[test]
fn the_parent_death_signal_is_cleared_by_a_uid_change_and_must_be_set_again() {
    if !root() {
        return;
    }
    // Set before each change; the probe prints it after.
    let on = probe(PROBE, &["pool-chain", "33", "33", "20001", "21001", "0"]);
    assert_eq!(on.get("PoolPdeathsig"), "none");
    assert_eq!(on.get("Pdeathsig"), "none");
    // No euid change in the pool child with EnableCapabilities Off: it stays.
    let off = probe(
        PROBE,
        &[
            "pool-chain",
            "--caps-off",
            "33",
            "33",
            "20001",
            "21001",
            "0",
        ],
    );
    assert_eq!(off.get("PoolPdeathsig"), "SIGKILL");
    assert_eq!(off.get("Pdeathsig"), "none");
}

#[test]
fn fork_returns_the_child_and_the_child_runs() {
    let f = probe(PROBE, &["fork"]);
    assert_eq!(f.get("Child"), "exited 7");
}

#[test]
fn fork_in_a_threaded_process_fails_the_debug_assertion() {
    let out = run(PROBE, &["fork-threaded"]);
    if cfg!(debug_assertions) {
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("more than one thread"), "{stderr}");
    } else {
        assert!(out.status.success());
    }
}

#[test]
fn an_orphan_with_a_parent_death_signal_dies_and_reaches_the_subreaper() {
    let f = probe(PROBE, &["orphan"]);
    assert_eq!(f.get("B"), "exited 0");
    assert_eq!(f.get("C"), "killed by SIGKILL");
}

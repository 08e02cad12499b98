//! `itkd_sys::scoreboard` across `fork`: the scoreboard probe's child writes, dies by
//! SIGKILL, and its parent sees the writes and clears the slot as its reaper.

mod common;

use common::probe;

const PROBE: &str = env!("CARGO_BIN_EXE_itkd-scoreboard-probe");

#[test]
fn a_child_s_writes_are_seen_by_the_parent_and_its_reaper_clears_its_count() {
    let f = probe(PROBE, &[]);
    assert_eq!(f.get("ChildSawParent"), "true");
    assert_eq!(f.get("ChildSlot"), "1");
    assert_eq!(f.get("ChildEntered"), "true");
    assert_eq!(f.get("Child"), "killed by SIGKILL");
    assert_eq!(f.get("SlotPidIsChild"), "true");
    assert_eq!(f.get("SlotState"), "Busy");
    assert_eq!(f.get("Generation"), "1");
    assert_eq!(f.get("Busy7"), "1");
    assert_eq!(f.get("Released"), "1");
    assert_eq!(f.get("Busy7AfterReap"), "0");
}

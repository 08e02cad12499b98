//! Test fixture for `itkd_sys::scoreboard`: a scoreboard shared with a forked child.
//! The child claims a slot, enters vhost 7, starts a new generation and kills itself with
//! SIGKILL (no cleanup, like a crashed worker); the parent reports what it sees, then
//! releases the child's slot as its reaper. Prints `Key:\tvalue` lines.

#[path = "common/mod.rs"]
mod common;

use common::{ended, fail};
use itkd_sys::process::{self, Fork};
use itkd_sys::scoreboard::{Scoreboard, SlotState};
use nix::sys::signal::{raise, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::getpid;

fn main() {
    let board = Scoreboard::new(4).unwrap_or_else(|e| fail(&e.to_string()));
    let mine = board
        .claim_free_slot(getpid())
        .unwrap_or_else(|| fail("no slot"));
    board.slot(mine).set_state(SlotState::Idle);
    // SAFETY: this process is single-threaded.
    match unsafe { process::fork() } {
        Ok(Fork::Child) => {
            // The parent's write before the fork is visible here too.
            let parent_seen = board.slot(mine).state() == SlotState::Idle;
            let slot = board
                .claim_free_slot(getpid())
                .unwrap_or_else(|| fail("no slot"));
            let entered = board.try_enter_vhost(slot, 7, Some(5));
            board.next_generation();
            println!("ChildSawParent:\t{parent_seen}");
            println!("ChildSlot:\t{slot}");
            println!("ChildEntered:\t{entered}");
            let _ = raise(Signal::SIGKILL);
            std::process::exit(2)
        }
        Ok(Fork::Parent(child)) => {
            let status = waitpid(child, None).unwrap_or_else(|e| fail(&e.to_string()));
            println!("Child:\t{}", ended(status));
            let slot = board.slot(1);
            println!("SlotPidIsChild:\t{}", slot.pid() == Some(child));
            println!("SlotState:\t{:?}", slot.state());
            println!("Generation:\t{}", board.generation());
            println!("Busy7:\t{}", board.count_busy_for(7));
            println!("Released:\t{}", board.release_by_pid(child));
            println!("Busy7AfterReap:\t{}", board.count_busy_for(7));
        }
        Err(e) => fail(&format!("fork: {e}")),
    }
}

//! The scoreboard: a table of slots in memory shared by the master, the pool children and
//! the workers, one slot per live process that serves (ServerLimit of them), saying who it
//! is, what it is doing and for which virtual host.
//!
//! The master creates it once (`mmap(MAP_SHARED | MAP_ANONYMOUS)`) before forking
//! anything; every child inherits the same pages through `fork`. It has no file
//! descriptor, and `execve` drops the mapping, so a CGI never sees it
//! (ARCHITECTURE.md: "a CGI script sees fds 0, 1, 2 and nothing else").
//!
//! `MaxClientsVHost` is counted from the slots themselves — Busy slots whose vhost is that
//! vhost — never from a separate counter: a counter would stay raised when a worker dies
//! by SIGKILL before it could decrement it. A slot is claimed by the process that uses it
//! ([`Scoreboard::claim_free_slot`] with its own pid) and cleared by whoever reaps that
//! process ([`Scoreboard::release_by_pid`] with the pid `waitpid` returned: the pool child
//! for its worker, the master — a child subreaper — for the rest). So a count never
//! outlives the process it counts.
//!
//! Not here: the policy (when to start or stop pool children, graceful restarts); this is
//! only the shared table and its atomic operations.

use std::alloc::Layout;
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU8, Ordering};

use nix::sys::mman::{self, MapFlags, ProtFlags};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// The vhost index of a slot that serves no vhost.
pub const NO_VHOST: u32 = u32::MAX;

/// Every access below is SeqCst: the MaxClientsVHost check relies on a single total order
/// of the slots' stores and loads (see [`Scoreboard::try_enter_vhost`]), and the cost is
/// nothing next to a fork per connection.
const ORDER: Ordering = Ordering::SeqCst;

// The atomics must be lock-free, i.e. plain memory operations the hardware makes coherent
// between processes as between threads (a lock-based fallback would keep its lock in
// process-local memory). `target_has_atomic` says exactly that they are native.
#[cfg(not(all(target_has_atomic = "8", target_has_atomic = "32")))]
compile_error!("the scoreboard needs native 8- and 32-bit atomics");

/// What the process in a slot is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotState {
    /// Free: no process. Zero, so a fresh mapping (zero-filled) is all Empty.
    Empty = 0,
    /// Claimed by a process that is starting up.
    Starting = 1,
    /// Waiting for a connection (a pool child in `accept`).
    Idle = 2,
    /// Holding a connection: reading, serving or idle in keep-alive. Counts for
    /// MaxClientsVHost when its vhost is set (mpm-itk counts idle keep-alive too).
    Busy = 3,
    /// Finishing: no longer counted, not yet reaped.
    Stopping = 4,
}

impl SlotState {
    /// A byte another process stored; any value but the known ones (only possible if some
    /// process scribbled on the table) reads as `Stopping`: neither free to claim nor
    /// counted.
    fn from_raw(raw: u8) -> SlotState {
        match raw {
            0 => SlotState::Empty,
            1 => SlotState::Starting,
            2 => SlotState::Idle,
            3 => SlotState::Busy,
            _ => SlotState::Stopping,
        }
    }
}

/// One process's entry. Lives in the shared mapping; every field is an atomic, so every
/// process may read and write it at any time.
#[derive(Debug)]
#[repr(C, align(64))] // one cache line each: slots of different processes do not share one
pub struct Slot {
    pid: AtomicI32,
    state: AtomicU8,
    vhost: AtomicU32,
    generation: AtomicU32,
}

impl Slot {
    /// The process in this slot, `None` when free (or not yet filled in by its claimer).
    pub fn pid(&self) -> Option<Pid> {
        Some(self.pid.load(ORDER))
            .filter(|&p| p > 0)
            .map(Pid::from_raw)
    }

    pub fn state(&self) -> SlotState {
        SlotState::from_raw(self.state.load(ORDER))
    }

    /// Sets what the slot's own process is doing. [`SlotState::Empty`] is for
    /// [`Scoreboard::release_by_pid`] only; leaving Busy also leaves the vhost.
    pub fn set_state(&self, state: SlotState) {
        debug_assert_ne!(state, SlotState::Empty, "a slot is emptied by its reaper");
        if state != SlotState::Busy {
            self.leave_vhost();
        }
        self.state.store(state as u8, ORDER);
    }

    /// The vhost (index into the configuration's vhost list) being served, if any.
    pub fn vhost(&self) -> Option<u32> {
        Some(self.vhost.load(ORDER)).filter(|&v| v != NO_VHOST)
    }

    /// No longer counted for any vhost.
    pub fn leave_vhost(&self) {
        self.vhost.store(NO_VHOST, ORDER);
    }

    /// The scoreboard generation current when the slot was claimed (see
    /// [`Scoreboard::generation`]).
    pub fn generation(&self) -> u32 {
        self.generation.load(ORDER)
    }
}

/// The shared part before the slots.
#[repr(C)]
struct Header {
    generation: AtomicU32,
}

/// The table, mapped once by the master and inherited by every child.
#[derive(Debug)]
pub struct Scoreboard {
    map: NonNull<c_void>,
    len: NonZeroUsize,
    slots_offset: usize,
    slots: usize,
}

// SAFETY: the mapping is owned by the Scoreboard (unmapped only in Drop) and every byte of
// it is read and written only through the atomics of Header and Slot, which are Sync; so
// the Scoreboard may be shared and sent between threads as an `&[Slot]` could.
unsafe impl Send for Scoreboard {}
// SAFETY: as above.
unsafe impl Sync for Scoreboard {}

impl Scoreboard {
    /// Maps a zeroed table of `slots` slots (ServerLimit), all Empty, generation 0.
    pub fn new(slots: usize) -> Result<Scoreboard> {
        let layout = Layout::new::<Header>()
            .extend(Layout::array::<Slot>(slots).map_err(|_| Error::ScoreboardSize(slots))?)
            .map_err(|_| Error::ScoreboardSize(slots))
            .map(|(layout, offset)| (layout.pad_to_align(), offset));
        let (layout, slots_offset) = layout?;
        let len = NonZeroUsize::new(layout.size())
            .filter(|_| slots > 0)
            .ok_or(Error::ScoreboardSize(slots))?;
        // SAFETY: a new anonymous mapping aliases no memory of this process; the kernel
        // picks the address. It is zero-filled and page-aligned, which satisfies Slot's
        // 64-byte alignment, and all-zero bytes are valid Header and Slot values (atomics
        // of 0, SlotState::Empty).
        let map = unsafe {
            mman::mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| Error::sys(format!("mmap({} bytes, MAP_SHARED)", len), e))?;
        let board = Scoreboard {
            map,
            len,
            slots_offset,
            slots,
        };
        for slot in board.slots() {
            slot.leave_vhost();
        }
        Ok(board)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header (see `new`), stays mapped as long as
        // `self` lives, and is only ever accessed through atomics, so a shared reference to
        // it is sound even while other processes write it.
        unsafe { self.map.cast::<Header>().as_ref() }
    }

    /// All slots.
    pub fn slots(&self) -> &[Slot] {
        // SAFETY: `slots` Slot values lie at `slots_offset` inside the mapping (Layout in
        // `new`), initialised (zero is a valid Slot), aligned (page + Layout offset), alive
        // as long as `self`. Other processes change them concurrently, but only through the
        // same atomics: atomics in shared memory are what they are between threads, since
        // they are lock-free (checked at compile time above) and the CPU keeps the shared
        // physical pages coherent for every process that maps them.
        unsafe {
            std::slice::from_raw_parts(
                self.map
                    .as_ptr()
                    .cast::<u8>()
                    .add(self.slots_offset)
                    .cast::<Slot>(),
                self.slots,
            )
        }
    }

    /// Slot `i`. Panics when `i` is not below the number of slots, as indexing does.
    pub fn slot(&self, i: usize) -> &Slot {
        &self.slots()[i]
    }

    /// The number of slots (ServerLimit).
    pub fn len(&self) -> usize {
        self.slots
    }

    /// Never true: a scoreboard has at least one slot.
    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// The current generation: the master bumps it on a graceful restart (SIGUSR1), and a
    /// pool child whose slot carries an older one finishes its connection and exits.
    pub fn generation(&self) -> u32 {
        self.header().generation.load(ORDER)
    }

    /// Starts a new generation and returns it.
    pub fn next_generation(&self) -> u32 {
        self.header().generation.fetch_add(1, ORDER).wrapping_add(1)
    }

    /// Takes the first Empty slot for process `pid` (state Starting, current generation,
    /// no vhost) and returns its index; `None` when all are taken (ServerLimit reached) or
    /// `pid` is not a process id.
    pub fn claim_free_slot(&self, pid: Pid) -> Option<usize> {
        if pid.as_raw() <= 0 {
            return None;
        }
        let generation = self.generation();
        self.slots().iter().position(|slot| {
            // Only the compare-exchange winner writes the rest of the slot.
            let won = slot
                .state
                .compare_exchange(
                    SlotState::Empty as u8,
                    SlotState::Starting as u8,
                    ORDER,
                    ORDER,
                )
                .is_ok();
            if won {
                slot.vhost.store(NO_VHOST, ORDER);
                slot.generation.store(generation, ORDER);
                slot.pid.store(pid.as_raw(), ORDER);
            }
            won
        })
    }

    /// Empties every slot of process `pid`; returns how many there were (0 or 1, unless a
    /// caller claimed twice). Called by whoever reaps `pid`, right after `waitpid`: the
    /// pid cannot belong to anyone else before it was reaped, and is handed out again only
    /// after the kernel's pid counter wraps (pid_max), long after this call.
    pub fn release_by_pid(&self, pid: Pid) -> usize {
        if pid.as_raw() <= 0 {
            return 0;
        }
        let mut released = 0;
        for slot in self.slots() {
            if slot.pid.load(ORDER) == pid.as_raw() {
                slot.leave_vhost();
                slot.pid.store(0, ORDER);
                // Last: only an Empty slot can be claimed, and by then it is clean.
                slot.state.store(SlotState::Empty as u8, ORDER);
                released += 1;
            }
        }
        released
    }

    /// How many Busy slots serve `vhost`: the MaxClientsVHost count.
    pub fn count_busy_for(&self, vhost: u32) -> usize {
        self.slots()
            .iter()
            // vhost first, then state: see try_enter_vhost.
            .filter(|s| s.vhost.load(ORDER) == vhost && s.state() == SlotState::Busy)
            .count()
    }

    /// MaxClientsVHost: marks slot `slot` Busy for `vhost`, then counts the Busy slots of
    /// `vhost` — this one included, as mpm-itk counts the current request — and, if that is
    /// more than `limit`, leaves the vhost again and returns false (the caller answers 503).
    /// `None` is no limit. Panics when `slot` is out of range.
    ///
    /// The race, and why it is the acceptable one: each process first publishes its entry
    /// (a SeqCst store of the vhost) and then reads everybody's (SeqCst loads). All SeqCst
    /// operations fall into one total order; of any processes entering at once, the one
    /// whose store comes last in it loads after every other store, so it sees them all:
    /// more than `limit` processes can never all pass. Several may see each other and all
    /// back out — a spurious 503, only when the vhost is at its limit and connections
    /// arrive in the same instant. mpm-itk counts without any ordering and can let too many
    /// through; refusing one too many is the side to err on.
    pub fn try_enter_vhost(&self, slot: usize, vhost: u32, limit: Option<usize>) -> bool {
        let s = self.slot(slot);
        debug_assert_ne!(vhost, NO_VHOST, "NO_VHOST is no vhost");
        s.state.store(SlotState::Busy as u8, ORDER);
        // The publishing store: after the state, so whoever sees this vhost sees Busy too.
        s.vhost.store(vhost, ORDER);
        let Some(limit) = limit else {
            return true;
        };
        if self.count_busy_for(vhost) > limit {
            s.leave_vhost();
            return false;
        }
        true
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // SAFETY: `map`/`len` are exactly the mapping made in `new`, unmapped only here;
        // no reference into it outlives `self` (they all borrow from it). Other processes
        // keep their own mapping of the same pages.
        let _ = unsafe { mman::munmap(self.map, self.len.get()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    #[test]
    fn a_new_board_is_all_empty() {
        let b = Scoreboard::new(5).unwrap();
        assert_eq!(b.len(), 5);
        assert!(!b.is_empty());
        assert_eq!(b.generation(), 0);
        for s in b.slots() {
            assert_eq!(
                (s.pid(), s.state(), s.vhost(), s.generation()),
                (None, SlotState::Empty, None, 0)
            );
        }
    }

    #[test]
    fn zero_slots_is_an_error() {
        assert_eq!(Scoreboard::new(0).unwrap_err(), Error::ScoreboardSize(0));
        assert_eq!(
            Scoreboard::new(usize::MAX / 2).unwrap_err(),
            Error::ScoreboardSize(usize::MAX / 2)
        );
    }

    #[test]
    fn slots_are_claimed_in_order_until_none_is_left_and_reused_after_release() {
        let b = Scoreboard::new(3).unwrap();
        assert_eq!(b.claim_free_slot(pid(100)), Some(0));
        assert_eq!(b.claim_free_slot(pid(101)), Some(1));
        assert_eq!(b.claim_free_slot(pid(102)), Some(2));
        assert_eq!(b.claim_free_slot(pid(103)), None);
        assert_eq!(b.slot(1).pid(), Some(pid(101)));
        assert_eq!(b.slot(1).state(), SlotState::Starting);
        assert_eq!(b.release_by_pid(pid(101)), 1);
        assert_eq!(b.release_by_pid(pid(101)), 0);
        assert_eq!(b.slot(1).state(), SlotState::Empty);
        assert_eq!(b.claim_free_slot(pid(104)), Some(1));
    }

    #[test]
    fn no_process_id_claims_or_releases_nothing() {
        let b = Scoreboard::new(2).unwrap();
        for p in [0, -1] {
            assert_eq!(b.claim_free_slot(pid(p)), None);
            assert_eq!(b.release_by_pid(pid(p)), 0);
        }
    }

    #[test]
    fn claims_carry_the_current_generation() {
        let b = Scoreboard::new(2).unwrap();
        b.claim_free_slot(pid(10));
        assert_eq!(b.next_generation(), 1);
        b.claim_free_slot(pid(11));
        assert_eq!((b.slot(0).generation(), b.slot(1).generation()), (0, 1));
    }

    #[test]
    fn max_clients_vhost_counts_the_current_connection_too() {
        // limit, already busy for the vhost → admitted?
        for (limit, busy, admitted) in [
            (Some(2), 0, true),
            (Some(2), 1, true),
            (Some(2), 2, false),
            (Some(1), 0, true),
            (Some(1), 1, false),
            (Some(0), 0, false),
            (None, 7, true),
        ] {
            let b = Scoreboard::new(10).unwrap();
            for i in 0..busy {
                let s = b.claim_free_slot(pid(100 + i)).unwrap();
                assert!(b.try_enter_vhost(s, 4, None));
            }
            let me = b.claim_free_slot(pid(99)).unwrap();
            assert_eq!(
                b.try_enter_vhost(me, 4, limit),
                admitted,
                "{limit:?} {busy}"
            );
            let expected = busy as usize + usize::from(admitted);
            assert_eq!(b.count_busy_for(4), expected);
            assert_eq!(b.slot(me).vhost(), admitted.then_some(4));
        }
    }

    #[test]
    fn only_busy_slots_of_that_vhost_count() {
        let b = Scoreboard::new(6).unwrap();
        let s: Vec<usize> = (0..5)
            .map(|i| b.claim_free_slot(pid(200 + i)).unwrap())
            .collect();
        assert!(b.try_enter_vhost(s[0], 1, None));
        assert!(b.try_enter_vhost(s[1], 1, None));
        assert!(b.try_enter_vhost(s[2], 2, None));
        b.slot(s[1]).set_state(SlotState::Stopping); // finished: leaves its vhost
        b.slot(s[3]).set_state(SlotState::Idle);
        assert_eq!(b.count_busy_for(1), 1);
        assert_eq!(b.count_busy_for(2), 1);
        assert_eq!(b.count_busy_for(3), 0);
        assert_eq!(b.slot(s[1]).vhost(), None);
    }

    #[test]
    fn a_reaped_process_no_longer_counts() {
        // The SIGKILL case: the worker never cleaned up; its reaper releases the slot.
        let b = Scoreboard::new(2).unwrap();
        let s = b.claim_free_slot(pid(300)).unwrap();
        assert!(b.try_enter_vhost(s, 9, Some(1)));
        assert_eq!(b.count_busy_for(9), 1);
        b.release_by_pid(pid(300));
        assert_eq!(b.count_busy_for(9), 0);
        let t = b.claim_free_slot(pid(301)).unwrap();
        assert!(b.try_enter_vhost(t, 9, Some(1)));
    }

    #[test]
    fn concurrent_entries_never_exceed_the_limit() {
        // Threads stand in for processes: same atomics, same memory model.
        const LIMIT: usize = 3;
        let b = Scoreboard::new(16).unwrap();
        let slots: Vec<usize> = (0..16)
            .map(|i| b.claim_free_slot(pid(400 + i)).unwrap())
            .collect();
        for _round in 0..200 {
            let admitted = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for &s in &slots {
                    let (b, admitted) = (&b, &admitted);
                    scope.spawn(move || {
                        if b.try_enter_vhost(s, 5, Some(LIMIT)) {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
            let n = admitted.load(Ordering::SeqCst);
            assert!(n <= LIMIT, "{n} admitted");
            assert_eq!(b.count_busy_for(5), n);
            for &s in &slots {
                b.slot(s).leave_vhost();
            }
        }
    }

    #[test]
    fn corrupt_state_bytes_are_neither_free_nor_counted() {
        assert_eq!(SlotState::from_raw(200), SlotState::Stopping);
        for s in [
            SlotState::Empty,
            SlotState::Starting,
            SlotState::Idle,
            SlotState::Busy,
            SlotState::Stopping,
        ] {
            assert_eq!(SlotState::from_raw(s as u8), s);
        }
    }
}
